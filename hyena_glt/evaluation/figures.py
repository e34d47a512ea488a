"""The report's figures, as Plotly figures (interactive; plotly.js is embedded once per page by
:mod:`hyena_glt.evaluation.report`, so each figure here is only its data and layout).

Baselines are drawn in grey dashes and Hyena-GLT models in colour throughout, so a reader
tells the families apart at a glance. Long curves are thinned to a few hundred points so the
report stays small.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from hyena_glt.evaluation.predictions import score_matrix
from hyena_glt.evaluation.scorecard import TaskScores, is_baseline

__all__ = ["metric_panel", "roc_pr", "confusion", "calibration", "per_base_track",
           "prediction_track", "variant_scores", "regression_scatter", "pareto",
           "training_curves"]

_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"]
_GREYS = ["#555555", "#999999", "#bbbbbb"]
_MAX_POINTS = 300


def _layout(figure: go.Figure, title: str, height: int = 360) -> go.Figure:
    figure.update_layout(title=title, height=height, margin={"l": 60, "r": 20, "t": 50,
                                                             "b": 50},
                         template="plotly_white", legend={"font": {"size": 11}})
    return figure


def _styles(names: Sequence[str]) -> dict[str, dict]:
    """Line style per model: colours for Hyena-GLT models, grey dashes for baselines."""
    styles, colour, grey = {}, 0, 0
    for name in names:
        if is_baseline(name):
            styles[name] = {"color": _GREYS[grey % len(_GREYS)], "dash": "dash"}
            grey += 1
        else:
            styles[name] = {"color": _COLOURS[colour % len(_COLOURS)], "dash": "solid"}
            colour += 1
    return styles


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= _MAX_POINTS:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, _MAX_POINTS).astype(int))
    return x[keep], y[keep]


def metric_panel(scores: TaskScores) -> go.Figure:
    """Models x metrics: each value with its 95% interval as whiskers (one subplot per
    metric, models on the y axis; baselines as open grey diamonds)."""
    metrics = list(dict.fromkeys(m for model in scores.models.values() for m in model.intervals))
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics, shared_yaxes=True)
    styles = _styles(list(scores.models))
    for column, metric in enumerate(metrics, start=1):
        for name, model in scores.models.items():
            if metric not in model.intervals:
                continue
            interval = model.intervals[metric]
            figure.add_trace(go.Scatter(
                x=[interval.value], y=[name], mode="markers", showlegend=False,
                marker={"color": styles[name]["color"], "size": 10,
                        "symbol": "diamond-open" if model.baseline else "circle"},
                error_x={"type": "data", "symmetric": False,
                         "array": [interval.high - interval.value],
                         "arrayminus": [interval.value - interval.low]},
                hovertemplate=f"{name}<br>{metric} %{{x:.3f}} "
                              f"[{interval.low:.3f}, {interval.high:.3f}]<extra></extra>"),
                row=1, col=column)
    return _layout(figure, f"{scores.task}: metrics with 95% bootstrap intervals "
                   f"(resampling {scores.unit}s)", 120 + 40 * len(scores.models))


def roc_pr(scores: TaskScores) -> go.Figure:
    """ROC and precision-recall curves of every model, overlaid (binary targets)."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("ROC", "precision-recall"))
    styles = _styles(list(scores.models))
    for name, model in scores.models.items():
        target, score = model.frame["target"].to_numpy(int), score_matrix(model.frame)
        score = score if score.ndim == 1 else score[:, 1]
        fpr, tpr, _ = roc_curve(target, score)
        precision, recall, _ = precision_recall_curve(target, score)
        auroc = model.intervals["auroc"].value
        for column, (x, y) in enumerate((_thin(fpr, tpr), _thin(recall[::-1], precision[::-1])),
                                        start=1):
            figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{name} ({auroc:.3f})",
                                        line=styles[name], legendgroup=name,
                                        showlegend=column == 1), row=1, col=column)
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", showlegend=False,
                                line={"color": "#cccccc", "dash": "dot"}), row=1, col=1)
    figure.update_xaxes(title_text="false positive rate", row=1, col=1)
    figure.update_yaxes(title_text="true positive rate", row=1, col=1)
    figure.update_xaxes(title_text="recall", row=1, col=2)
    figure.update_yaxes(title_text="precision", row=1, col=2)
    return _layout(figure, f"{scores.task}: ROC and precision-recall (legend: AUROC)")


def confusion(scores: TaskScores, names: Sequence[str]) -> go.Figure:
    """Confusion matrices (row-normalised, counts on hover) of ``names`` at the argmax."""
    figure = make_subplots(rows=1, cols=len(names), subplot_titles=list(names))
    for column, name in enumerate(names, start=1):
        frame = scores.models[name].frame
        score = score_matrix(frame)
        predicted = (score >= 0.5).astype(int) if score.ndim == 1 else score.argmax(1)
        target = frame["target"].to_numpy(int)
        labels = sorted(set(target) | set(predicted))
        counts = confusion_matrix(target, predicted, labels=labels)
        share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        figure.add_trace(go.Heatmap(z=share, x=[str(k) for k in labels],
                                    y=[str(k) for k in labels], customdata=counts, zmin=0,
                                    zmax=1, colorscale="Blues", showscale=column == 1,
                                    text=np.round(share, 2), texttemplate="%{text}",
                                    hovertemplate="true %{y}, predicted %{x}: %{customdata}"
                                                  "<extra></extra>"), row=1, col=column)
        figure.update_xaxes(title_text="predicted", row=1, col=column)
        figure.update_yaxes(title_text="true", autorange="reversed", row=1, col=column)
    return _layout(figure, f"{scores.task}: confusion matrices (share of each true class)")


