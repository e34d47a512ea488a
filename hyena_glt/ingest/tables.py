"""Labelled sequence tables (CSV/TSV, optionally gzipped, or Parquet) -> "table" shards.

A table has one sequence column and one label column (names configurable). Classification
labels are stored as int64 class indices with their names in the manifest's ``labels`` list:
integer labels keep their value (names ``"0".."max"``), text labels are numbered in sorted
order. Regression labels are float64. All sequences are tokenised in one vectorised call.
An optional seeded, stratified split writes ``<out>/train`` and ``<out>/test`` shard
directories (or one per value of a split column).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..data.shards import ShardWriter, list_array
from ..data.tokenizers import tokenizer_from_name
from ..errors import ConfigurationError, DataError, TokenizationError
from ..io import atomic_directory, sha256sum

__all__ = ["ingest_table", "read_labelled_table", "encode_labels", "stratified_split", "TASKS"]

logger = logging.getLogger(__name__)

TASKS = ("classification", "regression")
#: Cells that mean "no value" in exported tables (R, pandas, spreadsheets): a missing label,
#: never a class of its own.
MISSING = frozenset({"", "NA", "N/A", "NaN", "nan", "NAN", "null", "NULL", "None", "."})
#: Shard columns a passthrough column may not shadow.
_RESERVED = ("input_ids", "label")


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PAR1"


def _separator(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".bz2", ".xz")]
    return "\t" if suffixes and suffixes[-1] in (".tsv", ".tab", ".txt") else ","


def read_labelled_table(path: str | Path, required: Sequence[str]) -> tuple[pd.DataFrame, bool]:
    """Read a CSV/TSV (plain or compressed) or Parquet file, checking ``required`` columns.

    Returns:
        The frame (text cells as strings, empty cells as missing) and whether it came from a
        text file (then data row ``i`` is on line ``i + 2``).

    Raises:
        DataError: unreadable or empty file, or a missing column (naming it and the columns
            present).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found (or not a file)", path=path)
    text = not _is_parquet(path)
    try:
        if text:
            frame = pd.read_csv(path, sep=_separator(path), dtype=str, keep_default_na=False,
                                na_values=[""])
        else:
            frame = pq.read_table(path).to_pandas()
    except pd.errors.EmptyDataError:
        raise DataError("empty file: no header line", path=path) from None
    except (OSError, EOFError, ValueError, pa.ArrowException) as err:
        raise DataError(f"cannot read table: {err}", path=path) from None
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(map(repr, missing))}; the columns are "
                        f"{', '.join(map(str, frame.columns))}", path=path, line=1 if text else None)
    if frame.empty:
        raise DataError("no data rows", path=path)
    return frame, text


def _where(path: Path, text: bool, row: int) -> dict[str, Any]:
    """DataError location of data row ``row`` (0-based)."""
    return {"path": path, "line": row + 2} if text else {"path": path, "record": f"row {row}"}


def encode_labels(
    values: pd.Series, task: str, path: Path, text: bool,
) -> tuple[np.ndarray, list[str] | None]:
    """Labels -> (int64 class indices and their names) or (float64 values, None)."""
    missing = np.flatnonzero((values.isna() | values.astype(str).str.strip().isin(MISSING))
                             .to_numpy(dtype=bool))
    if len(missing):
        cell = values.iloc[missing[0]]
        shown = "empty" if pd.isna(cell) or not str(cell).strip() else repr(cell)
        raise DataError(f"missing label ({shown}) in column {values.name!r}, {len(missing)} "
                        "row(s) in all: give every row a label or remove those rows",
                        **_where(path, text, int(missing[0])))
    if task == "regression":
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            raise DataError(f"label {values.iloc[bad[0]]!r} is not a finite number "
                            "(task 'regression')", **_where(path, text, int(bad[0])))
        return numbers, None
    integers = pd.to_numeric(values, errors="coerce")
    whole = integers.notna().all() and (integers == integers.round()).all() and \
        (integers >= 0).all()
    fractional = np.flatnonzero((integers != integers.round()).to_numpy(dtype=bool))
    if integers.notna().all() and len(fractional):  # scores, not classes: one class each
        raise DataError(f"label {values.iloc[fractional[0]]!r} in column {values.name!r} is a "
                        "number with a fraction, not a class: use --task regression for "
                        "scores, or give class labels (0, 1, ... or names)",
                        **_where(path, text, int(fractional[0])))
    names = sorted(set(values.astype(str).tolist()))
    if len(set(integers.tolist()) if whole else names) < 2:
        raise DataError(f"column {values.name!r} holds one class only ({names[0]!r}): a "
                        "classifier needs at least two; add rows of another class, or use "
                        "--task regression for scores", path=path)
    if whole:
        indices = integers.to_numpy(dtype=np.int64)
        return indices, [str(i) for i in range(int(indices.max()) + 1)]
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([lookup[v] for v in values.astype(str).tolist()], dtype=np.int64), names


