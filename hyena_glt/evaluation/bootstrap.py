"""95% bootstrap intervals of test metrics, and a paired bootstrap of two models.

Correlated test examples must move together or the interval is too narrow: the bases of one
window, the variants of one position bin. So resampling draws *units* (a sequence, a window, a
100-bp bin) with replacement and keeps every example of each drawn unit. A paired comparison
scores both models on the same resamples, so the interval of their difference accounts for the
examples they find hard alike.

Each metric takes ``(targets (N,), scores (N,) or (N, C))``: binary and per-base scores are
P(class 1), multi-class scores class probabilities, regression scores predicted values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from hyena_glt.errors import ConfigurationError, DataError

__all__ = ["BootstrapSettings", "Interval", "PairedDelta", "METRICS", "primary_metric",
           "bootstrap_metric", "paired_bootstrap", "UNITS"]

#: The resampling unit of each task type (what moves together).
UNITS = {"sequence_classification": "sequence", "regression": "sequence",
         "token_classification": "window", "variant_effect": "100-bp position bin"}


def _tie_groups(score: np.ndarray) -> tuple[np.ndarray, int]:
    """Rank of each example's score among the distinct scores (ties share a rank)."""
    values, inverse = np.unique(score, return_inverse=True)
    return inverse, len(values)


def _auroc(target: np.ndarray, score: np.ndarray, weight: np.ndarray) -> float:
    """Weighted Mann-Whitney AUROC: P(score of a positive > a negative's), ties count half."""
    score = score if score.ndim == 1 else score[:, 1]
    groups, n = _tie_groups(score)
    positive = np.bincount(groups, weight * (target == 1), minlength=n)
    negative = np.bincount(groups, weight * (target != 1), minlength=n)
    if positive.sum() == 0 or negative.sum() == 0:
        return math.nan
    below = np.cumsum(negative) - negative
    return float((positive * (below + negative / 2)).sum() / (positive.sum() * negative.sum()))


def _auprc(target: np.ndarray, score: np.ndarray, weight: np.ndarray) -> float:
    """Weighted average precision (scikit-learn's step-wise definition)."""
    score = score if score.ndim == 1 else score[:, 1]
    groups, n = _tie_groups(-score)  # highest score first
    positive = np.cumsum(np.bincount(groups, weight * (target == 1), minlength=n))
    total = np.cumsum(np.bincount(groups, weight, minlength=n))
    if positive[-1] == 0:
        return math.nan
    recall_step = np.diff(positive, prepend=0) / positive[-1]
    precision = np.divide(positive, total, out=np.zeros(n), where=total > 0)
    return float((recall_step * precision).sum())


def _confusion(target: np.ndarray, score: np.ndarray, weight: np.ndarray) -> np.ndarray:
    predicted = (score >= 0.5).astype(int) if score.ndim == 1 else score.argmax(1)
    classes = int(max(target.max(), predicted.max())) + 1
    return np.bincount(target * classes + predicted, weight,
                       minlength=classes * classes).reshape(classes, classes)


def _accuracy(target: np.ndarray, score: np.ndarray, weight: np.ndarray) -> float:
    matrix = _confusion(target, score, weight)
    return float(np.trace(matrix) / matrix.sum())


def _f1_macro(target: np.ndarray, score: np.ndarray, weight: np.ndarray) -> float:
    """Mean F1 over the classes present in targets or predictions (scikit-learn's macro)."""
    matrix = _confusion(target, score, weight)
    true_positive, truth, called = np.diag(matrix), matrix.sum(1), matrix.sum(0)
    present = (truth + called) > 0
    return float(np.mean(2 * true_positive[present] / (truth + called)[present]))


def _mcc(target: np.ndarray, score: np.ndarray, weight: np.ndarray) -> float:
    """Matthews correlation (Gorodkin's multi-class form) of the weighted confusion matrix."""
    matrix = _confusion(target, score, weight)
    total, correct = matrix.sum(), np.trace(matrix)
    truth, called = matrix.sum(1), matrix.sum(0)
    denominator = math.sqrt((total ** 2 - called @ called) * (total ** 2 - truth @ truth))
    return float((correct * total - called @ truth) / denominator) if denominator else 0.0


def _spearman(target: np.ndarray, score: np.ndarray, weight: np.ndarray) -> float:
    index = np.repeat(np.arange(len(target)), np.round(weight).astype(int))
    target, score = target[index], score[index]
    if np.ptp(target) == 0 or np.ptp(score) == 0:
        return math.nan
    return float(stats.spearmanr(target, score).statistic)


def _r2(target: np.ndarray, score: np.ndarray, weight: np.ndarray) -> float:
    mean = np.average(target, weights=weight)
    total = np.sum(weight * (target - mean) ** 2)
    return float(1 - np.sum(weight * (target - score) ** 2) / total) if total else math.nan