def calibration(scores: TaskScores, bins: int = 10) -> go.Figure:
    """Reliability diagram: mean predicted P(class 1) against the observed share of class 1,
    per bin of predictions (models with probabilities only)."""
    figure = go.Figure()
    styles = _styles(list(scores.models))
    for name, model in scores.models.items():
        if not model.probabilities:
            continue
        score = score_matrix(model.frame)
        score = score if score.ndim == 1 else score[:, 1]
        target = model.frame["target"].to_numpy(int)
        which = np.minimum((score * bins).astype(int), bins - 1)
        used = np.flatnonzero(np.bincount(which, minlength=bins))
        mean = np.bincount(which, score, bins)[used] / np.bincount(which, minlength=bins)[used]
        share = np.bincount(which, target, bins)[used] / np.bincount(which, minlength=bins)[used]
        figure.add_trace(go.Scatter(x=mean, y=share, mode="lines+markers", name=name,
                                    line=styles[name]))
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                                line={"color": "#cccccc", "dash": "dot"}))
    figure.update_xaxes(title_text="mean predicted P(class 1)", range=[0, 1])
    figure.update_yaxes(title_text="observed share of class 1", range=[0, 1])
    return _layout(figure, f"{scores.task}: calibration (reliability diagram)")


def per_base_track(scores: TaskScores, names: Sequence[str]) -> go.Figure:
    """A held-out window, genome-browser style: the annotation (filled) and each model's
    per-base P(class 1). The window shown is the one with the most label changes."""
    frame = scores.models[names[0]].frame
    changes = frame.groupby("unit")["target"].apply(lambda t: int(np.abs(np.diff(t)).sum()))
    unit = changes.idxmax()
    figure = make_subplots(rows=len(names) + 1, cols=1, shared_xaxes=True,
                           vertical_spacing=0.04, row_titles=["annotation", *names])
    window = frame[frame["unit"] == unit]
    figure.add_trace(go.Scatter(x=window["position"], y=window["target"], mode="lines",
                                fill="tozeroy", line={"color": "#2ca02c", "shape": "hv"},
                                name="annotation"), row=1, col=1)
    styles = _styles(list(names))
    for row, name in enumerate(names, start=2):
        part = scores.models[name].frame
        part = part[part["unit"] == unit]
        figure.add_trace(go.Scatter(x=part["position"], y=part["score"], mode="lines",
                                    name=name, line=styles[name]), row=row, col=1)
        figure.update_yaxes(range=[0, 1], row=row, col=1)
    figure.update_xaxes(title_text="position on the genome (bp)", row=len(names) + 1, col=1)
    return _layout(figure, f"{scores.task}: a held-out window, per-base P(class 1)",
                   140 + 110 * len(names))


def _lane(intervals: Sequence[tuple[int, int]], label: str) -> tuple[list, list]:
    """x, y of thick horizontal segments, one per interval, broken by ``None``."""
    x: list = []
    for start, end in intervals:
        x += [start, end, None]
    return x, [label if value is not None else None for value in x]


