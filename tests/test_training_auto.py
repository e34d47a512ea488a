"""``finetune --auto``: a learning rate that cannot learn in the budget loses to one that can,
the choice is stored with the model, the final model sees every training row, and bad grid
values stop at parsing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hyena_glt.cli import main
from hyena_glt.cli.finetune import AUTO_VAL_FRACTION
from hyena_glt.data.datasets import GenomicDataset
from hyena_glt.data.tokenizers import DNATokenizer
from hyena_glt.errors import ConfigurationError
from hyena_glt.evaluation.metrics import THRESHOLD_KEY
from hyena_glt.model import HyenaGLTForRegression
from hyena_glt.training import FineTuner, TrainingPreempted, auto
from hyena_glt.training.auto import (
    AUTO_KEY,
    DEFAULT_VAL_FRACTION,
    auto_finetune,
    auto_metric,
    learning_rate_grid,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: A rate that cannot move the weights in a few steps, and one that learns these tasks.
FROZEN, SENSIBLE = 1e-7, 1e-2
TOKENIZER = DNATokenizer(vocab_size=64)


@pytest.fixture(scope="module")
def pretrained(tiny_causal_lm) -> Path:
    return tiny_causal_lm(64)


def composition(n: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """48-nt sequences of random GC content: ``(sequences, GC-rich class, scaled GC)``."""
    rng = np.random.default_rng(seed)
    gc = rng.uniform(0.2, 0.8, n)
    gc[: n // 2] = np.clip(gc[: n // 2] + 0.1, 0, 1)  # the first half is the GC-rich class
    sequences = ["".join(rng.choice(list("ACGT"), 48, p=[(1 - g) / 2, g / 2, g / 2, (1 - g) / 2]))
                 for g in gc]
    fraction = np.array([(s.count("G") + s.count("C")) / len(s) for s in sequences])
    return sequences, (np.arange(n) < n // 2).astype(int), 4 * (fraction - 0.5)


def dataset(sequences: list[str], labels: np.ndarray) -> GenomicDataset:
    return GenomicDataset(sequences=sequences, labels=labels.tolist(), tokenizer=TOKENIZER,
                          max_length=None, padding=None)


def quiet() -> dict:
    return {"show_progress": False, "log_steps": 1000}


def test_the_rate_that_learns_is_chosen_and_the_final_model_sees_every_row(pretrained,
                                                                          tmp_path):
    """Regression of GC content: at 1e-7 the head stays where it started, so its validation
    loss cannot beat the one trained at 1e-2, whatever the random start."""
    sequences, _, gc = composition(120, seed=0)
    train = dataset(sequences, gc.astype(np.float32))
    finetuner = FineTuner(pretrained, task_type="regression", backbone_lr=SENSIBLE,
                          head_lr=SENSIBLE, seed=0)
    tuned = auto_finetune(finetuner, train, num_epochs=3, learning_rates=[SENSIBLE, FROZEN],
                          output_dir=tmp_path / "run", model_dir=tmp_path / "model", **quiet())

    record = tuned.model.config.extra[AUTO_KEY]
    assert record["metric"] == "eval_loss" and record["greater_is_better"] is False
    frozen, sensible = record["candidates"]  # lowest rate first
    assert (frozen["learning_rate"], sensible["learning_rate"]) == (FROZEN, SENSIBLE)
    assert len(sensible["scores"]) == 3 and sensible["score"] == min(sensible["scores"])
    assert sensible["score"] < 0.5 * frozen["score"]
    assert record["chosen"] == {"learning_rate": SENSIBLE, "head_lr": SENSIBLE,
                                "epochs": sensible["best_epoch"], "score": sensible["score"]}
    # Candidates saw 85% of the rows; the final model all of them, for the chosen epochs.
    assert record["validation"]["size"] == round(DEFAULT_VAL_FRACTION * 120)
    assert record["train_examples"] + record["validation"]["size"] == 120
    assert record["final"] == {"retrained": True, "train_examples": 120,
                               "epochs": sensible["best_epoch"]}
    assert tuned.trainer is not None and tuned.trainer.config.num_epochs == sensible["best_epoch"]

    reloaded = HyenaGLTForRegression.from_pretrained(tmp_path / "model")
    assert reloaded.config.extra[AUTO_KEY] == json.loads(json.dumps(record))
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [
        "checkpoints", "metrics.jsonl"]  # no candidate folders, no saved choice


def test_with_validation_data_the_best_candidates_weights_are_kept(pretrained, tmp_path):
    sequences, classes, _ = composition(100, seed=1)
    train, val = dataset(sequences[::2], classes[::2]), dataset(sequences[1::2], classes[1::2])
    finetuner = FineTuner(pretrained, num_classes=2, backbone_lr=SENSIBLE, head_lr=SENSIBLE)
    tuned = auto_finetune(finetuner, train, val, num_epochs=2, learning_rates=[SENSIBLE],
                          output_dir=tmp_path / "run", model_dir=tmp_path / "model", **quiet())

    record = tuned.model.config.extra[AUTO_KEY]
    assert record["metric"] == "eval_auroc"
    assert record["validation"] == {"source": "validation data", "size": 50}
    assert record["final"] == {"retrained": False, "train_examples": 50,
                               "epochs": record["chosen"]["epochs"]}
    assert tuned.trainer is not None
    assert tuned.trainer.evaluate(val)["eval_auroc"] == pytest.approx(record["chosen"]["score"])
    assert THRESHOLD_KEY in tuned.model.config.extra  # chosen on the validation data
    assert not (tmp_path / "run").exists()  # the candidate ran in run/auto/, now removed
    saved = json.loads((tmp_path / "model" / "config.json").read_text())["extra"]
    assert saved[AUTO_KEY]["chosen"] == record["chosen"]


def test_a_validation_part_of_one_class_is_scored_by_loss_not_auroc(pretrained, tmp_path):
    sequences, classes, _ = composition(40, seed=6)
    one_class = dataset(sequences[:10], classes[:10])  # the first half is all class 1
    tuned = auto_finetune(FineTuner(pretrained, num_classes=2), dataset(sequences, classes),
                          one_class, num_epochs=1, learning_rates=[SENSIBLE],
                          output_dir=tmp_path / "run", **quiet())
    assert tuned.model.config.extra[AUTO_KEY]["metric"] == "eval_loss"


def test_a_diverging_candidate_is_recorded_and_skipped(pretrained, tmp_path):
    sequences, classes, _ = composition(60, seed=2)
    finetuner = FineTuner(pretrained, num_classes=2)
    tuned = auto_finetune(finetuner, dataset(sequences, classes), num_epochs=1,
                          learning_rates=[SENSIBLE, 1e30], output_dir=tmp_path / "run",
                          **quiet())
    good, diverged = tuned.model.config.extra[AUTO_KEY]["candidates"]
    assert "non-finite" in diverged["error"] and "score" not in diverged
    assert tuned.model.config.extra[AUTO_KEY]["chosen"]["learning_rate"] == SENSIBLE


def test_a_preempted_final_training_resumes_without_repeating_the_search(pretrained, tmp_path,
                                                                       monkeypatch, caplog):
    sequences, classes, _ = composition(60, seed=4)
    train, run = dataset(sequences, classes), tmp_path / "run"

    def stop_the_final_training(trainer, event: str) -> None:
        if event == "step_end" and trainer.output_dir == run:
            trainer.request_stop("test")

    settings = dict(num_epochs=2, learning_rates=[FROZEN, SENSIBLE], output_dir=run, **quiet())
    with pytest.raises(TrainingPreempted):
        auto_finetune(FineTuner(pretrained, num_classes=2), train,
                      callbacks=[stop_the_final_training], **settings)
    assert (run / "auto.json").is_file() and not (run / "auto").exists()
    chosen = json.loads((run / "auto.json").read_text())["record"]["chosen"]

    def no_search(*args, **kwargs):
        raise AssertionError("the search ran again")

    monkeypatch.setattr(auto, "_search", no_search)
    with caplog.at_level("INFO", logger="hyena_glt.training.trainer"):
        tuned = auto_finetune(FineTuner(pretrained, num_classes=2), train, **settings)
    assert "resumed from" in caplog.text and "at step 1 " in caplog.text
    assert tuned.model.config.extra[AUTO_KEY]["chosen"] == chosen
    assert not (run / "auto.json").exists()


def test_the_grid_keeps_the_head_to_backbone_ratio_and_the_metric_follows_the_head(pretrained):
    finetuner = FineTuner(pretrained, num_classes=3, backbone_lr=3e-3, head_lr=6e-3)
    assert np.ravel(learning_rate_grid(finetuner)) == pytest.approx(
        [1e-3, 2e-3, 3e-3, 6e-3, 9e-3, 1.8e-2])
    assert np.ravel(learning_rate_grid(finetuner, [1e-2, 1e-4])) == pytest.approx(
        [1e-4, 2e-4, 1e-2, 2e-2])
    assert auto_metric(finetuner) == "eval_accuracy"
    assert auto_metric(FineTuner(pretrained, num_classes=2)) == "eval_auroc"
    assert auto_metric(FineTuner(pretrained, task_type="regression")) == "eval_loss"
    for bad in ([], [1e-3, 1e-3], [0.0], [float("nan")]):
        with pytest.raises(ConfigurationError, match="--auto-lrs"):
            learning_rate_grid(finetuner, bad)
    assert AUTO_VAL_FRACTION == DEFAULT_VAL_FRACTION  # the CLI's copy (no torch in --help)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """Ingested train/test tables of the GC-rich vs AT-rich task."""
    root = tmp_path_factory.mktemp("shards")
    sequences, classes, _ = composition(100, seed=3)
    table = root / "t.csv"
    table.write_text("sequence,label\n" + "".join(f"{s},{c}\n"
                                                  for s, c in zip(sequences, classes, strict=True)))
    assert main(["ingest", "table", str(table), "--alphabet", "dna", "--split", "0.8",
                 "--out", str(root / "data")]) == 0
    return root / "data"


def finetune(pretrained: Path, shards: Path, out: Path, *extra: str) -> list[str]:
    return ["finetune", "--pretrained", str(pretrained), "--train", str(shards / "train"),
            "--task-type", "sequence_classification", "--out", str(out), "--epochs", "2",
            "--threads", "1", *extra]


def test_cli_auto_end_to_end(pretrained, shards, tmp_path):
    out = tmp_path / "model"
    assert main([*finetune(pretrained, shards, out, "--test", str(shards / "test")), "--auto",
                 "--auto-lrs", f"{FROZEN},{SENSIBLE}", "--auto-val-fraction", "0.25"]) == 0
    extra = json.loads((out / "config.json").read_text())["extra"]
    record = extra[AUTO_KEY]
    assert record["metric"] == "eval_auroc"  # --metric unset: --auto's default for 2 classes
    assert [c["learning_rate"] for c in record["candidates"]] == [FROZEN, SENSIBLE]
    assert record["validation"]["size"] == 20 and record["final"]["train_examples"] == 80
    # The retrained binary head keeps the threshold its candidate chose on held-out rows.
    assert "--auto candidate" in extra[f"{THRESHOLD_KEY}_validation"]["source"]
    assert (out / "test_metrics.json").is_file()
    assert sorted(path.name for path in Path(f"{out}.run").iterdir()) == ["metrics.jsonl"]


def test_cli_auto_on_per_base_labels_holds_out_whole_windows(pretrained, tmp_path):
    rng = np.random.default_rng(5)
    genome = "".join(rng.choice(list("ACGT"), 640))
    (tmp_path / "g.fa").write_text(f">chr1\n{genome}\n")
    (tmp_path / "a.gff3").write_text("##gff-version 3\nchr1\tx\tCDS\t101\t400\t.\t+\t0\t"
                                      "ID=c\n")
    shards = tmp_path / "windows"
    assert main(["ingest", "annotation", str(tmp_path / "g.fa"), "--annotation",
                 str(tmp_path / "a.gff3"), "--window", "64", "--out", str(shards)]) == 0
    windows = json.loads((shards / "manifest.json").read_text())["num_rows"]
    out = tmp_path / "model"
    assert main(["finetune", "--pretrained", str(pretrained), "--train", str(shards),
                 "--task-type", "token_classification", "--epochs", "1", "--auto",
                 "--auto-lrs", "1e-3,1e-2", "--out", str(out), "--threads", "1"]) == 0
    record = json.loads((out / "config.json").read_text())["extra"][AUTO_KEY]
    assert record["metric"] == "eval_auroc"
    assert "training windows" in record["validation"]["source"]
    held = record["validation"]["size"]
    assert held == round(DEFAULT_VAL_FRACTION * windows) and record["train_examples"] == \
        windows - held
    assert record["final"]["train_examples"] == windows


@pytest.mark.parametrize(("options", "expected"), [
    (("--auto", "--auto-lrs", "1e-3,abc"), "'abc' is not a number"),
    (("--auto", "--auto-lrs", "1e-3,0"), "must be a number > 0"),
    (("--auto", "--auto-lrs", "1e-3,1e-3"), "repeats a learning rate"),
    (("--auto", "--auto-lrs", ","), "give comma-separated learning rates"),
    (("--auto", "--auto-val-fraction", "1"), "strictly between 0 and 1"),
    (("--auto-lrs", "1e-3,3e-3"), "--auto-lrs only applies with --auto"),
])
def test_bad_auto_values_stop_with_one_line_and_exit_2(pretrained, shards, tmp_path, capsys,
                                                       options, expected):
    out = tmp_path / "results" / "model"
    assert main(finetune(pretrained, shards, out, *options)) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err.splitlines()[-1] and "Traceback" not in err  # one line says why
    assert not (tmp_path / "results").exists()
