"""ModelBenchmark: models x datasets x metrics as one tidy table, with baselines for context.

Every model is driven through the same ``predict_proba(sequences) -> (N, C)`` call — a torch
classifier through :class:`TorchSequenceClassifier`, an ONNX export through
:class:`OnnxSequenceClassifier` (tokenization included, :mod:`hyena_glt.evaluation.models`), a
baseline (:mod:`hyena_glt.evaluation.baselines`) after ``fit`` on the task's train part — so
parameters (values stored), size (bytes of the stored tensors written as safetensors), latency
and throughput are measured the same way for every model: one ``batch_size`` call on the same
test sequences, every model warmed up and then timed ``latency_repeats`` times interleaved with
the others in one process (so background load falls on all alike); the median, its
interquartile range, the batch size, thread count and CPU model are recorded.

A :class:`BenchmarkTask` (:mod:`hyena_glt.evaluation.tasks`) is read once and shared by every
model. Regression tasks drive ``predict(sequences) -> (N,)`` instead; per-base tasks
(annotation windows) ``predict_proba(ids (N, L)) -> (N * L,)`` P(class 1) — a torch token
classifier through :class:`TorchTokenClassifier`, the per-base baselines directly.

The result is a long table, one row per model x dataset x metric:
``model, dataset, metric, value, n_parameters, size_bytes, latency_ms, throughput_seq_per_s,
latency_ms_iqr, batch_size, threads, machine``. Datasets whose names repeat get their index
appended.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from hyena_glt.data.datasets import IGNORE_INDEX, GenomeAnnotationDataset, GenomicDataset
from hyena_glt.data.shards import read_manifest
from hyena_glt.data.tokenizers import CharTokenizer, DNATokenizer
from hyena_glt.errors import ConfigurationError
from hyena_glt.evaluation.annotation import TorchTokenClassifier
from hyena_glt.evaluation.metrics import GenomicMetrics
from hyena_glt.evaluation.models import (
    TorchSequenceClassifier,
    count_stored_values,
    stored_size_bytes,
)
from hyena_glt.evaluation.predictions import predictions_frame
from hyena_glt.evaluation.regression import TorchSequenceRegressor
from hyena_glt.evaluation.tasks import (
    BenchmarkTask,
    LabelledSequences,
    complete_label_names,
    read_labelled_sequences,
)
from hyena_glt.io import atomic_file

__all__ = ["BenchmarkTask", "ModelBenchmark", "METRIC_ALIASES", "LabelledSequences",
           "read_labelled_sequences", "complete_label_names", "save_results", "tidy_metrics",
           "RESULT_COLUMNS"]

logger = logging.getLogger(__name__)

#: Short metric names accepted in ``metrics=`` -> the GenomicMetrics key.
METRIC_ALIASES = {"f1": "f1_macro", "auc": "auroc", "precision": "precision_macro",
                  "recall": "recall_macro"}
#: Columns of :meth:`ModelBenchmark.run` (``hyena-glt evaluate`` writes the first four).
RESULT_COLUMNS = ["model", "dataset", "metric", "value", "n_parameters", "size_bytes",
                  "latency_ms", "throughput_seq_per_s", "latency_ms_iqr", "batch_size",
                  "threads", "machine"]


def machine_name() -> str:
    """The CPU model (``/proc/cpuinfo``, else :func:`platform.processor`) and core count."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    return f"{model}, {os.cpu_count()} logical CPUs"


def _predict(model: Any, inputs: Any, task_type: str) -> np.ndarray:
    """``(N,)`` values of a regressor (``predict``), ``(N, L)`` per-base P(class 1) of
    ``(N, L)`` ids, or ``(N, C)`` class probabilities."""
    if task_type == "regression":
        return np.asarray(model.predict(inputs))
    if task_type == "token_classification":
        return np.asarray(model.predict_proba(inputs)).reshape(np.shape(inputs))
    return np.asarray(model.predict_proba(inputs))


def _scores(output: np.ndarray, task: BenchmarkTask) -> dict[str, Any]:
    """GenomicMetrics of one model's output on the task's test part (per-base: over the
    labelled bases)."""
    if task.task_type == "regression":
        return GenomicMetrics().regression(output, task.test_labels)
    if task.task_type == "token_classification":
        keep = task.test_labels != IGNORE_INDEX
        return GenomicMetrics().classification(
            np.stack([1 - output[keep], output[keep]], axis=1), task.test_labels[keep])
    return GenomicMetrics().compute_all(output, task.test_labels, "sequence_classification",
                                        label_names=complete_label_names(task.label_names,
                                                                         output.shape[1]))


