"""Where variants come from: VCF/BCF records or table rows -> :class:`Variant` objects.

Each ALT allele of a record becomes one biallelic :class:`Variant` (1-based ``pos``, with the
file and line it came from, so every later error names them); symbolic alleles and records
without ALT are skipped and counted in :class:`VariantCounts`. Labels come from an INFO field, a
table column, or a sidecar table keyed by (chrom, pos, ref, alt).
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pysam

from ..errors import ConfigurationError, DataError
from .reference import is_plain_gzip

__all__ = ["Variant", "VariantCounts", "is_symbolic", "open_variant_file", "variants_from_vcf",
           "variants_from_table", "read_variant_labels", "ROW_COLUMNS"]

logger = logging.getLogger(__name__)

#: Columns of a "variants" row that a table's ``keep_columns`` may not overwrite.
ROW_COLUMNS = frozenset({"id", "ref_input_ids", "alt_input_ids", "variant_offset", "chrom", "pos",
                         "ref", "alt", "label", "variant_id", "ref_input_ids_rc",
                         "alt_input_ids_rc"})


@dataclass(frozen=True)
class Variant:
    """One biallelic variant; ``pos`` is the 1-based VCF POS, ``source``/``line`` its origin."""

    chrom: str
    pos: int
    ref: str
    alt: str
    label: float = math.nan
    source: str = ""
    line: int | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def record(self) -> str:
        return f"{self.chrom}:{self.pos}"

    def error(self, message: str) -> DataError:
        return DataError(message, path=self.source, record=self.record, line=self.line)


@dataclass
class VariantCounts:
    """What happened to the input's records and alleles (logged, and stored in the manifest)."""

    records: int = 0
    alleles: int = 0
    written: int = 0
    skipped_symbolic: int = 0
    skipped_no_alt: int = 0
    skipped_ref_mismatch: int = 0
    padded_windows: int = 0
    labelled: int = 0


def is_symbolic(allele: str) -> bool:
    """True for alleles that are not plain bases: ``<DEL>``, ``*``, breakends ``G]17:198982]``, ``.G``."""
    return allele.startswith("<") or allele == "*" or any(c in allele for c in "[].")


def _data_line(path: Path, index: int) -> tuple[int | None, str]:
    """(line number, text) of data line ``index`` (0-based) of a text VCF; error path only.

    htslib says only "truncated file" when a record does not parse; the line itself tells the
    user what is wrong. BCF gives ``(None, "")``.
    """
    opener = gzip.open if _is_gzip(path) else open
    try:
        with opener(path, "rt", errors="replace") as handle:
            seen = -1
            for number, text in enumerate(handle, start=1):
                if not text.startswith("#"):
                    seen += 1
                    if seen == index:
                        return number, text.rstrip("\n")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError):
        pass
    return None, ""


def _field_problem(text: str) -> str:
    """The first VCF column of ``text`` that cannot be right, in words."""
    fields = text.split("\t")
    if len(fields) < 8:
        return f"{len(fields)} tab-separated columns, a VCF record has at least 8"
    if not fields[1].isdigit():
        return f"POS {fields[1]!r} is not a whole number"
    if not fields[3] or not fields[4]:
        return "REF and ALT must not be empty"
    return "see the VCF specification for columns 1-8"


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def open_variant_file(path: Path) -> pysam.VariantFile:
    if not path.is_file():
        raise DataError("VCF/BCF file " + ("is a directory" if path.is_dir() else "not found"),
                        path=path)
    if is_plain_gzip(path):  # htslib would fail later on a seek, with no hint
        raise DataError(f"compressed with plain gzip, which htslib cannot read as a VCF: "
                        f"recompress it with bgzip (gunzip {path.name} && bgzip "
                        f"{path.name.removesuffix('.gz')}), or give it uncompressed",
                        path=path)
    # Quiet htslib while opening: it reports a missing .tbi/.csi, which we never need.
    verbosity = pysam.set_verbosity(0)
    try:
        return pysam.VariantFile(str(path))
    except (OSError, ValueError) as err:
        raise DataError(
            f"not a readable VCF/BCF with a header (it must start with '##fileformat=VCF' and "
            f"have a '#CHROM' line): {err}", path=path,
        ) from None
    finally:
        pysam.set_verbosity(verbosity)


