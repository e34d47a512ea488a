"""The decision threshold of binary heads: chosen on the validation part at fine-tuning time,
stored in config.json, and used by the metrics, the trainer's evaluation and predict."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import matthews_corrcoef

from hyena_glt.cli import main
from hyena_glt.config import HyenaGLTConfig
from hyena_glt.data.datasets import GenomeAnnotationDataset, GenomicDataset
from hyena_glt.data.tokenizers import DNATokenizer
from hyena_glt.errors import ConfigurationError
from hyena_glt.evaluation.metrics import GenomicMetrics, decide, stored_threshold
from hyena_glt.model import HyenaGLTForCausalLM, HyenaGLTForTokenClassification
from hyena_glt.training import FineTuner, seed_everything
from hyena_glt.training.batching import eval_batches
from hyena_glt.training.threshold import (
    best_mcc_threshold,
    binary_probabilities,
    carve_validation,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LENGTH = 64


def imbalanced_bases(count: int, seed: int) -> pd.DataFrame:
    """Windows where 82% of bases are features: P(feature) is 0.9 at A/C/G but 0.6 at T, so
    calling at 0.5 makes every base a feature (MCC 0), while calling T "other" gives MCC 0.34."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        bases = rng.choice(list("ACGT"), LENGTH)
        labels = rng.random(LENGTH) < np.where(bases == "T", 0.6, 0.9)
        rows.append({"sequence": "".join(bases), "labels": "".join(map(str, labels.astype(int)))})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    seed_everything(0)
    config = HyenaGLTConfig(vocab_size=64, d_model=16, n_layers=2, sequence_length=LENGTH,
                            num_heads=2, alphabet_size=22, batch_size=8, num_epochs=1,
                            learning_rate=1e-2, warmup_steps=1, dropout=0.0,
                            use_dynamic_merging=False, local_decoder_layers=0)
    out = tmp_path_factory.mktemp("pretrained") / "lm"
    HyenaGLTForCausalLM(config).save_pretrained(out, tokenizer=DNATokenizer(vocab_size=64))
    return out


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bases")
    paths = {"train": root / "train.csv", "test": root / "test.csv"}
    imbalanced_bases(60, seed=1).to_csv(paths["train"], index=False)
    imbalanced_bases(30, seed=2).to_csv(paths["test"], index=False)
    return paths


@pytest.fixture(scope="module")
def finetuned(pretrained, tables, tmp_path_factory) -> Path:
    """``hyena-glt finetune`` of a per-base head without --val (10% of windows held out)."""
    out = tmp_path_factory.mktemp("finetuned") / "cds"
    assert main(["-q", "finetune", "--pretrained", str(pretrained), "--train",
                 str(tables["train"]), "--test", str(tables["test"]), "--task-type",
                 "token_classification", "--epochs", "3", "--head-lr", "3e-2",
                 "--val-fraction", "0.1", "--out", str(out),
                 # the signal here is each base's letter alone: no reading frames to count
                 "--set=kmer_path=False"]) == 0
    return out


def _probabilities(model: torch.nn.Module, dataset) -> tuple[np.ndarray, np.ndarray]:
    batches = eval_batches(dataset, batch_size=8, max_length=None, pad_token_id=0,
                           num_workers=0)
    return binary_probabilities(model, batches, torch.device("cpu"), contextlib.nullcontext)


# --- choosing ------------------------------------------------------------------------------


def test_best_mcc_threshold_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    target = (rng.random(500) < 0.7).astype(int)
    probability = np.round(np.clip(0.55 + 0.25 * target + rng.normal(0, 0.2, 500), 0, 1), 2)
    threshold = best_mcc_threshold(probability, target)
    best = max(matthews_corrcoef(target, decide(probability, cut))
               for cut in np.unique(probability))
    assert matthews_corrcoef(target, decide(probability, threshold)) == pytest.approx(best)
    assert best > matthews_corrcoef(target, decide(probability))  # 0.5 is not the best cut
    assert best_mcc_threshold(np.array([0.2, 0.9]), np.array([0, 1])) == pytest.approx(0.55)


