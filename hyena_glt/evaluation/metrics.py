"""Metrics for every Hyena-GLT task, as flat JSON-serialisable dicts.

``GenomicMetrics.compute_all(predictions, targets, task_type=...)`` maps a task type onto a metric
family (classification, per-base token classification, regression, sequence comparison, language
modelling) and returns ``{name: float}`` plus per-class/per-output entries named ``"metric/label"``,
so the trainer can append it to ``metrics.jsonl`` and the report can tabulate it. Standard metrics come
from scikit-learn and scipy; BLEU, edit distance and identity are implemented here because their
definitions (documented on each method) matter for nucleotide/amino-acid strings.

Inputs may be numpy arrays, torch tensors or (nested) lists. Bad shapes, NaN/inf values, empty
inputs or out-of-range labels raise :class:`~hyena_glt.errors.DataError` naming the shapes; an unknown
task type raises :class:`~hyena_glt.errors.ConfigurationError`.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import special, stats
from sklearn import metrics as skm

from hyena_glt.config import TASK_TYPES
from hyena_glt.errors import ConfigurationError, DataError, HyenaGLTWarning

__all__ = ["GenomicMetrics", "TASK_FAMILIES", "THRESHOLD_KEY", "stored_threshold", "decide"]

logger = logging.getLogger(__name__)

#: Metric family of each accepted ``task_type`` (the config's TASK_TYPES plus generic names).
TASK_FAMILIES: dict[str, str] = {
    "protein_function": "classification",
    "sequence_classification": "classification",
    "classification": "classification",
    "genome_annotation": "token_classification",
    "token_classification": "token_classification",
    "regression": "regression",
    "variant_effect": "variant_effect",
    "dna_sequence_modeling": "language_model",
    "sequence": "sequence",
}
assert set(TASK_TYPES) <= set(TASK_FAMILIES), "every config task type needs a metric family"

Metrics = dict[str, Any]

#: ``config.extra`` key of a binary model's threshold on P(class 1), chosen on validation data
#: at fine-tuning time (:mod:`hyena_glt.training.threshold`).
THRESHOLD_KEY = "decision_threshold"
#: The threshold of a model that stores none.
DEFAULT_THRESHOLD = 0.5


def stored_threshold(config: Any) -> float | None:
    """The decision threshold a model's config stores (``config.extra``), else ``None``."""
    value = (getattr(config, "extra", None) or {}).get(THRESHOLD_KEY)
    return None if value is None else float(value)


def decide(probability: Any, threshold: float | None = None) -> np.ndarray:
    """Class-1 decisions ``(N,)`` of P(class 1): ``p >= threshold`` (0.5 when ``None``).

    The one place probabilities become calls, so the metrics, the trainer's evaluation and
    the threshold search agree on what a stored threshold means (ties go to class 1).
    """
    cut = DEFAULT_THRESHOLD if threshold is None else threshold
    return (np.asarray(probability) >= cut).astype(np.int64)


