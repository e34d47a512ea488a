"""Per-base baselines for token classification (e.g. CDS vs non-coding), trained on the task's
own training windows and scored on the same bases as the model.

* :class:`OrfKmerLogisticRegression`: a logistic regression on per-base context features
  (:func:`base_features`: k-mer composition, codon-position asymmetry and the stop-codon-free
  run lengths of the six reading frames); ``kmers=False`` keeps only the codon/ORF columns.
  On the held-out chloroplast windows it reached AUROC 0.93 where Hyena-GLT reached 0.81
  (benchmarks/quality_results.md), so a per-base model must be read beside it.
* :class:`PerBaseCNN` (``(B, L) ids -> (B, L, 2)`` logits), trained by
  :func:`train_per_base_cnn`, the epoch with the best validation AUROC kept.

Ids are :class:`~hyena_glt.data.tokenizers.DNATokenizer` ids (A C G T = 7..10); features of a
base come from its own window only, as for Hyena-GLT. Both return ``(N * L,)`` P(class 1).
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, Dataset

from hyena_glt.data.datasets import IGNORE_INDEX, collate_batch
from hyena_glt.errors import DataError

__all__ = ["base_features", "OrfKmerLogisticRegression", "PerBaseCNN", "PerBaseCNNBaseline",
           "train_per_base_cnn", "predict_per_base", "stacked", "KMER_COLUMNS"]

VALIDATION_EVERY = 5  # every 5th training window picks the per-base CNN's epoch

logger = logging.getLogger(__name__)


def stacked(windows: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(N, L)`` token ids and labels of equal-length windows."""
    items = [windows[i] for i in range(len(windows))]
    if not items:
        raise DataError("no windows to stack")
    return (torch.stack([it["input_ids"] for it in items]).numpy(),
            torch.stack([it["labels"] for it in items]).numpy())


def _auroc(probability: np.ndarray, labels: np.ndarray) -> float:
    keep = labels != IGNORE_INDEX
    target = labels[keep]
    return (float(roc_auc_score(target, probability[keep])) if len(np.unique(target)) == 2
            else float("nan"))


_BASE_ID = 7  # DNATokenizer: A C G T = ids 7 8 9 10
_STOPS = ("TAA", "TAG", "TGA")
_REVERSE_STOPS = ("TTA", "CTA", "TCA")  # stops of the minus strand, read on the plus strand


def _window_sum(values: np.ndarray, half: int) -> np.ndarray:
    """``(L, C)`` sums of ``values`` over positions ``[t - half, t + half]`` (clipped)."""
    cumulative = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    positions = np.arange(len(values))
    return (cumulative[np.minimum(positions + half + 1, len(values))]
            - cumulative[np.maximum(positions - half, 0)])


def _kmer_codes(codes: np.ndarray, k: int) -> np.ndarray:
    """Index of the k-mer starting at each position, -1 where it runs off the end or hits N."""
    length = len(codes)
    index = np.full(length, -1)
    if length < k:
        return index
    value = np.zeros(length - k + 1, dtype=np.int64)
    valid = np.ones(length - k + 1, dtype=bool)
    for offset in range(k):
        part = codes[offset:length - k + 1 + offset]
        value, valid = value * 4 + np.maximum(part, 0), valid & (part >= 0)
    index[:length - k + 1] = np.where(valid, value, -1)
    return index


def _stop_free_runs(codons: np.ndarray, stops: tuple[str, ...]) -> np.ndarray:
    """``(L, 3)`` length of the stop-codon-free stretch around each base, per frame."""
    stop_ids = [int("".join(str("ACGT".index(c)) for c in s), 4) for s in stops]
    length = len(codons)
    runs = np.zeros((length, 3))
    positions = np.arange(length)
    for frame in range(3):
        at = np.flatnonzero(np.isin(codons, stop_ids) & (positions % 3 == frame))
        fences = np.concatenate([[frame - 6], at, [length + ((frame - length) % 3)]])
        codon_start = positions - (positions - frame) % 3
        after = np.searchsorted(fences, codon_start, side="left")
        runs[:, frame] = fences[after] - fences[after - 1]
    return runs