def test_validation_parts_are_whole_windows_or_stratified_and_seeded(tables):
    windows = GenomeAnnotationDataset(tables["train"], max_length=None, padding=None)
    train, val = carve_validation(windows, 0.1, seed=3, stratify=False)
    assert len(val) == 6 and len(train) == 54
    assert not set(train.indices) & set(val.indices)
    assert val.indices == carve_validation(windows, 0.1, seed=3, stratify=False)[1].indices
    assert val.indices != carve_validation(windows, 0.1, seed=4, stratify=False)[1].indices

    labels = [0] * 80 + [1] * 20
    table = GenomicDataset(sequences=["ACGT"] * 100, labels=labels, max_length=None,
                           padding=None)
    train, val = carve_validation(table, 0.1, seed=0, stratify=True)
    assert sorted(val.labels.tolist()) == [0] * 8 + [1] * 2  # each class's 10%
    assert len(train.labels) == 90 and train.id2label == table.id2label
    with pytest.raises(ConfigurationError, match="--val-fraction"):
        carve_validation(table, 1.0, seed=0, stratify=True)


def test_the_threshold_is_chosen_on_the_held_out_windows_and_beats_0_5_on_test_data(
        finetuned, tables):
    model = HyenaGLTForTokenClassification.from_pretrained(finetuned)  # round trip
    extra = model.config.extra
    threshold = stored_threshold(model.config)
    assert threshold is not None and 0.5 < threshold < 1
    assert extra["decision_threshold_metric"] == "mcc"
    validation = extra["decision_threshold_validation"]
    assert validation["unit"] == "bases" and validation["size"] == 6 * LENGTH  # 6 of 60 windows
    assert "0.1 of the training windows" in validation["source"]
    assert validation["mcc_at_threshold"] > validation["mcc_at_0.5"]

    windows = GenomeAnnotationDataset(tables["train"], max_length=None, padding=None)
    _, val = carve_validation(windows, 0.1, seed=model.config.seed, stratify=False)
    probability, target = _probabilities(model, val)
    assert threshold == pytest.approx(best_mcc_threshold(probability, target))

    test = GenomeAnnotationDataset(tables["test"], max_length=None, padding=None)
    probability, target = _probabilities(model, test)
    assert decide(probability).mean() > 0.95  # at 0.5 (almost) every base is a feature
    at_half = matthews_corrcoef(target, decide(probability))
    at_threshold = matthews_corrcoef(target, decide(probability, threshold))
    assert at_threshold > at_half + 0.15


# --- using ---------------------------------------------------------------------------------


def test_metrics_use_the_threshold_for_calls_but_not_for_ranking():
    target = np.array([0, 0, 1, 1, 1])
    probability = np.array([0.55, 0.6, 0.7, 0.8, 0.9])
    scores = np.stack([1 - probability, probability], axis=1)
    plain = GenomicMetrics().classification(scores, target)
    tuned = GenomicMetrics().classification(scores, target, decision_threshold=0.65)
    assert plain["accuracy"] == pytest.approx(0.6) and tuned["accuracy"] == 1.0
    assert tuned["mcc"] == 1.0 and tuned["decision_threshold"] == 0.65
    assert tuned["auroc"] == plain["auroc"] and tuned["auprc"] == plain["auprc"]
    logits = np.log(scores)  # the same calls from logits
    assert GenomicMetrics().classification(logits, target, decision_threshold=0.65)["mcc"] == 1.0
    tokens = GenomicMetrics().token_classification(scores[None], target[None],
                                                   decision_threshold=0.65)
    assert tokens["mcc"] == 1.0
    with pytest.raises(ConfigurationError, match="binary scores"):
        GenomicMetrics().classification(np.eye(3)[[0, 1, 2]], np.array([0, 1, 2]),
                                        decision_threshold=0.65)


def test_test_metrics_of_finetune_use_the_stored_threshold(finetuned):
    metrics = json.loads((finetuned / "test_metrics.json").read_text())
    threshold = stored_threshold(HyenaGLTForTokenClassification.from_pretrained(finetuned).config)
    assert metrics["eval_decision_threshold"] == pytest.approx(threshold)