def _as_array(values: Any, name: str) -> np.ndarray:
    """Numpy array of a tensor/array/list; rejects empty, non-numeric and non-finite inputs."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.is_floating_point():
            values = values.double()
        values = values.numpy()
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as err:
        raise DataError(f"{name} cannot be read as a numeric array: {err}") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise DataError(f"{name} must be numeric, got dtype {array.dtype} (ragged nested lists?)")
    if array.size == 0:
        raise DataError(f"{name} is empty (shape {array.shape})")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise DataError(f"{name} contains {bad} NaN/inf value(s) (shape {array.shape})")
    return array


def _as_labels(values: np.ndarray, name: str) -> np.ndarray:
    """Integer class labels from an integer-valued array; negative or fractional values fail."""
    if np.issubdtype(values.dtype, np.floating) and not np.all(values == np.round(values)):
        raise DataError(f"{name} must hold integer class labels, got fractional values")
    labels = values.astype(np.int64)
    if labels.min() < 0:
        raise DataError(f"{name} holds negative label {int(labels.min())}; mask it out "
                        "(ignore_index / attention_mask) or use labels >= 0")
    return labels


def _check_same_length(predictions: np.ndarray, targets: np.ndarray) -> None:
    if predictions.shape[0] != targets.shape[0]:
        raise DataError(f"predictions and targets differ in length: predictions shape "
                        f"{predictions.shape}, targets shape {targets.shape}")


def _token_keep_mask(targets: np.ndarray, attention_mask: Any, ignore_index: int) -> np.ndarray:
    """Boolean mask of real positions: target != ignore_index and attention_mask != 0."""
    keep = targets != ignore_index
    if attention_mask is not None:
        mask = _as_array(attention_mask, "attention_mask")
        if mask.shape != targets.shape:
            raise DataError(f"attention_mask shape {mask.shape} does not match targets shape "
                            f"{targets.shape}")
        keep &= mask != 0
    if not keep.any():
        raise DataError(f"no real positions left in targets of shape {targets.shape} after "
                        f"removing ignore_index={ignore_index} and padding")
    return keep


def _select_positions(predictions: Any, targets: Any, attention_mask: Any,
                      ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Flatten ``(..., L[, C])`` predictions and ``(..., L)`` targets to the real positions only.

    Finiteness is checked after selection: padded positions may hold anything.
    """
    if isinstance(predictions, torch.Tensor) and predictions.is_floating_point():
        predictions = predictions.detach().cpu().double()
    try:
        preds = np.asarray(predictions)
    except ValueError as err:
        raise DataError(f"predictions cannot be read as an array: {err}") from None
    tgts = _as_array(targets, "targets")
    if preds.shape[: tgts.ndim] != tgts.shape or preds.ndim not in (tgts.ndim, tgts.ndim + 1):
        raise DataError(f"predictions shape {preds.shape} must be targets shape {tgts.shape} "
                        f"(labels) or targets shape + (num_classes,) (logits/probabilities)")
    keep = _token_keep_mask(tgts, attention_mask, ignore_index)
    return (_as_array(preds[keep], "predictions at real positions"),
            _as_array(tgts[keep], "targets at real positions"))


def _is_probability_rows(scores: np.ndarray) -> bool:
    """Rows in [0, 1] summing to 1 (atol 1e-3) are probabilities; anything else is logits."""
    return bool(scores.min() >= 0 and scores.max() <= 1
                and np.allclose(scores.sum(axis=1), 1, atol=1e-3))


