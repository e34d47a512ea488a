"""Ablations: does pretraining help fine-tuning, what does dynamic merging cost, and what does
the k-mer path buy?

* ``promoters_pretraining``: ``hyena-glt-base`` (the bundled pretrained DNA model) fine-tuned
  with :class:`FineTuner` vs the same architecture from random weights, at several fractions
  of the training part (stratified subsets of the fixed split). Every run takes the same
  number of optimizer steps, so the curve shows data size, not compute. Models are named
  ``pretrained/<pct>%`` and ``scratch/<pct>%``.
* ``<task>_merging`` (promoters, enhancers, MultiLoc): the task's Hyena-GLT with
  ``use_dynamic_merging`` on and off, each with the task's full training budget (the same
  optimizer steps); accuracy and training tokens/s (``train_tokens_per_s``).
* ``<task>_kmer_path`` (promoters, enhancers): the task's Hyena-GLT with ``kmer_path`` on
  and off, the same way; ``cds_kmer_path`` does the same for the per-base within-chloroplast
  CDS task (:mod:`.cds`), whose Hyena-GLT has the path on by default.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.training import resolve_model

from . import cds, make_rows
from .sequence import (
    QUICK_STEPS,
    SPLIT_SEED,
    TASKS,
    Split,
    fit_hyena_glt,
    fixed_split,
    quick_task,
    read_table,
    score,
)

__all__ = ["PRETRAINED", "FRACTIONS", "CURVE_STEPS", "FINETUNE", "train_fraction",
           "promoters_pretraining", "on_off", "merging", "promoters_merging",
           "enhancers_merging", "multiloc_merging", "promoters_kmer_path", "enhancers_kmer_path",
           "cds_kmer_path"]

logger = logging.getLogger(__name__)

PRETRAINED = "hyena-glt-base"
#: Fractions of the training part: 126, 632 and all 6,323 sequences.
FRACTIONS = (0.02, 0.1, 1.0)
#: Optimizer steps of every curve run: x batch 16 = 3,200 sequences, so every subset but the
#: whole training part is seen at least 1.7 times, and that one half an epoch.
CURVE_STEPS = 200
#: Fine-tuning settings shared by the pretrained and the from-scratch runs of the curve.
FINETUNE: dict[str, Any] = {"learning_rate": 1e-3, "batch_size": 16, "warmup_steps": 10,
                            "dropout": 0.1}
#: Config fields of the pretrained model that are not its architecture.
_NOT_ARCHITECTURE = ("task_type", "num_classes", "id2label", "seed", "num_epochs", "extra",
                     "output_dim")


def train_fraction(train: Split, fraction: float) -> Split:
    """A stratified subset of ``train`` (``random_state=SPLIT_SEED``, the same for all seeds)."""
    if fraction >= 1.0:
        return train
    index, _ = train_test_split(range(len(train)), train_size=fraction,
                                stratify=train.labels, random_state=SPLIT_SEED)
    return Split([train.sequences[i] for i in index], train.labels[index], train.label_names)


def promoters_pretraining(seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """Learning curve with and without pretraining (``hyena-glt-base``) on promoters."""
    task = TASKS["promoters"]
    train, test = fixed_split(read_table(task.path), quick)
    base = HyenaGLTConfig.from_pretrained(resolve_model(PRETRAINED)).to_dict()
    architecture = {k: v for k, v in base.items() if k not in _NOT_ARCHITECTURE}
    steps = QUICK_STEPS if quick else CURVE_STEPS
    rows: list[dict] = []
    for fraction in (FRACTIONS[:1] if quick else FRACTIONS):
        part = train_fraction(train, fraction)
        for init, kwargs in (("pretrained", {"pretrained": PRETRAINED, "overrides": FINETUNE}),
                             ("scratch", {"overrides": {**architecture, **FINETUNE}})):
            model = f"{init}/{fraction:.0%}"
            fit = fit_hyena_glt(task, part, seed, out_dir / "runs" / f"{init}-{fraction}-seed{seed}",
                                epochs=10_000, max_steps=steps, **kwargs)
            metrics = score(fit.classifier.predict_proba(test.sequences), test)
            rows += make_rows("promoters_pretraining", model, seed, metrics,
                              train_s=fit.train_s, n_train=len(part), n_test=len(test),
                              note=f"{PRETRAINED} architecture, {steps} steps")
    return rows


def on_off(task_name: str, field: str, label: str, seed: int, quick: bool, out_dir: Path
           ) -> list[dict]:
    """A sequence task's Hyena-GLT with the boolean config ``field`` on and off, each with the
    task's own training budget; models ``<label>_on`` / ``<label>_off``."""
    task = quick_task(TASKS[task_name], quick)
    train, test = fixed_split(read_table(task.path), quick)
    rows: list[dict] = []
    for enabled in (True, False):
        model = f"{label}_on" if enabled else f"{label}_off"
        fit = fit_hyena_glt(task, train, seed, out_dir / "runs" / f"{model}-seed{seed}",
                            overrides={field: enabled},
                            max_steps=QUICK_STEPS if quick else None)
        metrics = {**score(fit.classifier.predict_proba(test.sequences), test),
                   "train_tokens_per_s": fit.tokens_per_s}
        rows += make_rows(f"{task_name}_{label}", model, seed, metrics, train_s=fit.train_s,
                          n_train=len(train), n_test=len(test),
                          note="quick" if quick else f"{task.epochs} epochs")
    return rows


def merging(task_name: str, seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """A sequence task's Hyena-GLT with dynamic merging on and off."""
    return on_off(task_name, "use_dynamic_merging", "merging", seed, quick, out_dir)


def promoters_merging(seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """Dynamic merging on vs off on promoters."""
    return merging("promoters", seed, quick, out_dir)


def enhancers_merging(seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """Dynamic merging on vs off on enhancers."""
    return merging("enhancers", seed, quick, out_dir)


def multiloc_merging(seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """Dynamic merging on vs off on MultiLoc."""
    return merging("multiloc", seed, quick, out_dir)


def promoters_kmer_path(seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """The k-mer path on vs off on promoters."""
    return on_off("promoters", "kmer_path", "kmer_path", seed, quick, out_dir)


def enhancers_kmer_path(seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """The k-mer path on vs off on enhancers."""
    return on_off("enhancers", "kmer_path", "kmer_path", seed, quick, out_dir)


def cds_kmer_path(seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """The per-base k-mer path on vs off on the within-chloroplast CDS task."""
    rows: list[dict] = []
    for enabled in (True, False):
        settings = dataclasses.replace(cds.HYENA, scratch={**cds.HYENA.scratch,
                                                           "kmer_path": enabled})
        for row in cds.run(seed, quick, out_dir, hyena=settings,
                           tasks=("cds_within_chloroplast",), models=("hyena_glt",)):
            rows.append({**row, "task": "cds_kmer_path",
                         "model": "kmer_path_on" if enabled else "kmer_path_off"})
    return rows
