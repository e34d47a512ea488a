"""A table-driven corpus of bad inputs, as a new user would give them.

Every case runs the CLI in-process and must end with exit status 2, one message on stderr that
names the file/record/field and the fix, no traceback, and nothing left behind (no output, no
empty parent of ``--out``, no ``.run/`` directory, no temporary file). A few cases that used to
give a silent wrong answer check the right answer instead.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from hyena_glt.cli import main

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "resources"

SEQ = "ACGTACGGTCAGTTGCAAGT" * 4  # 80 bases


# --- tiny inputs ------------------------------------------------------------------------------
def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def fasta(tmp: Path, text: str = f">chr1\n{SEQ}\n>chr2\n{SEQ}\n", name: str = "g.fa") -> str:
    return str(write(tmp / name, text))


def table(tmp: Path, rows: list[str], header: str = "sequence,label", name: str = "t.csv") -> str:
    return str(write(tmp / name, "\n".join([header, *rows]) + "\n"))


def balanced(n: int = 6) -> list[str]:
    return [f"{SEQ[i:i + 40]},{i % 2}" for i in range(n)]


REFERENCE = ">chr1\n" + "\n".join(SEQ[i:i + 20] for i in range(0, 80, 20)) + "\n"
VCF_HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=80>\n"
              "##INFO=<ID=AF,Number=A,Type=Float,Description=\"f\">\n"
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")


def vcf(tmp: Path, records: str, name: str = "v.vcf") -> str:
    return str(write(tmp / name, VCF_HEADER + records))


def reference(tmp: Path) -> str:
    return str(write(tmp / "ref.fa", REFERENCE))


def out(tmp: Path) -> str:
    """An output whose parent folders do not exist: a failure must not leave them."""
    return str(tmp / "results" / "deep" / "out")


def ingest_fasta(tmp: Path, *extra: str, text: str | None = None) -> list[str]:
    path = fasta(tmp) if text is None else fasta(tmp, text)
    return ["ingest", "fasta", path, "--out", out(tmp), "--window", "40", *extra]


def ingest_table(tmp: Path, rows: list[str], *extra: str, header: str = "sequence,label",
                 alphabet: str = "dna") -> list[str]:
    return ["ingest", "table", table(tmp, rows, header), "--alphabet", alphabet, "--out",
            out(tmp), *extra]


def ingest_vcf(tmp: Path, records: str, *extra: str) -> list[str]:
    return ["ingest", "vcf", "--reference", reference(tmp), "--vcf", vcf(tmp, records),
            "--window", "16", "--out", out(tmp), *extra]


GFF_HEADER = "##gff-version 3\n"


def ingest_annotation(tmp: Path, annotation: str, name: str = "a.gff3", *extra: str
                      ) -> list[str]:
    return ["ingest", "annotation", fasta(tmp), "--annotation", str(write(tmp / name, annotation)),
            "--window", "40", "--out", out(tmp), *extra]


# --- model directories, built once ------------------------------------------------------------
@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    """A tiny classifier, its quantized copy, and table/annotation/windows shards."""
    from hyena_glt.config import HyenaGLTConfig
    from hyena_glt.model import HyenaGLTForCausalLM, HyenaGLTForSequenceClassification

    root = tmp_path_factory.mktemp("assets")
    small = dict(vocab_size=16, d_model=16, n_layers=2, sequence_length=64, num_heads=2,
                 filter_order=8, alphabet_size=22)
    HyenaGLTForSequenceClassification(HyenaGLTConfig(
        **small, task_type="sequence_classification")).save_pretrained(root / "classifier")
    HyenaGLTForCausalLM(HyenaGLTConfig(**small)).save_pretrained(root / "lm")
    rows = [f"{SEQ[i:i + 40]},{i % 2}" for i in range(40)]
    val = table(root, rows, name="val.csv")
    assert main(["ingest", "table", val, "--alphabet", "dna", "--out", str(root / "table")]) == 0
    assert main(["ingest", "table", val, "--alphabet", "dna", "--split", "0.5", "--out",
                 str(root / "split")]) == 0
    genome = fasta(root, ">chr1\n" + SEQ * 4 + "\n")
    gff = write(root / "a.gff3", GFF_HEADER + "chr1\tx\tCDS\t5\t60\t.\t+\t0\tID=c\n")
    assert main(["ingest", "annotation", genome, "--annotation", str(gff), "--window", "40",
                 "--out", str(root / "annotation")]) == 0
    assert main(["ingest", "fasta", genome, "--window", "40", "--out",
                 str(root / "windows")]) == 0
    assert main(["quantize", str(root / "classifier"), "--val", val, "--out",
                 str(root / "quantized")]) == 0
    return {"root": root, "val": Path(val)}


def copy_model(assets: dict[str, Path], tmp: Path, name: str, damage: Callable[[Path], None]
               ) -> str:
    import shutil

    target = tmp / f"{name}_copy"
    shutil.copytree(assets["root"] / name, target)
    damage(target)
    return str(target)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def set_config(directory: Path, **changes) -> None:
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, **changes}))


# --- the corpus ---------------------------------------------------------------------------------
#: id -> (argv builder, strings stderr must contain). A builder takes (tmp_path, assets).
Builder = Callable[[Path, dict], list[str]]
CASES: dict[str, tuple[Builder, tuple[str, ...]]] = {}


def case(name: str, *named: str) -> Callable[[Builder], Builder]:
    def add(builder: Builder) -> Builder:
        assert name not in CASES, name
        CASES[name] = (builder, named)
        return builder
    return add


def simple(name: str, build: Callable[[Path], list[str]], *named: str) -> None:
    CASES[name] = (lambda tmp, assets: build(tmp), named)


# FASTA -------------------------------------------------------------------------------------
simple("fasta-missing", lambda t: ["ingest", "fasta", str(t / "no.fa"), "--out", out(t)],
       "no.fa", "file not found")
simple("fasta-directory", lambda t: ["ingest", "fasta", str(t), "--out", out(t)],
       "is a directory")
simple("fasta-empty", lambda t: ingest_fasta(t, text=""), "g.fa", "empty file")
simple("fasta-not-fasta", lambda t: ingest_fasta(t, text="hello world\n"), "g.fa",
       "not FASTA", "'>' header")
simple("fasta-fastq", lambda t: ingest_fasta(t, text=f"@r1\n{SEQ}\n+\n{'I' * 80}\n"),
       "g.fa", "FASTQ, not FASTA", "seqtk")
simple("fasta-nameless-header", lambda t: ingest_fasta(t, text=f">\n{SEQ}\n"), "g.fa",
       "without a record name", "line 1")
simple("fasta-header-without-sequence", lambda t: ingest_fasta(t, text=f">a\n>b\n{SEQ}\n"),
       "record 'a'", "header without sequence")
simple("fasta-duplicate-id", lambda t: ingest_fasta(t, text=f">a\n{SEQ}\n>a\n{SEQ}\n"),
       "record 'a'", "duplicate record id")
simple("fasta-invalid-character", lambda t: ingest_fasta(t, text=f">a\n{SEQ[:30]}J{SEQ}\n"),
       "record 'a'", "'J'", "--unknown replace")
simple("fasta-protein-as-dna", lambda t: ingest_fasta(t, text=">p\nMKVLAAGIELLQRSTEEPF\n"),
       "record 'p'", "--alphabet protein")
simple("fasta-rna-alphabet-with-T", lambda t: ingest_fasta(t, "--alphabet", "rna"),
       "record 'chr1'", "'T'", "--alphabet dna")
simple("fasta-truncated-gzip",
       lambda t: ["ingest", "fasta", str(write(t / "g.fa.gz", gzip.compress(
           f">a\n{SEQ * 50}\n".encode())[:60])), "--out", out(t)], "g.fa.gz", "truncated")
simple("fasta-min-length-negative", lambda t: ingest_fasta(t, "--min-length", "-3"),
       "--min-length", "an integer >= 0")
simple("fasta-window-zero", lambda t: ingest_fasta(t, "--window", "0"), "--window",
       "an integer >= 1")
simple("fasta-window-text", lambda t: ingest_fasta(t, "--window", "abc"), "--window",
       "not a number")
simple("fasta-window-fraction", lambda t: ingest_fasta(t, "--window", "10.5"), "--window",
       "not a whole number")
simple("fasta-stride-zero", lambda t: ingest_fasta(t, "--stride", "0"), "--stride")
simple("fasta-max-n-fraction", lambda t: ingest_fasta(t, "--max-n-fraction", "1.5"),
       "--max-n-fraction", "[0, 1]")
simple("fasta-too-short", lambda t: ingest_fasta(t, "--window", "500"), "g.fa",
       "no window written", "--min-length")
simple("fasta-all-n", lambda t: ingest_fasta(t, text=">n\n" + "N" * 80 + "\n"), "g.fa",
       "no window written", "max_n_fraction")
simple("fasta-protein-reverse-complement",
       lambda t: ingest_fasta(t, "--alphabet", "protein", "--reverse-complement"),
       "reverse_complement", "drop --reverse-complement")
simple("fasta-unknown-choice", lambda t: ingest_fasta(t, "--unknown", "skip"), "--unknown",
       "invalid choice")
simple("fasta-binary", lambda t: ingest_fasta(t, text="\x00\x01\x02binary"), "g.fa",
       "not FASTA")


@case("out-is-a-file", "notes.txt", "exists and is a file", "choose another output path")
def _(tmp, assets):
    """The user's file must neither be replaced by a shard directory nor moved aside."""
    return ["ingest", "fasta", fasta(tmp), "--window", "40", "--out",
            str(write(tmp / "notes.txt", "keep me\n"))]


