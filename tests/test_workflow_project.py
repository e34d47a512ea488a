"""A project folder of one's own, outside the repository: ``hyena-glt init``, the user's sheets
(paths relative to the project, splits the user chooses, a GenBank genome), the workflow run to
the report with ``snakemake -s .../workflow/Snakefile --directory PROJECT``, and the same project
deployed with snakedeploy as a Snakemake ``module``."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_configs import REPO, TINY, fit_resources, merge_existing, write_sheet

from hyena_glt.cli import main

BIN = Path(sys.executable).parent
SNAKEFILE = REPO / "workflow" / "Snakefile"
CHLOROPLAST = "genome_annotation/arabidopsis_chloroplast_NC_000932.1"
SARS_COV_2 = "genome_annotation/sars_cov_2_NC_045512.2"


def snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_init_writes_a_project_that_names_its_commands(tmp_path, capsys):
    project = tmp_path / "proj"
    assert main(["init", str(project)]) == 0
    printed = capsys.readouterr().out
    assert f"cd {project} && snakemake -s {SNAKEFILE} --cores 2" in printed
    assert "--profile profiles/slurm" in printed
    assert (project / "profiles" / "slurm" / "config.yaml").is_file()
    assert (project / "profiles" / "default" / "config.yaml").is_file()
    for sheet in ("genomes.tsv", "tasks.tsv"):
        rows = pd.read_csv(project / "config" / sheet, sep="\t", comment="#", dtype=str)
        for column in ("fasta", "table", "annotation", "reference", "vcf"):
            for value in rows.get(column, pd.Series(dtype=str)).dropna():
                assert Path(value).is_absolute() and Path(value).is_file(), value
    dry = snakemake("-s", str(SNAKEFILE), "--dry-run", "--cores", "2", cwd=project)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert main(["init", str(project)]) == 2  # an existing project is never overwritten
    assert "exists and is not empty" in capsys.readouterr().err


def _two_contig_genome(shared_data: Path, data: Path) -> tuple[Path, Path]:
    """The first 60 kb of the chloroplast and SARS-CoV-2 as one FASTA + GFF3 (two contigs)."""
    records, gff = [], ["##gff-version 3"]
    for folder, name, stem, keep in [(CHLOROPLAST, "NC_000932.1", "NC_000932.1", 60_000),
                                     (SARS_COV_2, "NC_045512.2", "NC_045512.2", 29_903)]:
        sequence = "".join(gzip.open(shared_data / folder / f"{stem}.fa.gz", "rt")
                           .read().splitlines()[1:])[:keep]
        records.append(f">{name}\n{sequence}\n")
        annotation = next((shared_data / folder).glob("*.gff3.gz"))
        for line in gzip.open(annotation, "rt"):
            fields = line.rstrip("\n").split("\t")
            if len(fields) == 9 and fields[2] == "CDS" and int(fields[4]) <= keep:
                gff.append(line.rstrip("\n"))
    fasta, annotation = data / "two_genomes.fa", data / "two_genomes.gff3"
    fasta.write_text("".join(records))
    annotation.write_text("\n".join(gff) + "\n")
    return fasta, annotation


def _my_project(tmp_path: Path, shared_data: Path) -> Path:
    """A project with the user's own files under data/, named relative to the project."""
    project = tmp_path / "my project"  # a space: every path must be quoted
    assert main(["init", str(project)]) == 0
    data = project / "data"
    data.mkdir()
    table = pd.read_csv(shared_data / "genomic_benchmarks" / "human_nontata_promoters"
                        / "test.csv.gz").groupby("label").head(60)
    table["split"] = ["test" if i % 4 == 0 else "train" for i in range(len(table))]
    table.to_csv(data / "promoters.csv", index=False)
    _two_contig_genome(shared_data, data)
    shutil.copy(shared_data / CHLOROPLAST / "NC_000932.1.gb.gz", data / "chloroplast.gb.gz")
    config_path = project / "config" / "config.yaml"
    config = fit_resources(merge_existing(yaml.safe_load(config_path.read_text()), TINY), 2, 8000)
    config["ingest"]["annotation"] = {**config["ingest"]["annotation"], "window": 256,
                                      "stride": 256}
    if "predict" in config:
        config["predict"] = None  # the example's predictions name the example's tasks
    config_path.write_text(yaml.safe_dump(config))
    write_sheet(project / "config" / "genomes.tsv", [
        {"genome": "chloroplast", "fasta": "data/chloroplast.gb.gz", "alphabet": "dna"}])
    write_sheet(project / "config" / "tasks.tsv", [
        {"task": "promoters", "type": "sequence_classification", "table": "data/promoters.csv",
         "sequence_column": "sequence", "label_column": "label", "split_column": "split"},
        {"task": "cds", "type": "token_classification", "fasta": "data/two_genomes.fa",
         "annotation": "data/two_genomes.gff3", "test_contigs": "NC_045512.2"},
    ])
    return project


