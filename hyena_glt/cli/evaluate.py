"""``hyena-glt score-variants | evaluate | benchmark | report``: the evaluation stage.

- ``score-variants``: zero-shot Δ log-likelihood of every variant of a ``variants`` shard
  directory under a causal LM -> one table row per variant (Parquet, CSV or TSV).
- ``evaluate``: a model on a data set -> a tidy results table (``.parquet``/``.csv``/``.tsv``:
  ``model, dataset, metric, value``) or metrics JSON. A ``variants`` shard directory is scored
  zero-shot and evaluated with position-grouped folds (AUROC, Spearman); an ``annotation`` shard
  directory per base with a token classifier; a ``table`` shard directory or sequence/label
  table with a sequence classifier (a regressor for real-valued labels).
- ``benchmark``: models beside the k-mer and CNN baselines on pre-split data (baselines fitted
  on the training part, everything scored on the test part) -> ``results.parquet``,
  ``results.csv``, ``predictions.parquet``.
- ``report``: result and prediction tables -> one self-contained HTML file (scorecard with
  bootstrap intervals and verdicts, Plotly figures, timings, provenance).

Classifier, regressor and token-classifier model directories may be fine-tuned, compressed
(``hyena-glt quantize|prune|distill``) or ONNX exports (``hyena-glt export``); see
:mod:`hyena_glt.evaluation.models`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .arguments import non_negative_int, positive_int
from .threads import add_threads_option, apply_threads

__all__ = ["register"]

logger = logging.getLogger(__name__)

#: ``evaluate --out`` suffixes that get a tidy table (anything else: JSON).
TABLE_SUFFIXES = (".parquet", ".csv", ".tsv")


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
    parser.add_argument("--batch-size", type=positive_int, default=32, help="variants per forward pass")
    parser.add_argument("--strand-average", action=argparse.BooleanOptionalAction,
                        default=None, help="average the Δ of both strands (default: whenever "
                        "the shards hold them, i.e. were ingested with --reverse-complement)")
    parser.add_argument("--reduction", choices=("sum", "mean"), default="sum",
                        help="window log-likelihood: total (default) or per token")
    add_threads_option(parser)
    parser.set_defaults(func=_run_score)


def _scores(args: argparse.Namespace, model: Any, variants: Path):
    from ..evaluation.variant_effect import score_variants

    return score_variants(model, variants, batch_size=args.batch_size,
                          strand_average=args.strand_average, reduction=args.reduction)


def _save_table(frame, path: Path) -> None:
    from ..evaluation.benchmark import save_results

    save_results(frame, path)


def _run_score(args: argparse.Namespace) -> int:
    from ..model import HyenaGLTForCausalLM

    apply_threads(args)
    frame = _scores(args, HyenaGLTForCausalLM.from_pretrained(args.model), args.variants)
    _save_table(frame, args.out)
    logger.info("wrote %d variant scores to %s", len(frame), args.out)
    return 0


def _register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="metrics of models on a data set -> tidy table or JSON",
        description="A 'variants' shard directory is scored by a fine-tuned variant-effect "
        "model (HyenaGLTForVariantEffect: classification or regression metrics), or zero-shot "
        "with a causal LM and evaluated (AUROC of the damaging label, Spearman against "
        "--function-score-column) overall and over folds grouped by position bin; an "
        "'annotation' shard directory is "
        "scored per base with a token classifier (accuracy, F1, MCC over real bases); a 'table' "
        "shard directory or CSV/TSV/Parquet with sequence,label is classified with a sequence "
        "classifier, or, with real-valued labels, scored with a regressor (MSE, R², Spearman). "
        "The model directory may be fine-tuned, compressed or an ONNX export. --out ending in .parquet/.csv/.tsv: rows model,dataset,metric,value; "
        "anything else: a JSON object of all metrics.")
    parser.add_argument("--model", action="append", required=True, metavar="[NAME=]DIR",
                        help="model directory or registered name (e.g. hyena-glt-base), "
                        "labelled NAME in the table (default: --name or the directory's name); "
                        "repeat to evaluate several models")
    parser.add_argument("--data", type=Path, required=True, metavar="DATA",
                        help="variants/annotation/table shard directory, or CSV/TSV/Parquet "
                        "with sequence,label")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="tidy table (.parquet, .csv, .tsv) or metrics JSON")
    parser.add_argument("--name", default=None, metavar="LABEL",
                        help="model label in the table (default: the model directory's name)")
    parser.add_argument("--dataset", default=None, metavar="LABEL",
                        help="task label in the table (default: the data's name)")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N")
    parser.add_argument("--max-length", type=positive_int, default=None, metavar="N",
                        help="table/annotation: truncate sequences to N tokens (default: the "
                        "model's sequence_length or exported length); variants: the "
                        "fine-tuned pair model reads N bases around each variant, as in "
                        "fine-tuning (zero-shot scoring reads whole windows)")
    parser.add_argument("--strand-average", action=argparse.BooleanOptionalAction,
                        default=None, help="variants, zero-shot: average the Δ of both strands "
                        "(default: whenever the shards hold them)")
    parser.add_argument("--reduction", choices=("sum", "mean"), default="sum")
    parser.add_argument("--function-score-column", default=None,
                        help="variants: measured function score column (kept at ingest)")
    parser.add_argument("--folds", type=positive_int, default=5, help="variants: position-grouped folds")
    parser.add_argument("--bin-size", type=positive_int, default=100,
                        help="variants: bp per position group (default 100)")
    parser.add_argument("--scores-out", type=Path, default=None,
                        help="variants: also write the per-variant score table here")
    parser.add_argument("--train", type=Path, default=None, metavar="DATA",
                        help="the training part the baselines are fit on (the one the models "
                        "were fine-tuned on)")
    parser.add_argument("--baselines", default="none",
                        help="comma-separated baselines fit on --train: orf_kmer, cnn "
                        "(annotation), context (variants), kmer, cnn (tables; regression: "
                        "kmer), all (those that apply) or none")
    parser.add_argument("--cnn-epochs", type=positive_int, default=5, help="per-base CNN baseline")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="baseline seed")
    parser.add_argument("--predictions-out", type=Path, default=None, metavar="FILE",
                        help="per-example test predictions of every model and baseline (the "
                        "report's intervals and figures)")
    add_threads_option(parser)
    parser.set_defaults(func=_run_evaluate)


def _data_kind(path: Path) -> str:
    """The shard directory's kind, or ``"table"`` for a CSV/TSV/Parquet file."""
    from ..data.shards import read_manifest

    return read_manifest(path)["kind"] if path.is_dir() else "table"


