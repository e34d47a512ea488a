"""Annotation ingestion: per-base CDS masks of real genomes and their windowed shards."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np
import pysam
import pytest

from hyena_glt.cli import main
from hyena_glt.data.shards import read_manifest, read_table
from hyena_glt.data.tokenizers import DNATokenizer
from hyena_glt.errors import DataError
from hyena_glt.ingest.annotation import feature_masks, ingest_annotation, read_annotation

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SARS = DATA / "genome_annotation" / "sars_cov_2_NC_045512.2"
CHLOROPLAST = DATA / "genome_annotation" / "arabidopsis_chloroplast_NC_000932.1"
GENOMES = {
    "sars_cov_2": (SARS / "NC_045512.2.fa.gz", SARS / "GCF_009858895.2_ASM985889v3_genomic.gff3.gz",
                   SARS / "NC_045512.2.cds_mask.txt.gz"),
    "chloroplast": (CHLOROPLAST / "NC_000932.1.fa.gz", CHLOROPLAST / "NC_000932.1.gff3.gz",
                    CHLOROPLAST / "NC_000932.1.cds_mask.txt.gz"),
}
BRCA1 = DATA / "variants" / "brca1_grch37"


def oracle_mask(path: Path) -> np.ndarray:
    """The provided mask: line 1 a comment, line 2 one '0'/'1' per base."""
    comment, mask = gzip.open(path, "rt").read().split("\n")[:2]
    assert comment.startswith("#")
    return (np.frombuffer(mask.encode(), dtype=np.uint8) - ord("0")).astype(np.int8)


def gff_lines(path: Path) -> list[str]:
    return gzip.open(path, "rt").read().splitlines()


def read_shards(out: Path, columns: list[str] | None = None) -> list[dict]:
    return read_table(out, columns=columns).to_pylist()


def write_text(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("genome", sorted(GENOMES))
def test_cds_masks_equal_the_reference_masks(genome):
    fasta, gff, oracle = GENOMES[genome]
    masks = feature_masks(fasta, gff, "CDS")
    (record, mask), = masks.items()
    expected = oracle_mask(oracle)
    assert record == fasta.name.removesuffix(".fa.gz")
    assert mask.dtype == np.int8 and mask.shape == expected.shape
    np.testing.assert_array_equal(mask, expected)


def test_bed_of_the_cds_lines_gives_the_same_mask(tmp_path):
    fasta, gff, oracle = GENOMES["chloroplast"]
    bed = ["track name=cds"]
    for line in gff_lines(gff):
        fields = line.split("\t")
        if len(fields) == 9 and fields[2] == "CDS":  # 1-based inclusive -> 0-based half-open
            bed.append("\t".join([fields[0], str(int(fields[3]) - 1), fields[4], "cds", "0", fields[6]]))
    mask = feature_masks(fasta, write_text(tmp_path / "cds.bed", bed))["NC_000932.1"]
    np.testing.assert_array_equal(mask, oracle_mask(oracle))


def test_gff3_fasta_section_and_comments_are_not_features(tmp_path):
    fasta, gff, oracle = GENOMES["sars_cov_2"]
    lines = gff_lines(gff)
    lines.insert(9, "# a comment between features")
    lines += ["##FASTA", ">NC_045512.2", "ACGTACGT"]
    mask = feature_masks(fasta, write_text(tmp_path / "with_fasta.gff3", lines))["NC_045512.2"]
    np.testing.assert_array_equal(mask, oracle_mask(oracle))


def test_gencode_brca1_annotation():
    """GENCODE's BRCA1 GFF3: every CDS part fits ref_brca1.fa; its UTR/exon lines end 1 bp past."""
    gff, fasta = BRCA1 / "brca1_gencodev19.gff3.gz", BRCA1 / "ref_brca1.fa.gz"
    intervals = read_annotation(gff, "CDS")
    assert len(intervals) == 328 and {i.strand for i in intervals} == {"-"}  # BRCA1 only
    mask = feature_masks(fasta, gff)["ref_brca1"]
    assert mask.shape == (81188,)
    union, end = 0, 0  # merged length of the overlapping transcripts' CDS parts
    for interval in sorted(intervals, key=lambda i: i.start):
        union += max(interval.end - max(interval.start, end), 0)
        end = max(end, interval.end)
    assert int(mask.sum()) == union
    with pytest.raises(DataError, match=r"line \d+: feature 'exon' ends at 81189, past the end"):
        feature_masks(fasta, gff, "exon")


