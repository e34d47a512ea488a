"""The validation part of a fine-tuning run and the decision threshold chosen on it.

A binary head trained on imbalanced data (most bases of a chloroplast genome are CDS) rarely
has its best calls at P = 0.5, so fine-tuning picks the threshold on held-out data and stores
it with the model (``config.extra``, see :data:`~hyena_glt.evaluation.metrics.THRESHOLD_KEY`),
where ``hyena-glt predict``, the trainer's evaluation and :class:`GenomicMetrics` read it.

The threshold maximises the Matthews correlation coefficient (MCC) over the validation bases
or sequences. MCC, not F1: F1 of the positive class ignores true negatives, so when the
feature is the majority class it is maximised by calling everything positive (the very
failure a threshold should fix); MCC uses all four cells of the confusion matrix and is 0 for
any constant call.

Without ``val`` data, :func:`carve_validation` holds out a seeded fraction of the training
part: whole windows of per-base data (bases of one window are not independent), or a
label-stratified share of a sequence table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Subset

from ..errors import ConfigurationError
from ..evaluation.metrics import THRESHOLD_KEY, GenomicMetrics, decide
from .objectives import IGNORE_INDEX, model_inputs

__all__ = ["DatasetPart", "carve_validation", "binary_probabilities", "best_mcc_threshold",
           "choose_threshold", "THRESHOLD_METRIC"]

logger = logging.getLogger(__name__)

#: The metric the threshold maximises (stored as ``decision_threshold_metric``).
THRESHOLD_METRIC = "mcc"


class DatasetPart(Subset):
    """Rows of a dataset that keep what fine-tuning reads from it (``labels (N,)`` of
    sequence tables, ``id2label``, ``tokenizer``); items are the dataset's own."""

    def __init__(self, dataset: Any, indices: np.ndarray) -> None:
        super().__init__(dataset, indices.tolist())
        labels = getattr(dataset, "labels", None)
        self.labels = labels[indices] if isinstance(labels, np.ndarray) and labels.ndim == 1 \
            and len(labels) == len(dataset) else None
        self.id2label = getattr(dataset, "id2label", None)
        self.tokenizer = getattr(dataset, "tokenizer", None)


def _sequence_labels(dataset: Any) -> np.ndarray:
    labels = getattr(dataset, "labels", None)
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and len(labels) == len(dataset):
        return labels
    return np.array([int(dataset[i]["labels"]) for i in range(len(dataset))])


def carve_validation(dataset: Any, fraction: float, seed: int, stratify: bool
                     ) -> tuple[DatasetPart, DatasetPart] | None:
    """``(train, validation)`` parts of ``dataset``, or ``None`` when it is too small (fewer
    than two rows, or with ``stratify`` no class with two rows).

    Args:
        fraction: share of rows held out, in (0, 1); at least one row (per class) goes.
        seed: the split's seed, so a rerun (or a resumed run) sees the same parts.
        stratify: hold out ``fraction`` of each class of the rows' labels (sequence tables).

    Raises:
        ConfigurationError: ``fraction`` outside (0, 1).
    """
    if not 0 < fraction < 1:
        raise ConfigurationError(f"--val-fraction {fraction!r}: give a share in (0, 1), or 0 "
                                 "to train on all rows without a validation part")
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(dataset))]
    if stratify:
        labels = _sequence_labels(dataset)
        groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    held = [rng.permutation(rows)[:max(1, round(fraction * len(rows)))] for rows in groups
            if len(rows) >= 2]
    if not held:
        return None
    val = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(len(dataset)), val)
    return DatasetPart(dataset, train), DatasetPart(dataset, val)


@torch.no_grad()
def binary_probabilities(model: nn.Module, batches: Any, device: torch.device,
                         autocast: Callable[[], Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(P(class 1), label)`` of every labelled real base (per-base heads) or sequence."""
    model.eval()
    probabilities, targets = [], []
    for batch in batches:
        inputs = {key: value.to(device) for key, value in model_inputs(batch).items()}
        labels = batch["labels"]
        with autocast():
            logits = model(**inputs).logits.float()
        probability = logits.softmax(-1)[..., 1].cpu()
        if labels.dim() == 2:
            keep = (labels != IGNORE_INDEX) & inputs["attention_mask"].bool().cpu()
            probability, labels = probability[keep], labels[keep]
        probabilities.append(probability.double().numpy())
        targets.append(labels.numpy())
    return np.concatenate(probabilities), np.concatenate(targets).astype(np.int64)


def best_mcc_threshold(probability: np.ndarray, target: np.ndarray) -> float:
    """The threshold on ``probability`` with the highest MCC against binary ``target``.

    Every cut between two distinct probabilities is tried at once (sorted cumulative counts);
    the threshold is the midpoint of the cut, so a probability seen in validation falls
    clearly on one side.
    """
    order = np.argsort(-probability, kind="stable")
    scores, labels = probability[order], target[order].astype(np.float64)
    last = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))  # end of each tie group
    tp = np.cumsum(labels)[last]
    fp = (last + 1) - tp
    positives, negatives = labels.sum(), len(labels) - labels.sum()
    fn, tn = positives - tp, negatives - fp
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    mcc = np.divide(tp * tn - fp * fn, denominator, out=np.zeros_like(tp),
                    where=denominator > 0)
    best = int(np.argmax(mcc))
    below = scores[last[best] + 1] if last[best] + 1 < len(scores) else 0.0
    return float(np.clip((scores[last[best]] + below) / 2, 1e-6, 1 - 1e-6))


def choose_threshold(probability: np.ndarray, target: np.ndarray, source: str,
                     unit: str) -> dict[str, Any] | None:
    """The ``config.extra`` entries of the MCC-best threshold, logged against 0.5; ``None``
    (and a warning) when the validation part holds one class only.

    Args:
        source: where the validation part came from (``"--val"``, ``"10% of --train"``).
        unit: what was scored (``"bases"``, ``"sequences"``).
    """
    if len(np.unique(target)) < 2:
        logger.warning("validation %s (%s) hold one class only: no decision threshold chosen, "
                       "0.5 applies", unit, source)
        return None
    threshold = best_mcc_threshold(probability, target)
    scores = np.stack([1 - probability, probability], axis=1)
    at = {cut: GenomicMetrics().classification(scores, target, decision_threshold=cut)
          for cut in (0.5, threshold)}
    logger.info("decision threshold %.4g chosen on %d validation %s (%s): MCC %.4f at 0.5 -> "
                "%.4f, F1 %.4f -> %.4f, accuracy %.4f -> %.4f", threshold, len(target), unit,
                source, *(at[cut][name] for name in ("mcc", "f1_macro", "accuracy")
                          for cut in (0.5, threshold)))
    return {THRESHOLD_KEY: threshold, f"{THRESHOLD_KEY}_metric": THRESHOLD_METRIC,
            f"{THRESHOLD_KEY}_validation": {
                "source": source, "unit": unit, "size": len(target),
                "mcc_at_0.5": at[0.5]["mcc"], "mcc_at_threshold": at[threshold]["mcc"],
                "positives_at_0.5": int(decide(probability).sum()),
                "positives": int(decide(probability, threshold).sum())}}
