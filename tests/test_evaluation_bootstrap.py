"""Bootstrap intervals: the weighted metrics equal scikit-learn's on repeated rows, whole units
move together, and the paired verdict follows the interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from hyena_glt.errors import ConfigurationError, DataError
from hyena_glt.evaluation.bootstrap import (
    METRICS,
    BootstrapSettings,
    PairedDelta,
    bootstrap_metric,
    paired_bootstrap,
    primary_metric,
)


def _data(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 2, n)
    score = np.round(np.clip(0.3 * target + rng.uniform(0, 0.7, n), 0, 1), 2)  # with ties
    return target, score


@pytest.mark.parametrize("name, reference", [
    ("auroc", skm.roc_auc_score),
    ("auprc", skm.average_precision_score),
    ("accuracy", lambda t, s: skm.accuracy_score(t, s >= 0.5)),
    ("f1_macro", lambda t, s: skm.f1_score(t, s >= 0.5, average="macro")),
    ("mcc", lambda t, s: skm.matthews_corrcoef(t, s >= 0.5)),
])
def test_weighted_metric_equals_sklearn_on_repeated_rows(name, reference):
    target, score = _data()
    weight = np.random.default_rng(1).integers(0, 3, len(target)).astype(float)
    index = np.repeat(np.arange(len(target)), weight.astype(int))
    assert METRICS[name](target, score, weight) == pytest.approx(
        reference(target[index], score[index]), abs=1e-12)


def test_multiclass_macro_f1_and_regression_metrics():
    rng = np.random.default_rng(2)
    target = rng.integers(0, 3, 200)
    probs = rng.dirichlet(np.ones(3), 200)
    ones = np.ones(200)
    assert METRICS["f1_macro"](target, probs, ones) == pytest.approx(
        skm.f1_score(target, probs.argmax(1), average="macro"))
    real = rng.normal(size=200)
    assert METRICS["r2"](real, real * 0.5, ones) == pytest.approx(skm.r2_score(real, real * 0.5))


def test_interval_contains_the_value_and_is_reproducible():
    target, score = _data()
    units = np.arange(len(target))
    settings = BootstrapSettings(n_resamples=200, seed=3)
    first = bootstrap_metric("auroc", target, score, units, settings)
    assert first.low < first.value < first.high
    assert bootstrap_metric("auroc", target, score, units, settings) == first


def test_whole_units_widen_the_interval_of_correlated_examples():
    target, score = _data(100)
    # every example copied 10 times: resampling copies independently pretends 10x the data
    target, score = np.repeat(target, 10), np.repeat(score, 10)
    settings = BootstrapSettings(n_resamples=300)
    naive = bootstrap_metric("auroc", target, score, np.arange(len(target)), settings)
    grouped = bootstrap_metric("auroc", target, score, np.arange(len(target)) // 10, settings)
    assert grouped.high - grouped.low > 2 * (naive.high - naive.low)


def test_paired_verdicts():
    target, good = _data()
    noise = np.random.default_rng(4).uniform(size=len(target))
    units = np.arange(len(target))
    settings = BootstrapSettings(n_resamples=200)
    assert paired_bootstrap("auroc", target, good, noise, units, settings).verdict == "better"
    assert paired_bootstrap("auroc", target, noise, good, units, settings).verdict == "worse"
    same = paired_bootstrap("auroc", target, good, good + 1e-9 * noise, units, settings)
    assert same.verdict == "no significant difference"
    assert PairedDelta(0.01, -0.02, 0.03).verdict == "no significant difference"


def test_primary_metric_per_task_type():
    assert primary_metric("sequence_classification", 2) == "auroc"
    assert primary_metric("sequence_classification", 5) == "f1_macro"
    assert primary_metric("token_classification", 2) == "auroc"
    assert primary_metric("regression", 0) == "spearman_rho"
    assert primary_metric("variant_effect", 0) == "spearman_rho"


def test_bad_inputs_are_named():
    target, score = _data(20)
    with pytest.raises(DataError, match="NaN"):
        bootstrap_metric("auroc", target, np.full(20, np.nan), np.arange(20))
    with pytest.raises(DataError, match="as many"):
        bootstrap_metric("auroc", target, score[:10], np.arange(20))
    with pytest.raises(ConfigurationError, match="no bootstrap"):
        bootstrap_metric("bleu", target, score, np.arange(20))
    with pytest.raises(ConfigurationError, match="n_resamples"):
        BootstrapSettings(n_resamples=1)
