"""Per-base evaluation of a token classifier on an "annotation" shard directory.

Each window of ``hyena-glt ingest annotation`` carries one label per base (1 inside a feature
such as CDS, else 0). The model — a fine-tuned :class:`HyenaGLTForTokenClassification` or its
ONNX export — predicts ``logits (B, L, C)``; metrics are computed over real bases only (padding
and positions labelled -100 are skipped): per-base accuracy, precision/recall/F1 (macro and per
class), MCC, AUROC and AUPRC of :meth:`GenomicMetrics.classification`, pooled over all windows.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyena_glt.data.shards import read_manifest
from hyena_glt.errors import DataError, ModelError
from hyena_glt.evaluation.metrics import GenomicMetrics, stored_threshold
from hyena_glt.evaluation.models import TorchSequenceClassifier
from hyena_glt.evaluation.predictions import token_predictions

__all__ = ["evaluate_token_classifier", "token_metrics", "TorchTokenClassifier"]

logger = logging.getLogger(__name__)


def _class_names(shard_dir: Path, num_classes: int) -> list[str] | None:
    """``["other", <feature>]`` for the binary labels of an annotation shard directory."""
    features = read_manifest(shard_dir).get("metadata", {}).get("parameters", {}).get("feature")
    if num_classes != 2 or not features:
        return None
    return ["other", "+".join([features] if isinstance(features, str) else features)]


def evaluate_token_classifier(model: Any, data: str | Path, batch_size: int = 8,
                              max_length: int | None = None) -> dict[str, Any]:
    """Per-base metrics of ``model`` on an annotation shard directory.

    Args:
        model: a token-classification torch model or an ``OnnxModel`` of one.
        data: the "annotation" shard directory.
        batch_size: windows per forward pass.
        max_length: windows are cut to their first ``max_length`` bases (default: the model's
            ``sequence_length`` or exported length).

    Returns:
        The classification metrics plus ``n_windows`` and ``n_bases`` (bases scored).

    Raises:
        DataError: not an annotation shard directory. ModelError: the model's output is not
        per base.
    """
    data = Path(data)
    kind = read_manifest(data)["kind"]
    if kind != "annotation":
        raise DataError(f"expected an 'annotation' shard directory, found kind {kind!r}",
                        path=str(data))
    probs, target, window, _ = token_predictions(model, data, batch_size, max_length)
    return token_metrics(probs, target, window, data,
                         stored_threshold(getattr(model, "config", None)))


def token_metrics(probs: np.ndarray, target: np.ndarray, window: np.ndarray, data: str | Path,
                  decision_threshold: float | None = None) -> dict[str, Any]:
    """Per-base classification metrics of :func:`token_predictions` output, plus
    ``n_windows`` and ``n_bases``; classes named after the shards' feature. Bases are called
    at ``decision_threshold`` (the model's :func:`stored_threshold`) when given."""
    metrics = GenomicMetrics().classification(
        probs, target, label_names=_class_names(Path(data), probs.shape[1]),
        decision_threshold=decision_threshold)
    metrics.update(n_windows=len(np.unique(window)), n_bases=len(target))
    logger.info("per-base accuracy %.4f, F1 %.4f, MCC %.4f over %d bases of %d windows",
                metrics["accuracy"], metrics["f1_macro"], metrics["mcc"], len(target),
                metrics["n_windows"])
    return metrics


class TorchTokenClassifier:
    """``predict_proba(ids (N, L)) -> (N * L,)`` per-base P(class 1) of a binary torch token
    classifier (logits ``(B, L, 2)``), the interface of the per-base baselines, so
    :class:`~hyena_glt.evaluation.ModelBenchmark` drives both alike."""

    def __init__(self, model: torch.nn.Module, batch_size: int = 8) -> None:
        self.model, self.batch_size = model, batch_size

    @torch.no_grad()
    def predict_proba(self, ids: np.ndarray) -> np.ndarray:
        self.model.eval()
        probabilities = []
        for batch in torch.as_tensor(np.asarray(ids), dtype=torch.long).split(self.batch_size):
            logits = self.model(batch, torch.ones_like(batch)).logits.float()
            if logits.dim() != 3 or logits.shape[-1] != 2:
                raise ModelError(f"logits of shape {tuple(logits.shape)}: not a binary "
                                 "per-base classifier")
            probabilities.append(logits.softmax(-1)[..., 1].reshape(-1).numpy())
        return np.concatenate(probabilities)

    def parameters(self) -> dict[str, torch.Tensor]:
        """Stored tensors, counted as for every torch model of the benchmark."""
        return TorchSequenceClassifier(self.model).parameters()