@case("out-parent-is-a-file", "notes.txt", "cannot create its folder")
def _(tmp, assets):
    return ["ingest", "fasta", fasta(tmp), "--window", "40", "--out",
            str(write(tmp / "notes.txt", "keep me\n") / "shards")]


@case("fasta-duplicate-across-files", "b.fa", "record 'chr1'", "also in")
def _(tmp, assets):
    return ["ingest", "fasta", fasta(tmp), fasta(tmp, name="b.fa"), "--window", "40", "--out",
            out(tmp)]


# tables ------------------------------------------------------------------------------------
simple("table-missing", lambda t: ["ingest", "table", str(t / "no.csv"), "--alphabet", "dna",
                                   "--out", out(t)], "no.csv", "file not found")
simple("table-empty", lambda t: ["ingest", "table", str(write(t / "t.csv", "")), "--alphabet",
                                 "dna", "--out", out(t)], "t.csv", "empty file")
simple("table-header-only", lambda t: ingest_table(t, []), "t.csv", "no data rows")
simple("table-no-sequence-column", lambda t: ingest_table(t, ["ACGT,1"], header="seq,label"),
       "t.csv", "'sequence'", "the columns are seq, label")
simple("table-no-label-column", lambda t: ingest_table(t, ["ACGT,1"], header="sequence,y"),
       "t.csv", "'label'")
simple("table-na-label", lambda t: ingest_table(t, [*balanced(), "ACGT,NA"]), "t.csv",
       "line 8", "missing label ('NA')", "give every row a label")
simple("table-nan-label", lambda t: ingest_table(t, [*balanced(), "ACGT,NaN"]), "line 8",
       "missing label ('NaN')")
simple("table-empty-label", lambda t: ingest_table(t, ["ACGT,", *balanced()]), "line 2",
       "missing label (empty)")
