"""Quality tasks of ``benchmarks/quality.py``: each trains Hyena-GLT beside the baselines.

A task is a function ``run(seed: int, quick: bool, out_dir: Path) -> list[dict]`` (registered
in ``quality.TASKS`` as ``"module:function"``) returning tidy rows with the keys of
:data:`ROW_FIELDS`, one row per (model, metric): :func:`make_rows` builds them. ``seed`` is the
training seed; the train/test split of every task is fixed, so seeds measure training variance.
``out_dir`` is the task's own folder for run directories and any extra files.

The real data live in ``shared/data`` next to the repository (``shared/data/SOURCES.md``);
:func:`shared_data` reads ``HYENA_GLT_SHARED_DATA`` when set (``quality.py --shared-data``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ROW_FIELDS", "SHARED_DATA_ENV", "make_rows", "shared_data"]

#: Columns of ``results.csv``; ``train_s`` is the wall time of fitting the model (seconds).
ROW_FIELDS = ("task", "model", "seed", "metric", "value", "train_s", "n_train", "n_test", "note")
SHARED_DATA_ENV = "HYENA_GLT_SHARED_DATA"


def shared_data() -> Path:
    """``$HYENA_GLT_SHARED_DATA``, else ``shared/data`` beside the repository."""
    default = Path(__file__).resolve().parents[3] / "shared" / "data"
    return Path(os.environ.get(SHARED_DATA_ENV, default))


def make_rows(task: str, model: str, seed: int, metrics: Mapping[str, float], *,
              train_s: float, n_train: int, n_test: int, note: str = "") -> list[dict]:
    """One tidy row per metric of one fitted model."""
    return [{"task": task, "model": model, "seed": seed, "metric": name, "value": float(value),
             "train_s": round(float(train_s), 2), "n_train": n_train, "n_test": n_test,
             "note": note} for name, value in metrics.items()]
