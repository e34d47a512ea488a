"""Variant ingestion: VCF/BCF (or a variant table) + reference FASTA -> ref/alt window pairs.

For each record and each ALT allele (multi-allelic records are split), two windows of ``window``
bases are cut from the reference:

- the reference window ``ref[p - window // 2 : p - window // 2 + window]``, where ``p`` is the
  0-based position of the variant (VCF POS - 1), so REF starts at ``variant_offset = window // 2``;
- the alternate window: the same left part, then ALT in place of REF, then the reference after
  REF, cut or extended *at the right end* so it is also exactly ``window`` long (a deletion pulls
  in more right-hand reference, an insertion pushes it out). ALT starts at ``variant_offset`` too.

Windows reaching past a contig end are padded with ``N`` (counted as ``padded_windows``), so every
variant keeps a window and the variant stays at ``variant_offset``. With
``reverse_complement=True`` each row also holds the reverse complement of both windows
(``ref_input_ids_rc``, ``alt_input_ids_rc``), for averaging a score over both strands.

REF is checked against the reference (case-insensitive): a mismatch is a DataError naming the
file, record and both alleles, or with ``on_ref_mismatch="skip"`` a counted skip. Symbolic alleles
(``<DEL>``, ``<CN0>``, ``*``, breakends) and records without ALT are skipped and counted. The counts
go to the log and to the shard manifest.

With ``split`` the variants are divided into ``<out>/train`` and ``<out>/test`` shard directories
without leakage: variants are grouped by contig and ``bin_size``-bp position bin (``pos //
bin_size``, :func:`position_bins`, the grouping of the position-grouped evaluation folds in
:mod:`hyena_glt.evaluation.variant_effect`), the bins are put in a seeded random order, and whole
bins go to train until it holds ``split`` of the variants; the rest go to test
(:func:`split_by_position`). Neighbouring variants, whose windows are almost identical, thus never
straddle train and test.

The reference is opened with ``pysam.FastaFile`` (:mod:`.reference`): plain or BGZF FASTA, with
its ``.fai`` (and ``.gzi``) when present and still matching the file, else indexed into a
temporary folder (nothing is written next to the input). Variants are read by
:mod:`.variant_sources`. A plain-gzip reference (not BGZF) cannot be indexed; it is decompressed to a temporary
file first, which costs its size in temporary disk (``bgzip`` it to avoid this).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pysam

from ..data.shards import ShardWriter
from ..data.tokenizers import DNATokenizer
from ..errors import ConfigurationError, DataError, TokenizationError
from ..io import atomic_directory
from ..progress import progress
from .reference import open_reference
from .splits import check_test_contigs
from .variant_sources import (  # re-exported: the readers' home before they had a module
    Variant,
    VariantCounts,
    is_symbolic,
    read_variant_labels,
    variants_from_table,
    variants_from_vcf,
)
from .variant_sources import open_variant_file as open_variant_file  # hyena_glt.prediction

__all__ = [
    "Variant",
    "VariantCounts",
    "open_reference",
    "variants_from_vcf",
    "variants_from_table",
    "read_variant_labels",
    "is_symbolic",
    "variant_windows",
    "position_bins",
    "split_by_position",
    "ingest_variants",
]

logger = logging.getLogger(__name__)

ON_REF_MISMATCH = ("error", "skip")
#: Default size of the position bins that a split keeps whole (as the evaluation folds do).
DEFAULT_BIN_SIZE = 100

def _fetch_padded(fasta: pysam.FastaFile, chrom: str, start: int, end: int) -> str:
    """``chrom[start:end]`` in upper case, with N for the part outside the contig."""
    length = fasta.get_reference_length(chrom)
    inner = fasta.fetch(chrom, max(start, 0), max(min(end, length), 0)) if start < length else ""
    left = min(max(-start, 0), end - start)
    return "N" * left + inner.upper() + "N" * (end - start - left - len(inner))


def check_contig(fasta: pysam.FastaFile, variant: Variant, reference: str | Path) -> None:
    """DataError naming the contig and the reference's contigs when ``variant`` is off-reference."""
    if variant.chrom not in fasta.references:
        names = list(fasta.references)
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
        raise variant.error(
            f"contig {variant.chrom!r} is not in the reference {reference} (its contigs: {shown})"
        )


