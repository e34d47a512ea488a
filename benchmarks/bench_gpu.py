"""GPU benchmark: the CUDA/bf16 paths of the Hyena operator, the model and the trainer.

Run on a machine with a CUDA GPU, from the repository root::

    python benchmarks/bench_gpu.py            # about 3 minutes on an H100
    python benchmarks/bench_gpu.py --quick    # smoke run

Every number is measured side by side in this one run (median wall time of repeats after a
warm-up, synchronised; peak memory from ``torch.cuda.max_memory_allocated``):

1. one block forward+backward under bf16 autocast: Hyena (FFT long convolution, computed in
   float32) vs causal SDPA attention (flash kernels), as the sequence grows;
2. inference on one 1,000,000-nt sequence: time and peak GPU memory, merging off and on;
3. causal-LM training tokens/s of a whole model, fp32 vs bf16 autocast, merging off and on;
4. the agreement of bf16-autocast logits with fp32 logits (the numerical check of the bf16
   path the trainer uses on CUDA).

Input ids are a real genome when ``--genome-ids`` names a ``.npy`` of DNATokenizer ids (see
``--write-genome-ids``, which needs pysam), random bases otherwise.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
GENOME = ROOT.parent / "shared" / "data" / "genomes" / "klebsiella_pneumoniae" / "Klebs_Kp1084.fna.gz"
D_MODEL = 256
#: Where everything runs; ``--device cpu --quick`` smoke-tests the script without a GPU.
DEVICE = torch.device("cuda")


def write_genome_ids(path: Path, length: int) -> None:
    """Save the first ``length`` bases of a real Klebsiella genome as token ids (uint8)."""
    import pysam

    from hyena_glt.data.tokenizers import DNATokenizer

    with pysam.FastaFile(str(GENOME)) as fasta:
        text = fasta.fetch(fasta.references[0], 0, length).upper()
    np.save(path, DNATokenizer(unknown="replace").encode_array(text).astype(np.uint8))


def genome_ids(source: Path | None, length: int, batch: int = 1) -> torch.Tensor:
    if source is not None:
        ids = torch.from_numpy(np.load(source).astype(np.int64))
        repeats = -(-length * batch // len(ids))
        return ids.repeat(repeats)[:length * batch].view(batch, length).to(DEVICE)
    from hyena_glt.data.tokenizers import DNATokenizer

    bases = DNATokenizer().encode_array("ACGT")
    choice = torch.randint(0, 4, (batch, length), generator=torch.Generator().manual_seed(0))
    return torch.as_tensor(bases, dtype=torch.long)[choice].to(DEVICE)


def timed(step: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median seconds, peak GiB) of ``step`` after one warm-up call."""
    import time

    cuda = DEVICE.type == "cuda"
    step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return statistics.median(times), peak


def autocast(enabled: bool = True) -> torch.autocast:
    """bf16 autocast on CUDA; off on the CPU (the smoke test), where bf16 is emulated slowly."""
    return torch.autocast(DEVICE.type, dtype=torch.bfloat16,
                          enabled=enabled and DEVICE.type == "cuda")


def empty_cache() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.empty_cache()


def bench_blocks(lengths: list[int], repeats: int) -> None:
    from hyena_glt.model.blocks import AttentionBlock, HyenaBlock

    print(f"\n## One block, forward+backward, bf16 autocast, d_model={D_MODEL}, batch 1")
    print(f"{'L':>8} | {'Hyena ms':>9} | {'GiB':>5} | {'SDPA ms':>9} | {'GiB':>5} | "
          f"{'SDPA/Hyena':>10}")
    for length in lengths:
        row = {}
        for kind in ("hyena", "attention"):
            torch.manual_seed(0)
            block = (HyenaBlock(D_MODEL, length, order=2, filter_order=64) if kind == "hyena"
                     else AttentionBlock(D_MODEL, num_heads=8)).to(DEVICE)
            x = torch.randn(1, length, D_MODEL, device=DEVICE, requires_grad=True)

            def step(block=block, x=x) -> None:
                block.zero_grad(set_to_none=True)
                with autocast():
                    out = block(x)[0]
                out.float().square().mean().backward()

            try:
                row[kind] = timed(step, repeats if length <= 16384 else 3)
            except torch.OutOfMemoryError:
                row[kind] = (float("nan"), float("nan"))
            del block, x
            empty_cache()
        (h, hm), (a, am) = row["hyena"], row["attention"]
        print(f"{length:>8} | {h * 1e3:9.2f} | {hm:5.1f} | {a * 1e3:9.2f} | {am:5.1f} | "
              f"{a / h:9.2f}x")


def model_config(length: int, merging: bool, attention: bool = True, n_layers: int = 8):
    from hyena_glt.config import HyenaGLTConfig

    return HyenaGLTConfig(d_model=D_MODEL, n_layers=n_layers, num_heads=8,
                          sequence_length=length, dropout=0.0, use_dynamic_merging=merging,
                          merge_ratio=0.75, max_patch_size=16,
                          attention_layers=None if attention else ())


