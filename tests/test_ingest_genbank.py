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
    ("not genbank at all\n", "no GenBank record found"),
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
