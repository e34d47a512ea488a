"""``hyena-glt score-variants | evaluate | benchmark | report``: the evaluation stage.

- ``score-variants``: zero-shot Δ log-likelihood of every variant of a ``variants`` shard
  directory under a causal LM -> one table row per variant (Parquet, CSV or TSV).
- ``evaluate``: a model on a data set -> metrics JSON. A ``variants`` shard directory is
  scored zero-shot and evaluated with position-grouped folds (AUROC, Spearman); a
  sequence/label table is classified with a fine-tuned sequence classifier.
- ``benchmark``: fine-tuned classifiers beside the k-mer and CNN baselines on the same split
  -> ``results.parquet``, ``results.csv``, ``predictions.parquet``.
- ``report``: a benchmark's results -> one self-contained HTML file.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from ..errors import ConfigurationError

__all__ = ["register"]

logger = logging.getLogger(__name__)


def _tokenizer(model_dir: Path):
    from ..data.tokenizers import CharTokenizer, DNATokenizer

    path = model_dir / "tokenizer.json"
    return CharTokenizer.load(path) if path.is_file() else DNATokenizer()


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="CPU threads for torch (default: torch's choice); match the "
                        "Snakemake rule's threads")


def _set_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        import torch

        if args.threads < 1:
            raise ConfigurationError(f"--threads {args.threads}: must be >= 1")
        torch.set_num_threads(args.threads)


def _write_json(data: dict, path: Path) -> None:
    from ..io import atomic_file

    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=float) + "\n")


def _register_score(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score-variants", help="zero-shot variant scores (Δ log-likelihood alt vs ref)",
        description="Score each variant of a 'variants' shard directory (hyena-glt ingest vcf) "
        "by log P(alt window) - log P(ref window) under a causal LM; negative = predicted "
        "damaging. Writes one row per variant.")
    parser.add_argument("--model", type=Path, required=True, help="causal LM directory")
    parser.add_argument("--variants", type=Path, required=True, help="variants shard directory")
    parser.add_argument("--out", type=Path, required=True,
                        help="score table: .parquet, .tsv or anything else for CSV")
    parser.add_argument("--batch-size", type=int, default=32, help="variants per forward pass")
    parser.add_argument("--strand-average", action="store_true",
                        help="average both strands (shards need --reverse-complement)")
    parser.add_argument("--reduction", choices=("sum", "mean"), default="sum",
                        help="window log-likelihood: total (default) or per token")
    _add_threads(parser)
    parser.set_defaults(func=_run_score)


def _scores(args: argparse.Namespace):
    _set_threads(args)
    from ..evaluation.variant_effect import score_variants
    from ..model import HyenaGLTForCausalLM

    model = HyenaGLTForCausalLM.from_pretrained(args.model)
    return score_variants(model, args.variants, batch_size=args.batch_size,
                          strand_average=args.strand_average, reduction=args.reduction)


def _save_table(frame, path: Path) -> None:
    from ..evaluation.benchmark import save_results
    from ..io import atomic_file

    if path.suffix == ".tsv":
        with atomic_file(path) as tmp:
            frame.to_csv(tmp, sep="\t", index=False)
    else:
        save_results(frame, path)


def _run_score(args: argparse.Namespace) -> int:
    frame = _scores(args)
    _save_table(frame, args.out)
    logger.info("wrote %d variant scores to %s", len(frame), args.out)
    return 0


def _register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="metrics of a model on a data set -> JSON",
        description="A variants shard directory is scored zero-shot with a causal LM and "
        "evaluated (AUROC of the damaging label, Spearman against --function-score-column) "
        "overall and over folds grouped by position bin; a sequence/label table is classified "
        "with a fine-tuned sequence classifier (GenomicMetrics).")
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    parser.add_argument("--data", type=Path, required=True,
                        help="variants shard directory, or CSV/TSV/Parquet with sequence,label")
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--strand-average", action="store_true")
    parser.add_argument("--reduction", choices=("sum", "mean"), default="sum")
    parser.add_argument("--function-score-column", default=None,
                        help="variants: measured function score column (kept at ingest)")
    parser.add_argument("--folds", type=int, default=5, help="variants: position-grouped folds")
    parser.add_argument("--bin-size", type=int, default=100,
                        help="variants: bp per position group (default 100)")
    parser.add_argument("--scores-out", type=Path, default=None,
                        help="variants: also write the per-variant score table here")
    parser.add_argument("--max-length", type=int, default=None,
                        help="table: truncate sequences to this many tokens")
    _add_threads(parser)
    parser.set_defaults(func=_run_evaluate, variants=None)


def _run_evaluate(args: argparse.Namespace) -> int:
    if (args.data / "manifest.json").is_file():
        from ..evaluation.variant_effect import evaluate_variant_scores

        args.variants = args.data
        frame = _scores(args)
        if args.scores_out is not None:
            _save_table(frame, args.scores_out)
        metrics = evaluate_variant_scores(frame, function_score_column=args.function_score_column,
                                          n_splits=args.folds, bin_size=args.bin_size)
    else:
        _set_threads(args)
        from ..evaluation.benchmark import TorchSequenceClassifier, read_sequence_table
        from ..evaluation.metrics import GenomicMetrics
        from ..model import HyenaGLTForSequenceClassification

        sequences, labels, names = read_sequence_table(args.data)
        model = HyenaGLTForSequenceClassification.from_pretrained(args.model)
        classifier = TorchSequenceClassifier(model, _tokenizer(args.model), args.max_length,
                                             args.batch_size)
        metrics = GenomicMetrics().compute_all(classifier.predict_proba(list(sequences)),
                                               labels, "sequence_classification",
                                               label_names=names)
    _write_json(metrics, args.out)
    logger.info("wrote %s: %s", args.out, {k: v for k, v in metrics.items()
                                            if "auroc" in k and "/" not in k or k == "accuracy"})
    return 0


def _register_benchmark(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark", help="models beside the k-mer and CNN baselines -> results table",
        description="Split each table once (stratified), fit the baselines on the train part, "
        "score every model on the test part; writes results.parquet, results.csv and "
        "predictions.parquet into --out.")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR",
                        help="fine-tuned sequence classifier directory; repeatable")
    parser.add_argument("--data", action="append", type=Path, required=True,
                        help="CSV/TSV/Parquet with sequence,label; repeatable")
    parser.add_argument("--baselines", default="kmer,cnn",
                        help="comma-separated baselines: kmer, cnn, or none")
    parser.add_argument("--metrics", nargs="+", default=["accuracy", "f1", "auc"])
    parser.add_argument("--test-size", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0, help="split and CNN seed")
    parser.add_argument("--max-rows", type=int, default=None,
                        help="stratified subsample of each table first")
    parser.add_argument("--cnn-epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    _add_threads(parser)
    parser.set_defaults(func=_run_benchmark)


def _run_benchmark(args: argparse.Namespace) -> int:
    from ..evaluation.baselines import CNNBaseline, KmerLogisticRegression
    from ..evaluation.benchmark import BenchmarkTask, ModelBenchmark, TorchSequenceClassifier
    from ..io import atomic_directory
    from ..model import HyenaGLTForSequenceClassification

    _set_threads(args)
    models = {}
    for spec in args.model:
        name, sep, directory = spec.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"--model {spec!r}: expected NAME=DIR")
        model = HyenaGLTForSequenceClassification.from_pretrained(directory)
        models[name] = TorchSequenceClassifier(model, _tokenizer(Path(directory)),
                                               batch_size=args.batch_size)
    baselines = {"kmer": lambda: KmerLogisticRegression(),
                 "cnn": lambda: CNNBaseline(epochs=args.cnn_epochs, seed=args.seed)}
    for name in filter(None, args.baselines.split(",")):
        if name == "none":
            continue
        if name not in baselines:
            raise ConfigurationError(f"--baselines: unknown {name!r}; choose from kmer, cnn")
        models[f"{name}_baseline"] = baselines[name]()
    tasks = [BenchmarkTask.from_table(path, test_size=args.test_size, random_state=args.seed,
                                      max_rows=args.max_rows) for path in args.data]
    benchmark = ModelBenchmark(models, tasks, args.metrics, batch_size=args.batch_size)
    results = benchmark.run()
    with atomic_directory(args.out) as tmp:
        results.to_parquet(tmp / "results.parquet", index=False)
        results.to_csv(tmp / "results.csv", index=False)
        benchmark.predictions_table().to_parquet(tmp / "predictions.parquet", index=False)
    logger.info("wrote %s:\n%s", args.out,
                results.pivot_table(index="model", columns="metric", values="value"))
    return 0


def _register_report(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="benchmark results -> one self-contained HTML report",
        description="Summary table, metric bar charts, ROC/PR curves, confusion matrices, "
        "training curves, compression Pareto plot and provenance in one HTML file with inline "
        "CSS and SVG (opens offline in any browser).")
    parser.add_argument("--results", type=Path, required=True,
                        help="results.parquet/.csv of hyena-glt benchmark")
    parser.add_argument("--predictions", type=Path, default=None,
                        help="predictions.parquet of hyena-glt benchmark")
    parser.add_argument("--training-log", type=Path, action="append", default=[],
                        help="metrics.jsonl of a training run; repeatable")
    parser.add_argument("--compression-report", type=Path, action="append", default=[],
                        help="compression report JSON; repeatable")
    parser.add_argument("--config", type=Path, default=None,
                        help="config.json/YAML to print under provenance")
    parser.add_argument("--data-file", type=Path, action="append", default=[],
                        help="input file whose SHA-256 goes under provenance; repeatable")
    parser.add_argument("--title", default="Hyena-GLT performance report")
    parser.add_argument("--out", type=Path, required=True, help="HTML file")
    parser.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    import yaml

    from ..errors import DataError
    from ..evaluation.report import PerformanceAnalyzer

    config = None
    if args.config is not None:
        try:
            config = yaml.safe_load(args.config.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise DataError(f"cannot read config: {err}", path=str(args.config)) from None
    PerformanceAnalyzer(args.title).generate_report(
        args.results, args.out, predictions=args.predictions, training_logs=args.training_log,
        compression_reports=args.compression_report, config=config, data_files=args.data_file)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``score-variants``, ``evaluate``, ``benchmark`` and ``report``."""
    for add in (_register_score, _register_evaluate, _register_benchmark, _register_report):
        add(subparsers)
