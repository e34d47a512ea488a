"""FASTA -> "windows" shards: fixed-length token windows for pretraining.

Each record is read with pysam (plain, gzip or bgzip), tokenised once with the tokenizer's
vectorised ``encode_array`` and cut into windows with numpy views, so the cost per window is a
memory copy, not Python code. Windows start at ``0, stride, 2*stride, ...``; a full window is
``window`` tokens; the first window that would run past the record end is kept, shortened, only
if it has at least ``min_length`` tokens (default: ``window``, i.e. full windows only).
Reverse-complement copies cover the same forward coordinates with ``strand == "-"``.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pysam

from ..data.shards import ShardWriter, list_array
from ..data.tokenizers import tokenizer_from_name
from ..errors import ConfigurationError, DataError, TokenizationError
from ..progress import Progress

__all__ = ["ingest_fasta", "read_fasta", "window_bounds", "FastaRecord"]

logger = logging.getLogger(__name__)

#: The residue that means "unknown" in each alphabet; windows rich in it are dropped.
UNKNOWN_RESIDUE = {"dna": "N", "rna": "N", "protein": "X"}


class FastaRecord:
    """One FASTA record: ``name``, ``sequence`` and the file it came from."""

    __slots__ = ("name", "sequence", "path")

    def __init__(self, name: str, sequence: str, path: Path) -> None:
        self.name, self.sequence, self.path = name, sequence, path


def window_bounds(
    length: int, window: int, stride: int, min_length: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (0-based, half-open) of the windows of a record of ``length`` tokens.

    Full windows start at multiples of ``stride``; after them, the first window that would
    pass the end is kept as ``[start, length)`` when it has at least ``min_length`` tokens
    (``None`` means ``window``: full windows only; ``1`` covers every base).

    Returns:
        ``(starts, ends)``, two int64 arrays of equal length, in increasing order.
    """
    if window < 1 or stride < 1:
        raise ConfigurationError(f"window={window}, stride={stride}; both must be >= 1")
    min_length = window if min_length is None else min_length
    n_full = (length - window) // stride + 1 if length >= window else 0
    starts = np.arange(n_full, dtype=np.int64) * stride
    ends = starts + window
    tail_start = n_full * stride
    if tail_start < length and (n_full == 0 or ends[-1] < length):
        if length - tail_start >= min_length:
            starts = np.append(starts, tail_start)
            ends = np.append(ends, length)
    return starts, ends


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _open_text(path: Path) -> Any:
    return gzip.open(path, "rt", errors="replace") if _is_gzip(path) else open(
        path, errors="replace")


def _check_looks_like_fasta(path: Path) -> None:
    """Reject missing, empty, FASTQ and other non-FASTA files before pysam (which skips text
    before the first '>' and reads FASTQ as well)."""
    if not path.is_file():
        what = "is a directory, not a FASTA file" if path.is_dir() else "file not found"
        raise DataError(what, path=path)
    try:
        with _open_text(path) as handle:
            head = handle.read(4096)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot decompress: {err} (truncated or corrupt gzip?)",
                        path=path) from None
    stripped = head.lstrip()
    if not stripped:
        raise DataError("empty file: no FASTA records", path=path)
    if stripped[0] == "@":
        raise DataError("FASTQ, not FASTA (it starts with '@'): convert it first, e.g. "
                        "seqtk seq -a reads.fq > reads.fa", path=path, line=1)
    if stripped[0] != ">":
        line = head[: len(head) - len(stripped)].count("\n") + 1
        raise DataError(f"not FASTA: starts with {stripped[:20]!r}, expected a '>' header",
                        path=path, line=line)


def _header_line(path: Path, name: str) -> int | None:
    """Line number of ``>name`` (error path only: re-reads the file)."""
    wanted = [name] if name else []
    with contextlib.suppress(OSError, EOFError, zlib.error), _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith(">") and line[1:].split(maxsplit=1)[:1] == wanted:
                return number
    return None


def character_hint(error: TokenizationError, alphabet: str) -> str:
    """What a user does about a character outside ``alphabet``: the CLI options, named."""
    character = str(getattr(error, "character", ""))
    nucleic = {*tokenizer_from_name("dna").alphabet, *tokenizer_from_name("rna").alphabet}
    amino_acids = set(tokenizer_from_name("protein").alphabet) - nucleic
    if alphabet == "rna" and character.upper() == "T":
        return "for DNA sequences use --alphabet dna"
    if alphabet in ("dna", "rna") and character.upper() in amino_acids:
        return (f"{character!r} is an amino acid: for a protein FASTA use --alphabet protein; "
                f"else --unknown replace reads it as N")
    unknown = UNKNOWN_RESIDUE.get(alphabet, "N")
    return f"fix the sequence, or use --unknown replace to read it as {unknown}"


