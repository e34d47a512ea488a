"""Promoter ablations: does pretraining help fine-tuning, and what does dynamic merging cost?

* ``promoters_pretraining``: ``hyena-glt-base`` (the bundled pretrained DNA model) fine-tuned
  with :class:`FineTuner` vs the same architecture from random weights, at several fractions
  of the training part (stratified subsets of the fixed split). Every run takes the same
  number of optimizer steps, so the curve shows data size, not compute. Models are named
  ``pretrained/<pct>%`` and ``scratch/<pct>%``.
* ``promoters_merging``: the task's Hyena-GLT with ``use_dynamic_merging`` on and off, the same
  optimizer steps; accuracy and training tokens/s (``train_tokens_per_s``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sklearn.model_selection import train_test_split

from hyena_glt.config import HyenaGLTConfig
from hyena_glt.training import resolve_model

from . import make_rows
from .sequence import (
    QUICK_STEPS,
    SPLIT_SEED,
    TASKS,
    Split,
    fit_hyena_glt,
    fixed_split,
    read_table,
    score,
)

__all__ = ["PRETRAINED", "FRACTIONS", "CURVE_STEPS", "FINETUNE", "MERGING_STEPS",
           "train_fraction", "promoters_pretraining", "promoters_merging"]

logger = logging.getLogger(__name__)

PRETRAINED = "hyena-glt-base"
#: Fractions of the training part: 126, 316 and 948 sequences. With CURVE_STEPS x batch 16 =
#: 960 sequences per run, every subset is seen at least once; larger fractions would not
#: add data within this CPU budget.
FRACTIONS = (0.02, 0.05, 0.15)
#: Optimizer steps of every curve run.
CURVE_STEPS = 60
#: Fine-tuning settings shared by the pretrained and the from-scratch runs of the curve.
FINETUNE: dict[str, Any] = {"learning_rate": 1e-3, "batch_size": 16, "warmup_steps": 10,
                            "dropout": 0.1}
#: Optimizer steps of each merging on/off run (batch 32: half an epoch of the training part).
MERGING_STEPS = 100
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


def promoters_merging(seed: int, quick: bool, out_dir: Path) -> list[dict]:
    """The promoter Hyena-GLT with dynamic merging on and off (the same steps)."""
    task = TASKS["promoters"]
    train, test = fixed_split(read_table(task.path), quick)
    rows: list[dict] = []
    for merging in (True, False):
        model = "merging_on" if merging else "merging_off"
        fit = fit_hyena_glt(task, train, seed, out_dir / "runs" / f"{model}-seed{seed}",
                            overrides={"use_dynamic_merging": merging},
                            max_steps=QUICK_STEPS if quick else MERGING_STEPS)
        steps = QUICK_STEPS if quick else MERGING_STEPS
        metrics = {**score(fit.classifier.predict_proba(test.sequences), test),
                   "train_tokens_per_s": fit.tokens_per_s}
        rows += make_rows("promoters_merging", model, seed, metrics, train_s=fit.train_s,
                          n_train=len(train), n_test=len(test),
                          note=f"{steps} steps")
    return rows
