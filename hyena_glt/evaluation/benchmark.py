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

A :class:`BenchmarkTask` is read once and shared by every model: from pre-split data
(:meth:`BenchmarkTask.from_split`: the train/test parts a fine-tuned model was trained and
validated on, so baselines see the same training rows and nothing leaks into the test part),
from a test-only dataset (:meth:`BenchmarkTask.from_dataset`, for models that need no fitting),
or by splitting one table (:meth:`BenchmarkTask.from_table`). Every source is read through
:class:`GenomicDataset`, so labels get the class ids fine-tuning used.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from hyena_glt.data.datasets import GenomicDataset
from hyena_glt.data.tokenizers import CharTokenizer, DNATokenizer
from hyena_glt.errors import ConfigurationError, DataError
from hyena_glt.evaluation.metrics import GenomicMetrics
from hyena_glt.evaluation.models import (
    TorchSequenceClassifier,
    count_stored_values,
    stored_size_bytes,
)
from hyena_glt.evaluation.predictions import predictions_frame
from hyena_glt.evaluation.regression import TorchSequenceRegressor
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


@dataclass
class LabelledSequences:
    """Sequences (as text) with ``labels (N,)`` int64 class ids, the class names and the
    tokenizer they were read with."""

    sequences: list[str]
    labels: np.ndarray
    label_names: list[str] | None
    tokenizer: CharTokenizer


def _decode_rows(values: np.ndarray, offsets: np.ndarray, tokenizer: CharTokenizer,
                 max_length: int | None, source: str) -> list[str]:
    """Flat token ids + row offsets -> one string per row (first ``max_length`` residues)."""
    lookup = np.zeros(256, dtype=np.uint8)
    for token_id, token in enumerate(tokenizer.id_to_token[:256]):
        if len(token) == 1:
            lookup[token_id] = ord(token)
    text = lookup[values]
    if (text == 0).any():
        bad = int(values[np.flatnonzero(text == 0)[0]])
        raise DataError(f"token id {bad} is not a residue of the {tokenizer.type_name} "
                        "alphabet", path=source)
    whole = text.tobytes().decode("ascii")
    ends = offsets[1:] if max_length is None else np.minimum(offsets[1:],
                                                             offsets[:-1] + max_length)
    return [whole[start:end] for start, end in zip(offsets[:-1].tolist(), ends.tolist(),
                                                   strict=True)]