simple("table-one-class", lambda t: ingest_table(t, ["ACGT,1", "ACGA,1"]), "t.csv",
       "one class only", "--task regression")
simple("table-one-text-class", lambda t: ingest_table(t, ["ACGT,yes", "ACGA,yes"]),
       "one class only")
simple("table-scores-as-classes",
       lambda t: ingest_table(t, ["ACGT,0.25", "ACGA,0.75", "ACGC,1"]), "t.csv", "line 2",
       "'0.25'", "--task regression")
simple("table-invalid-character", lambda t: ingest_table(t, [*balanced(), "ACJT,1"]),
       "line 8", "'J'", "--unknown replace")
simple("table-protein-as-dna", lambda t: ingest_table(t, ["MKVLEEQ,0", "MKVLPPQ,1"]), "line 2",
       "--alphabet protein")
simple("table-empty-sequence", lambda t: ingest_table(t, [",1", *balanced()]), "line 2",
       "empty sequence")
simple("table-duplicate-id", lambda t: ingest_table(t, ["a,ACGT,0", "a,ACGA,1"],
                                                    header="id,sequence,label"),
       "line 3", "duplicate id 'a'")
simple("table-regression-text", lambda t: ingest_table(t, ["ACGT,high"], "--task",
                                                       "regression"), "line 2",
       "not a finite number")
simple("table-regression-inf", lambda t: ingest_table(t, ["ACGT,inf"], "--task", "regression"),
       "not a finite number")
simple("table-split-zero", lambda t: ingest_table(t, balanced(), "--split", "0"), "--split",
       "strictly between 0 and 1")
simple("table-split-above-one", lambda t: ingest_table(t, balanced(), "--split", "1.5"),
       "--split")
simple("table-split-class-of-one-row",
       lambda t: ingest_table(t, [*balanced(), "ACGT,2"], "--split", "0.5"),
       "t.csv", "class 2 has 1 row", "at least 2 rows of every class")
simple("table-split-too-few-rows",
       lambda t: ingest_table(t, balanced(4), "--split", "0.9"), "each part needs a row",
       "split fraction")
simple("table-split-column-slash",
       lambda t: ingest_table(t, ["ACGT,0,a/b", "ACGA,1,c"], "--split-column", "part",
                              header="sequence,label,part"), "t.csv", "'part'", "cannot name")
simple("table-split-and-split-column",
       lambda t: ingest_table(t, balanced(), "--split", "0.5", "--split-column", "x"),
       "not allowed with argument")
simple("table-reserved-column",
       lambda t: ingest_table(t, ["ACGT,0,1", "ACGA,1,1"], header="sequence,label,input_ids"),
       "t.csv", "would overwrite")
simple("table-no-alphabet", lambda t: ["ingest", "table", table(t, balanced()), "--out",
                                       out(t)], "--alphabet")
simple("table-negative-seed", lambda t: ingest_table(t, balanced(), "--seed", "-1"), "--seed")
simple("table-corrupt-parquet",
       lambda t: ["ingest", "table", str(write(t / "t.parquet", b"PAR1garbage")), "--alphabet",
                  "dna", "--out", out(t)], "t.parquet", "cannot read table")
simple("table-tsv-named-csv",
       lambda t: ingest_table(t, ["ACGT\t0"], header="sequence\tlabel"), "t.csv",
       "missing column")
simple("table-id-column-missing",
       lambda t: ingest_table(t, balanced(), "--id-column", "name"), "'name'")

# annotation --------------------------------------------------------------------------------
simple("annotation-missing-file",
       lambda t: ["ingest", "annotation", fasta(t), "--annotation", str(t / "no.gff3"),
                  "--out", out(t)], "no.gff3")
simple("annotation-missing-fasta",
       lambda t: ["ingest", "annotation", str(t / "no.fa"), "--annotation",
                  str(write(t / "a.gff3", GFF_HEADER + "chr1\tx\tCDS\t1\t20\t.\t+\t0\tID=a\n")),
                  "--out", out(t)], "no.fa")
simple("annotation-unknown-seqid",
       lambda t: ingest_annotation(t, GFF_HEADER + "chrX\tx\tCDS\t1\t10\t.\t+\t0\tID=a\n"),
       "a.gff3", "chrX")
simple("annotation-end-before-start",
       lambda t: ingest_annotation(t, GFF_HEADER + "chr1\tx\tCDS\t30\t10\t.\t+\t0\tID=a\n"),
       "a.gff3", "line 2")
simple("annotation-past-record-end",
       lambda t: ingest_annotation(t, GFF_HEADER + "chr1\tx\tCDS\t10\t900\t.\t+\t0\tID=a\n"),
       "a.gff3", "line 2")
simple("annotation-bed-text-start",
       lambda t: ingest_annotation(t, "chr1\tten\t20\n", "a.bed"), "a.bed", "line 1")
simple("annotation-gff-too-few-columns",
       lambda t: ingest_annotation(t, GFF_HEADER + "chr1\tx\tCDS\t1\n"), "a.gff3", "line 2")
simple("annotation-no-feature-of-type",
       lambda t: ingest_annotation(t, GFF_HEADER + "chr1\tx\tgene\t1\t20\t.\t+\t.\tID=a\n"),
       "a.gff3", "CDS")
simple("annotation-split-one", lambda t: ingest_annotation(
    t, GFF_HEADER + "chr1\tx\tCDS\t1\t20\t.\t+\t0\tID=a\n", "a.gff3", "--split", "1"),
       "--split")
simple("annotation-duplicate-threshold", lambda t: ingest_annotation(
    t, GFF_HEADER + "chr1\tx\tCDS\t1\t20\t.\t+\t0\tID=a\n", "a.gff3",
    "--duplicate-threshold", "2"), "--duplicate-threshold")

