"""The report's Predictions section: what ``hyena-glt predict`` wrote, read back.

Each output folder (``results/predictions/{name}/``) is described from its ``summary.json``:
model, input, kind, the files written (linked relative to the report, so the links keep working
when the results folder is moved or archived whole) and the key counts. A per-base output
(``probability.bedGraph`` + ``features.bed``) given an annotation (GFF3 or BED) is compared
with it base by base over every predicted contig (a contig without an annotated feature counts
as all background): precision, recall, F1 and MCC of the predicted features from
:meth:`GenomicMetrics.classification` (the package's one implementation), and a
genome-browser-style figure of one contig (:func:`figures.prediction_track`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from hyena_glt.errors import DataError
from hyena_glt.evaluation import figures
from hyena_glt.evaluation.metrics import GenomicMetrics
from hyena_glt.ingest.annotation import FeatureInterval, paint_mask, read_annotation

__all__ = ["PredictionOutput", "prediction_context", "read_bedgraph", "binned_track"]

logger = logging.getLogger(__name__)

#: The file that tells each kind of output apart (``hyena-glt predict``'s module docstring).
KIND_FILES = {"probability.bedGraph": "tracks", "annotated.vcf.gz": "variants",
              "predictions.parquet": "predictions", "embeddings.parquet": "embeddings"}
#: summary.json counts shown in the table, with their labels.
COUNT_LABELS = {"contigs": "contigs", "bases": "bases", "features": "features",
                "records": "VCF records", "records_scored": "records scored",
                "alleles_scored": "ALT alleles scored", "sequences": "sequences",
                "truncated": "sequences truncated", "embedded": "sequences embedded"}
#: Points of the probability curve at most (bins of equal width): keeps the page small.
MAX_POINTS = 5000

Runs = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class PredictionOutput:
    """One ``hyena-glt predict`` folder for the report; ``annotation`` (GFF3/BED, its
    ``feature`` type) is what a per-base output is compared against."""

    name: str
    directory: Path
    annotation: Path | None = None
    feature: str = "CDS"


def _summary(directory: Path) -> dict[str, Any]:
    path = directory / "summary.json"
    if not directory.is_dir():
        raise DataError("prediction output folder not found", path=directory)
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError("no summary.json: not a folder written by hyena-glt predict",
                        path=directory) from None
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"unreadable: {err}", path=path) from None
    if not isinstance(summary, dict) or not isinstance(summary.get("outputs"), list):
        raise DataError("not a hyena-glt predict summary (no 'outputs' list)", path=path)
    for name in summary["outputs"]:
        if not (directory / name).is_file():
            raise DataError(f"summary.json lists {name}, which is missing", path=directory)
    return summary


def read_bedgraph(path: Path) -> dict[str, Runs]:
    """``{contig: (starts, ends, values)}`` of a bedGraph, in file order.

    Raises:
        DataError: a missing file or a line that is not ``chrom start end value`` (naming the
            line).
    """
    runs: dict[str, list[tuple[int, int, float]]] = {}
    try:
        with open(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip() or line.startswith(("track", "browser", "#")):
                    continue
                fields = line.split()
                try:
                    chrom, start, end, value = fields[0], int(fields[1]), int(fields[2]), \
                        float(fields[3])
                except (IndexError, ValueError):
                    raise DataError("a bedGraph line is 'chrom start end value'", path=path,
                                    line=number) from None
                runs.setdefault(chrom, []).append((start, end, value))
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"unreadable bedGraph: {err}", path=path) from None
    if not runs:
        raise DataError("the bedGraph holds no value", path=path)
    return {chrom: tuple(np.array(column) for column in zip(*rows, strict=True))
            for chrom, rows in runs.items()}


def binned_track(runs: Runs, length: int, bins: int = MAX_POINTS
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and the mean value in each of at most ``bins`` equal bins of a contig.

    Exact for contiguous runs: the running integral of a step function is piecewise linear, so
    interpolating it at the bin edges gives each bin's integral without expanding to bases.
    """
    starts, ends, values = runs
    edges = np.append(starts, ends[-1]).astype(float)
    integral = np.concatenate([[0.0], np.cumsum(values * (ends - starts))])
    cuts = np.unique(np.linspace(0, length, min(bins, length) + 1).round())
    means = np.diff(np.interp(cuts, edges, integral)) / np.diff(cuts)
    return (cuts[:-1] + cuts[1:]) / 2, means


