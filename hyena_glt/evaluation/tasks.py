"""The data a benchmark scores models on: :class:`BenchmarkTask`, a labelled train and test part
shared by every model, read once.

From pre-split data (:meth:`BenchmarkTask.from_split`: the train/test parts a fine-tuned model
was trained and validated on, so baselines see the same training rows and nothing leaks into the
test part), from a test-only dataset (:meth:`BenchmarkTask.from_dataset`, for models that need no
fitting), or by splitting one table (:meth:`BenchmarkTask.from_table`). Every source is read
through :class:`GenomicDataset`, so labels get the class ids fine-tuning used; real-valued labels
make a regression task. Per-base data (an "annotation" shard directory) make a token
classification task of equal-length windows (:meth:`BenchmarkTask.from_annotation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from hyena_glt.data.datasets import GenomeAnnotationDataset, GenomicDataset
from hyena_glt.data.tokenizers import CharTokenizer
from hyena_glt.errors import DataError

__all__ = ["BenchmarkTask", "LabelledSequences", "read_labelled_sequences",
           "complete_label_names"]


@dataclass
class LabelledSequences:
    """Sequences (as text) with ``labels (N,)`` int64 class ids, the class names and the
    tokenizer they were read with."""

    sequences: list[str]
    labels: np.ndarray
    label_names: list[str] | None
    tokenizer: CharTokenizer


def _decode_rows(values: np.ndarray, offsets: np.ndarray, tokenizer: CharTokenizer,
                 max_length: int | None, source: str) -> list[str]:
    """Flat token ids + row offsets -> one string per row (first ``max_length`` residues)."""
    lookup = np.zeros(256, dtype=np.uint8)
    for token_id, token in enumerate(tokenizer.id_to_token[:256]):
        if len(token) == 1:
            lookup[token_id] = ord(token)
    text = lookup[values]
    if (text == 0).any():
        bad = int(values[np.flatnonzero(text == 0)[0]])
        raise DataError(f"token id {bad} is not a residue of the {tokenizer.type_name} "
                        "alphabet", path=source)
    whole = text.tobytes().decode("ascii")
    ends = offsets[1:] if max_length is None else np.minimum(offsets[1:],
                                                             offsets[:-1] + max_length)
    return [whole[start:end] for start, end in zip(offsets[:-1].tolist(), ends.tolist(),
                                                   strict=True)]


def read_labelled_sequences(data: str | Path | GenomicDataset,
                            regression: bool = False) -> LabelledSequences:
    """A labelled data set as text: a "table" shard directory, a CSV/TSV/Parquet with
    ``sequence`` and ``label``, or a :class:`GenomicDataset` (truncated to its ``max_length``).
    Class labels become int64 ids with their names; with ``regression``, real-valued labels
    are read as float64 values (``label_names`` None).

    Raises:
        DataError: unreadable data, no labels, or regression labels without ``regression``.
    """
    if isinstance(data, GenomicDataset):
        dataset, source, max_length = data, "dataset", data.max_length
    else:
        source = str(data)
        dataset = GenomicDataset(data_path=data, max_length=None, padding=None)
        max_length = None
    if dataset.labels is not None and dataset.label2id is None and regression:
        return LabelledSequences(
            _decode_rows(dataset.values, dataset.offsets, dataset.tokenizer, max_length,
                         source), np.asarray(dataset.labels, dtype=np.float64), None,
            dataset.tokenizer)
    if dataset.labels is None or dataset.label2id is None:
        raise DataError("a benchmark needs class labels (this data has "
                        f"{'none' if dataset.labels is None else 'regression values'})",
                        path=source)
    names = [name for name, _ in sorted(dataset.label2id.items(), key=lambda item: item[1])]
    labels = np.asarray(dataset.labels, dtype=np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataError(f"class ids {labels.min()}..{labels.max()} outside the {len(names)} "
                        f"class names {names}", path=source)
    sequences = _decode_rows(dataset.values, dataset.offsets, dataset.tokenizer, max_length,
                             source)
    return LabelledSequences(sequences, labels, names, dataset.tokenizer)


def complete_label_names(names: list[str] | None, num_classes: int) -> list[str] | None:
    """``names`` extended by class ids for the model's classes that the data lacks (numeric
    labels are named by their id, so e.g. a test part holding only class "0" of two)."""
    if names is None or len(names) >= num_classes:
        return names
    return names + [str(k) for k in range(len(names), num_classes)]


def _align_labels(test: LabelledSequences, names: list[str], source: str) -> np.ndarray:
    """Test class ids re-expressed in the training part's class names (values as they are)."""
    if test.label_names == names or names is None:
        return test.labels
    unknown = sorted(set(test.label_names) - set(names))
    if unknown:
        raise DataError(f"test labels {unknown} do not occur in the training part "
                        f"(classes {names})", path=source)
    remap = np.array([names.index(name) for name in test.label_names], dtype=np.int64)
    return remap[test.labels]


def _subsample(part: LabelledSequences, max_rows: int | None, seed: int) -> LabelledSequences:
    """A stratified subsample of at most ``max_rows`` rows (quick runs and tests)."""
    if max_rows is None or max_rows >= len(part.labels):
        return part
    keep, _ = train_test_split(np.arange(len(part.labels)), train_size=max_rows,
                               stratify=part.labels if part.label_names else None,
                               random_state=seed)
    keep = np.sort(keep)
    return LabelledSequences([part.sequences[i] for i in keep], part.labels[keep],
                             part.label_names, part.tokenizer)