def variant_windows(fasta: pysam.FastaFile, variant: Variant, window: int) -> tuple[str, str, int]:
    """(reference window, alternate window, variant offset) for one variant; see module doc.

    Both windows are ``window`` long; REF starts at the offset in the first, ALT in the second.
    The contig must exist (:func:`check_contig`); REF is not checked here.
    """
    offset = window // 2
    start = variant.pos - 1 - offset
    ref_window = _fetch_padded(fasta, variant.chrom, start, start + window)
    after_ref = variant.pos - 1 + len(variant.ref)
    right = max(window - offset - len(variant.alt), 0)
    alt_window = (
        ref_window[:offset] + variant.alt + _fetch_padded(fasta, variant.chrom, after_ref, after_ref + right)
    )[:window]
    return ref_window, alt_window, offset


def _tokens(tokenizer: DNATokenizer, window: str, variant: Variant, which: str) -> np.ndarray:
    try:
        return tokenizer.encode_array(window)
    except TokenizationError as err:
        raise variant.error(f"{which} window: {err}") from None


def position_bins(positions: Sequence[int] | np.ndarray, bin_size: int = DEFAULT_BIN_SIZE,
                  chroms: Sequence[str] | None = None) -> np.ndarray:
    """Group id ``(N,)`` of each variant: its ``bin_size``-bp position bin, ``pos // bin_size``.

    Neighbouring variants share almost all of their window, so anything that separates train
    from test data (ingest splits, evaluation folds) keeps a bin whole. Without ``chroms`` the
    ids are the bin numbers; with them, bins are per contig and numbered in sorted
    (contig, bin) order.

    Raises:
        ConfigurationError: ``bin_size < 1``.
    """
    if bin_size < 1:
        raise ConfigurationError(f"bin_size={bin_size}; it must be >= 1")
    bins = np.asarray(positions, dtype=np.int64) // bin_size
    if chroms is None:
        return bins
    keys = pd.Series(np.asarray(chroms, dtype=object)).astype(str) + ":" + pd.Series(bins).map(
        "{:020d}".format)
    codes, _ = pd.factorize(keys, sort=True)
    return codes.astype(np.int64)


def split_by_position(positions: Sequence[int] | np.ndarray, train_fraction: float,
                      seed: int = 0, bin_size: int = DEFAULT_BIN_SIZE,
                      chroms: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)``, each sorted, keeping every position bin on one side.

    The bins (:func:`position_bins`) are put in a seeded random order
    (``numpy.random.default_rng(seed).permutation``); a bin goes to train while the rows before
    it in that order are fewer than ``train_fraction`` of all rows, so train holds about
    ``train_fraction`` of the rows (whole bins). At least one bin goes to each side.

    Raises:
        ConfigurationError: ``train_fraction`` outside (0, 1), or fewer than 2 bins.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ConfigurationError(f"split={train_fraction}; the train fraction must lie in (0, 1)")
    groups = position_bins(positions, bin_size, chroms)
    if chroms is None:
        _, groups = np.unique(groups, return_inverse=True)
    n_bins = int(groups.max()) + 1 if len(groups) else 0
    if n_bins < 2:
        raise ConfigurationError(f"cannot split {len(groups)} variant(s) in {n_bins} position "
                                 f"bin(s) of {bin_size} bp into train and test; use a smaller "
                                 "bin size")
    order = np.random.default_rng(seed).permutation(n_bins)
    sizes = np.bincount(groups, minlength=n_bins)[order]
    before = np.cumsum(sizes) - sizes
    in_train = before < train_fraction * len(groups)
    in_train[0], in_train[-1] = True, False
    train_bins = np.zeros(n_bins, dtype=bool)
    train_bins[order[in_train]] = True
    train = train_bins[groups]
    return np.flatnonzero(train), np.flatnonzero(~train)