def _evaluate_table(args: argparse.Namespace, name: str, model_dir: Path, dataset: str
                    ) -> tuple[dict, Any]:
    """Sequence classification, or regression when the labels are real values; metrics and
    per-example predictions."""
    import numpy as np

    from ..data.datasets import GenomicDataset
    from ..evaluation.benchmark import complete_label_names, read_labelled_sequences
    from ..evaluation.metrics import GenomicMetrics, stored_threshold
    from ..evaluation.models import load_classifier, load_model
    from ..evaluation.predictions import predictions_frame

    data = GenomicDataset(data_path=args.data, max_length=None, padding=None)
    if data.labels is not None and data.label2id is None:
        from ..evaluation.regression import predict_regressor

        model = load_model(model_dir, "HyenaGLTForRegression")
        values, targets = predict_regressor(model, args.data, args.batch_size, args.max_length)
        metrics = {**GenomicMetrics().regression(values, targets), "n_samples": len(targets)}
        return metrics, predictions_frame(name, dataset, "regression", targets[:, 0],
                                          values[:, 0], np.arange(len(targets)))
    part = read_labelled_sequences(data)
    classifier = load_classifier(model_dir, part.tokenizer, args.max_length, args.batch_size)
    probs = classifier.predict_proba(part.sequences)
    threshold = stored_threshold(getattr(getattr(classifier, "model", None), "config", None))
    metrics = GenomicMetrics().compute_all(
        probs, part.labels, "sequence_classification",
        label_names=complete_label_names(part.label_names, probs.shape[1]),
        decision_threshold=threshold if probs.shape[1] == 2 else None)
    return metrics, predictions_frame(name, dataset, "sequence_classification", part.labels,
                                      probs, np.arange(len(part.labels)))