def _by_contig(intervals: list[FeatureInterval]) -> dict[str, list[FeatureInterval]]:
    grouped: dict[str, list[FeatureInterval]] = {}
    for interval in intervals:
        grouped.setdefault(interval.seqid, []).append(interval)
    return grouped


def _comparison(output: PredictionOutput, annotation: Path, summary: dict[str, Any]
                ) -> tuple[dict[str, Any], go.Figure]:
    """Per-base metrics of the predicted features against the annotation, and the figure."""
    bedgraph = read_bedgraph(output.directory / "probability.bedGraph")
    lengths = {chrom: int(runs[1].max()) for chrom, runs in bedgraph.items()}
    bed = output.directory / "features.bed"
    predicted = _by_contig(read_annotation(bed, format="bed") if summary.get("features")
                           else [])
    annotated = _by_contig(read_annotation(annotation, output.feature))
    if not set(annotated) & set(lengths):
        raise DataError(f"no seqid of the annotation ({', '.join(sorted(annotated))}) is a "
                        f"predicted contig ({', '.join(lengths)})", path=annotation)
    ignored = sorted(set(annotated) - set(lengths))
    if ignored:
        logger.warning("%s: %s features on contigs that were not predicted are ignored: %s",
                       annotation, output.feature, ", ".join(ignored))
    target = np.concatenate([paint_mask(n, annotated.get(c, ()), annotation, c)
                             for c, n in lengths.items()])
    called = np.concatenate([paint_mask(n, predicted.get(c, ()), bed, c)
                             for c, n in lengths.items()])
    metrics = GenomicMetrics().classification(called.astype(np.int64), target.astype(np.int64),
                                              label_names=["other", output.feature])
    shown = max((c for c in lengths if c in annotated), key=lengths.__getitem__)
    positions, probability = binned_track(bedgraph[shown], lengths[shown])
    threshold = float(summary.get("threshold", 0.5))
    figure = figures.prediction_track(
        f"{output.name}: P({output.feature}) along {shown} ({lengths[shown]:,} bp), predicted "
        f"and annotated {output.feature}", positions, probability, threshold,
        [(i.start, i.end) for i in predicted.get(shown, [])],
        [(i.start, i.end) for i in annotated[shown]], output.feature)
    # the feature class is annotated on some predicted contig, so its entries exist
    stated = {key: metrics[f"{key}/{output.feature}"] for key in ("precision", "recall", "f1")}
    return {"annotation": str(annotation), "feature": output.feature,
            **stated, "mcc": metrics["mcc"], "bases": len(target),
            "annotated_bases": int(target.sum()), "predicted_bases": int(called.sum()),
            "threshold": threshold}, figure


def _counts(summary: dict[str, Any]) -> list[tuple[str, str]]:
    counts = [(label, f"{summary[key]:,}") for key, label in COUNT_LABELS.items()
              if isinstance(summary.get(key), int)]
    if isinstance(summary.get("records"), int) and isinstance(summary.get("records_scored"), int):
        counts.append(("records flagged, none scored",
                       f"{summary['records'] - summary['records_scored']:,}"))
    return counts


def prediction_context(output: PredictionOutput, report_dir: Path
                       ) -> tuple[dict[str, Any], go.Figure | None]:
    """The template's row for one output (links relative to ``report_dir``) and its figure.

    Raises:
        DataError: a missing folder, ``summary.json`` or listed file, an unreadable bedGraph,
            BED or annotation (naming the file), or an annotation given for an output that is
            not per base.
    """
    summary = _summary(output.directory)
    kinds = [kind for name, kind in KIND_FILES.items() if name in summary["outputs"]]
    row = {"name": output.name, "model": str(summary.get("model", "–")),
           "task": str(summary.get("task", "–")), "input": str(summary.get("input", "–")),
           "kind": ", ".join(kinds) or "–", "counts": _counts(summary), "comparison": None,
           "files": [(name, Path(os.path.relpath(output.directory / name, report_dir))
                      .as_posix()) for name in summary["outputs"]]}
    if output.annotation is None:
        return row, None
    if "tracks" not in kinds:
        raise DataError(f"an annotation was given for '{output.name}', which holds no "
                        "per-base track (probability.bedGraph)", path=output.directory)
    row["comparison"], figure = _comparison(output, output.annotation, summary)
    logger.info("%s against %s: per-base F1 %.3f, MCC %.3f", output.name, output.annotation,
                row["comparison"]["f1"], row["comparison"]["mcc"])
    return row, figure
