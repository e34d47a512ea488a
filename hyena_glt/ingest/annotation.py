"""Annotation ingestion: FASTA + GFF3/BED, or a GenBank file alone (:mod:`.genbank`) -> per-base
feature labels in windows.

Each base of each FASTA record gets label 1 when any annotated interval of the requested feature
type(s) covers it, else 0 (e.g. CDS vs non-coding, for token classification). The label is about
the genome position, whatever the feature's strand: a minus-strand CDS labels its bases 1 on the
forward sequence too. Each GFF3 line is one interval, so a spliced feature (one line per exon or
CDS part, parts sharing an ID) labels its parts and not its introns, and overlapping parts (the
-1 ribosomal frameshift of SARS-CoV-2 ORF1ab) simply overlap.

Coordinates: GFF3 is 1-based inclusive, BED 0-based half-open; both become 0-based half-open
here. A GFF3 ``##FASTA`` section ends the annotation (the sequences come from the FASTA given).
BED has no feature type: every BED interval is labelled, and ``feature`` applies to GFF3 only.

Windows are cut as for the FASTA ingester (same window/stride/last-window rule) and written as
"annotation" shards: ``input_ids`` (one token per base) with ``labels`` (int8, one per base).

With ``split`` the windows go to ``<out>/train`` and ``<out>/test`` shard directories cut from
disjoint, window-sized blocks of each record (:func:`~hyena_glt.ingest.splits.split_segments`),
or with ``test_contigs`` from whole records the user holds out: no base of a test window
is in a train window, even with overlapping windows, and test windows whose sequence repeats
train sequence on either strand are dropped (:mod:`~hyena_glt.ingest.duplicates`), so a model
cannot have seen its test sequence.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from ..data.shards import ShardWriter
from ..data.tokenizers import DNATokenizer
from ..errors import ConfigurationError, DataError, TokenizationError
from ..io import atomic_directory
from ..progress import Progress
from .duplicates import TrainingKmers, canonical_kmers
from .fasta import FastaRecord, read_fasta, window_bounds
from .genbank import is_genbank, read_genbank
from .splits import check_test_contigs, contig_segments, split_segments

__all__ = [
    "FeatureInterval",
    "read_annotation",
    "feature_masks",
    "ingest_annotation",
]

logger = logging.getLogger(__name__)

GFF3_SUFFIXES = (".gff", ".gff3")
BED_SUFFIXES = (".bed",)
COMPRESSED_SUFFIXES = (".gz", ".bgz")


@dataclass(frozen=True)
class FeatureInterval:
    """One annotated interval, 0-based half-open, with the file line it came from."""

    seqid: str
    start: int
    end: int
    strand: str
    feature: str
    line: int


def annotation_format(path: str | Path) -> str:
    """``"gff3"`` or ``"bed"`` from the file name (``.gff``/``.gff3``/``.bed``, optionally gzipped)."""
    name = Path(path).name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    if name.endswith(GFF3_SUFFIXES):
        return "gff3"
    if name.endswith(BED_SUFFIXES):
        return "bed"
    raise DataError(
        "cannot tell the annotation format from the file name; expected a name ending in "
        ".gff, .gff3 or .bed (optionally .gz)",
        path=path,
    )


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line without newline) of a plain, gzip or BGZF text file.

    A truncated or corrupt gzip stream becomes a DataError naming the last line read.
    """
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    handle = gzip.open(path, "rt") if compressed else open(path)
    number = 0
    try:
        with handle:
            for number, line in enumerate(handle, start=1):
                yield number, line.rstrip("\r\n")
    except (EOFError, OSError, zlib.error) as err:
        raise DataError(f"unreadable after line {number} ({err}); is the file truncated?", path=path) from None
    except UnicodeDecodeError as err:
        raise DataError(f"not a text file ({err})", path=path, line=number + 1) from None


def _coordinates(path: Path, number: int, fields: list[str], columns: tuple[int, int]) -> tuple[int, int]:
    values = []
    for column in columns:
        try:
            values.append(int(fields[column]))
        except ValueError:
            raise DataError(
                f"column {column + 1} should be an integer coordinate, found {fields[column]!r}",
                path=path, line=number,
            ) from None
    return values[0], values[1]