def test_annotation_windows_hold_the_sequence_and_mask_slices(tmp_path):
    fasta, gff, oracle = GENOMES["sars_cov_2"]
    tokenizer = DNATokenizer()
    counts = ingest_annotation(fasta, gff, tmp_path / "shards", window=1000, stride=700,
                               min_length=1, reverse_complement=True, tokenizer=tokenizer)
    rows = read_shards(tmp_path / "shards")
    mask = oracle_mask(oracle)
    with pysam.FastxFile(str(fasta)) as handle:
        genome = next(iter(handle)).sequence
    forward = sorted((row for row in rows if row["strand"] == "+"), key=lambda row: row["start"])
    # windows at 0, 700, ..., 29400; the last one, [29400, 29903), is kept short (min_length=1)
    assert [row["start"] for row in forward] == list(range(0, 29401, 700))
    assert forward[-1]["end"] == 29903 and len(rows) == 2 * len(forward) == counts["windows"]
    assert counts["feature_bases"] == int(mask.sum())
    for row in rows:
        start, end = row["start"], row["end"]
        assert row["record_id"] == "NC_045512.2" and end - start == len(row["labels"])
        sequence, labels = genome[start:end], mask[start:end]
        if row["strand"] == "-":
            sequence, labels = tokenizer.reverse_complement(sequence), labels[::-1]
        np.testing.assert_array_equal(row["labels"], labels)
        np.testing.assert_array_equal(row["input_ids"], tokenizer.encode_array(sequence))
    manifest = read_manifest(tmp_path / "shards")
    assert manifest["kind"] == "annotation" and manifest["metadata"]["counts"] == counts
    assert [Path(source["path"]).name for source in manifest["sources"]] == [fasta.name, gff.name]


BAD_GFF = {
    "wrong column count": (lambda f: f[:8], "9 tab-separated columns"),
    "non-integer start": (lambda f: f[:3] + ["12x"] + f[4:], "integer"),
    "start after end": (lambda f: f[:3] + [f[4], f[3]] + f[5:], "start"),
    "unknown seqid": (lambda f: ["chrUn"] + f[1:], "'chrUn'"),
    "past the record end": (lambda f: f[:4] + ["29904"] + f[5:], "past the end"),
}


@pytest.mark.parametrize("case", sorted(BAD_GFF))
def test_bad_gff3_line_names_file_and_line(tmp_path, case):
    fasta, gff, _ = GENOMES["sars_cov_2"]
    edit, expected = BAD_GFF[case]
    lines = gff_lines(gff)
    index = next(n for n, line in enumerate(lines) if "\tCDS\t" in line and "ORF10" in line)
    lines[index] = "\t".join(edit(lines[index].split("\t")))
    bad = write_text(tmp_path / "bad.gff3", lines)
    with pytest.raises(DataError, match=expected) as caught:
        feature_masks(fasta, bad)
    assert str(bad) in str(caught.value) and f"line {index + 1}" in str(caught.value)
    if case == "unknown seqid":
        assert "NC_045512.2" in str(caught.value)  # the FASTA's records are listed
    out = tmp_path / "out"
    assert main(["ingest", "annotation", str(fasta), "--annotation", str(bad),
                 "--out", str(out)]) == 2
    assert not out.exists()


def test_unknown_feature_type_is_an_error():
    fasta, gff, _ = GENOMES["sars_cov_2"]
    with pytest.raises(DataError, match="no feature of type cds.*CDS"):
        feature_masks(fasta, gff, "cds")


def test_cli_writes_annotation_shards(tmp_path):
    fasta, gff, oracle = GENOMES["chloroplast"]
    out = tmp_path / "out"
    assert main(["ingest", "annotation", str(fasta), "--annotation", str(gff), "--out", str(out),
                 "--window", "4096", "--stride", "4096", "--feature", "CDS"]) == 0
    rows = read_shards(out, columns=["start", "end", "labels"])
    mask = oracle_mask(oracle)
    assert len(rows) == 154478 // 4096  # full windows only, as for FASTA ingestion
    for row in rows:
        np.testing.assert_array_equal(row["labels"], mask[row["start"]:row["end"]])