def base_features(ids: np.ndarray, half: int = 60) -> np.ndarray:
    """``(L,) ids -> (L, 103)`` features of each base from its window.

    k-mer composition (k = 1..3) of the ``2 * half + 1`` context; per nucleotide its share
    at the three codon positions of that context, sorted (Fickett's position asymmetry, frame
    free); log stop-free run lengths of the three forward and three reverse frames, sorted, and
    their maximum (coding stretches are long open reading frames, on either strand).
    """
    codes = ids.astype(np.int64) - _BASE_ID
    codes = np.where((codes >= 0) & (codes < 4), codes, -1)
    columns = []
    for k in (1, 2, 3):
        index = _kmer_codes(codes, k)
        onehot = np.zeros((len(codes), 4 ** k))
        onehot[index >= 0, index[index >= 0]] = 1
        counts = _window_sum(onehot, half)
        columns.append(counts / np.maximum(counts.sum(1, keepdims=True), 1))
    onehot = np.zeros((len(codes), 12))
    frames = np.arange(len(codes)) % 3
    onehot[codes >= 0, codes[codes >= 0] * 3 + frames[codes >= 0]] = 1
    counts = _window_sum(onehot, half).reshape(-1, 4, 3)
    columns.append(np.sort(counts / np.maximum(counts.sum(2, keepdims=True), 1), 2)
                   .reshape(-1, 12))
    codons = _kmer_codes(codes, 3)
    forward = np.sort(np.log1p(_stop_free_runs(codons, _STOPS)), 1)
    reverse = np.sort(np.log1p(_stop_free_runs(codons, _REVERSE_STOPS)), 1)
    columns += [forward, reverse, np.maximum(forward[:, -1:], reverse[:, -1:])]
    return np.hstack(columns).astype(np.float32)


KMER_COLUMNS = 84  # base_features: 84 k-mer shares, then 12 codon-position and 7 ORF columns


class OrfKmerLogisticRegression:
    """Per-base logistic regression on :func:`base_features` (standardised); ``kmers=False``
    keeps only the codon-position and stop-free-run columns (the ``orf_lr`` model)."""

    def __init__(self, half: int = 60, subsample: int = 2, seed: int = 0,
                 kmers: bool = True) -> None:
        self.half, self.subsample = half, subsample
        self.first_column = 0 if kmers else KMER_COLUMNS
        self.model = make_pipeline(StandardScaler(),
                                   LogisticRegression(max_iter=2000, random_state=seed))

    def _features(self, ids: np.ndarray) -> np.ndarray:
        return np.vstack([base_features(row, self.half)[:, self.first_column:] for row in ids])

    def fit(self, ids: np.ndarray, labels: np.ndarray) -> OrfKmerLogisticRegression:
        """``ids, labels (N, L)``; every ``subsample``-th base of each window is a training row."""
        features, target = self._features(ids), labels.reshape(-1)
        keep = (np.arange(len(target)) % self.subsample == 0) & (target != IGNORE_INDEX)
        self.model.fit(features[keep], target[keep])
        return self

    def predict_proba(self, ids: np.ndarray) -> np.ndarray:
        """``(N * L,)`` P(CDS) per base."""
        return self.model.predict_proba(self._features(ids))[:, 1]

    def parameters(self) -> dict[str, np.ndarray]:
        """The regression's weights (the scaler's statistics are not parameters)."""
        model = self.model[-1]
        return {"coef": model.coef_, "intercept": model.intercept_}


