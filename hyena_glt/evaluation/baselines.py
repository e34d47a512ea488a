"""Baselines that give every benchmark number context, trained on the same split as the model.

- :class:`KmerLogisticRegression`: character k-mer counts (k = 1..6), L2-normalised, into a
  scikit-learn logistic regression; on human_nontata_promoters (stratified 70/30 split,
  ``random_state=0``) this reaches 79.8% accuracy (shared/NOTES.md).
- :class:`KmerRidgeRegression`: the same k-mer counts into a ridge regression, for tasks with
  real-valued labels.
- :class:`GenomicBenchmarksCNN`: the small CNN of the Genomic Benchmarks paper (Gresova et al.
  2023): embedding -> 3 x (conv 8 -> ReLU -> batch norm -> max-pool 2) -> dense 512 -> classes,
  ``(B, L) ids -> (B, num_classes)`` logits; :class:`CNNBaseline` trains it with Adam.

Both expose ``fit(sequences, labels)`` and ``predict_proba(sequences) -> (N, C)``, and
``parameters()`` (name -> array) for counting parameters and measuring size the same way as a
torch model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer
from torch import nn

from hyena_glt.data.tokenizers import CharTokenizer, DNATokenizer
from hyena_glt.errors import DataError, ModelError

__all__ = ["KmerLogisticRegression", "KmerRidgeRegression", "GenomicBenchmarksCNN",
           "CNNBaseline"]

logger = logging.getLogger(__name__)


def _check_fit_inputs(sequences: Sequence[str], labels: Sequence[int]) -> np.ndarray:
    labels = np.asarray(labels)
    if len(sequences) != len(labels) or len(labels) == 0:
        raise DataError(f"{len(sequences)} sequences but {len(labels)} labels")
    if len(np.unique(labels)) < 2:
        raise DataError("training labels hold a single class; a classifier needs two or more")
    return labels.astype(np.int64)


class KmerLogisticRegression:
    """k-mer count logistic regression (scikit-learn), the simplest baseline worth beating.

    ``fit(sequences, labels (N,))`` on strings; ``predict_proba(sequences) -> (N, C)`` float.
    """

    name = "kmer_logreg"

    def __init__(self, k_min: int = 1, k_max: int = 6, max_iter: int = 3000, C: float = 1.0
                 ) -> None:
        self.k_min, self.k_max = k_min, k_max
        self.pipeline = make_pipeline(
            CountVectorizer(analyzer="char", ngram_range=(k_min, k_max), lowercase=True),
            Normalizer(), LogisticRegression(max_iter=max_iter, C=C))

    def fit(self, sequences: Sequence[str], labels: Sequence[int]) -> KmerLogisticRegression:
        self.pipeline.fit(list(sequences), _check_fit_inputs(sequences, labels))
        return self

    def predict_proba(self, sequences: Sequence[str]) -> np.ndarray:
        """``(N, num_classes)`` class probabilities."""
        return self.pipeline.predict_proba(list(sequences))

    def parameters(self) -> dict[str, np.ndarray]:
        model = self.pipeline[-1]
        return {"coef": model.coef_, "intercept": model.intercept_}


class KmerRidgeRegression:
    """The regression counterpart of :class:`KmerLogisticRegression`: the same k-mer counts
    into a ridge regression. ``fit(sequences, values (N,))``; ``predict(sequences) -> (N,)``."""

    name = "kmer_ridge"

    def __init__(self, k_min: int = 1, k_max: int = 6, alpha: float = 1.0) -> None:
        self.pipeline = make_pipeline(
            CountVectorizer(analyzer="char", ngram_range=(k_min, k_max), lowercase=True),
            Normalizer(), Ridge(alpha=alpha))

    def fit(self, sequences: Sequence[str], values: Sequence[float]) -> KmerRidgeRegression:
        values = np.asarray(values, dtype=np.float64)
        if len(sequences) != len(values) or len(values) < 2:
            raise DataError(f"{len(sequences)} sequences but {len(values)} values; a "
                            "regression needs at least two of each")
        self.pipeline.fit(list(sequences), values)
        return self

    def predict(self, sequences: Sequence[str]) -> np.ndarray:
        """``(N,)`` predicted values."""
        return self.pipeline.predict(list(sequences))

    def parameters(self) -> dict[str, np.ndarray]:
        model = self.pipeline[-1]
        return {"coef": model.coef_, "intercept": np.atleast_1d(model.intercept_)}


class GenomicBenchmarksCNN(nn.Module):
    """``input_ids (B, length)`` int64 -> ``logits (B, num_classes)`` float.

    As in the Genomic Benchmarks baseline, the dense layer's width depends on the input
    length, so the network is built for one length: pad or crop to ``length`` first (as
    :class:`CNNBaseline` does).
    """

    def __init__(self, vocab_size: int, length: int, num_classes: int = 2,
                 embedding_dim: int = 100) -> None:
        super().__init__()
        self.length = length
        layers: list[nn.Module] = []
        channels = [embedding_dim, 16, 8, 4]
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [nn.Conv1d(c_in, c_out, kernel_size=8), nn.ReLU(),
                       nn.BatchNorm1d(c_out), nn.MaxPool1d(2)]
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.convs = nn.Sequential(*layers)
        remaining = length
        for _ in range(3):  # each stage: conv (kernel 8, no padding), then pool 2
            remaining = (remaining - 7) // 2
        if remaining < 1:
            raise ModelError(f"length={length} is too short for three conv/pool stages "
                             f"(needs >= 64)")
        flat = channels[-1] * remaining
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, 512), nn.ReLU(),
                                        nn.Linear(512, num_classes))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, length)`` ids -> ``(B, num_classes)`` logits."""
        x = self.embedding(input_ids).transpose(1, 2)  # (B, E, L)
        return self.classifier(self.convs(x))


