"""Shared bits of the examples: where the bundled data lives and a small model config."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from hyena_glt.config import HyenaGLTConfig

#: The repository's bundled example data (see resources/SOURCES.md).
RESOURCES = Path(__file__).resolve().parents[1] / "resources"
PROMOTERS = RESOURCES / "promoters" / "human_nontata_promoters.test_subset2000.csv.gz"


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every example shares."""
    result = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    result.add_argument("--quick", action="store_true",
                        help="a few hundred sequences and steps (runs in well under a minute)")
    result.add_argument("--out", type=Path, default=Path("example_outputs"),
                        help="folder for runs and outputs (default ./example_outputs)")
    return result


def small_config(**fields: object) -> HyenaGLTConfig:
    """A model small enough to train on a laptop CPU in seconds."""
    defaults: dict[str, object] = {"d_model": 64, "n_layers": 2, "num_heads": 4,
                                   "filter_order": 16, "vocab_size": 1024,
                                   "sequence_length": 256, "dropout": 0.1,
                                   "learning_rate": 2e-3, "warmup_steps": 5, "batch_size": 16}
    return HyenaGLTConfig(**{**defaults, **fields})


def promoter_split(n_train: int, n_test: int, seed: int = 0
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test rows of the bundled human non-TATA promoter table (251 nt)."""
    table = pd.read_csv(PROMOTERS)
    train, test = train_test_split(table, test_size=0.3, stratify=table["label"],
                                   random_state=seed)
    return (train.sample(n=min(n_train, len(train)), random_state=seed),
            test.sample(n=min(n_test, len(test)), random_state=seed))
