"""Random access to a reference FASTA, with an index that is known to describe the file.

``pysam.FastaFile`` trusts a ``.fai`` beside the FASTA blindly: after the reference is edited
or re-wrapped at another line width, a stale index cuts windows at the old contig lengths or
puts newline characters inside them, with exit status 0. So an existing index is checked
against the file's content (modification times say little after a ``git clone`` or a copy):
for plain text each contig's header line, first sequence line and the file size the index
implies; for BGZF the uncompressed size (from the last block the ``.gzi`` lists) and the first and last
lines of each contig read through the index. When it does
not match, a fresh index is built in a temporary directory, never next to the user's file.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pysam

from ..errors import DataError

__all__ = ["open_reference", "is_plain_gzip", "index_matches"]

logger = logging.getLogger(__name__)


def _head(path: Path, size: int = 16) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def is_plain_gzip(path: Path) -> bool:
    """A gzip file that is not BGZF (BGZF has the 'BC' extra subfield in every block header)."""
    head = _head(path)
    if head[:2] != b"\x1f\x8b":
        return False
    has_extra = len(head) > 3 and head[3] & 4
    return not (has_extra and head[12:14] == b"BC")


@contextlib.contextmanager
def _htslib_messages() -> Iterator[list[str]]:
    """Capture what htslib writes to the process's stderr (file descriptor 2) in the block.

    htslib reports *why* indexing failed (format error at line N, duplicate names) only there;
    the captured text is in the yielded list once the block ends.
    """
    captured: list[str] = []
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def _fai_rows(fai: Path) -> list[tuple[str, int, int, int, int]] | None:
    """(name, length, offset, bases per line, bytes per line) of each contig; None if garbled."""
    rows = []
    try:
        for line in fai.read_text().splitlines():
            name, length, offset, bases, width = line.split("\t")[:5]
            rows.append((name, int(length), int(offset), int(bases), int(width)))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return rows or None


def index_matches(fasta: Path, fai: Path) -> bool:
    """Whether ``fai`` still describes the plain-text ``fasta`` (see the module docstring)."""
    rows = _fai_rows(fai)
    if rows is None:
        return False
    size = fasta.stat().st_size
    with open(fasta, "rb") as handle:
        for name, length, offset, bases, width in rows:
            if bases < 1 or width <= bases or offset > size:
                return False
            handle.seek(max(offset - 4096, 0))
            before = handle.read(offset - max(offset - 4096, 0))
            header = before.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
            if not before.endswith(b"\n") or header.split()[:1] != [f">{name}".encode()]:
                return False
            first = handle.readline()
            if len(first) != (width if length > bases else len(first)) or \
                    len(first.rstrip(b"\r\n")) != min(bases, length):
                return False
    return _ends_at(rows, size)


def _ends_at(rows: list[tuple[str, int, int, int, int]], size: int) -> bool:
    """Whether the last contig of the index ends where the (uncompressed) file does."""
    name, length, offset, bases, width = rows[-1]
    full, rest = divmod(length, bases)
    end = offset + full * width + (rest + width - bases if rest else 0)
    return end <= size <= end + 2 * (width - bases)  # a trailing blank line at most


def _bgzf_size(source: Path, gzi: Path) -> int | None:
    """Uncompressed size of a BGZF file: the last block the ``.gzi`` lists, decompressed."""
    data = gzi.read_bytes()
    count = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if count < 0 or len(data) != 8 + 16 * count:
        return None
    compressed, uncompressed = (0, 0) if count == 0 else (
        int.from_bytes(data[-16:-8], "little"), int.from_bytes(data[-8:], "little"))
    try:
        with open(source, "rb") as handle:
            handle.seek(compressed)
            return uncompressed + len(gzip.decompress(handle.read()))
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
        return None


def _bgzf_index_matches(source: Path, fai: Path, gzi: Path) -> bool:
    """Whether ``fai``/``gzi`` still describe the BGZF ``source``: every contig's first and last
    line, read through them, hold sequence only (a stale index reads headers or newlines)."""
    rows = _fai_rows(fai)
    if rows is None or not gzi.is_file():
        return False
    size = _bgzf_size(source, gzi)
    if size is None or not _ends_at(rows, size):
        return False
    try:
        with pysam.FastaFile(str(source), filepath_index=str(fai),
                             filepath_index_compressed=str(gzi)) as fasta:
            for name, length, _, bases, _ in rows:
                span = min(length, bases + 1)
                for start in (0, length - span):
                    text = fasta.fetch(name, start, start + span)
                    if len(text) != span or any(c in text for c in ">\r\n "):
                        return False
    except (OSError, ValueError, KeyError):
        return False
    return True


def _build_index(path: Path, source: Path, tmp: Path, compressed: bool) -> tuple[Path, Path]:
    fai, gzi = tmp / "reference.fai", tmp / "reference.gzi"
    args = [str(source), "--fai-idx", str(fai)]
    if compressed:
        args += ["--gzi-idx", str(gzi)]
    with _htslib_messages() as messages:
        try:
            pysam.faidx(*args)
            failed = False
        except pysam.SamtoolsError:
            failed = True
    if failed or "duplicate sequence" in messages[0]:
        detail = " ".join(messages[0].split()) or "not a FASTA file?"
        raise DataError(f"cannot index the reference FASTA: {detail}", path=path)
    return fai, gzi


@contextlib.contextmanager
def open_reference(path: str | Path) -> Iterator[pysam.FastaFile]:
    """Open a FASTA for random access without writing anything next to it.

    Raises:
        DataError: the file is missing, cannot be indexed (not FASTA, uneven line lengths), or
            holds no sequence.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "not found"
        raise DataError(f"reference FASTA {what}", path=path)
    with tempfile.TemporaryDirectory(prefix="hyena-glt-ref-") as tmp:
        source = path
        if is_plain_gzip(path):
            logger.warning(
                "%s is plain gzip, not BGZF: decompressing it to a temporary file to index it "
                "(bgzip the reference to skip this)", path,
            )
            source = Path(tmp) / path.name.removesuffix(".gz")
            try:
                with gzip.open(path, "rb") as src, open(source, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (EOFError, OSError) as err:
                raise DataError(f"cannot decompress ({err}); is it truncated?", path=path) from None
        fai, gzi = Path(f"{source}.fai"), Path(f"{source}.gzi")
        compressed = _head(source, 2) == b"\x1f\x8b"
        usable = fai.is_file() and (_bgzf_index_matches(source, fai, gzi) if compressed
                                    else index_matches(source, fai))
        if fai.is_file() and not usable:
            logger.warning("%s does not match %s (edited or re-wrapped since it was made): "
                           "indexing the reference afresh in a temporary directory", fai, path)
        if not usable:
            fai, gzi = _build_index(path, source, Path(tmp), compressed)
        try:
            fasta = pysam.FastaFile(
                str(source), filepath_index=str(fai),
                filepath_index_compressed=str(gzi) if compressed else None,
            )
        except (OSError, ValueError) as err:
            raise DataError(f"cannot open the reference FASTA: {err}", path=path) from None
        with fasta:
            if not fasta.references:
                raise DataError("the reference FASTA holds no sequence", path=path)
            yield fasta