def test_truncated_gzip_annotation_is_an_error(tmp_path):
    fasta, gff, _ = GENOMES["chloroplast"]
    truncated = tmp_path / "truncated.gff3.gz"
    truncated.write_bytes(gff.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"truncated\.gff3\.gz: unreadable after line \d+"):
        feature_masks(fasta, truncated)


def covered(rows: list[dict]) -> set[int]:
    return {base for row in rows for base in range(row["start"], row["end"])}


@pytest.mark.parametrize("stride", [500, 1000])
def test_split_parts_never_share_a_base_and_keep_their_labels(tmp_path, stride):
    fasta, gff, oracle = GENOMES["sars_cov_2"]
    out = tmp_path / "split"
    counts = ingest_annotation(fasta, gff, out, window=1000, stride=stride, split=0.8, seed=3,
                               reverse_complement=True)
    train, test = read_shards(out / "train"), read_shards(out / "test")
    assert {row["strand"] for row in train + test} == {"+", "-"}
    assert covered(train).isdisjoint(covered(test))
    mask = oracle_mask(oracle)
    for row in train + test:
        labels = mask[row["start"]:row["end"]]
        np.testing.assert_array_equal(row["labels"], labels if row["strand"] == "+"
                                      else labels[::-1])
    manifests = {name: read_manifest(out / name) for name in ("train", "test")}
    segments = {name: manifests[name]["metadata"]["segments"]["NC_045512.2"]
                for name in manifests}
    assert sum(b - a for a, b in segments["test"]) == 6000  # round(0.2 * 29 blocks) of 1000 nt
    assert all(a % 1000 == 0 for part in segments.values() for a, _ in part)
    assert sorted(segments["train"] + segments["test"])[-1][1] == 29903
    assert all(any(a <= row["start"] and row["end"] <= b for a, b in segments["test"])
               for row in test)
    assert counts["test"]["duplicate_windows"] == 0  # the virus genome has no long repeat
    for name, manifest in manifests.items():
        assert manifest["metadata"]["counts"] == counts[name]
        assert manifest["metadata"]["part"] == name
        assert manifest["metadata"]["parameters"]["split"] == 0.8
    assert counts["train"]["bases"] + counts["test"]["bases"] == 29903
    assert counts["train"]["feature_bases"] + counts["test"]["feature_bases"] == int(mask.sum())
    # With non-overlapping windows a split only regroups the windows of the unsplit run.
    if stride == 1000:
        ingest_annotation(fasta, gff, tmp_path / "all", window=1000, reverse_complement=True)
        ids = {row["id"] for row in read_shards(tmp_path / "all", ["id"])}
        assert {row["id"] for row in train + test} <= ids
        assert len(ids) - len(train) - len(test) <= 2  # the train window cut at the record tail