def _evaluate_model(args: argparse.Namespace, name: str, model_dir: Path, kind: str,
                    dataset: str) -> tuple[dict, Any]:
    """All metrics of one model on ``args.data`` (a shard directory of ``kind`` or a table),
    and its per-example predictions."""
    from ..errors import DataError, ModelError
    from ..evaluation import predictions
    from ..evaluation.models import load_model

    if kind == "variants":
        from ..evaluation import variant_effect

        model = load_model(model_dir)
        if getattr(model, "paired_inputs", False):
            frame = predictions.variant_model_predictions(
                model, args.data, name, dataset, args.batch_size, args.max_length,
                args.bin_size)
            return predictions.prediction_metrics(frame), frame
        if type(model).__name__ != "HyenaGLTForCausalLM":
            raise ModelError(f"{model_dir}: holds a {type(model).__name__}; variants are "
                             "scored by a fine-tuned HyenaGLTForVariantEffect or zero-shot by a "
                             "HyenaGLTForCausalLM")
        scores = _scores(args, model, args.data)
        if args.scores_out is not None:
            _save_table(scores, args.scores_out)
        metrics = variant_effect.evaluate_variant_scores(
            scores, function_score_column=args.function_score_column, n_splits=args.folds,
            bin_size=args.bin_size)
        return metrics, predictions.zero_shot_predictions(scores, name, dataset, args.bin_size)
    if kind == "annotation":
        from ..evaluation.annotation import token_metrics
        from ..evaluation.metrics import stored_threshold

        model = load_model(model_dir, "HyenaGLTForTokenClassification")
        probs, target, window, position = predictions.token_predictions(
            model, args.data, args.batch_size, args.max_length)
        frame = predictions.predictions_frame(name, dataset, "token_classification", target,
                                              probs, window, position)
        return token_metrics(probs, target, window, args.data,
                             stored_threshold(getattr(model, "config", None))), frame
    if kind == "table":
        return _evaluate_table(args, name, model_dir, dataset)
    raise DataError(f"cannot evaluate a {kind!r} shard directory; expected variants, "
                    "annotation or table", path=str(args.data))


def _baselines(args: argparse.Namespace, kind: str, dataset: str) -> dict[str, Any]:
    """``{name: predictions}`` of the baselines asked for, fit on ``args.train``."""
    from ..evaluation import predictions

    chosen = [b for b in args.baselines.split(",") if b and b != "none"]
    if not chosen:
        return {}
    allowed = {"annotation": predictions.TOKEN_BASELINES,
               "variants": predictions.VARIANT_BASELINES}.get(kind) or \
        predictions.table_baselines(args.data)
    chosen = list(allowed) if chosen == ["all"] else chosen
    predictions.check_baselines(chosen, allowed, kind)
    if kind == "annotation":
        return {f"{b}_baseline": predictions.token_baseline_predictions(
            b, args.train, args.data, dataset, args.seed, args.cnn_epochs, args.max_length)
            for b in chosen}
    if kind == "variants":
        return {f"{b}_baseline": predictions.variant_baseline_predictions(
            b, args.train, args.data, dataset, args.seed, args.bin_size) for b in chosen}
    return {f"{b}_baseline": predictions.table_baseline_predictions(
        b, args.train, args.data, dataset, args.seed, args.cnn_epochs) for b in chosen}


def _model_dir(name_or_path: str) -> Path:
    """A model directory (torch or ONNX export) as given, else a registered model's directory
    (e.g. ``hyena-glt-base``)."""
    from ..training.registry import resolve_model

    path = Path(name_or_path)
    return path if path.is_dir() else resolve_model(name_or_path)


