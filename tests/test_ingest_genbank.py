"""GenBank flat files give the same sequence and per-base labels as FASTA + GFF3 of the record."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from hyena_glt.errors import DataError
from hyena_glt.ingest.genbank import is_genbank, read_genbank

CHLOROPLAST = "genome_annotation/arabidopsis_chloroplast_NC_000932.1"


def genbank_text(sequence: str, features: str) -> str:
    """A minimal GenBank record (LOCUS, FEATURES, ORIGIN) of ``sequence``."""
    rows = []
    for start in range(0, len(sequence), 60):
        chunk = sequence[start:start + 60].lower()
        blocks = " ".join(chunk[i:i + 10] for i in range(0, len(chunk), 10))
        rows.append(f"{start + 1:>9} {blocks}")
    return (f"LOCUS       {'toy':<16}{len(sequence):>12} bp    DNA     circular BCT "
            "01-JAN-2000\nDEFINITION  toy.\nACCESSION   toy\nVERSION     toy.1\n"
            "FEATURES             Location/Qualifiers\n" + features
            + "ORIGIN\n" + "\n".join(rows) + "\n//\n")


def test_chloroplast_labels_equal_the_fasta_and_gff3_mask(shared_data):
    folder = shared_data / CHLOROPLAST
    (record, mask), = list(read_genbank(folder / "NC_000932.1.gb.gz"))
    oracle = gzip.open(folder / "NC_000932.1.cds_mask.txt.gz", "rt").read().splitlines()[1]
    fasta = "".join(gzip.open(folder / "NC_000932.1.fa.gz", "rt").read().splitlines()[1:])
    assert record.name == "NC_000932.1"
    assert record.sequence == fasta
    assert np.array_equal(mask, np.frombuffer(oracle.encode(), dtype=np.uint8) - ord("0"))


def test_joins_strands_and_origin_spanning_features(tmp_path):
    features = ("     CDS             complement(join(11..20,31..40))\n"
                "     CDS             join(95..100,1..3)\n"
                "     gene            50..60\n")
    path = tmp_path / "toy.gbk"
    path.write_text(genbank_text("ACGT" * 25, features))
    (record, mask), = list(read_genbank(path))
    expected = np.zeros(100, dtype=np.int8)
    for start, end in [(10, 20), (30, 40), (94, 100), (0, 3)]:
        expected[start:end] = 1
    assert np.array_equal(mask, expected)
    (_, genes), = list(read_genbank(path, feature="gene"))
    assert genes.sum() == 11


@pytest.mark.parametrize("name", ["x.gb", "x.gbk.gz", "X.GBFF", "x.genbank.bgz"])
def test_genbank_names(name):
    assert is_genbank(name)
    assert not is_genbank("x.fa.gz")


@pytest.mark.parametrize("text, message", [
    ("not genbank at all\n", "no complete GenBank record found"),
    ("LOCUS broken\nFEATURES\n", "no complete GenBank record found"),
    (genbank_text("ACGT" * 5, "     CDS             join(1..4,x..9)\n"), "not a readable"),
    (genbank_text("ACGT" * 5, "     gene            1..4\n"), "no feature of type CDS; the file has types gene"),
    (genbank_text("ACGT" * 5, "     CDS             1..4\n").replace("//\n", ""), "not a readable GenBank file"),
])
def test_malformed_genbank_is_a_named_error(tmp_path, text, message):
    path = tmp_path / "bad.gb"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as error:
        list(read_genbank(path))
    assert str(path) in str(error.value)


def _parts(out):
    import json

    return {part: json.loads((out / part / "manifest.json").read_text())
            for part in ("train", "test")}


def test_ingest_annotation_from_genbank_alone_equals_fasta_and_gff3(shared_data, tmp_path):
    import pyarrow.parquet as pq

    from hyena_glt.cli import main

    folder = shared_data / CHLOROPLAST
    common = ["--window", "1024", "--split", "0.8", "--keep-duplicates"]
    assert main(["ingest", "annotation", "--annotation", str(folder / "NC_000932.1.gb.gz"),
                 "--out", str(tmp_path / "gb"), *common]) == 0
    assert main(["ingest", "annotation", str(folder / "NC_000932.1.fa.gz"), "--annotation",
                 str(folder / "NC_000932.1.gff3.gz"), "--out", str(tmp_path / "gff"),
                 *common]) == 0
    for part in ("train", "test"):
        tables = [pq.read_table(sorted((tmp_path / kind / part).glob("*.parquet")))
                  .sort_by("start").select(["input_ids", "labels", "start"])
                  for kind in ("gb", "gff")]
        assert tables[0].equals(tables[1])


def test_test_contigs_hold_out_whole_records(write_fasta, tmp_path, capsys):
    from hyena_glt.cli import main

    fasta = write_fasta([("chrA", "ACGT" * 600), ("chrB", "TTGCA" * 500)])
    gff = tmp_path / "x.gff3"
    gff.write_text("##gff-version 3\nchrA\t.\tCDS\t11\t400\t.\t+\t0\t.\n"
                   "chrB\t.\tCDS\t5\t300\t.\t-\t0\t.\n")
    out = tmp_path / "shards"
    assert main(["ingest", "annotation", str(fasta), "--annotation", str(gff), "--out", str(out),
                 "--window", "500", "--test-contigs", "chrB", "--keep-duplicates"]) == 0
    parts = _parts(out)
    assert set(parts["test"]["metadata"]["segments"]) == {"chrB"}
    assert set(parts["train"]["metadata"]["segments"]) == {"chrA"}
    assert parts["test"]["metadata"]["parameters"]["test_contigs"] == ["chrB"]
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main(["ingest", "annotation", str(fasta), "--annotation", str(gff), "--out", str(bad),
                 "--test-contigs", "chr8"]) == 2
    error = capsys.readouterr().err
    assert "test contig(s) chr8 not found; its contigs: chrA, chrB" in error
    assert not bad.exists() and "Traceback" not in error


def test_variants_of_test_contigs_are_held_out(write_fasta, tmp_path, capsys):
    from hyena_glt.cli import main

    fasta = write_fasta([("chr1", "ACGT" * 100), ("chr2", "GGCA" * 100)], name="ref.fa")
    table = tmp_path / "variants.csv"
    table.write_text("chrom,pos,ref,alt,label\n" + "".join(
        f"{chrom},{pos},{'ACGT'[(pos - 1) % 4] if chrom == 'chr1' else 'GGCA'[(pos - 1) % 4]},"
        f"T,{pos % 2}\n" for chrom in ("chr1", "chr2") for pos in range(50, 350, 30)))
    out = tmp_path / "variants"
    assert main(["ingest", "vcf", "--reference", str(fasta), "--table", str(table),
                 "--label-column", "label", "--out", str(out), "--window", "32",
                 "--test-contigs", "chr2"]) == 0
    parts = _parts(out)
    assert parts["train"]["num_rows"] == parts["test"]["num_rows"] == 10
    capsys.readouterr()
    assert main(["ingest", "vcf", "--reference", str(fasta), "--table", str(table),
                 "--label-column", "label", "--out", str(tmp_path / "x"),
                 "--test-contigs", "chr1,chr2"]) == 2
    assert "leave at least one for training" in capsys.readouterr().err


def test_pretraining_genomes_may_be_genbank(shared_data, tmp_path):
    from hyena_glt.cli import main
    from hyena_glt.ingest.fasta import read_fasta

    folder = shared_data / CHLOROPLAST
    (record,) = list(read_fasta(folder / "NC_000932.1.gb.gz"))
    (fasta,) = list(read_fasta(folder / "NC_000932.1.fa.gz"))
    assert (record.name, record.sequence) == (fasta.name, fasta.sequence)
    assert main(["ingest", "fasta", str(folder / "NC_000932.1.gb.gz"), "--out",
                 str(tmp_path / "genome"), "--window", "4096"]) == 0
    assert (tmp_path / "genome" / "manifest.json").is_file()
