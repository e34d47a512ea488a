"""The Snakemake workflow: formatting, lint, dry runs, config checks and a real ingestion run.

Every snakemake call runs in its own process from the repository root (so the workflow profile
profiles/default/ is used as it is by `snakemake --cores 2`), with the virtualenv's bin folder
first on PATH so that the rules find the `hyena-glt` command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_configs import REPO, RESOURCES, SARS_COV_2, tiny_config, write_sheet

BIN = Path(sys.executable).parent
SNAKEFILE = REPO / "workflow" / "Snakefile"


def run_snakemake(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def job_counts(output: str) -> dict[str, int]:
    """Rule name -> job count from the 'Job stats' table snakemake prints before running."""
    table = output.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            break
        counts[fields[0]] = int(fields[1])
    return counts


def shell_commands(output: str, command: str) -> list[str]:
    """The dry run's shell commands (printed by the local profile) that call ``command``."""
    return [
        line.removeprefix("Shell command: ")
        for line in output.splitlines()
        if line.startswith("Shell command: ") and f" {command} " in line
    ]


def example_config() -> dict:
    with open(REPO / "config" / "config.yaml") as handle:
        return yaml.safe_load(handle)


def write_config(directory: Path, config: dict, genomes: list[dict], tasks: list[dict]) -> Path:
    """A config plus its two sheets in ``directory``; returns the config path. Held-out genomes
    missing from ``genomes`` are dropped from the config, and all of them when none would be
    left to pretrain on."""
    names = {genome["genome"] for genome in genomes}
    pretrain = config["pretrain"]
    held_out = [g for g in pretrain["held_out_genomes"] if g in names]
    config = {
        **config,
        "genomes": str(write_sheet(directory / "genomes.tsv", genomes)),
        "tasks": str(write_sheet(directory / "tasks.tsv", tasks)),
        "predict": None,  # the example's predictions name the example's tasks
        "pretrain": {
            **pretrain,
            "held_out_genomes": held_out if set(held_out) != names else [],
        },
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


CHLOROPLAST = {
    "genome": "chloroplast",
    "fasta": str(RESOURCES / "genomes" / "NC_000932.1.fa.gz"),
}
PROMOTERS = {
    "task": "promoters",
    "type": "sequence_classification",
    "table": str(RESOURCES / "promoters" / "human_nontata_promoters.test_subset2000.csv.gz"),
}
SARS_COV_2_CDS = {
    "task": "sars_cov_2_cds",
    "type": "token_classification",
    "fasta": SARS_COV_2["fasta"],
    "annotation": str(RESOURCES / "annotation" / "GCF_009858895.2_ASM985889v3_genomic.gff3.gz"),
}
BRCA1_1KG_AF = {
    "task": "brca1_1kg_af",
    "type": "variant_effect",
    "objective": "regression",
    "vcf": str(RESOURCES / "variants" / "brca1_1kgPhase3_variants.vcf.gz"),
    "label_info": "AF",
    "reference": str(RESOURCES / "variants" / "ref_brca1.fa.gz"),
}
BRCA1_LOF = {
    "task": "brca1_lof",
    "type": "variant_effect",
    "table": str(RESOURCES / "variants" / "brca1_sge_variants.csv.gz"),
    "label_column": "label_lof",
    "chrom": "ref_brca1",
    "pos_column": "pos_in_ref_brca1",
    "reference": str(RESOURCES / "variants" / "ref_brca1.fa.gz"),
}


def test_snakefmt_check():
    result = subprocess.run(
        [str(BIN / "snakefmt"), "--check", "workflow"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint():
    result = run_snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_of_the_default_config_plans_the_whole_chain():
    result = run_snakemake("--dry-run", "--forceall", "--cores", "2")
    assert result.returncode == 0, result.stderr
    genomes = (REPO / "config" / "genomes.tsv").read_text().splitlines()[1:]
    assert len(genomes) == 3
    # promoters (sequence): fine-tuned, compressed 4 ways, benchmarked beside the baselines;
    # chloroplast_cds (token): fine-tuned, evaluated; brca1_lof (variants): a paired head
    # fine-tuned on 256-nt windows, evaluated beside the pretrained LM's zero-shot score; the
    # predict sheet's three rows; the effective config written first.
    assert job_counts(result.stdout) == {
        "ingest_genome": 3,
        "ingest_sequence_task": 1,
        "ingest_annotation_task": 1,
        "ingest_variant_task": 1,
        "pretrain": 1,
        "finetune": 3,
        "quantize": 1,
        "prune": 1,
        "distill": 1,
        "export": 1,
        "benchmark": 1,
        "evaluate": 2,
        "effective_config": 1,
        "report": 1,
        "predict": 3,
        "all": 1,
        "total": 23,
    }
    # The local profile was used: it prints every shell command.
    assert "Using workflow specific profile profiles/default" in result.stderr
    # The held-out genome is validation data, never training data.
    (pretrain,) = shell_commands(result.stdout, "pretrain")
    train, held_out = pretrain.split(" --data ")[1].split(" --val-data ")
    assert "genomes/sars_cov_2" in held_out.split(" --")[0] and "sars_cov_2" not in train
    (variant_finetune,) = [command for command in shell_commands(result.stdout, "finetune")
                           if "--task-type variant_effect" in command]
    assert "--max-length 256" in variant_finetune
    # Per-type settings: the per-base task gets its own epochs and merged overrides.
    finetunes = {command.split("--task-type ")[1].split()[0]: command
                 for command in shell_commands(result.stdout, "finetune")}
    per_base, sequence = finetunes["token_classification"], finetunes["sequence_classification"]
    for option in ("--epochs 20", "--strategy head_only", "--head-lr 0.01",
                   "--set=rc_average=True", "--set=batch_size=8"):
        assert option in per_base
    assert "--set=pooling=attention" in per_base  # merged, not replaced
    assert "--set=batch_size=32" not in per_base  # replaced by the per-type value
    for option in ("--epochs 2", "--strategy full"):
        assert option in sequence
    assert "rc_average" not in sequence and "--head-lr" not in sequence
    (variant_evaluate,) = [command for command in shell_commands(result.stdout, "evaluate")
                           if "brca1_lof" in command]
    assert "--model=finetuned=results/models/finetuned/brca1_lof" in variant_evaluate
    assert "--model=zero_shot_lm=results/models/pretrained" in variant_evaluate
    assert "--max-length 256" in variant_evaluate  # the pair model reads what it trained on
    # Zero-shot scoring averages both strands: the variant windows are written on both.
    assert "--strand-average" in variant_evaluate
    (variant_ingest,) = [c for c in shell_commands(result.stdout, "ingest") if " vcf " in c]
    assert "--reverse-complement" in variant_ingest
    (token_evaluate,) = [command for command in shell_commands(result.stdout, "evaluate")
                         if "chloroplast_cds" in command]
    assert "--strand-average" not in token_evaluate  # a variants-only flag


def test_variant_windows_of_the_forward_strand_only_are_scored_so(tmp_path):
    config = example_config()
    config["ingest"]["variants"] = {**config["ingest"]["variants"], "reverse_complement": False}
    path = write_config(tmp_path, config, [SARS_COV_2], [BRCA1_LOF])
    result = run_snakemake(
        "--dry-run", "--cores", "2", "--configfile", str(path), "--directory", str(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (ingest,) = [c for c in shell_commands(result.stdout, "ingest") if " vcf " in c]
    assert "--reverse-complement" not in ingest
    (evaluate,) = shell_commands(result.stdout, "evaluate")
    assert "--strand-average" not in evaluate and "--model=zero_shot_lm=" in evaluate


def test_training_jobs_ask_for_gpus_and_run_under_torchrun_with_more_than_one(tmp_path):
    config = example_config()
    config["pretrain"]["resources"] = {**config["pretrain"]["resources"], "gpu": 4}
    config["finetune"]["resources"] = {**config["finetune"]["resources"], "gpu": 0}
    path = write_config(tmp_path, config, [SARS_COV_2, CHLOROPLAST], [PROMOTERS])
    result = run_snakemake(
        "--dry-run", "--cores", "2", "--configfile", str(path), "--directory", str(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (pretrain,) = shell_commands(result.stdout, "pretrain")
    assert pretrain.startswith("torchrun --standalone --nproc-per-node 4 -m hyena_glt pretrain")
    (finetune,) = shell_commands(result.stdout, "finetune")
    assert finetune.startswith("hyena-glt finetune")
    resources = re.findall(r"resources: (.*)", result.stdout)
    assert any("gpu=4" in line for line in resources)
    assert sum("gpu=" in line for line in resources) == 1  # ingestion, compression: CPU only


def test_a_named_pretrained_model_skips_pretraining(tmp_path):
    config = example_config()
    config["finetune"]["pretrained"] = "hyena-glt-base"
    path = write_config(tmp_path, config, [SARS_COV_2], [PROMOTERS])
    result = run_snakemake(
        "--dry-run", "--cores", "2", "--configfile", str(path), "--directory", str(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    counts = job_counts(result.stdout)
    assert "pretrain" not in counts and counts["finetune"] == 1
    (finetune,) = shell_commands(result.stdout, "finetune")
    assert "--pretrained hyena-glt-base" in finetune


#: PyPI name -> conda name, where they differ.
CONDA_NAMES = {"torch": "pytorch", "pyBigWig": "pybigwig"}


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!\[ ]", requirement, maxsplit=1)[0] for requirement in requirements}


def conda_packages(path: Path) -> tuple[set[str], list]:
    """Package names of a conda environment file, and its pip section (if any)."""
    with open(path) as handle:
        dependencies = yaml.safe_load(handle)["dependencies"]
    names = requirement_names([d for d in dependencies if isinstance(d, str)])
    pip = [d["pip"] for d in dependencies if isinstance(d, dict)]
    return names, pip


@pytest.mark.parametrize(
    ("environment", "extras"),
    [
        ("environment.yml", ["workflow", "export", "bigwig", "dev"]),
        ("workflow/envs/hyena-glt.yaml", ["export"]),
    ],
)
def test_conda_environments_list_the_dependencies_of_pyproject(environment, extras):
    """The conda environment files and pyproject.toml must not drift apart."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += [r for r in project["optional-dependencies"][extra] if "hyena-glt" not in r]
    listed, pip = conda_packages(REPO / environment)
    missing = {CONDA_NAMES.get(name, name) for name in requirement_names(requirements)} - listed
    assert not missing, f"{environment} lacks {sorted(missing)}"
    if environment == "environment.yml":
        assert pip == [["-e ."]]  # the package itself, editable


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        (
            ("ingest", "variants", "on_ref_mismatch"),
            "warn",
            "'warn' is not one of ['error', 'skip']",
        ),
        (("ingest", "genomes", "window"), 0, "On instance['ingest']['genomes']['window']"),
        (("unknown_setting",), 1, "'unknown_setting' was unexpected"),
        (("pretrain", "curriculum"), "1024-2048", "On instance['pretrain']['curriculum']"),
        (
            ("pretrain", "held_out_genomes"),
            ["sars_cov_2", "no_such_genome"],
            "pretrain.held_out_genomes: 'no_such_genome' is not a genome of",
        ),
        (
            ("pretrain", "held_out_genomes"),
            ["sars_cov_2"],
            "pretrain.held_out_genomes holds every genome",
        ),
        (("compress", "methods"), ["zip"], "'zip' is not one of"),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_field(tmp_path, field, value, named):
    config = example_config()
    parent = config
    for key in field[:-1]:
        parent = parent[key]
    parent[field[-1]] = value
    path = write_config(tmp_path, config, [SARS_COV_2], [PROMOTERS])
    if field[-1] == "held_out_genomes":  # keep the names write_config would drop
        written = yaml.safe_load(path.read_text())
        written["pretrain"]["held_out_genomes"] = value
        path.write_text(yaml.safe_dump(written))
    result = run_snakemake(
        "--dry-run", "--cores", "1", "--configfile", str(path), "--directory", str(tmp_path)
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert named in output
    assert "Building DAG" not in output


@pytest.mark.parametrize(
    ("genomes", "tasks", "named"),
    [
        (
            [{**SARS_COV_2, "fasta": "missing/genome.fa.gz"}],
            [PROMOTERS],
            "genomes.tsv, line 2 (genome 'sars_cov_2'): column 'fasta': "
            "file not found: missing/genome.fa.gz",
        ),
        (
            [SARS_COV_2],
            [PROMOTERS, {k: v for k, v in SARS_COV_2_CDS.items() if k != "annotation"}],
            "tasks.tsv, line 3 (task 'sars_cov_2_cds'): 'annotation' is a required property",
        ),
        (
            [SARS_COV_2],
            [{**PROMOTERS, "test_fraction": "most"}],
            "tasks.tsv, line 2 (task 'promoters'): column 'test_fraction': "
            "'most' is not of type 'number'",
        ),
        (
            [SARS_COV_2, SARS_COV_2],
            [PROMOTERS],
            "genomes.tsv: column 'genome': duplicate names ['sars_cov_2']",
        ),
    ],
)
def test_bad_sheet_fails_before_any_job_naming_the_problem(tmp_path, genomes, tasks, named):
    path = write_config(tmp_path, example_config(), genomes, tasks)
    result = run_snakemake(
        "--dry-run", "--cores", "1", "--configfile", str(path), "--directory", str(tmp_path)
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert named in output
    assert "Building DAG" not in output


def read_manifest(path: Path) -> dict:
    with open(path) as handle:
        return json.load(handle)


@pytest.mark.slow
def test_ingestion_runs_on_the_example_data(tmp_path):
    """Every ingestion rule runs for real on the bundled inputs; the shards' manifests show the
    config's settings reached the CLI; a re-run has nothing to do, and a genome added to the
    sheet schedules only its own ingestion."""
    config = example_config()
    config["ingest"]["annotation"] = {
        **config["ingest"]["annotation"],
        "window": 512,
        "stride": 512,
    }
    config["ingest"]["variants"] = {**config["ingest"]["variants"], "window": 128}
    tasks = [PROMOTERS, SARS_COV_2_CDS, BRCA1_LOF, BRCA1_1KG_AF]
    path = write_config(tmp_path, config, [SARS_COV_2], tasks)
    in_tmp = ("ingest", "--cores", "2", "--configfile", str(path), "--directory", str(tmp_path))
    result = run_snakemake(*in_tmp)
    assert result.returncode == 0, result.stdout + result.stderr

    results = tmp_path / "results" / "ingest"
    genome = read_manifest(results / "genomes" / "sars_cov_2" / "manifest.json")
    # 29,903 bp: full windows of the example's length (stride = window), each also
    # reverse-complemented.
    window = config["ingest"]["genomes"]["window"]
    assert config["ingest"]["genomes"]["stride"] == window
    assert (genome["kind"], genome["num_rows"]) == ("windows", 2 * (29_903 // window))
    assert genome["metadata"]["parameters"]["reverse_complement"] is True

    train = read_manifest(results / "tasks" / "promoters" / "train" / "manifest.json")
    test = read_manifest(results / "tasks" / "promoters" / "test" / "manifest.json")
    assert (train["kind"], train["num_rows"], test["num_rows"]) == ("table", 1_600, 400)
    assert train["labels"] == ["0", "1"]
    assert (train["metadata"]["parameters"]["split"], train["metadata"]["parameters"]["seed"]) == (
        0.8,
        0,
    )

    def parts(task: str) -> tuple[dict, dict]:
        return tuple(
            read_manifest(results / "tasks" / task / split / "manifest.json")
            for split in ("train", "test")
        )

    # Annotation: split by genomic position into 512-bp blocks, each one window.
    train, test = parts("sars_cov_2_cds")
    assert train["kind"] == test["kind"] == "annotation"
    assert 29_903 // 512 - 2 <= train["num_rows"] + test["num_rows"] <= 29_903 // 512
    assert 0.7 < train["num_rows"] / (train["num_rows"] + test["num_rows"]) < 0.9
    assert train["metadata"]["parameters"]["feature"] == ["CDS"]
    assert test["metadata"]["parameters"]["duplicate_threshold"] == 0.5

    # Variants: split by position bins; every labelled variant lands in one part.
    train, test = parts("brca1_lof")
    assert (train["kind"], train["num_rows"] + test["num_rows"]) == ("variants", 3_893)
    assert train["metadata"]["parameters"]["window"] == 128
    # 2,052 VCF records: multi-allelic ones split (2,058 alleles), the one symbolic SV skipped.
    train, test = parts("brca1_1kg_af")
    assert train["num_rows"] + test["num_rows"] == 2_057

    # The CLI's log lines went to the rule's log file.
    log = (tmp_path / "logs/ingest/genomes/sars_cov_2.log").read_text()
    assert "results/ingest/genomes/sars_cov_2" in log
    assert (tmp_path / "results/benchmarks/ingest/genomes/sars_cov_2.tsv").exists()

    again = run_snakemake("--dry-run", *in_tmp)
    assert "Nothing to be done" in again.stdout + again.stderr
    write_config(tmp_path, config, [SARS_COV_2, CHLOROPLAST], tasks)
    added = run_snakemake("--dry-run", *in_tmp)
    assert added.returncode == 0, added.stdout + added.stderr
    assert job_counts(added.stdout) == {"ingest_genome": 1, "ingest": 1, "total": 2}


def test_profiles_resolve_as_documented(monkeypatch):
    """profiles/default is picked up from the repository root and does not override the SLURM
    profile (Snakemake applies the workflow profile on top of --profile)."""
    from snakemake.cli import parse_args

    monkeypatch.chdir(REPO)
    _, local = parse_args(["--cores", "2", "--dry-run"])
    assert (local.cores, local.printshellcmds, local.rerun_incomplete) == (2, True, True)
    assert local.executor is None

    _, slurm = parse_args(["--profile", "profiles/slurm", "--dry-run"])
    assert slurm.executor == "slurm"
    assert (slurm.jobs, slurm.latency_wait, slurm.keep_going, slurm.retries) == (
        20,
        60,
        True,
        1,
    )
    assert slurm.cores is None  # no cap on the cores of all jobs together
    assert {name: slurm.default_resources[name].value for name in ("mem_mb", "runtime")} == {
        "mem_mb": 4000,
        "runtime": 60,
    }


@pytest.mark.slow
def test_a_failing_job_leaves_its_error_in_its_log_and_no_output(tmp_path):
    # A wrong column name now stops the DAG (tests/test_bad_inputs.py); a bad character in a
    # sequence is only found by the ingest job, which reads every row.
    table = tmp_path / "bad.csv"
    table.write_text("sequence,label\n" + "".join(f"ACGTACGT,{i % 2}\n" for i in range(20))
                     + "ACJTACGT,1\n")
    bad_column = {**PROMOTERS, "table": str(table)}
    path = write_config(tmp_path, example_config(), [SARS_COV_2], [bad_column])
    result = run_snakemake(
        "--cores",
        "1",
        "results/ingest/tasks/promoters/train/manifest.json",
        "--configfile",
        str(path),
        "--directory",
        str(tmp_path),
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "logs/ingest/tasks/promoters.log" in output
    log = (tmp_path / "logs" / "ingest" / "tasks" / "promoters.log").read_text()
    assert "invalid DNA character 'J'" in log and "bad.csv: line 22" in log
    assert not list((tmp_path / "results" / "ingest" / "tasks").rglob("manifest.json"))


@pytest.mark.slow
def test_the_whole_chain_runs_locally_on_a_tiny_config(tmp_path):
    """Every stage runs for real on all three kinds of task (tiny model, two training steps):
    the report names each task, model and baseline; a second run has nothing to do."""
    path = tiny_config(tmp_path, cpus=2, memory_mb=8000)
    config = yaml.safe_load(path.read_text())
    config["ingest"]["annotation"] = {**config["ingest"]["annotation"], "window": 256, "stride": 256}
    config["ingest"]["variants"] = {**config["ingest"]["variants"], "window": 64}
    header, promoters = Path(config["tasks"]).read_text().splitlines()
    tasks = [
        dict(zip(header.split("\t"), promoters.split("\t"), strict=True)),
        {
            "task": "chloroplast_cds",
            "type": "token_classification",
            "fasta": str(RESOURCES / "genomes" / "NC_000932.1.fa.gz"),
            "annotation": str(RESOURCES / "annotation" / "NC_000932.1.gff3.gz"),
        },
        BRCA1_LOF,
    ]
    config["tasks"] = str(write_sheet(tmp_path / "tasks.tsv", tasks))
    path.write_text(yaml.safe_dump(config))
    in_tmp = ("--cores", "2", "--configfile", str(path), "--directory", str(tmp_path))
    result = run_snakemake(*in_tmp)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    report = tmp_path / "results" / "report" / "hyena_glt_report.html"
    assert f"Hyena-GLT report: {report}" in result.stdout + result.stderr
    html = report.read_text()
    for name in ("promoters", "chloroplast_cds", "brca1_lof", "finetuned", "quantized",
                 "pruned", "distilled", "onnx", "kmer_baseline", "cnn_baseline", "zero_shot_lm"):
        assert name in html, name
    import pandas as pd

    table = pd.read_parquet(tmp_path / "results" / "evaluate" / "promoters" / "results.parquet")
    assert {"finetuned", "quantized", "onnx", "kmer_baseline"} <= set(table["model"].tolist())
    variants = pd.read_parquet(tmp_path / "results" / "evaluate" / "brca1_lof" / "results.parquet")
    metrics = set(zip(variants["model"], variants["metric"], strict=True))
    assert {("finetuned", "auroc"), ("zero_shot_lm", "zero_shot_auroc")} <= metrics
    assert (tmp_path / "results" / "models" / "pretrained" / "metrics.jsonl").is_file()
    again = run_snakemake("--dry-run", *in_tmp)
    assert "Nothing to be done" in again.stdout + again.stderr