def _read_gff3(path: Path, features: frozenset[str], seen_types: set[str]) -> Iterator[FeatureInterval]:
    for number, line in _text_lines(path):
        if line.startswith("##FASTA"):
            return
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 9:
            raise DataError(
                f"a GFF3 feature line has 9 tab-separated columns, found {len(fields)}",
                path=path, line=number,
            )
        start, end = _coordinates(path, number, fields, (3, 4))
        if start < 1 or start > end:
            raise DataError(
                f"start {start} and end {end} must satisfy 1 <= start <= end (GFF3 is 1-based "
                "inclusive)", path=path, line=number,
            )
        seen_types.add(fields[2])
        if fields[2] in features:
            yield FeatureInterval(unquote(fields[0]), start - 1, end, fields[6], fields[2], number)


def _read_bed(path: Path) -> Iterator[FeatureInterval]:
    for number, line in _text_lines(path):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise DataError(
                f"a BED line has at least 3 tab-separated columns (chrom, start, end), found "
                f"{len(fields)}", path=path, line=number,
            )
        start, end = _coordinates(path, number, fields, (1, 2))
        if start < 0 or start > end:
            raise DataError(
                f"start {start} and end {end} must satisfy 0 <= start <= end (BED is 0-based "
                "half-open)", path=path, line=number,
            )
        strand = fields[5] if len(fields) >= 6 else "."
        name = fields[3] if len(fields) >= 4 else ""
        yield FeatureInterval(fields[0], start, end, strand, name, number)


