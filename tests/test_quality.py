"""benchmarks/quality.py: the driver end to end in --quick mode on the real data, and its parts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hyena_glt.errors import ConfigurationError, DataError

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import quality  # noqa: E402
from quality_tasks import ROW_FIELDS, SHARED_DATA_ENV, ablations, sequence  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _point_at_shared_data(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHARED_DATA_ENV, str(shared_data))


def test_quick_run_writes_results_and_summary(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "quality"
    command = [sys.executable, str(BENCHMARKS / "quality.py"), "--tasks", "promoters,multiloc",
               "--seeds", "0", "--quick", "--out", str(out), "--shared-data", str(shared_data)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    results = pd.read_csv(out / "results.csv")
    assert tuple(results.columns) == ROW_FIELDS
    assert set(results["task"]) == {"promoters", "multiloc"}
    assert (results["seed"] == 0).all()
    for task, group in results.groupby("task"):
        assert set(group["model"]) == {"hyena_glt", "kmer_logreg", "cnn"}, task
        for model, rows in group.groupby("model"):
            metrics = set(rows["metric"])
            assert {"accuracy", "f1_macro", "auroc"} <= metrics, (task, model)
            primary = "auroc" if task == "promoters" else "f1_macro"  # multiloc: 10 classes
            low, high = (rows.set_index("metric")["value"][f"{primary}_ci_{end}"]
                         for end in ("low", "high"))
            assert low <= rows.set_index("metric")["value"][primary] <= high
            scores = rows[rows["metric"].isin(["accuracy", "f1_macro", "auroc"])]["value"]
            assert scores.between(0, 1).all(), (task, model)
            assert (rows["train_s"] >= 0).all()
        # every model of a task saw the same rows of the fixed split
        assert group["n_train"].nunique() == 1 and group["n_test"].nunique() == 1
        assert 150 <= group["n_train"].iloc[0] <= 250 and 80 <= group["n_test"].iloc[0] <= 120
    hyena = results[(results["model"] == "hyena_glt") & (results["metric"] == "train_tokens_per_s")]
    assert len(hyena) == 2 and (hyena["value"] > 0).all()
    assert (out / "promoters" / "seed0.quick.csv").is_file()
    assert not list(out.glob("*/seed0.csv"))  # quick rows never mix with full runs

    summary = (out / "summary.md").read_text()
    for task in ("promoters", "multiloc"):
        for model in ("hyena_glt", "kmer_logreg", "cnn"):
            assert f"| {task} | {model} | 1 |" in summary
    assert "not comparable" in summary
    assert "python benchmarks/quality.py --tasks multiloc,promoters --seeds 0 --quick" in summary
    assert not list(out.glob(".*tmp*"))  # atomic writes left nothing behind


def test_split_is_fixed_stratified_and_disjoint() -> None:
    task = sequence.TASKS["promoters"]
    frame = sequence.read_table(task.path)
    train, test = sequence.fixed_split(frame)
    again, _ = sequence.fixed_split(frame)
    assert train.sequences == again.sequences  # independent of any training seed
    assert len(train) + len(test) == len(frame) == 9034
    assert len(test) == 2711  # ceil(0.3 * 9034), as in shared/NOTES.md
    assert not set(train.sequences) & set(test.sequences)
    assert abs(train.labels.mean() - test.labels.mean()) < 0.002  # stratified
    assert train.label_names == test.label_names == ["0", "1"]


def test_multiloc_reads_only_sequence_and_label() -> None:
    frame = sequence.read_table(sequence.TASKS["multiloc"].path)
    assert list(frame.columns) == ["sequence", "label"]  # signal_type leaks the label
    train, test = sequence.fixed_split(frame, quick=True)
    assert len(train.label_names) == 11 and "mitochondrial" in train.label_names
    assert set(np.unique(train.labels)) <= set(range(11))


def test_read_table_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("sequence,label\nACGT,1\n,0\n")
    with pytest.raises(DataError, match=r"line 3") as info:
        sequence.read_table(path)
    assert str(path) in str(info.value)
    path.write_text("seq,label\nACGT,1\n")
    with pytest.raises(DataError, match="'sequence' and 'label'"):
        sequence.read_table(path)


def test_train_fraction_is_a_stratified_subset() -> None:
    labels = np.array([0] * 60 + [1] * 40)
    split = sequence.Split([f"s{i}" for i in range(100)], labels, ["0", "1"])
    part = ablations.train_fraction(split, 0.3)
    assert len(part) == 30 and int(part.labels.sum()) == 12
    assert set(part.sequences) <= set(split.sequences)
    assert ablations.train_fraction(split, 1.0) is split


def test_merging_ablation_trains_both_arms_on_the_same_rows(tmp_path: Path) -> None:
    rows = pd.DataFrame(ablations.merging("multiloc", 0, True, tmp_path))
    assert set(rows["task"]) == {"multiloc_merging"}
    assert set(rows["model"]) == {"merging_on", "merging_off"}
    speed = rows[rows["metric"] == "train_tokens_per_s"]
    assert len(speed) == 2 and (speed["value"] > 0).all()
    assert rows["n_train"].nunique() == 1 and rows["n_test"].nunique() == 1
    configs = {arm: (tmp_path / "runs" / f"{arm}-seed0" / "model" / "config.json").read_text()
               for arm in ("merging_on", "merging_off")}
    assert '"use_dynamic_merging": true' in configs["merging_on"]
    assert '"use_dynamic_merging": false' in configs["merging_off"]


def test_load_task_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="unknown task 'nope'"):
        quality.load_task("nope")
    monkeypatch.setitem(quality.TASKS, "later", "not_written_yet:run")
    with pytest.raises(ConfigurationError, match=r"quality_tasks/not_written_yet\.py"):
        quality.load_task("later")
    assert quality.main(["--tasks", "nope", "--out", "unused"]) == 2


def test_summary_table_means_and_stds() -> None:
    rows = [{"task": "t", "model": "m", "seed": seed, "metric": "accuracy", "value": value,
             "train_s": 10.0 * (seed + 1), "n_train": 7, "n_test": 3, "note": ""}
            for seed, value in enumerate([0.7, 0.8, 0.9])]
    table = quality.summary_table(pd.DataFrame(rows))
    record = table.iloc[0]
    assert record["seeds"] == 3
    assert record["accuracy"] == "0.800 ± 0.100"
    assert record["AUROC"] == "" and record["train s"] == "20"
    assert record["n train / test"] == "7 / 3"


def test_reproduce_commands_group_tasks_by_seeds(tmp_path: Path) -> None:
    for task, seeds in (("promoters", (0, 1, 2)), ("multiloc", (0,)), ("enhancers", (0,))):
        for seed in seeds:
            (tmp_path / task).mkdir(exist_ok=True)
            (tmp_path / task / f"seed{seed}.csv").write_text("")
    (tmp_path / "promoters" / "seed5.quick.csv").write_text("")  # another mode: ignored
    assert quality.reproduce_commands(tmp_path, quick=False) == [
        "python benchmarks/quality.py --tasks enhancers,multiloc --seeds 0",
        "python benchmarks/quality.py --tasks promoters --seeds 0,1,2"]
    assert quality.reproduce_commands(tmp_path, quick=True) == [
        "python benchmarks/quality.py --tasks promoters --seeds 5 --quick"]


def test_kmer_path_ablations_train_both_arms(tmp_path: Path) -> None:
    rows = pd.DataFrame(ablations.promoters_kmer_path(0, True, tmp_path))
    assert set(rows["task"]) == {"promoters_kmer_path"}
    assert set(rows["model"]) == {"kmer_path_on", "kmer_path_off"}
    configs = {arm: (tmp_path / "runs" / f"{arm}-seed0" / "model" / "config.json").read_text()
               for arm in ("kmer_path_on", "kmer_path_off")}
    assert '"kmer_path": true' in configs["kmer_path_on"]
    assert '"kmer_path": false' in configs["kmer_path_off"]
    cds_rows = pd.DataFrame(ablations.cds_kmer_path(0, True, tmp_path / "cds"))
    assert set(cds_rows["model"]) == {"kmer_path_on", "kmer_path_off"}
    assert set(cds_rows["task"]) == {"cds_kmer_path"}