def _task_name(data: str | Path) -> str:
    path = Path(data)
    return f"{path.parent.name}/{path.name.split('.')[0]}"


@dataclass
class BenchmarkTask:
    """A labelled data set in a train and a test part, shared by every model.

    Sequences are strings; ``train_labels`` and ``test_labels`` are ``(N,)`` int64 class ids,
    or float64 values of a regression task (``label_names`` None; N = that part's number of
    sequences). A per-base task holds ``(N, L)`` token ids as its sequences and ``(N, L)``
    labels. ``train_sequences`` is empty for a test-only task (models that need ``fit``
    refuse it).
    """

    name: str
    train_sequences: list[str] | np.ndarray
    train_labels: np.ndarray
    test_sequences: list[str] | np.ndarray
    test_labels: np.ndarray
    label_names: list[str] | None = None
    source: str | None = None
    tokenizer: CharTokenizer | None = None

    @property
    def task_type(self) -> str:
        """``"token_classification"`` for per-base labels ``(N, L)``, ``"regression"`` for
        real-valued labels, else ``"sequence_classification"``."""
        if self.test_labels.ndim == 2:
            return "token_classification"
        regression = self.label_names is None and np.issubdtype(self.test_labels.dtype,
                                                                np.floating)
        return "regression" if regression else "sequence_classification"

    @classmethod
    def from_annotation(cls, train: str | Path | GenomeAnnotationDataset | None,
                        test: str | Path | GenomeAnnotationDataset, name: str | None = None
                        ) -> BenchmarkTask:
        """Per-base data: "annotation" shard directories (or datasets) of equal-length
        windows; the sequences are ``(N, L)`` token ids, the labels ``(N, L)`` (-100 where a
        base is not scored). ``train`` None makes a test-only task."""
        from hyena_glt.evaluation.token_baselines import stacked

        def windows(part):
            data = part if isinstance(part, GenomeAnnotationDataset) else \
                GenomeAnnotationDataset(part, max_length=None, padding=None)
            return data, *stacked(data)

        test_data, test_ids, test_labels = windows(test)
        train_ids, train_labels = (windows(train)[1:] if train is not None else
                                   (np.zeros((0, test_ids.shape[1]), np.int64),) * 2)
        default = "dataset" if isinstance(test, GenomeAnnotationDataset) else _task_name(test)
        return cls(name or default, train_ids, train_labels, test_ids, test_labels, None,
                   f"train={train} test={test}", test_data.tokenizer)

    @classmethod
    def from_split(cls, train: str | Path | GenomicDataset, test: str | Path | GenomicDataset,
                   name: str | None = None, max_rows: int | None = None, seed: int = 0
                   ) -> BenchmarkTask:
        """Pre-split data: each part a "table" shard directory (``hyena-glt ingest table
        --split`` writes ``train/`` and ``test/``), a CSV/TSV/Parquet with ``sequence`` and
        ``label``, or a :class:`GenomicDataset`.

        ``max_rows`` keeps a stratified subsample of each part (quick runs and tests).

        Raises:
            DataError: unreadable data, or test classes that the training part lacks.
        """
        train_part = _subsample(read_labelled_sequences(train, regression=True), max_rows, seed)
        test_part = _subsample(read_labelled_sequences(test, regression=True), max_rows, seed)
        test_labels = _align_labels(test_part, train_part.label_names, str(test))
        default = _task_name(test) if not isinstance(test, GenomicDataset) else "dataset"
        return cls(name or default, train_part.sequences, train_part.labels,
                   test_part.sequences, test_labels, train_part.label_names,
                   f"train={train} test={test}", train_part.tokenizer)

    @classmethod
    def from_dataset(cls, test: str | Path | GenomicDataset, name: str | None = None
                     ) -> BenchmarkTask:
        """A test-only task (as in API.md: ``ModelBenchmark(models, [test_dataset], ...)``)."""
        part = read_labelled_sequences(test, regression=True)
        default = _task_name(test) if not isinstance(test, GenomicDataset) else "dataset"
        return cls(name or default, [], np.zeros(0, dtype=np.int64), part.sequences,
                   part.labels, part.label_names, str(test), part.tokenizer)

    @classmethod
    def from_table(cls, path: str | Path, name: str | None = None, test_size: float = 0.3,
                   random_state: int = 0, max_rows: int | None = None) -> BenchmarkTask:
        """Stratified split of one labelled table or shard directory (``max_rows``: a
        stratified subsample first). For data a fine-tuned model was trained on use
        :meth:`from_split` with the same parts instead."""
        part = _subsample(read_labelled_sequences(path, regression=True), max_rows,
                          random_state)
        train_x, test_x, train_y, test_y = train_test_split(
            part.sequences, part.labels, test_size=test_size,
            stratify=part.labels if part.label_names else None, random_state=random_state)
        return cls(name or _task_name(path), list(train_x), train_y, list(test_x), test_y,
                   part.label_names, str(path), part.tokenizer)
