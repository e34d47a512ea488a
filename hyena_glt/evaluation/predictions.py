"""Per-example test predictions of every model and baseline of a task, in one table format.

The report's intervals, verdicts and figures are computed from these rows, so each task
type writes the same columns (``predictions.parquet`` of ``hyena-glt benchmark`` and of
``hyena-glt evaluate --predictions-out``):

``model, dataset, task_type, unit, position, target`` and the scores: ``score`` (binary and
per-base: P(class 1), or any score that is higher for class 1, such as the zero-shot −Δ
log-likelihood), ``prob_0..prob_{C-1}`` (multi-class) or ``prediction`` (regression).

``unit`` is what the bootstrap resamples whole (:mod:`hyena_glt.evaluation.bootstrap`): the
sequence, the window of a per-base task, the 100-bp position bin of a variant. ``position``
locates the example on its genome (a base's coordinate, a variant's ``pos``; the row index
for sequences).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from hyena_glt.data.datasets import (
    IGNORE_INDEX,
    GenomeAnnotationDataset,
    VariantEffectDataset,
    collate_batch,
)
from hyena_glt.data.shards import read_table
from hyena_glt.errors import ConfigurationError, DataError, ModelError
from hyena_glt.evaluation.models import model_max_length
from hyena_glt.ingest.vcf import position_bins

__all__ = ["TOKEN_BASELINES", "VARIANT_BASELINES", "TABLE_BASELINES",
           "table_baseline_predictions", "table_baselines", "predictions_frame", "token_predictions",
           "token_baseline_predictions", "variant_model_predictions", "zero_shot_predictions",
           "variant_baseline_predictions", "check_baselines", "prediction_metrics",
           "score_matrix"]

logger = logging.getLogger(__name__)

#: Baselines of each task type, by the name the config and ``--baselines`` use.
TOKEN_BASELINES = ("orf_kmer", "cnn")
VARIANT_BASELINES = ("context",)
TABLE_BASELINES = ("kmer", "cnn")


def check_baselines(names: list[str], allowed: tuple[str, ...], task_type: str) -> list[str]:
    """``names`` when each is a baseline of ``task_type``.

    Raises:
        ConfigurationError: naming the unknown baseline and the choices.
    """
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ConfigurationError(f"--baselines: {unknown} do not apply to {task_type} tasks; "
                                 f"choose from {', '.join(allowed)} or none")
    return names


def predictions_frame(model: str, dataset: str, task_type: str, target: np.ndarray,
                      scores: np.ndarray, unit: np.ndarray, position: np.ndarray | None = None
                      ) -> pd.DataFrame:
    """Rows of one model (module docstring): ``(N,)`` scores become ``score``, ``(N, C)``
    probabilities ``prob_k`` (plus ``score`` = P(class 1) when C = 2), regression targets
    with ``(N,)`` values ``prediction``."""
    scores = np.asarray(scores, dtype=np.float64)
    frame = pd.DataFrame({"model": model, "dataset": dataset, "task_type": task_type,
                          "unit": np.asarray(unit).astype(str),
                          "position": np.arange(len(target)) if position is None else position,
                          "target": target})
    if task_type == "regression" or (scores.ndim == 1 and not _binary(target)):
        frame["prediction"] = scores.reshape(len(target), -1)[:, 0]
    elif scores.ndim == 1:
        frame["score"] = scores
    else:
        for k in range(scores.shape[1]):
            frame[f"prob_{k}"] = scores[:, k]
        if scores.shape[1] == 2:
            frame["score"] = scores[:, 1]
    return frame


def score_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The scores of one model's rows: ``(N, C)`` probabilities, else ``(N,)`` scores or
    regression predictions."""
    probs = sorted((c for c in frame.columns if c.startswith("prob_")
                    and frame[c].notna().any()), key=lambda c: int(c.split("_")[1]))
    if probs:
        return frame[probs].to_numpy(dtype=np.float64)
    column = "prediction" if "prediction" in frame and frame["prediction"].notna().any() \
        else "score"
    return frame[column].to_numpy(dtype=np.float64)


