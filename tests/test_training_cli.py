"""``hyena-glt pretrain`` / ``finetune`` / ``register-model``: SIGTERM + resume, registry, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from hyena_glt.cli import main
from hyena_glt.ingest import ingest_fasta, ingest_table
from hyena_glt.model import HyenaGLTForSequenceClassification

GENOME = Path("genome_annotation/sars_cov_2_NC_045512.2/NC_045512.2.fa.gz")
PROMOTERS = Path("genomic_benchmarks/human_nontata_promoters/test.csv.gz")
CONFIG = """\
vocab_size: 64
d_model: 16
n_layers: 2
sequence_length: 128
num_heads: 2
batch_size: 2
learning_rate: 0.005
warmup_steps: 5
dropout: 0.1
curriculum: "32:30s,64:30s"
"""


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def workdir(shared_data, tmp_path_factory) -> Path:
    """SARS-CoV-2 windows, a promoter subset split 3:1, and a model config file."""
    root = tmp_path_factory.mktemp("cli")
    ingest_fasta([shared_data / GENOME], root / "windows", window=128)
    frame = pd.read_csv(shared_data / PROMOTERS).sample(200, random_state=0)
    frame.to_csv(root / "promoters.csv", index=False)
    ingest_table(root / "promoters.csv", root / "promoters", alphabet="dna", split=0.75)
    (root / "model.yaml").write_text(CONFIG)
    return root


@pytest.fixture
def environment(tmp_path) -> dict[str, str]:
    """A private model registry (never the user's ~/.cache) and one torch thread."""
    env = {key: value for key, value in os.environ.items() if key != "HYENA_GLT_MODEL_REGISTRY"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def pretrain_command(workdir: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hyena_glt", "pretrain", "--data", str(workdir / "windows"),
            "--out", str(out), "--config", str(workdir / "model.yaml"), "--threads", "1",
            "--log-steps", "1", *extra]


def test_sigterm_checkpoints_exits_75_and_the_rerun_finishes_identically(workdir, tmp_path,
                                                                         environment):
    assert main(pretrain_command(workdir, tmp_path / "straight")[3:]) == 0  # in-process

    out = tmp_path / "preempted"
    command = pretrain_command(workdir, out, "--save-steps", "1")
    job = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    state = Path(f"{out}.run") / "checkpoints" / "last" / "state.json"
    deadline = time.monotonic() + 120
    while not state.is_file() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    job.send_signal(signal.SIGTERM)
    _, stderr = job.communicate(timeout=120)
    assert job.returncode == 75, stderr
    assert "received SIGTERM" in stderr and "run again with the same output directory" in stderr
    assert not out.exists()  # the model directory appears only when training is complete
    stopped_at = json.loads(state.read_text())["trainer"]["state"]["global_step"]
    assert 1 <= stopped_at < 60

    rerun = subprocess.run(command, env=environment, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed from {state.parent}" in rerun.stderr
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 61))
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "metrics.jsonl", "model.safetensors", "tokenizer.json",
        "training_config.json"]


def test_pretrain_register_then_finetune_by_name(workdir, tmp_path, environment, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", environment["XDG_CACHE_HOME"])
    monkeypatch.delenv("HYENA_GLT_MODEL_REGISTRY", raising=False)
    base = tmp_path / "base"
    assert main(["pretrain", "--data", str(workdir / "windows"), "--out", str(base),
                 "--config", str(workdir / "model.yaml"), "--max-steps", "4",
                 "--register", "tiny-base"]) == 0
    registry = Path(environment["XDG_CACHE_HOME"]) / "hyena_glt" / "models" / "registry.json"
    assert json.loads(registry.read_text()) == {"tiny-base": str(base.resolve())}

    out = tmp_path / "promoter_model"
    assert main(["finetune", "--pretrained", "tiny-base", "--train",
                 str(workdir / "promoters" / "train"), "--val", str(workdir / "promoters" / "test"),
                 "--test", str(workdir / "promoters" / "test"), "--out", str(out),
                 "--task-type", "sequence_classification", "--epochs", "1",
                 "--batch-size", "16", "--strategy", "head_only"]) == 0
    model = HyenaGLTForSequenceClassification.from_pretrained(out)
    assert model.config.num_classes == 2 and model.config.id2label == {0: "0", 1: "1"}
    pretrained = load_file(str(base / "model.safetensors"))
    for key, value in model.backbone.state_dict().items():  # head_only: backbone untouched
        assert torch.equal(value, pretrained[f"backbone.{key}"]), key
    test = json.loads((out / "test_metrics.json").read_text())
    assert test["eval_n_samples"] == 50 and 0 <= test["eval_accuracy"] <= 1
    chosen = model.config.extra["decision_threshold_validation"]  # on --val, as given
    assert (chosen["source"], chosen["unit"], chosen["size"]) == ("validation data",
                                                                   "sequences", 50)
    assert test["eval_decision_threshold"] == model.config.extra["decision_threshold"]
    # A finished run leaves no resume checkpoint, so a rerun with other settings (Snakemake
    # after a config change) trains afresh instead of refusing the old checkpoint.
    assert not (tmp_path / "base.run" / "checkpoints").exists()
    assert (tmp_path / "base.run" / "metrics.jsonl").is_file()
    assert main(["pretrain", "--data", str(workdir / "windows"), "--out", str(base),
                 "--config", str(workdir / "model.yaml"), "--max-steps", "2",
                 "--set", "learning_rate=0.01"]) == 0
    trained = json.loads((base / "training_config.json").read_text())
    assert (trained["state"]["global_step"], trained["learning_rate"]) == (2, 0.01)


def test_user_errors_exit_2_with_one_line(workdir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("HYENA_GLT_MODEL_REGISTRY", raising=False)
    assert main(["finetune", "--pretrained", "no-such-model", "--train",
                 str(workdir / "promoters" / "train"), "--out", str(tmp_path / "x"),
                 "--task-type", "sequence_classification"]) == 2
    error = capsys.readouterr().err
    assert "unknown pretrained model 'no-such-model'" in error
    assert "hyena-glt register-model no-such-model MODEL_DIR" in error
    assert main(["finetune", "--pretrained", "x", "--train", "x", "--out", "x", "--task-type",
                 "token_classification", "--val-fraction", "1"]) == 2
    assert "--val-fraction: 1 is out of range: must be a fraction in [0, 1)" in \
        capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("d_model: 16\nn_layerz: 2\n")
    assert main(["pretrain", "--data", str(workdir / "windows"), "--out", str(tmp_path / "y"),
                 "--config", str(bad)]) == 2
    assert "n_layerz" in capsys.readouterr().err
    assert main(["pretrain", "--data", str(workdir / "promoters" / "train"), "--out",
                 str(tmp_path / "z"), "--config", str(workdir / "model.yaml")]) == 2
    assert "needs a 'windows' shard directory" in capsys.readouterr().err
    assert not (tmp_path / "y").exists() and not (tmp_path / "z").exists()