def read_annotation(
    path: str | Path, feature: str | Sequence[str] = "CDS", *, format: str | None = None
) -> list[FeatureInterval]:
    """Every interval of ``path`` of the given GFF3 feature type(s) (every BED interval).

    Args:
        path: GFF3 or BED file, plain, gzip or BGZF.
        feature: GFF3 type(s) to keep (column 3, e.g. ``"CDS"``); ignored for BED.
        format: ``"gff3"`` or ``"bed"``; by default taken from the file name.

    Raises:
        DataError: a malformed line (column count, non-integer or inverted coordinates), naming
            the file and line; or no interval of the requested type at all (naming the types
            the file has), which is almost always a wrong ``feature``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("annotation file not found", path=path)
    kind = format or annotation_format(path)
    if kind == "gff3":
        features = frozenset([feature] if isinstance(feature, str) else feature)
        seen_types: set[str] = set()
        intervals = list(_read_gff3(path, features, seen_types))
        if not intervals:
            raise DataError(
                f"no feature of type {', '.join(sorted(features))}; the file has types "
                f"{', '.join(sorted(seen_types)) or 'none'}", path=path,
            )
        return intervals
    if kind == "bed":
        intervals = list(_read_bed(path))
        if not intervals:
            raise DataError("the BED file holds no interval", path=path)
        return intervals
    raise DataError(f"unknown annotation format {kind!r}; expected 'gff3' or 'bed'", path=path)


def _group_by_seqid(intervals: Iterable[FeatureInterval]) -> dict[str, list[FeatureInterval]]:
    grouped: dict[str, list[FeatureInterval]] = defaultdict(list)
    for interval in intervals:
        grouped[interval.seqid].append(interval)
    return grouped


def paint_mask(length: int, intervals: Iterable[FeatureInterval], annotation: str | Path,
               record: str) -> np.ndarray:
    """int8 array of ``length``: 1 where any interval covers the base, else 0.

    Raises:
        DataError: an interval ends past the record end (naming the line).
    """
    mask = np.zeros(length, dtype=np.int8)
    for interval in intervals:
        if interval.end > length:
            raise DataError(
                f"feature {interval.feature!r} ends at {interval.end}, past the end of FASTA "
                f"record {record!r} ({length:,} bp)", path=annotation, line=interval.line,
            )
        mask[interval.start:interval.end] = 1
    return mask


def _masked_records(
    fasta: str | Path | None, annotation: str | Path, feature: str | Sequence[str],
    format: str | None,
) -> Iterator[tuple[FastaRecord, np.ndarray]]:
    """Each FASTA record with its mask; after the last, every annotated seqid must have been
    seen. A GenBank ``annotation`` holds the records itself (``fasta`` is then not read)."""
    if is_genbank(annotation) and format is None:
        yield from read_genbank(annotation, feature)
        return
    if fasta is None:
        raise DataError("a GFF3 or BED annotation needs the FASTA of its sequences (only a "
                        "GenBank file holds both)", path=annotation)
    grouped = _group_by_seqid(read_annotation(annotation, feature, format=format))
    names: list[str] = []
    for record in read_fasta(fasta):
        names.append(record.name)
        yield record, paint_mask(len(record.sequence), grouped.get(record.name, ()), annotation,
                                 record.name)
    missing = [seqid for seqid in grouped if seqid not in set(names)]
    if missing:
        listed = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        raise DataError(
            f"seqid {missing[0]!r} is not a record of the FASTA {fasta} (its records: {listed})",
            path=annotation, line=grouped[missing[0]][0].line,
        )


def feature_masks(
    fasta: str | Path, annotation: str | Path, feature: str | Sequence[str] = "CDS",
    *, format: str | None = None,
) -> dict[str, np.ndarray]:
    """Per-base labels of every FASTA record: int8, 1 inside a ``feature`` interval, else 0.

    Args:
        fasta: the annotated sequences (plain, gzip or BGZF FASTA).
        annotation: GFF3 or BED of those sequences.
        feature: GFF3 type(s) labelled 1 (ignored for BED).
        format: ``"gff3"`` or ``"bed"``; by default from the file name.

    Returns:
        ``{record id: mask}``, ``mask.shape == (record length,)``, for every record in FASTA order.

    Raises:
        DataError: a bad FASTA (see :func:`~hyena_glt.ingest.fasta.read_fasta`), a malformed
            annotation line, a seqid that is not a FASTA record, or an interval past its
            record's end (naming the file and line).
    """
    return {record.name: mask for record, mask in _masked_records(fasta, annotation, feature, format)}


def ingest_annotation(
    fasta: str | Path | None,
    annotation: str | Path,
    out_dir: str | Path,
    *,
    feature: str | Sequence[str] = "CDS",
    window: int = 1024,
    stride: int | None = None,
    min_length: int | None = None,
    reverse_complement: bool = False,
    format: str | None = None,
    tokenizer: DNATokenizer | None = None,
    split: float | None = None,
    seed: int = 0,
    duplicate_threshold: float | None = 0.5,
    test_contigs: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Write an "annotation" shard directory: windows of ``fasta`` with per-base labels.

    Windows follow the FASTA ingester (:func:`~hyena_glt.ingest.fasta.window_bounds`: full
    windows at multiples of ``stride``, a shorter last one only with ``min_length``). Each row
    holds ``input_ids`` (one token per base), ``labels`` (int8, 1 inside a ``feature`` interval,
    same length), the record id and the window's 0-based half-open forward ``start``/``end``.
    With ``reverse_complement`` each window is also written as its reverse complement
    (``strand == "-"``, ids and labels both reversed).

    With ``split`` (train fraction), ``out_dir`` holds ``train`` and ``test`` shard
    directories: each record is cut into window-sized blocks, a seeded random ``1 - split`` of
    them held out (:func:`~hyena_glt.ingest.splits.split_segments`), and each run of blocks of one part is windowed on
    its own as above (from its start, which lies on the stride grid), so no window crosses a
    cut. With ``test_contigs`` instead, those records go whole to test and the others to train
    (:func:`~hyena_glt.ingest.splits.contig_segments`). A test window is then dropped when at least ``duplicate_threshold`` of its canonical
    31-mers occur anywhere in the train part, on either strand (repeats such as a chloroplast's
    inverted-repeat copies, see :mod:`~hyena_glt.ingest.duplicates`); ``None`` keeps them.

    Returns:
        Counts ``records``, ``bases``, ``feature_bases``, ``windows`` (also in the manifest);
        with ``split``, ``{"train": counts, "test": counts}`` over each part's stretches, the
        test counts with ``duplicate_windows`` (windows dropped as duplicates, both strands).

    Raises:
        DataError: see :func:`feature_masks`; also characters outside the DNA alphabet (named
            with record and position) or no window at all (in a part) (records shorter than
            ``window``), a test contig the file does not have. ConfigurationError: ``split``
            or ``duplicate_threshold`` outside (0, 1], or both ``split`` and ``test_contigs``.
    """
    stride = window if stride is None else stride
    if split is not None and not 0.0 < split < 1.0:
        raise ConfigurationError(f"split={split}; the train fraction must lie in (0, 1)")
    if split is not None and test_contigs is not None:
        raise ConfigurationError("give split or test_contigs, not both")
    partitioned = split is not None or test_contigs is not None
    if duplicate_threshold is not None and not 0.0 < duplicate_threshold <= 1.0:
        raise ConfigurationError(f"duplicate_threshold={duplicate_threshold}: must lie in (0, 1]")
    tokenizer = tokenizer if tokenizer is not None else DNATokenizer()
    features = [feature] if isinstance(feature, str) else list(feature)
    params = {"window": window, "stride": stride, "min_length": min_length,
              "reverse_complement": reverse_complement, "feature": features}
    if split is not None:
        params.update(split=split, seed=seed)
    if test_contigs is not None:
        params.update(test_contigs=list(test_contigs))
    if partitioned:
        params.update(duplicate_threshold=duplicate_threshold)

    def record_parts(name: str, length: int) -> dict[str, list[tuple[int, int]]]:
        if test_contigs is not None:
            return contig_segments(name, length, test_contigs)
        if split is not None:
            return split_segments(length, split, seed, name, stride, window)
        return {"all": [(0, length)]}

    names = ["train", "test"] if partitioned else ["all"]
    counts = {name: {"records": 0, "bases": 0, "feature_bases": 0, "windows": 0}
              for name in names}
    training_kmers = None
    if partitioned and duplicate_threshold is not None:
        counts["test"]["duplicate_windows"] = 0
        training_kmers = TrainingKmers(
            record.sequence[begin:finish]
            for record, _ in _masked_records(fasta, annotation, features, format)
            for begin, finish in record_parts(record.name, len(record.sequence))["train"])
    segments: dict[str, dict[str, list[tuple[int, int]]]] = {name: {} for name in names}
    records: list[str] = []
    with contextlib.ExitStack() as stack:
        if not partitioned:
            directories = {"all": Path(out_dir)}
        else:
            parent = stack.enter_context(atomic_directory(out_dir))
            directories = {name: parent / name for name in names}
        writers = {name: stack.enter_context(ShardWriter(
            directory, "annotation", tokenizer,
            metadata={"parameters": params, **({"part": name} if partitioned else {})}))
            for name, directory in directories.items()}
        with Progress(desc=Path(fasta or annotation).name, unit="bp") as bar:
            for record, mask in _masked_records(fasta, annotation, features, format):
                try:
                    ids = tokenizer.encode_array(record.sequence)
                except TokenizationError as err:
                    raise DataError(str(err), path=record.path, record=record.name) from None
                records.append(record.name)
                parts = record_parts(record.name, len(ids))
                rc_ids = (np.asarray(tokenizer.reverse_complement_ids(ids), dtype=np.uint8)
                          if reverse_complement else None)
                strands = 2 if reverse_complement else 1
                for name, stretches in parts.items():
                    for begin, finish in stretches:
                        starts, ends = window_bounds(finish - begin, window, stride, min_length)
                        starts, ends = starts + begin, ends + begin
                        if name == "test" and training_kmers is not None:
                            unique = _not_in_training(record.sequence, starts, ends,
                                                      training_kmers, duplicate_threshold)
                            counts[name]["duplicate_windows"] += int((~unique).sum()) * strands
                            starts, ends = starts[unique], ends[unique]
                        _write_record(writers[name], record.name, ids, mask, starts, ends, rc_ids)
                        part = counts[name]
                        part["bases"] += finish - begin
                        part["feature_bases"] += int(mask[begin:finish].sum())
                        part["windows"] += len(starts) * strands
                    if stretches:
                        counts[name]["records"] += 1
                        segments[name][record.name] = [list(s) for s in stretches]
                bar.update(len(ids), windows=sum(c["windows"] for c in counts.values()))
        if test_contigs is not None:  # before "no window in the test part" hides the cause
            check_test_contigs(test_contigs, records, fasta or annotation)
        for name, writer in writers.items():
            if counts[name]["windows"] == 0:
                if not partitioned:
                    raise DataError(f"no window written: every record is shorter than "
                                    f"window={window} (set min_length to keep short windows)",
                                    path=fasta or annotation)
                dropped = counts[name].get("duplicate_windows", 0)
                why = (f"all {dropped} of its windows repeat train sequence (raise "
                       "duplicate_threshold or keep duplicates)" if dropped else
                       f"each of its stretches of the records is shorter than window={window} "
                       "(set min_length, a smaller window, or another split)")
                raise DataError(f"no window written to the {name} part: {why}",
                                path=fasta or annotation)
            if fasta is not None:
                writer.add_source(fasta)
            writer.add_source(annotation)
            writer.metadata["counts"] = counts[name]
            if partitioned:
                writer.metadata["segments"] = segments[name]
    logger.info("wrote %s: %s", out_dir, counts)
    return counts if partitioned else counts["all"]


