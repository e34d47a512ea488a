"""``hyena-glt ingest <kind>``: turn real input files into Parquet shard directories.

One subcommand per input kind; each is a ``_register_<kind>(subparsers)`` function that adds
its parser and sets ``func`` to a handler, so adding an ingester is adding one function to
:data:`SUBCOMMANDS`. Bad input raises ``DataError``, which ``hyena_glt.cli.main`` turns into a
one-line message and exit status 2; the output directory is written atomically, so a failed
run leaves none.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .arguments import non_negative_int, open_fraction, positive_int, unit_interval


def contig_list(text: str) -> list[str]:
    """argparse type of ``--test-contigs``: comma-separated contig names."""
    from ..errors import ConfigurationError
    from ..ingest.splits import parse_contigs

    try:
        return parse_contigs(text)
    except ConfigurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None

__all__ = ["register"]

ALPHABETS = ("dna", "rna", "protein")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                        help="shard directory to write (replaced if it exists; written "
                        "atomically: it appears only when complete)")


def _add_unknown(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unknown", choices=("error", "replace"), default="error",
                        help="a character outside the alphabet: stop with an error naming it "
                        "(default), or read it as N (X for protein)")


def _tokenizer(args: argparse.Namespace):
    from ..data.tokenizers import tokenizer_from_name

    return tokenizer_from_name(args.alphabet, unknown=args.unknown)


def _register_fasta(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fasta", help="FASTA (plain/gzip/bgzip) -> token windows for pretraining",
        description="Cut FASTA records into token windows and write a 'windows' shard "
        "directory (Parquet parts + manifest.json; see docs/schemas.md).")
    parser.add_argument("fasta", nargs="+", type=Path, metavar="FASTA",
                        help="FASTA files; record ids must be unique across them")
    _add_output(parser)
    parser.add_argument("--window", type=positive_int, default=1024,
                        help="window length (default 1024)")
    parser.add_argument("--stride", type=positive_int, default=None,
                        help="distance between window starts (default: --window, no overlap)")
    parser.add_argument("--reverse-complement", action="store_true",
                        help="also write the reverse complement of every window (strand '-')")
    parser.add_argument("--max-n-fraction", type=unit_interval, default=0.1,
                        help="drop windows with a larger fraction of N (X for protein); "
                        "default 0.1")
    parser.add_argument("--min-length", type=non_negative_int, default=None,
                        help="keep a record's short final window if it has at least this many "
                        "residues (default: full windows only)")
    parser.add_argument("--alphabet", choices=ALPHABETS, default="dna", help="default dna")
    _add_unknown(parser)
    parser.set_defaults(func=_run_fasta)


def _run_fasta(args: argparse.Namespace) -> int:
    from ..ingest.fasta import ingest_fasta

    ingest_fasta(args.fasta, args.out, window=args.window, stride=args.stride,
                 reverse_complement=args.reverse_complement, max_n_fraction=args.max_n_fraction,
                 min_length=args.min_length, alphabet=args.alphabet, tokenizer=_tokenizer(args))
    return 0


def _register_table(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "table", help="labelled sequences (CSV/TSV[.gz] or Parquet) -> classification/"
        "regression shards",
        description="Tokenise a table with a sequence and a label column into a 'table' shard "
        "directory; with --split, into DIR/train and DIR/test (seeded, stratified).")
    parser.add_argument("table", type=Path, metavar="FILE", help="CSV, TSV (.gz allowed) or "
                        "Parquet file")
    _add_output(parser)
    parser.add_argument("--alphabet", choices=ALPHABETS, required=True)
    parser.add_argument("--sequence-column", default="sequence", help="default 'sequence'")
    parser.add_argument("--label-column", default="label", help="default 'label'")
    parser.add_argument("--id-column", default=None,
                        help="unique row ids (default: column 'id' if present, else FILE:row)")
    parser.add_argument("--task", choices=("classification", "regression"),
                        default="classification", help="default classification")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--split", type=open_fraction, default=None, metavar="FRACTION",
                       help="train fraction of a seeded split (stratified by label for "
                       "classification) written to DIR/train and DIR/test")
    group.add_argument("--split-column", default=None,
                       help="write one shard directory per value of this column")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of --split (default 0)")
    _add_unknown(parser)
    parser.set_defaults(func=_run_table)


def _run_table(args: argparse.Namespace) -> int:
    from ..ingest.tables import ingest_table

    ingest_table(args.table, args.out, alphabet=args.alphabet,
                 sequence_column=args.sequence_column, label_column=args.label_column,
                 task=args.task, id_column=args.id_column, split=args.split,
                 split_column=args.split_column, seed=args.seed, tokenizer=_tokenizer(args))
    return 0


def _register_annotation(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "annotation", help="FASTA + GFF3/BED, or GenBank -> windows with per-base labels",
        description="Label each base 1 inside an annotated feature (a GFF3 or GenBank type "
        "such as CDS, either strand; every BED interval), else 0, and write windows of the "
        "sequences with their labels as an 'annotation' shard directory (see "
        "docs/schemas.md); with --split or --test-contigs, into DIR/train and DIR/test.")
    parser.add_argument("fasta", type=Path, metavar="FASTA", nargs="?", default=None,
                        help="FASTA of the annotated records (plain/gzip/bgzip); not needed "
                        "with a GenBank --annotation")
    parser.add_argument("--annotation", type=Path, required=True, metavar="GFF3|BED|GENBANK",
                        help="GFF3 (1-based) or BED (0-based) whose seqids are FASTA records, "
                        "or a GenBank file (.gb/.gbk/.gbff) holding sequence and features; "
                        ".gz allowed")
    _add_output(parser)
    parser.add_argument("--feature", action="append", default=None, metavar="TYPE",
                        help="GFF3 type labelled 1; repeat for several (default CDS; BED: all "
                        "intervals)")
    parser.add_argument("--window", type=positive_int, default=1024,
                        help="window length (default 1024)")
    parser.add_argument("--stride", type=positive_int, default=None,
                        help="distance between window starts (default: --window, no overlap)")
    parser.add_argument("--min-length", type=non_negative_int, default=None,
                        help="keep a record's short final window if it has at least this many "
                        "bases (default: full windows only)")
    parser.add_argument("--reverse-complement", action="store_true",
                        help="also write every window reverse-complemented, labels reversed "
                        "(strand '-')")
    split = parser.add_argument_group(
        "held-out split", "with --split, DIR/train and DIR/test are written from disjoint "
        "window-sized blocks of each record (on the grid of window starts): a seeded random "
        "(1 - FRACTION) of the blocks is held out, so test windows sample the whole genome, "
        "no window crosses a cut and no test base is in a train window. A test window is "
        "then dropped when half or more of its 31-mers occur in train on either strand "
        "(repeats such as inverted-repeat copies; see --duplicate-threshold). A record "
        "shorter than two windows goes whole to one side (train with probability FRACTION)")
    how = split.add_mutually_exclusive_group()
    how.add_argument("--split", type=open_fraction, default=None, metavar="FRACTION",
                     help="train fraction (0 < FRACTION < 1) of each record")
    how.add_argument("--test-contigs", type=contig_list, default=None, metavar="NAMES",
                     help="hold out these records whole (comma-separated, e.g. chr8,chr9) "
                     "instead of random blocks")
    split.add_argument("--seed", type=non_negative_int, default=0,
                       help="seed of the held-out blocks (default 0)")
    split.add_argument("--duplicate-threshold", type=unit_interval, default=0.5, metavar="F",
                       help="drop a test window when at least this fraction of its canonical "
                       "31-mers occurs in the train part (default 0.5)")
    split.add_argument("--keep-duplicates", action="store_true",
                       help="keep test windows that repeat train sequence")
    parser.set_defaults(func=_run_annotation)


def _run_annotation(args: argparse.Namespace) -> int:
    from ..ingest.annotation import ingest_annotation

    ingest_annotation(args.fasta, args.annotation, args.out, feature=args.feature or ["CDS"],
                      window=args.window, stride=args.stride, min_length=args.min_length,
                      reverse_complement=args.reverse_complement, split=args.split,
                      seed=args.seed, test_contigs=args.test_contigs,
                      duplicate_threshold=None if args.keep_duplicates else args.duplicate_threshold)
    return 0


def _register_vcf(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "vcf", help="VCF/BCF or a variant table + reference -> ref/alt windows",
        description="For each ALT allele, cut the reference window centred on the variant and "
        "the same window with REF replaced by ALT (kept at the window length by cutting or "
        "extending at the right end; N past a contig end), check REF against the reference and "
        "write a 'variants' shard directory (see docs/schemas.md); with --split, DIR/train and "
        "DIR/test. Symbolic alleles are skipped and counted in the manifest.")
    parser.add_argument("--reference", type=Path, required=True, metavar="FASTA",
                        help="reference FASTA (plain or bgzip; plain gzip is decompressed to a "
                        "temporary file)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--vcf", type=Path, metavar="VCF", help="VCF, VCF.gz or BCF")
    source.add_argument("--table", type=Path, metavar="FILE",
                        help="CSV/TSV[.gz] with one variant per row (see the column options)")
    _add_output(parser)
    parser.add_argument("--window", type=positive_int, default=1024,
                        help="window length (default 1024)")
    parser.add_argument("--on-ref-mismatch", choices=("error", "skip"), default="error",
                        help="REF differing from the reference: stop (default) or skip the "
                        "variant, counted in the manifest")
    parser.add_argument("--reverse-complement", action="store_true",
                        help="also store both windows reverse-complemented (columns "
                        "ref_input_ids_rc, alt_input_ids_rc)")
    labels = parser.add_mutually_exclusive_group()
    labels.add_argument("--label-info", metavar="FIELD",
                        help="INFO field of --vcf holding each allele's label")
    labels.add_argument("--labels", type=Path, metavar="FILE",
                        help="sidecar CSV/TSV with the variant columns and --label-column")
    parser.add_argument("--label-column", default=None,
                        help="numeric label column of --table or --labels (empty = no label)")
    columns = parser.add_argument_group("variant columns of --table and --labels")
    columns.add_argument("--chrom-column", default="chrom", help="default 'chrom'")
    columns.add_argument("--chrom", default=None, metavar="CONTIG",
                         help="contig of every row, instead of --chrom-column")
    columns.add_argument("--pos-column", default="pos", help="1-based position; default 'pos'")
    columns.add_argument("--ref-column", default="ref", help="default 'ref'")
    columns.add_argument("--alt-column", default="alt", help="default 'alt'")
    columns.add_argument("--keep-column", action="append", default=[], metavar="NAME",
                         help="copy this --table column into the shards; repeatable")
    split = parser.add_argument_group(
        "held-out split", "with --split, DIR/train and DIR/test are written: variants are "
        "grouped by contig and --bin-size position bin (POS // BIN), the bins are put in a "
        "seeded random order and whole bins go to train until it holds FRACTION of the "
        "variants, the rest to test, so neighbouring variants never straddle the two")
    how = split.add_mutually_exclusive_group()
    how.add_argument("--split", type=open_fraction, default=None, metavar="FRACTION",
                     help="train fraction (0 < FRACTION < 1) of the position-grouped split")
    how.add_argument("--test-contigs", type=contig_list, default=None, metavar="NAMES",
                     help="hold out the variants of these contigs (comma-separated) instead")
    split.add_argument("--seed", type=non_negative_int, default=0,
                       help="seed of --split (default 0)")
    split.add_argument("--bin-size", type=positive_int, default=100, metavar="BP",
                       help="position bin kept whole by --split (default 100 bp, as the "
                       "evaluation's grouped folds)")
    parser.set_defaults(func=_run_vcf)


def _run_vcf(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError
    from ..ingest.vcf import (
        VariantCounts,
        ingest_variants,
        read_variant_labels,
        variants_from_table,
        variants_from_vcf,
    )

    if args.labels is not None and args.label_column is None:
        raise ConfigurationError("--labels needs --label-column (the label column's name)")
    if args.vcf is not None and args.labels is None and args.label_column is not None:
        raise ConfigurationError("--label-column names a column of --table or --labels; for "
                                 "a VCF INFO field use --label-info")
    columns = {"chrom_column": args.chrom_column, "chrom": args.chrom,
               "pos_column": args.pos_column, "ref_column": args.ref_column,
               "alt_column": args.alt_column}
    counts = VariantCounts()
    if args.vcf is not None:
        variants = variants_from_vcf(args.vcf, label_info=args.label_info, counts=counts)
    else:
        if args.label_info is not None:
            raise ConfigurationError("--label-info reads a VCF INFO field; with --table use "
                                     "--label-column")
        label_column = None if args.labels is not None else args.label_column
        variants = variants_from_table(args.table, label_column=label_column,
                                       keep_columns=args.keep_column, counts=counts, **columns)
    labels = (read_variant_labels(args.labels, args.label_column, **columns)
              if args.labels is not None else None)
    ingest_variants(variants, args.reference, args.out, window=args.window,
                    on_ref_mismatch=args.on_ref_mismatch, labels=labels,
                    reverse_complement=args.reverse_complement, counts=counts,
                    split=args.split, seed=args.seed, bin_size=args.bin_size,
                    test_contigs=args.test_contigs)
    return 0


#: One registration function per ingest subcommand.
SUBCOMMANDS = (_register_fasta, _register_table, _register_annotation, _register_vcf)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``hyena-glt ingest`` and its subcommands."""
    parser = subparsers.add_parser(
        "ingest", help="FASTA, tables, annotations or VCFs -> Parquet shards",
        description="Ingest real input files into Parquet shard directories.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for add in SUBCOMMANDS:
        add(kinds)