# VCF ---------------------------------------------------------------------------------------
simple("vcf-missing-reference",
       lambda t: ["ingest", "vcf", "--reference", str(t / "no.fa"), "--vcf",
                  vcf(t, "chr1\t5\t.\tA\tG\t.\t.\t.\n"), "--out", out(t)], "no.fa", "not found")
simple("vcf-reference-directory",
       lambda t: ["ingest", "vcf", "--reference", str(t), "--vcf",
                  vcf(t, "chr1\t5\t.\tA\tG\t.\t.\t.\n"), "--out", out(t)], "is a directory")
simple("vcf-missing-vcf",
       lambda t: ["ingest", "vcf", "--reference", reference(t), "--vcf", str(t / "no.vcf"),
                  "--out", out(t)], "no.vcf", "not found")
simple("vcf-no-header",
       lambda t: ["ingest", "vcf", "--reference", reference(t), "--vcf",
                  str(write(t / "v.vcf", "chr1\t5\t.\tA\tG\t.\t.\t.\n")), "--out", out(t)],
       "v.vcf", "##fileformat=VCF")
simple("vcf-plain-gzip",
       lambda t: ["ingest", "vcf", "--reference", reference(t), "--vcf",
                  str(write(t / "v.vcf.gz", gzip.compress(
                      (VCF_HEADER + "chr1\t5\t.\tA\tG\t.\t.\t.\n").encode()))),
                  "--out", out(t)], "v.vcf.gz", "plain gzip", "bgzip")
simple("vcf-pos-zero", lambda t: ingest_vcf(t, "chr1\t0\t.\tA\tG\t.\t.\t.\n"), "v.vcf",
       "POS 0", "1-based")
simple("vcf-unknown-contig", lambda t: ingest_vcf(t, "chr9\t5\t.\tA\tG\t.\t.\t.\n"),
       "chr9:5", "is not in the reference", "chr1")
simple("vcf-ref-mismatch", lambda t: ingest_vcf(t, f"chr1\t1\t.\t{'C' if SEQ[0] != 'C' else 'G'}"
                                                   "\tT\t.\t.\t.\n"),
       "chr1:1", "does not match the reference")
simple("vcf-past-contig-end", lambda t: ingest_vcf(t, "chr1\t500\t.\tA\tG\t.\t.\t.\n"),
       "chr1:500", "past the end of contig chr1", "length 80")
simple("vcf-pos-text", lambda t: ingest_vcf(t, "chr1\t5\t.\tA\tG\t.\t.\t.\n"
                                              "chr1\tfive\t.\tA\tG\t.\t.\t.\n"),
       "v.vcf", "line 6", "after chr1:5", "POS 'five' is not a whole number")
simple("vcf-too-few-columns", lambda t: ingest_vcf(t, "chr1\t5\t.\tA\tG\n"), "v.vcf",
       "line 5", "5 tab-separated columns")
simple("vcf-label-info-undeclared",
       lambda t: ingest_vcf(t, "chr1\t5\t.\tA\tG\t.\t.\t.\n", "--label-info", "XX"),
       "v.vcf", "'XX'", "not declared")
simple("vcf-labels-without-column",
       lambda t: ingest_vcf(t, "chr1\t5\t.\tA\tG\t.\t.\t.\n", "--labels",
                            table(t, ["chr1,5,A,G,1"], "chrom,pos,ref,alt,y")),
       "--labels needs --label-column")
simple("vcf-label-column-without-labels",
       lambda t: ingest_vcf(t, "chr1\t5\t.\tA\tG\t.\t.\t.\n", "--label-column", "y"),
       "--label-info")
simple("vcf-window-zero", lambda t: ingest_vcf(t, "chr1\t5\t.\tA\tG\t.\t.\t.\n", "--window",
                                               "0"), "--window")
simple("vcf-bin-size-zero", lambda t: ingest_vcf(t, "chr1\t5\t.\tA\tG\t.\t.\t.\n",
                                                 "--bin-size", "0"), "--bin-size")
simple("vcf-reference-not-fasta",
       lambda t: ["ingest", "vcf", "--reference", str(write(t / "ref.fa", "not a fasta\n")),
                  "--vcf", vcf(t, "chr1\t5\t.\tA\tG\t.\t.\t.\n"), "--out", out(t)],
       "ref.fa", "cannot index")
simple("vcf-table-missing-pos",
       lambda t: ["ingest", "vcf", "--reference", reference(t), "--table",
                  table(t, ["chr1,A,G"], "chrom,ref,alt"), "--out", out(t)], "t.csv", "'pos'")
simple("vcf-table-pos-text",
       lambda t: ["ingest", "vcf", "--reference", reference(t), "--table",
                  table(t, ["chr1,five,A,G"], "chrom,pos,ref,alt"), "--out", out(t)],
       "t.csv", "'five' is not an integer")
simple("vcf-table-pos-zero",
       lambda t: ["ingest", "vcf", "--reference", reference(t), "--table",
                  table(t, ["chr1,0,A,G"], "chrom,pos,ref,alt"), "--out", out(t)],
       "t.csv", "position >= 1")
simple("vcf-split-one-bin",
       lambda t: ingest_vcf(t, f"chr1\t5\t.\t{SEQ[4]}\tG\t.\t.\t.\n"
                               f"chr1\t6\t.\t{SEQ[5]}\tC\t.\t.\t.\n", "--split", "0.5"),
       "position bin")

# configs (--set, --config, curriculum) and pretraining --------------------------------------


def pretrain(tmp: Path, assets: dict, *extra: str, data: str = "windows") -> list[str]:
    return ["pretrain", "--data", str(assets["root"] / data), "--out", out(tmp), *extra]


def pretrain_with(tmp: Path, assets: dict, options: tuple[str, ...]) -> list[str]:
    return pretrain(tmp, assets, *options)