def _not_in_training(sequence: str, starts: np.ndarray, ends: np.ndarray,
                     training_kmers: TrainingKmers, threshold: float) -> np.ndarray:
    """Which windows ``[starts, ends)`` of ``sequence`` share less than ``threshold`` of their
    k-mers with the train part."""
    if not len(starts):
        return np.zeros(0, dtype=bool)
    first, last = int(starts.min()), int(ends.max())
    codes, valid = canonical_kmers(sequence[first:last], training_kmers.k)
    keep = [training_kmers.shared_fraction(codes[s - first:e - first - training_kmers.k + 1],
                                           valid[s - first:e - first - training_kmers.k + 1])
            < threshold for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    return np.asarray(keep, dtype=bool)


def _write_record(
    writer: ShardWriter, name: str, ids: np.ndarray, mask: np.ndarray, starts: np.ndarray,
    ends: np.ndarray, rc_ids: np.ndarray | None,
) -> None:
    """Windows ``[starts, ends)`` of one record, and their reverse complements (``rc_ids``: the
    record's reverse-complemented ids, or None)."""
    _write_windows(writer, name, ids, mask, starts, ends, "+")
    if rc_ids is not None:
        # forward [s, e) is [L - e, L - s) of the reversed record
        _write_windows(writer, name, rc_ids, mask[::-1], len(ids) - ends, len(ids) - starts,
                       "-", starts, ends)


def _write_windows(
    writer: ShardWriter, name: str, ids: np.ndarray, mask: np.ndarray, starts: np.ndarray,
    ends: np.ndarray, strand: str, forward_starts: np.ndarray | None = None,
    forward_ends: np.ndarray | None = None,
) -> None:
    """One record's windows ``[starts, ends)`` of ``ids``/``mask``, at forward coordinates."""
    if not len(starts):
        return
    forward_starts = starts if forward_starts is None else forward_starts
    forward_ends = ends if forward_ends is None else forward_ends
    bounds = list(zip(starts.tolist(), ends.tolist(), strict=True))
    writer.write_columns({
        "id": [f"{name}:{s}-{e}:{strand}" for s, e in zip(forward_starts.tolist(),
                                                          forward_ends.tolist(), strict=True)],
        "input_ids": [ids[s:e] for s, e in bounds],
        "labels": [mask[s:e] for s, e in bounds],
        "record_id": [name] * len(bounds),
        "start": forward_starts,
        "end": forward_ends,
        "strand": [strand] * len(bounds),
    })
