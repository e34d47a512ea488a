"""The report's numbers: every model of every task with 95% bootstrap intervals, the best
Hyena-GLT model against the best baseline by a paired bootstrap, and the checks that turn a
bad table into a named :class:`DataError` rather than a blank chart.

Input tables: results (``model, dataset, metric, value`` + the benchmark's cost columns) and
per-example predictions (:mod:`hyena_glt.evaluation.predictions`). A model whose name ends in
``_baseline`` is a baseline; every other is a Hyena-GLT model. Threshold metrics (F1, MCC)
and calibration need probabilities; a score outside [0, 1] (the zero-shot −Δ) is only ranked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hyena_glt.errors import DataError
from hyena_glt.evaluation.bootstrap import (
    UNITS,
    BootstrapSettings,
    Interval,
    PairedDelta,
    bootstrap_metric,
    paired_bootstrap,
    primary_metric,
)
from hyena_glt.evaluation.predictions import score_matrix

__all__ = ["load_table", "load_tables", "TaskScores", "score_tasks", "is_baseline",
           "RESULT_KEYS", "PREDICTION_KEYS"]

RESULT_KEYS = ("model", "dataset", "metric", "value")
PREDICTION_KEYS = ("model", "dataset", "target")


def is_baseline(model: str) -> bool:
    return model.endswith("_baseline")


def load_table(table: pd.DataFrame | str | Path, needed: Sequence[str] = RESULT_KEYS
               ) -> pd.DataFrame:
    """A DataFrame as is, or read from Parquet (``.parquet``), TSV (``.tsv``) or CSV.

    Raises:
        DataError: the file is missing, empty or unreadable, or lacks a column of ``needed``.
    """
    source = "table" if isinstance(table, pd.DataFrame) else str(table)
    if isinstance(table, pd.DataFrame):
        frame = table
    else:
        path = Path(table)
        if not path.is_file():
            raise DataError("table not found; check the path (or rerun the job that writes "
                            "it)", path=source)
        if path.stat().st_size == 0:
            raise DataError("the table is an empty (0-byte) file; rerun the job that "
                            "writes it", path=source)
        try:
            frame = (pd.read_parquet(path) if path.suffix == ".parquet" else
                     pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ","))
        except (OSError, ValueError, pd.errors.ParserError) as err:
            raise DataError(f"cannot read the table: {err}", path=source) from None
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"the table lacks column(s) {missing}; it has {list(frame.columns)}",
                        path=source)
    if frame.empty:
        raise DataError("the table has no rows", path=source)
    return frame


def load_tables(tables: pd.DataFrame | str | Path | Sequence[pd.DataFrame | str | Path],
                needed: Sequence[str] = RESULT_KEYS) -> pd.DataFrame:
    """One table or several concatenated (:func:`load_table` checks each)."""
    if isinstance(tables, (pd.DataFrame, str, Path)):
        tables = [tables]
    if not tables:
        raise DataError("no results table given")
    return pd.concat([load_table(t, needed) for t in tables], ignore_index=True)


def _check_results(results: pd.DataFrame) -> None:
    twice = results[results.duplicated(["model", "dataset", "metric"], keep=False)]
    if len(twice):
        model, dataset, metric = twice.iloc[0][["model", "dataset", "metric"]]
        raise DataError(f"model {model!r}, dataset {dataset!r}, metric {metric!r} appears more "
                        "than once in the results; give the models or datasets distinct labels")
    values = pd.to_numeric(results["value"], errors="coerce")
    if values.isna().all():
        raise DataError("every metric value of the results is NaN or not a number; the "
                        "evaluation produced nothing to report")


@dataclass
class ModelScores:
    """One model on one task: its metric intervals and whether its scores are probabilities."""

    name: str
    intervals: dict[str, Interval]
    probabilities: bool
    frame: pd.DataFrame = field(repr=False)

    @property
    def baseline(self) -> bool:
        return is_baseline(self.name)


@dataclass
class TaskScores:
    """Everything the report says about one task."""

    task: str
    task_type: str
    n_test: int
    unit: str
    n_units: int
    primary: str
    models: dict[str, ModelScores]
    best_model: str | None = None
    best_baseline: str | None = None
    delta: PairedDelta | None = None

    @property
    def n_classes(self) -> int:
        frame = next(iter(self.models.values())).frame
        return 0 if "prediction" in frame else int(frame["target"].nunique())


def _metrics_for(task_type: str, n_classes: int, probabilities: bool) -> list[str]:
    if task_type == "regression" or n_classes == 0:
        return ["spearman_rho", "r2"] if probabilities else ["spearman_rho"]
    if n_classes > 2:
        return ["f1_macro", "accuracy", "mcc"]
    return ["auroc", "auprc", "f1_macro", "mcc"] if probabilities else ["auroc", "auprc"]


def _model_scores(name: str, frame: pd.DataFrame, task_type: str, n_classes: int,
                  settings: BootstrapSettings) -> ModelScores:
    scores = score_matrix(frame)
    if not np.all(np.isfinite(scores)):
        raise DataError(f"model {name!r}, dataset {frame['dataset'].iloc[0]!r}: "
                        f"{int((~np.isfinite(scores)).sum())} predictions are NaN or infinite")
    probabilities = "prediction" in frame or bool(scores.min() >= 0 and scores.max() <= 1)
    target, units = frame["target"].to_numpy(), frame["unit"].to_numpy()
    intervals = {metric: bootstrap_metric(metric, target, scores, units, settings)
                 for metric in _metrics_for(task_type, n_classes, probabilities)}
    return ModelScores(name, intervals, probabilities, frame)


def _best(models: dict[str, ModelScores], metric: str, baseline: bool) -> str | None:
    values = {name: m.intervals[metric].value for name, m in models.items()
              if m.baseline == baseline and metric in m.intervals
              and not math.isnan(m.intervals[metric].value)}
    return max(values, key=values.get) if values else None


def _task_scores(task: str, rows: pd.DataFrame, settings: BootstrapSettings) -> TaskScores:
    task_type = str(rows["task_type"].iloc[0]) if "task_type" in rows else \
        "sequence_classification"
    rows = rows.copy()
    if "unit" not in rows:
        rows["unit"] = rows.groupby("model").cumcount()
    frames = {str(name): part.reset_index(drop=True) for name, part in
              rows.groupby("model", sort=False)}
    sizes = {name: len(part) for name, part in frames.items()}
    if len(set(sizes.values())) > 1:
        raise DataError(f"task {task!r}: the models were scored on different test examples "
                        f"({sizes}); score every model on the same test part")
    first = next(iter(frames.values()))
    n_classes = 0 if "prediction" in first else int(first["target"].nunique())
    settings = BootstrapSettings(settings.n_resamples, settings.seed, settings.level,
                                 UNITS.get(task_type, "example"))
    models = {name: _model_scores(name, part, task_type, n_classes, settings)
              for name, part in frames.items()}
    primary = primary_metric(task_type, n_classes)
    scores = TaskScores(task, task_type, len(first), settings.unit,
                        int(first["unit"].nunique()), primary, models)
    scores.best_model = _best(models, primary, baseline=False)
    scores.best_baseline = _best(models, primary, baseline=True)
    if scores.best_model and scores.best_baseline:
        a, b = (frames[name] for name in (scores.best_model, scores.best_baseline))
        scores.delta = paired_bootstrap(primary, a["target"].to_numpy(), score_matrix(a),
                                        score_matrix(b), a["unit"].to_numpy(), settings)
    return scores


def score_tasks(results: pd.DataFrame, predictions: pd.DataFrame | None,
                settings: BootstrapSettings | None = None) -> dict[str, TaskScores]:
    """``{task: TaskScores}`` for each task with predictions (tasks only in the results
    have no intervals and are listed without).

    Raises:
        DataError: duplicate or all-NaN results; NaN predictions; models scored on
            different examples.
    """
    _check_results(results)
    if predictions is None or predictions.empty:
        return {}
    settings = settings or BootstrapSettings()
    return {str(task): _task_scores(str(task), rows, settings)
            for task, rows in predictions.groupby("dataset", sort=False)}