def stratified_split(
    labels: np.ndarray, train_fraction: float, seed: int, stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a seeded (stratified) train/test split, each sorted in source order."""
    if not 0.0 < train_fraction < 1.0:
        raise ConfigurationError(f"split={train_fraction}; the train fraction must lie in (0, 1)")
    rows = np.arange(len(labels))
    if stratify:
        classes, sizes = np.unique(labels, return_counts=True)
        if sizes.min() < 2:
            raise ConfigurationError(
                f"cannot split {train_fraction:g}/{1 - train_fraction:g} by class: class "
                f"{classes[sizes.argmin()]} has {sizes.min()} row; a stratified split needs "
                "at least 2 rows of every class (add rows, or remove that class)")
        test_rows = len(rows) - int(np.floor(train_fraction * len(rows)))
        if min(test_rows, len(rows) - test_rows) < len(classes):
            raise ConfigurationError(
                f"cannot split {len(rows)} rows {train_fraction:g}/{1 - train_fraction:g}: "
                f"each part needs a row of each of the {len(classes)} classes; give more "
                "rows or a split fraction nearer 0.5")
    from sklearn.model_selection import train_test_split  # seconds to import: only to split

    try:
        train, test = train_test_split(rows, train_size=train_fraction, random_state=seed,
                                       stratify=labels if stratify else None)
    except ValueError as err:  # e.g. a class with a single member cannot be stratified
        raise ConfigurationError(f"cannot split {len(rows)} rows {train_fraction:g}/"
                                 f"{1 - train_fraction:g}: {err}") from None
    return np.sort(train), np.sort(test)


def _encode_sequences(
    sequences: pd.Series, tokenizer: Any, path: Path, text: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """All sequences tokenised in one call: (flat uint8 ids, int64 offsets of rows)."""
    empty = np.flatnonzero(sequences.isna().to_numpy() | (sequences.astype(str).str.len() == 0)
                           .to_numpy(dtype=bool, na_value=True))
    if len(empty):
        raise DataError(f"empty sequence in column {sequences.name!r}",
                        **_where(path, text, int(empty[0])))
    try:
        values, offsets = tokenizer.encode_many(sequences.astype(str).tolist())
    except TokenizationError as err:
        from .fasta import character_hint

        raise DataError(f"invalid {tokenizer.type_name.upper()} character {err.character!r} at "
                        f"position {err.position} of the sequence; the alphabet is "
                        f"{''.join(tokenizer.alphabet)}; "
                        f"{character_hint(err, tokenizer.type_name.lower())}",
                        **_where(path, text, err.row)) from None
    return values, offsets


def ingest_table(
    path: str | Path,
    out_dir: str | Path,
    alphabet: str = "dna",
    sequence_column: str = "sequence",
    label_column: str = "label",
    task: str = "classification",
    id_column: str | None = None,
    split: float | None = None,
    split_column: str | None = None,
    seed: int = 0,
    tokenizer: Any = None,
) -> dict[str, int]:
    """Write "table" shards from a labelled sequence table.

    Args:
        path: CSV/TSV (``.gz`` allowed; TSV recognised by ``.tsv``/``.tab``/``.txt``) or Parquet.
        out_dir: the shard directory; with ``split``/``split_column`` a directory holding one
            shard directory per part (``train``/``test``, or the split column's values).
        alphabet: "dna", "rna" or "protein" (ignored when ``tokenizer`` is given).
        sequence_column, label_column: column names.
        task: "classification" (int64 class indices) or "regression" (float64).
        id_column: unique row ids (default: the ``id`` column if present, else ``<file>:<row>``).
        split: train fraction of a seeded split, stratified by label for classification.
        split_column: write one shard directory per value of this column instead.
        seed: seed of ``split``.

    Returns:
        Rows written per part (``{"all": n}`` without a split).

    Raises:
        DataError: unreadable file, missing column, missing/empty sequence or label, a character
            outside the alphabet, duplicate ids; each names the file and line (or row).
    """
    if task not in TASKS:
        raise ConfigurationError(f"task={task!r}; expected one of {', '.join(TASKS)}")
    if split is not None and split_column is not None:
        raise ConfigurationError("give split or split_column, not both")
    path = Path(path)
    tokenizer = tokenizer if tokenizer is not None else tokenizer_from_name(alphabet)
    required = [sequence_column, label_column] + [c for c in (id_column, split_column) if c]
    frame, text = read_labelled_table(path, required)
    if id_column is None and "id" in frame.columns and sequence_column != "id":
        id_column = "id"
    labels, label_names = encode_labels(frame[label_column], task, path, text)
    values, offsets = _encode_sequences(frame[sequence_column], tokenizer, path, text)
    if id_column is not None:
        ids = frame[id_column].astype(str).to_numpy(dtype=object)
        duplicated = np.flatnonzero(pd.Series(ids).duplicated().to_numpy())
        if len(duplicated):
            raise DataError(f"duplicate id {ids[duplicated[0]]!r} in column {id_column!r}",
                            **_where(path, text, int(duplicated[0])))
    else:
        ids = np.array([f"{path.name}:{i}" for i in range(len(frame))], dtype=object)
    passthrough = [c for c in frame.columns
                   if c not in (sequence_column, label_column, id_column)]
    clash = [c for c in passthrough if c in _RESERVED]
    if clash:
        raise DataError(f"column(s) {clash} would overwrite shard columns; rename them or "
                        "choose them as the sequence/label column", path=path)
    columns = {
        "id": pa.array(ids, pa.string()),
        "input_ids": list_array(values, offsets, pa.uint8()),
        "label": pa.array(labels),
        **{c: pa.array(frame[c].to_numpy(dtype=object), from_pandas=True) if text
           else pa.Array.from_pandas(frame[c]) for c in passthrough},
    }
    table = pa.table(columns)
    try:
        parts = _split_rows(frame, labels, task, split, split_column, seed)
    except ConfigurationError as err:
        raise ConfigurationError(f"{path}: {err}") from None
    params = {"table": str(path), "alphabet": alphabet, "sequence_column": sequence_column,
              "label_column": label_column, "task": task, "id_column": id_column,
              "split": split, "split_column": split_column, "seed": seed}
    sha = sha256sum(path)
    counts: dict[str, int] = {}

    def write(directory: Path, rows: np.ndarray, name: str) -> None:
        label_type = pa.int64() if task == "classification" else pa.float64()
        with ShardWriter(directory, "table", tokenizer, schema=pa.schema([("label", label_type)]),
                         labels=label_names, metadata={"parameters": params, "part": name}
                         ) as writer:
            writer.sources.append({"path": str(path), "sha256": sha})
            writer.write_batch(table.take(pa.array(rows)))
        counts[name] = len(rows)

    if parts is None:
        write(Path(out_dir), np.arange(len(frame)), "all")
    else:
        with atomic_directory(out_dir) as tmp:
            for name, rows in parts.items():
                write(tmp / name, rows, name)
    logger.info("wrote %s: %s rows", out_dir, counts)
    return counts


def _split_rows(
    frame: pd.DataFrame, labels: np.ndarray, task: str, split: float | None,
    split_column: str | None, seed: int,
) -> dict[str, np.ndarray] | None:
    if split is not None:
        train, test = stratified_split(labels, split, seed, stratify=task == "classification")
        return {"train": train, "test": test}
    if split_column is not None:
        values = frame[split_column].astype(str).to_numpy(dtype=object)
        bad = [v for v in set(values.tolist()) if not v or v.startswith(".") or "/" in v]
        if bad:
            raise ConfigurationError(f"split column {split_column!r} has value(s) {bad} that "
                                     "cannot name a shard directory")
        return {str(v): np.flatnonzero(values == v) for v in sorted(set(values.tolist()))}
    return None