def calibrate(model: torch.nn.Module, ids: torch.Tensor) -> None:
    """One train-mode pass sets the merging threshold to this data's quantile."""
    model.train()
    with torch.no_grad(), autocast():
        model(ids)
    model.eval()


def bench_megabase(length: int, source: Path | None) -> None:
    from hyena_glt.model import HyenaGLTModel

    print(f"\n## Inference on one {length:,}-nt sequence, bf16 autocast, d_model={D_MODEL}, "
          "8 global Hyena layers (no attention)")
    ids = genome_ids(source, length)
    for merging in (False, True):
        torch.manual_seed(0)
        model = HyenaGLTModel(model_config(length, merging, attention=False)).to(DEVICE)
        if merging:
            calibrate(model, ids)
        model.eval()
        patches = {}

        def step(model=model, patches=patches) -> None:
            with torch.inference_mode(), autocast():
                out = model(ids)
            patches["n"] = int(out.num_patches[0]) if out.num_patches is not None else length

        seconds, peak = timed(step, 3)
        print(f"merging={'on' if merging else 'off':<4} {seconds:7.3f} s | peak {peak:6.2f} GiB"
              f" | global tokens {patches['n']:,}")
        del model
        empty_cache()


def bench_training(length: int, batch: int, repeats: int, source: Path | None) -> None:
    from hyena_glt.model import HyenaGLTForCausalLM

    print(f"\n## Causal-LM training step, batch {batch} x {length} nt, d_model={D_MODEL}, "
          "8 global layers (attention at 1 and 5), AdamW")
    ids = genome_ids(source, length, batch)
    results = {}
    for merging in (False, True):
        for bf16 in (False, True):
            torch.manual_seed(0)
            model = HyenaGLTForCausalLM(model_config(length, merging)).to(DEVICE)
            if merging:
                calibrate(model, ids)
            model.train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

            def step(model=model, optimizer=optimizer, bf16=bf16) -> None:
                optimizer.zero_grad(set_to_none=True)
                with autocast(bf16):
                    loss = model(ids, labels=ids).loss
                loss.backward()
                optimizer.step()

            seconds, peak = timed(step, repeats)
            results[merging, bf16] = batch * length / seconds
            print(f"merging={'on' if merging else 'off':<4} {'bf16' if bf16 else 'fp32'} "
                  f"{batch * length / seconds:12,.0f} tokens/s | peak {peak:6.2f} GiB")
            del model, optimizer
            empty_cache()
    print(f"bf16/fp32 speed-up: {results[False, True] / results[False, False]:.2f}x (merging "
          f"off), {results[True, True] / results[True, False]:.2f}x (on); merging on/off: "
          f"{results[True, True] / results[False, True]:.2f}x (bf16)")


def check_bf16_logits(length: int, source: Path | None) -> None:
    from hyena_glt.model import HyenaGLTForCausalLM

    torch.manual_seed(0)
    model = HyenaGLTForCausalLM(model_config(length, merging=False)).to(DEVICE).eval()
    ids = genome_ids(source, length, 2)
    with torch.inference_mode():
        full = model(ids).logits.float()
        with autocast():
            half = model(ids).logits.float()
    full_p, half_p = full.log_softmax(-1).exp(), half.log_softmax(-1).exp()
    agree = float((full.argmax(-1) == half.argmax(-1)).float().mean())
    print(f"\n## bf16 autocast vs fp32 logits, untrained model, 2 x {length} nt: max |Δ "
          f"probability| {float((full_p - half_p).abs().max()):.2e}, top-1 agreement "
          f"{agree:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--genome-ids", type=Path, default=None,
                        help=".npy of DNATokenizer ids of a real genome (default: random bases)")
    parser.add_argument("--write-genome-ids", type=Path, default=None, metavar="NPY",
                        help="write the .npy from shared/data (needs pysam) and exit")
    parser.add_argument("--device", default="cuda",
                        help="cuda (default), or cpu to smoke-test the script with --quick")
    args = parser.parse_args()
    if args.write_genome_ids:
        write_genome_ids(args.write_genome_ids, 1_048_576)
        return
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU (the CPU benchmark is bench_operator.py)")
    name = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "CPU"
    print(f"# {name} | torch {torch.__version__} | ids: {args.genome_ids or 'random bases'}")
    lengths = [1024, 4096] if args.quick else [4096, 16384, 65536, 262144]
    bench_blocks(lengths, repeats=3 if args.quick else 10)
    bench_megabase(16384 if args.quick else 1_000_000, args.genome_ids)
    bench_training(1024 if args.quick else 16384, 2 if args.quick else 8,
                   repeats=2 if args.quick else 10, source=args.genome_ids)
    check_bf16_logits(1024 if args.quick else 4096, args.genome_ids)


if __name__ == "__main__":
    main()
