"""ModelBenchmark: models x datasets x metrics as one tidy table, with baselines for context.

Every model is driven through the same ``predict_proba(sequences) -> (N, C)`` call — a
fine-tuned torch classifier through :class:`TorchSequenceClassifier` (tokenization included), a
baseline (:mod:`hyena_glt.evaluation.baselines`) after ``fit`` on the task's train split — so
parameters, size (bytes of the parameters written as safetensors), latency (median seconds of
one ``batch_size`` call after a warm-up) and throughput (test sequences per second over the
whole test set) are measured the same way for every model.

The result is a long table, one row per model x dataset x metric:
``model, dataset, metric, value, n_parameters, size_bytes, latency_ms, throughput_seq_per_s``.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import safetensors.numpy
import torch
from sklearn.model_selection import train_test_split

from hyena_glt.data.tokenizers import CharTokenizer, DNATokenizer
from hyena_glt.errors import ConfigurationError, DataError
from hyena_glt.evaluation.metrics import GenomicMetrics
from hyena_glt.io import atomic_file

__all__ = ["BenchmarkTask", "TorchSequenceClassifier", "ModelBenchmark", "METRIC_ALIASES",
           "read_sequence_table", "save_results"]

logger = logging.getLogger(__name__)

#: Short metric names accepted in ``metrics=`` -> the GenomicMetrics key.
METRIC_ALIASES = {"f1": "f1_macro", "auc": "auroc", "precision": "precision_macro",
                  "recall": "recall_macro"}


def read_sequence_table(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(sequences, label ids, label names)`` of a table with ``sequence`` and ``label``.

    Label names are the sorted distinct label values; ids index them.

    Raises:
        DataError: unreadable file, missing column, or fewer than two label values.
    """
    from hyena_glt.ingest.tables import read_labelled_table

    frame, _ = read_labelled_table(Path(path), ["sequence", "label"])
    raw = frame["label"].to_numpy(dtype=object)
    names = sorted({str(v) for v in raw})
    if len(names) < 2:
        raise DataError("a classification table needs at least two label values", path=str(path))
    labels = np.array([names.index(str(v)) for v in raw], dtype=np.int64)
    return frame["sequence"].to_numpy(dtype=object), labels, names


@dataclass
class BenchmarkTask:
    """A classification data set split once into train and test, shared by every model."""

    name: str
    train_sequences: list[str]
    train_labels: np.ndarray
    test_sequences: list[str]
    test_labels: np.ndarray
    label_names: list[str] | None = None
    source: str | None = None

    @classmethod
    def from_table(cls, path: str | Path, name: str | None = None, test_size: float = 0.3,
                   random_state: int = 0, max_rows: int | None = None) -> BenchmarkTask:
        """Stratified split of a CSV/TSV/Parquet table with ``sequence`` and ``label`` columns.

        ``max_rows`` keeps a stratified subsample first (for quick runs and tests).
        """
        sequences, labels, names = read_sequence_table(path)
        if max_rows is not None and max_rows < len(labels):
            sequences, _, labels, _ = train_test_split(
                sequences, labels, train_size=max_rows, stratify=labels,
                random_state=random_state)
        train_x, test_x, train_y, test_y = train_test_split(
            sequences, labels, test_size=test_size, stratify=labels, random_state=random_state)
        stem = Path(path).name.split(".")[0]
        return cls(name or f"{Path(path).parent.name}/{stem}", list(train_x), train_y,
                   list(test_x), test_y, names, str(path))


@dataclass
class TorchSequenceClassifier:
    """``predict_proba`` over a torch classifier whose output has ``.logits (B, C)``."""

    model: torch.nn.Module
    tokenizer: CharTokenizer = field(default_factory=DNATokenizer)
    max_length: int | None = None
    batch_size: int = 64

    @torch.no_grad()
    def predict_proba(self, sequences: Sequence[str]) -> np.ndarray:
        self.model.eval()
        device = next(self.model.parameters()).device
        probs = []
        for start in range(0, len(sequences), self.batch_size):
            batch = self.tokenizer.batch_encode(list(sequences[start:start + self.batch_size]),
                                                max_length=self.max_length)
            out = self.model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            logits = out.logits if hasattr(out, "logits") else out
            probs.append(logits.float().softmax(-1).cpu().numpy())
        return np.concatenate(probs)

    def parameters(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}


