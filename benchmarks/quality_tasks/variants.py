"""BRCA1 variant effect (Findlay et al. 2018 saturation genome editing): LOF vs functional.

All 3,893 SNVs are cut into ref/alt windows of the BRCA1 reference region
(``hyena_glt.ingest.vcf``) and split into 5 folds grouped by 100-bp position bin
(:func:`~hyena_glt.evaluation.variant_effect.position_group_folds`): neighbouring variants share
almost their whole window, so a random split would leak. Every model is fitted on four folds
and scores the fifth; AUROC is computed on the pooled out-of-fold scores (and per fold):

* ``hyena_glt``: ``HyenaGLTForVariantEffect`` (ref and alt windows through one backbone, the
  head reading their difference) fine-tuned from ``hyena-glt-base``;
* ``hyena_glt_zero_shot``: the base model's Δ log-likelihood (alt − ref; Evo 2's method),
  averaged over both strands, no training (its sign is checked in ``variant_direction``);
* ``context_logreg``: logistic regression on the one-hot ±10-nt context of ref and alt and on
  the stop codons the alt allele creates in each of the three frames through it.

The label is ``label_lof`` (1 = LOF; FUNC and INT are 0). ``consequence`` and the other
annotation columns are never read: they would give the answer away (nonsense = LOF).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from torch.utils.data import Subset

from hyena_glt.data import VariantEffectDataset
from hyena_glt.data.shards import read_table
from hyena_glt.evaluation.bootstrap import bootstrap_metric
from hyena_glt.evaluation.variant_baselines import ContextLogisticRegression, context_features
from hyena_glt.evaluation.variant_effect import (
    position_group_folds,
    predict_variant_effects,
    score_variants,
)
from hyena_glt.ingest.vcf import ingest_variants, position_bins, variants_from_table
from hyena_glt.model import HyenaGLTForCausalLM
from hyena_glt.training import FineTuner, resolve_model, seed_everything

from . import make_rows, shared_data

__all__ = ["WINDOW", "FOLDS", "FINETUNE", "run"]

logger = logging.getLogger(__name__)

SGE = "variants/brca1_sge_findlay2018/brca1_sge_variants.csv.gz"
REFERENCE = "variants/brca1_grch37/ref_brca1.fa.gz"
WINDOW = 256
FOLDS = 5
CONTEXT = 10  # bases either side of the variant in the logistic-regression features
#: Fine-tuning of the paired head (FineTuner arguments + epochs).
FINETUNE = {"backbone_lr": 1e-3, "batch_size": 32, "warmup_steps": 10, "dropout": 0.1,
            "epochs": 3}
QUICK = {"variants": 240, "folds": 2, "epochs": 1, "window": 64}


def _ingest(out_dir: Path, limit: int | None, window: int) -> Path:
    shards = out_dir / f"brca1_w{window}_{limit or 'all'}_both_strands"
    if not (shards / "manifest.json").is_file():
        variants = list(variants_from_table(
            shared_data() / SGE, chrom="ref_brca1", pos_column="pos_in_ref_brca1",
            label_column="label_lof"))
        if limit:
            variants = [variants[i] for i in np.random.default_rng(0).choice(
                len(variants), limit, replace=False)]
        ingest_variants(variants, shared_data() / REFERENCE, shards, window=window,
                        reverse_complement=True)
    return shards


def _finetune_fold(train: Subset, test: Subset, seed: int, epochs: int, out_dir: Path
                   ) -> np.ndarray:
    settings = {k: v for k, v in FINETUNE.items() if k != "epochs"}
    tuner = FineTuner("hyena-glt-base", task_type="variant_effect", num_classes=2, seed=seed,
                      output_dir=out_dir, **settings)
    model = tuner.finetune(train, num_epochs=epochs, show_progress=False)
    probabilities, _ = predict_variant_effects(model, test, batch_size=64)
    return probabilities[:, 1]


def _auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores))


def run(seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """Grouped-CV AUROC of LOF for the paired head, the zero-shot score and the LR baseline."""
    window = QUICK["window"] if quick else WINDOW
    shards = _ingest(out_dir, QUICK["variants"] if quick else None, window)
    dataset = VariantEffectDataset(shards, max_length=None, padding=None)
    labels = dataset.labels.astype(int)
    positions = read_table(shards, columns=["pos"]).column("pos").to_numpy()
    folds = position_group_folds(positions, n_splits=QUICK["folds"] if quick else FOLDS)
    epochs = QUICK["epochs"] if quick else FINETUNE["epochs"]
    n = len(dataset)
    rows: list[dict] = []

    def report(model: str, scores: np.ndarray, train_s: float, note: str) -> None:
        per_fold = [_auroc(labels[test], scores[test]) for _, test in folds]
        interval = bootstrap_metric("auroc", labels, scores, position_bins(positions))
        metrics = {"auroc": _auroc(labels, scores), "auroc_fold_mean": float(np.mean(per_fold)),
                   "auroc_fold_std": float(np.std(per_fold)), "auroc_ci_low": interval.low,
                   "auroc_ci_high": interval.high}
        logger.info("brca1 %s seed %d: %s", model, seed, metrics)
        rows.extend(make_rows("brca1_lof", model, seed, metrics, train_s=train_s,
                              n_train=n - n // len(folds), n_test=n, note=note))

    # Zero-shot: Δ log-likelihood of the pretrained base (lower = more damaging).
    base = HyenaGLTForCausalLM.from_pretrained(resolve_model("hyena-glt-base")).eval()
    delta = score_variants(base, shards, strand_average=True)["delta_ll"].to_numpy()
    report("hyena_glt_zero_shot", -delta, 0.0,
           "hyena-glt-base, -delta log-likelihood, both strands averaged")

    features = context_features(dataset, dataset.tokenizer.decode, CONTEXT)
    scores, start = np.zeros(n), time.perf_counter()
    for train, test in folds:
        fit = ContextLogisticRegression().fit(features[train], labels[train])
        scores[test] = fit.predict_proba(features[test])
    report("context_logreg", scores, time.perf_counter() - start,
           f"one-hot +-{CONTEXT} nt of ref and alt, stop codons gained")

    seed_everything(seed)
    scores, start = np.zeros(n), time.perf_counter()
    for number, (train, test) in enumerate(folds):
        scores[test] = _finetune_fold(Subset(dataset, train), Subset(dataset, test), seed,
                                      epochs, out_dir / f"run_seed{seed}_fold{number}")
    report("hyena_glt", scores, time.perf_counter() - start,
           f"paired ref/alt head from hyena-glt-base, {window}-nt windows, {epochs} epochs")
    return rows