def _run_evaluate(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..evaluation.predictions import prediction_metrics

    apply_threads(args)
    kind = _data_kind(args.data)
    specs = [spec.partition("=") for spec in args.model]
    models = {name if sep else (args.name if len(specs) == 1 and args.name else
                                Path(name).name): _model_dir(directory if sep else name)
              for name, sep, directory in specs}
    if len(models) != len(specs):
        raise ConfigurationError(f"--model: two models share a name ({', '.join(args.model)})")
    if args.scores_out is not None and len(models) > 1:
        raise ConfigurationError("--scores-out needs a single --model")
    if args.baselines not in ("", "none") and args.train is None:
        raise ConfigurationError("--baselines needs --train (the part they are fit on)")
    dataset = args.dataset or args.data.name.split(".")[0]
    evaluated = {name: _evaluate_model(args, name, directory, kind, dataset)
                 for name, directory in models.items()}
    for name, frame in _baselines(args, kind, dataset).items():
        evaluated[name] = (prediction_metrics(frame), frame)
    metrics = {name: values for name, (values, _) in evaluated.items()}
    if args.predictions_out is not None:
        _save_table(pd.concat([frame for _, frame in evaluated.values()], ignore_index=True),
                    args.predictions_out)
    if args.out.suffix in TABLE_SUFFIXES:
        from ..evaluation.benchmark import tidy_metrics

        _save_table(pd.concat([tidy_metrics(values, name, dataset)
                               for name, values in metrics.items()], ignore_index=True),
                    args.out)
    else:
        _write_json(next(iter(metrics.values())) if len(metrics) == 1 else metrics, args.out)
    for name, values in metrics.items():
        logger.info("%s: %s", name, {k: v for k, v in values.items()
                                     if "auroc" in k and "/" not in k or k == "accuracy"})
    logger.info("wrote %s", args.out)
    return 0


def _register_benchmark(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark", help="models beside the k-mer and CNN baselines -> results table",
        description="Fit the baselines on --train (the part the fine-tuned models were trained "
        "on), score every model on --test; writes results.parquet, results.csv and "
        "predictions.parquet into --out. Models may be fine-tuned, compressed or ONNX exports; "
        "parameters, size, latency and throughput are measured the same way for all.")
    parser.add_argument("--name", required=True, metavar="TASK",
                        help="task label (the dataset column of the results)")
    parser.add_argument("--train", type=Path, required=True, metavar="DATA",
                        help="training part: 'table' shard directory (e.g. <ingest>/train) or "
                        "CSV/TSV/Parquet with sequence,label")
    parser.add_argument("--test", type=Path, required=True, metavar="DATA",
                        help="test part, as --train (e.g. <ingest>/test)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR",
                        help="sequence classifier directory (fine-tuned, compressed or ONNX "
                        "export); repeatable")
    parser.add_argument("--baselines", default="kmer,cnn",
                        help="comma-separated baselines: kmer, cnn, all or none")
    parser.add_argument("--metrics", nargs="+", default=["accuracy", "f1", "auc"])
    parser.add_argument("--seed", type=non_negative_int, default=0, help="subsample and CNN seed")
    parser.add_argument("--max-rows", type=positive_int, default=None, metavar="N",
                        help="stratified subsample of each part to N rows (quick runs)")
    parser.add_argument("--cnn-epochs", type=positive_int, default=5)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--max-length", type=positive_int, default=None, metavar="N",
                        help="truncate inputs of torch models (default: their sequence_length)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output directory")
    add_threads_option(parser)
    parser.set_defaults(func=_run_benchmark)


def _parse_model_specs(specs: list[str], option: str = "--model", value: str = "DIR"
                       ) -> dict[str, Path]:
    models: dict[str, Path] = {}
    for spec in specs:
        name, sep, directory = spec.partition("=")
        if not sep or not name or not directory:
            raise ConfigurationError(f"{option} {spec!r}: expected NAME={value}")
        if name in models:
            raise ConfigurationError(f"{option} {name}: the name is given twice")
        models[name] = Path(directory)
    return models


