"""Evaluation (API.md "Examples / Evaluation Example"): GenomicMetrics and ModelBenchmark.

Trains two small Hyena-GLT classifiers for a few steps (1 and 2 layers) on the bundled promoter
sequences, scores one with ``GenomicMetrics.compute_all`` and benchmarks both beside a k-mer
logistic-regression baseline with ``ModelBenchmark`` on the same held-out sequences.

    python examples/04_evaluation.py --quick

Look at: the metric dictionary (accuracy, F1, AUROC, MCC, confusion matrix), then the benchmark
table: one row per model x metric, with parameters, stored size, latency and throughput (the
k-mer baseline is the bar to clear; the tiny, briefly trained models may not clear it).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from _common import parser, promoter_split, small_config

from hyena_glt.data import DNATokenizer, GenomicDataset
from hyena_glt.evaluation import (
    BenchmarkTask,
    GenomicMetrics,
    KmerLogisticRegression,
    ModelBenchmark,
)
from hyena_glt.model import HyenaGLTForSequenceClassification
from hyena_glt.training import HyenaGLTTrainer, seed_everything


def train_classifier(n_layers: int, dataset: GenomicDataset, out: str, epochs: int
                     ) -> HyenaGLTForSequenceClassification:
    seed_everything(0)
    config = small_config(n_layers=n_layers, num_classes=2, num_epochs=epochs,
                          task_type="sequence_classification")
    model = HyenaGLTForSequenceClassification(config)
    HyenaGLTTrainer(model, config, dataset, output_dir=out, show_progress=False).train()
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__).parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    train, test = promoter_split(*((96, 64) if args.quick else (1400, 600)))
    tokenizer = DNATokenizer()
    train_dataset, test_dataset = (
        GenomicDataset(f["sequence"].tolist(), f["label"].tolist(), tokenizer=tokenizer,
                       max_length=256) for f in (train, test))
    epochs = 1 if args.quick else 3
    model1 = train_classifier(1, train_dataset, str(args.out / "eval_model1"), epochs)
    model2 = train_classifier(2, train_dataset, str(args.out / "eval_model2"), epochs)

    # Evaluate single model
    with torch.no_grad():
        ids = torch.stack([test_dataset[i]["input_ids"] for i in range(len(test_dataset))])
        mask = torch.stack([test_dataset[i]["attention_mask"] for i in range(len(test_dataset))])
        predictions = model2(ids, attention_mask=mask).logits.softmax(-1).numpy()
    targets = np.asarray(test["label"].tolist())
    metrics = GenomicMetrics()
    results = metrics.compute_all(predictions, targets, task_type="sequence_classification")
    print("GenomicMetrics.compute_all (2-layer model, held-out):")
    for key, value in results.items():
        print(f"  {key}: {value}")

    # Benchmark multiple models (the k-mer baseline is fitted on the task's train part)
    task = BenchmarkTask("promoters", train["sequence"].tolist(), np.asarray(train["label"]),
                         test["sequence"].tolist(), targets, tokenizer=tokenizer)
    benchmark = ModelBenchmark(
        models={"hyena-1layer": model1, "hyena-2layer": model2,
                "kmer-logreg": KmerLogisticRegression()},
        datasets=[task],
        metrics=["accuracy", "f1", "auc"],
        latency_repeats=2,
    )
    benchmark_results = benchmark.run()
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(benchmark_results.pivot_table(index="model", columns="metric", values="value"))
        print(benchmark_results.groupby("model")[["n_parameters", "size_bytes", "latency_ms"]]
              .first())
    args.out.mkdir(parents=True, exist_ok=True)
    benchmark_results.to_csv(args.out / "benchmark_results.csv", index=False)
    print(f"wrote {args.out / 'benchmark_results.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