def _measure(model: Any, sequences: list[str], batch_size: int, repeats: int
             ) -> tuple[np.ndarray, float, float]:
    """(probabilities over ``sequences``, median latency of one batch in ms, sequences/s)."""
    batch = sequences[:batch_size]
    model.predict_proba(batch)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_proba(batch)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    probs = np.asarray(model.predict_proba(sequences))
    elapsed = time.perf_counter() - start
    return probs, 1000 * statistics.median(times), len(sequences) / max(elapsed, 1e-9)


class ModelBenchmark:
    """Run every model on every task and tabulate the metrics.

    Args:
        models: ``{name: model}`` or a list (named by their ``name`` attribute or class). A
            model with ``fit`` is trained on each task's train split first (baselines); a torch
            module is wrapped in :class:`TorchSequenceClassifier`.
        datasets: :class:`BenchmarkTask` objects (or paths of sequence/label tables).
        metrics: GenomicMetrics classification keys or aliases (``f1``, ``auc``, ...).
        batch_size: sequences per call for the latency measurement.
        latency_repeats: timed calls after the warm-up (the median is reported).

    After :meth:`run`, ``predictions`` maps ``(model, dataset)`` to ``(probs, targets)``.
    """

    def __init__(self, models: Mapping[str, Any] | Sequence[Any],
                 datasets: Sequence[BenchmarkTask | str | Path],
                 metrics: Sequence[str] = ("accuracy", "f1", "auc"), batch_size: int = 32,
                 latency_repeats: int = 5) -> None:
        if not isinstance(models, Mapping):
            models = {getattr(m, "name", None) or f"{type(m).__name__}_{i}": m
                      for i, m in enumerate(models)}
        if not models or not datasets:
            raise ConfigurationError("ModelBenchmark needs at least one model and one dataset")
        self.models = {name: (TorchSequenceClassifier(m) if isinstance(m, torch.nn.Module)
                              else m) for name, m in models.items()}
        self.tasks = [d if isinstance(d, BenchmarkTask) else BenchmarkTask.from_table(d)
                      for d in datasets]
        self.metrics = [METRIC_ALIASES.get(m, m) for m in metrics]
        self.batch_size, self.latency_repeats = batch_size, latency_repeats
        self.predictions: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def run(self) -> pd.DataFrame:
        """The tidy results table (see the module docstring)."""
        rows = []
        scorer = GenomicMetrics()
        for task in self.tasks:
            for name, model in self.models.items():
                if hasattr(model, "fit"):
                    logger.info("fitting %s on %s (%d sequences)", name, task.name,
                                len(task.train_sequences))
                    model.fit(task.train_sequences, task.train_labels)
                probs, latency_ms, throughput = _measure(model, task.test_sequences,
                                                         self.batch_size, self.latency_repeats)
                self.predictions[(name, task.name)] = (probs, task.test_labels)
                values = scorer.compute_all(probs, task.test_labels, "sequence_classification",
                                            label_names=task.label_names)
                parameters = model.parameters()
                size = len(safetensors.numpy.save(
                    {k: np.ascontiguousarray(v) for k, v in parameters.items()}))
                unknown = [m for m in self.metrics if m not in values]
                if unknown:
                    raise ConfigurationError(f"unknown metric(s) {unknown}; available: "
                                             f"{sorted(k for k in values if '/' not in k)}")
                for metric in self.metrics:
                    rows.append({
                        "model": name, "dataset": task.name, "metric": metric,
                        "value": float(values[metric]),
                        "n_parameters": int(sum(np.size(v) for v in parameters.values())),
                        "size_bytes": size, "latency_ms": latency_ms,
                        "throughput_seq_per_s": throughput,
                    })
                logger.info("%s on %s: %s", name, task.name,
                            {m: round(values[m], 4) for m in self.metrics})
        return pd.DataFrame(rows)

    def predictions_table(self) -> pd.DataFrame:
        """Long table of test predictions: ``model, dataset, target, prob_0..prob_{C-1}``."""
        frames = []
        for (name, task), (probs, targets) in self.predictions.items():
            frame = pd.DataFrame(probs, columns=[f"prob_{k}" for k in range(probs.shape[1])])
            frame.insert(0, "target", targets)
            frame.insert(0, "dataset", task)
            frame.insert(0, "model", name)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def save_results(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a results table atomically as Parquet (``.parquet``) or CSV (anything else)."""
    path = Path(path)
    with atomic_file(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return path
