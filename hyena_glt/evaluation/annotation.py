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
from torch.utils.data import DataLoader

from hyena_glt.data.datasets import IGNORE_INDEX, GenomeAnnotationDataset, collate_batch
from hyena_glt.data.shards import read_manifest
from hyena_glt.errors import DataError, ModelError
from hyena_glt.evaluation.metrics import GenomicMetrics
from hyena_glt.evaluation.models import model_max_length

__all__ = ["evaluate_token_classifier"]

logger = logging.getLogger(__name__)


def _class_names(shard_dir: Path, num_classes: int) -> list[str] | None:
    """``["other", <feature>]`` for the binary labels of an annotation shard directory."""
    features = read_manifest(shard_dir).get("metadata", {}).get("parameters", {}).get("feature")
    if num_classes != 2 or not features:
        return None
    return ["other", "+".join([features] if isinstance(features, str) else features)]


@torch.no_grad()
def _logits(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    if isinstance(model, torch.nn.Module):
        return model(input_ids, attention_mask).logits.float()
    return model(input_ids.numpy(), attention_mask.numpy()).float()  # OnnxModel


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
    max_length = max_length or model_max_length(model)
    dataset = GenomeAnnotationDataset(data, max_length=max_length, padding=None)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_batch)
    if isinstance(model, torch.nn.Module):
        model.eval()
    probabilities, targets = [], []
    for batch in loader:
        logits = _logits(model, batch["input_ids"], batch["attention_mask"])
        labels = batch["labels"]
        if logits.dim() != 3 or logits.shape[:2] != labels.shape:
            raise ModelError(f"logits of shape {tuple(logits.shape)} for labels of shape "
                             f"{tuple(labels.shape)}: not a per-base (token) classifier")
        keep = (labels != IGNORE_INDEX) & batch["attention_mask"].bool()
        probabilities.append(logits.softmax(-1)[keep].numpy())
        targets.append(labels[keep].numpy())
    probs, target = np.concatenate(probabilities), np.concatenate(targets)
    metrics = GenomicMetrics().classification(
        probs, target, label_names=_class_names(data, probs.shape[1]))
    metrics.update(n_windows=len(dataset), n_bases=len(target))
    logger.info("per-base accuracy %.4f, F1 %.4f, MCC %.4f over %d bases of %d windows",
                metrics["accuracy"], metrics["f1_macro"], metrics["mcc"], len(target),
                len(dataset))
    return metrics
