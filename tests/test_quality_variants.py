"""benchmarks/quality_tasks/variants.py: the BRCA1 grouped-CV task, on a quick subset."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from quality_tasks import variants  # noqa: E402

from hyena_glt.data import VariantEffectDataset  # noqa: E402
from hyena_glt.evaluation.variant_baselines import context_features  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_context_features_flag_a_stop_codon_gained_in_each_frame(tmp_path):
    # CAA -> TAA (frame starting at the variant), TGG -> TGA (frame ending at it), and a
    # change that makes no stop codon.
    table = pd.DataFrame({"ref_sequence": ["GGGCAAGGG", "GGTGGGGGG", "GGGCAAGGG"],
                          "alt_sequence": ["GGGTAAGGG", "GGTGAGGGG", "GGGGAAGGG"],
                          "label": [1, 1, 0]})
    table.to_csv(tmp_path / "pairs.csv", index=False)
    dataset = VariantEffectDataset(tmp_path / "pairs.csv", max_length=None, padding=None)
    features = context_features(dataset, dataset.tokenizer.decode, variants.CONTEXT)
    one_hot = 2 * (2 * variants.CONTEXT + 1) * 4
    assert features.shape == (3, one_hot + 3)
    assert features[:, one_hot:].tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 0]]
    # The one-hot block holds the ref base at the centre and the alt base in the alt half.
    centre = variants.CONTEXT * 4
    assert features[0, centre:centre + 4].tolist() == [0, 1, 0, 0]  # C
    assert features[0, one_hot // 2 + centre:one_hot // 2 + centre + 4].tolist() == [0, 0, 0, 1]


def test_quick_run_scores_every_model_out_of_fold(shared_data, tmp_path):
    rows = pd.DataFrame(variants.run(seed=0, quick=True, out_dir=tmp_path))
    assert set(rows["model"]) == {"hyena_glt", "hyena_glt_zero_shot", "context_logreg"}
    assert set(rows["task"]) == {"brca1_lof"}
    auroc = rows[rows["metric"] == "auroc"].set_index("model")["value"]
    assert auroc.between(0, 1).all() and len(auroc) == 3
    values = rows.set_index(["model", "metric"])["value"]
    for model in auroc.index:  # intervals resample whole 100-bp position bins
        assert values[model, "auroc_ci_low"] <= auroc[model] <= values[model, "auroc_ci_high"]
    assert (rows["n_test"] == variants.QUICK["variants"]).all()