def _timings(models: Mapping[str, Any], batch: Any, repeats: int, task_type: str
             ) -> dict[str, tuple[float, float]]:
    """``{model: (median ms, interquartile range ms)}`` of one prediction call on ``batch``.

    Calls are interleaved (every round times each model once, in a rotating order) after a
    warm-up of each, so load from other processes falls on every model alike.
    """
    names = list(models)
    for name in names:
        _predict(models[name], batch, task_type)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            _predict(models[name], batch, task_type)
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: (float(np.median(values)),
                   float(np.subtract(*np.percentile(values, [75, 25]))))
            for name, values in times.items()}


def _is_annotation(data: Any) -> bool:
    """Whether ``data`` is an "annotation" shard directory (per-base labels)."""
    return (isinstance(data, (str, Path)) and (Path(data) / "manifest.json").is_file()
            and read_manifest(data).get("kind") == "annotation")


def _as_task(data: Any) -> BenchmarkTask:
    if isinstance(data, BenchmarkTask):
        return data
    if isinstance(data, GenomeAnnotationDataset) or _is_annotation(data):
        return BenchmarkTask.from_annotation(None, data)
    if isinstance(data, GenomicDataset):
        return BenchmarkTask.from_dataset(data)
    if isinstance(data, tuple) and len(data) == 2:
        if isinstance(data[1], GenomeAnnotationDataset) or _is_annotation(data[1]):
            return BenchmarkTask.from_annotation(*data)
        return BenchmarkTask.from_split(*data)
    if isinstance(data, (str, Path)):
        return BenchmarkTask.from_table(data)
    raise ConfigurationError(f"cannot benchmark on a {type(data).__name__}: pass a "
                             "BenchmarkTask, a GenomicDataset, a (train, test) pair or a table "
                             "path")


def _wrapped(model: Any, tokenizer: CharTokenizer) -> Any:
    """A torch module as a predictor of sequences; anything else as it is."""
    if not isinstance(model, torch.nn.Module):
        return model
    task_type = getattr(getattr(model, "config", None), "task_type", None)
    if task_type == "regression":
        return TorchSequenceRegressor(model, tokenizer)
    if task_type == "token_classification":
        return TorchTokenClassifier(model)
    return TorchSequenceClassifier(model, tokenizer)


#: Metrics of :class:`ModelBenchmark` when none are named, by task type.
DEFAULT_METRICS = {"sequence_classification": ["accuracy", "f1_macro", "auroc"],
                   "token_classification": ["accuracy", "f1_macro", "auroc"],
                   "regression": ["mse", "r2", "spearman_rho"]}


def _unique_names(tasks: list[BenchmarkTask]) -> list[BenchmarkTask]:
    """Tasks whose names repeat (e.g. two GenomicDatasets, both "dataset") get their index
    appended, so their result rows do not collide."""
    names = [task.name for task in tasks]
    for index, task in enumerate(tasks):
        if names.count(task.name) > 1:
            task.name = f"{task.name}_{index}"
    return tasks