def read_labelled_sequences(data: str | Path | GenomicDataset,
                            regression: bool = False) -> LabelledSequences:
    """A labelled data set as text: a "table" shard directory, a CSV/TSV/Parquet with
    ``sequence`` and ``label``, or a :class:`GenomicDataset` (truncated to its ``max_length``).
    Class labels become int64 ids with their names; with ``regression``, real-valued labels
    are read as float64 values (``label_names`` None).

    Raises:
        DataError: unreadable data, no labels, or regression labels without ``regression``.
    """
    if isinstance(data, GenomicDataset):
        dataset, source, max_length = data, "dataset", data.max_length
    else:
        source = str(data)
        dataset = GenomicDataset(data_path=data, max_length=None, padding=None)
        max_length = None
    if dataset.labels is not None and dataset.label2id is None and regression:
        return LabelledSequences(
            _decode_rows(dataset.values, dataset.offsets, dataset.tokenizer, max_length,
                         source), np.asarray(dataset.labels, dtype=np.float64), None,
            dataset.tokenizer)
    if dataset.labels is None or dataset.label2id is None:
        raise DataError("a benchmark needs class labels (this data has "
                        f"{'none' if dataset.labels is None else 'regression values'})",
                        path=source)
    names = [name for name, _ in sorted(dataset.label2id.items(), key=lambda item: item[1])]
    labels = np.asarray(dataset.labels, dtype=np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataError(f"class ids {labels.min()}..{labels.max()} outside the {len(names)} "
                        f"class names {names}", path=source)
    sequences = _decode_rows(dataset.values, dataset.offsets, dataset.tokenizer, max_length,
                             source)
    return LabelledSequences(sequences, labels, names, dataset.tokenizer)


def complete_label_names(names: list[str] | None, num_classes: int) -> list[str] | None:
    """``names`` extended by class ids for the model's classes that the data lacks (numeric
    labels are named by their id, so e.g. a test part holding only class "0" of two)."""
    if names is None or len(names) >= num_classes:
        return names
    return names + [str(k) for k in range(len(names), num_classes)]


def _align_labels(test: LabelledSequences, names: list[str], source: str) -> np.ndarray:
    """Test class ids re-expressed in the training part's class names (values as they are)."""
    if test.label_names == names or names is None:
        return test.labels
    unknown = sorted(set(test.label_names) - set(names))
    if unknown:
        raise DataError(f"test labels {unknown} do not occur in the training part "
                        f"(classes {names})", path=source)
    remap = np.array([names.index(name) for name in test.label_names], dtype=np.int64)
    return remap[test.labels]


def _subsample(part: LabelledSequences, max_rows: int | None, seed: int) -> LabelledSequences:
    """A stratified subsample of at most ``max_rows`` rows (quick runs and tests)."""
    if max_rows is None or max_rows >= len(part.labels):
        return part
    keep, _ = train_test_split(np.arange(len(part.labels)), train_size=max_rows,
                               stratify=part.labels if part.label_names else None,
                               random_state=seed)
    keep = np.sort(keep)
    return LabelledSequences([part.sequences[i] for i in keep], part.labels[keep],
                             part.label_names, part.tokenizer)


def _task_name(data: str | Path) -> str:
    path = Path(data)
    return f"{path.parent.name}/{path.name.split('.')[0]}"


@dataclass
class BenchmarkTask:
    """A labelled data set in a train and a test part, shared by every model.

    Sequences are strings; ``train_labels`` and ``test_labels`` are ``(N,)`` int64 class ids,
    or float64 values of a regression task (``label_names`` None; N = that part's number of
    sequences). ``train_sequences`` is empty for a test-only task (models that need ``fit``
    refuse it).
    """

    name: str
    train_sequences: list[str]
    train_labels: np.ndarray
    test_sequences: list[str]
    test_labels: np.ndarray
    label_names: list[str] | None = None
    source: str | None = None
    tokenizer: CharTokenizer | None = None

    @property
    def task_type(self) -> str:
        """``"regression"`` for real-valued labels, else ``"sequence_classification"``."""
        regression = self.label_names is None and np.issubdtype(self.test_labels.dtype,
                                                                np.floating)
        return "regression" if regression else "sequence_classification"

    @classmethod
    def from_split(cls, train: str | Path | GenomicDataset, test: str | Path | GenomicDataset,
                   name: str | None = None, max_rows: int | None = None, seed: int = 0
                   ) -> BenchmarkTask:
        """Pre-split data: each part a "table" shard directory (``hyena-glt ingest table
        --split`` writes ``train/`` and ``test/``), a CSV/TSV/Parquet with ``sequence`` and
        ``label``, or a :class:`GenomicDataset`.

        ``max_rows`` keeps a stratified subsample of each part (quick runs and tests).

        Raises:
            DataError: unreadable data, or test classes that the training part lacks.
        """
        train_part = _subsample(read_labelled_sequences(train, regression=True), max_rows, seed)
        test_part = _subsample(read_labelled_sequences(test, regression=True), max_rows, seed)
        test_labels = _align_labels(test_part, train_part.label_names, str(test))
        default = _task_name(test) if not isinstance(test, GenomicDataset) else "dataset"
        return cls(name or default, train_part.sequences, train_part.labels,
                   test_part.sequences, test_labels, train_part.label_names,
                   f"train={train} test={test}", train_part.tokenizer)

    @classmethod
    def from_dataset(cls, test: str | Path | GenomicDataset, name: str | None = None
                     ) -> BenchmarkTask:
        """A test-only task (as in API.md: ``ModelBenchmark(models, [test_dataset], ...)``)."""
        part = read_labelled_sequences(test, regression=True)
        default = _task_name(test) if not isinstance(test, GenomicDataset) else "dataset"
        return cls(name or default, [], np.zeros(0, dtype=np.int64), part.sequences,
                   part.labels, part.label_names, str(test), part.tokenizer)

    @classmethod
    def from_table(cls, path: str | Path, name: str | None = None, test_size: float = 0.3,
                   random_state: int = 0, max_rows: int | None = None) -> BenchmarkTask:
        """Stratified split of one labelled table or shard directory (``max_rows``: a
        stratified subsample first). For data a fine-tuned model was trained on use
        :meth:`from_split` with the same parts instead."""
        part = _subsample(read_labelled_sequences(path, regression=True), max_rows,
                          random_state)
        train_x, test_x, train_y, test_y = train_test_split(
            part.sequences, part.labels, test_size=test_size,
            stratify=part.labels if part.label_names else None, random_state=random_state)
        return cls(name or _task_name(path), list(train_x), train_y, list(test_x), test_y,
                   part.label_names, str(path), part.tokenizer)


def machine_name() -> str:
    """The CPU model (``/proc/cpuinfo``, else :func:`platform.processor`) and core count."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    return f"{model}, {os.cpu_count()} logical CPUs"


def _predict(model: Any, sequences: list[str], regression: bool) -> np.ndarray:
    """``(N,)`` values of a regressor (``predict``) or ``(N, C)`` class probabilities."""
    return np.asarray(model.predict(sequences) if regression else model.predict_proba(sequences))


def _timings(models: Mapping[str, Any], batch: list[str], repeats: int, regression: bool
             ) -> dict[str, tuple[float, float]]:
    """``{model: (median ms, interquartile range ms)}`` of one prediction call on ``batch``.

    Calls are interleaved (every round times each model once, in a rotating order) after a
    warm-up of each, so load from other processes falls on every model alike.
    """
    names = list(models)
    for name in names:
        _predict(models[name], batch, regression)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            _predict(models[name], batch, regression)
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: (float(np.median(values)),
                   float(np.subtract(*np.percentile(values, [75, 25]))))
            for name, values in times.items()}


def _as_task(data: Any) -> BenchmarkTask:
    if isinstance(data, BenchmarkTask):
        return data
    if isinstance(data, GenomicDataset):
        return BenchmarkTask.from_dataset(data)
    if isinstance(data, tuple) and len(data) == 2:
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
    if getattr(getattr(model, "config", None), "task_type", None) == "regression":
        return TorchSequenceRegressor(model, tokenizer)
    return TorchSequenceClassifier(model, tokenizer)


#: Metrics of :class:`ModelBenchmark` when none are named, by task type.
DEFAULT_METRICS = {"sequence_classification": ["accuracy", "f1_macro", "auroc"],
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
        datasets: :class:`BenchmarkTask` objects, :class:`GenomicDataset` objects (test-only
            tasks, as in API.md), ``(train, test)`` pairs of paths or datasets
            (:meth:`BenchmarkTask.from_split`), or table paths (split by
            :meth:`BenchmarkTask.from_table`).
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
        scorer = GenomicMetrics()
        machine, threads = machine_name(), torch.get_num_threads()
        for task in self.tasks:
            values = {}
            regression = task.task_type == "regression"
            metrics = self.metrics or DEFAULT_METRICS[task.task_type]
            for name, model in self.models.items():
                if hasattr(model, "fit"):
                    if not task.train_sequences:
                        raise ConfigurationError(
                            f"{name} must be fitted but task {task.name!r} has no training "
                            "part; use BenchmarkTask.from_split(train, test)")
                    logger.info("fitting %s on %s (%d sequences)", name, task.name,
                                len(task.train_sequences))
                    model.fit(task.train_sequences, task.train_labels)
                output = _predict(model, task.test_sequences, regression)
                self.predictions[(name, task.name)] = (output, task.test_labels)
                values[name] = (scorer.regression(output, task.test_labels) if regression else
                                scorer.compute_all(output, task.test_labels,
                                                   "sequence_classification",
                                                   label_names=complete_label_names(
                                                       task.label_names, output.shape[1])))
                unknown = [m for m in metrics if m not in values[name]]
                if unknown:
                    raise ConfigurationError(f"unknown metric(s) {unknown}; available: "
                                             f"{sorted(k for k in values[name] if '/' not in k)}")
            batch = task.test_sequences[:self.batch_size]
            timings = _timings(self.models, batch, self.latency_repeats, regression)
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
        return pd.concat([predictions_frame(name, task, kinds[task], targets, output,
                                            np.arange(len(targets)))
                          for (name, task), (output, targets) in self.predictions.items()],
                         ignore_index=True)


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
