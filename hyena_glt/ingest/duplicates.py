"""Sequence shared between a held-out part and the training part, by canonical k-mers.

Genomes repeat themselves: a chloroplast's two inverted-repeat copies are each other's reverse
complement, and segmental duplications, rDNA arrays and transposons recur along chromosomes.
A held-out window whose sequence (on either strand) is also in the training part measures
recall, not generalisation. This module finds such windows: the fraction of a window's
canonical k-mers (the smaller of a k-mer and its reverse complement, so strand does not matter)
that occur anywhere in the training part. Unique 31-mers are rare by chance (4^31 ~ 4.6e18),
so a large shared fraction means shared sequence, not shared composition.

Memory: 8 bytes per training base (a sorted array of 64-bit k-mer codes).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["KMER_LENGTH", "canonical_kmers", "TrainingKmers"]

#: k of the k-mers compared (31: the longest that fits 2 bits per base in 64 bits, odd so no
#: k-mer is its own reverse complement).
KMER_LENGTH = 31

_INVALID = np.uint8(255)
_CODES = np.full(256, _INVALID, dtype=np.uint8)
for _code, _bases in enumerate(("Aa", "Cc", "Gg", "Tt")):
    for _base in _bases:
        _CODES[ord(_base)] = _code


def canonical_kmers(sequence: str, k: int = KMER_LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """Canonical codes of every k-mer of ``sequence`` and whether each is valid.

    Returns:
        ``(codes, valid)``, both of length ``max(len(sequence) - k + 1, 0)``: ``codes[i]`` is
        the 2-bit code (uint64) of ``sequence[i:i+k]`` or of its reverse complement, whichever
        is smaller; ``valid[i]`` is False when that k-mer holds a base other than A, C, G, T
        (N, IUPAC codes), whose code is then meaningless.
    """
    if not 1 <= k <= 32:
        raise ValueError(f"k={k}: must be in [1, 32] to fit 64 bits")
    bases = _CODES[np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)]
    count = len(bases) - k + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool)
    invalid = np.concatenate([[0], np.cumsum(bases == _INVALID)])
    valid = invalid[k:] - invalid[:-k] == 0
    codes = np.where(bases == _INVALID, 0, bases).astype(np.uint64)
    forward = np.zeros(count, dtype=np.uint64)
    reverse = np.zeros(count, dtype=np.uint64)
    for offset in range(k):
        column = codes[offset:offset + count]
        forward = (forward << np.uint64(2)) | column
        reverse |= (np.uint64(3) - column) << np.uint64(2 * offset)
    return np.minimum(forward, reverse), valid


class TrainingKmers:
    """The canonical k-mers of a training part, asked how much of a held-out window they hold."""

    def __init__(self, sequences: Iterable[str], k: int = KMER_LENGTH) -> None:
        self.k = k
        parts = []
        for sequence in sequences:
            codes, valid = canonical_kmers(sequence, k)
            parts.append(codes[valid])
        self._sorted = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)

    def __len__(self) -> int:
        return len(self._sorted)

    def shared_fraction(self, codes: np.ndarray, valid: np.ndarray) -> float:
        """Fraction of the valid k-mers among ``codes`` (from :func:`canonical_kmers`) that
        occur in the training part; 0.0 when none is valid."""
        query = codes[valid]
        if not len(query) or not len(self._sorted):
            return 0.0
        index = np.searchsorted(self._sorted, query).clip(max=len(self._sorted) - 1)
        return float(np.mean(self._sorted[index] == query))