for name, setting, named in [
    ("set-text-number", "learning_rate=abc", ("HyenaGLTConfig.learning_rate='abc'",
                                               "not a number")),
    ("set-unknown-field", "bogus=1", ("unknown HyenaGLTConfig field(s): bogus",)),
    ("set-misspelt-field", "lerning_rate=1e-3", ("did you mean 'learning_rate'",)),
    ("set-null", "merge_threshold=null", ("merge_threshold=None", "give a value")),
    ("set-batch-size-zero", "batch_size=0", ("batch_size=0", "an integer >= 1")),
    ("set-dropout-one", "dropout=1.5", ("dropout=1.5", "in [0, 1)")),
    ("set-fractional-layers", "n_layers=2.5", ("n_layers=2.5", "not an integer")),
    ("set-boolean-number", "d_model=true", ("d_model=True", "not an integer")),
    ("set-no-equals", "learning_rate", ("expected FIELD=VALUE",)),
    ("set-ngram-text", "ngram_sizes=a,b", ("ngram_sizes[0]", "not an integer")),
    ("set-heads-not-divisor", "num_heads=5", ("num_heads", "a divisor of d_model")),
    ("set-pooling", "pooling=max", ("pooling='max'", "one of mean, attention")),
    ("set-id2label-key", "id2label={a: b}", ("id2label key='a'", "not an integer")),
    ("set-unreadable-yaml", "merge_mode=[entropy", ("--set 'merge_mode=[entropy'",
                                                    "unreadable value")),
    ("set-list-for-number", "d_model=[64, 128]", ("d_model=[64, 128]", "not an integer")),
]:
    CASES[name] = (partial(pretrain_with, options=("--set", setting)), named)


@case("config-missing-file", "no.yaml", "cannot read the config file")
def _(tmp, assets):
    return pretrain(tmp, assets, "--config", str(tmp / "no.yaml"))


@case("config-not-mapping", "c.yaml", "expected a mapping")
def _(tmp, assets):
    return pretrain(tmp, assets, "--config", str(write(tmp / "c.yaml", "- 1\n- 2\n")))


@case("config-bad-yaml", "c.yaml", "cannot read the config file")
def _(tmp, assets):
    return pretrain(tmp, assets, "--config", str(write(tmp / "c.yaml", "a: [1, 2\n")))


@case("config-curriculum-number", "curriculum=5", "LENGTH:EPOCHS")
def _(tmp, assets):
    return pretrain(tmp, assets, "--config", str(write(tmp / "c.yaml", "curriculum: 5\n")))


@case("curriculum-zero-length", "max_length=0", "integer >= 1")
def _(tmp, assets):
    return pretrain(tmp, assets, "--curriculum", "0:1")


@case("curriculum-zero-epochs", "epochs=0", "integer >= 1")
def _(tmp, assets):
    return pretrain(tmp, assets, "--curriculum", "32:0")


@case("curriculum-garbage", "'abc'", "LENGTH:EPOCHS")
def _(tmp, assets):
    return pretrain(tmp, assets, "--curriculum", "abc")


@case("curriculum-longer-than-windows", "curriculum length 64", "40-token windows",
      "--window 64")
def _(tmp, assets):
    return pretrain(tmp, assets, "--set", "sequence_length=128", "--curriculum", "32:1,64:1")


@case("curriculum-longer-than-model", "curriculum length 256", "sequence_length=128")
def _(tmp, assets):
    return pretrain(tmp, assets, "--set", "sequence_length=128", "--curriculum", "256:1")


for name, option, value in [("pretrain-shuffle-buffer", "--shuffle-buffer", "-1"),
                            ("pretrain-num-workers", "--num-workers", "-1"),
                            ("pretrain-max-steps", "--max-steps", "0"),
                            ("pretrain-log-steps", "--log-steps", "0"),
                            ("pretrain-threads", "--threads", "0"),
                            ("pretrain-device", "--device", "tpu")]:
    CASES[name] = (partial(pretrain_with, options=(option, value)), (option,))


@case("pretrain-non-finite-loss", "non-finite loss", "Lower the learning rate")
def _(tmp, assets):
    """Fails inside training, after the run directory was made: it must go too."""
    tiny = ["--set=vocab_size=16", "--set=d_model=16", "--set=n_layers=2", "--set=num_heads=2",
            "--set=sequence_length=64", "--set=filter_order=8", "--set=batch_size=2"]
    return pretrain(tmp, assets, *tiny, "--set=learning_rate=1e30", "--set=max_grad_norm=1e38",
                    "--max-steps", "4", "--threads", "1")


@case("pretrain-table-shards", "'windows' shard directory", "ingest fasta")
def _(tmp, assets):
    return pretrain(tmp, assets, data="table")


@case("pretrain-missing-shards", "not a shard directory")
def _(tmp, assets):
    return ["pretrain", "--data", str(tmp / "none"), "--out", out(tmp)]


@case("pretrain-split-parent", "split parts (test, train)", "split/train")
def _(tmp, assets):
    return pretrain(tmp, assets, data="split")


# fine-tuning -------------------------------------------------------------------------------


def finetune(tmp: Path, assets: dict, *extra: str, train: str = "table",
             task: str = "sequence_classification", pretrained: str | None = None) -> list[str]:
    return ["finetune", "--pretrained", pretrained or str(assets["root"] / "lm"), "--train",
            str(assets["root"] / train), "--task-type", task, "--out", out(tmp), *extra]


def finetune_with(tmp: Path, assets: dict, options: tuple[str, ...]) -> list[str]:
    return finetune(tmp, assets, *options)