def test_predict_features_use_the_stored_threshold(finetuned, tables, tmp_path, write_fasta):
    frame = pd.read_csv(tables["test"])
    fasta = write_fasta([(f"w{i}", seq) for i, seq in enumerate(frame["sequence"][:5])])
    out = tmp_path / "pred"
    assert main(["-q", "predict", str(finetuned), str(fasta), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    threshold = stored_threshold(HyenaGLTForTokenClassification.from_pretrained(finetuned).config)
    assert summary["threshold"] == pytest.approx(threshold)
    assert "stored" in summary["threshold_source"]
    features = [line for line in (out / "features.bed").read_text().splitlines()
                if not line.startswith("track")]
    covered = sum(int(line.split("\t")[2]) - int(line.split("\t")[1]) for line in features)
    assert 0 < covered < 0.95 * 5 * LENGTH  # T bases fall outside the features


def test_no_threshold_without_a_validation_part(pretrained, tables, tmp_path):
    windows = GenomeAnnotationDataset(tables["train"], max_length=None, padding=None)
    finetuner = FineTuner(pretrained, task_type="token_classification", num_classes=2)
    model = finetuner.finetune(torch.utils.data.Subset(windows, range(8)), num_epochs=1,
                               val_fraction=0, output_dir=tmp_path / "run")
    assert stored_threshold(model.config) is None
    with pytest.raises(ConfigurationError, match="--val-fraction"):
        finetuner.finetune(windows, val_fraction=1.5, output_dir=tmp_path / "bad")


def test_a_binary_sequence_table_holds_out_a_stratified_part(pretrained, tmp_path):
    rng = np.random.default_rng(5)
    sequences = ["".join(rng.choice(list("ACGT"), 32)) for _ in range(100)]
    labels = [int(seq.count("A") > 9) for seq in sequences]
    table = GenomicDataset(sequences=sequences, labels=labels, max_length=None, padding=None)
    finetuner = FineTuner(pretrained, task_type="sequence_classification", num_classes=2)
    model = finetuner.finetune(table, num_epochs=1, val_fraction=0.1,
                               output_dir=tmp_path / "run")
    validation = model.config.extra["decision_threshold_validation"]
    held = carve_validation(table, 0.1, seed=0, stratify=True)[1]
    assert validation["unit"] == "sequences" and validation["size"] == len(held) == 10
    assert finetuner.trainer.evaluate(held)["eval_decision_threshold"] == \
        model.config.extra["decision_threshold"]


def test_fine_tuning_from_a_thresholded_model_drops_its_threshold(finetuned):
    finetuner = FineTuner(finetuned, task_type="token_classification", num_classes=2)
    assert not any(key.startswith("decision_threshold") for key in finetuner.config.extra)
    assert stored_threshold(finetuner.model.config) is None


def annotation_shards(table: Path, out: Path) -> Path:
    """The windows of a per-base table as an "annotation" shard directory."""
    from hyena_glt.data.shards import ShardWriter

    tokenizer = DNATokenizer()
    with ShardWriter(out, "annotation", tokenizer) as writer:
        for number, row in pd.read_csv(table, dtype=str).iterrows():
            writer.write({"id": f"w{number}", "input_ids": tokenizer.encode_array(row.sequence),
                          "labels": np.array(list(row.labels), dtype=np.int8),
                          "record_id": f"w{number}", "start": 0, "end": LENGTH, "strand": "+"})
    return out


def test_evaluate_calls_bases_at_the_stored_threshold(finetuned, tables, tmp_path):
    shards = annotation_shards(tables["test"], tmp_path / "test")
    assert main(["-q", "evaluate", "--model", str(finetuned), "--data", str(shards), "--out",
                 str(tmp_path / "metrics.json")]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    model = HyenaGLTForTokenClassification.from_pretrained(finetuned)
    probability, target = _probabilities(model, GenomeAnnotationDataset(
        tables["test"], max_length=None, padding=None))
    threshold = stored_threshold(model.config)
    assert metrics["decision_threshold"] == pytest.approx(threshold)
    assert metrics["mcc"] == pytest.approx(matthews_corrcoef(target, decide(probability,
                                                                          threshold)), abs=1e-6)
    assert metrics["mcc"] > matthews_corrcoef(target, decide(probability)) + 0.15
