"""The variant-effect baseline: a logistic regression on the sequence context of each variant
and the stop codons its alternate allele creates.

Features of a variant (:func:`context_features`): the one-hot ±``context`` bases of the
reference and the alternate window around it, and, per reading frame through the variant,
whether the alternate allele creates a stop codon the reference lacks (stop gain, the commonest
consequence of a loss-of-function SNV). No annotation column (``consequence``) is read: it would
hand the model the answer. On BRCA1 saturation genome editing it sets the bar a fine-tuned
model must clear (benchmarks/quality_results.md).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from torch.utils.data import Dataset

from hyena_glt.errors import DataError

__all__ = ["context_features", "ContextLogisticRegression", "STOPS"]

STOPS = ("TAA", "TAG", "TGA")


def context_features(dataset: Dataset, decode, context: int = 10) -> np.ndarray:
    """``(N, 8 * (2 * context + 1) + 3)`` features of the variant pairs of ``dataset``.

    Args:
        dataset: items with ``ref_input_ids``, ``alt_input_ids`` and ``variant_offset``
            (e.g. :class:`~hyena_glt.data.VariantEffectDataset` or a ``Subset`` of it).
        decode: ids -> text (the dataset's ``tokenizer.decode``).
        context: bases either side of the variant.
    """
    rows = []
    for index in range(len(dataset)):
        item = dataset[index]
        at = int(item["variant_offset"])
        ref = decode(item["ref_input_ids"].tolist())
        alt = decode(item["alt_input_ids"].tolist())
        features = []
        for window in (ref, alt):
            around = (window[max(0, at - context):at].rjust(context, "N") + window[at]
                      + window[at + 1:at + context + 1].ljust(context, "N"))
            features += [float(base == letter) for base in around for letter in "ACGT"]
        for start in (at - 2, at - 1, at):  # the three codons through the variant
            gained = (start >= 0 and alt[start:start + 3] in STOPS
                      and ref[start:start + 3] not in STOPS)
            features.append(float(gained))
        rows.append(features)
    if not rows:
        raise DataError("no variants to featurize")
    return np.asarray(rows, dtype=np.float32)


class ContextLogisticRegression:
    """``fit(features, labels (N,))`` / ``predict_proba(features) -> (N,)`` P(class 1) of
    :func:`context_features`; L2-regularised (C 0.3) for ~100 sparse columns."""

    name = "context_logreg"

    def __init__(self, C: float = 0.3, seed: int = 0) -> None:
        self.model = LogisticRegression(C=C, max_iter=2000, random_state=seed)

    def fit(self, features: np.ndarray, labels: np.ndarray) -> ContextLogisticRegression:
        labels = np.asarray(labels).astype(np.int64)
        if len(np.unique(labels)) < 2:
            raise DataError("training variants hold a single class; the baseline needs two")
        self.model.fit(features, labels)
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(features)[:, 1]
