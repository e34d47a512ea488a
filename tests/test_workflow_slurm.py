"""The workflow on a real SLURM cluster, submitted through the shipped profile profiles/slurm.

Needs a running cluster with a partition ``debug``: `.ci/slurm/start-cluster.sh` starts one on
localhost (one node, one GPU-shaped gres ``gpu:fake:1``, no accounting database) and `.ci/run`
sets ``HYENA_GLT_SLURM_TEST=1`` after it. The SLURM run is skipped unless that variable is 1, and
fails (never skips) when it is 1 but no cluster answers. By hand, as root:

    .ci/slurm/start-cluster.sh
    HYENA_GLT_SLURM_TEST=1 .venv/bin/python -m pytest tests/test_workflow_slurm.py
    .ci/slurm/stop-cluster.sh

Jobs run on this same node in the submitting environment (sbatch --export=ALL), so the
virtualenv's bin folder first on PATH lets them find `hyena-glt`.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_configs import REPO, ROWS_PER_CLASS, tiny_config

BIN = Path(sys.executable).parent
SNAKEFILE = REPO / "workflow" / "Snakefile"
PARTITION = "debug"
#: Wall-clock cap of the SLURM run; on expiry snakemake gets SIGINT and cancels its jobs.
RUN_LIMIT_SECONDS = 1200

SLURM_EXPECTED = os.environ.get("HYENA_GLT_SLURM_TEST") == "1"


def test_tiny_config_is_valid_against_the_workflow_schema(tmp_path):
    """Runs without SLURM: the test's config stays valid as config/config.yaml grows."""
    from snakemake.utils import validate

    config = yaml.safe_load(tiny_config(tmp_path, cpus=2, memory_mb=8000).read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    with gzip.open(tmp_path / "human_nontata_promoters.test_subset2000.csv.gz", "rt") as handle:
        labels = [row["label"] for row in csv.DictReader(handle)]
    assert (labels.count("0"), labels.count("1")) == (ROWS_PER_CLASS, ROWS_PER_CLASS)


def slurm_profile(directory: Path) -> Path:
    """profiles/slurm/config.yaml with the partition filled in and the settings it documents
    for clusters without accounting; returns the profile folder."""
    with open(REPO / "profiles" / "slurm" / "config.yaml") as handle:
        profile = yaml.safe_load(handle)
    resources = profile["default-resources"]
    resources.pop("slurm_account", None)
    resources["slurm_partition"] = PARTITION
    profile["slurm-status-command"] = "squeue"
    profile["slurm-no-account"] = True
    # The first status check comes 40 s after a submission by default; poll sooner here. The
    # plugin falls back to sacct (and hangs) unless MinJobAge >= 3 x this.
    profile["slurm-init-seconds-before-status-checks"] = 5
    folder = directory / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def slurm_command(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture
def slurm_node() -> tuple[int, int]:
    """(CPUs, memory in MB) of the node of partition ``debug``; skips unless a cluster is
    expected, fails when it is expected and does not answer."""
    if not SLURM_EXPECTED:
        pytest.skip("needs HYENA_GLT_SLURM_TEST=1 and a cluster (.ci/slurm/start-cluster.sh)")
    try:
        info = subprocess.run(
            ["sinfo", "-h", "-p", PARTITION, "-o", "%c %m %a"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"HYENA_GLT_SLURM_TEST=1 but SLURM does not answer: {error}")
    fields = info.stdout.split()
    if info.returncode != 0 or len(fields) != 3 or fields[2] != "up":
        pytest.fail(
            f"HYENA_GLT_SLURM_TEST=1 but partition {PARTITION} is not up: "
            f"{info.stdout}{info.stderr}"
        )
    return int(fields[0]), int(fields[1])


def run_snakemake(*args: str) -> tuple[int, str]:
    """Exit status and output of snakemake run from the repository root (so the workflow
    profile profiles/default applies on top of --profile, as for users)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen(
        [str(BIN / "snakemake"), "--snakefile", str(SNAKEFILE), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=RUN_LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # SIGTERM would let running jobs finish first
        output, _ = process.communicate(timeout=120)
        pytest.fail(f"snakemake ran past {RUN_LIMIT_SECONDS} s:\n{output[-5000:]}")
    return process.returncode, output


def scheduled_jobs(
    output: str,
) -> tuple[dict[str, tuple[str, str, dict[str, str]]], list[str], list[str]]:
    """From snakemake's log: snakemake job id -> (rule, threads, resources) of every job it ran ("rule
    X:" blocks), the rules it ran locally ("localrule X:"), and the target rule's input files."""
    jobs, local, target_input = {}, [], []
    for block in re.split(r"\n(?=\[.*\]\n|(?:local)?rule \w+:\n)", output):
        header = re.match(r"(local)?rule (\w+):\n", block)
        if header is None:
            continue
        jobid = re.search(r"^\s+jobid: (\d+)$", block, re.MULTILINE)
        if header.group(1):
            local.append(header.group(2))
            files = re.search(r"^\s+input: (.*)$", block, re.MULTILINE)
            target_input = files.group(1).split(", ") if files else []
        elif jobid:
            listed = re.search(r"^\s+resources: (.*)$", block, re.MULTILINE)
            resources = dict(re.findall(r"(\w+)=([^,]+)", listed.group(1))) if listed else {}
            threads = re.search(r"^\s+threads: (\d+)$", block, re.MULTILINE)
            jobs[jobid.group(1)] = (header.group(2), threads.group(1) if threads else "1", resources)
    return jobs, local, target_input


def slurm_job(slurm_id: str) -> dict[str, str]:
    """`scontrol show job` fields of a job, finished ones included (MinJobAge keeps them in
    slurmctld for 10 minutes)."""
    result = subprocess.run(
        ["scontrol", "show", "job", "--oneliner", slurm_id], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(field.partition("=")[::2] for field in result.stdout.split())


def slurmctld_log() -> str | None:
    """The controller's log (its path from `scontrol show config`), when this user can read it."""
    result = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True)
    path = re.search(r"^SlurmctldLogFile\s*=\s*(\S+)", result.stdout, re.MULTILINE)
    if path is None or not os.access(path.group(1), os.R_OK):
        return None
    return Path(path.group(1)).read_text(errors="replace")


def failure_report(output: str, workdir: Path) -> str:
    """The end of snakemake's output plus the last lines of each failed rule's log."""
    names = []
    for block in output.split("Error in rule ")[1:]:
        logs = re.search(r"^\s+log: (.*?)(?: \(check log|$)", block, re.MULTILINE)
        names += logs.group(1).split(", ") if logs else []
    report = [output[-6000:]]
    for name in dict.fromkeys(names):  # a restarted job names its logs again
        if (workdir / name).is_file():
            tail = (workdir / name).read_text(errors="replace").splitlines()[-25:]
            report.append(f"--- last lines of {name}:\n" + "\n".join(tail))
    return "\n".join(report)


@pytest.mark.slow
def test_the_workflow_runs_every_job_as_a_slurm_job(tmp_path, slurm_node):
    """The default target through the shipped SLURM profile: every job but rule all and the
    local effective_config is an sbatch job that SLURM ran to completion with the rule's
    resources, and the target's inputs exist."""
    cpus, memory_mb = slurm_node
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = tiny_config(workdir, cpus, memory_mb)
    profile = slurm_profile(tmp_path)
    status, output = run_snakemake(
        "--profile", str(profile), "--directory", str(workdir), "--configfile", str(config)
    )
    assert status == 0, failure_report(output, workdir)
    tail = output[-8000:]

    jobs, local, target_input = scheduled_jobs(output)
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output))
    assert jobs, tail
    # nothing but the target rule and the effective config (written from the parsed config,
    # no work for a compute node) ran in this process
    assert sorted(local) == ["all", "effective_config"], tail
    assert set(submitted) == set(jobs), tail

    slurm_ids = [submitted[jobid] for jobid in jobs]
    for jobid, (rule, threads, resources) in jobs.items():
        job = slurm_job(submitted[jobid])
        summary = (rule, threads, resources, job)
        assert (job["JobState"], job["Partition"], job["ExitCode"]) == (
            "COMPLETED",
            PARTITION,
            "0:0",
        ), summary
        assert job["Comment"].startswith(f"rule_{rule}"), summary  # set by the plugin
        # The rule's threads and resources became --cpus-per-task, --mem and --gpus.
        assert job["CPUs/Task"] == threads, summary
        assert f"mem={resources['mem_mb']}M" in job["TRES"].split(","), summary
        gpus = int(resources.get("gpu", 0))
        assert job.get("TresPerJob") == (f"gres:gpu:{gpus}" if gpus else None), summary
    log = slurmctld_log()
    if log is not None:
        for slurm_id in slurm_ids:
            assert f"_slurm_rpc_submit_batch_job: JobId={slurm_id} " in log
            assert f"JobId={slurm_id} WEXITSTATUS 0" in log

    # The target rule's inputs, the workflow's final outputs, exist in the working directory.
    assert target_input, tail
    for path in target_input:
        assert (workdir / path).is_file() and (workdir / path).stat().st_size > 0, path