class CNNBaseline:
    """Tokenize with ``tokenizer`` (default :class:`DNATokenizer`; pass the task's, e.g. a
    protein tokenizer), train :class:`GenomicBenchmarksCNN` with Adam.

    ``fit(sequences, labels (N,))`` pads/crops every sequence to ``length`` (default: the
    longest training sequence); ``predict_proba(sequences) -> (N, C)`` float32.
    """

    name = "cnn"

    def __init__(self, length: int | None = None, epochs: int = 5, batch_size: int = 64,
                 learning_rate: float = 1e-3, seed: int = 0,
                 tokenizer: CharTokenizer | None = None) -> None:
        self.length, self.epochs, self.batch_size = length, epochs, batch_size
        self.learning_rate, self.seed = learning_rate, seed
        self.tokenizer = tokenizer if tokenizer is not None else DNATokenizer()
        self.model: GenomicBenchmarksCNN | None = None

    def _ids(self, sequences: Sequence[str]) -> torch.Tensor:
        assert self.length is not None
        return self.tokenizer.batch_encode(list(sequences), max_length=self.length,
                                           padding="max_length", truncation=True)["input_ids"]

    def fit(self, sequences: Sequence[str], labels: Sequence[int]) -> CNNBaseline:
        targets = torch.as_tensor(_check_fit_inputs(sequences, labels))
        self.length = self.length or max(len(s) for s in sequences)
        torch.manual_seed(self.seed)
        self.model = GenomicBenchmarksCNN(len(self.tokenizer), self.length,
                                          int(targets.max()) + 1)
        ids = self._ids(sequences)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.learning_rate)
        generator = torch.Generator().manual_seed(self.seed)
        self.model.train()
        for epoch in range(self.epochs):
            order = torch.randperm(len(ids), generator=generator)
            total = 0.0
            for start in range(0, len(ids), self.batch_size):
                index = order[start:start + self.batch_size]
                loss = nn.functional.cross_entropy(self.model(ids[index]), targets[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(index)
            logger.info("cnn baseline epoch %d: loss %.4f", epoch + 1, total / len(ids))
        self.model.eval()
        return self

    @torch.no_grad()
    def predict_proba(self, sequences: Sequence[str]) -> np.ndarray:
        if self.model is None:
            raise ModelError("CNNBaseline.predict_proba called before fit")
        return self.model(self._ids(sequences)).softmax(-1).numpy()

    def parameters(self) -> dict[str, np.ndarray]:
        if self.model is None:
            raise ModelError("CNNBaseline has no parameters before fit")
        return {k: v.numpy() for k, v in self.model.state_dict().items()}