def _class_scores(predictions: np.ndarray, targets: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Predicted labels ``(N,)`` and ranking scores ``(N, C)`` (``None`` for hard labels).

    Column k of the ranking scores increases with P(class k): the probabilities themselves when
    given, else a form of the logits that does not saturate (a sigmoid or softmax rounds large
    logits to exactly 1 in float64, creating ties that change AUROC): the logit for (N,) scores,
    the margin ``l1 - l0`` for (N, 2) logits, log-softmax for more classes.

    ``(N, C)`` rows are probabilities or logits (see ``_is_probability_rows``). ``(N,)`` or
    ``(N, 1)`` is binary unless integer-valued: integer/bool dtype, or integer-valued floats outside
    [0, 1], are hard labels; floats in [0, 1] are P(class 1) (label = p >= 0.5); other floats are
    logits (label = logit >= 0).
    """
    if predictions.ndim == 2 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    if predictions.ndim == 2:
        scores = predictions.astype(np.float64)
        if _is_probability_rows(scores):
            return scores.argmax(axis=1), scores
        if scores.shape[1] == 2:
            margin = scores[:, 1] - scores[:, 0]
            return scores.argmax(axis=1), np.stack([-margin, margin], axis=1)
        return scores.argmax(axis=1), special.log_softmax(scores, axis=1)
    if predictions.ndim != 1:
        raise DataError(f"classification predictions must be (N,) or (N, C), got shape "
                        f"{predictions.shape} (use token_classification for (B, L, C))")
    is_integer = np.issubdtype(predictions.dtype, np.integer) or predictions.dtype == bool
    in_unit = predictions.min() >= 0 and predictions.max() <= 1
    integral = np.all(predictions == np.round(predictions))
    if is_integer or (integral and not in_unit):
        return _as_labels(predictions, "predictions"), None
    if targets.max() > 1:
        raise DataError(f"(N,) score predictions are binary only, but targets hold label "
                        f"{int(targets.max())}; pass (N, C) logits/probabilities")
    score = predictions.astype(np.float64)
    threshold, negative = (0.5, 1 - score) if in_unit else (0.0, -score)
    return (score >= threshold).astype(np.int64), np.stack([negative, score], axis=1)


def _thresholded(predictions: np.ndarray, scores: np.ndarray | None, threshold: float
                 ) -> np.ndarray:
    """:func:`decide` on P(class 1) of binary scores (probabilities, or logits through a sigmoid).

    Raises:
        ConfigurationError: the scores are not binary (hard labels or more than two classes).
    """
    if scores is None or scores.shape[1] != 2:
        raise ConfigurationError(f"decision_threshold={threshold:g} applies to binary scores; got "
                                 f"predictions of shape {predictions.shape}: leave it out")
    if not 0 < threshold < 1:
        raise ConfigurationError(f"decision_threshold={threshold!r} must lie in (0, 1)")
    if _is_probability_rows(scores):
        return decide(scores[:, 1], threshold)
    return decide(special.expit(scores[:, 1]), threshold)  # margin or logit -> P(class 1)


def _correlations(targets: np.ndarray, predictions: np.ndarray, what: str) -> dict[str, float]:
    """Pearson r and Spearman rho with p-values; empty (with a warning) if either is constant."""
    if np.ptp(predictions) == 0 or np.ptp(targets) == 0:
        warnings.warn(f"{what}: values are constant, Pearson/Spearman undefined and left out",
                      HyenaGLTWarning, stacklevel=3)
        return {}
    pearson, spearman = stats.pearsonr(targets, predictions), stats.spearmanr(targets, predictions)
    return {"pearson_r": pearson.statistic, "pearson_p": pearson.pvalue,
            "spearman_rho": spearman.statistic, "spearman_p": spearman.pvalue}


def _json_ready(results: Metrics) -> Metrics:
    """Plain Python floats/ints so ``json.dumps`` works on the result."""
    out: Metrics = {}
    for key, value in results.items():
        if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, (np.floating, float)):
            out[key] = float(value)
        else:
            out[key] = value
    return out


def _tokens(sequence: Any) -> list:
    """Characters of a string, or the items of a token-id sequence (list/array/tensor)."""
    if isinstance(sequence, str):
        return list(sequence)
    if isinstance(sequence, torch.Tensor | np.ndarray):
        return sequence.tolist()
    return list(sequence)


def _levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance (unit-cost insert/delete/substitute), one numpy row per token of ``a``.

    Row update: ``cur[j] = min(prev[j] + 1, prev[j-1] + (a_i != b_j), cur[j-1] + 1)``. The last
    (insertion) term chains along the row; ``min_k<=j (cur[k] + j - k)`` is a running minimum of
    ``cur - j``, so the whole row is vectorised.
    """
    if len(a) == 0 or len(b) == 0:
        return max(len(a), len(b))
    b_array = np.empty(len(b), dtype=object)
    b_array[:] = list(b)
    offsets = np.arange(len(b) + 1)
    row = offsets.copy()
    for i, token in enumerate(a, start=1):
        cur = np.empty_like(row)
        cur[0] = i
        cur[1:] = np.minimum(row[:-1] + (b_array != token), row[1:] + 1)
        row = np.minimum.accumulate(cur - offsets) + offsets
    return int(row[-1])


def _ngram_counts(tokens: list, n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


class GenomicMetrics:
    """Metric families for Hyena-GLT tasks; every method returns a flat JSON-ready dict.

    Inputs (arrays, tensors or lists): classification ``(N, C)`` scores or ``(N,)`` against
    ``(N,)`` int labels; token classification ``(B, L, C)`` or ``(B, L)`` against ``(B, L)``;
    regression ``(N,)`` or ``(N, K)``; language model ``(B, L, V)`` logits against ``(B, L)``
    ids; sequence metrics take lists of strings or id sequences.

    Args:
        ignore_index: target value marking positions to skip in token-level metrics (-100, as in
            PyTorch's cross-entropy).
        max_ngram: highest n-gram order of BLEU (4 = the standard BLEU-4).
    """

    def __init__(self, ignore_index: int = -100, max_ngram: int = 4) -> None:
        if max_ngram < 1:
            raise ConfigurationError(f"max_ngram must be >= 1, got {max_ngram}")
        self.ignore_index = ignore_index
        self.max_ngram = max_ngram

    def compute_all(self, predictions: Any, targets: Any,
                    task_type: str = "sequence_classification", **kwargs: Any) -> Metrics:
        """Metrics of the family ``task_type`` maps onto (see ``TASK_FAMILIES``).

        ``variant_effect``: binary targets (all 0/1) are scored as classification of the labels
        against the predictions (higher = class 1, e.g. a variant-effect head); continuous targets
        as regression (Spearman etc.). For zero-shot Δ log-likelihoods (lower = damaging) use
        :meth:`functional_impact_score`. Extra keyword arguments (``label_names``,
        ``attention_mask``) go to the family's method.

        Raises:
            ConfigurationError: unknown ``task_type``.
            DataError: bad shapes, NaN/inf, empty inputs.
        """
        family = TASK_FAMILIES.get(task_type)
        if family is None:
            raise ConfigurationError(f"unknown task_type {task_type!r}; expected one of "
                                     f"{', '.join(TASK_FAMILIES)}")
        if family == "variant_effect":
            target_array = _as_array(targets, "targets")
            binary = bool(np.all(np.isin(target_array, (0, 1))))
            family = "classification" if binary else "regression"
        logger.debug("task_type %s -> %s metrics", task_type, family)
        return getattr(self, family)(predictions, targets, **kwargs)

    def classification(self, predictions: Any, targets: Any,
                       label_names: Sequence[str] | None = None,
                       decision_threshold: float | None = None) -> Metrics:
        """Accuracy, balanced accuracy, precision/recall/F1 (macro and per class), MCC, AUROC,
        AUPRC and the confusion matrix.

        Args:
            predictions: ``(N, C)`` logits or probabilities (rows in [0, 1] summing to 1),
                ``(N,)`` binary scores (P(class 1) in [0, 1], else logits), or ``(N,)`` hard
                labels (integer dtype, or integer-valued floats outside [0, 1]; AUROC/AUPRC are
                then omitted). AUROC/AUPRC rank by the logits themselves where given, so large
                logits that a sigmoid would round to 1.0 keep their order.
            targets: ``(N,)`` integer labels in ``[0, C)``.
            label_names: optional names of the C classes, used in per-class keys and
                ``class_names``; default ``"0", "1", ...``.
            decision_threshold: binary scores only: call class 1 where P(class 1) >= it (see
                :func:`decide`; a model's :func:`stored_threshold`) instead of the argmax. It
                changes the thresholded metrics (accuracy, precision, recall, F1, MCC, confusion
                matrix), not AUROC/AUPRC, and is reported as ``decision_threshold``.

        Returns:
            Macro averages run over classes present in targets or predictions (scikit-learn's
            convention); per-class entries ``"precision/<name>"``, ``"recall/<name>"``,
            ``"f1/<name>"``, ``"support/<name>"`` for those classes. Binary AUROC/AUPRC use the
            class-1 score; multi-class ones are one-vs-rest means over classes present in targets
            (absent classes are skipped with a :class:`HyenaGLTWarning`), with ``"auroc/<name>"``.
        """
        preds = _as_array(predictions, "predictions")
        tgts = _as_array(targets, "targets")
        if tgts.ndim != 1:
            raise DataError(f"classification targets must be (N,), got shape {tgts.shape}")
        _check_same_length(preds, tgts)
        tgts = _as_labels(tgts, "targets")
        predicted, scores = _class_scores(preds, tgts)
        if decision_threshold is not None:
            predicted = _thresholded(preds, scores, decision_threshold)
        if scores is not None:
            num_classes = scores.shape[1]
            if tgts.max() >= num_classes:
                raise DataError(f"targets hold label {int(tgts.max())} but predictions shape "
                                f"{preds.shape} has only {num_classes} classes")
        else:
            num_classes = max(2, int(tgts.max()) + 1, int(predicted.max()) + 1,
                              len(label_names) if label_names is not None else 0)
        names = [str(k) for k in range(num_classes)] if label_names is None else list(label_names)
        if len(names) != num_classes:
            raise DataError(f"label_names has {len(names)} names but there are {num_classes} "
                            f"classes (predictions shape {preds.shape})")

        present = np.union1d(tgts, predicted)
        precision, recall, f1, support = skm.precision_recall_fscore_support(
            tgts, predicted, labels=present, zero_division=0)
        with warnings.catch_warnings():  # "y_pred contains classes not in y_true": handled below
            warnings.simplefilter("ignore", UserWarning)
            balanced = skm.balanced_accuracy_score(tgts, predicted)
        results: Metrics = {
            "n_samples": len(tgts),
            "accuracy": skm.accuracy_score(tgts, predicted),
            "balanced_accuracy": balanced,
            "precision_macro": precision.mean(),
            "recall_macro": recall.mean(),
            "f1_macro": f1.mean(),
            "mcc": skm.matthews_corrcoef(tgts, predicted),
        }
        if scores is not None:
            results.update(self._ranking_metrics(scores, tgts, names))
        for k, p, r, f, s in zip(present, precision, recall, f1, support, strict=True):
            results.update({f"precision/{names[k]}": p, f"recall/{names[k]}": r,
                            f"f1/{names[k]}": f, f"support/{names[k]}": int(s)})
        results["confusion_matrix"] = skm.confusion_matrix(
            tgts, predicted, labels=np.arange(num_classes)).tolist()
        results["class_names"] = names
        if decision_threshold is not None:
            results["decision_threshold"] = decision_threshold
        return _json_ready(results)

    @staticmethod
    def _ranking_metrics(scores: np.ndarray, targets: np.ndarray, names: list[str]) -> Metrics:
        """AUROC/AUPRC; classes without both positives and negatives in targets are skipped."""
        scored = [k for k in range(scores.shape[1]) if 0 < np.sum(targets == k) < len(targets)]
        skipped = [names[k] for k in range(scores.shape[1]) if k not in scored]
        if skipped:
            warnings.warn(f"AUROC/AUPRC skipped for class(es) {skipped}: absent from targets (or "
                          f"the only class present) among {len(targets)} samples",
                          HyenaGLTWarning, stacklevel=3)
        if not scored:
            return {}
        if scores.shape[1] == 2:
            return {"auroc": skm.roc_auc_score(targets, scores[:, 1]),
                    "auprc": skm.average_precision_score(targets, scores[:, 1])}
        auroc = {k: skm.roc_auc_score(targets == k, scores[:, k]) for k in scored}
        auprc = {k: skm.average_precision_score(targets == k, scores[:, k]) for k in scored}
        results: Metrics = {"auroc": float(np.mean(list(auroc.values()))),
                            "auprc": float(np.mean(list(auprc.values())))}
        for k in scored:
            results[f"auroc/{names[k]}"] = auroc[k]
            results[f"auprc/{names[k]}"] = auprc[k]
        return results

    def token_classification(self, predictions: Any, targets: Any, attention_mask: Any = None,
                             label_names: Sequence[str] | None = None,
                             decision_threshold: float | None = None) -> Metrics:
        """Per-base classification metrics over real positions (as :meth:`classification`).

        Args:
            predictions: ``(B, L, C)`` logits/probabilities or ``(B, L)`` predicted labels.
            targets: ``(B, L)`` labels; positions equal to ``ignore_index`` are skipped.
            attention_mask: optional ``(B, L)``; positions where it is 0 are skipped too.
            label_names: optional class names.
            decision_threshold: as in :meth:`classification`.
        """
        preds, tgts = _select_positions(predictions, targets, attention_mask, self.ignore_index)
        return self.classification(preds, tgts, label_names=label_names,
                                   decision_threshold=decision_threshold)

    def regression(self, predictions: Any, targets: Any) -> Metrics:
        """MSE, RMSE, MAE, R², Pearson r (+ p) and Spearman rho (+ p).

        Args:
            predictions, targets: ``(N,)`` or ``(N, K)`` (same shape; ``(N, 1)`` and ``(N,)`` match),
                N >= 2. For K > 1 outputs the top-level values are means over outputs and each
                output also gets ``"<metric>/<k>"`` entries.

        A correlation with a constant input is undefined: it is left out with a warning.
        """
        preds = _as_array(predictions, "predictions").astype(np.float64)
        tgts = _as_array(targets, "targets").astype(np.float64)
        shapes = f"predictions shape {preds.shape}, targets shape {tgts.shape}"
        preds, tgts = (a[:, None] if a.ndim == 1 else a for a in (preds, tgts))
        if preds.shape != tgts.shape or preds.ndim != 2:
            raise DataError(f"regression needs matching (N,) or (N, K) arrays, got {shapes}")
        if len(tgts) < 2:
            raise DataError(f"regression needs at least 2 samples, got shape {tgts.shape}")
        per_output: dict[str, np.ndarray] = {
            "mse": skm.mean_squared_error(tgts, preds, multioutput="raw_values"),
            "mae": skm.mean_absolute_error(tgts, preds, multioutput="raw_values"),
            "r2": skm.r2_score(tgts, preds, multioutput="raw_values"),
        }
        per_output["rmse"] = np.sqrt(per_output["mse"])
        correlations: dict[str, list[float]] = {}
        for k in range(tgts.shape[1]):
            for name, value in _correlations(tgts[:, k], preds[:, k], f"output {k}").items():
                correlations.setdefault(name, []).append(float(value))
                if tgts.shape[1] > 1:
                    per_output.setdefault(name, np.full(tgts.shape[1], np.nan))[k] = value
        results: Metrics = {"n_samples": len(tgts)}
        results.update({name: float(np.mean(values)) for name, values in per_output.items()
                        if name not in correlations})
        results.update({name: float(np.mean(values)) for name, values in correlations.items()})
        if tgts.shape[1] > 1:
            for name, values in per_output.items():
                results.update({f"{name}/{k}": float(v) for k, v in enumerate(values)
                                if not np.isnan(v)})
        return _json_ready(results)

    def sequence(self, predictions: Sequence[Any], targets: Sequence[Any]) -> Metrics:
        """Corpus BLEU, edit distance and sequence identity of generated vs reference sequences.

        Tokens are the characters of strings, or the items of token-id sequences.

        - ``bleu``: corpus BLEU (Papineni et al. 2002): clipped n-gram matches and n-gram totals
          are summed over the corpus for n = 1..max_ngram, their precisions combined by a
          geometric mean, times the brevity penalty ``exp(1 - r / c)`` when the total hypothesis
          length c is below the reference length r. Smoothing (Lin & Och 2004, "add-one"): for
          n >= 2 the precision is ``(matches + 1) / (total + 1)``, so one missing 4-gram does not
          zero the score of short sequences; unigram precision is unsmoothed.
        - ``edit_distance_mean``: mean Levenshtein distance (unit-cost insert/delete/substitute);
          ``normalized_edit_distance_mean`` divides each by the longer length (0 = identical,
          1 = nothing shared).
        - ``sequence_identity_mean``: per pair, the fraction of equal tokens position by position
          (no gaps) over the first ``min(len)`` positions; length differences are left to edit
          distance and the brevity penalty. Two empty sequences have identity 1, one empty 0.
        - ``exact_match``: fraction of pairs that are identical.
        """
        if isinstance(predictions, str) or isinstance(targets, str):
            raise DataError("sequence metrics take lists of sequences, got a single string")
        hyps, refs = [_tokens(p) for p in predictions], [_tokens(t) for t in targets]
        if not hyps or len(hyps) != len(refs):
            raise DataError(f"need the same non-zero number of predicted and reference "
                            f"sequences, got {len(hyps)} and {len(refs)}")
        matches, totals = np.zeros(self.max_ngram), np.zeros(self.max_ngram)
        distances, normalized, identities = [], [], []
        for hyp, ref in zip(hyps, refs, strict=True):
            for n in range(1, self.max_ngram + 1):
                hyp_counts, ref_counts = _ngram_counts(hyp, n), _ngram_counts(ref, n)
                matches[n - 1] += sum((hyp_counts & ref_counts).values())
                totals[n - 1] += sum(hyp_counts.values())
            distance = _levenshtein(hyp, ref)
            distances.append(distance)
            normalized.append(distance / max(len(hyp), len(ref), 1))
            shortest = min(len(hyp), len(ref))
            same = sum(h == r for h, r in zip(hyp[:shortest], ref[:shortest], strict=True))
            identities.append(same / shortest if shortest else float(len(hyp) == len(ref)))

        precisions = [(matches[i] + (i > 0)) / (totals[i] + (i > 0)) if totals[i] + (i > 0) else 0.0
                      for i in range(self.max_ngram)]
        hyp_length, ref_length = sum(map(len, hyps)), sum(map(len, refs))
        brevity = 1.0 if hyp_length > ref_length else (
            math.exp(1 - ref_length / hyp_length) if hyp_length else 0.0)
        bleu = brevity * math.exp(np.mean(np.log(precisions))) if min(precisions) > 0 else 0.0
        results: Metrics = {
            "n_sequences": len(hyps),
            "bleu": bleu,
            "brevity_penalty": brevity,
            **{f"bleu_precision_{i + 1}": p for i, p in enumerate(precisions)},
            "edit_distance_mean": float(np.mean(distances)),
            "normalized_edit_distance_mean": float(np.mean(normalized)),
            "sequence_identity_mean": float(np.mean(identities)),
            "exact_match": float(np.mean([h == r for h, r in zip(hyps, refs, strict=True)])),
        }
        return _json_ready(results)

    def _reference_log_probs(self, logits: Any, targets: Any,
                             attention_mask: Any) -> tuple[np.ndarray, np.ndarray]:
        """Log-probability of the target id and the argmax id at each real position."""
        scores, ids = _select_positions(logits, targets, attention_mask, self.ignore_index)
        if scores.ndim != 2:
            raise DataError(f"logits must have one more axis than targets (vocabulary), got "
                            f"logits shape {np.shape(logits)}, targets shape {np.shape(targets)}")
        ids = _as_labels(ids, "targets")
        if ids.max() >= scores.shape[1]:
            raise DataError(f"target id {int(ids.max())} is outside the vocabulary of "
                            f"{scores.shape[1]} (logits shape {np.shape(logits)})")
        log_probs = special.log_softmax(scores.astype(np.float64), axis=1)
        return log_probs[np.arange(len(ids)), ids], log_probs.argmax(axis=1) == ids

    def language_model(self, predictions: Any, targets: Any, attention_mask: Any = None) -> Metrics:
        """Cross-entropy (nats/token), perplexity, bits per token and next-token accuracy.

        Args:
            predictions: ``(B, L, V)`` logits; ``predictions[:, t]`` scores ``targets[:, t]``
                (for a causal LM the caller shifts: logits[:, :-1] against ids[:, 1:]).
            targets: ``(B, L)`` token ids; ``ignore_index`` positions are skipped.
            attention_mask: optional ``(B, L)``, 0 = padding.
        """
        log_probs, correct = self._reference_log_probs(predictions, targets, attention_mask)
        cross_entropy = float(-log_probs.mean())
        return _json_ready({
            "n_tokens": len(log_probs),
            "cross_entropy": cross_entropy,
            "perplexity": math.exp(cross_entropy),
            "bits_per_token": cross_entropy / math.log(2),
            "accuracy": float(correct.mean()),
        })

    def conservation_score(self, logits: Any, reference_ids: Any,
                           attention_mask: Any = None) -> Metrics:
        """How predictable the reference bases are to the model: a conservation-style proxy.

        At each real position, the model's probability of the reference base given its context
        (alignment as in :meth:`language_model`). Sites where the model is confident in the
        reference behave like constrained/conserved sites (the premise of zero-shot variant
        scoring): a change there lowers the likelihood most.

        Returns:
            ``conservation_prob_mean`` (mean probability of the reference base, in [0, 1]),
            ``conservation_logprob_mean`` (mean natural-log probability, <= 0) and
            ``n_positions``.
        """
        log_probs, _ = self._reference_log_probs(logits, reference_ids, attention_mask)
        return _json_ready({
            "n_positions": len(log_probs),
            "conservation_prob_mean": float(np.exp(log_probs).mean()),
            "conservation_logprob_mean": float(log_probs.mean()),
        })

    def functional_impact_score(self, delta_log_likelihood: Any, labels: Any = None,
                                continuous_scores: Any = None, damaging_label: int = 1) -> Metrics:
        """Summary of variant Δ log-likelihoods (alt − ref), the zero-shot functional-impact score.

        A variant the model finds less likely than the reference (Δ < 0) is predicted to disrupt
        function (Evo 2's zero-shot method); the more negative, the stronger the predicted impact.

        Args:
            delta_log_likelihood: ``(N,)`` Δ = log P(alt window) − log P(ref window).
            labels: optional ``(N,)`` binary labels; ``damaging_label`` marks the damaging class
                (e.g. loss of function). Adds ``auroc``/``auprc`` of −Δ for that class.
            continuous_scores: optional ``(N,)`` measured effect, e.g. an SGE function score
                (lower = more disruptive). Adds Spearman rho (+ p) of Δ against it (positive when
                the model agrees).

        Returns:
            ``delta_mean``, ``delta_median``, ``delta_std``, ``fraction_negative``, ``n_variants``
            plus the optional entries above.
        """
        delta = _as_array(delta_log_likelihood, "delta_log_likelihood").astype(np.float64)
        if delta.ndim != 1:
            raise DataError(f"delta_log_likelihood must be (N,), got shape {delta.shape}")
        results: Metrics = {
            "n_variants": len(delta),
            "delta_mean": float(delta.mean()),
            "delta_median": float(np.median(delta)),
            "delta_std": float(delta.std()),
            "fraction_negative": float(np.mean(delta < 0)),
        }
        if labels is not None:
            label_array = _as_array(labels, "labels")
            _check_same_length(delta, label_array)
            damaging = label_array == damaging_label
            if damaging.all() or not damaging.any():
                warnings.warn(f"labels hold only one class ({int(damaging.sum())} of "
                              f"{len(damaging)} damaging): AUROC/AUPRC left out",
                              HyenaGLTWarning, stacklevel=2)
            else:
                results["auroc"] = skm.roc_auc_score(damaging, -delta)
                results["auprc"] = skm.average_precision_score(damaging, -delta)
        if continuous_scores is not None:
            scores = _as_array(continuous_scores, "continuous_scores").astype(np.float64)
            _check_same_length(delta, scores)
            correlations = _correlations(scores, delta, "delta_log_likelihood vs scores")
            results.update({k: v for k, v in correlations.items() if k.startswith("spearman")})
        return _json_ready(results)