def _number(value: object, what: str, variant: Variant) -> float:
    if value is None or value == "" or value == ".":
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise variant.error(f"{what} {value!r} is not a number") from None


def _info_label(record: pysam.VariantRecord, name: str, alt_index: int, variant: Variant) -> float:
    """The INFO ``name`` value for ALT ``alt_index`` (Number=A/R per allele; flags give 0/1)."""
    meta = record.header.info[name]
    if meta.type == "Flag":
        return 1.0 if name in record.info else 0.0
    value = record.info.get(name)
    if isinstance(value, tuple):
        n_alts = len(record.alts or ())
        if meta.number == "R":
            value = value[alt_index + 1]
        elif meta.number == "A" or len(value) == n_alts:
            value = value[alt_index]
        elif len(value) == 1:
            value = value[0]
        else:
            raise variant.error(
                f"INFO {name} has {len(value)} values for {n_alts} ALT alleles; cannot tell "
                "which is this allele's label"
            )
    return _number(value, f"INFO {name}", variant)


def variants_from_vcf(
    path: str | Path, *, label_info: str | None = None, counts: VariantCounts | None = None
) -> Iterator[Variant]:
    """Every (record, ALT allele) of a VCF/BCF as a :class:`Variant`.

    Records without ALT and symbolic ALT alleles are skipped and counted in ``counts``.

    Args:
        path: VCF, bgzipped VCF or BCF.
        label_info: INFO field holding each variant's label (per allele for Number=A); NaN
            where a record lacks it.
        counts: updated with ``records``, ``skipped_symbolic`` and ``skipped_no_alt``.

    Raises:
        DataError: no header / not a VCF, ``label_info`` not declared in the header, or a record
            that cannot be parsed (named by the record before it).
    """
    path = Path(path)
    counts = counts if counts is not None else VariantCounts()
    with open_variant_file(path) as vcf:
        if label_info is not None and label_info not in vcf.header.info:
            raise DataError(
                f"INFO field {label_info!r} (the label) is not declared in the header; declared: "
                f"{', '.join(vcf.header.info) or 'none'}", path=path,
            )
        records = iter(vcf)
        last = "the header"
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except (OSError, ValueError) as err:
                line, text = _data_line(path, counts.records)
                shown = f": {text[:80]!r} ({_field_problem(text)})" if text else f": {err}"
                raise DataError(f"cannot parse record {counts.records + 1}, the one after "
                                f"{last}{shown}", path=path, line=line) from None
            counts.records += 1
            last = f"{record.chrom}:{record.pos}"
            if record.pos < 1:
                raise DataError(f"POS {record.pos} of record {counts.records}: VCF positions "
                                "are 1-based (the first base is 1); fix the position (0-based "
                                "coordinates need + 1)", path=path, record=last)
            if not record.alts:
                counts.skipped_no_alt += 1
                continue
            for alt_index, alt in enumerate(record.alts):
                if is_symbolic(alt):
                    counts.skipped_symbolic += 1
                    continue
                variant = Variant(
                    record.chrom, record.pos, record.ref.upper(), alt.upper(), source=str(path),
                    extra={"variant_id": record.id or ""},
                )
                if label_info is not None:
                    label = _info_label(record, label_info, alt_index, variant)
                    variant = dataclasses.replace(variant, label=label)
                yield variant