for name, option, value in [("finetune-head-lr-negative", "--head-lr", "-0.01"),
                            ("finetune-head-lr-zero", "--head-lr", "0"),
                            ("finetune-backbone-lr-zero", "--backbone-lr", "0"),
                            ("finetune-batch-size-zero", "--batch-size", "0"),
                            ("finetune-epochs-zero", "--epochs", "0"),
                            ("finetune-num-classes-zero", "--num-classes", "0"),
                            ("finetune-max-length-zero", "--max-length", "0")]:
    CASES[name] = (partial(finetune_with, options=(option, value)), (option,))


@case("finetune-sequence-task-on-annotation", "annotation", "'annotation' shards",
      "--task-type genome_annotation or token_classification")
def _(tmp, assets):
    return finetune(tmp, assets, train="annotation")


@case("finetune-token-task-on-table", "'table' shards", "--task-type")
def _(tmp, assets):
    return finetune(tmp, assets, task="token_classification")


@case("finetune-variant-task-on-table", "'variants' shards", "ingest vcf")
def _(tmp, assets):
    return finetune(tmp, assets, task="variant_effect")


@case("finetune-table-file-na-label", "t.csv", "line 8", "missing label ('NA')")
def _(tmp, assets):
    """A table given as it is, not ingested: the same label checks as `ingest table`."""
    return ["finetune", "--pretrained", str(assets["root"] / "lm"), "--train",
            table(tmp, [*balanced(), "ACGT,NA"]), "--task-type", "sequence_classification",
            "--out", out(tmp)]


@case("finetune-split-parent", "split parts", "split/train")
def _(tmp, assets):
    return finetune(tmp, assets, train="split")


@case("finetune-pretrained-folder-without-config", "not a model directory",
      "has no config.json", "lm")
def _(tmp, assets):
    return finetune(tmp, assets, pretrained=str(assets["root"]))


@case("finetune-pretrained-unknown-name", "unknown pretrained model 'no-such-model'",
      "register-model")
def _(tmp, assets):
    return finetune(tmp, assets, pretrained="no-such-model")


@case("finetune-pretrained-missing-path", "does not exist")
def _(tmp, assets):
    return finetune(tmp, assets, pretrained=str(tmp / "models" / "lm"))


@case("finetune-pretrained-no-weights", "model.safetensors", "no weights file")
def _(tmp, assets):
    return finetune(tmp, assets, pretrained=copy_model(
        assets, tmp, "lm", lambda d: (d / "model.safetensors").unlink()))


@case("finetune-pretrained-truncated-weights", "model.safetensors", "cannot read safetensors")
def _(tmp, assets):
    return finetune(tmp, assets, pretrained=copy_model(
        assets, tmp, "lm", lambda d: truncate(d / "model.safetensors")))


@case("finetune-pretrained-config-text-dropout", "config.json", "dropout='high'",
      "not a number")
def _(tmp, assets):
    return finetune(tmp, assets, pretrained=copy_model(
        assets, tmp, "lm", lambda d: set_config(d, dropout="high")))


@case("finetune-pretrained-config-not-json", "config.json", "not valid JSON")
def _(tmp, assets):
    return finetune(tmp, assets, pretrained=copy_model(
        assets, tmp, "lm", lambda d: (d / "config.json").write_text("{oops")))


@case("finetune-set-unknown-field", "unknown HyenaGLTConfig field(s): colour")
def _(tmp, assets):
    return finetune(tmp, assets, "--set", "colour=blue")


# compression -------------------------------------------------------------------------------


def quantize(tmp: Path, assets: dict, model: str | None = None, *extra: str) -> list[str]:
    return ["quantize", model or str(assets["root"] / "classifier"), "--val", str(assets["val"]),
            "--out", out(tmp), *extra]


@case("quantize-batch-size-zero", "--batch-size", "an integer >= 1")
def _(tmp, assets):
    return quantize(tmp, assets, None, "--batch-size", "0")


@case("quantize-missing-model", "no.model", "no such config file")
def _(tmp, assets):
    return quantize(tmp, assets, str(tmp / "no.model"))


@case("quantized-model-missing-weights", "model.safetensors", "no weights file")
def _(tmp, assets):
    return ["export", copy_model(assets, tmp, "quantized",
                                 lambda d: (d / "model.safetensors").unlink()),
            "--val", str(assets["val"]), "--out", out(tmp)]


@case("quantized-model-truncated-weights", "model.safetensors", "cannot read safetensors")
def _(tmp, assets):
    return ["export", copy_model(assets, tmp, "quantized",
                                 lambda d: truncate(d / "model.safetensors")),
            "--val", str(assets["val"]), "--out", out(tmp)]


@case("quantized-model-bad-recipe", "quantization.json", "not valid JSON")
def _(tmp, assets):
    return ["export", copy_model(assets, tmp, "quantized",
                                 lambda d: (d / "quantization.json").write_text("{")),
            "--val", str(assets["val"]), "--out", out(tmp)]


def compress_with(tmp: Path, assets: dict, argv: list[str]) -> list[str]:
    return [argv[0], str(assets["root"] / "classifier"), "--val", str(assets["val"]), "--out",
            out(tmp), *argv[1:]]


for name, argv in [
    ("prune-sparsity", ["prune", "--sparsity", "1.5"]),
    ("prune-iterations", ["prune", "--iterations", "0"]),
    ("prune-fine-tune-steps", ["prune", "--fine-tune-steps", "-1"]),
    ("prune-distillation-alpha", ["prune", "--distillation-alpha", "2"]),
    ("prune-learning-rate", ["prune", "--learning-rate", "0"]),
    ("distill-temperature", ["distill", "--temperature", "0", "--train", "x.csv"]),
    ("distill-steps", ["distill", "--steps", "0", "--train", "x.csv"]),
    ("distill-student-d-model", ["distill", "--student-d-model", "0", "--train", "x.csv"]),
    ("export-length", ["export", "--length", "0"]),
    ("export-format", ["export", "--format", "tflite"]),
    ("quantize-type", ["quantize", "--type", "int4"]),
    ("quantize-max-length", ["quantize", "--max-length", "-5"]),
]:
    CASES[name] = (partial(compress_with, argv=argv), (argv[1],))

