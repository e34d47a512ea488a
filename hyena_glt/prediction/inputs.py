"""What the user's input file is (VCF/BCF, FASTA or a sequence table) and its sequences, streamed.

The kind is read from the file's first bytes, not trusted from its name: ``##fileformat=VCF``
(plain or BGZF) or ``BCF`` -> variants; ``>`` -> FASTA (plain, gzip or BGZF); anything else is
read as a CSV/TSV/Parquet table with a sequence column.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError
from ..ingest.fasta import read_fasta
from ..ingest.tables import read_labelled_table

__all__ = ["input_kind", "read_sequences", "INPUT_KINDS"]

INPUT_KINDS = ("vcf", "fasta", "table")


def _head(path: Path, size: int = 64) -> bytes:
    with open(path, "rb") as handle:
        head = handle.read(size)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as handle:
                return handle.read(size)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"cannot decompress: {err} (truncated or corrupt gzip?)",
                            path=path) from None
    return head


def input_kind(path: str | Path) -> str:
    """``"vcf"``, ``"fasta"`` or ``"table"`` (see the module docstring).

    Raises:
        DataError: the file does not exist or is empty.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("input file not found", path=path)
    head = _head(path)
    if not head.strip():
        raise DataError("empty input file", path=path)
    if head.startswith((b"##fileformat=VCF", b"BCF")):
        return "vcf"
    if head.lstrip().startswith(b">"):
        return "fasta"
    return "table"


def read_sequences(path: str | Path, sequence_column: str = "sequence",
                   id_column: str | None = None) -> Iterator[tuple[str, str]]:
    """``(record id, sequence)`` of every FASTA record or table row, in file order.

    A table's ids come from ``id_column`` (default: an ``id`` or ``name`` column when there is
    one, else the 0-based row number).

    Raises:
        DataError: a bad FASTA (see :func:`~hyena_glt.ingest.fasta.read_fasta`), a missing
            column, or an empty sequence cell (naming its row).
    """
    path = Path(path)
    if input_kind(path) == "fasta":
        for record in read_fasta(path):
            yield record.name, record.sequence
        return
    required = [sequence_column] + ([id_column] if id_column else [])
    frame, text = read_labelled_table(path, required)
    if id_column is None:
        id_column = next((c for c in ("id", "name") if c in frame.columns), None)
    ids = (frame[id_column].astype(str).tolist() if id_column
           else [str(i) for i in range(len(frame))])
    for row, (name, sequence) in enumerate(zip(ids, frame[sequence_column].tolist(),
                                               strict=True)):
        if not isinstance(sequence, str) or not sequence:
            raise DataError(f"empty {sequence_column!r} cell", path=path, record=name,
                            line=row + 2 if text else None)
        yield name, sequence
