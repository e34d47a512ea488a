"""The workflow's predict stage: the predict sheet drives one `hyena-glt predict` job per row,
checked at DAG time; a job runs for real on the bundled hyena-glt-base."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from workflow_configs import REPO, RESOURCES, SARS_COV_2, write_sheet

BIN = Path(sys.executable).parent
PROMOTER_FASTA = RESOURCES / "promoters" / "example_promoters.fa"
CHLOROPLAST_TASK = {
    "task": "chloroplast_cds", "type": "token_classification",
    "fasta": str(RESOURCES / "genomes" / "NC_000932.1.fa.gz"),
    "annotation": str(RESOURCES / "annotation" / "NC_000932.1.gff3.gz"), "feature": "CDS",
}
BRCA1_TASK = {
    "task": "brca1_lof", "type": "variant_effect", "objective": "classification",
    "table": str(RESOURCES / "variants" / "brca1_sge_variants.csv.gz"),
    "label_column": "label_lof", "chrom": "ref_brca1", "pos_column": "pos_in_ref_brca1",
    "reference": str(RESOURCES / "variants" / "ref_brca1.fa.gz"),
}
SARS_ROW = {"name": "sars", "model": "chloroplast_cds",
            "input": str(RESOURCES / "genomes" / "NC_045512.2.fa.gz"), "kind": "tracks"}
VCF_ROW = {"name": "brca1", "model": "brca1_lof",
           "input": str(RESOURCES / "variants" / "brca1_1kgPhase3_variants.vcf.gz"),
           "kind": "variants", "reference": str(RESOURCES / "variants" / "ref_brca1.fa.gz")}
EMBEDDING_ROW = {"name": "emb", "model": "hyena-glt-base", "input": str(PROMOTER_FASTA),
                 "kind": "embeddings"}


def snakemake(tmp_path: Path, rows: list[dict] | None, *args: str) -> subprocess.CompletedProcess:
    """Run snakemake from the repository root on the example config with our sheets in
    ``tmp_path`` (``rows=None``: no predict sheet at all)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["genomes"] = str(write_sheet(tmp_path / "genomes.tsv", [SARS_COV_2]))
    config["tasks"] = str(write_sheet(tmp_path / "tasks.tsv", [CHLOROPLAST_TASK, BRCA1_TASK]))
    config["pretrain"]["held_out_genomes"] = []
    config["predict"] = str(write_sheet(tmp_path / "predict.tsv", rows)) if rows else None
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(BIN / "snakemake"), "--snakefile", str(REPO / "workflow" / "Snakefile"),
         "--cores", "1", "--configfile", str(path), "--directory", str(tmp_path), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def predict_commands(output: str) -> dict[str, str]:
    commands = [line.removeprefix("Shell command: ") for line in output.splitlines()
                if line.startswith("Shell command: hyena-glt predict ")]
    return {command.split("results/predictions/")[1].split()[0]: command
            for command in commands}


def test_each_row_is_one_predict_job_with_its_model_and_options(tmp_path):
    result = snakemake(tmp_path, [SARS_ROW, VCF_ROW, EMBEDDING_ROW], "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    commands = predict_commands(result.stdout)
    assert set(commands) == {"sars", "brca1", "emb"}
    assert commands["sars"].startswith("hyena-glt predict results/models/finetuned/chloroplast_cds")
    assert "--reference" not in commands["sars"] and "--embeddings" not in commands["sars"]
    # The variant task's model reads the windows it was fine-tuned on (finetune.variant_window).
    assert "results/models/finetuned/brca1_lof" in commands["brca1"]
    assert f"--reference={VCF_ROW['reference']}" in commands["brca1"]
    assert "--window=256" in commands["brca1"]
    assert commands["emb"].startswith("hyena-glt predict hyena-glt-base")
    assert commands["emb"].rstrip().split(" > ")[0].endswith("--embeddings --threads 1")
    # The fine-tuned models are built first; a registered name needs no job.
    assert "rule finetune" in result.stdout


def test_without_a_predict_sheet_nothing_is_predicted(tmp_path):
    result = snakemake(tmp_path, None, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not predict_commands(result.stdout)


def test_bad_rows_stop_before_any_job_naming_the_row(tmp_path):
    cases = [
        ({**SARS_ROW, "model": "brca1_lof"}, "row 'sars': task 'brca1_lof' is a variant_effect"),
        ({**SARS_ROW, "input": str(tmp_path / "missing.fa")}, "file not found"),
        ({k: v for k, v in VCF_ROW.items() if k != "reference"}, "reference"),
        ({**SARS_ROW, "kind": "bigwig"}, "kind"),
    ]
    for row, expected in cases:
        result = snakemake(tmp_path, [row], "--dry-run")
        assert result.returncode != 0
        assert expected in result.stderr + result.stdout, result.stderr


def test_the_embeddings_job_runs(tmp_path):
    result = snakemake(tmp_path, [EMBEDDING_ROW], "results/predictions/emb")
    assert result.returncode == 0, result.stdout + result.stderr
    frame = pd.read_parquet(tmp_path / "results" / "predictions" / "emb" / "embeddings.parquet")
    assert len(frame) == 8 and frame["id"].str.startswith("row").all()
    assert "wrote" in (tmp_path / "logs" / "predict" / "emb.log").read_text()
    assert (tmp_path / "results" / "benchmarks" / "predict" / "emb.tsv").is_file()