# evaluation options (the parser's types) -----------------------------------------------------


def fixed(tmp: Path, assets: dict, argv: list[str]) -> list[str]:
    return argv


for name, argv in [
    ("evaluate-batch-size", ["evaluate", "--model", "m", "--data", "d", "--out", "o.csv",
                             "--batch-size", "0"]),
    ("benchmark-max-rows", ["benchmark", "--name", "t", "--train", "a", "--test", "b",
                            "--out", "o", "--max-rows", "0"]),
    ("benchmark-cnn-epochs", ["benchmark", "--name", "t", "--train", "a", "--test", "b",
                              "--out", "o", "--cnn-epochs", "-2"]),
    ("score-variants-batch-size", ["score-variants", "--model", "m", "--variants", "v",
                                   "--out", "o", "--batch-size", "-1"]),
]:
    CASES[name] = (partial(fixed, argv=argv), (argv[-2],))


@case("report-empty-results", "empty.csv", "0-byte")
def _(tmp, assets):
    return ["report", "--results", str(write(tmp / "empty.csv", "")), "--out", out(tmp)]


def files_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_named_line_with_exit_2_and_leaves_nothing(name, tmp_path, assets,
                                                                    capsys):
    build, named = CASES[name]
    argv = build(tmp_path, assets)
    before = files_under(tmp_path)
    assets_before = files_under(assets["root"])
    status = main(argv)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert status == 2, f"exit {status}: {output[-2000:]}"
    assert "Traceback" not in output
    for text in named:
        assert text in captured.err, f"{text!r} not in: {captured.err}"
    assert files_under(tmp_path) == before, "left behind: " + ", ".join(
        str(p) for p in files_under(tmp_path) - before)
    assert files_under(assets["root"]) == assets_before


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 80


# --- the workflow config: every wrong value stops `snakemake -n` before any job ------------------
PROMOTERS = {"task": "promoters", "type": "sequence_classification",
             "table": str(RESOURCES / "promoters" / "human_nontata_promoters.test_subset2000.csv.gz")}
BRCA1_LOF = {"task": "brca1_lof", "type": "variant_effect",
             "table": str(RESOURCES / "variants" / "brca1_sge_variants.csv.gz"),
             "label_column": "label_lof", "chrom": "ref_brca1", "pos_column": "pos_in_ref_brca1",
             "reference": str(RESOURCES / "variants" / "ref_brca1.fa.gz")}
GENOMES = [{"genome": "chloroplast", "fasta": str(RESOURCES / "genomes" / "NC_000932.1.fa.gz")},
           {"genome": "sars_cov_2", "fasta": str(RESOURCES / "genomes" / "NC_045512.2.fa.gz")}]

#: id -> (config changes as (section, key) -> value, task rows, strings the error must name).
WORKFLOW_CASES = {
    "unknown-model-field": ({("pretrain", "model"): {"d_model": 64, "colour": "blue"}},
                            [PROMOTERS], ["pretrain.model", "colour"]),
    "model-text-number": ({("pretrain", "model"): {"learning_rate": "fast"}}, [PROMOTERS],
                          ["pretrain.model", "learning_rate='fast'"]),
    "overrides-batch-size-zero": ({("finetune", "overrides"): {"batch_size": 0}}, [PROMOTERS],
                                  ["finetune.overrides", "batch_size=0"]),
    "by-task-type-unknown-field": (
        {("finetune", "by_task_type"): {"regression": {"overrides": {"lr": 1}}}}, [PROMOTERS],
        ["finetune.by_task_type.regression.overrides", "field(s): lr"]),
    "by-task-type-head-lr-zero": (
        {("finetune", "by_task_type"): {"token_classification": {"head_lr": 0}}}, [PROMOTERS],
        ["head_lr"]),
    "curriculum-longer-than-windows": ({("pretrain", "curriculum"): "512:1,4096:1",
                                        ("pretrain", "model"): {"sequence_length": 4096}},
                                       [PROMOTERS], ["stage length 4096",
                                                     "ingest.genomes.window=2048"]),
    "curriculum-longer-than-model": ({("pretrain", "curriculum"): "512:1,2048:1",
                                      ("pretrain", "model"): {"sequence_length": 1024}},
                                     [PROMOTERS], ["pretrain.model.sequence_length=1024"]),
    "curriculum-zero": ({("pretrain", "curriculum"): "0:1"}, [PROMOTERS],
                        ["curriculum"]),
    "wrong-label-column": ({}, [{**PROMOTERS, "label_column": "class"}],
                           ["task 'promoters'", "label_column 'class'",
                            "its columns: sequence, label"]),
    "wrong-sequence-column": ({}, [{**PROMOTERS, "sequence_column": "seq"}],
                              ["sequence_column 'seq'"]),
    "wrong-variant-pos-column": ({}, [{**BRCA1_LOF, "pos_column": "position"}],
                                 ["task 'brca1_lof'", "pos_column 'position'"]),
}


