"""Tests of hyena_glt.evaluation.metrics: hand-computed values, input forms, errors, real BRCA1 data."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn import metrics as skm

from hyena_glt.config import TASK_TYPES
from hyena_glt.errors import ConfigurationError, DataError, HyenaGLTWarning
from hyena_glt.evaluation import GenomicMetrics
from hyena_glt.evaluation.metrics import TASK_FAMILIES

SGE_FULL = (Path(__file__).parents[2] / "shared" / "data" / "variants" / "brca1_sge_findlay2018"
            / "findlay2018_brca1_sge_full.csv.gz")

# Binary hand case: P(class 1) -> labels [0, 1, 0, 1, 1] against targets [0, 0, 1, 1, 1].
BINARY_TARGETS = [0, 0, 1, 1, 1]
BINARY_P1 = np.array([0.1, 0.6, 0.4, 0.8, 0.9])


@pytest.fixture
def metrics() -> GenomicMetrics:
    return GenomicMetrics()


def assert_same_metrics(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], float):
            assert a[key] == pytest.approx(b[key], abs=1e-12), key
        else:
            assert a[key] == b[key], key


def test_binary_hand_computed(metrics):
    r = metrics.classification(BINARY_P1, BINARY_TARGETS)
    assert r["accuracy"] == pytest.approx(3 / 5)
    # class 0: TP 1, FP 1, FN 1 -> P = R = F1 = 1/2; class 1: TP 2, FP 1, FN 1 -> 2/3.
    assert r["precision/0"] == pytest.approx(1 / 2) and r["f1/1"] == pytest.approx(2 / 3)
    assert r["f1_macro"] == pytest.approx(7 / 12)
    assert r["balanced_accuracy"] == pytest.approx(7 / 12)
    assert r["mcc"] == pytest.approx((2 * 1 - 1 * 1) / math.sqrt(3 * 3 * 2 * 2))
    # 5 of the 6 (positive, negative) pairs are ranked correctly (0.4 < 0.6 is the miss).
    assert r["auroc"] == pytest.approx(5 / 6)
    # Ranked: P P N P N -> AP = (1 + 1 + 3/4) / 3.
    assert r["auprc"] == pytest.approx(11 / 12)
    assert r["confusion_matrix"] == [[1, 1], [1, 2]]
    assert r["support/1"] == 3 and r["n_samples"] == 5


def test_binary_input_forms_agree(metrics):
    from_p1 = metrics.classification(BINARY_P1, BINARY_TARGETS)
    probabilities = np.stack([1 - BINARY_P1, BINARY_P1], axis=1)
    logits = np.log(probabilities) + 3.0  # any shift per row gives the same softmax
    binary_logit = np.log(BINARY_P1 / (1 - BINARY_P1))
    for predictions in (probabilities, logits, binary_logit, torch.tensor(logits),
                        BINARY_P1.tolist(), torch.tensor(BINARY_P1, dtype=torch.float32)):
        assert_same_metrics(metrics.classification(predictions, BINARY_TARGETS), from_p1)


def test_large_logits_keep_their_ranking(metrics):
    # sigmoid/softmax of these logits round to exactly 1.0 in float64; the ranking must survive.
    logits = np.array([38.5, 40.5, 39.5, 45.5, 50.5])
    targets = [0, 0, 1, 1, 1]
    assert metrics.classification(logits, targets)["auroc"] == pytest.approx(5 / 6)
    two_class = np.stack([np.zeros(5), logits], axis=1)
    assert metrics.classification(two_class, targets)["auroc"] == pytest.approx(5 / 6)
    three_class = np.stack([np.zeros(5), logits, np.full(5, -3.0)], axis=1)
    r = metrics.classification(three_class, [0, 0, 1, 1, 2])
    assert r["auroc/1"] == pytest.approx(skm.roc_auc_score([0, 0, 1, 1, 0], logits))


def test_hard_labels_have_no_ranking_metrics(metrics):
    r = metrics.classification(np.array([0, 1, 0, 1, 1]), torch.tensor(BINARY_TARGETS))
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert "auroc" not in r and "auprc" not in r


def test_multiclass_logits_and_probabilities_agree(metrics):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(30, 3))
    targets = rng.integers(0, 3, size=30)
    targets[:3] = [0, 1, 2]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = ["cytoplasm", "nucleus", "membrane"]
    r = metrics.classification(logits, targets, label_names=names)
    assert_same_metrics(r, metrics.classification(probabilities, targets, label_names=names))
    predicted = logits.argmax(axis=1)
    assert r["accuracy"] == pytest.approx(np.mean(predicted == targets))
    assert r["f1_macro"] == pytest.approx(skm.f1_score(targets, predicted, average="macro"))
    assert r["auroc"] == pytest.approx(
        skm.roc_auc_score(targets, probabilities, multi_class="ovr", average="macro"))
    assert {"f1/nucleus", "auroc/membrane", "recall/cytoplasm"} <= r.keys()
    assert r["class_names"] == names
    assert np.sum(r["confusion_matrix"]) == 30


def test_absent_class_warns_and_is_skipped(metrics):
    probabilities = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    targets = [0, 1, 0, 1]  # class 2 never occurs
    with pytest.warns(HyenaGLTWarning, match=r"\['2'\]"):
        r = metrics.classification(probabilities, targets)
    assert r["auroc"] == pytest.approx(1.0) and "auroc/2" not in r
    assert r["confusion_matrix"][2] == [0, 0, 0]


def test_token_classification_ignores_padding(metrics):
    logits = torch.zeros(2, 4, 3)
    labels = torch.tensor([[0, 1, 2, -100], [2, 2, 0, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    real = [(0, 0, 0), (0, 1, 1), (0, 2, 2), (1, 0, 2), (1, 1, 0), (1, 2, 0)]  # (b, t, predicted)
    for b, t, k in real:
        logits[b, t, k] = 5.0
    logits[0, 3] = float("nan")  # ignored positions may hold anything
    logits[1, 3] = float("inf")
    r = metrics.token_classification(logits, labels, attention_mask=mask)
    assert r["n_samples"] == 6
    assert r["accuracy"] == pytest.approx(5 / 6)  # only (1, 1) is wrong: predicts 0 for 2
    flat = metrics.classification(np.stack([logits[b, t].numpy() for b, t, _ in real]),
                                  [int(labels[b, t]) for b, t, _ in real])
    assert_same_metrics(r, flat)
    hard = metrics.token_classification(logits.argmax(-1), labels, attention_mask=mask)
    assert hard["accuracy"] == pytest.approx(5 / 6)
    via_task = metrics.compute_all(logits, labels, task_type="genome_annotation",
                                   attention_mask=mask)
    assert_same_metrics(via_task, r)


def test_token_classification_nan_at_real_position_fails(metrics):
    logits = torch.zeros(1, 3, 2)
    logits[0, 1, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        metrics.token_classification(logits, torch.tensor([[0, 1, 0]]))


def test_regression_hand_computed(metrics):
    r = metrics.regression([1.0, 2.0, 3.0, 5.0], np.array([1.0, 2.0, 3.0, 4.0]))
    assert r["mse"] == pytest.approx(0.25) and r["rmse"] == pytest.approx(0.5)
    assert r["mae"] == pytest.approx(0.25)
    assert r["r2"] == pytest.approx(1 - 1 / 5)  # SS_res 1, SS_tot 1.5² + 0.5² + 0.5² + 1.5²
    assert r["pearson_r"] == pytest.approx(6.5 / math.sqrt(5 * 8.75))
    assert r["spearman_rho"] == pytest.approx(1.0)
    assert 0 < r["pearson_p"] < 0.05


def test_regression_multi_output(metrics):
    predictions = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 1.0], [5.0, 3.0]])
    targets = np.array([[1.0, 3.0], [2.0, 1.0], [3.0, 1.0], [4.0, 0.0]])
    r = metrics.regression(torch.tensor(predictions), targets)
    assert r["mse/0"] == pytest.approx(0.25) and r["mse/1"] == pytest.approx((9 + 9) / 4)
    assert r["mse"] == pytest.approx((0.25 + 4.5) / 2)
    assert r["spearman_rho/1"] == pytest.approx(stats.spearmanr(targets[:, 1], predictions[:, 1])[0])
    assert r["spearman_rho"] == pytest.approx((1.0 + r["spearman_rho/1"]) / 2)


def test_regression_constant_predictions_warn(metrics):
    with pytest.warns(HyenaGLTWarning, match="constant"):
        r = metrics.regression([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert r["mse"] == pytest.approx(2 / 3) and "pearson_r" not in r


def test_sequence_hand_computed(metrics):
    r = metrics.sequence(["kitten", "ACGT"], ["sitting", "ACGA"])
    # Clipped matches / totals: 1-grams 7/10; 2-grams 4/8, 3-grams 2/6, 4-grams 0/4 (+1 smoothed).
    assert r["bleu_precision_1"] == pytest.approx(7 / 10)
    assert r["bleu_precision_2"] == pytest.approx(5 / 9)
    assert r["bleu_precision_3"] == pytest.approx(3 / 7)
    assert r["bleu_precision_4"] == pytest.approx(1 / 5)
    assert r["brevity_penalty"] == pytest.approx(math.exp(1 - 11 / 10))  # c = 10, r = 11
    expected_bleu = math.exp(1 - 11 / 10) * (7 / 10 * 5 / 9 * 3 / 7 * 1 / 5) ** 0.25
    assert r["bleu"] == pytest.approx(expected_bleu)
    assert r["edit_distance_mean"] == pytest.approx((3 + 1) / 2)
    assert r["normalized_edit_distance_mean"] == pytest.approx((3 / 7 + 1 / 4) / 2)
    assert r["sequence_identity_mean"] == pytest.approx((4 / 6 + 3 / 4) / 2)
    assert r["exact_match"] == 0.0


@pytest.mark.parametrize(("a", "b", "distance"), [
    ("kitten", "sitting", 3), ("intention", "execution", 5), ("flaw", "lawn", 2),
    ("", "ACG", 3), ("GATTACA", "GATTACA", 0), ("AAAA", "A", 3),
])
def test_edit_distance_known_pairs(metrics, a, b, distance):
    assert metrics.sequence([a], [b])["edit_distance_mean"] == distance
    assert metrics.sequence([b], [a])["edit_distance_mean"] == distance


def test_sequence_identical_and_token_ids(metrics):
    r = metrics.sequence([[5, 6, 7, 8, 9]], [torch.tensor([5, 6, 7, 8, 9])])
    assert r["bleu"] == pytest.approx(1.0) and r["exact_match"] == 1.0
    assert r["sequence_identity_mean"] == 1.0 and r["edit_distance_mean"] == 0.0
    short = metrics.sequence(["AC"], ["ACGT"])  # no 3- or 4-grams: no unsmoothed zero
    assert short["bleu_precision_1"] == 1.0 and short["brevity_penalty"] == pytest.approx(
        math.exp(1 - 4 / 2))


def test_language_model_perplexity(metrics):
    uniform = torch.zeros(2, 3, 4)
    targets = torch.tensor([[0, 1, 2], [3, -100, -100]])
    r = metrics.language_model(uniform, targets)
    assert r["n_tokens"] == 4
    assert r["cross_entropy"] == pytest.approx(math.log(4)) and r["perplexity"] == pytest.approx(4)
    assert r["bits_per_token"] == pytest.approx(2.0)
    logits = torch.log(torch.tensor([0.5, 0.25, 0.125, 0.125])).expand(1, 2, 4)
    r = metrics.compute_all(logits, [[0, 1]], task_type="dna_sequence_modeling")
    assert r["cross_entropy"] == pytest.approx(-(math.log(0.5) + math.log(0.25)) / 2)
    assert r["perplexity"] == pytest.approx(math.sqrt(8)) and r["accuracy"] == 0.5


def test_conservation_score(metrics):
    logits = torch.log(torch.tensor([[[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25],
                                      [0.1, 0.1, 0.1, 0.7]]]))
    r = metrics.conservation_score(logits, [[0, 2, 3]], attention_mask=[[1, 1, 0]])
    assert r["n_positions"] == 2
    assert r["conservation_prob_mean"] == pytest.approx((0.7 + 0.25) / 2)
    assert r["conservation_logprob_mean"] == pytest.approx((math.log(0.7) + math.log(0.25)) / 2)
    with pytest.raises(DataError, match="vocabulary"):
        metrics.conservation_score(logits, [[0, 2, 4]])


def test_functional_impact_hand_computed(metrics):
    r = metrics.functional_impact_score([-3.0, -1.0, 0.5, -0.5], labels=[1, 0, 0, 1],
                                        continuous_scores=[-2.0, -1.0, 1.0, 0.0])
    assert r["delta_mean"] == pytest.approx(-1.0) and r["delta_median"] == pytest.approx(-0.75)
    assert r["fraction_negative"] == 0.75
    assert r["auroc"] == pytest.approx(3 / 4)  # -Δ: damaging {3, 0.5} vs {1, -0.5}
    assert r["spearman_rho"] == pytest.approx(1.0)


def test_brca1_sge_real_data(metrics):
    """Replicate 1 of the BRCA1 SGE screen as a predictor of the consensus class (Findlay 2018)."""
    table = pd.read_csv(SGE_FULL)
    lof = (table["func.class"] == "LOF").to_numpy(dtype=np.int64)
    replicate, mean_score = table["function.score.r1"].to_numpy(), table["function.score.mean"]
    r = metrics.functional_impact_score(replicate, labels=lof, continuous_scores=mean_score)
    assert r["n_variants"] == 3893
    assert r["auroc"] == pytest.approx(skm.roc_auc_score(lof, -replicate))
    assert r["auroc"] > 0.95 and r["spearman_rho"] > 0.8  # replicates agree
    # variant_effect with binary targets: classification of LOF by CADD (higher = damaging).
    cadd = table["CADD.score"].to_numpy()
    by_cadd = metrics.compute_all(cadd, lof, task_type="variant_effect")
    assert by_cadd["auroc"] == pytest.approx(skm.roc_auc_score(lof, cadd))
    assert 0.5 < by_cadd["auroc"] < 1.0
    # ...and with continuous targets: regression of the mean score on replicate 2.
    by_replicate = metrics.compute_all(table["function.score.r2"], mean_score,
                                       task_type="variant_effect")
    assert by_replicate["spearman_rho"] == pytest.approx(
        stats.spearmanr(table["function.score.r2"], mean_score)[0])
    json.dumps([r, by_cadd, by_replicate], allow_nan=False)


def test_compute_all_routes_every_task_type(metrics):
    assert set(TASK_TYPES) <= TASK_FAMILIES.keys()
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    expected = metrics.classification(logits, [0, 1, 1])
    for task in ("protein_function", "sequence_classification", "classification"):
        assert_same_metrics(metrics.compute_all(logits, [0, 1, 1], task_type=task), expected)
    assert "mse" in metrics.compute_all([0.1, 0.5, 0.9], [0.0, 0.4, 1.2], task_type="regression")
    assert "bleu" in metrics.compute_all(["ACGT"], ["ACGA"], task_type="sequence")
    assert "f1_macro" in metrics.compute_all(np.zeros((1, 2, 2)), [[0, 1]],
                                             task_type="token_classification")
    with pytest.raises(ConfigurationError, match="unknown task_type 'protein'"):
        metrics.compute_all(logits, [0, 1, 1], task_type="protein")


def test_outputs_are_strict_json(metrics):
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stray sklearn/scipy warnings either
        results = [
            metrics.classification(rng.normal(size=(12, 3)), np.arange(12) % 3),
            metrics.token_classification(rng.normal(size=(2, 5, 2)), np.arange(10).reshape(2, 5) % 2),
            metrics.regression(rng.normal(size=(8, 2)), rng.normal(size=(8, 2))),
            metrics.sequence(["ACGTT", "GGA"], ["ACGT", "GGC"]),
            metrics.language_model(torch.randn(2, 4, 5), torch.randint(0, 5, (2, 4))),
            metrics.conservation_score(torch.randn(1, 4, 5), torch.randint(0, 5, (1, 4))),
        ]
    decoded = json.loads(json.dumps(results, allow_nan=False))
    assert decoded == results


@pytest.mark.parametrize(("predictions", "targets", "match"), [
    ([0.2, float("nan"), 0.7], [0, 1, 1], "NaN"),
    ([0.2, 0.3, 0.7], [0.0, float("inf"), 1.0], "NaN/inf"),
    (np.zeros((4, 2)), [0, 1, 1], r"predictions shape \(4, 2\), targets shape \(3,\)"),
    ([], [], "empty"),
    (np.zeros((3, 2)), [0, 1, 2], "only 2 classes"),
    ([0.2, 0.3, 0.7], [0, -100, 1], "negative label"),
])
def test_classification_errors(metrics, predictions, targets, match):
    with pytest.raises(DataError, match=match):
        metrics.classification(predictions, targets)


def test_other_shape_errors(metrics):
    with pytest.raises(DataError, match=r"predictions shape \(3,\), targets shape \(4,\)"):
        metrics.regression([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(DataError, match=r"predictions shape \(2, 3, 2\) must be targets shape"):
        metrics.token_classification(np.zeros((2, 3, 2)), np.zeros((2, 4), dtype=int))
    with pytest.raises(DataError, match="attention_mask shape"):
        metrics.language_model(np.zeros((1, 3, 4)), [[0, 1, 2]], attention_mask=[[1, 1]])
    with pytest.raises(DataError, match="no real positions"):
        metrics.language_model(np.zeros((1, 2, 4)), [[-100, -100]])
    with pytest.raises(DataError, match="got 2 and 1"):
        metrics.sequence(["ACGT", "AC"], ["ACGT"])
    with pytest.raises(DataError, match="label_names has 3 names"):
        metrics.classification(BINARY_P1, BINARY_TARGETS, label_names=["a", "b", "c"])