def _read_table(path: str | Path, required: Sequence[str]) -> pd.DataFrame:
    """A CSV/TSV (optionally gzipped) as strings, checked to hold the ``required`` columns.

    TSV when the name ends in ``.tsv``/``.txt`` (before ``.gz``), else CSV.

    Raises:
        DataError: missing or unreadable file, or a required column absent (all are named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("table not found", path=path)
    name = path.name.lower().removesuffix(".gz")
    sep = "\t" if name.endswith((".tsv", ".txt")) else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError,
            OSError) as err:
        raise DataError(f"cannot read the table: {err}", path=path) from None
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(map(repr, missing))}; the table has "
            f"{', '.join(map(repr, table.columns))}", path=path,
        )
    return table


def variants_from_table(
    table: str | Path,
    *,
    chrom_column: str | None = "chrom",
    pos_column: str = "pos",
    ref_column: str = "ref",
    alt_column: str = "alt",
    label_column: str | None = None,
    chrom: str | None = None,
    keep_columns: Sequence[str] = (),
    counts: VariantCounts | None = None,
) -> Iterator[Variant]:
    """Variants from a table with one biallelic variant per row, as a VCF would give them.

    Args:
        table: CSV/TSV (optionally gzipped), header on line 1.
        chrom_column, pos_column, ref_column, alt_column: columns holding the contig, the
            1-based position (VCF POS convention) and the two alleles.
        label_column: numeric label column (empty / NA -> NaN); None: labels are NaN.
        chrom: contig for every row, used instead of ``chrom_column`` (e.g. a table in the
            coordinates of a one-record reference, like the BRCA1 SGE table on ref_brca1.fa).
        keep_columns: further columns copied to the output rows as strings.
        counts: ``records`` is updated (one per row).

    Raises:
        DataError: a missing column, a non-integer position, an empty allele or a non-numeric
            label, naming the file and line.
    """
    path = Path(table)
    clashing = sorted(set(keep_columns) & ROW_COLUMNS)
    if clashing:
        raise ConfigurationError(f"keep_columns {clashing} would overwrite output columns of the "
                                 f"same name; output columns are {sorted(ROW_COLUMNS)}")
    columns = [pos_column, ref_column, alt_column, *keep_columns]
    if chrom is None:
        if chrom_column is None:
            raise DataError("give a chrom column or a fixed chrom for every row", path=path)
        columns.append(chrom_column)
    if label_column is not None:
        columns.append(label_column)
    frame = _read_table(path, columns)
    chroms = [chrom] * len(frame) if chrom is not None else frame[chrom_column].tolist()
    labels = frame[label_column].tolist() if label_column is not None else [""] * len(frame)
    kept = {column: frame[column].tolist() for column in keep_columns}
    rows = zip(chroms, frame[pos_column].tolist(), frame[ref_column].tolist(),
               frame[alt_column].tolist(), labels, strict=True)
    counts = counts if counts is not None else VariantCounts()
    for index, (contig, pos, ref, alt, label) in enumerate(rows):
        counts.records += 1
        line = index + 2
        variant = Variant(contig, 0, ref.strip().upper(), alt.strip().upper(), source=str(path),
                          line=line, extra={column: kept[column][index] for column in kept})
        try:
            variant = dataclasses.replace(variant, pos=int(pos))
        except ValueError:
            raise DataError(f"column {pos_column!r}: position {pos!r} is not an integer",
                            path=path, line=line) from None
        if variant.pos < 1 or not variant.ref or not variant.alt or "," in variant.alt:
            raise variant.error(
                f"need a position >= 1 and one REF and one ALT allele; found pos {pos!r}, "
                f"ref {ref!r}, alt {alt!r}"
            )
        if label_column is not None and label.strip().upper() not in ("", "NA", "NAN"):
            variant = dataclasses.replace(
                variant, label=_number(label, f"column {label_column!r}: label", variant))
        yield variant


def read_variant_labels(
    table: str | Path, label_column: str, **columns: str
) -> dict[tuple[str, int, str, str], float]:
    """Labels keyed by (chrom, pos, ref, alt) from a sidecar table (see :func:`variants_from_table`).

    Raises:
        DataError: as for :func:`variants_from_table`, or a variant listed twice.
    """
    labels: dict[tuple[str, int, str, str], float] = {}
    for variant in variants_from_table(table, label_column=label_column, **columns):
        key = (variant.chrom, variant.pos, variant.ref, variant.alt)
        if key in labels:
            raise variant.error(f"variant {variant.ref}>{variant.alt} is listed twice")
        labels[key] = variant.label
    return labels