def run_dry(tmp: Path, changes: dict, tasks: list[dict]) -> subprocess.CompletedProcess:
    import yaml
    from workflow_configs import write_sheet

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for (section, key), value in changes.items():
        config[section][key] = value
    for key in [k for k, v in config.items() if isinstance(v, str) and v.endswith(".tsv")]:
        del config[key]  # optional sheets (their relative paths do not hold in tmp)
    config["genomes"] = str(write_sheet(tmp / "genomes.tsv", GENOMES))
    config["tasks"] = str(write_sheet(tmp / "tasks.tsv", tasks))
    config["pretrain"]["held_out_genomes"] = ["sars_cov_2"]
    (tmp / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake = Path(sys.executable).parent / "snakemake"
    return subprocess.run([str(snakemake), "--snakefile", str(REPO / "workflow" / "Snakefile"),
                           "-n", "--cores", "1", "--configfile", str(tmp / "config.yaml"),
                           "--directory", str(tmp)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("name", sorted(WORKFLOW_CASES))
def test_a_wrong_workflow_setting_stops_the_dry_run_naming_it(name, tmp_path):
    changes, tasks, named = WORKFLOW_CASES[name]
    result = run_dry(tmp_path, changes, tasks)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "Building DAG" not in output  # stopped while the workflow was read
    for text in named:
        assert text in output, f"{text!r} not in: {output[-2000:]}"
    assert not (tmp_path / "results").exists()


def test_numbers_in_exponent_form_pass_the_workflow_checks(tmp_path):
    result = run_dry(tmp_path, {("pretrain", "model"): {"learning_rate": "2e-3", "d_model": 64},
                                ("finetune", "overrides"): {"learning_rate": "1e-3"}},
                     [PROMOTERS])
    assert result.returncode == 0, result.stderr[-2000:]


# --- inputs that used to give a silent wrong answer: now the right one --------------------------
def _windows(shard: Path) -> list[str]:
    from hyena_glt.data.shards import read_manifest, read_table
    from hyena_glt.data.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.from_dict(read_manifest(shard)["tokenizer"])
    return [tokenizer.decode(ids) for ids in read_table(shard)["ref_input_ids"].to_pylist()]


@pytest.mark.parametrize(("edit", "compress"), [("prepend", False), ("rewrap", False),
                                              ("prepend", True), ("rewrap", True)])
def test_a_stale_fai_beside_an_edited_reference_is_not_trusted(tmp_path, edit, compress):
    """An index left from before the edit would cut windows at old lengths or line widths."""
    import os

    import pysam

    def write_reference(sequence: str, width: int) -> Path:
        plain = write(tmp_path / "ref.fa", ">chr1\n" + "\n".join(
            sequence[i:i + width] for i in range(0, len(sequence), width)) + "\n")
        if not compress:
            return plain
        pysam.tabix_compress(str(plain), str(tmp_path / "ref.fa.gz"), force=True)
        return tmp_path / "ref.fa.gz"

    genome = SEQ * 3
    ref = write_reference(genome, 60)
    pysam.faidx(str(ref))
    index = sorted(tmp_path.glob("ref.fa*.[fg][az]i"))
    stale = {path: path.read_bytes() for path in index}
    edited = ("G" * 100 + genome) if edit == "prepend" else genome
    ref = write_reference(edited, 60 if edit == "prepend" else 37)
    for path, content in stale.items():
        path.write_bytes(content)
    os.utime(ref, (1, 1))  # an index that looks newer than the file is checked all the same
    position = len(edited) - 10
    alt = "C" if edited[position - 1] == "A" else "A"
    records = f"chr1\t{position}\t.\t{edited[position - 1]}\t{alt}\t.\t.\t.\n"
    assert main(["ingest", "vcf", "--reference", str(ref), "--vcf", vcf(tmp_path, records),
                 "--window", "16", "--out", str(tmp_path / "out")]) == 0
    start = position - 1 - 8
    assert _windows(tmp_path / "out") == [edited[start:start + 16].ljust(16, "N")]
    assert {path: path.read_bytes() for path in index} == stale  # the user's files stay


def test_numbers_in_exponent_form_and_quoted_numbers_are_read_as_numbers(tmp_path):
    from hyena_glt.config import HyenaGLTConfig

    config = HyenaGLTConfig.from_dict({"learning_rate": "2e-3", "dropout": "0.1",
                                       "batch_size": "1e1", "ngram_sizes": 5})
    assert (config.learning_rate, config.dropout, config.batch_size, config.ngram_sizes) == (
        0.002, 0.1, 10, (5,))
    path = write(tmp_path / "config.json", json.dumps({"dropout": "0.1", "d_model": "64",
                                                        "num_heads": 8}))
    assert HyenaGLTConfig.from_pretrained(path).d_model == 64


def test_na_labels_are_never_a_class(tmp_path, capsys):
    rows = [*balanced(), "ACGT,NA", "ACGA,NaN"]
    assert main(ingest_table(tmp_path, rows)) == 2
    assert "2 row(s) in all" in capsys.readouterr().err


# --- start-up ------------------------------------------------------------------------------------
def test_building_the_parser_imports_no_heavy_module():
    """`hyena-glt --help` must not pay for torch, ONNX Runtime, pandas, sklearn or pysam."""
    code = ("import sys; from hyena_glt.cli import build_parser; build_parser(); "
            "import hyena_glt; hyena_glt.__version__; "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'pandas', 'sklearn', 'pysam') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


def test_the_cli_choice_lists_are_the_packages():
    from hyena_glt.cli import arguments
    from hyena_glt.optimization.deployment import EXPORT_FORMATS
    from hyena_glt.optimization.pruning import PRUNING_TYPES, SCOPES
    from hyena_glt.optimization.quantization import QUANTIZATION_TYPES

    assert arguments.EXPORT_FORMATS == EXPORT_FORMATS
    assert arguments.PRUNING_TYPES == PRUNING_TYPES
    assert arguments.PRUNING_SCOPES == SCOPES
    assert arguments.QUANTIZATION_TYPES == QUANTIZATION_TYPES


def test_the_public_names_stay_importable_from_the_package():
    import hyena_glt

    assert hyena_glt.HyenaGLTConfig().d_model == 512
    assert issubclass(hyena_glt.DataError, ValueError)
    with pytest.raises(AttributeError):
        hyena_glt.NoSuchName  # noqa: B018