def prediction_track(title: str, positions: np.ndarray, probability: np.ndarray,
                     threshold: float, predicted: Sequence[tuple[int, int]],
                     annotated: Sequence[tuple[int, int]], feature: str) -> go.Figure:
    """A whole contig, genome-browser style: the predicted per-base probability (already
    binned by the caller, so the page stays small) over two lanes, the predicted features and
    the annotated ones, on a shared axis that zooms together."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                           row_heights=[0.7, 0.3])
    figure.add_trace(go.Scatter(x=positions, y=probability, mode="lines", name="P(feature)",
                                line={"color": _COLOURS[0], "width": 1}), row=1, col=1)
    figure.add_hline(y=threshold, line={"color": _GREYS[1], "dash": "dash"}, row=1, col=1,
                     annotation_text=f"threshold {threshold:.3g}")
    for (label, intervals), colour in zip(((f"predicted {feature}", predicted),
                                           (f"annotated {feature}", annotated)),
                                          (_COLOURS[0], _COLOURS[2]), strict=True):
        x, y = _lane(intervals, label)
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name=label, connectgaps=False,
                                    line={"color": colour, "width": 12}), row=2, col=1)
    figure.update_yaxes(range=[0, 1], title_text="probability", row=1, col=1)
    figure.update_xaxes(title_text="position on the contig (bp)", row=2, col=1)
    return _layout(figure, title, 420)


def variant_scores(scores: TaskScores) -> go.Figure:
    """Per model: score distribution by class (box plots) and score along the gene."""
    names = list(scores.models)
    figure = make_subplots(rows=2, cols=len(names), subplot_titles=names,
                           vertical_spacing=0.15)
    for column, name in enumerate(names, start=1):
        frame = scores.models[name].frame
        score = score_matrix(frame)
        score = score if score.ndim == 1 else score[:, 1]
        for label, colour in ((0, "#1f77b4"), (1, "#d62728")):
            chosen = frame["target"].to_numpy() == label
            figure.add_trace(go.Box(y=score[chosen], name=f"class {label}",
                                    marker_color=colour, showlegend=False, boxpoints=False),
                             row=1, col=column)
            figure.add_trace(go.Scatter(x=frame["position"][chosen], y=score[chosen],
                                          mode="markers", marker={"size": 4, "color": colour,
                                                                  "opacity": 0.6},
                                          name=f"class {label}", showlegend=column == 1,
                                          legendgroup=str(label)), row=2, col=column)
        figure.update_xaxes(title_text="position (bp)", row=2, col=column)
    figure.update_yaxes(title_text="score (higher = class 1)", row=1, col=1)
    return _layout(figure, f"{scores.task}: variant scores by class and along the gene", 620)


def regression_scatter(scores: TaskScores) -> go.Figure:
    """Predicted against measured value, every model."""
    figure = go.Figure()
    styles = _styles(list(scores.models))
    for name, model in scores.models.items():
        figure.add_trace(go.Scatter(x=model.frame["target"], y=score_matrix(model.frame),
                                      mode="markers", name=name,
                                      marker={"color": styles[name]["color"], "size": 4}))
    figure.update_xaxes(title_text="measured")
    figure.update_yaxes(title_text="predicted")
    return _layout(figure, f"{scores.task}: predicted vs measured")


def pareto(costs: pd.DataFrame, metric: str, task: str) -> go.Figure:
    """Quality against throughput, marker area by size; the float model (``finetuned``) a
    star; the Pareto front (no other model better in quality, throughput and size) joined."""
    figure = go.Figure()
    points = costs.dropna(subset=["value", "throughput_seq_per_s", "size_bytes"])
    front = [name for name, p in points.iterrows() if not any(
        (q["value"] >= p["value"]) and (q["throughput_seq_per_s"] >= p["throughput_seq_per_s"])
        and (q["size_bytes"] <= p["size_bytes"]) and (other != name)
        and ((q["value"], q["throughput_seq_per_s"], q["size_bytes"])
             != (p["value"], p["throughput_seq_per_s"], p["size_bytes"]))
        for other, q in points.iterrows())]
    line = points.loc[front].sort_values("throughput_seq_per_s")
    figure.add_trace(go.Scatter(x=line["throughput_seq_per_s"], y=line["value"], mode="lines",
                                name="Pareto front", line={"color": "#cccccc"}))
    area = np.sqrt(points["size_bytes"] / points["size_bytes"].max()) * 30 + 6
    symbols = ["star" if n == "finetuned" else "diamond-open" if is_baseline(n) else "circle"
               for n in points.index]
    figure.add_trace(go.Scatter(
        x=points["throughput_seq_per_s"], y=points["value"], mode="markers+text",
        text=list(points.index), textposition="top center", name="models",
        marker={"size": area, "symbol": symbols, "color": "#1f77b4"},
        customdata=points["size_bytes"] / 1e6,
        hovertemplate="%{text}<br>" + metric + " %{y:.3f}<br>%{x:.1f} seq/s<br>"
                      "%{customdata:.2f} MB<extra></extra>"))
    figure.update_xaxes(title_text="throughput (sequences/s, same batch, same machine)",
                        type="log")
    figure.update_yaxes(title_text=metric)
    return _layout(figure, f"{task}: {metric} vs throughput (marker area = size; "
                   "star = float model)")


def training_curves(records: list[dict], title: str) -> go.Figure | None:
    """One axis per quantity: loss (train and held-out), held-out perplexity and accuracy or
    AUROC over steps, with curriculum stage boundaries as dotted lines."""
    quantities = [("loss", ("loss", "eval_loss")), ("perplexity", ("eval_perplexity",)),
                  ("accuracy", ("eval_accuracy",)), ("AUROC", ("eval_auroc",))]
    present = [(label, [k for k in keys if any(k in r for r in records)])
               for label, keys in quantities]
    present = [(label, keys) for label, keys in present if keys]
    if not present:
        return None
    figure = make_subplots(rows=len(present), cols=1, shared_xaxes=True,
                           vertical_spacing=0.06, row_titles=[label for label, _ in present])
    for row, (_, keys) in enumerate(present, start=1):
        for key in keys:
            points = [(r["step"], float(r[key])) for r in records if key in r]
            figure.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points],
                                        mode="lines+markers" if "eval" in key else "lines",
                                        name=key), row=row, col=1)
    stages = [r for i, r in enumerate(records) if i and "stage" in r
              and r["stage"] != records[i - 1].get("stage")]
    for record in stages:
        figure.add_vline(x=record["step"], line={"color": "#999999", "dash": "dot"})
    figure.update_xaxes(title_text="step", row=len(present), col=1)
    return _layout(figure, title, 120 + 170 * len(present))
