"""Per-base prediction throughput: bases per second and peak memory of ``hyena-glt predict`` on
one long contig, for the float model, its int8 (dynamic) quantization and its ONNX export, beside
the per-base k-mer/ORF logistic-regression baseline's prediction speed, in one run.

Run from the repository root::

    python benchmarks/bench_predict.py            # 100 kb (about a minute or two on 2 cores)
    python benchmarks/bench_predict.py --full     # 1 Mb, the issue's measurement
    python benchmarks/bench_predict.py --model results/models/finetuned/chloroplast_cds

Sequence: the first ``--length`` bases of the Klebsiella pneumoniae HS11286 chromosome
(``shared/data/genomes/klebsiella_pneumoniae``; without it, the 200 kb excerpt in ``resources/``,
repeated to the length asked). Model: ``--model`` (a per-base model directory), else the example
workflow's CDS model architecture (``config/config.yaml``: pretrain.model with the per-base
fine-tuning overrides, rc_average on) with random weights: throughput does not depend on the
weights. Each model runs in its own process (``predict_tracks``: windows of the model's length,
``--batch-size`` windows at a time, bedGraph + BED written), so the peak RSS of that process is
the model's alone; timing excludes loading. Throughput goals (issue 18): a 5 Mb genome in under
10 minutes (8.3 kb/s) on 2 cores, with a peak memory that does not grow with the contig (compare
the default run with ``--full``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_GENOME = (REPO.parent / "shared" / "data" / "genomes" / "klebsiella_pneumoniae"
                 / "Klebs_HS11286.fna.gz")
LOCAL_GENOME = REPO / "resources" / "genomes" / "Klebs_HS11286.CP003200.1_1-200000.fa.gz"


def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss
    would carry the parent's peak, from building the exports, into every worker)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write_sequence(path: Path, length: int) -> str:
    """The benchmark contig as a BGZF FASTA at ``path``; returns where it came from."""
    import pysam

    source = SHARED_GENOME if SHARED_GENOME.is_file() else LOCAL_GENOME
    with pysam.FastaFile(str(source)) as fasta:
        name = fasta.references[0]
        sequence = fasta.fetch(name, 0, min(length, fasta.get_reference_length(name))).upper()
    sequence = (sequence * (length // len(sequence) + 1))[:length]
    plain = path.with_suffix("")
    plain.write_text(">bench\n" + "\n".join(sequence[i:i + 80]
                                            for i in range(0, len(sequence), 80)) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    pysam.faidx(str(path))
    repeated = "" if len(sequence) <= 200_000 or source == SHARED_GENOME else ", repeated"
    return f"{source.name} [0, {length:,}){repeated}"


def _example_model(directory: Path) -> None:
    """The example workflow's per-base CDS architecture, random weights."""
    import torch
    import yaml

    from hyena_glt.config import HyenaGLTConfig
    from hyena_glt.data.tokenizers import DNATokenizer
    from hyena_glt.model import HyenaGLTForTokenClassification

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    fields = {k: v for k, v in config["pretrain"]["model"].items()
              if k not in ("batch_size", "learning_rate", "warmup_steps")}
    overrides = config["finetune"]["by_task_type"]["token_classification"]["overrides"]
    torch.manual_seed(0)
    model = HyenaGLTForTokenClassification(HyenaGLTConfig(
        **fields, task_type="token_classification", dropout=0.0,
        rc_average=overrides.get("rc_average", False)))
    model.save_pretrained(directory, tokenizer=DNATokenizer())


def _variants(model: Path, work: Path) -> dict[str, Path]:
    """Float, int8 (dynamic) and ONNX model directories of ``model``."""
    import numpy as np
    import torch

    from hyena_glt.data.tokenizers import DNATokenizer
    from hyena_glt.optimization import (
        DeploymentConfig,
        ModelOptimizer,
        ModelQuantizer,
        load_compressed,
        save_compressed,
    )

    float_model = load_compressed(model)
    save_compressed(ModelQuantizer().quantize(float_model), work / "int8")
    length = float_model.config.sequence_length
    rng = np.random.default_rng(0)
    ids = torch.tensor(np.stack([DNATokenizer().encode_array("".join(rng.choice(list("ACGT"),
                                                                               length)))
                                 for _ in range(2)]).astype(np.int64))
    (work / "onnx").mkdir()
    ModelOptimizer(DeploymentConfig(output_path=str(work / "onnx" / "model.onnx"))).optimize(
        float_model, (ids, torch.ones_like(ids)))
    return {"float32": model, "int8 dynamic": work / "int8", "onnx": work / "onnx"}


def _worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    out = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    if args.worker == "kmer":
        import numpy as np
        import pysam

        from hyena_glt.data.tokenizers import DNATokenizer
        from hyena_glt.evaluation.token_baselines import OrfKmerLogisticRegression

        with pysam.FastaFile(str(args.fasta)) as fasta:
            ids = DNATokenizer().encode_array(fasta.fetch("bench"))
        window = 2048
        rows = ids[: len(ids) // window * window].reshape(-1, window)
        rng = np.random.default_rng(0)
        fit = rows[:10]  # speed only: labels are random
        baseline = OrfKmerLogisticRegression().fit(fit, rng.integers(0, 2, fit.shape))
        start = time.perf_counter()
        baseline.predict_proba(rows)
        seconds, bases = time.perf_counter() - start, rows.size
    else:
        from hyena_glt.prediction import load_predictor, predict_tracks

        predictor = load_predictor(args.worker, "cpu")
        start = time.perf_counter()
        counts = predict_tracks(predictor, args.fasta, out, batch_size=args.batch_size)
        seconds, bases = time.perf_counter() - start, counts["bases"]
    print(json.dumps({"seconds": seconds, "bases": int(bases), "peak_mb": _peak_mb()}))


def _measure(target: str, fasta: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", target, "--fasta", str(fasta),
               "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{target}: failed\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _size_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.iterdir()
               if p.suffix in (".safetensors", ".onnx", ".data")) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=100_000, help="bases (default 100 kb)")
    parser.add_argument("--full", action="store_true", help="1 Mb (overrides --length)")
    parser.add_argument("--model", type=Path, default=None, help="per-base model directory")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--fasta", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)
    length = 1_000_000 if args.full else args.length
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        work = Path(tmp)
        fasta = work / "bench.fa.gz"
        source = _write_sequence(fasta, length)
        model = args.model
        if model is None:
            model = work / "float"
            _example_model(model)
        print(f"sequence: {source}; model: {args.model or 'example CDS architecture, random weights'}"
              f"; batch {args.batch_size} windows, {args.threads} threads", flush=True)
        rows = []
        for name, directory in _variants(model, work).items():
            result = _measure(str(directory), fasta, args)
            rows.append((name, result, f"{_size_mb(directory):.1f}"))
        rows.append(("k-mer/ORF LR baseline", _measure("kmer", fasta, args), "-"))
    print("\n| model | bases | seconds | bases/s | peak RSS (MB) | weights (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, result, size in rows:
        print(f"| {name} | {result['bases']:,} | {result['seconds']:.1f} | "
              f"{result['bases'] / result['seconds']:,.0f} | {result['peak_mb']:,.0f} | {size} |")


if __name__ == "__main__":
    main()
