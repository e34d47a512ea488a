"""GenBank flat files (``.gb``/``.gbk``/``.gbff``, plain or gzipped): sequence and features in one.

NCBI and most bacterial, phage and plastid resources hand out annotated genomes this way, so a
GenBank file can stand wherever a FASTA + GFF3 pair is accepted. Records are read with
Biopython's ``SeqIO``. A feature's location may be a ``join``/``order`` of parts (spliced and
trans-spliced genes), on either strand, and may span the origin of a circular genome (Biopython
splits it into a part up to the end and a part from 0): each part labels its bases, as each GFF3
line does, so the per-base labels equal those of the same record's FASTA + GFF3.
"""

from __future__ import annotations

import gzip
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from .fasta import FastaRecord

__all__ = ["GENBANK_SUFFIXES", "is_genbank", "read_genbank"]

GENBANK_SUFFIXES = (".gb", ".gbk", ".gbff", ".genbank")


def is_genbank(path: str | Path) -> bool:
    """Whether ``path`` is named as a GenBank file (optionally ``.gz``/``.bgz``)."""
    name = Path(path).name.lower().removesuffix(".gz").removesuffix(".bgz")
    return name.endswith(GENBANK_SUFFIXES)


def read_genbank(path: str | Path, feature: str | Sequence[str] | None = "CDS"
                 ) -> Iterator[tuple[FastaRecord, np.ndarray]]:
    """Each record of a GenBank file with its per-base labels (int8, 1 inside ``feature``).

    Args:
        path: GenBank flat file, plain, gzip or BGZF.
        feature: feature key(s) labelled 1 (column 1 of the FEATURES table, e.g. ``CDS``);
            ``None`` reads the sequences only (masks all zero).

    Raises:
        DataError: a missing file, text that is not GenBank, a record without sequence, or no
            feature of the requested type in the whole file (naming the types it has).
    """
    from Bio import BiopythonParserWarning, SeqIO  # only needed for GenBank input

    path = Path(path)
    if not path.is_file():
        raise DataError("GenBank file not found", path=path)
    keys = frozenset([feature] if isinstance(feature, str) else feature or ())
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    seen_types: set[str] = set()
    labelled = 0
    name = None
    try:
        with (gzip.open(path, "rt") if compressed else open(path)) as handle, \
                warnings.catch_warnings():
            # Biopython warns and goes on where it drops a location it cannot read or a
            # truncated sequence: labels would then be silently wrong.
            warnings.simplefilter("error", BiopythonParserWarning)
            for entry in SeqIO.parse(handle, "genbank"):
                name = entry.id or entry.name
                try:
                    sequence = str(entry.seq).upper()
                except Exception:  # Biopython's UndefinedSequenceError: a record without ORIGIN
                    raise DataError("the record has no sequence (no ORIGIN section); download "
                                    "the full GenBank record, with sequence", path=path,
                                    record=name) from None
                mask = np.zeros(len(sequence), dtype=np.int8)
                for item in entry.features:
                    seen_types.add(item.type)
                    if item.type in keys and item.location is not None:
                        labelled += 1
                        for part in item.location.parts:
                            mask[int(part.start):int(part.end)] = 1
                yield FastaRecord(name, sequence, path), mask
    except (ValueError, EOFError, OSError, BiopythonParserWarning) as err:
        if isinstance(err, DataError):
            raise
        where = f" after record {name!r}" if name else ""
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"not a readable GenBank file{where} ({reason}); check that it is a "
                        "complete GenBank flat file (LOCUS ... //)", path=path) from None
    if name is None:
        raise DataError("no complete GenBank record found (each runs from a LOCUS line to //)",
                        path=path)
    if keys and not labelled:
        raise DataError(f"no feature of type {', '.join(sorted(keys))}; the file has types "
                        f"{', '.join(sorted(seen_types)) or 'none'}", path=path)
