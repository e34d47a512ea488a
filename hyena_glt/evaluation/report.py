"""PerformanceAnalyzer: one self-contained HTML report of a benchmark (inline CSS + SVG, no URLs).

Sections (each only when its input is given): summary (the best model per dataset and metric,
then model x metric per dataset with the best highlighted),  per-metric bar charts, ROC and PR curves and the confusion matrix
from test predictions (:meth:`ModelBenchmark.predictions_table`), training curves from
``metrics.jsonl``, a compression Pareto plot (accuracy vs latency, marker area = size) from
compression reports, and provenance (package version, date, config, SHA-256 of data files).

Results may be several tidy tables (benchmark results, ``hyena-glt evaluate`` tables of other
tasks): they are concatenated; a (model, dataset, metric) given twice is an error.

A compression report is JSON: either the ``compression_report.json`` of ``hyena-glt quantize |
prune | distill | export`` (:class:`hyena_glt.optimization.CompressionReport`, one model before
and after: the "after" point is named by the method, the "before" points of all reports of a
group become one "original" point with their median values), or a list (or
``{"variants": [...]}``) of objects with ``name``, ``accuracy``, ``latency_ms`` and
``size_bytes``. Reports are grouped (one Pareto plot per group, e.g. per task) by the label of
``(label, path)`` pairs; plain paths form one group. The Pareto front is the set of points no
other point beats or ties in accuracy, latency and size at once.
"""

from __future__ import annotations

import datetime
import html
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from hyena_glt import __version__
from hyena_glt.errors import DataError
from hyena_glt.evaluation import plots
from hyena_glt.io import atomic_file, sha256sum

__all__ = ["PerformanceAnalyzer", "load_table", "load_tables"]

logger = logging.getLogger(__name__)

#: Metrics where lower is better (everything else: higher is better).
LOWER_IS_BETTER = {"mse", "mae", "loss", "latency_ms", "perplexity", "edit_distance",
                   "n_parameters", "size_bytes"}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;
padding:16px 24px;color:#222;background:#fff}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;
margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}td.best{background:#d8f0d8;font-weight:700}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #eee;background:#fff}
.muted{color:#666;font-size:.85em}pre{background:#f6f6f6;padding:8px;overflow:auto;
font-size:.8em}
"""


def _number(value: float) -> str:
    """Counts with thousands separators, other values to 4 significant digits; NaN as "–"."""
    if pd.isna(value):
        return "–"
    if abs(value) >= 1000 and float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4g}"


def load_table(table: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A DataFrame as is, or read from Parquet (``.parquet``), TSV (``.tsv``) or CSV."""
    if isinstance(table, pd.DataFrame):
        return table
    path = Path(table)
    if not path.is_file():
        raise DataError("results table not found", path=str(path))
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")


def _is_headline(metric: str) -> bool:
    """Metrics the summary and charts show: not per-class/per-fold breakdowns (``a/b``) nor
    counts (``n_*``, ``support``) and settings (``bin_size``)."""
    return "/" not in metric and not metric.startswith("n_") and metric not in {"bin_size",
                                                                                 "support"}


def load_tables(tables: pd.DataFrame | str | Path | Sequence[pd.DataFrame | str | Path]
                ) -> pd.DataFrame:
    """One table or several concatenated (missing columns become NaN)."""
    if isinstance(tables, (pd.DataFrame, str, Path)):
        return load_table(tables)
    frames = [load_table(t) for t in tables]
    if not frames:
        raise DataError("no results table given")
    return pd.concat(frames, ignore_index=True)


def _check_unique(table: pd.DataFrame) -> None:
    keys = ["model", "dataset", "metric"]
    twice = table[table.duplicated(keys, keep=False)]
    if len(twice):
        model, dataset, metric = twice.iloc[0][keys]
        raise DataError(f"model {model!r}, dataset {dataset!r}, metric {metric!r} appears more "
                        "than once in the results; give the models or datasets distinct labels")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"not a JSON object: {err.msg}", path=str(path),
                                line=number) from None
    return records