def ingest_variants(
    variants: Iterable[Variant],
    reference: str | Path,
    out_dir: str | Path,
    *,
    window: int = 1024,
    on_ref_mismatch: str = "error",
    labels: Mapping[tuple[str, int, str, str], float] | None = None,
    reverse_complement: bool = False,
    tokenizer: DNATokenizer | None = None,
    counts: VariantCounts | None = None,
    split: float | None = None,
    seed: int = 0,
    bin_size: int = DEFAULT_BIN_SIZE,
    test_contigs: Sequence[str] | None = None,
) -> VariantCounts:
    """Write a "variants" shard directory of ref/alt windows for ``variants``.

    Args:
        variants: from :func:`variants_from_vcf` or :func:`variants_from_table`.
        reference: FASTA the variants' positions refer to.
        out_dir: shard directory, written atomically (nothing is left on error); with
            ``split``, a directory holding the ``train`` and ``test`` shard directories.
        window: bases per window; the variant starts at ``window // 2``.
        on_ref_mismatch: ``"error"`` (DataError) or ``"skip"`` (counted) when REF differs from
            the reference.
        labels: ``(chrom, pos, ref, alt) -> label`` (:func:`read_variant_labels`); replaces the
            variants' own labels, NaN for variants not listed.
        reverse_complement: also store both windows reverse-complemented (``*_rc`` columns).
        tokenizer: DNA tokenizer for the windows (default ``DNATokenizer()``).
        counts: the counts the variant source updates (for its skips), continued here.
        split: train fraction of a position-grouped split (:func:`split_by_position`); None
            writes one shard directory.
        seed, bin_size: the split's seed and position bin size (bp).
        test_contigs: instead of ``split``, the variants of these contigs go to test and the
            others to train.

    Returns:
        The counts (over both parts with ``split``), also logged and stored in the manifest
        (each part's manifest holds that part's counts).

    Raises:
        DataError: unknown contig, REF mismatch (with ``"error"``), a window with characters
            outside the alphabet, or no variant left to write (in a part); each names file and
            record. ConfigurationError: bad settings, or too few position bins to split.
    """
    if on_ref_mismatch not in ON_REF_MISMATCH:
        raise ConfigurationError(
            f"on_ref_mismatch={on_ref_mismatch!r}; allowed: {', '.join(ON_REF_MISMATCH)}")
    if window < 1:
        raise ConfigurationError(f"window={window}; it must be >= 1")
    if split is not None and test_contigs is not None:
        raise ConfigurationError("give split or test_contigs, not both")
    tokenizer = tokenizer if tokenizer is not None else DNATokenizer()
    counts = counts if counts is not None else VariantCounts()
    parameters = {
        "window": window, "variant_offset": window // 2, "on_ref_mismatch": on_ref_mismatch,
        "reverse_complement": reverse_complement, "sidecar_labels": labels is not None,
        "split": split, "seed": seed if split is not None else None,
        "bin_size": bin_size if split is not None else None,
        **({"test_contigs": list(test_contigs)} if test_contigs is not None else {}),
    }
    settings = {"window": window, "on_ref_mismatch": on_ref_mismatch, "labels": labels,
                "reverse_complement": reverse_complement, "tokenizer": tokenizer,
                "parameters": parameters}
    with open_reference(reference) as fasta:
        if split is None and test_contigs is None:
            _write_variants(variants, fasta, reference, out_dir, counts, **settings)
        else:
            variants = list(variants)
            if test_contigs is not None:
                check_test_contigs(test_contigs, sorted({v.chrom for v in variants}), reference)
                held_out = np.isin([v.chrom for v in variants], list(test_contigs))
                parts = (np.flatnonzero(~held_out), np.flatnonzero(held_out))
            else:
                parts = split_by_position([v.pos for v in variants], split, seed, bin_size,
                                          chroms=[v.chrom for v in variants])
            source_counts = dataclasses.replace(counts)
            with atomic_directory(out_dir) as tmp:
                for name, rows in zip(("train", "test"), parts, strict=True):
                    part = dataclasses.replace(source_counts)
                    _write_variants([variants[i] for i in rows], fasta, reference, tmp / name,
                                    part, part_name=name, **settings)
                    for key in ("alleles", "written", "skipped_ref_mismatch", "padded_windows",
                                "labelled"):
                        setattr(counts, key, getattr(counts, key) + getattr(part, key))
    skipped = counts.skipped_ref_mismatch + counts.skipped_symbolic + counts.skipped_no_alt
    (logger.warning if skipped else logger.info)("wrote %s: %s", out_dir, _describe(counts))
    return counts


