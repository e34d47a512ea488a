"""Compression benchmark on the bundled promoter task: accuracy, size and CPU throughput of each
compressed variant relative to the float model, in one run.

Run from the repository root::

    python benchmarks/bench_compression.py            # default: d_model 128, 2 layers
    python benchmarks/bench_compression.py --quick    # smoke run (small model, few steps)

Data: ``shared/data/genomic_benchmarks/human_nontata_promoters/test.csv.gz`` (the only split
stored), split 70/30 stratified with ``random_state=0`` as in ``shared/NOTES.md``; the model is
trained here on the 70% for ``--steps`` batches, and every variant is scored on (a sample of) the
30%. Throughput: the variants are timed in interleaved rounds (one pass of each per round, the
fastest pass kept), so a load spike from another process on a shared machine hits every variant
alike; PyTorch and ONNX Runtime both use ``--threads`` threads.

The profile section splits the float and int8 models' CPU time by op family (torch.profiler,
one batch): dynamic int8 speeds up only the ``linear`` share, so the whole-model speed-up is
bounded by ``1 / ((1 - s) + s / g)`` with ``s`` the float linear share and ``g`` the measured
int8-vs-float speed-up of the linear ops themselves.

Targets (issue 6): int8 dynamic quantization >= 2x throughput at <= 0.5 point accuracy loss;
50% pruning + distillation <= 1 point loss.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import DataLoader

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data import DNATokenizer, GenomicDataset, collate_batch
from hyena_glt.model import HyenaGLTForSequenceClassification
from hyena_glt.optimization import (
    DeploymentConfig,
    DistillationConfig,
    KnowledgeDistiller,
    ModelOptimizer,
    ModelPruner,
    ModelQuantizer,
    PruningConfig,
    QuantizationConfig,
    evaluate_accuracy,
    measure_model,
)
from hyena_glt.optimization.training import train_steps

DATA = (Path(__file__).resolve().parents[2] / "shared" / "data" / "genomic_benchmarks"
        / "human_nontata_promoters" / "test.csv.gz")

#: Op families of the profile (self CPU time of each aten/quantized op).
OP_FAMILIES = {
    "linear": ("aten::addmm", "aten::mm", "aten::linear", "aten::matmul",
               "quantized::linear_dynamic"),
    "short conv": ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution",
                   "aten::conv1d", "aten::_nnpack_spatial_convolution"),
    "fft": ("aten::_fft_r2c", "aten::_fft_c2r", "aten::fft_rfft", "aten::fft_irfft"),
    "elementwise": ("aten::mul", "aten::add", "aten::gelu", "aten::sin", "aten::cos",
                    "aten::exp", "aten::sub", "aten::div", "aten::where"),
    "copies": ("aten::copy_", "aten::fill_", "aten::cat", "aten::constant_pad_nd",
               "aten::index_select", "aten::clone", "aten::contiguous"),
}


def loaders(args: argparse.Namespace) -> tuple[DataLoader, DataLoader]:
    frame = pd.read_csv(args.data)
    train_x, test_x, train_y, test_y = train_test_split(
        frame["sequence"].tolist(), frame["label"].tolist(), test_size=0.3,
        stratify=frame["label"].tolist(), random_state=0)
    tokenizer = DNATokenizer()
    train = GenomicDataset(train_x, train_y, tokenizer, max_length=args.length)
    test = GenomicDataset(test_x[:args.eval_rows], test_y[:args.eval_rows], tokenizer,
                          max_length=args.length)
    return (DataLoader(train, batch_size=32, shuffle=True, collate_fn=collate_batch,
                       generator=torch.Generator().manual_seed(0)),
            DataLoader(test, batch_size=64, collate_fn=collate_batch))


@torch.no_grad()
def interleaved_throughput(runners: dict[str, Callable], loader: Iterable[dict[str, Any]],
                           rounds: int) -> dict[str, float]:
    """Sequences/s of each runner: fastest of ``rounds`` passes, variants interleaved."""
    batches = [(b["input_ids"], b["attention_mask"]) for b in loader]
    sequences = sum(ids.shape[0] for ids, _ in batches)
    best = dict.fromkeys(runners, float("inf"))
    for run in runners.values():  # warm-up
        run(*batches[0])
    for _ in range(rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            for ids, mask in batches:
                run(ids, mask)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: sequences / seconds for name, seconds in best.items()}


@torch.no_grad()
def op_family_times(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor
                    ) -> dict[str, float]:
    """Self CPU seconds per op family (:data:`OP_FAMILIES`, rest ``other``) of one forward."""
    model(ids, mask)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(ids, mask)
    family_of = {op: family for family, ops in OP_FAMILIES.items() for op in ops}
    times: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key.startswith(("aten::", "quantized::")):
            times[family_of.get(event.key, "other")] += event.self_cpu_time_total / 1e6
    return dict(times)


def print_profile(float_model: torch.nn.Module, int8_model: torch.nn.Module,
                  loader: Iterable[dict[str, Any]]) -> None:
    batch = next(iter(loader))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    base, int8 = op_family_times(float_model, ids, mask), op_family_times(int8_model, ids, mask)
    total_base, total_int8 = sum(base.values()), sum(int8.values())
    print(f"\nprofile of one batch ({ids.shape[0]} x {ids.shape[1]}), self CPU time:")
    print("| op family | float32 ms | share | int8 dynamic ms | share |")
    print("|---|---|---|---|---|")
    for family in [*OP_FAMILIES, "other"]:
        b, q = base.get(family, 0.0), int8.get(family, 0.0)
        print(f"| {family} | {1e3 * b:.0f} | {100 * b / total_base:.0f}% | {1e3 * q:.0f} | "
              f"{100 * q / total_int8:.0f}% |")
    share = base["linear"] / total_base
    gain = base["linear"] / max(int8.get("linear", 0.0), 1e-9)
    print(f"linear share s = {share:.2f}, int8/float linear-op speed-up g = {gain:.2f}: "
          f"whole-model bound 1 / ((1 - s) + s / g) = {1 / ((1 - share) + share / gain):.2f}x "
          f"(2x would need s >= {min(1.0, 0.5 / (1 - 1 / gain)) if gain > 1 else 1:.2f} at this g)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--length", type=int, default=251)
    parser.add_argument("--eval-rows", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--time-batches", type=int, default=2,
                        help="test batches (of 64) per timed pass; accuracy uses all")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and ONNX Runtime threads of the measurements (default 1: "
                        "a shared 2-core box)")
    parser.add_argument("--train-threads", type=int, default=None,
                        help="torch threads while training (default --threads)")
    parser.add_argument("--data", type=Path, default=DATA,
                        help="the promoter CSV (default the bundled shared/data file)")
    args = parser.parse_args()
    if args.quick:
        args.d_model, args.layers, args.steps, args.length, args.eval_rows = 32, 2, 60, 128, 128
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.train_threads or args.threads)
    torch.manual_seed(0)
    train, test = loaders(args)
    # The default HyenaGLTConfig (merging on, 8192 hash buckets) but width, depth, length, dropout.
    config = HyenaGLTConfig(d_model=args.d_model, n_layers=args.layers,
                            sequence_length=args.length, dropout=0.0)
    start = time.time()
    model = HyenaGLTForSequenceClassification(config)
    train_steps(model, train, args.steps, 1e-3)
    print(f"trained float model ({model.num_parameters():,} parameters, {args.steps} steps) in "
          f"{time.time() - start:.0f} s")

    variants: dict[str, torch.nn.Module] = {"float32": model}
    for kind, name in [("dynamic", "int8 dynamic"), ("weight_only", "int8 weight-only"),
                       ("bfloat16", "bfloat16")]:
        variants[name] = ModelQuantizer(QuantizationConfig(kind)).quantize(model)
    start = time.time()
    variants["pruned 50% + distilled (same width)"] = ModelPruner(PruningConfig(
        "magnitude", 0.5, iterations=2, fine_tune_steps=args.steps // 4, learning_rate=3e-4,
        distillation_alpha=0.7)).prune(model, train)
    student = HyenaGLTForSequenceClassification(config.replace(d_model=args.d_model // 2))
    KnowledgeDistiller(DistillationConfig(temperature=4.0, alpha=0.7, steps=args.steps,
                                          learning_rate=1e-3)).distill(model, student, train)
    variants["distilled d/2"] = student
    variants["distilled d/2 + pruned 50%"] = ModelPruner(PruningConfig(
        "magnitude", 0.5, fine_tune_steps=args.steps // 4, learning_rate=3e-4,
        distillation_alpha=0.7)).prune(student, train)
    print(f"pruned and distilled in {time.time() - start:.0f} s")
    torch.set_num_threads(args.threads)
    runners: dict[str, Callable] = dict(variants)
    exports = {}
    for fmt, name in [("onnx", "ONNX Runtime"), ("torch_export", "torch.export")]:
        exports[name] = ModelOptimizer(DeploymentConfig(fmt, "all")).optimize(model)
        runners[name] = exports[name]

    measured = {name: measure_model(m) for name, m in variants.items()}
    for name, runner in exports.items():
        measured[name] = measure_model(model)
        measured[name].size_bytes = runner.path.stat().st_size
    for name, runner in runners.items():
        measured[name].metric = evaluate_accuracy(runner, test)
    timed = [batch for batch, _ in zip(test, range(args.time_batches), strict=False)]
    throughput = interleaved_throughput(runners, timed, args.rounds)

    base, base_speed = measured["float32"], throughput["float32"]
    print(f"\nhuman_nontata_promoters, {len(test.dataset)} test sequences of {args.length} nt, "
          f"d_model {args.d_model}, {args.layers} layers, {args.threads} CPU thread(s); "
          + ", ".join(f"{n} max |export - PyTorch| = {r.max_abs_diff:.2g}"
                      for n, r in exports.items()))
    print("| variant | accuracy | delta (points) | size (KB) | size x | non-zero params | "
          "seqs/s | throughput x |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in measured.items():
        print(f"| {name} | {100 * m.metric:.2f} | {100 * (m.metric - base.metric):+.2f} | "
              f"{m.size_bytes / 1024:.0f} | {m.size_bytes / base.size_bytes:.2f} | "
              f"{m.nonzero_parameters:,} | {throughput[name]:.0f} | "
              f"{throughput[name] / base_speed:.2f} |")
    print_profile(model, variants["int8 dynamic"], test)


if __name__ == "__main__":
    main()