def test_split_is_seeded_and_cli_writes_train_and_test(tmp_path):
    fasta, gff, _ = GENOMES["chloroplast"]
    args = ["ingest", "annotation", str(fasta), "--annotation", str(gff), "--window", "2048",
            "--split", "0.75"]
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        assert main([*args, "--out", str(tmp_path / name), "--seed", seed]) == 0
    starts = {name: [row["start"] for row in read_shards(tmp_path / name / "test", ["start"])]
              for name in "abc"}
    assert starts["a"] == starts["b"] != starts["c"]
    rows = len(read_shards(tmp_path / "a" / "train", ["id"]))
    assert rows / (rows + len(starts["a"])) == pytest.approx(0.75, abs=0.03)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["test", "train"]
    assert main([*args[:-2], "--split", "1.5", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_split_segments_cover_each_record_once_with_spread_test_blocks():
    from hyena_glt.ingest.annotation import split_segments

    for length in (1, 999, 1000, 2500, 154478):
        parts = split_segments(length, 0.8, seed=0, record="r", stride=1000)
        stretches = sorted(parts["train"] + parts["test"])
        assert stretches[0][0] == 0 and stretches[-1][1] == length
        assert all(a[1] == b[0] for a, b in itertools.pairwise(stretches))
        if length >= 2000:
            assert parts["test"] and parts["train"]
        if length == 154478:  # 154 blocks, 31 held out, spread over the record
            assert sum(b - a for a, b in parts["test"]) == 31_000
            assert len(parts["test"]) > 10
    # Overlapping windows: blocks are one window (rounded up to the stride grid).
    parts = split_segments(10_000, 0.5, seed=0, record="r", stride=300, window=1000)
    assert all(a % 1200 == 0 for a, _ in parts["train"] + parts["test"])


def test_kmers_are_strand_blind_and_skip_non_acgt():
    from hyena_glt.ingest.duplicates import canonical_kmers

    rng = np.random.default_rng(0)
    sequence = "".join(rng.choice(list("ACGT"), 200))
    reverse = sequence[::-1].translate(str.maketrans("ACGT", "TGCA"))
    forward_codes, forward_valid = canonical_kmers(sequence)
    reverse_codes, _ = canonical_kmers(reverse)
    np.testing.assert_array_equal(forward_codes, reverse_codes[::-1])
    assert forward_valid.all() and len(forward_codes) == 200 - 31 + 1
    assert len(set(forward_codes.tolist())) == len(forward_codes)  # random 31-mers are unique
    _, valid = canonical_kmers(sequence[:100] + "N" + sequence[101:])
    assert not valid[70:101].any() and valid[:70].all() and valid[101:].all()
    assert canonical_kmers("ACGT")[0].size == 0


def test_split_drops_held_out_copies_of_an_inverted_repeat(tmp_path):
    """The chloroplast's IRa is the reverse complement of IRb: held-out windows of one copy
    would be scored against their training copy, so they are dropped, and only they."""
    from hyena_glt.ingest.duplicates import TrainingKmers, canonical_kmers

    fasta, gff, _ = GENOMES["chloroplast"]
    counts = ingest_annotation(fasta, gff, tmp_path / "dedup", window=1024, split=0.8,
                               reverse_complement=True)
    kept = ingest_annotation(fasta, gff, tmp_path / "kept", window=1024, split=0.8,
                             reverse_complement=True, duplicate_threshold=None)
    assert counts["train"] == kept["train"] and "duplicate_windows" not in kept["test"]
    assert counts["test"]["duplicate_windows"] > 0
    assert (counts["test"]["windows"] + counts["test"]["duplicate_windows"]
            == kept["test"]["windows"])
    sequence = next(iter(pysam.FastxFile(str(fasta)))).sequence
    training = TrainingKmers(sequence[row["start"]:row["end"]]
                             for row in read_shards(tmp_path / "dedup" / "train")
                             if row["strand"] == "+")

    def shared(row: dict) -> float:
        return training.shared_fraction(*canonical_kmers(sequence[row["start"]:row["end"]]))

    written = {row["id"] for row in read_shards(tmp_path / "dedup" / "test", ["id"])}
    forward = [row for row in read_shards(tmp_path / "kept" / "test") if row["strand"] == "+"]
    dropped = [row for row in forward if row["id"] not in written]
    assert dropped and all(shared(row) >= 0.5 for row in dropped)
    inverted_repeats = ((84_170, 110_434), (128_214, 154_478))  # NC_000932.1 IRb, IRa
    assert all(any(a - 1024 < row["start"] < b for a, b in inverted_repeats) for row in dropped)
    assert all(shared(row) < 0.5 for row in forward if row["id"] in written)
    parameters = read_manifest(tmp_path / "dedup" / "test")["metadata"]["parameters"]
    assert parameters["duplicate_threshold"] == 0.5


def test_cli_rejects_a_bad_duplicate_threshold(tmp_path):
    fasta, gff, _ = GENOMES["sars_cov_2"]
    assert main(["ingest", "annotation", str(fasta), "--annotation", str(gff), "--split", "0.8",
                 "--duplicate-threshold", "0", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_a_test_part_made_only_of_repeats_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    unit = "".join(rng.choice(list("ACGT"), 2048))
    fasta = write_text(tmp_path / "twice.fa", [">twice", unit + unit])  # two identical halves
    gff = write_text(tmp_path / "twice.gff3", ["##gff-version 3",
                                               "twice\tx\tCDS\t100\t900\t.\t+\t0\tID=a"])
    with pytest.raises(DataError, match="all 1 of its windows repeat train sequence"):
        ingest_annotation(fasta, gff, tmp_path / "out", window=2048, split=0.5)
    assert not (tmp_path / "out").exists()
    kept = ingest_annotation(fasta, gff, tmp_path / "kept", window=2048, split=0.5,
                             duplicate_threshold=None)
    assert kept["test"]["windows"] == 1