#: Metric name -> function of (targets, scores, example weights); all higher-is-better. A
#: resample is a weighting (how often each example was drawn), so the scores are sorted once.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "auroc": _auroc, "auprc": _auprc, "accuracy": _accuracy, "f1_macro": _f1_macro,
    "mcc": _mcc, "spearman_rho": _spearman, "r2": _r2,
}


def primary_metric(task_type: str, n_classes: int) -> str:
    """AUROC for binary and per-base tasks, macro-F1 for multi-class, Spearman for
    regression (and continuous variant scores, ``n_classes == 0``)."""
    if task_type == "regression" or n_classes == 0:
        return "spearman_rho"
    return "auroc" if n_classes <= 2 else "f1_macro"


@dataclass(frozen=True)
class BootstrapSettings:
    """What a reader needs to repeat an interval: resamples, seed, level and unit."""

    n_resamples: int = 1000
    seed: int = 0
    level: float = 0.95
    unit: str = "sequence"

    def __post_init__(self) -> None:
        if self.n_resamples < 10:
            raise ConfigurationError(f"n_resamples={self.n_resamples}; use at least 10 "
                                     "(1000 for a report)")
        if not 0 < self.level < 1:
            raise ConfigurationError(f"level={self.level}; it must lie in (0, 1)")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Interval:
    """A metric on the whole test part and its bootstrap percentile interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class PairedDelta:
    """``a - b`` on the test part, its paired-bootstrap interval, and the verdict for ``a``."""

    delta: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        """"better" / "worse" when the interval excludes 0, else "no significant difference"."""
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "no significant difference"


def _resamples(units: np.ndarray, settings: BootstrapSettings) -> np.ndarray:
    """``(n_resamples, N)`` example weights: units drawn with replacement, each example
    weighted by how often its unit was drawn."""
    units = np.asarray(units)
    if units.ndim != 1 or len(units) == 0:
        raise DataError(f"resampling units must be a non-empty (N,) array, got {units.shape}")
    codes = np.unique(units, return_inverse=True)[1]
    n_units = int(codes.max()) + 1
    rng = np.random.default_rng(settings.seed)
    draws = rng.integers(0, n_units, size=(settings.n_resamples, n_units))
    counts = np.stack([np.bincount(draw, minlength=n_units) for draw in draws])
    return counts[:, codes].astype(np.float64)


def _metric(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    if name not in METRICS:
        raise ConfigurationError(f"no bootstrap for metric {name!r}; choose from "
                                 f"{', '.join(METRICS)}")
    return METRICS[name]


def _check(targets: np.ndarray, scores: np.ndarray, units: np.ndarray) -> None:
    if not (len(targets) == len(scores) == len(units)) or len(targets) == 0:
        raise DataError(f"{len(targets)} targets, {len(scores)} scores and {len(units)} units; "
                        "they must be as many, and more than none")
    if not np.all(np.isfinite(scores)):
        raise DataError(f"{int((~np.isfinite(scores)).sum())} scores are NaN or infinite")


def _targets(targets: np.ndarray) -> np.ndarray:
    """Class ids as int (for the confusion matrix); real-valued targets as float."""
    targets = np.asarray(targets)
    integral = np.issubdtype(targets.dtype, np.integer) or np.all(targets == np.round(targets))
    return targets.astype(np.int64) if integral else targets.astype(np.float64)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_metric(metric: str, targets: np.ndarray, scores: np.ndarray, units: np.ndarray,
                     settings: BootstrapSettings = BootstrapSettings()) -> Interval:
    """``metric`` on all examples with its percentile interval over unit resamples.

    Raises:
        DataError: lengths differ, no examples, or non-finite scores.
    """
    function = _metric(metric)
    targets, scores = _targets(targets), np.asarray(scores, dtype=np.float64)
    _check(targets, scores, units)
    values = np.array([function(targets, scores, w) for w in _resamples(units, settings)])
    return Interval(function(targets, scores, np.ones(len(targets))),
                    *_percentiles(values, settings.level))


def paired_bootstrap(metric: str, targets: np.ndarray, scores_a: np.ndarray,
                     scores_b: np.ndarray, units: np.ndarray,
                     settings: BootstrapSettings = BootstrapSettings()) -> PairedDelta:
    """``metric(a) - metric(b)`` on the same examples and the same resamples.

    Raises:
        DataError: lengths differ, no examples, or non-finite scores.
    """
    function = _metric(metric)
    targets = _targets(targets)
    scores_a, scores_b = (np.asarray(s, dtype=np.float64) for s in (scores_a, scores_b))
    _check(targets, scores_a, units)
    _check(targets, scores_b, units)
    deltas = np.array([function(targets, scores_a, w) - function(targets, scores_b, w)
                       for w in _resamples(units, settings)])
    ones = np.ones(len(targets))
    return PairedDelta(function(targets, scores_a, ones) - function(targets, scores_b, ones),
                       *_percentiles(deltas, settings.level))
