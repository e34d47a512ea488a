"""``hyena-glt evaluate --train --baselines --predictions-out``: per-base and variant tasks get
their baselines fit on their own training part and one per-example predictions table, whose
scores reproduce the metrics of the results table."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from hyena_glt.cli import main
from hyena_glt.config import HyenaGLTConfig
from hyena_glt.ingest.vcf import ingest_variants, variants_from_table
from hyena_glt.model import HyenaGLTForTokenClassification, HyenaGLTForVariantEffect

RESOURCES = Path(__file__).resolve().parents[1] / "resources"

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COLUMNS = ["model", "dataset", "task_type", "unit", "position", "target"]


def _tiny(**changes) -> HyenaGLTConfig:
    torch.manual_seed(0)
    settings = {"vocab_size": 64, "d_model": 16, "n_layers": 2, "num_heads": 2,
                "sequence_length": 256, "filter_order": 8, "dropout": 0.0,
                "attention_layers": (1,), "max_patch_size": 6, "merge_ratio": 0.5}
    return HyenaGLTConfig(**{**settings, **changes})


def test_per_base_task_with_baselines(tmp_path):
    shards = tmp_path / "cds"
    assert main(["ingest", "annotation", str(RESOURCES / "genomes" / "NC_000932.1.fa.gz"),
                 "--annotation", str(RESOURCES / "annotation" / "NC_000932.1.gff3.gz"),
                 "--window", "256", "--split", "0.9", "--out", str(shards)]) == 0
    model_dir = HyenaGLTForTokenClassification(_tiny(num_classes=2)).save_pretrained(
        tmp_path / "annotator")
    out, predictions = tmp_path / "results.parquet", tmp_path / "predictions.parquet"
    assert main(["evaluate", "--model", f"finetuned={model_dir}", "--data", str(shards / "test"),
                 "--train", str(shards / "train"), "--baselines", "orf_kmer,cnn",
                 "--cnn-epochs", "1", "--dataset", "cds", "--out", str(out),
                 "--predictions-out", str(predictions)]) == 0
    rows = pd.read_parquet(predictions)
    assert list(rows.columns[:6]) == COLUMNS and "score" in rows
    assert set(rows["model"]) == {"finetuned", "orf_kmer_baseline", "cnn_baseline"}
    per_model = rows.groupby("model")
    assert per_model.size().nunique() == 1  # every model scored on the same bases
    assert per_model["unit"].nunique().min() > 10  # windows, the bootstrap's unit
    auroc = pd.read_parquet(out).query("metric == 'auroc'").set_index("model")["value"]
    for model, part in per_model:
        assert auroc[model] == pytest.approx(roc_auc_score(part["target"], part["score"]))
    assert auroc["orf_kmer_baseline"] > 0.8  # the k-mer/ORF model reads coding sequence
    # A baseline of another task type is refused, naming the choices.
    assert main(["evaluate", "--model", str(model_dir), "--data", str(shards / "test"),
                 "--train", str(shards / "train"), "--baselines", "context",
                 "--out", str(tmp_path / "x.csv")]) == 2


def test_variant_task_with_context_baseline(shared_data, tmp_path):
    sge = shared_data / "variants" / "brca1_sge_findlay2018" / "brca1_sge_variants.csv.gz"
    reference = shared_data / "variants" / "brca1_grch37" / "ref_brca1.fa.gz"
    variants = variants_from_table(sge, chrom="ref_brca1", pos_column="pos_in_ref_brca1",
                                   ref_column="ref", alt_column="alt", label_column="label_lof")
    shards = tmp_path / "variants"
    ingest_variants(itertools.islice(variants, 0, None, 5), reference, shards, window=32,
                    split=0.7)
    pair = HyenaGLTForVariantEffect(_tiny(task_type="variant_effect", num_classes=2,
                                          sequence_length=64)).eval()
    pair_dir = pair.save_pretrained(tmp_path / "pair")
    out, predictions = tmp_path / "results.csv", tmp_path / "predictions.parquet"
    assert main(["evaluate", "--model", f"finetuned={pair_dir}", "--data", str(shards / "test"),
                 "--train", str(shards / "train"), "--baselines", "context",
                 "--dataset", "brca1", "--out", str(out),
                 "--predictions-out", str(predictions)]) == 0
    rows = pd.read_parquet(predictions)
    assert set(rows["model"]) == {"finetuned", "context_baseline"}
    baseline = rows[rows["model"] == "context_baseline"]
    assert (baseline["unit"].astype(int) == baseline["position"] // 100).all()
    results = pd.read_csv(out).set_index(["model", "metric"])["value"]
    assert results["context_baseline", "auroc"] == pytest.approx(
        roc_auc_score(baseline["target"], baseline["score"]))
    assert results["context_baseline", "auroc"] > 0.5  # better than chance (0.64 on all SGE)
    assert np.isfinite(results["finetuned", "auroc"])


def test_regression_table_with_kmer_ridge_baseline(shared_data, tmp_path):
    """A regression task (GC fraction) evaluated beside the k-mer ridge baseline, with
    per-example predictions; a classifying-only baseline is refused by name."""
    from hyena_glt.model import HyenaGLTForRegression

    promoters = shared_data / "genomic_benchmarks" / "human_nontata_promoters" / "test.csv.gz"
    table = pd.read_csv(promoters).sample(160, random_state=0)
    table["sequence"] = table["sequence"].str.upper()
    table["label"] = table["sequence"].map(lambda s: (s.count("G") + s.count("C")) / len(s))
    table.iloc[:120].to_csv(tmp_path / "train.csv", index=False)
    table.iloc[120:].to_csv(tmp_path / "test.csv", index=False)
    model_dir = HyenaGLTForRegression(_tiny(task_type="regression", num_classes=1)
                                      ).save_pretrained(tmp_path / "regressor")
    out, predictions = tmp_path / "results.csv", tmp_path / "predictions.parquet"
    assert main(["evaluate", "--model", f"finetuned={model_dir}", "--data",
                 str(tmp_path / "test.csv"), "--train", str(tmp_path / "train.csv"),
                 "--baselines", "all", "--dataset", "gc", "--out", str(out),
                 "--predictions-out", str(predictions)]) == 0
    rows = pd.read_parquet(predictions)
    assert set(rows["model"]) == {"finetuned", "kmer_baseline"} and "prediction" in rows
    results = pd.read_csv(out).set_index(["model", "metric"])["value"]
    assert results["kmer_baseline", "spearman_rho"] > 0.8
    assert main(["evaluate", "--model", str(model_dir), "--data", str(tmp_path / "test.csv"),
                 "--train", str(tmp_path / "train.csv"), "--baselines", "cnn",
                 "--out", str(tmp_path / "x.csv")]) == 2