def _write_variants(
    variants: Iterable[Variant], fasta: pysam.FastaFile, reference: str | Path,
    out_dir: str | Path, counts: VariantCounts, *, window: int, on_ref_mismatch: str,
    labels: Mapping[tuple[str, int, str, str], float] | None, reverse_complement: bool,
    tokenizer: DNATokenizer, parameters: dict, part_name: str | None = None,
) -> None:
    """One "variants" shard directory (see :func:`ingest_variants`); ``counts`` is updated."""
    sources: list[str] = []
    columns = [("label", pa.float64())]
    if reverse_complement:
        columns += [("ref_input_ids_rc", pa.list_(pa.uint8())), ("alt_input_ids_rc", pa.list_(pa.uint8()))]
    with ShardWriter(out_dir, "variants", tokenizer, schema=pa.schema(columns)) as writer:
        writer.add_source(reference)
        for variant in progress(variants, desc=part_name or "variants", unit="allele"):
            if variant.source not in sources:
                sources.append(variant.source)
                writer.add_source(variant.source)
            counts.alleles += 1
            check_contig(fasta, variant, reference)
            start = variant.pos - 1
            contig_length = fasta.get_reference_length(variant.chrom)
            if start + len(variant.ref) > contig_length and on_ref_mismatch == "error":
                raise variant.error(
                    f"REF {variant.ref} at position {variant.pos} runs past the end of contig "
                    f"{variant.chrom} (length {contig_length:,}) in {reference}: wrong reference "
                    "build, or a position in another coordinate system?")
            found = _fetch_padded(fasta, variant.chrom, start, start + len(variant.ref))
            if found != variant.ref:
                if on_ref_mismatch == "error":
                    raise variant.error(
                        f"REF {variant.ref} does not match the reference {reference}, which has "
                        f"{found} there (wrong reference build, or 0-based positions?)"
                    )
                counts.skipped_ref_mismatch += 1
                logger.debug("skipped %s: REF %s, reference %s", variant.record, variant.ref, found)
                continue
            label = variant.label
            if labels is not None:
                label = labels.get((variant.chrom, variant.pos, variant.ref, variant.alt), math.nan)
            ref_window, alt_window, offset = variant_windows(fasta, variant, window)
            length = fasta.get_reference_length(variant.chrom)
            counts.padded_windows += start - offset < 0 or start - offset + window > length
            row = {
                "id": f"{variant.chrom}:{variant.pos}:{variant.ref}>{variant.alt}",
                "ref_input_ids": _tokens(tokenizer, ref_window, variant, "reference"),
                "alt_input_ids": _tokens(tokenizer, alt_window, variant, "alternate"),
                "variant_offset": offset,
                "chrom": variant.chrom,
                "pos": variant.pos,
                "ref": variant.ref,
                "alt": variant.alt,
                "label": label,
                **variant.extra,
            }
            if reverse_complement:
                row["ref_input_ids_rc"] = tokenizer.reverse_complement_ids(row["ref_input_ids"])
                row["alt_input_ids_rc"] = tokenizer.reverse_complement_ids(row["alt_input_ids"])
            writer.write(row)
            counts.written += 1
            counts.labelled += not math.isnan(label)
        if counts.written == 0:
            where = f" in the {part_name} part" if part_name else ""
            raise DataError(f"no variant to write{where} ({_describe(counts)})",
                            path=", ".join(sources) or None)
        writer.metadata["parameters"] = parameters
        writer.metadata["counts"] = dataclasses.asdict(counts)
        if part_name is not None:
            writer.metadata["part"] = part_name


def _describe(counts: VariantCounts) -> str:
    return ", ".join(f"{name} {value:,}" for name, value in dataclasses.asdict(counts).items())
