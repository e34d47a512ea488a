"""Per-base prediction along whole genomes: a probability track and the predicted features.

Each contig is read from the indexed FASTA in windows of ``window`` bases that overlap by
``overlap`` bases; a base takes its probability from the window in which it sits furthest from
an edge (the split between two neighbours is the middle of their overlap), so every base but
those near the contig ends sees at least ``overlap / 2`` bases of context on each side. The last
window is aligned to the contig end. Only ``batch_size`` windows are fetched, run and written at
a time: memory is ``batch_size * window`` bases plus the model's activations for that batch,
whatever the contig length (:func:`memory_budget_bases`).

Outputs (0-based, half-open coordinates, contig names as in the FASTA):

* ``probability.bedGraph``: P(feature) = 1 - P(class 0), rounded to ``precision`` decimals,
  equal neighbouring values merged into one line (and ``probability.bw`` with ``bigwig``);
* ``features.bed`` (BED6): maximal runs of bases with P(feature) >= threshold; name = the class
  (``id2label``) with the highest mean probability over the run, score = 1000 x the mean
  P(feature), strand ``.``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..errors import ConfigurationError, DataError, TokenizationError
from ..evaluation.metrics import decide
from ..ingest.vcf import open_reference
from ..progress import Progress
from .predictor import Predictor

__all__ = ["predict_tracks", "window_starts", "split_points", "memory_budget_bases"]

logger = logging.getLogger(__name__)


def window_starts(length: int, window: int, overlap: int) -> np.ndarray:
    """Starts of the windows covering ``[0, length)``: every ``window - overlap`` bases, the last
    aligned to the end (one window when the contig is no longer than ``window``)."""
    if length <= window:
        return np.zeros(1, dtype=np.int64)
    stride = window - overlap
    starts = np.arange(0, length - window, stride, dtype=np.int64)
    return np.append(starts, length - window)


def split_points(starts: np.ndarray, length: int, window: int) -> np.ndarray:
    """``len(starts) + 1`` boundaries: window ``i`` writes bases ``[b[i], b[i + 1])``, the middle
    of its overlaps with its neighbours."""
    ends = np.minimum(starts + window, length)
    middles = (starts[1:] + ends[:-1]) // 2
    return np.concatenate([[0], middles, [length]]).astype(np.int64)


def memory_budget_bases(window: int, batch_size: int) -> int:
    """Bases held at once: one batch of windows (the bound on memory, whatever the contig)."""
    return window * batch_size


@dataclass
class _Track:
    """Streams merged bedGraph/bigWig runs and thresholded BED features of one genome."""

    bedgraph: TextIO
    bed: TextIO
    bigwig: Any
    threshold: float
    precision: int
    names: list[str]
    features: int = 0
    _run: list = field(default_factory=list)  # open bedGraph run [chrom, start, end, value]
    _feature: list = field(default_factory=list)  # open feature [chrom, start, end, sums...]

    def add(self, chrom: str, start: int, feature: np.ndarray, classes: np.ndarray) -> None:
        """Bases ``[start, start + len(feature))``: P(feature) and ``(n, C - 1)`` P(class >= 1)."""
        self._add_runs(chrom, start, np.round(feature, self.precision))
        self._add_features(chrom, start, feature, classes)

    def _add_runs(self, chrom: str, start: int, values: np.ndarray) -> None:
        cuts = np.flatnonzero(values[1:] != values[:-1]) + 1
        starts = np.concatenate([[0], cuts]) + start
        ends = np.concatenate([cuts, [len(values)]]) + start
        run_values = values[np.concatenate([[0], cuts])]
        if self._run[:1] == [chrom] and self._run[2] == starts[0] and \
                self._run[3] == run_values[0]:
            starts[0] = self._run[1]  # the open run continues into this chunk
        elif self._run:
            self._write_runs(self._run[0], [self._run[1]], [self._run[2]], [self._run[3]])
        self._write_runs(chrom, starts[:-1], ends[:-1], run_values[:-1])
        self._run = [chrom, int(starts[-1]), int(ends[-1]), float(run_values[-1])]

    def _write_runs(self, chrom: str, starts: Any, ends: Any, values: Any) -> None:
        if not len(starts):
            return
        fmt = f"{{}}\t{{}}\t{{}}\t{{:.{self.precision}f}}\n"
        self.bedgraph.write("".join(fmt.format(chrom, s, e, v)
                                    for s, e, v in zip(starts, ends, values, strict=True)))
        if self.bigwig is not None:
            self.bigwig.addEntries([chrom] * len(starts), [int(s) for s in starts],
                                   ends=[int(e) for e in ends], values=[float(v) for v in values])

    def _add_features(self, chrom: str, start: int, feature: np.ndarray,
                      classes: np.ndarray) -> None:
        inside = np.concatenate([[False], decide(feature, self.threshold) == 1, [False]])
        edges = np.flatnonzero(inside[1:] != inside[:-1])
        for begin, end in zip(edges[::2], edges[1::2], strict=True):
            sums = [float(feature[begin:end].sum()), *classes[begin:end].sum(0).tolist()]
            if self._feature[:1] == [chrom] and begin == 0 and self._feature[2] == start:
                self._feature[2] = start + int(end)  # continues the open feature
                self._feature[3:] = [a + b for a, b in zip(self._feature[3:], sums, strict=True)]
            else:
                self._close_feature()
                self._feature = [chrom, start + int(begin), start + int(end), *sums]
        if self._feature and self._feature[2] != start + len(feature):
            self._close_feature()

    def _close_feature(self) -> None:
        if not self._feature:
            return
        chrom, begin, end, total, *per_class = self._feature
        name = self.names[1 + int(np.argmax(per_class))] if per_class else self.names[-1]
        score = min(1000, round(1000 * total / (end - begin)))
        self.bed.write(f"{chrom}\t{begin}\t{end}\t{name}\t{score}\t.\n")
        self.features += 1
        self._feature = []

    def close(self) -> None:
        if self._run:
            self._write_runs(self._run[0], [self._run[1]], [self._run[2]], [self._run[3]])
            self._run = []
        self._close_feature()


def _open_bigwig(path: Path, contigs: list[tuple[str, int]]) -> Any:
    try:
        import pyBigWig
    except ImportError:
        raise ConfigurationError("--bigwig needs pyBigWig: pip install 'hyena-glt[bigwig]'"
                                 ) from None
    handle = pyBigWig.open(str(path), "w")
    handle.addHeader(contigs)
    return handle


def _probabilities(predictor: Predictor, tokens: list[np.ndarray]) -> np.ndarray:
    """``(B, L, C)`` class probabilities of equal-length token windows."""
    ids = np.stack(tokens).astype(np.int64)
    logits = predictor.logits(ids, np.ones_like(ids))
    if logits.dim() != 3:
        raise DataError(f"{predictor.source} gives one output per sequence, not per base")
    return logits.softmax(-1).numpy()


def _contig_batches(fasta: Any, chrom: str, window: int, overlap: int, batch_size: int):
    """``(first base, last base, [(window start, sequence, keep from, keep to)])`` per batch."""
    length = fasta.get_reference_length(chrom)
    starts = window_starts(length, window, overlap)
    splits = split_points(starts, length, window)
    for first in range(0, len(starts), batch_size):
        chosen = range(first, min(first + batch_size, len(starts)))
        begin, end = int(starts[chosen[0]]), int(min(starts[chosen[-1]] + window, length))
        text = fasta.fetch(chrom, begin, end)
        yield [(int(starts[i]), text[starts[i] - begin:starts[i] - begin + window],
                int(splits[i]), int(splits[i + 1])) for i in chosen]


def predict_tracks(predictor: Predictor, fasta_path: str | Path, out_dir: Path, *,
                   window: int | None = None, overlap: int | None = None, batch_size: int = 8,
                   bigwig: bool = False, precision: int = 3) -> dict[str, Any]:
    """Write ``probability.bedGraph``, ``features.bed`` (and ``probability.bw``) into ``out_dir``.

    Args:
        window: bases per window (default and maximum: the model's input length).
        overlap: bases shared by neighbouring windows (default ``window // 8``: every base
            but those at the contig ends has ``window // 16`` bases of context on each side).

    Returns:
        Counts and settings: ``contigs``, ``bases``, ``windows``, ``features``, ``threshold``,
        ``threshold_source``, ``window``, ``overlap``, ``memory_budget_bases``.

    Raises:
        DataError: a model that does not predict per base, a protein model, or a base outside
            the model's alphabet (naming the contig and position).
        ConfigurationError: impossible window/overlap settings.
    """
    predictor.require(("token_classification",), "a genome FASTA is annotated base by base, "
                      "which needs a per-base model", fasta_path)
    if predictor.tokenizer.type_name == "protein":
        raise DataError(f"{predictor.source} is a protein model; a genome needs a DNA model",
                        path=fasta_path)
    window = min(window or predictor.max_length, predictor.max_length)
    overlap = window // 8 if overlap is None else overlap
    if not 0 <= overlap < window:
        raise ConfigurationError(f"--overlap {overlap}: must lie in [0, window={window})")
    threshold, source = predictor.threshold
    logger.info("per-base threshold %.3g (%s); windows of %d bases overlapping by %d; at most "
                "%d bases in memory", threshold, source, window, overlap,
                memory_budget_bases(window, batch_size))
    names = predictor.class_names
    counts = {"contigs": 0, "bases": 0, "windows": 0}
    with open_reference(fasta_path) as fasta:
        contigs = list(zip(fasta.references, fasta.lengths, strict=True))
        bw = _open_bigwig(out_dir / "probability.bw", contigs) if bigwig else None
        with open(out_dir / "probability.bedGraph", "w") as bedgraph, \
                open(out_dir / "features.bed", "w") as bed, \
                Progress(total=sum(n for _, n in contigs), desc="bases", unit="bp") as bar:
            bedgraph.write(f'track type=bedGraph name="P({names[-1]})" description="per-base '
                           f'probability of {"/".join(names[1:])}, {predictor.source.name}"\n')
            bed.write(f'track name="{names[-1]}" description="bases with P >= {threshold:g} '
                      f'({source})"\n')
            track = _Track(bedgraph, bed, bw, threshold, precision, names)
            for chrom, _ in contigs:
                for batch in _contig_batches(fasta, chrom, window, overlap, batch_size):
                    try:
                        tokens = [predictor.tokenizer.encode_array(text) for _, text, _, _ in batch]
                    except TokenizationError as err:
                        raise DataError(f"window at {batch[0][0]}: {err}", path=fasta_path,
                                        record=chrom) from None
                    probs = _probabilities(predictor, tokens)  # one contig: equal lengths
                    for row, (start, _, keep_from, keep_to) in enumerate(batch):
                        part = probs[row, keep_from - start:keep_to - start]
                        track.add(chrom, keep_from, 1.0 - part[:, 0], part[:, 1:])
                    counts["windows"] += len(batch)
                    bar.update(batch[-1][3] - batch[0][2])
                counts["contigs"] += 1
            track.close()
        if bw is not None:
            bw.close()
        counts["bases"] = sum(n for _, n in contigs)
    logger.info("%d features over %d bases of %d contig(s)", track.features, counts["bases"],
                counts["contigs"])
    return {**counts, "features": track.features, "threshold": threshold,
            "threshold_source": source, "window": window, "overlap": overlap,
            "memory_budget_bases": memory_budget_bases(window, batch_size)}
