"""Compression benchmark on the bundled promoter task: accuracy, size and CPU throughput of each
compressed variant relative to the float model, in one run.

Run from the repository root::

    python benchmarks/bench_compression.py            # default: d_model 64, 600 steps
    python benchmarks/bench_compression.py --quick    # smoke run (small model, few steps)

Data: ``shared/data/genomic_benchmarks/human_nontata_promoters/test.csv.gz`` (the only split
stored), split 70/30 stratified with ``random_state=0`` as in ``shared/NOTES.md``; the model is
trained here on the 70% for ``--steps`` batches, and every variant is scored on (a sample of) the
30%. Throughput is the best of ``--repeats`` passes (CPU, ``--threads`` threads).

Targets (issue 6): int8 dynamic quantization >= 2x throughput at <= 0.5 point accuracy loss;
50% pruning + distillation <= 1 point loss.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
import torch
from sklearn.model_selection import train_test_split
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
    measure_model,
)
from hyena_glt.optimization.training import train_steps

DATA = (Path(__file__).resolve().parents[2] / "shared" / "data" / "genomic_benchmarks"
        / "human_nontata_promoters" / "test.csv.gz")


def loaders(args: argparse.Namespace) -> tuple[DataLoader, DataLoader]:
    frame = pd.read_csv(DATA)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--length", type=int, default=251)
    parser.add_argument("--eval-rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.quick:
        args.d_model, args.steps, args.length, args.eval_rows = 32, 60, 128, 256
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train, test = loaders(args)
    config = HyenaGLTConfig(vocab_size=1024, d_model=args.d_model, n_layers=2,
                            sequence_length=args.length, num_heads=4, filter_order=32,
                            dropout=0.0, use_dynamic_merging=False)
    start = time.time()
    model = HyenaGLTForSequenceClassification(config)
    train_steps(model, train, args.steps, 1e-3)
    print(f"trained float model ({model.num_parameters():,} parameters, {args.steps} steps) in "
          f"{time.time() - start:.0f} s")

    def measure(variant, runner=None):
        return measure_model(variant, test, repeats=args.repeats, runner=runner)

    rows = {"float32": measure(model)}
    rows["int8 dynamic"] = measure(ModelQuantizer(QuantizationConfig("dynamic")).quantize(model))
    rows["bfloat16"] = measure(ModelQuantizer(QuantizationConfig("bfloat16")).quantize(model))
    pruned = ModelPruner(PruningConfig("magnitude", 0.5, iterations=2,
                                       fine_tune_steps=args.steps // 6,
                                       learning_rate=3e-4)).prune(model, train)
    rows["pruned 50% + fine-tune"] = measure(pruned)
    student = HyenaGLTForSequenceClassification(config.replace(d_model=args.d_model // 2))
    KnowledgeDistiller(DistillationConfig(temperature=4.0, alpha=0.7, steps=args.steps,
                                          learning_rate=1e-3)).distill(model, student, train)
    rows["distilled d/2"] = measure(student)
    rows["distilled d/2 + pruned 50%"] = measure(ModelPruner(PruningConfig(
        "magnitude", 0.5, fine_tune_steps=args.steps // 6, learning_rate=3e-4)).prune(
            student, train))
    onnx = ModelOptimizer(DeploymentConfig("onnx", "all")).optimize(model)
    rows["onnx (ORT)"] = measure(model, runner=onnx)
    rows["onnx (ORT)"].size_bytes = onnx.path.stat().st_size

    base = rows["float32"]
    print(f"\nhuman_nontata_promoters, {len(test.dataset)} test sequences of {args.length} nt, "
          f"{args.threads} CPU threads (ONNX max |ORT - PyTorch| = {onnx.max_abs_diff:.2g})")
    print("| variant | accuracy | delta (points) | size (KB) | size x | non-zero params | "
          "seqs/s | throughput x |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in rows.items():
        print(f"| {name} | {100 * m.metric:.2f} | {100 * (m.metric - base.metric):+.2f} | "
              f"{m.size_bytes / 1024:.0f} | {m.size_bytes / base.size_bytes:.2f} | "
              f"{m.nonzero_parameters:,} | {m.throughput_seqs_per_s:.0f} | "
              f"{m.throughput_seqs_per_s / base.throughput_seqs_per_s:.2f} |")


if __name__ == "__main__":
    main()
