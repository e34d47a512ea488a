"""Example-config helpers shared by the workflow tests (test_workflow.py, test_workflow_slurm.py):
config/config.yaml made tiny, sample sheets written from dicts."""

from __future__ import annotations

import copy
import csv
import gzip
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "resources"

#: Optimizer steps of pretraining and fine-tuning.
TRAINING_STEPS = 2

#: Settings that make the example config tiny, applied only where config/config.yaml has the
#: key, so the test keeps working while stages are added. ``pretrain.model`` takes any
#: HyenaGLTConfig field, so its entries are added whenever the section exists.
TINY = {
    "ingest": {"genomes": {"window": 512, "stride": 512}},
    "pretrain": {
        "held_out_genomes": [],
        "curriculum": "512:1",
        "max_steps": TRAINING_STEPS,
        "model": {"d_model": 32, "n_layers": 2, "sequence_length": 512},
    },
    "finetune": {"epochs": 1, "max_steps": TRAINING_STEPS},
    "compress": {"distill": {"steps": 2}, "prune": {"fine_tune_steps": 2}},
    "evaluate": {"cnn_epochs": 1},
}
OPEN_SECTIONS = {("pretrain", "model")}

SARS_COV_2 = {"genome": "sars_cov_2", "fasta": str(RESOURCES / "genomes" / "NC_045512.2.fa.gz")}


def merge_existing(base: dict, overrides: dict, path: tuple[str, ...] = ()) -> dict:
    """``base`` with ``overrides`` deep-merged into the keys it already has (a copy)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if key not in merged and path not in OPEN_SECTIONS:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_existing(merged[key], value, (*path, key))
        else:
            merged[key] = value
    return merged


def fit_resources(config: dict, cpus: int, memory_mb: int) -> dict:
    """Every stage's ``resources`` capped to one node (threads, mem_mb, at most one GPU);
    stages that declare a ``gpu`` get exactly one, so they run as ``sbatch --gpus=1`` jobs."""
    fitted = copy.deepcopy(config)
    for section in fitted.values():
        resources = section.get("resources") if isinstance(section, dict) else None
        if not isinstance(resources, dict):
            continue
        if "threads" in resources:
            resources["threads"] = min(resources["threads"], cpus)
        if "mem_mb" in resources:
            resources["mem_mb"] = min(resources["mem_mb"], memory_mb)
        if "gpu" in resources:
            resources["gpu"] = 1
    return fitted


def write_sheet(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["\t".join(columns)] + [
        "\t".join(str(row.get(column, "")) for column in columns) for row in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


#: Examples per class kept from the promoters table: evaluation of the full 2,000 rows in every
#: fine-tuning, compression and benchmark job would dominate the run.
ROWS_PER_CLASS = 100


def subset_table(source: Path, target: Path, label_column: str) -> Path:
    """The first ``ROWS_PER_CLASS`` rows of each label of a gzipped CSV table, as ``target``."""
    with gzip.open(source, "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        kept, counts = [], {}
        for row in reader:
            label = row[label_column]
            if counts.get(label, 0) < ROWS_PER_CLASS:
                counts[label] = counts.get(label, 0) + 1
                kept.append(row)
        fields = reader.fieldnames
    with gzip.open(target, "wt", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    return target


def promoters_task(directory: Path) -> dict[str, str]:
    """The ``promoters`` row of config/tasks.tsv, reading a per-class subset of its table
    written to ``directory``."""
    header, *rows = [
        line.split("\t")
        for line in (REPO / "config" / "tasks.tsv").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    row = next(dict(zip(header, fields, strict=True)) for fields in rows if fields[0] == "promoters")
    row = {column: value for column, value in row.items() if value != ""}
    source = REPO / row["table"]
    row["table"] = str(subset_table(source, directory / source.name, row["label_column"]))
    return row


def tiny_config(directory: Path, cpus: int, memory_mb: int) -> Path:
    """config/config.yaml made tiny, one genome and the promoters task; returns its path."""
    with open(REPO / "config" / "config.yaml") as handle:
        config = fit_resources(merge_existing(yaml.safe_load(handle), TINY), cpus, memory_mb)
    config["genomes"] = str(write_sheet(directory / "genomes.tsv", [SARS_COV_2]))
    config["tasks"] = str(write_sheet(directory / "tasks.tsv", [promoters_task(directory)]))
    config["predict"] = None  # the example's predictions name the example's tasks
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