def _run_benchmark(args: argparse.Namespace) -> int:
    from ..evaluation.baselines import CNNBaseline, KmerLogisticRegression
    from ..evaluation.benchmark import BenchmarkTask, ModelBenchmark
    from ..evaluation.models import load_classifier
    from ..io import atomic_directory

    apply_threads(args)
    specs = _parse_model_specs(args.model)
    baselines = {"kmer": lambda: KmerLogisticRegression(),
                 "cnn": lambda: CNNBaseline(epochs=args.cnn_epochs, seed=args.seed,
                                            tokenizer=task.tokenizer)}
    chosen = [b for b in args.baselines.split(",") if b and b != "none"]
    chosen = list(baselines) if chosen == ["all"] else chosen
    unknown = [b for b in chosen if b not in baselines]
    if unknown:
        raise ConfigurationError(f"--baselines: unknown {unknown}; choose from kmer, cnn, all, "
                                 "none")
    task = BenchmarkTask.from_split(args.train, args.test, name=args.name,
                                    max_rows=args.max_rows, seed=args.seed)
    models = {name: load_classifier(directory, task.tokenizer, args.max_length,
                                    args.batch_size) for name, directory in specs.items()}
    models.update({f"{name}_baseline": baselines[name]() for name in chosen})
    if not models:
        raise ConfigurationError("nothing to benchmark: give --model and/or --baselines")
    benchmark = ModelBenchmark(models, [task], args.metrics, batch_size=args.batch_size)
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
        "report", help="result and prediction tables -> one self-contained HTML report",
        description="A scorecard (per task: best Hyena-GLT model and best baseline with 95%% "
        "bootstrap intervals, their paired difference and a verdict), per-task figures, one "
        "timings table, training curves and provenance in one HTML file with plotly.js "
        "embedded (opens offline in any browser).")
    parser.add_argument("--results", type=Path, action="append", required=True, metavar="FILE",
                        help="tidy results table (.parquet/.csv/.tsv) of hyena-glt benchmark "
                        "or evaluate; repeatable (concatenated)")
    parser.add_argument("--predictions", type=Path, action="append", default=[], metavar="FILE",
                        help="per-example predictions of hyena-glt benchmark or evaluate "
                        "--predictions-out; repeatable")
    parser.add_argument("--training-log", type=Path, action="append", default=[],
                        metavar="FILE", help="metrics.jsonl of a training run; repeatable")
    parser.add_argument("--config", type=Path, default=None,
                        help="config YAML/JSON to print under provenance (the workflow passes "
                        "results/config.effective.yaml)")
    parser.add_argument("--data-file", type=Path, action="append", default=[],
                        help="input file whose SHA-256 goes under provenance; repeatable")
    parser.add_argument("--job-benchmarks", type=Path, default=None, metavar="DIR",
                        help="folder of Snakemake benchmark TSVs (wall time, peak memory)")
    parser.add_argument("--prediction-output", action="append", default=[],
                        metavar="NAME=DIR", help="folder written by hyena-glt predict, linked "
                        "in the Predictions section; repeatable")
    parser.add_argument("--prediction-annotation", action="append", default=[],
                        metavar="NAME=FILE", help="GFF3/BED the per-base output NAME is "
                        "compared with (figure and per-base F1); repeatable")
    parser.add_argument("--annotation-feature", default="CDS", metavar="TYPE",
                        help="GFF3 feature type of those annotations (default CDS)")
    parser.add_argument("--resamples", type=positive_int, default=1000,
                        help="bootstrap resamples per interval (default 1000)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="bootstrap seed")
    parser.add_argument("--title", default="Hyena-GLT performance report")
    parser.add_argument("--out", type=Path, required=True, help="HTML file")
    parser.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    import yaml

    from ..errors import DataError
    from ..evaluation.bootstrap import BootstrapSettings
    from ..evaluation.prediction_outputs import PredictionOutput
    from ..evaluation.report import PerformanceAnalyzer

    config = None
    if args.config is not None:
        try:
            config = yaml.safe_load(args.config.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise DataError(f"cannot read config: {err}", path=str(args.config)) from None
    outputs = _parse_model_specs(args.prediction_output, "--prediction-output")
    annotations = _parse_model_specs(args.prediction_annotation, "--prediction-annotation",
                                     "FILE")
    unknown = sorted(set(annotations) - set(outputs))
    if unknown:
        raise ConfigurationError(f"--prediction-annotation {unknown[0]}: no --prediction-output "
                                 "of that name")
    analyzer = PerformanceAnalyzer(args.title, BootstrapSettings(args.resamples, args.seed))
    analyzer.generate_report(
        args.results, args.out, predictions=args.predictions or None,
        training_logs=args.training_log, config=config, data_files=args.data_file,
        job_benchmarks=args.job_benchmarks, prediction_outputs=[
            PredictionOutput(name, directory, annotations.get(name), args.annotation_feature)
            for name, directory in outputs.items()])
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``score-variants``, ``evaluate``, ``benchmark`` and ``report``."""
    for add in (_register_score, _register_evaluate, _register_benchmark, _register_report):
        add(subparsers)
