"""FASTA ingestion: windows equal pysam fetches on real genomes; every bad input is a DataError."""

from __future__ import annotations

import shutil

import numpy as np
import pysam
import pytest

from hyena_glt.cli import main
from hyena_glt.data.shards import read_manifest, read_table
from hyena_glt.data.tokenizers import DNATokenizer
from hyena_glt.errors import DataError
from hyena_glt.ingest.fasta import ingest_fasta, window_bounds
from hyena_glt.io import sha256sum

TOKENIZER = DNATokenizer()


def fetched(fasta: pysam.FastaFile, row: dict) -> str:
    sequence = fasta.fetch(row["record_id"], row["start"], row["end"]).upper()
    return TOKENIZER.reverse_complement(sequence) if row["strand"] == "-" else sequence


def test_window_bounds():
    assert [a.tolist() for a in window_bounds(10, 4, 3)] == [[0, 3, 6], [4, 7, 10]]
    assert [a.tolist() for a in window_bounds(11, 4, 4)] == [[0, 4], [4, 8]]
    assert [a.tolist() for a in window_bounds(11, 4, 4, min_length=3)] == [[0, 4, 8], [4, 8, 11]]
    assert [a.tolist() for a in window_bounds(11, 4, 4, min_length=4)] == [[0, 4], [4, 8]]
    assert [a.tolist() for a in window_bounds(3, 4, 4, min_length=1)] == [[0], [3]]
    for length, window, stride in [(1000, 64, 17), (999, 100, 100), (50, 7, 3)]:
        starts, ends = window_bounds(length, window, stride, min_length=1)
        covered = np.zeros(length, bool)
        for s, e in zip(starts, ends, strict=True):
            covered[s:e] = True
        assert covered.all() and ends[-1] == length and (np.diff(starts) == stride).all()


def test_sars_cov_2_windows_and_reverse_complements_equal_pysam_fetches(shared_data, tmp_path):
    source = shared_data / "genome_annotation/sars_cov_2_NC_045512.2/NC_045512.2.fa.gz"
    fasta_path = tmp_path / source.name  # a copy, so pysam's index is written here
    shutil.copy(source, fasta_path)
    counts = ingest_fasta([fasta_path], tmp_path / "w", window=1000, stride=700,
                          reverse_complement=True, min_length=100)
    rows = read_table(tmp_path / "w").to_pylist()
    # 29,903 nt: 42 full windows (last ends at 29,700) + the tail [29,400, 29,903), both strands
    assert counts == {"records": 1, "residues": 29903, "windows": 86, "dropped_n": 0}
    assert len({row["id"] for row in rows}) == 86
    forward = {(r["start"], r["end"]): r for r in rows if r["strand"] == "+"}
    reverse = {(r["start"], r["end"]): r for r in rows if r["strand"] == "-"}
    assert forward.keys() == reverse.keys() and max(forward) == (29400, 29903)
    with pysam.FastaFile(str(fasta_path)) as fasta:
        for row in rows:
            assert TOKENIZER.decode(row["input_ids"]) == fetched(fasta, row), row["id"]
            assert row["source"] == fasta_path.name and row["record_id"] == "NC_045512.2"
    for key, row in forward.items():
        assert reverse[key]["input_ids"] == TOKENIZER.reverse_complement_ids(
            np.array(row["input_ids"])).tolist()
    manifest = read_manifest(tmp_path / "w")
    assert manifest["sources"] == [{"path": str(fasta_path), "sha256": sha256sum(fasta_path)}]
    assert manifest["metadata"]["parameters"]["stride"] == 700