def _position_line(path: Path, name: str, position: int) -> int | None:
    """Line number of 0-based ``position`` in record ``name`` (error path only)."""
    header = _header_line(path, name)
    if header is None:
        return None
    with contextlib.suppress(OSError, EOFError, zlib.error), _open_text(path) as handle:
        seen = 0
        for number, line in enumerate(handle, start=1):
            if number <= header:
                continue
            seen += len(line.strip())
            if seen > position:
                return number
    return None


def read_fasta(path: str | Path) -> Iterator[FastaRecord]:
    """Stream the records of a FASTA file (plain, gzip or bgzip) with pysam, or the sequences of
    a GenBank file (named ``.gb``/``.gbk``/``.gbff``, :mod:`.genbank`).

    Raises:
        DataError: empty or non-FASTA file, a header without sequence, a duplicate record id
            within the file, or a truncated/corrupt compressed stream; each names the file and,
            where known, the record and line.
    """
    path = Path(path)
    from .genbank import is_genbank, read_genbank  # genbank builds on this module

    if is_genbank(path):  # the sequences of a GenBank file, as NCBI hands genomes out
        yield from (record for record, _ in read_genbank(path, feature=None))
        return
    _check_looks_like_fasta(path)
    seen: set[str] = set()
    name = None
    try:
        verbosity = pysam.set_verbosity(0)  # htslib's own stderr lines would duplicate ours
        try:
            with pysam.FastxFile(str(path)) as handle:
                for entry in handle:
                    name = entry.name
                    if not name:
                        raise DataError("header '>' without a record name: give every "
                                        "record a name ('>chr1')", path=path,
                                        line=_header_line(path, ""))
                    if name in seen:
                        raise DataError("duplicate record id", path=path, record=name)
                    if not entry.sequence:
                        raise DataError("header without sequence", path=path, record=name,
                                        line=_header_line(path, name))
                    seen.add(name)
                    yield FastaRecord(name, entry.sequence, path)
        finally:
            pysam.set_verbosity(verbosity)
    except (ValueError, OSError) as err:
        if isinstance(err, DataError):
            raise
        after = f" after record {name!r}" if name is not None else ""
        raise DataError(f"cannot read{after}: {err} (truncated or corrupt file?)",
                        path=path) from None
    if not seen:
        raise DataError("no FASTA records", path=path)


def _windows_column(
    ids: np.ndarray, starts: np.ndarray, ends: np.ndarray, window: int,
) -> pa.ListArray:
    """``input_ids`` of the windows ``[starts, ends)`` of ``ids`` (uint8), without a row loop.

    Full windows are gathered from a strided view; at most one window (the record's tail) is
    shorter and is spliced in at its row.
    """
    lengths = ends - starts
    short = np.flatnonzero(lengths != window)
    assert len(short) <= 1, "only the tail window of a record can be short"
    full_starts = np.delete(starts, short)
    values = (np.lib.stride_tricks.sliding_window_view(ids, window)[full_starts].reshape(-1)
              if len(full_starts) else ids[:0])
    if len(short):
        k = int(short[0])
        values = np.concatenate([values[: k * window], ids[starts[k]:ends[k]],
                                 values[k * window:]])
    offsets = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return list_array(values, offsets, pa.uint8())


def _window_ids(name: str, starts: np.ndarray, ends: np.ndarray, strand: str) -> pa.Array:
    """Row ids ``record:start-end:strand``, built with Arrow compute instead of a Python loop."""
    span = pc.binary_join_element_wise(pc.cast(pa.array(starts), pa.string()),
                                       pc.cast(pa.array(ends), pa.string()), "-")
    return pc.binary_join_element_wise(f"{name}:", span, f":{strand}", "")