def _named(models: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    """``{name: model}``; a list is named by ``name`` attributes or class names, made unique."""
    if isinstance(models, Mapping):
        return dict(models)
    named: dict[str, Any] = {}
    for model in models:
        base = getattr(model, "name", None) or type(model).__name__
        name, copy = base, 1
        while name in named:
            name, copy = f"{base}_{copy}", copy + 1
        named[name] = model
    return named


class ModelBenchmark:
    """Run every model on every task and tabulate the metrics.

    Args:
        models: ``{name: model}`` or a list (named by their ``name`` attribute or class, made
            unique). Each has ``parameters()`` and ``predict_proba(sequences) -> (N, C)``, or for
            regression tasks ``predict(sequences) -> (N,)``; a model with ``fit`` is trained on
            each task's train part first (baselines); a torch module is wrapped in
            :class:`TorchSequenceClassifier` (:class:`TorchSequenceRegressor` when its config's
            task type is regression) with the first task's tokenizer.
        datasets: :class:`BenchmarkTask` objects, :class:`GenomicDataset` or
            :class:`GenomeAnnotationDataset` objects (test-only tasks, as in API.md),
            ``(train, test)`` pairs of paths or datasets (:meth:`BenchmarkTask.from_split`;
            annotation shard directories: :meth:`BenchmarkTask.from_annotation`), or table
            paths (split by :meth:`BenchmarkTask.from_table`).
        metrics: GenomicMetrics keys or aliases (``f1``, ``auc``, ...); default accuracy,
            macro F1 and AUROC for classification, MSE, R² and Spearman for regression.
        batch_size: sequences per call for the latency measurement.
        latency_repeats: timed rounds after the warm-up (median and interquartile range).

    After :meth:`run`, ``predictions`` maps ``(model, dataset)`` to ``(probs (N, C) float or
    values (N,), targets (N,))``.
    """

    def __init__(self, models: Mapping[str, Any] | Sequence[Any],
                 datasets: Sequence[BenchmarkTask | GenomicDataset | tuple | str | Path],
                 metrics: Sequence[str] | None = None, batch_size: int = 32,
                 latency_repeats: int = 10) -> None:
        models = _named(models)
        if not models or not datasets:
            raise ConfigurationError("ModelBenchmark needs at least one model and one dataset")
        self.tasks = _unique_names([_as_task(d) for d in datasets])
        tokenizer = self.tasks[0].tokenizer or DNATokenizer()
        self.models = {name: _wrapped(m, tokenizer) for name, m in models.items()}
        self.metrics = None if metrics is None else [METRIC_ALIASES.get(m, m) for m in metrics]
        self.batch_size, self.latency_repeats = batch_size, latency_repeats
        self.predictions: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def run(self) -> pd.DataFrame:
        """The tidy results table (see the module docstring)."""
        rows = []
        machine, threads = machine_name(), torch.get_num_threads()
        for task in self.tasks:
            values = {}
            metrics = self.metrics or DEFAULT_METRICS[task.task_type]
            for name, model in self.models.items():
                if hasattr(model, "fit"):
                    if not len(task.train_sequences):
                        raise ConfigurationError(
                            f"{name} must be fitted but task {task.name!r} has no training "
                            "part; use BenchmarkTask.from_split(train, test)")
                    logger.info("fitting %s on %s (%d sequences)", name, task.name,
                                len(task.train_sequences))
                    model.fit(task.train_sequences, task.train_labels)
                output = _predict(model, task.test_sequences, task.task_type)
                self.predictions[(name, task.name)] = (output, task.test_labels)
                values[name] = _scores(output, task)
                unknown = [m for m in metrics if m not in values[name]]
                if unknown:
                    raise ConfigurationError(f"unknown metric(s) {unknown}; available: "
                                             f"{sorted(k for k in values[name] if '/' not in k)}")
            batch = task.test_sequences[:self.batch_size]
            timings = _timings(self.models, batch, self.latency_repeats, task.task_type)
            for name, model in self.models.items():
                parameters = model.parameters()
                latency_ms, spread = timings[name]
                costs = {"n_parameters": count_stored_values(parameters),
                         "size_bytes": stored_size_bytes(parameters), "latency_ms": latency_ms,
                         "throughput_seq_per_s": 1000 * len(batch) / max(latency_ms, 1e-9),
                         "latency_ms_iqr": spread, "batch_size": len(batch),
                         "threads": threads, "machine": machine}
                rows += [{"model": name, "dataset": task.name, "metric": metric,
                          "value": float(values[name][metric]), **costs}
                         for metric in metrics]
                logger.info("%s on %s: %s, %.1f ms per batch", name, task.name,
                            {m: round(values[name][m], 4) for m in metrics}, latency_ms)
        return pd.DataFrame(rows, columns=RESULT_COLUMNS)

    def predictions_table(self) -> pd.DataFrame:
        """Test predictions in the format of :mod:`hyena_glt.evaluation.predictions`: one row
        per model and test sequence (``unit`` and ``position`` = the sequence's index)."""
        kinds = {task.name: task.task_type for task in self.tasks}
        frames = []
        for (name, task), (output, targets) in self.predictions.items():
            if kinds[task] == "token_classification":  # labelled bases; unit = window
                keep = targets != IGNORE_INDEX
                window, offset = np.nonzero(keep)
                frames.append(predictions_frame(name, task, kinds[task], targets[keep],
                                                output[keep], window, offset))
            else:
                frames.append(predictions_frame(name, task, kinds[task], targets, output,
                                                np.arange(len(targets))))
        return pd.concat(frames, ignore_index=True)


def tidy_metrics(metrics: Mapping[str, Any], model: str, dataset: str) -> pd.DataFrame:
    """A metrics dict as result rows ``model, dataset, metric, value`` (numeric scalars only;
    lists such as the confusion matrix are left out)."""
    rows = [{"model": model, "dataset": dataset, "metric": key, "value": float(value)}
            for key, value in metrics.items()
            if isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool)]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS[:4])


def save_results(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a table atomically: Parquet (``.parquet``), TSV (``.tsv``) or CSV (anything else).
    """
    path = Path(path)
    with atomic_file(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, sep="\t" if path.suffix == ".tsv" else ",", index=False)
    return path
