"""PerformanceAnalyzer: the benchmark report, one self-contained HTML file.

A scorecard first (``<table id="scorecard">``: per task the best Hyena-GLT model and the best
baseline with 95% bootstrap intervals, their paired difference and a verdict), then per task a
detail table and figures, one timings table with its Pareto plot, training curves and
provenance, and a Predictions section (:mod:`hyena_glt.evaluation.prediction_outputs`:
what ``hyena-glt predict`` wrote, linked, and a per-base track against its annotation).
Numbers come from :mod:`hyena_glt.evaluation.scorecard`, figures from
:mod:`hyena_glt.evaluation.figures` (Plotly); the page is a Jinja2 template
(``templates/report.html.j2``) with plotly.js embedded once, so it opens offline and stays
interactive.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from hyena_glt import __version__
from hyena_glt.errors import DataError
from hyena_glt.evaluation import figures, provenance
from hyena_glt.evaluation.bootstrap import BootstrapSettings, Interval
from hyena_glt.evaluation.prediction_outputs import PredictionOutput, prediction_context
from hyena_glt.evaluation.scorecard import (
    PREDICTION_KEYS,
    TaskScores,
    load_tables,
    score_tasks,
)
from hyena_glt.io import atomic_file

__all__ = ["PerformanceAnalyzer"]

logger = logging.getLogger(__name__)

_TIMING_COLUMNS = {"dataset": "task", "model": "model", "latency_ms": "latency (ms)",
                   "latency_ms_iqr": "IQR (ms)", "throughput_seq_per_s": "sequences/s",
                   "size_bytes": "size (MB)", "n_parameters": "parameters",
                   "batch_size": "batch", "threads": "threads"}


def _interval(interval: Interval | None) -> str:
    if interval is None or math.isnan(interval.value):
        return "–"
    return f"{interval.value:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _html(figure: go.Figure | None, div_id: str) -> str | None:
    if figure is None:
        return None
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                          config={"displaylogo": False, "responsive": True})


def _scorecard_row(scores: TaskScores) -> dict[str, Any]:
    best, baseline = scores.best_model, scores.best_baseline
    delta = scores.delta
    return {"task": scores.task, "task_type": scores.task_type,
            "n_test": f"{scores.n_test:,}" + (f" ({scores.n_units:,} {scores.unit}s)"
                                               if scores.n_units != scores.n_test else ""),
            "primary": scores.primary,
            "best_model": best or "–", "best_baseline": baseline or "–",
            "model_value": _interval(scores.models[best].intervals[scores.primary]
                                     if best else None),
            "baseline_value": _interval(scores.models[baseline].intervals[scores.primary]
                                        if baseline else None),
            "delta": (f"{delta.delta:+.3f} [{delta.low:+.3f}, {delta.high:+.3f}]"
                      if delta else "–"),
            "verdict": delta.verdict if delta else
            ("no baseline to compare" if best else "no Hyena-GLT model"),
            "verdict_class": delta.verdict if delta and delta.verdict != "no significant "
            "difference" else ""}


def _task_figures(scores: TaskScores) -> list[go.Figure]:
    """The figures that suit the task type (module docstring of :mod:`figures`)."""
    shown = [name for name in (scores.best_model, scores.best_baseline) if name]
    result = [figures.metric_panel(scores)]
    if scores.n_classes == 0:
        return result + [figures.regression_scatter(scores)]
    if scores.n_classes == 2:
        result.append(figures.roc_pr(scores))
    probability_models = [n for n in shown if scores.models[n].probabilities]
    if probability_models:
        result.append(figures.confusion(scores, probability_models))
    if scores.n_classes == 2 and any(m.probabilities for m in scores.models.values()):
        result.append(figures.calibration(scores))
    if scores.task_type == "token_classification" and probability_models:
        result.append(figures.per_base_track(scores, probability_models))
    if scores.task_type == "variant_effect":
        result.append(figures.variant_scores(scores))
    return result


def _task_context(scores: TaskScores) -> dict[str, Any]:
    metrics = list(dict.fromkeys(m for model in scores.models.values() for m in model.intervals))
    rows = [{"name": name, "cells": [_interval(model.intervals.get(m)) for m in metrics]}
            for name, model in scores.models.items()]
    return {"task": scores.task, "task_type": scores.task_type, "n_test": f"{scores.n_test:,}",
            "n_units": f"{scores.n_units:,}", "unit": scores.unit, "metrics": metrics,
            "rows": rows, "figures": [_html(f, f"{scores.task}-figure-{i}") for i, f in
                                      enumerate(_task_figures(scores))]}


def _results_only_row(task: str) -> dict[str, Any]:
    return {"task": task, "task_type": "–", "n_test": "–", "primary": "–", "best_model": "–",
            "model_value": "–", "best_baseline": "–", "baseline_value": "–", "delta": "–",
            "verdict": "no per-example predictions: no interval or verdict",
            "verdict_class": ""}


def _timings(results: pd.DataFrame, tasks: Mapping[str, TaskScores]
             ) -> tuple[list[list[str]], list[str], str, list[str]]:
    """Rows of the one timings table, its columns, the machine note and Pareto figures."""
    if "latency_ms" not in results or results["latency_ms"].isna().all():
        return [], [], "", []
    timed = results.dropna(subset=["latency_ms"]).groupby(["dataset", "model"], sort=False
                                                          ).first().reset_index()
    columns = [c for c in _TIMING_COLUMNS if c in timed]
    rows = []
    for _, row in timed.iterrows():
        cells = []
        for column in columns:
            value = row[column]
            if column == "size_bytes":
                value = f"{value / 1e6:.2f}"
            elif column in ("latency_ms", "latency_ms_iqr", "throughput_seq_per_s"):
                value = f"{value:,.1f}"
            elif column in ("n_parameters", "batch_size", "threads"):
                value = "–" if pd.isna(value) else f"{int(value):,}"
            cells.append(str(value))
        rows.append(cells)
    machines = sorted(set(timed["machine"].dropna())) if "machine" in timed else []
    note = f"Machine: {'; '.join(machines)}." if machines else ""
    plots = []
    for task, part in timed.groupby("dataset", sort=False):
        scores = tasks.get(str(task))
        if scores is None or len(part) < 3:
            continue
        part = part.set_index("model")
        part["value"] = [scores.models[m].intervals[scores.primary].value
                         if m in scores.models else math.nan for m in part.index]
        plots.append(_html(figures.pareto(part, scores.primary, str(task)), f"{task}-pareto"))
    return rows, [_TIMING_COLUMNS[c] for c in columns], note, plots


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError("training log not found", path=str(path))
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"not a JSON object: {err.msg}", path=str(path),
                                line=number) from None
    return [r for r in records if isinstance(r, dict) and "step" in r]


class PerformanceAnalyzer:
    """Turn evaluation tables into the HTML report a scientist opens in any browser."""

    def __init__(self, title: str = "Hyena-GLT performance report",
                 bootstrap: BootstrapSettings | None = None) -> None:
        self.title, self.bootstrap = title, bootstrap or BootstrapSettings()

    def generate_report(self, results: Any, save_path: str | Path = "performance_report.html",
                        predictions: Any = None, training_logs: Sequence[str | Path] = (),
                        config: Mapping[str, Any] | None = None,
                        data_files: Sequence[str | Path] = (),
                        job_benchmarks: str | Path | None = None,
                        prediction_outputs: Sequence[PredictionOutput] = ()) -> Path:
        """Write the report atomically to ``save_path`` and return its path.

        Args:
            results: tidy results table(s) (``model, dataset, metric, value`` and the
                benchmark's cost columns), as DataFrames or Parquet/CSV/TSV paths.
            predictions: per-example prediction table(s)
                (:mod:`hyena_glt.evaluation.predictions`): the intervals, verdicts and
                figures; a task without them gets a scorecard row that says so.
            training_logs: ``metrics.jsonl`` files of training runs.
            config: the effective configuration, printed under provenance.
            data_files: input files whose SHA-256 goes under provenance.
            job_benchmarks: folder of Snakemake benchmark TSVs (wall time, peak memory).
            prediction_outputs: ``hyena-glt predict`` folders, linked relative to
                ``save_path`` (a per-base one with an annotation also gets its figure).

        Raises:
            DataError: a missing, empty or unreadable table, a missing column, NaN metrics
                or predictions, or a bad prediction folder or annotation, naming the file.
        """
        table = load_tables(results)
        has_predictions = predictions is not None and not (
            isinstance(predictions, (list, tuple)) and not predictions)
        frame = load_tables(predictions, PREDICTION_KEYS) if has_predictions else None
        tasks = score_tasks(table, frame, self.bootstrap)
        scorecard = [_scorecard_row(t) for t in tasks.values()]
        scorecard += [_results_only_row(str(task)) for task in table["dataset"].unique()
                      if str(task) not in tasks]
        timings, timing_columns, note, pareto = _timings(table, tasks)
        training = [_html(figures.training_curves(_read_jsonl(Path(p)),
                                                  "/".join(Path(p).parts[-3:-1])), f"train-{i}")
                    for i, p in enumerate(training_logs)]
        predicted = []
        for output in prediction_outputs:
            row, figure = prediction_context(output, Path(save_path).parent)
            predicted.append({**row, "figure": _html(figure, f"prediction-{output.name}")})
        page = self._template().render(
            title=self.title, version=__version__, plotly_js=plotly.offline.get_plotlyjs(),
            scorecard=scorecard, tasks=[_task_context(t) for t in tasks.values()],
            bootstrap=self.bootstrap.as_dict(), timings=timings,
            timings_columns=timing_columns, timings_note=note, pareto=pareto,
            training=[t for t in training if t], predictions=predicted, environment=provenance.environment(),
            versions=provenance.versions(), checksums=provenance.checksums(data_files),
            jobs=list(provenance.job_benchmarks(job_benchmarks).itertuples(index=False)),
            config=json.dumps(config, indent=2, default=str) if config else "")
        with atomic_file(save_path) as tmp:
            tmp.write_text(page, encoding="utf-8")
        logger.info("wrote report %s (%.1f MB)", save_path, len(page.encode()) / 1e6)
        return Path(save_path)

    @staticmethod
    def _template() -> jinja2.Template:
        environment = jinja2.Environment(
            loader=jinja2.PackageLoader("hyena_glt.evaluation", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined)
        return environment.get_template("report.html.j2")