def prediction_metrics(frame: pd.DataFrame, label_names: list[str] | None = None
                       ) -> dict[str, Any]:
    """:class:`GenomicMetrics` of one model's rows: classification for class scores (a binary
    score outside [0, 1] is ranked, e.g. AUROC of −Δ), regression for ``prediction``."""
    from hyena_glt.evaluation.metrics import GenomicMetrics

    scores, target = score_matrix(frame), frame["target"].to_numpy()
    count = {"variant_effect": "n_variants", "token_classification": "n_bases"}.get(
        str(frame["task_type"].iloc[0]), "n_examples")
    if "prediction" in frame and frame["prediction"].notna().all():
        return {count: len(frame), **GenomicMetrics().regression(scores, target)}
    if scores.ndim == 1 and scores.min() >= 0 and scores.max() <= 1:
        scores = np.stack([1 - scores, scores], axis=1)
    return {count: len(frame),
            **GenomicMetrics().classification(scores, target.astype(np.int64), label_names)}


# --- per-base (token classification) ---------------------------------------------------------
@torch.no_grad()
def token_predictions(model: Any, data: str | Path, batch_size: int = 8,
                      max_length: int | None = None) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray, np.ndarray]:
    """``(probs (n, C), targets (n,), window (n,), position (n,))`` of the labelled bases of an
    annotation shard directory; ``position`` is the base's coordinate on its record.

    Raises:
        ModelError: the model's output is not per base.
    """
    max_length = max_length or model_max_length(model)
    dataset = GenomeAnnotationDataset(data, max_length=max_length, padding=None)
    starts = np.asarray(read_table(data, columns=["start"]).column("start").to_pylist())
    if isinstance(model, torch.nn.Module):
        model.eval()
    probs, targets, windows, positions = [], [], [], []
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_batch)
    for number, batch in enumerate(loader):
        ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
        if isinstance(model, torch.nn.Module):
            logits = model(ids, mask).logits.float()
        else:  # OnnxModel
            logits = model(ids.numpy(), mask.numpy()).float()
        if logits.dim() != 3 or logits.shape[:2] != labels.shape:
            raise ModelError(f"logits of shape {tuple(logits.shape)} for labels of shape "
                             f"{tuple(labels.shape)}: not a per-base (token) classifier")
        keep = (labels != IGNORE_INDEX) & mask.bool()
        window = torch.arange(len(ids))[:, None].expand_as(labels) + number * batch_size
        offset = torch.arange(labels.shape[1])[None, :].expand_as(labels)
        probs.append(logits.softmax(-1)[keep].numpy())
        targets.append(labels[keep].numpy())
        windows.append(window[keep].numpy())
        positions.append((torch.from_numpy(starts[window[keep].numpy()]) + offset[keep]).numpy())
    return tuple(np.concatenate(part) for part in (probs, targets, windows, positions))


def _windows(data: str | Path, max_length: int | None) -> GenomeAnnotationDataset:
    return GenomeAnnotationDataset(data, max_length=max_length, padding=None)


def token_baseline_predictions(name: str, train: str | Path, test: str | Path, dataset: str,
                               seed: int = 0, cnn_epochs: int = 5,
                               max_length: int | None = None) -> pd.DataFrame:
    """Fit baseline ``name`` (:data:`TOKEN_BASELINES`) on the training windows and predict
    every labelled test base."""
    from hyena_glt.evaluation.token_baselines import (
        OrfKmerLogisticRegression,
        PerBaseCNNBaseline,
        stacked,
    )

    train_windows, test_windows = _windows(train, max_length), _windows(test, max_length)
    test_ids, test_labels = stacked(test_windows)
    if name == "orf_kmer":
        probability = OrfKmerLogisticRegression(seed=seed).fit(*stacked(train_windows)
                                                               ).predict_proba(test_ids)
    elif name == "cnn":
        probability = PerBaseCNNBaseline(cnn_epochs, seed).fit(*stacked(train_windows)
                                                               ).predict_proba(test_ids)
    else:
        check_baselines([name], TOKEN_BASELINES, "token_classification")
    starts = np.asarray(read_table(test, columns=["start"]).column("start").to_pylist())
    length = test_labels.shape[1]
    window = np.repeat(np.arange(len(test_labels)), length)
    position = starts[window] + np.tile(np.arange(length), len(test_labels))
    keep = test_labels.reshape(-1) != IGNORE_INDEX
    return predictions_frame(f"{name}_baseline", dataset, "token_classification",
                             test_labels.reshape(-1)[keep], probability[keep], window[keep],
                             position[keep])


# --- variant effect ----------------------------------------------------------------------------
def _variant_positions(data: str | Path) -> np.ndarray:
    """``pos`` of the labelled variants, in the order :class:`VariantEffectDataset` reads them."""
    table = read_table(data, columns=["pos", "label"]).to_pandas()
    return table.loc[table["label"].notna(), "pos"].to_numpy(dtype=np.int64)


