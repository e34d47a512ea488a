"""Variant ingestion: ref/alt windows from the real BRCA1 VCF and SGE table, and bad inputs."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pysam
import pytest

from hyena_glt.cli import main
from hyena_glt.data.shards import read_manifest, read_table
from hyena_glt.data.tokenizers import DNATokenizer
from hyena_glt.errors import DataError
from hyena_glt.ingest.vcf import (
    VariantCounts,
    ingest_variants,
    open_reference,
    read_variant_labels,
    variant_windows,
    variants_from_table,
    variants_from_vcf,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REFERENCE = DATA / "variants" / "brca1_grch37" / "ref_brca1.fa.gz"
VCF = DATA / "variants" / "brca1_grch37" / "brca1_1kgPhase3_variants.vcf.gz"
SGE = DATA / "variants" / "brca1_sge_findlay2018" / "brca1_sge_variants.csv.gz"
SGE_COLUMNS = {"chrom": "ref_brca1", "pos_column": "pos_in_ref_brca1", "ref_column": "ref",
               "alt_column": "alt"}
WINDOW = 64


@pytest.fixture(scope="module")
def genome() -> str:
    with pysam.FastxFile(str(REFERENCE)) as handle:
        return next(iter(handle)).sequence.upper()


@pytest.fixture(scope="module")
def vcf_shards(tmp_path_factory):
    """The whole real VCF ingested once: (rows by id, counts, manifest)."""
    out = tmp_path_factory.mktemp("vcf") / "shards"
    counts = VariantCounts()
    variants = variants_from_vcf(VCF, label_info="AF", counts=counts)
    ingest_variants(variants, REFERENCE, out, window=WINDOW, counts=counts, reverse_complement=True)
    rows = {row["id"]: row for row in read_shards(out)}
    return rows, counts, json.loads((out / "manifest.json").read_text())


def read_shards(out: Path, columns: list[str] | None = None) -> list[dict]:
    return read_table(out, columns=columns).to_pylist()


def vcf_lines() -> list[str]:
    return gzip.open(VCF, "rt").read().splitlines()


def write_vcf(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def first_record_index(lines: list[str]) -> int:
    return next(n for n, line in enumerate(lines) if not line.startswith("#"))


def test_every_vcf_allele_is_written_with_its_windows(vcf_shards, genome):
    rows, counts, manifest = vcf_shards
    # 2,052 records: 6 have two ALT alleles, one ALT is <CN0>; REF matches for every record.
    assert counts.records == 2052 and counts.skipped_symbolic == 1
    assert counts.skipped_ref_mismatch == 0 and counts.written == len(rows) == 2057
    assert manifest["metadata"]["counts"]["skipped_symbolic"] == 1
    tokenizer = DNATokenizer()
    for row in rows.values():
        offset, ref, alt, start = row["variant_offset"], row["ref"], row["alt"], row["pos"] - 1
        assert offset == WINDOW // 2
        assert len(row["ref_input_ids"]) == len(row["alt_input_ids"]) == WINDOW
        assert genome[start:start + len(ref)] == ref  # REF checked against the reference
        ref_ids, alt_ids = np.array(row["ref_input_ids"]), np.array(row["alt_input_ids"])
        np.testing.assert_array_equal(ref_ids[offset:offset + len(ref)],
                                      tokenizer.encode_array(ref)[:WINDOW - offset])
        np.testing.assert_array_equal(alt_ids[offset:offset + len(alt)],
                                      tokenizer.encode_array(alt)[:WINDOW - offset])
        padded = "N" * WINDOW + genome + "N" * WINDOW  # windows past a contig end hold N
        expected_ref = padded[WINDOW + start - offset:WINDOW + start - offset + WINDOW]
        np.testing.assert_array_equal(ref_ids, tokenizer.encode_array(expected_ref))
        np.testing.assert_array_equal(row["ref_input_ids_rc"],
                                      tokenizer.reverse_complement_ids(ref_ids))
        np.testing.assert_array_equal(row["alt_input_ids_rc"],
                                      tokenizer.reverse_complement_ids(alt_ids))


def test_multiallelic_records_are_split_with_per_allele_info_labels(vcf_shards):
    rows, _, _ = vcf_shards
    first, second = rows["ref_brca1:12166:G>A"], rows["ref_brca1:12166:G>C"]
    assert first["label"] == pytest.approx(0.000599042, rel=1e-5)
    assert second["label"] == pytest.approx(0.000798722, rel=1e-5)
    assert first["ref_input_ids"] == second["ref_input_ids"]
    assert first["alt_input_ids"] != second["alt_input_ids"]
    mixed = [row for row in rows.values() if row["pos"] == 51292]
    assert sorted(row["alt"] for row in mixed) == ["A", "CAAAC"]


def test_indel_windows_keep_their_length(vcf_shards, genome):
    rows, _, _ = vcf_shards
    indels = [row for row in rows.values() if len(row["ref"]) != len(row["alt"])]
    assert len(indels) >= 90
    tokenizer = DNATokenizer()
    for row in indels:
        offset, start = WINDOW // 2, row["pos"] - 1
        after = start + len(row["ref"])
        edited = genome[start - offset:start] + row["alt"] + genome[after:after + WINDOW]
        np.testing.assert_array_equal(row["alt_input_ids"],
                                      tokenizer.encode_array(edited[:WINDOW]))


def test_windows_past_the_contig_start_are_padded_with_n():
    with open_reference(REFERENCE) as fasta:
        first = next(variants_from_vcf(VCF))
        ref_window, alt_window, offset = variant_windows(fasta, first, 128)
    assert first.pos == 51 and offset == 64
    assert ref_window.startswith("N" * 14) and ref_window[14] != "N"
    assert ref_window[offset] == "C" and alt_window[offset] == "T"


def test_sge_table_matches_the_reference_and_keeps_labels(tmp_path):
    out = tmp_path / "sge"
    variants = variants_from_table(SGE, label_column="label_lof", keep_columns=["function_score"],
                                   **SGE_COLUMNS)
    counts = ingest_variants(variants, REFERENCE, out, window=WINDOW)
    assert counts.written == 3893 and counts.skipped_ref_mismatch == 0 and counts.labelled == 3893
    table = read_shards(out, columns=["ref", "alt", "label", "function_score", "variant_offset",
                                        "ref_input_ids", "alt_input_ids"])
    assert sum(row["label"] for row in table) == 823  # LOF variants
    row = table[0]
    assert row["function_score"] == "-0.372611" and (row["ref"], row["alt"]) == ("T", "G")
    tokenizer = DNATokenizer()
    for row in table:
        offset = row["variant_offset"]
        assert row["ref_input_ids"][offset] == tokenizer.encode_array(row["ref"])[0]
        assert row["alt_input_ids"][offset] == tokenizer.encode_array(row["alt"])[0]
        assert row["ref_input_ids"][:offset] == row["alt_input_ids"][:offset]
        assert row["ref_input_ids"][offset + 1:] == row["alt_input_ids"][offset + 1:]


def test_sidecar_label_table(tmp_path):
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("chrom,pos,ref,alt,score\nref_brca1,12166,G,C,2.5\nref_brca1,51,C,T,\n")
    labels = read_variant_labels(labels_csv, "score")
    assert labels[("ref_brca1", 12166, "G", "C")] == 2.5
    assert math.isnan(labels[("ref_brca1", 51, "C", "T")])
    out = tmp_path / "out"
    assert main(["ingest", "vcf", "--reference", str(REFERENCE), "--vcf", str(VCF), "--out",
                 str(out), "--window", "32", "--labels", str(labels_csv),
                 "--label-column", "score"]) == 0
    table = read_shards(out, columns=["id", "label"])
    labelled = {row["id"]: row["label"] for row in table if not math.isnan(row["label"])}
    assert labelled == {"ref_brca1:12166:G>C": 2.5}


def test_plain_gzip_reference_is_decompressed_to_a_temporary_file(tmp_path):
    plain = tmp_path / "ref_brca1.fa.gz"
    plain.write_bytes(gzip.compress(gzip.decompress(REFERENCE.read_bytes()), mtime=0))
    with open_reference(plain) as fasta:
        assert list(fasta.references) == ["ref_brca1"] and list(fasta.lengths) == [81188]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref_brca1.fa.gz"]


def test_ref_mismatch_is_an_error_or_a_counted_skip(tmp_path):
    lines = vcf_lines()
    index = first_record_index(lines) + 2
    fields = lines[index].split("\t")
    assert (fields[1], fields[3]) == ("60", "T")
    fields[3], fields[4] = "A", "G"
    lines[index] = "\t".join(fields)
    bad = write_vcf(tmp_path / "mismatch.vcf", lines)
    with pytest.raises(DataError, match=r"record 'ref_brca1:60'.*REF A .* has T") as caught:
        ingest_variants(variants_from_vcf(bad), REFERENCE, tmp_path / "out", window=WINDOW)
    assert str(bad) in str(caught.value)
    assert not (tmp_path / "out").exists()
    out = tmp_path / "skipped"
    assert main(["ingest", "vcf", "--reference", str(REFERENCE), "--vcf", str(bad), "--out",
                 str(out), "--window", "32", "--on-ref-mismatch", "skip"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metadata"]["counts"]["skipped_ref_mismatch"] == 1
    assert manifest["metadata"]["counts"]["written"] == 2056


def bad_position(lines: list[str]) -> list[str]:
    index = first_record_index(lines) + 5  # the 6th record, after ref_brca1:97
    fields = lines[index].split("\t")
    lines[index] = "\t".join([fields[0], "12x", *fields[2:]])
    return lines


BAD_VCF = {
    "no header": (lambda lines: lines[first_record_index(lines):], "header"),
    "malformed record": (bad_position, r"record 6, the one after ref_brca1:97"),
    "unknown contig": (
        lambda lines: [line.replace("ref_brca1\t56\t", "chr17\t56\t") for line in lines],
        r"record 'chr17:56'.*contig 'chr17'.*ref_brca1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_VCF))
def test_bad_vcf_names_file_and_record(tmp_path, case, capsys):
    edit, expected = BAD_VCF[case]
    bad = write_vcf(tmp_path / "bad.vcf", edit(vcf_lines()))
    with pytest.raises(DataError, match=expected) as caught:
        ingest_variants(variants_from_vcf(bad), REFERENCE, tmp_path / "out", window=WINDOW)
    assert str(bad) in str(caught.value)
    out = tmp_path / "cli"
    assert main(["ingest", "vcf", "--reference", str(REFERENCE), "--vcf", str(bad), "--out",
                 str(out)]) == 2
    assert not out.exists()
    assert str(bad) in capsys.readouterr().err


def test_table_missing_a_column_is_an_error(tmp_path):
    out = tmp_path / "out"
    assert main(["ingest", "vcf", "--reference", str(REFERENCE), "--table", str(SGE), "--out",
                 str(out), "--chrom", "ref_brca1", "--pos-column", "position"]) == 2
    assert not out.exists()
    with pytest.raises(DataError, match="missing column.*'position'.*pos_in_ref_brca1"):
        next(variants_from_table(SGE, pos_column="position", chrom="ref_brca1"))


def test_reference_with_a_duplicate_record_is_an_error(tmp_path):
    sequence = gzip.decompress(REFERENCE.read_bytes()).decode()
    doubled = tmp_path / "doubled.fa"
    doubled.write_text(sequence + sequence)
    with pytest.raises(DataError, match=r"doubled\.fa: .*duplicate sequence \"ref_brca1\""):
        with open_reference(doubled):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doubled.fa"]


def test_cli_ingests_the_sge_table(tmp_path):
    out = tmp_path / "sge"
    assert main(["ingest", "vcf", "--reference", str(REFERENCE), "--table", str(SGE),
                 "--chrom", "ref_brca1", "--pos-column", "pos_in_ref_brca1",
                 "--label-column", "function_score", "--keep-column", "func_class",
                 "--window", "2048", "--out", str(out)]) == 0
    manifest = read_manifest(out)
    counts = manifest["metadata"]["counts"]
    assert counts["records"] == counts["written"] == counts["labelled"] == 3893
    assert counts["padded_windows"] == 0  # +-1,024 bp around every SGE variant fits the region
    rows = read_shards(out, columns=["label", "func_class"])
    lof = [row["label"] for row in rows if row["func_class"] == "LOF"]
    assert len(lof) == 823 and max(lof) < 0  # LOF variants have negative function scores


def test_split_keeps_position_bins_whole_like_the_evaluation_folds(tmp_path):
    from hyena_glt.evaluation.variant_effect import position_group_folds

    out = tmp_path / "split"
    variants = variants_from_table(SGE, label_column="label_lof", **SGE_COLUMNS)
    counts = ingest_variants(variants, REFERENCE, out, window=WINDOW, split=0.8, seed=0)
    assert sorted(p.name for p in out.iterdir()) == ["test", "train"]
    parts = {name: read_shards(out / name, ["id", "pos", "label"]) for name in ("train", "test")}
    train_bins = {row["pos"] // 100 for row in parts["train"]}
    test_bins = {row["pos"] // 100 for row in parts["test"]}
    assert train_bins.isdisjoint(test_bins)
    n_train, n_test = len(parts["train"]), len(parts["test"])
    assert n_train + n_test == counts.written == 3893
    assert n_train / 3893 == pytest.approx(0.8, abs=0.02)
    assert {row["id"] for row in parts["train"]}.isdisjoint(row["id"] for row in parts["test"])
    assert sum(row["label"] for rows in parts.values() for row in rows) == 823
    for name, rows in parts.items():
        manifest = read_manifest(out / name)
        assert manifest["metadata"]["part"] == name
        assert manifest["metadata"]["counts"]["written"] == len(rows)
        assert manifest["metadata"]["parameters"]["bin_size"] == 100
    # the evaluation folds group the same variants together
    positions = np.array([row["pos"] for rows in parts.values() for row in rows])
    side = np.array([0] * n_train + [1] * n_test)
    for _, fold in position_group_folds(positions, n_splits=5):
        for bin_id in np.unique(positions[fold] // 100):
            assert len(set(side[positions // 100 == bin_id])) == 1


def test_split_is_seeded_and_cli_takes_bin_size(tmp_path):
    args = ["ingest", "vcf", "--reference", str(REFERENCE), "--vcf", str(VCF),
            "--window", "32", "--split", "0.7"]
    runs = {"a": ["--seed", "1"], "b": ["--seed", "1"], "c": ["--seed", "2"],
            "d": ["--seed", "1", "--bin-size", "1000"]}
    for name, extra in runs.items():
        assert main([*args, *extra, "--out", str(tmp_path / name)]) == 0
    tests = {name: [row["pos"] for row in read_shards(tmp_path / name / "test", ["pos"])]
             for name in runs}
    assert tests["a"] == tests["b"] != tests["c"]
    train = [row["pos"] for row in read_shards(tmp_path / "d" / "train", ["pos"])]
    assert {p // 1000 for p in train}.isdisjoint(p // 1000 for p in tests["d"])
    assert read_manifest(tmp_path / "d" / "test")["metadata"]["parameters"]["bin_size"] == 1000
    assert main([*args[:-2], "--split", "0", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_split_of_a_single_bin_is_an_error():
    from hyena_glt.errors import ConfigurationError
    from hyena_glt.ingest.vcf import split_by_position

    with pytest.raises(ConfigurationError, match="1 position bin"):
        split_by_position([101, 150, 199], 0.5)
    train, test = split_by_position([5, 105, 205, 305], 0.5, seed=0, chroms=["a", "a", "b", "b"])
    assert len(train) == len(test) == 2 and sorted([*train, *test]) == [0, 1, 2, 3]


@pytest.mark.parametrize(("width", "lengths"), [(60, [180, 61]), (37, [100, 37]), (80, [5, 200])])
def test_a_fresh_index_is_trusted_and_an_edited_file_is_not(tmp_path, width, lengths):
    """index_matches accepts what samtools faidx writes (so a good .fai is reused) and
    rejects it once the sequence or its line width changes."""
    import os

    import pysam

    from hyena_glt.ingest.reference import index_matches

    def write_fasta(line_width: int, extra: str = "") -> None:
        text = ""
        for number, length in enumerate(lengths):
            sequence = extra + "ACGT" * (length // 4) + "A" * (length % 4)
            text += f">c{number} description\n" + "".join(
                sequence[i:i + line_width] + "\n" for i in range(0, len(sequence), line_width))
        fasta.write_text(text)
        os.utime(fasta, (1, 1))  # older than the index: only the content check can refuse

    fasta, fai = tmp_path / "ref.fa", tmp_path / "ref.fa.fai"
    write_fasta(width)
    pysam.faidx(str(fasta))
    assert index_matches(fasta, fai)
    write_fasta(width + 3)
    assert not index_matches(fasta, fai)
    write_fasta(width, extra="GG")
    assert not index_matches(fasta, fai)
