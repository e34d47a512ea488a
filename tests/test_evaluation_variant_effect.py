"""Zero-shot variant scoring and its position-grouped evaluation on real BRCA1 SGE variants.

A tiny random causal LM scores a spread-out subset of the Findlay et al. (2018) variants: the
numbers are near chance, so the tests check the machinery exactly (Δ = LL(alt) − LL(ref),
batching, strand averaging, folds that never straddle a position bin, finite scores) and check
the metrics on hand-made scores whose AUROC/Spearman are known.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score

from hyena_glt.cli import main
from hyena_glt.config import HyenaGLTConfig
from hyena_glt.errors import DataError
from hyena_glt.evaluation import (
    delta_log_likelihood,
    evaluate_variant_scores,
    position_group_folds,
    score_variants,
)
from hyena_glt.evaluation.variant_effect import predict_variant_effects
from hyena_glt.ingest.vcf import ingest_variants, variants_from_table
from hyena_glt.model import HyenaGLTForCausalLM, HyenaGLTForVariantEffect

WINDOW = 32
SGE_COLUMNS = {"chrom": "ref_brca1", "pos_column": "pos_in_ref_brca1", "ref_column": "ref",
               "alt_column": "alt"}


def tiny_lm(seed: int = 0) -> HyenaGLTForCausalLM:
    torch.manual_seed(seed)
    config = HyenaGLTConfig(vocab_size=64, d_model=16, n_layers=2, num_heads=2,
                            sequence_length=64, filter_order=8, dropout=0.0,
                            attention_layers=(1,), max_patch_size=6, merge_ratio=0.5)
    return HyenaGLTForCausalLM(config).eval()


def _ingest(shared_data, out, step: int, reverse_complement: bool):
    sge = shared_data / "variants" / "brca1_sge_findlay2018" / "brca1_sge_variants.csv.gz"
    reference = shared_data / "variants" / "brca1_grch37" / "ref_brca1.fa.gz"
    variants = variants_from_table(sge, label_column="label_lof",
                                   keep_columns=["function_score"], **SGE_COLUMNS)
    ingest_variants(itertools.islice(variants, 0, None, step), reference, out, window=WINDOW,
                    reverse_complement=reverse_complement)
    return out


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def variant_shards(shared_data, tmp_path_factory):
    """Every 130th SGE variant (30 variants along the gene), both strands."""
    return _ingest(shared_data, tmp_path_factory.mktemp("variants") / "shards", 130, True)


@pytest.fixture(scope="module")
def lm():
    return tiny_lm()


@pytest.fixture(scope="module")
def scores(lm, variant_shards):
    return score_variants(lm, variant_shards, batch_size=16, strand_average=True)


def test_delta_is_alt_minus_ref_and_independent_of_batching(lm):
    generator = torch.Generator().manual_seed(1)
    ref = torch.randint(7, 11, (5, WINDOW), generator=generator)
    alt = ref.clone()
    alt[:, WINDOW // 2] = 7 + (alt[:, WINDOW // 2] - 7 + 1) % 4  # one SNV per window
    expected = (lm.sequence_log_likelihood(alt) - lm.sequence_log_likelihood(ref)).numpy()
    one_by_one = delta_log_likelihood(lm, ref, alt, batch_size=1)
    batched = delta_log_likelihood(lm, ref, alt, batch_size=4)
    np.testing.assert_allclose(one_by_one, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batched, expected, rtol=1e-5, atol=1e-5)
    assert np.all(delta_log_likelihood(lm, ref, ref.clone()) == 0)
    with pytest.raises(DataError, match="must both be"):
        delta_log_likelihood(lm, ref, alt[:, :-1])


def test_a_reference_window_shared_by_several_variants_is_scored_once(lm, monkeypatch):
    """Saturation editing puts three alternate alleles on each site: one reference window."""
    generator = torch.Generator().manual_seed(2)
    site_ref = torch.randint(7, 11, (2, WINDOW), generator=generator)
    ref = site_ref.repeat_interleave(3, dim=0)  # 2 sites x 3 alleles
    alt = ref.clone()
    alt[:, WINDOW // 2] = 7 + (alt[:, WINDOW // 2] - 7 + torch.tensor([1, 2, 3] * 2)) % 4
    expected = (lm.sequence_log_likelihood(alt) - lm.sequence_log_likelihood(ref)).numpy()
    scored = []
    original = lm.sequence_log_likelihood

    def counting(ids, *args, **kwargs):
        scored.append(len(ids))
        return original(ids, *args, **kwargs)

    monkeypatch.setattr(lm, "sequence_log_likelihood", counting)
    delta = delta_log_likelihood(lm, ref, alt, batch_size=4)
    np.testing.assert_allclose(delta, expected, rtol=1e-5, atol=1e-5)
    assert sum(scored) == 2 + 6  # the two distinct reference windows, then every alternate


def test_score_table_rows_columns_and_strand_average(scores, lm, variant_shards):
    assert len(scores) == 30
    assert {"id", "chrom", "pos", "ref", "alt", "label", "function_score", "delta_ll_forward",
            "delta_ll_reverse", "delta_ll"} <= set(scores.columns)
    assert "ref_input_ids" not in scores.columns
    assert scores["id"].iloc[0] == "ref_brca1:79823:T>G"  # first row of the SGE table
    values = scores[["delta_ll_forward", "delta_ll_reverse", "delta_ll"]].to_numpy()
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(scores["delta_ll"], values[:, :2].mean(1))
    # The strands differ: the reverse window is not the forward one.
    assert not np.allclose(values[:, 0], values[:, 1])
    forward_only = score_variants(lm, variant_shards, batch_size=64, strand_average=False)
    np.testing.assert_allclose(forward_only["delta_ll"], scores["delta_ll_forward"], atol=1e-5)
    assert "delta_ll_reverse" not in forward_only.columns
    # By default both strands are averaged whenever the shards hold them.
    default = score_variants(lm, variant_shards, batch_size=64)
    np.testing.assert_allclose(default["delta_ll"], scores["delta_ll"], atol=1e-5)


def test_strand_average_needs_reverse_complement_windows(lm, shared_data, tmp_path):
    forward_only = _ingest(shared_data, tmp_path / "fwd", 1000, False)
    with pytest.raises(DataError, match="--reverse-complement"):
        score_variants(lm, forward_only, strand_average=True)
    default = score_variants(lm, forward_only)  # forward windows only: the forward score
    np.testing.assert_array_equal(default["delta_ll"], default["delta_ll_forward"])
    assert "delta_ll_reverse" not in default.columns


def test_position_folds_never_straddle_a_bin(scores):
    positions = scores["pos"].to_numpy()
    folds = position_group_folds(positions, n_splits=4, bin_size=500)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(len(positions)))  # every variant tested exactly once
    for train, test in folds:
        assert not set(positions[train] // 500) & set(positions[test] // 500)
    with pytest.raises(DataError, match="position bins"):
        position_group_folds([1, 2, 3], n_splits=2, bin_size=100)


def test_evaluation_of_real_scores_is_finite(scores):
    results = evaluate_variant_scores(scores, function_score_column="function_score",
                                      n_splits=3, bin_size=500)
    assert results["n_variants"] == 30
    assert results["n_damaging"] == int((scores["label"] == 1).sum()) > 0
    for key in ("zero_shot_auroc", "zero_shot_spearman", "supervised_auroc"):
        assert np.isfinite(results[key]) and -1 <= results[key] <= 1
    assert sum(key.endswith("/zero_shot_auroc") for key in results) == 3


def test_evaluation_metrics_on_known_scores():
    rng = np.random.default_rng(0)
    positions = np.arange(200) * 37
    labels = (np.arange(200) % 3 == 0).astype(float)
    function = rng.normal(size=200) - 2 * labels
    frame = pd.DataFrame({"pos": positions, "label": labels, "function_score": function,
                          "delta_ll": -3.0 * labels + 0.1 * rng.normal(size=200)})
    results = evaluate_variant_scores(frame, function_score_column="function_score",
                                      n_splits=5, bin_size=100)
    assert results["zero_shot_auroc"] == 1.0  # damaging variants all score lowest
    assert results["supervised_auroc"] == 1.0
    expected_rho = stats.spearmanr(frame["delta_ll"], function).statistic
    assert results["zero_shot_spearman"] == pytest.approx(expected_rho)
    flipped = evaluate_variant_scores(frame.assign(delta_ll=-frame["delta_ll"]), n_splits=5)
    assert flipped["zero_shot_auroc"] == 0.0
    with pytest.raises(DataError, match="lacks column"):
        evaluate_variant_scores(frame.drop(columns="pos"))
    with pytest.raises(DataError, match="non-finite"):
        evaluate_variant_scores(frame.assign(delta_ll=np.nan))


def test_cli_score_variants_and_evaluate(lm, variant_shards, scores, tmp_path):
    model_dir = lm.save_pretrained(tmp_path / "lm")
    table = tmp_path / "scores.csv"
    assert main(["score-variants", "--model", str(model_dir), "--variants", str(variant_shards),
                 "--out", str(table), "--batch-size", "64"]) == 0
    written = pd.read_csv(table)
    assert list(written["id"]) == list(scores["id"])
    np.testing.assert_allclose(written["delta_ll"], scores["delta_ll"], atol=1e-5)  # both strands
    assert main(["score-variants", "--model", str(model_dir), "--variants", str(variant_shards),
                 "--out", str(table), "--no-strand-average"]) == 0
    np.testing.assert_allclose(pd.read_csv(table)["delta_ll"], scores["delta_ll_forward"],
                               atol=1e-5)
    metrics_path = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(model_dir), "--data", str(variant_shards),
                 "--out", str(metrics_path), "--batch-size", "64", "--folds", "3",
                 "--bin-size", "500", "--function-score-column", "function_score"]) == 0
    metrics = json.loads(metrics_path.read_text())
    assert metrics["n_variants"] == 30 and np.isfinite(metrics["zero_shot_auroc"])
    # A bad shard directory is one clear error, exit code 2, nothing written.
    assert main(["score-variants", "--model", str(model_dir), "--variants",
                 str(tmp_path / "missing"), "--out", str(tmp_path / "x.csv")]) == 2
    assert not (tmp_path / "x.csv").exists()


def test_cli_evaluates_a_fine_tuned_pair_model_beside_the_zero_shot_lm(lm, variant_shards,
                                                                       tmp_path):
    """One tidy table: the paired head's classification metrics (its AUROC recomputed from its
    own probabilities) and the LM's zero-shot metrics, each under its --model name."""
    torch.manual_seed(0)
    pair_model = HyenaGLTForVariantEffect(lm.config.replace(
        task_type="variant_effect", num_classes=2)).eval()
    pair_dir = pair_model.save_pretrained(tmp_path / "pair")
    lm_dir = lm.save_pretrained(tmp_path / "lm")
    out = tmp_path / "results.csv"
    assert main(["evaluate", "--model", f"finetuned={pair_dir}", "--model",
                 f"zero_shot_lm={lm_dir}", "--data", str(variant_shards), "--out", str(out),
                 "--dataset", "brca1", "--folds", "3", "--bin-size", "500"]) == 0
    table = pd.read_csv(out)
    metrics = {model: rows.set_index("metric")["value"]
               for model, rows in table.groupby("model")}
    assert set(metrics) == {"finetuned", "zero_shot_lm"} and set(table["dataset"]) == {"brca1"}
    probabilities, labels = predict_variant_effects(pair_model, variant_shards)
    assert probabilities.shape == (30, 2) and metrics["finetuned"]["n_variants"] == 30
    cropped, _ = predict_variant_effects(pair_model, variant_shards, max_length=16)
    assert cropped.shape == (30, 2) and not np.allclose(cropped, probabilities)
    assert metrics["finetuned"]["auroc"] == pytest.approx(
        roc_auc_score(labels, probabilities[:, 1]))
    assert "zero_shot_auroc" in metrics["zero_shot_lm"]
    # A registered name works as a model (labelled by it); two models sharing a name are
    # refused before anything is written.
    by_name = tmp_path / "by_name.csv"
    assert main(["evaluate", "--model", "hyena-glt-base", "--data", str(variant_shards),
                 "--out", str(by_name), "--folds", "3", "--bin-size", "500"]) == 0
    assert set(pd.read_csv(by_name)["model"]) == {"hyena-glt-base"}
    assert main(["evaluate", "--model", f"a={lm_dir}", "--model", f"a={pair_dir}", "--data",
                 str(variant_shards), "--out", str(tmp_path / "x.csv")]) == 2
    assert not (tmp_path / "x.csv").exists()