def variant_model_predictions(model: torch.nn.Module, data: str | Path, name: str,
                              dataset: str, batch_size: int = 32,
                              max_length: int | None = None, bin_size: int = 100
                              ) -> pd.DataFrame:
    """Rows of a fine-tuned paired model (``HyenaGLTForVariantEffect``)."""
    from hyena_glt.evaluation.variant_effect import predict_variant_effects

    scores, labels = predict_variant_effects(model, data, batch_size, max_length)
    if not len(labels):
        raise DataError("no labelled variants to evaluate", path=str(data))
    positions = _variant_positions(data)
    return predictions_frame(name, dataset, "variant_effect", labels, scores,
                             position_bins(positions, bin_size), positions)


def _binary(labels: np.ndarray) -> bool:
    return bool(np.all(np.isin(labels, (0, 1))))


def zero_shot_predictions(scores: pd.DataFrame, name: str, dataset: str,
                          bin_size: int = 100) -> pd.DataFrame:
    """Rows of zero-shot Δ log-likelihoods (:func:`score_variants`): for class labels
    ``score`` = −Δ, so that higher means damaging (class 1) as for every other model; for
    measured function scores (lower = disruptive) ``prediction`` = Δ."""
    frame = scores[scores["label"].notna()]
    positions = frame["pos"].to_numpy(dtype=np.int64)
    labels = frame["label"].to_numpy()
    delta = frame["delta_ll"].to_numpy(dtype=np.float64)
    return predictions_frame(name, dataset, "variant_effect", labels,
                             -delta if _binary(labels) else delta,
                             position_bins(positions, bin_size), positions)


def variant_baseline_predictions(name: str, train: str | Path, test: str | Path, dataset: str,
                                 seed: int = 0, bin_size: int = 100) -> pd.DataFrame:
    """Fit the context logistic regression on the training variants, score the test ones."""
    from hyena_glt.evaluation.variant_baselines import (
        ContextLogisticRegression,
        context_features,
    )

    check_baselines([name], VARIANT_BASELINES, "variant_effect")
    train_set = VariantEffectDataset(train, max_length=None, padding=None)
    test_set = VariantEffectDataset(test, max_length=None, padding=None)
    decode = train_set.tokenizer.decode
    model = ContextLogisticRegression(seed=seed).fit(context_features(train_set, decode),
                                                     train_set.labels)
    positions = _variant_positions(test)
    return predictions_frame(f"{name}_baseline", dataset, "variant_effect",
                             np.asarray(test_set.labels),
                             model.predict_proba(context_features(test_set, decode)),
                             position_bins(positions, bin_size), positions)


# --- sequence tables (classification or regression) -------------------------------------------
def table_baselines(data: str | Path) -> tuple[str, ...]:
    """Baselines of a sequence table: kmer and cnn for class labels, kmer (ridge) for
    real-valued ones."""
    from hyena_glt.data.datasets import GenomicDataset

    labelled = GenomicDataset(data_path=data, max_length=None, padding=None)
    return ("kmer",) if labelled.label2id is None else TABLE_BASELINES


def table_baseline_predictions(name: str, train: str | Path, test: str | Path, dataset: str,
                               seed: int = 0, cnn_epochs: int = 5) -> pd.DataFrame:
    """Fit a sequence baseline (``kmer``: k-mer logistic or, for real-valued labels, ridge
    regression; ``cnn``: the Genomic-Benchmarks CNN, classification only) on the training
    table and predict the test one."""
    from hyena_glt.evaluation.baselines import (
        CNNBaseline,
        KmerLogisticRegression,
        KmerRidgeRegression,
    )
    from hyena_glt.evaluation.benchmark import BenchmarkTask

    task = BenchmarkTask.from_split(train, test, name=dataset, seed=seed)
    regression = task.task_type == "regression"
    check_baselines([name], ("kmer",) if regression else TABLE_BASELINES, task.task_type)
    if name == "kmer":
        model = KmerRidgeRegression() if regression else KmerLogisticRegression()
    else:
        model = CNNBaseline(epochs=cnn_epochs, seed=seed, tokenizer=task.tokenizer)
    model.fit(task.train_sequences, task.train_labels)
    output = (model.predict(task.test_sequences) if regression
              else model.predict_proba(task.test_sequences))
    return predictions_frame(f"{name}_baseline", dataset, task.task_type, task.test_labels,
                             output, np.arange(len(task.test_labels)))