def ingest_fasta(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    window: int = 1024,
    stride: int | None = None,
    reverse_complement: bool = False,
    max_n_fraction: float = 0.1,
    min_length: int | None = None,
    alphabet: str = "dna",
    tokenizer: Any = None,
    rows_per_part: int = 262_144,
    compression: str = "zstd",
) -> dict[str, int]:
    """Write a "windows" shard directory from FASTA files.

    Args:
        paths: FASTA files (plain, gzip or bgzip); record ids must be unique across them.
        out_dir: the shard directory (appears only when complete).
        window: window length in tokens (one token per residue).
        stride: distance between window starts (default ``window``: no overlap).
        reverse_complement: also write the reverse complement of every kept window.
        max_n_fraction: drop windows with a larger fraction of N (X for protein).
        min_length: keep a short final window of at least this many tokens (default: none).
        alphabet: "dna", "rna" or "protein" (ignored when ``tokenizer`` is given).
        tokenizer: tokenizer to use instead of ``tokenizer_from_name(alphabet)``.

    Returns:
        Counts: ``records``, ``residues``, ``windows`` (written, both strands),
        ``dropped_n`` (windows over ``max_n_fraction``).

    Raises:
        DataError: a bad file (see :func:`read_fasta`), a duplicate record id across files, a
            character outside the alphabet (with record, position and line), or no window left.
    """
    stride = window if stride is None else stride
    if min_length is not None and min_length < 0:
        raise ConfigurationError(f"min_length={min_length}: must be >= 0 (residues in a "
                                 "record's short final window)")
    if not 0.0 <= max_n_fraction <= 1.0:
        raise ConfigurationError(f"max_n_fraction={max_n_fraction}; allowed range [0, 1]")
    if not paths:
        raise ConfigurationError("no FASTA file given")
    tokenizer = tokenizer if tokenizer is not None else tokenizer_from_name(alphabet)
    if reverse_complement and not hasattr(tokenizer, "reverse_complement_ids"):
        raise ConfigurationError(f"reverse_complement needs a nucleic-acid alphabet, not "
                                 f"{alphabet!r}: drop --reverse-complement for proteins")
    unknown_id = tokenizer.encode(UNKNOWN_RESIDUE.get(alphabet, "N"))[0]
    counts = {"records": 0, "residues": 0, "windows": 0, "dropped_n": 0}
    record_sources: dict[str, str] = {}
    params = {"window": window, "stride": stride, "reverse_complement": reverse_complement,
              "max_n_fraction": max_n_fraction, "min_length": min_length, "alphabet": alphabet}
    with ShardWriter(out_dir, "windows", tokenizer, rows_per_part=rows_per_part,
                     compression=compression, metadata={"parameters": params}) as writer:
        for path in map(Path, paths):
            with Progress(desc=path.name, unit="bp") as bar:
                for record in read_fasta(path):
                    if record.name in record_sources:
                        raise DataError(f"duplicate record id (also in {record_sources[record.name]})",
                                        path=path, record=record.name,
                                        line=_header_line(path, record.name))
                    record_sources[record.name] = str(path)
                    _write_record(writer, record, tokenizer, window, stride, min_length,
                                  max_n_fraction, unknown_id, reverse_complement, counts)
                    bar.update(len(record.sequence), windows=counts["windows"])
            writer.add_source(path)
        if counts["windows"] == 0:
            raise DataError(f"no window written: {counts['records']} record(s), "
                            f"{counts['dropped_n']} window(s) over max_n_fraction="
                            f"{max_n_fraction} (--max-n-fraction); records shorter than "
                            f"window={window} need min_length (--min-length N keeps a final "
                            "window of at least N residues)", path=paths[0])
        writer.metadata["counts"] = counts
    logger.info("wrote %s: %s", out_dir, counts)
    return counts


def _write_record(
    writer: ShardWriter, record: FastaRecord, tokenizer: Any, window: int, stride: int,
    min_length: int | None, max_n_fraction: float, unknown_id: int, reverse_complement: bool,
    counts: dict[str, int],
) -> None:
    try:
        ids = tokenizer.encode_array(record.sequence)
    except TokenizationError as err:
        position = getattr(err, "position", None)
        line = _position_line(record.path, record.name, position) if position is not None \
            else None
        message = str(err).split("; use unknown=")[0]  # the Python argument, not the option
        raise DataError(f"{message}; {character_hint(err, tokenizer.type_name.lower())}",
                        path=record.path, record=record.name, line=line) from None
    length = len(ids)
    counts["records"] += 1
    counts["residues"] += length
    starts, ends = window_bounds(length, window, stride, min_length)
    unknown = np.flatnonzero(ids == unknown_id)  # usually few: count per window by bisection
    n_unknown = np.searchsorted(unknown, ends) - np.searchsorted(unknown, starts)
    keep = n_unknown <= max_n_fraction * (ends - starts)
    counts["dropped_n"] += int((~keep).sum()) * (2 if reverse_complement else 1)
    starts, ends = starts[keep], ends[keep]
    if not len(starts):
        return
    strands = [("+", ids, starts, ends)]
    if reverse_complement:
        # The reverse complement of forward [s, e) is [L - e, L - s) of the reversed record.
        rc = np.asarray(tokenizer.reverse_complement_ids(ids), dtype=np.uint8)
        strands.append(("-", rc, length - ends, length - starts))
    n = len(starts)
    for strand, tokens, token_starts, token_ends in strands:
        writer.write_columns({
            "id": _window_ids(record.name, starts, ends, strand),
            "input_ids": _windows_column(tokens, token_starts, token_ends, window),
            "record_id": pa.repeat(record.name, n),
            "start": pa.array(starts),
            "end": pa.array(ends),
            "strand": pa.repeat(strand, n),
            "source": pa.repeat(record.path.name, n),
        })
        counts["windows"] += n
