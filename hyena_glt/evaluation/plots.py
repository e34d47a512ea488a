"""Small inline-SVG charts for the HTML report: no plotting library, no network at view time.

Each function returns one ``<svg>`` element as a string (text escaped), sized in CSS pixels.
Colours come from one qualitative palette so a model keeps its colour across charts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["PALETTE", "bar_chart", "line_chart", "heatmap", "scatter_chart"]

#: Okabe-Ito colour-blind-safe palette.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000")
_MARGIN = dict(left=56, right=16, top=28, bottom=48)


def _text(x: float, y: float, text: str, anchor: str = "middle", size: int = 11,
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'{extra}>{html.escape(str(text))}</text>')


def _frame(width: int, height: int, title: str, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'aria-label="{html.escape(label or title)}" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">'
            + _text(width / 2, 16, title, size=13, extra='font-weight="600"')
            + "".join(body) + "</svg>")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return [low]
    return list(np.linspace(low, high, count))


def _axes(width: int, height: int, x_range: tuple[float, float], y_range: tuple[float, float],
          x_label: str, y_label: str, x_ticks: bool = True):
    """Gridlines, tick labels and axis titles; returns (elements, x->px, y->px)."""
    left, right = _MARGIN["left"], width - _MARGIN["right"]
    top, bottom = _MARGIN["top"], height - _MARGIN["bottom"]
    (x0, x1), (y0, y1) = x_range, y_range
    x_span, y_span = (x1 - x0) or 1.0, (y1 - y0) or 1.0

    def px(x: float) -> float:
        return left + (x - x0) / x_span * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y0) / y_span * (bottom - top)

    parts = [f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>']
    for y in _ticks(y0, y1):
        parts.append(f'<line x1="{left}" y1="{py(y):.1f}" x2="{right}" y2="{py(y):.1f}" '
                     f'stroke="#e5e5e5"/>')
        parts.append(_text(left - 6, py(y) + 4, f"{y:.3g}", anchor="end", size=10))
    if x_ticks:
        for x in _ticks(x0, x1):
            parts.append(_text(px(x), bottom + 14, f"{x:.3g}", size=10))
    parts.append(_text((left + right) / 2, height - 8, x_label))
    parts.append(_text(14, (top + bottom) / 2, y_label,
                       extra=f'transform="rotate(-90 14 {(top + bottom) / 2:.1f})"'))
    return parts, px, py


def bar_chart(values: Mapping[str, float], title: str, y_label: str = "",
              highlight: str | None = None, width: int = 420, height: int = 260) -> str:
    """Vertical bars, one per key; ``highlight`` (e.g. the best model) gets a dark outline."""
    names = list(values)
    finite = [v for v in values.values() if math.isfinite(v)] or [0.0]
    top = max(finite) * 1.1 if max(finite) > 0 else 1.0
    parts, px, py = _axes(width, height, (0, len(names)), (min(0.0, min(finite)), top), "",
                          y_label, x_ticks=False)
    slot = (px(1) - px(0))
    for i, name in enumerate(names):
        value = values[name] if math.isfinite(values[name]) else 0.0
        x, y0, y1 = px(i) + slot * 0.15, py(max(value, 0)), py(min(value, 0))
        stroke = ' stroke="#000" stroke-width="2"' if name == highlight else ""
        parts.append(f'<rect x="{x:.1f}" y="{y0:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{max(y1 - y0, 0.5):.1f}" fill="{PALETTE[i % len(PALETTE)]}"'
                     f'{stroke}><title>{html.escape(f"{name}: {values[name]:.4g}")}</title></rect>')
        parts.append(_text(px(i) + slot / 2, y0 - 4, f"{values[name]:.3g}", size=10))
        parts.append(_text(px(i) + slot / 2, py(min(0.0, min(finite))) + 14, name, size=10))
    return _frame(width, height, title, parts, f"bar chart: {title}")


def line_chart(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str,
               x_label: str = "", y_label: str = "", diagonal: bool = False,
               width: int = 420, height: int = 300) -> str:
    """One polyline per series ``name -> (x, y)``, with a legend; ``diagonal`` adds y = x."""
    xs = np.concatenate([np.asarray(x, float) for x, _ in series.values()] or [np.zeros(1)])
    ys = np.concatenate([np.asarray(y, float) for _, y in series.values()] or [np.zeros(1)])
    x_range = (float(np.nanmin(xs)), float(np.nanmax(xs)))
    y_range = (float(np.nanmin(ys)), float(np.nanmax(ys)))
    if diagonal:
        x_range, y_range = (0.0, 1.0), (0.0, 1.0)
    parts, px, py = _axes(width, height, x_range, y_range, x_label, y_label)
    if diagonal:
        parts.append(f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}"'
                     f' stroke="#999" stroke-dasharray="4 3"/>')
    for i, (name, (x, y)) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x, y, strict=True)
                          if math.isfinite(a) and math.isfinite(b))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" '
                     f'points="{points}"><title>{html.escape(name)}</title></polyline>')
        legend_y = height - _MARGIN["bottom"] - 14 * (len(series) - i)
        parts.append(f'<rect x="{width - 150}" y="{legend_y - 8}" width="10" height="10" '
                     f'fill="{colour}"/>')
        parts.append(_text(width - 136, legend_y + 1, name, anchor="start", size=10,
                           extra='paint-order="stroke" stroke="#fff" stroke-width="3"'))
    return _frame(width, height, title, parts, f"line chart: {title}")


def scatter_chart(points: Sequence[tuple[str, float, float, float]], title: str,
                  x_label: str = "", y_label: str = "", width: int = 480, height: int = 320
                  ) -> str:
    """Labelled points ``(name, x, y, size)``; marker area grows with ``size`` (e.g. bytes)."""
    xs = [p[1] for p in points]
    ys = [p[2] for p in points]
    pad_x = (max(xs) - min(xs)) * 0.1 or 1.0
    pad_y = (max(ys) - min(ys)) * 0.1 or 0.05
    parts, px, py = _axes(width, height, (min(xs) - pad_x, max(xs) + pad_x),
                          (min(ys) - pad_y, max(ys) + pad_y), x_label, y_label)
    biggest = max(p[3] for p in points) or 1.0
    for i, (name, x, y, size) in enumerate(points):
        radius = 4 + 12 * math.sqrt(max(size, 0) / biggest)
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{radius:.1f}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}" fill-opacity="0.7"><title>'
                     f'{html.escape(f"{name}: {x:.4g}, {y:.4g}, size {size:.4g}")}</title>'
                     f'</circle>')
        parts.append(_text(px(x) + radius + 3, py(y) + 4, name, anchor="start", size=10))
    return _frame(width, height, title, parts, f"scatter chart: {title}")


def _cell_text(value: float) -> str:
    """Counts (confusion matrices) in full, other values to 3 significant digits."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def heatmap(matrix: Sequence[Sequence[float]], row_labels: Sequence[str],
            col_labels: Sequence[str], title: str, x_label: str = "", y_label: str = "",
            cell: int = 0, width: int = 360) -> str:
    """Matrix as shaded cells (white -> blue), values printed when the cells are large enough."""
    values = np.asarray(matrix, dtype=float)
    n_rows, n_cols = values.shape
    cell = cell or max(2, min(60, (width - 80) // max(n_cols, 1)))
    left, top = 70, 34
    height = top + cell * n_rows + 40
    width = max(left + cell * n_cols + 16, 8 * len(title) + 16)
    high = float(np.nanmax(values)) if values.size and np.nanmax(values) > 0 else 1.0
    parts = []
    for r in range(n_rows):
        for c in range(n_cols):
            shade = values[r, c] / high if math.isfinite(values[r, c]) else 0.0
            light = int(255 - 200 * max(0.0, min(1.0, shade)))
            parts.append(f'<rect x="{left + c * cell}" y="{top + r * cell}" width="{cell}" '
                         f'height="{cell}" fill="rgb({light},{light + (255 - light) // 3},255)">'
                         f'<title>{values[r, c]:.4g}</title></rect>')
            if cell >= 24:
                colour = "#fff" if shade > 0.6 else "#000"
                parts.append(_text(left + (c + 0.5) * cell, top + (r + 0.5) * cell + 4,
                                   _cell_text(values[r, c]), size=10,
                                   extra=f'fill="{colour}"'))
    if cell >= 12:
        for r, name in enumerate(row_labels):
            parts.append(_text(left - 4, top + (r + 0.5) * cell + 4, name, anchor="end",
                               size=10))
        for c, name in enumerate(col_labels):
            parts.append(_text(left + (c + 0.5) * cell, top + n_rows * cell + 14, name, size=10))
    parts.append(_text(left + n_cols * cell / 2, height - 6, x_label))
    parts.append(_text(12, top + n_rows * cell / 2, y_label,
                       extra=f'transform="rotate(-90 12 {top + n_rows * cell / 2:.1f})"'))
    return _frame(width, height, title, parts, f"heatmap: {title}")
