"""Every script in examples/ runs with ``--quick`` and prints what its docstring promises.

The scripts run as users run them (``python examples/NAME.py --quick``, in a fresh working
directory, with a private model registry so ``hyena-glt-base`` is the bundled model), all
started together with one torch thread each, so the whole file takes about as long as the
slowest example.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Run every example once: name -> (finished process, its output folder)."""
    started = {}
    for name in SCRIPTS:
        work = tmp_path_factory.mktemp(name.removesuffix(".py"))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(work / "cache"),
               "PYTHONUNBUFFERED": "1"}
        env.pop("HYENA_GLT_MODEL_REGISTRY", None)
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), "--quick", "--out", str(work / "out")],
            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started[name] = (process, work / "out")
    finished = {}
    for name, (process, out) in started.items():
        stdout, stderr = process.communicate(timeout=900)
        finished[name] = (subprocess.CompletedProcess(process.args, process.returncode,
                                                      stdout, stderr), out)
    return finished


def output(runs, name: str) -> tuple[str, Path]:
    result, out = runs[name]
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    return result.stdout, out


def metric(stdout: str, key: str) -> float:
    (value,) = re.findall(rf"{key} = ([0-9.]+)", stdout)
    return float(value)


def test_every_api_section_has_an_example():
    assert SCRIPTS == ["01_basic_usage.py", "02_training.py", "03_finetuning.py",
                       "04_evaluation.py", "05_optimization.py", "06_variant_effect.py",
                       "07_token_classification.py"]


def test_basic_usage(runs):
    stdout, _ = output(runs, "01_basic_usage.py")
    assert "input_ids (2, 12) -> logits (2, 10)" in stdout
    probabilities = re.findall(r"P\(class\) = \[(.*)\]", stdout)
    assert len(probabilities) == 2
    for row in probabilities:
        assert sum(float(p) for p in row.split(",")) == pytest.approx(1.0, abs=0.01)


def test_training(runs):
    stdout, out = output(runs, "02_training.py")
    assert "one batch: input_ids (16, 251), labels (16,)" in stdout  # padded to the longest (251 nt)
    assert 0.0 <= metric(stdout, "eval_accuracy") <= 1.0
    assert (out / "training_run" / "model" / "model.safetensors").is_file()
    assert (out / "training_run" / "checkpoints" / "last").is_dir()


def test_finetuning_from_the_bundled_base(runs):
    stdout, out = output(runs, "03_finetuning.py")
    assert re.search(r"'hyena-glt-base' -> .*hyena_glt[/\\]assets[/\\]hyena-glt-base", stdout)
    assert 0.0 <= metric(stdout, "eval_auroc") <= 1.0
    assert (out / "promoter_classifier" / "model.safetensors").is_file()


def test_evaluation(runs):
    stdout, out = output(runs, "04_evaluation.py")
    assert "confusion_matrix" in stdout
    table = pd.read_csv(out / "benchmark_results.csv")
    assert set(table["model"]) == {"hyena-1layer", "hyena-2layer", "kmer-logreg"}
    assert set(table["metric"]) == {"accuracy", "f1_macro", "auroc"}
    assert table["value"].between(0, 1).all()


def test_optimization(runs):
    stdout, _ = output(runs, "05_optimization.py")
    rows = {line.split()[0]: line.split()[1:] for line in stdout.splitlines()
            if line.split() and line.split()[0] in ("original", "quantized", "pruned")}
    size = {name: int(values[0].replace(",", "")) for name, values in rows.items()}
    nonzero = {name: float(values[1]) for name, values in rows.items()}
    assert size["quantized"] < size["original"]
    assert nonzero["original"] > 0.99 and nonzero["pruned"] < 0.75


def test_variant_effect_from_a_vcf(runs):
    stdout, out = output(runs, "06_variant_effect.py")
    scores = pd.read_csv(out / "variant_scores.csv")
    assert 0 < len(scores) <= 64 and scores["delta_ll"].notna().all()
    assert (scores["chrom"] == "ref_brca1").all()
    assert "most negative" in stdout


def test_token_classification_from_fasta_and_gff3(runs):
    stdout, _ = output(runs, "07_token_classification.py")
    assert re.search(r"train: \d+ windows of 256 nt, CDS fraction 0\.\d+", stdout)
    assert 0.0 <= metric(stdout, "eval_accuracy") <= 1.0
    assert re.search(r"predicted [#.]{64}", stdout)