def _read_compression(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(variant points, "before" points) of one compression report (module docstring)."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise DataError(f"cannot read compression report: {err.strerror}", path=str(path)) from None
    except json.JSONDecodeError as err:
        raise DataError(f"compression report is not JSON: {err.msg}", path=str(path),
                        line=err.lineno) from None
    if isinstance(data, dict) and {"method", "before", "after"} <= set(data):
        # hyena_glt.optimization.CompressionReport.to_dict(): one model before and after.
        before, after = ({"name": name, "accuracy": m.get("metric"),
                          "latency_ms": m.get("latency_ms"), "size_bytes": m.get("size_bytes")}
                         for name, m in (("original", data["before"]),
                                         (data["method"], data["after"])))
        if any(v["accuracy"] is None or v["latency_ms"] is None for v in (before, after)):
            raise DataError("compression report has no metric/latency (measured without a "
                            "validation loader)", path=str(path))
        return [after], [before]
    variants = data.get("variants", []) if isinstance(data, dict) else data
    needed = ("name", "accuracy", "latency_ms", "size_bytes")
    for i, variant in enumerate(variants):
        missing = [k for k in needed if k not in variant]
        if missing:
            raise DataError(f"compression variant lacks {missing}", path=str(path),
                            record=str(i))
    return list(variants), []


def _compression_groups(reports: Sequence[str | Path | tuple[str, str | Path]]
                        ) -> dict[str, list[tuple[str, float, float, float]]]:
    """``{group: [(name, latency_ms, accuracy, size_bytes), ...]}``; the "before" points of a
    group's reports merged into one "original" point (median of each value)."""
    variants: dict[str, list[dict[str, Any]]] = {}
    originals: dict[str, list[dict[str, Any]]] = {}
    for report in reports:
        group, path = report if isinstance(report, tuple) else ("", report)
        after, before = _read_compression(Path(path))
        variants.setdefault(str(group), []).extend(after)
        originals.setdefault(str(group), []).extend(before)
    groups = {}
    for group, points in variants.items():
        if originals[group]:
            points = [{"name": "original", **{k: float(np.median([float(o[k]) for o in
                                                                  originals[group]]))
                                              for k in ("accuracy", "latency_ms",
                                                        "size_bytes")}}] + points
        groups[group] = [(str(v["name"]), float(v["latency_ms"]), float(v["accuracy"]),
                          float(v["size_bytes"])) for v in points]
    return groups


class PerformanceAnalyzer:
    """Turn benchmark results into an HTML report a scientist can open in any browser."""

    def __init__(self, title: str = "Hyena-GLT performance report") -> None:
        self.title = title

    def generate_report(self, results: Any,
                        save_path: str | Path = "performance_report.html",
                        predictions: Any = None,
                        training_logs: Sequence[str | Path] = (),
                        compression_reports: Sequence[str | Path | tuple[str, str | Path]] = (),
                        config: Mapping[str, Any] | None = None,
                        data_files: Sequence[str | Path] = ()) -> Path:
        """Write the report atomically to ``save_path`` and return its path.

        Args:
            results: a tidy results table (``model, dataset, metric, value`` and optionally
                the cost columns of :meth:`ModelBenchmark.run`), its Parquet/CSV file, or a
                list of them (concatenated).
            predictions: :meth:`ModelBenchmark.predictions_table` (or its file, or a list of
                them) for ROC/PR curves and confusion matrices.
            training_logs: ``metrics.jsonl`` files of training runs (curves over ``step``).
            compression_reports: JSON files of compressed variants, or ``(group, path)`` pairs
                for one Pareto plot per group (module docstring).
            config: settings to print under provenance (e.g. the model config).
            data_files: input files whose SHA-256 goes under provenance.

        Raises:
            DataError: a missing column or unreadable input, naming the file.
        """
        table = load_tables(results)
        missing = {"model", "dataset", "metric", "value"} - set(table.columns)
        if missing:
            raise DataError(f"results table lacks column(s) {sorted(missing)}; it has "
                            f"{list(table.columns)}")
        _check_unique(table)
        sections = [self._summary(table), self._bar_charts(table)]
        if predictions is not None and not (isinstance(predictions, (list, tuple))
                                            and not predictions):
            sections.append(self._curves(load_tables(predictions)))
        if training_logs:
            sections.append(self._training(training_logs))
        if compression_reports:
            sections.append(self._pareto(compression_reports))
        sections.append(self._provenance(config, data_files))
        page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width,initial-scale=1">'
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
                f"<h1>{html.escape(self.title)}</h1>"
                f'<p class="muted">hyena-glt {html.escape(__version__)} · generated '
                f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}</p>"
                + "".join(sections) + "</body></html>")
        with atomic_file(save_path) as tmp:
            tmp.write_text(page, encoding="utf-8")
        logger.info("wrote report %s", save_path)
        return Path(save_path)

    @staticmethod
    def _summary(table: pd.DataFrame) -> str:
        table = table[table["metric"].map(_is_headline)]
        parts = ['<section id="summary"><h2>Summary</h2><p class="muted">Best model per '
                 'dataset (task) and metric; below, every model with the best highlighted. '
                 'Per-class and per-fold values are in the result tables.</p>',
                 "<table class='best-per-task'><tr><th>dataset</th><th>metric</th>"
                 "<th>best model</th><th>value</th></tr>"]
        for (dataset, metric), rows in table.groupby(["dataset", "metric"], sort=False):
            rows = rows[rows["value"].notna()]
            if len(rows):
                best = rows.loc[rows["value"].idxmin() if metric in LOWER_IS_BETTER
                                else rows["value"].idxmax()]
                parts.append(f"<tr><td>{html.escape(str(dataset))}</td><td>"
                             f"{html.escape(str(metric))}</td><td class=best>"
                             f"{html.escape(str(best['model']))}</td><td>"
                             f"{_number(best['value'])}</td></tr>")
        parts.append("</table>")
        costs = [c for c in ("n_parameters", "size_bytes", "latency_ms", "throughput_seq_per_s")
                 if c in table.columns]
        for dataset, rows in table.groupby("dataset", sort=False):
            wide = rows.pivot_table(index="model", columns="metric", values="value",
                                    sort=False, dropna=False)
            for cost in costs:
                values = rows.groupby("model", sort=False)[cost].first()
                if values.notna().any():
                    wide[cost] = values
            best = {m: (wide[m].idxmin() if m in LOWER_IS_BETTER else wide[m].idxmax())
                    for m in wide.columns if wide[m].notna().any()}
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in wide.columns)
            parts.append(f"<h3>{html.escape(str(dataset))}</h3><table class='summary'>"
                         f"<tr><th>model</th>{head}</tr>")
            for model, values in wide.iterrows():
                cells = "".join(
                    f'<td{" class=best" if best.get(c) == model else ""}>{_number(values[c])}</td>'
                    for c in wide.columns)
                parts.append(f"<tr><td>{html.escape(str(model))}</td>{cells}</tr>")
            parts.append("</table>")
        return "".join(parts) + "</section>"

    @staticmethod
    def _bar_charts(table: pd.DataFrame) -> str:
        charts = []
        table = table[table["metric"].map(_is_headline) & table["value"].notna()]
        for (dataset, metric), rows in table.groupby(["dataset", "metric"], sort=False):
            values = dict(zip(rows["model"].astype(str), rows["value"].astype(float),
                              strict=True))
            best = (min if metric in LOWER_IS_BETTER else max)(values, key=values.get)
            charts.append(plots.bar_chart(values, f"{metric} · {dataset}", metric, best))
        if "latency_ms" in table.columns:
            for dataset, rows in table.groupby("dataset", sort=False):
                first = rows.groupby("model", sort=False)["latency_ms"].first().dropna()
                if len(first):
                    charts.append(plots.bar_chart(
                        dict(zip(first.index.astype(str), first, strict=True)),
                        f"latency per batch (ms) · {dataset}", "ms"))
        return ('<section id="metrics"><h2>Metrics</h2><div class="charts">'
                + "".join(charts) + "</div></section>")

    @staticmethod
    def _curves(predictions: pd.DataFrame) -> str:
        charts = []
        prob_columns = sorted((c for c in predictions.columns if c.startswith("prob_")),
                              key=lambda c: int(c.split("_")[1]))
        for dataset, rows in predictions.groupby("dataset", sort=False):
            roc, pr = {}, {}
            for model, part in rows.groupby("model", sort=False):
                probs = part[prob_columns].dropna(axis=1).to_numpy(float)
                target = part["target"].to_numpy(int)
                if probs.shape[1] == 2 and len(np.unique(target)) == 2:
                    fpr, tpr, _ = roc_curve(target, probs[:, 1])
                    precision, recall, _ = precision_recall_curve(target, probs[:, 1])
                    roc[str(model)] = (fpr, tpr)
                    pr[str(model)] = (recall, precision)
                labels = [str(k) for k in range(probs.shape[1])]
                matrix = confusion_matrix(target, probs.argmax(1), labels=range(len(labels)))
                charts.append(plots.heatmap(matrix, labels, labels, f"confusion · {model}",
                                            "predicted", "true"))
            if roc:
                charts.insert(0, plots.line_chart(roc, f"ROC · {dataset}",
                                                  "false positive rate", "true positive rate",
                                                  diagonal=True))
                charts.insert(1, plots.line_chart(pr, f"precision-recall · {dataset}",
                                                  "recall", "precision", diagonal=True))
        return ('<section id="curves"><h2>ROC, PR and confusion matrices</h2>'
                '<div class="charts">' + "".join(charts) + "</div></section>")

    @staticmethod
    def _training(paths: Sequence[str | Path]) -> str:
        charts = []
        for path in map(Path, paths):
            records = [r for r in _read_jsonl(path) if "step" in r]
            keys = sorted({k for r in records for k, v in r.items()
                           if k != "step" and isinstance(v, (int, float))
                           and ("loss" in k or k.startswith("eval_"))})
            for group in ([k for k in keys if "loss" in k], [k for k in keys if "loss" not in k]):
                series = {k: ([r["step"] for r in records if k in r],
                              [float(r[k]) for r in records if k in r]) for k in group}
                if series:
                    charts.append(plots.line_chart(series, f"{path.parent.name}/{path.name}",
                                                   "step", ", ".join(group)[:40]))
        return ('<section id="training"><h2>Training curves</h2><div class="charts">'
                + "".join(charts) + "</div></section>")

    @staticmethod
    def _pareto(reports: Sequence[str | Path | tuple[str, str | Path]]) -> str:
        parts = ['<section id="compression"><h2>Compression: accuracy vs latency vs size</h2>']
        for group, points in _compression_groups(reports).items():
            front = [p for p in points if not any(
                q != p and q[1] <= p[1] and q[2] >= p[2] and q[3] <= p[3] for q in points)]
            rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{_number(a)}</td>"
                           f"<td>{_number(lat)}</td><td>{_number(s)}</td>"
                           f"<td>{'yes' if (n, lat, a, s) in front else ''}</td></tr>"
                           for n, lat, a, s in points)
            title = "accuracy vs latency (marker area = size)" + (f" · {group}" if group else "")
            parts.append((f"<h3>{html.escape(group)}</h3>" if group else "")
                         + plots.scatter_chart(points, title, "latency (ms)", "accuracy")
                         + "<table><tr><th>variant</th><th>accuracy</th><th>latency_ms</th>"
                           "<th>size_bytes</th><th>Pareto front</th></tr>" + rows + "</table>")
        return "".join(parts) + "</section>"

    @staticmethod
    def _provenance(config: Mapping[str, Any] | None, data_files: Sequence[str | Path]) -> str:
        rows = "".join(f"<tr><td>{html.escape(str(p))}</td><td><code>{sha256sum(p)}</code></td>"
                       f"</tr>" for p in data_files)
        config_text = (html.escape(json.dumps(config, indent=2, default=str), quote=False)
                       if config else "")
        return ('<section id="provenance"><h2>Provenance</h2>'
                f"<p>hyena-glt {html.escape(__version__)}, generated "
                f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}</p>"
                + (f"<table><tr><th>data file</th><th>SHA-256</th></tr>{rows}</table>"
                   if rows else "")
                + (f"<h3>Config</h3><pre>{config_text}</pre>" if config_text else "")
                + "</section>")