class PerBaseCNN(nn.Module):
    """``(B, L) ids -> (B, L, 2)`` logits: embedding, a width-9 convolution and residual dilated
    convolutions (dilations 2..16; receptive field 249 nt), each with batch norm and ReLU,
    'same' padding."""

    def __init__(self, alphabet_size: int = 22, channels: int = 64,
                 dilations: tuple[int, ...] = (2, 4, 8, 16)) -> None:
        super().__init__()
        self.embedding = nn.Embedding(alphabet_size, channels)
        self.stem = nn.Sequential(nn.Conv1d(channels, channels, 9, padding=4),
                                  nn.BatchNorm1d(channels), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(channels, channels, 9, padding=4 * d, dilation=d),
                          nn.BatchNorm1d(channels), nn.ReLU()) for d in dilations)
        self.head = nn.Conv1d(channels, 2, 1)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.stem(self.embedding(input_ids).transpose(1, 2))
        for block in self.blocks:
            x = x + block(x)
        return self.head(x).transpose(1, 2)


def train_per_base_cnn(train: Dataset, val: Dataset, epochs: int, seed: int) -> PerBaseCNN:
    """Adam (lr 2e-3), shuffled batches of 8 windows, cross-entropy over labelled bases; the
    epoch with the best validation AUROC is kept."""
    torch.manual_seed(seed)
    model = PerBaseCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = DataLoader(train, batch_size=8, shuffle=True, collate_fn=collate_batch,
                        generator=torch.Generator().manual_seed(seed))
    val_ids, val_labels = stacked(val)
    best, best_state = -1.0, None
    for _ in range(epochs):
        model.train()
        for batch in loader:
            loss = nn.functional.cross_entropy(model(batch["input_ids"]).transpose(1, 2),
                                               batch["labels"], ignore_index=IGNORE_INDEX)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        auroc = _auroc(predict_per_base(model, val_ids), val_labels.reshape(-1))
        logger.info("per-base CNN epoch: validation AUROC %.4f", auroc)
        if best_state is None or auroc > best:
            best, best_state = auroc, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval()


@torch.no_grad()
def predict_per_base(model: nn.Module, ids: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """``(N, L)`` ids -> ``(N * L,)`` P(CDS) from a model returning ``(B, L, 2)`` logits."""
    model.eval()
    probabilities = []
    for batch in torch.from_numpy(ids).long().split(batch_size):
        logits = model(batch)
        logits = getattr(logits, "logits", logits)
        probabilities.append(logits.float().softmax(-1)[..., 1].reshape(-1).numpy())
    return np.concatenate(probabilities)


class PerBaseCNNBaseline:
    """:class:`PerBaseCNN` behind the baselines' ``fit(ids, labels (N, L))`` /
    ``predict_proba(ids) -> (N * L,)`` interface; every 5th training window is held back to
    pick the epoch."""

    name = "per_base_cnn"

    def __init__(self, epochs: int = 5, seed: int = 0) -> None:
        self.epochs, self.seed = epochs, seed
        self.model: PerBaseCNN | None = None

    def fit(self, ids: np.ndarray, labels: np.ndarray) -> PerBaseCNNBaseline:
        windows = [{"input_ids": torch.as_tensor(i, dtype=torch.long),
                    "labels": torch.as_tensor(y, dtype=torch.long)} for i, y in zip(ids, labels,
                                                                                  strict=True)]
        held = [w for k, w in enumerate(windows) if k % VALIDATION_EVERY == 0]
        fit = [w for k, w in enumerate(windows) if k % VALIDATION_EVERY != 0]
        if not fit or not held:
            raise DataError(f"{len(windows)} training windows: the per-base CNN needs at least "
                            f"2 (every {VALIDATION_EVERY}th picks the epoch)")
        self.model = train_per_base_cnn(fit, held, self.epochs, self.seed)
        return self

    def predict_proba(self, ids: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise DataError("PerBaseCNNBaseline.predict_proba called before fit")
        return predict_per_base(self.model, np.asarray(ids))

    def parameters(self) -> dict[str, np.ndarray]:
        if self.model is None:
            raise DataError("PerBaseCNNBaseline has no parameters before fit")
        return {k: v.numpy() for k, v in self.model.state_dict().items()}