def test_klebsiella_genome_windows_equal_pysam_fetches(shared_data, tmp_path):
    genome = shared_data / "genomes/klebsiella_pneumoniae/Klebs_HS11286.fna.gz"  # bgzip + .fai
    counts = ingest_fasta([genome], tmp_path / "w", window=4096)
    table = read_table(tmp_path / "w")
    with pysam.FastaFile(str(genome)) as fasta:
        expected = sum(length // 4096 for length in fasta.lengths)
        assert counts["records"] == 7 and counts["windows"] == table.num_rows == expected
        rows = table.to_pylist()
        picks = np.random.default_rng(0).choice(len(rows), 40, replace=False)
        for index in [0, len(rows) - 1, *picks.tolist()]:
            row = rows[index]
            assert TOKENIZER.decode(row["input_ids"]) == fetched(fasta, row), row["id"]
        long_enough = {n for n, length in zip(fasta.references, fasta.lengths, strict=True)
                       if length >= 4096}
    assert set(table.column("record_id").to_pylist()) == long_enough


def test_windows_with_too_many_n_are_dropped(write_fasta, tmp_path):
    # windows of 100 with 0%, 10% (kept: not above 0.1) and 12% N
    sequence = "ACGT" * 25 + "N" * 10 + "ACGT" * 22 + "AC" + "N" * 12 + "ACGT" * 22
    assert len(sequence) == 300
    path = write_fasta([("chr", sequence), ("low", "acgtn" * 20)], name="n.fa.gz")
    counts = ingest_fasta([path], tmp_path / "w", window=100, max_n_fraction=0.1)
    rows = read_table(tmp_path / "w").to_pylist()
    assert [(r["record_id"], r["start"]) for r in rows] == [("chr", 0), ("chr", 100)]
    assert counts["dropped_n"] == 2  # chr:200-300 (12% N) and all of "low" (20% N)
    assert TOKENIZER.decode(rows[1]["input_ids"]) == sequence[100:200]


def test_soft_masked_sequence_gives_the_same_ids(write_fasta, tmp_path):
    path = write_fasta([("a", "ACGTACGTAC"), ("b", "acgtACGTac")])
    ingest_fasta([path], tmp_path / "w", window=10)
    rows = read_table(tmp_path / "w").to_pylist()
    assert rows[0]["input_ids"] == rows[1]["input_ids"]


BAD_FASTA = {
    "empty": ("", "empty file", None),
    "not_fasta": ("sequence,label\nACGT,1\n", "not FASTA", "line 1"),
    "no_sequence": (">a\nACGTACGT\n>b\n>c\nACGT\n", "header without sequence", "record 'b' line 3"),
    "duplicate": (">a\nACGT\n>b\nACGT\n>a\nACGT\n", "duplicate record id", "record 'a'"),
    "bad_character": (">a\nACGTACGT\n>b\nACGTACGTAC\nACGTAXGT\n", "'X' at position 15",
                      "record 'b' line 5"),
}


@pytest.mark.parametrize("case", sorted(BAD_FASTA))
def test_bad_fasta_is_a_data_error_naming_file_and_record(case, write_fasta, tmp_path):
    text, problem, where = BAD_FASTA[case]
    path = write_fasta(text, name=f"{case}.fa")
    with pytest.raises(DataError) as info:
        ingest_fasta([path], tmp_path / "w", window=4, min_length=1)
    message = str(info.value)
    assert message.startswith(str(path)) and problem in message
    if where:
        assert where in message
    assert not (tmp_path / "w").exists()
    assert main(["ingest", "fasta", str(path), "--out", str(tmp_path / "w"), "--window", "4",
                 "--min-length", "1"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_duplicate_record_across_files(write_fasta, tmp_path):
    first = write_fasta([("a", "ACGT")], name="one.fa")
    second = write_fasta([("b", "ACGT"), ("a", "ACGT")], name="two.fa")
    with pytest.raises(DataError, match=r"two\.fa: record 'a' line 3: duplicate record id "
                                        r"\(also in .*one\.fa\)"):
        ingest_fasta([first, second], tmp_path / "w", window=4)


@pytest.mark.parametrize("genome", ["genomes/klebsiella_pneumoniae/Klebs_Kp1084.fna.gz",
                                    "genome_annotation/sars_cov_2_NC_045512.2/NC_045512.2.fa.gz"])
def test_truncated_gzip_is_a_data_error(genome, shared_data, tmp_path, capsys):
    data = (shared_data / genome).read_bytes()
    cut = tmp_path / "cut.fa.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DataError, match=r"cut\.fa\.gz: .*(truncated|corrupt)"):
        ingest_fasta([cut], tmp_path / "w")
    assert main(["ingest", "fasta", str(cut), "--out", str(tmp_path / "w")]) == 2
    assert "cut.fa.gz" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.fa.gz"]


def test_cli_writes_windows(write_fasta, tmp_path):
    path = write_fasta([("r1", "ACGT" * 10), ("r2", "GGCC" * 5)], name="in.fa.gz")
    out = tmp_path / "w"
    assert main(["ingest", "fasta", str(path), "--out", str(out), "--window", "8", "--stride",
                 "4", "--reverse-complement"]) == 0
    table = read_table(out)
    assert table.num_rows == 2 * (9 + 4)
    assert read_manifest(out)["metadata"]["counts"]["windows"] == 26


def test_records_shorter_than_the_window_leave_nothing_to_write(write_fasta, tmp_path):
    path = write_fasta([("short", "ACGT")])
    with pytest.raises(DataError, match="no window written"):
        ingest_fasta([path], tmp_path / "w", window=10)
    assert not (tmp_path / "w").exists()


def test_cli_unknown_replace_reads_invalid_characters_as_n(write_fasta, tmp_path, capsys):
    fasta = write_fasta([("a", "ACGTXACGTAC")])
    assert main(["ingest", "fasta", str(fasta), "--out", str(tmp_path / "strict"),
                 "--window", "4"]) == 2
    assert "invalid DNA character 'X' at position 4" in capsys.readouterr().err
    assert not (tmp_path / "strict").exists()
    assert main(["ingest", "fasta", str(fasta), "--out", str(tmp_path / "lenient"),
                 "--window", "4", "--max-n-fraction", "0.5", "--unknown", "replace"]) == 0
    rows = read_table(tmp_path / "lenient").to_pylist()
    assert DNATokenizer().decode(rows[1]["input_ids"]) == "NACG"
