"""The per-base CDS quality task (benchmarks/quality_tasks/cds.py) on the real genomes."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.fixture(scope="module")
def cds(shared_data):
    return importlib.import_module("quality_tasks.cds")


@pytest.fixture(scope="module")
def tokenizer():
    from hyena_glt.data.tokenizers import DNATokenizer

    return DNATokenizer()


def test_stop_free_runs_by_frame():
    from hyena_glt.evaluation import token_baselines as cds

    # A T G A A A T A A C C C: TGA at 1 (frame 1), TAA at 6 (frame 0)
    codes = np.array(["ACGT".index(c) for c in "ATGAAATAACCC"])
    codons = cds._kmer_codes(codes, 3)
    runs = cds._stop_free_runs(codons, cds._STOPS)
    # frame 0 fences -6, 6, 12: a stop codon closes its run, so bases 0..8 lie in a 12-nt
    # run and 9..11 in a 6-nt one
    assert runs[:, 0].tolist() == [12] * 9 + [6] * 3
    # frame 1 fences -5, 1, 13: bases 0..3 (codons at -2 and 1) -> 6; bases 4..11 -> 12
    assert runs[:, 1].tolist() == [6] * 4 + [12] * 8
    features = cds.base_features(codes + 7, half=4)
    assert features.shape == (12, 103) and np.isfinite(features).all()


def ids_to_text(ids) -> str:
    return "".join("NNNNNNNACGT"[i] if i < 11 else "N" for i in ids.tolist())


def test_within_genome_split_is_the_package_split_without_repeats(cds, tokenizer, tmp_path):
    from hyena_glt.ingest.duplicates import TrainingKmers, canonical_kmers

    train, val, test, note = cds.split_windows("cds_within_chloroplast", 1024, tmp_path,
                                               tokenizer, quick=False)
    _, train_grid, forward = cds.load_windows("chloroplast", 1024, tmp_path, tokenizer, "train")
    _, test_grid, test_forward = cds.load_windows("chloroplast", 1024, tmp_path, tokenizer,
                                                  "test")
    train_part, val_part = set(train_grid[train.indices]), set(train_grid[val.indices])
    test_part = set(test_grid[test.indices])
    assert not (train_part & val_part or train_part & test_part or val_part & test_part)
    assert all(g % cds.VALIDATION_EVERY == 0 for g in val_part)
    assert forward[val.indices].all() and test_forward[test.indices].all()
    assert forward[train.indices].sum() == len(train) // 2  # trained on both strands
    # 150 blocks, 30 held out, of which those repeating the other inverted-repeat copy dropped;
    # a fifth of the 120 training blocks validate, less those repeating the rest
    dropped = int(note.split("for validation (")[1].split()[0])
    assert len(train) == 2 * len(train_part) and len(val) == len(val_part) >= 12
    assert len(train_part) + len(val_part) + dropped == 120 and 15 <= len(test) < 30
    # No held-out or validation window repeats a training window (the inverted repeats are
    # each other's reverse complement): at most a chance 31-mer is shared.
    training = TrainingKmers(ids_to_text(train.dataset[i]["input_ids"]) for i in train.indices)
    for part in (test, val):
        shared = [training.shared_fraction(*canonical_kmers(ids_to_text(
            part.dataset[i]["input_ids"]))) for i in part.indices]
        assert max(shared) < 0.05
    assert len(training) > 50_000 and "repeating train sequence" in note


def test_balanced_labels_hide_majority_bases(cds, tokenizer, tmp_path):
    *_, train, _ = cds.split_windows("cds_chloroplast_to_sarscov2", 1024, tmp_path, tokenizer,
                                     quick=False)  # the SARS-CoV-2 test windows: 98% CDS
    labels = cds.stacked(cds.BalancedLabels(train, seed=0))[1]
    counts = np.bincount(labels[labels >= 0])
    assert counts[1] == pytest.approx(counts[0], rel=0.15)
    assert counts[0] == (cds.stacked(train)[1] == 0).sum()  # every minority base is kept


def test_kmer_orf_baseline_is_far_better_than_constant(cds, tokenizer, tmp_path):
    from hyena_glt.evaluation.token_baselines import OrfKmerLogisticRegression

    train, val, test, _ = cds.split_windows("cds_within_chloroplast", 1024, tmp_path, tokenizer,
                                            quick=False)
    train_ids, train_labels = cds.stacked(train)
    (val_ids, val_labels), (test_ids, test_labels) = cds.stacked(val), cds.stacked(test)
    model = OrfKmerLogisticRegression().fit(train_ids, train_labels)
    threshold = cds.validation_threshold(model.predict_proba(val_ids), val_labels)
    metrics = cds.score(model.predict_proba(test_ids), test_labels, threshold)
    assert 0 < metrics["validation_threshold"] == threshold < 1
    majority = max(test_labels.mean(), 1 - test_labels.mean())
    assert metrics["accuracy"] > majority + 0.25
    assert metrics["f1"] > 0.84 and metrics["f1_validation_threshold"] > 0.75
    assert metrics["auroc"] > 0.9
    # the interval resamples whole windows and holds the pooled value
    assert metrics["auroc_ci_low"] < metrics["auroc"] < metrics["auroc_ci_high"]


def test_quick_run_gives_tidy_rows(cds, tmp_path):
    rows = cds.run(seed=0, quick=True, out_dir=tmp_path)
    assert {(r["task"], r["model"], r["metric"]) for r in rows} == {
        (task, model, metric) for task in cds.TASKS for model in cds.MODELS
        for metric in ("f1", "accuracy", "auroc", "auroc_ci_low", "auroc_ci_high",
                       "validation_threshold", "f1_validation_threshold")}
    for row in rows:
        assert set(row) == {"task", "model", "seed", "metric", "value", "train_s", "n_train",
                            "n_test", "note"}
        assert 0.0 <= row["value"] <= 1.0 or math.isnan(row["value"])
        assert row["n_train"] > 0 and row["n_test"] > 0 and row["train_s"] >= 0


def test_f1_is_also_scored_at_the_validation_threshold(cds):
    # Validation: P(CDS) of CDS bases 0.3-0.4, of the rest 0.1-0.2 (a model calibrated low);
    # ignored bases carry scores that would move the cut if they were counted.
    val_labels = np.array([[1, 1, 0, 0, -100, -100]])
    val_p = np.array([0.35, 0.4, 0.1, 0.2, 0.9, 0.95])
    threshold = cds.validation_threshold(val_p, val_labels)
    assert 0.2 < threshold < 0.35
    test_labels = np.array([[1, 0, 1, 0]])
    test_p = np.array([0.3, 0.15, 0.38, 0.05])
    metrics = cds.score(test_p, test_labels, threshold)
    assert metrics["f1_validation_threshold"] == 1.0
    assert metrics["f1"] == 0.0 and metrics["accuracy"] == 0.5  # at 0.5 no base is CDS