@pytest.mark.slow
def test_a_project_outside_the_repository_runs_to_the_report(tmp_path, shared_data):
    project = _my_project(tmp_path, shared_data)
    repository_before = sorted(path.name for path in REPO.iterdir())
    result = snakemake("-s", str(SNAKEFILE), "--directory", str(project), "--cores", "2",
                       cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert sorted(path.name for path in REPO.iterdir()) == repository_before

    results = project / "results"
    effective = yaml.safe_load((results / "config.effective.yaml").read_text())
    assert effective["config"]["tasks"] == "config/tasks.tsv"
    assert effective["config"]["ingest"]["annotation"]["window"] == 256
    parts = {}
    for task in ("promoters", "cds"):
        for part in ("train", "test"):
            manifest = results / "ingest" / "tasks" / task / part / "manifest.json"
            parts[task, part] = yaml.safe_load(manifest.read_text())
    assert parts["promoters", "train"]["metadata"]["parameters"]["split_column"] == "split"
    assert (parts["promoters", "train"]["num_rows"], parts["promoters", "test"]["num_rows"]) \
        == (90, 30)
    test_params = parts["cds", "test"]["metadata"]["parameters"]
    assert test_params["test_contigs"] == ["NC_045512.2"]
    assert set(parts["cds", "test"]["metadata"]["segments"]) == {"NC_045512.2"}
    assert set(parts["cds", "train"]["metadata"]["segments"]) == {"NC_000932.1"}
    genome = yaml.safe_load((results / "ingest" / "genomes" / "chloroplast"
                             / "manifest.json").read_text())
    assert genome["num_rows"] > 0  # windows of the GenBank file's sequence

    report = (results / "report" / "hyena_glt_report.html").read_text()
    assert "config.effective.yaml" in report and "split_column" in report


@pytest.mark.slow
def test_snakedeploy_deploys_the_workflow_as_a_module(tmp_path, shared_data):
    project = _my_project(tmp_path, shared_data)
    clone = tmp_path / "hyena-glt"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", "-B", "deploy"], check=True)
    for changed in ("workflow", "config", "profiles"):  # this checkout, committed or not
        shutil.rmtree(clone / changed)
        shutil.copytree(REPO / changed, clone / changed)
    subprocess.run(["git", "-C", str(clone), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "--quiet", "--allow-empty", "-m", "deploy"], check=True)
    deployed = tmp_path / "deployed"
    result = subprocess.run([str(BIN / "snakedeploy"), "deploy-workflow", str(clone),
                             str(deployed), "--branch", "deploy", "--name", "hyena_glt"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    snakefile = deployed / "workflow" / "Snakefile"
    text = snakefile.read_text()
    assert "module hyena_glt:" in text and "use rule * from hyena_glt" in text
    # For a local source, snakedeploy names the module's Snakefile relative to that source.
    snakefile.write_text(text.replace('"workflow/Snakefile"', f'"{clone}/workflow/Snakefile"'))
    shutil.rmtree(deployed / "config")
    shutil.copytree(project / "config", deployed / "config")
    shutil.copytree(project / "data", deployed / "data")
    dry = snakemake("--dry-run", "--cores", "2", cwd=deployed)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert "rule report" in dry.stdout or "report" in dry.stdout
