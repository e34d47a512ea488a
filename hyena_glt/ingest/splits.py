"""Held-out parts of genomic data without leakage between train and test.

* :func:`split_segments`: a seeded random share of window-sized blocks of each record, spread
  over the whole record (genes, repeats and intergenic regions alike), for annotation tasks.
* :func:`contig_segments`: whole contigs the user names (``test_contigs``), held out the way
  Basenji and Enformer hold out chromosomes, so that no test base is near a training base and
  the split is the user's, not a random draw.

(Variants are split by position bins: :func:`hyena_glt.ingest.vcf.split_by_position`.)
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError, DataError

__all__ = ["split_segments", "contig_segments", "check_test_contigs", "parse_contigs"]


def parse_contigs(text: str) -> list[str]:
    """``"chr8,chr9"`` -> ``["chr8", "chr9"]`` (blanks around names ignored).

    Raises:
        ConfigurationError: no contig name, or an empty one between commas.
    """
    names = [name.strip() for name in text.split(",")]
    if not names or any(not name for name in names):
        raise ConfigurationError(f"test contigs {text!r}: give comma-separated contig names, "
                                 "e.g. chr8,chr9")
    return names


def split_segments(length: int, train_fraction: float, seed: int, record: str, stride: int,
                   window: int | None = None) -> dict[str, list[tuple[int, int]]]:
    """A record's ``[start, end)`` segments for ``train`` and ``test``; see :func:`ingest_annotation`.

    The record is cut into blocks of one window each (``window`` rounded up to a multiple of
    ``stride``; default ``stride``), and ``round((1 - train_fraction) * n)`` of its ``n``
    blocks (at least one, at most ``n - 1``) are drawn for test, without replacement, by
    ``numpy.random.default_rng([seed, crc32(record)])``. Held-out windows are so spread over the
    whole record (genes, repeats, intergenic regions alike) rather than one region of it. The
    record's tail (``length % block``) joins the last block; neighbouring blocks of one part
    merge into one segment. A record shorter than two blocks goes whole to train with
    probability ``train_fraction`` (same draw).

    Raises:
        ConfigurationError: ``train_fraction`` outside (0, 1).
    """
    if not 0.0 < train_fraction < 1.0:
        raise ConfigurationError(f"split={train_fraction}; the train fraction must lie in (0, 1)")
    rng = np.random.default_rng([seed, zlib.crc32(record.encode())])
    block = -(-max(window or stride, stride) // stride) * stride
    blocks = length // block
    if blocks < 2:
        side = "train" if rng.random() < train_fraction else "test"
        return {"train": [], "test": [], side: [(0, length)]}
    test_blocks = min(max(round((1 - train_fraction) * blocks), 1), blocks - 1)
    is_test = np.zeros(blocks, dtype=bool)
    is_test[rng.choice(blocks, size=test_blocks, replace=False)] = True
    parts: dict[str, list[tuple[int, int]]] = {"train": [], "test": []}
    for index in range(blocks):
        start, end = index * block, length if index == blocks - 1 else (index + 1) * block
        segments = parts["test" if is_test[index] else "train"]
        if segments and segments[-1][1] == start:
            segments[-1] = (segments[-1][0], end)
        else:
            segments.append((start, end))
    return parts


def contig_segments(record: str, length: int, test_contigs: Iterable[str]
                    ) -> dict[str, list[tuple[int, int]]]:
    """A record's ``[start, end)`` segments: the whole record to ``test`` if it is one of
    ``test_contigs``, else to ``train``."""
    side = "test" if record in set(test_contigs) else "train"
    return {"train": [], "test": [], side: [(0, length)]}


def check_test_contigs(test_contigs: Sequence[str], contigs: Sequence[str],
                       path: str | Path) -> None:
    """Every held-out contig must be one of ``contigs`` and at least one must stay for training.

    Raises:
        DataError: a test contig that ``path`` does not have (naming its contigs), or every
            contig held out.
    """
    missing = [name for name in test_contigs if name not in set(contigs)]
    listed = ", ".join(list(contigs)[:20]) + (f", ... ({len(contigs)} in all)"
                                              if len(contigs) > 20 else "")
    if missing:
        raise DataError(f"test contig(s) {', '.join(missing)} not found; its contigs: {listed}",
                        path=path)
    if set(contigs) <= set(test_contigs):
        raise DataError(f"every contig ({listed}) is held out for testing: leave at least one "
                        "for training", path=path)
