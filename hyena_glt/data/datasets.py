"""PyTorch datasets over in-memory sequences, tables and shard directories, plus batch collation.

Items are dicts of tensors:

* ``input_ids``: ``(length,)`` long token ids (one per residue, no special tokens);
* ``attention_mask``: ``(length,)`` long, 1 on real tokens (when an item is padded);
* ``labels``: a long class index, a float value, or ``(length,)`` long per-base labels with
  -100 where there is nothing to predict (padding);
* variant items: ``ref_input_ids``, ``alt_input_ids``, ``variant_offset`` and ``labels``.

Map-style datasets pad every item to the dataset's longest sequence (at most ``max_length``)
by default (``padding="longest"``), so ``DataLoader(dataset, batch_size=32, shuffle=True)``
works with PyTorch's default collation without padding 8-nt sequences to ``max_length=1024``
(128x the compute); ``padding="max_length"`` pads to ``max_length`` (fixed shapes, e.g. for an
exported model); ``padding=None`` keeps items at their own length. :func:`collate_batch`
(``DataLoader(..., collate_fn=collate_batch)``, what the trainer uses) cuts any padding an item
carries and pads each batch to *its* longest item, the cheapest shape. :class:`ShardDataset` streams Parquet row groups of a shard directory without loading
it, for pretraining corpora larger than memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..errors import ConfigurationError, DataError, TokenizationError
from .shards import _from_storage, part_paths, read_manifest, read_table
from .tokenizers import CharTokenizer, DNATokenizer, ProteinTokenizer

__all__ = [
    "IGNORE_INDEX",
    "GenomicDataset",
    "ProteinFunctionDataset",
    "GenomeAnnotationDataset",
    "VariantEffectDataset",
    "ShardDataset",
    "collate_batch",
]

logger = logging.getLogger(__name__)

#: Label value that losses ignore (PyTorch's ``cross_entropy`` default ``ignore_index``).
IGNORE_INDEX = -100
_PADDING = ("longest", "max_length", None)


def _is_shard_dir(path: Path) -> bool:
    """A directory is read as shards (``read_manifest`` names what is missing); else a table."""
    return path.is_dir()


def _flat(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(values, int64 offsets) of a list column, without a per-row loop."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = np.asarray(array.offsets, dtype=np.int64)
    return np.asarray(array.flatten()), offsets - offsets[0]


def _tokenize_all(sequences: Sequence[str], tokenizer: CharTokenizer, where: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """All sequences in one vectorised call -> (flat uint8 ids, int64 offsets)."""
    try:
        return tokenizer.encode_many(sequences)
    except TokenizationError as err:
        raise TokenizationError(f"{where}: {err}") from None


def _class_labels(values: Sequence[Any]) -> tuple[np.ndarray, dict[str, int] | None]:
    """Labels -> (int64 class indices or float32 values, label2id for classes or None).

    Whole numbers >= 0 stay class indices; other numbers are regression values; text labels are
    numbered in sorted order. Missing labels (empty, NA, NaN, ...) are an error, never a class.

    Raises:
        DataError: a missing label, naming its row.
    """
    from ..ingest.tables import MISSING  # the ingester's spellings of a missing value

    series = pd.Series(list(values))
    missing = (series.isna() | series.astype(str).str.strip().isin(MISSING)).to_numpy(bool)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(f"label of row {row + 1} is missing ({series.iloc[row]!r}); drop the "
                        f"{int(missing.sum())} unlabelled row(s) or fill them in")
    numbers = pd.to_numeric(series, errors="coerce")
    if numbers.notna().all():
        if (numbers == numbers.round()).all() and (numbers >= 0).all():
            indices = numbers.to_numpy(dtype=np.int64)
            return indices, {str(i): i for i in range(int(indices.max()) + 1)} if len(
                indices) else {}
        return numbers.to_numpy(dtype=np.float32), None
    names = sorted(set(series.astype(str).tolist()))
    label2id = {name: i for i, name in enumerate(names)}
    return np.array([label2id[v] for v in series.astype(str).tolist()], dtype=np.int64), label2id


def _read_frame(path: Path, required: Sequence[str]) -> pd.DataFrame:
    from ..ingest.tables import read_labelled_table  # the ingester's checked table reader

    frame, _ = read_labelled_table(path, required)
    return frame


def _pad(tensor: torch.Tensor, length: int, value: int) -> torch.Tensor:
    return torch.nn.functional.pad(tensor, (0, length - len(tensor)), value=value)


class _TokenDataset(Dataset):
    """Shared storage: all token ids in one flat uint8 array with row offsets (compact)."""

    def __init__(self, max_length: int | None, padding: str | None, pad_token_id: int) -> None:
        if max_length is not None and max_length < 1:
            raise ConfigurationError(f"max_length={max_length}; it must be >= 1")
        if padding not in _PADDING:
            raise ConfigurationError(f"padding={padding!r}; expected 'longest', 'max_length' "
                                     "or None")
        if padding == "max_length" and max_length is None:
            raise ConfigurationError("padding='max_length' needs a max_length")
        self.max_length = max_length
        self.padding = padding
        self.pad_token_id = pad_token_id
        self.pad_length: int | None = max_length if padding == "max_length" else None

    def _pad_to_longest(self, *offsets: np.ndarray) -> None:
        """With ``padding="longest"``: pad to the longest row of ``offsets`` (cut to max_length)."""
        if self.padding == "longest":
            longest = max((int(np.diff(o).max()) for o in offsets if len(o) > 1), default=1)
            self.pad_length = min(longest, self.max_length or longest)

    def _row(self, values: np.ndarray, offsets: np.ndarray, index: int) -> np.ndarray:
        row = values[offsets[index]:offsets[index + 1]]
        return row[: self.max_length] if self.max_length is not None else row

    def _finish(self, item: dict[str, Any], key: str = "input_ids") -> dict[str, Any]:
        """Add ``attention_mask`` and pad to ``pad_length`` unless ``padding`` is None."""
        length = len(item[key])
        if self.pad_length is not None:
            item["attention_mask"] = _pad(torch.ones(length, dtype=torch.long), self.pad_length, 0)
            for name, value in item.items():
                if name.endswith("input_ids"):
                    item[name] = _pad(value, self.pad_length, self.pad_token_id)
                elif name == "labels" and value.dim() == 1:
                    item[name] = _pad(value, self.pad_length, IGNORE_INDEX)
        return item


class GenomicDataset(_TokenDataset):
    """Sequences (with optional labels) from lists, a CSV/TSV/Parquet file or a shard directory.

    Args:
        sequences: in-memory sequences (instead of ``data_path``).
        labels: one label per sequence: class indices, class names or float values.
        tokenizer: default: the shard directory's tokenizer, else ``DNATokenizer()``.
        max_length: longer sequences are truncated (their first ``max_length`` tokens).
        data_path: a CSV/TSV(.gz)/Parquet file with ``sequence_column`` (and ``label_column``
            if present), or a "table"/"windows" shard directory.
        padding: ``"longest"`` (default: to the dataset's longest sequence, cut to
            ``max_length``: equal-length items for the default collation), ``"max_length"``
            or ``None`` (own length; use :func:`collate_batch`).

    Items: ``input_ids (L,)`` int64, ``attention_mask (L,)`` int64 (when padded; L = the
    padded length, else the sequence's own truncated length) and, with labels,
    ``labels ()``: int64 class index or float32 value.

    Attributes:
        label2id, id2label: class names <-> indices (``None`` for regression or no labels).
    """

    default_tokenizer: type[CharTokenizer] = DNATokenizer

    def __init__(
        self,
        sequences: Sequence[str] | None = None,
        labels: Sequence[Any] | None = None,
        tokenizer: CharTokenizer | None = None,
        max_length: int | None = 1024,
        data_path: str | Path | None = None,
        sequence_column: str = "sequence",
        label_column: str = "label",
        padding: str | None = "longest",
    ) -> None:
        if (sequences is None) == (data_path is None):
            raise ConfigurationError("give either sequences or data_path")
        label2id: dict[str, int] | None = None
        if data_path is not None:
            path = Path(data_path)
            if _is_shard_dir(path):
                manifest = read_manifest(path)
                if manifest["kind"] not in ("table", "windows"):
                    reader = {"variants": "VariantEffectDataset",
                              "annotation": "GenomeAnnotationDataset"}.get(manifest["kind"])
                    raise DataError(f"a {manifest['kind']!r} shard directory is not a table of "
                                    f"sequences; read it with {reader or 'its own dataset'}",
                                    path=str(path))
                tokenizer = tokenizer or CharTokenizer.from_dict(manifest["tokenizer"])
                table = read_table(path)
                self.values, self.offsets = _flat(table.column("input_ids"))
                if "label" in table.column_names:
                    label_values = table.column("label").to_numpy()
                    if manifest.get("labels"):
                        label2id = {name: i for i, name in enumerate(manifest["labels"])}
                    label_array = label_values
                else:
                    label_array = None
            else:
                frame = _read_frame(path, [sequence_column])
                tokenizer = tokenizer or self.default_tokenizer()
                self.values, self.offsets = _tokenize_all(
                    frame[sequence_column].tolist(), tokenizer, str(path))
                label_array = None
                if label_column in frame.columns:
                    label_array, label2id = _class_labels(frame[label_column].tolist())
        else:
            assert sequences is not None
            tokenizer = tokenizer or self.default_tokenizer()
            self.values, self.offsets = _tokenize_all(sequences, tokenizer, "sequences")
            label_array = None
            if labels is not None:
                if len(labels) != len(sequences):
                    raise ConfigurationError(f"{len(labels)} labels for {len(sequences)} "
                                             "sequences")
                label_array, label2id = _class_labels(labels)
        super().__init__(max_length, padding, tokenizer.pad_token_id)
        self._pad_to_longest(self.offsets)
        self.tokenizer = tokenizer
        self.labels = label_array
        self.label2id = label2id
        self.id2label = {i: name for name, i in label2id.items()} if label2id is not None \
            else None

    @property
    def num_classes(self) -> int | None:
        """Number of classes (``None`` for regression or unlabelled data)."""
        return len(self.label2id) if self.label2id is not None else None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} sequences")
        index %= len(self)
        ids = self._row(self.values, self.offsets, index)
        item: dict[str, Any] = {"input_ids": torch.from_numpy(ids.astype(np.int64))}
        if self.labels is not None:
            label = self.labels[index]
            item["labels"] = torch.tensor(label, dtype=torch.long if np.issubdtype(
                np.asarray(label).dtype, np.integer) else torch.float32)
        return self._finish(item)


class ProteinFunctionDataset(GenomicDataset):
    """Protein sequences with function classes: a CSV/Parquet with ``sequence`` and ``label``.

    String labels are numbered in sorted order (``label2id``/``id2label``). Items as
    :class:`GenomicDataset`: ``input_ids (L,)`` int64, ``attention_mask (L,)``, ``labels ()``
    int64.
    """

    default_tokenizer = ProteinTokenizer

    def __init__(self, data_path: str | Path, tokenizer: CharTokenizer | None = None,
                 max_length: int | None = 512, sequence_column: str = "sequence",
                 label_column: str = "label", padding: str | None = "longest") -> None:
        super().__init__(data_path=data_path, tokenizer=tokenizer, max_length=max_length,
                         sequence_column=sequence_column, label_column=label_column,
                         padding=padding)
        if self.labels is None:
            raise DataError(f"no label column {label_column!r}", path=data_path)


class GenomeAnnotationDataset(_TokenDataset):
    """Per-base labels for token classification.

    ``data_path`` is an "annotation" shard directory (``hyena-glt ingest annotation``) or a
    CSV/Parquet with ``sequence`` and ``labels`` columns, the labels one digit per base
    (``"0001110"``) or separated by commas/spaces, as long as the sequence. Items:
    ``input_ids (L,)`` int64, ``labels (L,)`` int64 (padded with -100) and, when padded
    (``padding="longest"``, the default, or ``"max_length"``), ``attention_mask (L,)`` int64.
    """

    def __init__(self, data_path: str | Path, tokenizer: CharTokenizer | None = None,
                 max_length: int | None = 2048, sequence_column: str = "sequence",
                 label_column: str = "labels", padding: str | None = "longest") -> None:
        path = Path(data_path)
        if _is_shard_dir(path):
            manifest = read_manifest(path)
            tokenizer = tokenizer or CharTokenizer.from_dict(manifest["tokenizer"])
            table = read_table(path, columns=["input_ids", "labels"])
            self.values, self.offsets = _flat(table.column("input_ids"))
            self.label_values, _ = _flat(table.column("labels"))
        else:
            frame = _read_frame(path, [sequence_column, label_column])
            tokenizer = tokenizer or DNATokenizer()
            sequences = frame[sequence_column].tolist()
            self.values, self.offsets = _tokenize_all(sequences, tokenizer, str(path))
            self.label_values = _per_base_labels(frame[label_column].tolist(), self.offsets, path)
        super().__init__(max_length, padding, tokenizer.pad_token_id)
        self._pad_to_longest(self.offsets)
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} sequences")
        index %= len(self)
        item = {
            "input_ids": torch.from_numpy(self._row(self.values, self.offsets, index)
                                          .astype(np.int64)),
            "labels": torch.from_numpy(self._row(self.label_values, self.offsets, index)
                                       .astype(np.int64)),
        }
        return self._finish(item)


def _per_base_labels(texts: Sequence[Any], offsets: np.ndarray, path: Path) -> np.ndarray:
    """Per-base label strings -> one flat int8 array aligned with the token offsets."""
    rows = []
    for row, text in enumerate(texts):
        text = str(text)
        tokens = text.replace(",", " ").split() if ("," in text or " " in text) else list(text)
        try:
            labels = np.array([int(t) for t in tokens], dtype=np.int8)
        except ValueError:
            raise DataError("per-base labels must be integers (one digit per base, or "
                            "comma/space separated)", path=path, line=row + 2) from None
        expected = offsets[row + 1] - offsets[row]
        if len(labels) != expected:
            raise DataError(f"{len(labels)} labels for a sequence of {expected} bases",
                            path=path, line=row + 2)
        rows.append(labels)
    return np.concatenate(rows) if rows else np.zeros(0, np.int8)


class VariantEffectDataset(_TokenDataset):
    """Reference/alternate windows with an effect label.

    ``data_path`` is a "variants" shard directory (``hyena-glt ingest vcf``) or a CSV/Parquet
    with ``ref_sequence``, ``alt_sequence`` and ``label`` (optional ``variant_offset``; else
    the first position where the two differ). Windows longer than ``max_length`` are cut to
    ``max_length`` centred on the variant, the same way for both alleles. Rows whose label is
    missing (NaN) are dropped. Labels are long when all are whole numbers, else float.

    Items: ``ref_input_ids (L,)``, ``alt_input_ids (L',)`` int64 (L' differs from L for an
    indel unless padded), ``variant_offset ()`` int64 (the variant's index in both windows),
    ``labels ()`` int64 class or float32 score and, when padded (``padding="longest"``, the
    default: both alleles to the longest window; or ``"max_length"``),
    ``ref_attention_mask (L,)``/``alt_attention_mask (L,)`` int64 (1 = real base).
    """

    def __init__(self, data_path: str | Path, tokenizer: CharTokenizer | None = None,
                 max_length: int | None = 1024, padding: str | None = "longest") -> None:
        path = Path(data_path)
        if _is_shard_dir(path):
            manifest = read_manifest(path)
            tokenizer = tokenizer or CharTokenizer.from_dict(manifest["tokenizer"])
            table = read_table(path, columns=["ref_input_ids", "alt_input_ids", "variant_offset",
                                              "label"])
            keep = ~np.isnan(table.column("label").to_numpy().astype(np.float64))
            table = table.filter(pa.array(keep))
            self.ref_values, self.ref_offsets = _flat(table.column("ref_input_ids"))
            self.alt_values, self.alt_offsets = _flat(table.column("alt_input_ids"))
            variant_offsets = table.column("variant_offset").to_numpy()
            label_values = table.column("label").to_numpy()
        else:
            frame = _read_frame(path, ["ref_sequence", "alt_sequence", "label"])
            frame = frame[pd.to_numeric(frame["label"], errors="coerce").notna()]
            tokenizer = tokenizer or DNATokenizer()
            refs, alts = frame["ref_sequence"].tolist(), frame["alt_sequence"].tolist()
            self.ref_values, self.ref_offsets = _tokenize_all(refs, tokenizer, str(path))
            self.alt_values, self.alt_offsets = _tokenize_all(alts, tokenizer, str(path))
            if "variant_offset" in frame.columns:
                variant_offsets = frame["variant_offset"].to_numpy(dtype=np.int64)
            else:
                variant_offsets = np.array([_first_difference(r, a) for r, a in
                                            zip(refs, alts, strict=True)],
                                           dtype=np.int64)
            label_values = pd.to_numeric(frame["label"]).to_numpy()
        labels = np.asarray(label_values, dtype=np.float64)
        self.labels = labels.astype(np.int64) if len(labels) and (
            labels == np.round(labels)).all() else labels.astype(np.float32)
        self.variant_offsets = np.asarray(variant_offsets, dtype=np.int64)
        super().__init__(max_length, padding, tokenizer.pad_token_id)
        self._pad_to_longest(self.ref_offsets, self.alt_offsets)
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.ref_offsets) - 1

    @property
    def num_classes(self) -> int | None:
        """Classes of whole-number labels (``max + 1``, at least 2); None for scores."""
        if self.labels.dtype.kind == "f" or not len(self.labels):
            return None
        return max(int(self.labels.max()) + 1, 2)

    def _window(self, values: np.ndarray, offsets: np.ndarray, index: int, variant: int
                ) -> tuple[np.ndarray, int]:
        row = values[offsets[index]:offsets[index + 1]]
        if self.max_length is None or len(row) <= self.max_length:
            return row, variant
        start = min(max(variant - self.max_length // 2, 0), len(row) - self.max_length)
        return row[start:start + self.max_length], variant - start

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} variants")
        index %= len(self)
        variant = int(self.variant_offsets[index])
        ref, offset = self._window(self.ref_values, self.ref_offsets, index, variant)
        alt, _ = self._window(self.alt_values, self.alt_offsets, index, variant)
        item = {
            "ref_input_ids": torch.from_numpy(ref.astype(np.int64)),
            "alt_input_ids": torch.from_numpy(alt.astype(np.int64)),
            "variant_offset": torch.tensor(offset, dtype=torch.long),
            "labels": torch.tensor(self.labels[index]),
        }
        if self.pad_length is not None:
            for allele in ("ref", "alt"):
                ids = item[f"{allele}_input_ids"]
                item[f"{allele}_attention_mask"] = _pad(torch.ones(len(ids), dtype=torch.long),
                                                        self.pad_length, 0)
                item[f"{allele}_input_ids"] = _pad(ids, self.pad_length, self.pad_token_id)
        return item


def _first_difference(ref: str, alt: str) -> int:
    for position, (a, b) in enumerate(zip(ref.upper(), alt.upper(), strict=False)):
        if a != b:
            return position
    return min(len(ref), len(alt)) // 2


class ShardDataset(IterableDataset):
    """Stream a shard directory row group by row group, without loading it whole.

    ``shard_dir`` may be one directory or several of the same kind and tokenizer (e.g. one per
    genome of a pretraining corpus); they stream as one data set.

    Row groups are dealt round-robin to (distributed rank, DataLoader worker) pairs, so every
    row is read exactly once per epoch across all workers and ranks. When there are fewer row
    groups than readers (small data sets under DDP), rows are dealt instead, so that no rank is
    left without data. With ``shuffle_buffer``,
    row groups are visited in a seeded random order and rows are drawn at random from a buffer
    of that many rows. Rows longer than ``max_length`` are cropped at a random offset (per-base
    labels with them; variant windows keep the variant inside), which lets windows ingested at
    the longest curriculum length serve the shorter stages. Call :meth:`set_epoch` each epoch
    for a new order. Items are unpadded: use ``DataLoader(..., collate_fn=collate_batch)``.

    Items by shard kind (L = the row's length, at most ``max_length``): "windows"
    ``input_ids (L,)`` int64; "table" adds ``labels ()`` (int64 class or float32 value);
    "annotation" adds ``labels (L,)`` int64; "variants" gives ``ref_input_ids (L,)``,
    ``alt_input_ids (L,)``, ``variant_offset ()`` and ``labels ()``.
    """

    def __init__(self, shard_dir: str | Path | Sequence[str | Path],
                 max_length: int | None = None, shuffle_buffer: int = 0, seed: int = 0) -> None:
        super().__init__()
        dirs = [Path(shard_dir)] if isinstance(shard_dir, str | Path) else \
            [Path(path) for path in shard_dir]
        if not dirs:
            raise DataError("no shard directory given")
        manifests = [read_manifest(path) for path in dirs]
        self.shard_dir = dirs[0]
        self.manifest = manifests[0]
        self.kind = self.manifest["kind"]
        for path, manifest in zip(dirs[1:], manifests[1:], strict=True):
            if manifest["kind"] != self.kind or manifest.get("tokenizer") != \
                    self.manifest.get("tokenizer"):
                raise DataError(f"holds {manifest['kind']!r} shards tokenized as "
                                f"{manifest.get('tokenizer', {}).get('type')!r}; {dirs[0]} "
                                f"holds {self.kind!r} shards tokenized as "
                                f"{self.manifest.get('tokenizer', {}).get('type')!r}",
                                path=path)
        self.tokenizer = CharTokenizer.from_dict(self.manifest["tokenizer"]) \
            if self.manifest.get("tokenizer") else None
        self.max_length = max_length
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.epoch = 0
        self.num_rows = sum(int(manifest["num_rows"]) for manifest in manifests)
        self.row_groups = [(path, group) for directory in dirs for path in part_paths(directory)
                           for group in range(pq.ParquetFile(path).num_row_groups)]

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffling/cropping seed (call at the start of every epoch)."""
        self.epoch = epoch

    def _my_share(self) -> tuple[list[tuple[Path, int]], slice]:
        """This reader's row groups and the rows it takes from each of them."""
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        readers, reader = world * num_workers, rank * num_workers + worker_id
        order = list(range(len(self.row_groups)))
        if self.shuffle_buffer:
            np.random.default_rng((self.seed, self.epoch)).shuffle(order)
        if len(order) < readers:  # too few row groups to deal: every reader takes every n-th row
            return [self.row_groups[i] for i in order], slice(reader, None, readers)
        return [self.row_groups[i] for i in order[reader::readers]], slice(None)

    def _rows(self, rng: np.random.Generator) -> Iterator[dict[str, torch.Tensor]]:
        columns = {"windows": ["input_ids"], "table": ["input_ids", "label"],
                   "annotation": ["input_ids", "labels"],
                   "variants": ["ref_input_ids", "alt_input_ids", "variant_offset", "label"]
                   }[self.kind]
        groups, rows_taken = self._my_share()
        for path, group in groups:
            table = _from_storage(pq.ParquetFile(path).read_row_group(group, columns=columns))
            data = {name: _column_rows(table.column(name)) for name in columns}
            for index in range(table.num_rows)[rows_taken]:
                yield self._item({name: rows(index) for name, rows in data.items()}, rng)

    def _item(self, row: Mapping[str, Any], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        if self.kind == "variants":
            ref, alt, variant = row["ref_input_ids"], row["alt_input_ids"], int(row[
                "variant_offset"])
            if self.max_length is not None and len(ref) > self.max_length:
                low = max(0, variant - self.max_length + 1)
                high = min(variant, len(ref) - self.max_length)
                start = int(rng.integers(low, high + 1))
                ref, alt = ref[start:start + self.max_length], alt[start:start + self.max_length]
                variant -= start
            label = row["label"]
            return {"ref_input_ids": torch.from_numpy(ref.astype(np.int64)),
                    "alt_input_ids": torch.from_numpy(alt.astype(np.int64)),
                    "variant_offset": torch.tensor(variant),
                    "labels": torch.tensor(label, dtype=torch.long if isinstance(label, int)
                                           else torch.float32)}
        ids = row["input_ids"]
        start = 0
        if self.max_length is not None and len(ids) > self.max_length:
            start = int(rng.integers(0, len(ids) - self.max_length + 1))
            ids = ids[start:start + self.max_length]
        item: dict[str, Any] = {"input_ids": torch.from_numpy(ids.astype(np.int64))}
        if self.kind == "annotation":
            labels = row["labels"][start:start + len(ids)]
            item["labels"] = torch.from_numpy(labels.astype(np.int64))
        elif self.kind == "table":
            label = row["label"]
            item["labels"] = torch.tensor(label, dtype=torch.long if isinstance(label, int)
                                          else torch.float32)
        return item

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = get_worker_info()
        rng = np.random.default_rng((self.seed, self.epoch, worker.id if worker else 0,
                                     torch.distributed.get_rank()
                                     if torch.distributed.is_available()
                                     and torch.distributed.is_initialized() else 0))
        rows = self._rows(rng)
        if not self.shuffle_buffer:
            yield from rows
            return
        buffer: list[dict[str, torch.Tensor]] = []
        for item in rows:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(item)
                continue
            slot = int(rng.integers(len(buffer)))
            yield buffer[slot]
            buffer[slot] = item
        rng.shuffle(buffer)  # type: ignore[arg-type]
        yield from buffer


def _column_rows(column: pa.ChunkedArray) -> Any:
    """Row accessor of one column: numpy slices for list columns, Python scalars otherwise."""
    array = column.combine_chunks()
    if pa.types.is_list(array.type):
        values, offsets = _flat(array)
        return lambda index: values[offsets[index]:offsets[index + 1]]
    scalars = array.to_pylist()
    return lambda index: scalars[index]


def _without_trailing_padding(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """``item`` with each sequence cut after the last real position of its attention mask."""
    cut = dict(item)
    for key, mask in item.items():
        if not key.endswith("attention_mask") or not isinstance(mask, torch.Tensor) \
                or mask.dim() != 1 or not mask.any():
            continue
        prefix = key[: -len("attention_mask")]
        end = int(mask.nonzero().max()) + 1
        names = [key, f"{prefix}input_ids"] + (["labels"] if not prefix else [])
        for name in names:
            value = item.get(name)
            if isinstance(value, torch.Tensor) and value.dim() == 1 and len(value) == len(mask):
                cut[name] = value[:end]
    return cut


def collate_batch(items: Sequence[Mapping[str, Any]], pad_token_id: int = 0
                  ) -> dict[str, Any]:
    """Stack dataset items into a batch, padding sequences to the longest one.

    Padding an item already carries (its ``*attention_mask`` ends in zeros) is cut first, so a
    batch is as long as its longest real sequence whatever the dataset padded to.
    ``*input_ids`` are padded with ``pad_token_id``; ``input_ids`` gets an ``attention_mask``
    (1 = real token) and ``ref_input_ids``/``alt_input_ids`` get ``ref_attention_mask``/
    ``alt_attention_mask`` unless the items carry them; per-base ``labels`` are padded with
    -100; scalars are stacked; non-tensor fields become lists.

    Returns:
        ``{"input_ids": (batch, length) long, "attention_mask": (batch, length) long,
        "labels": (batch,) or (batch, length), ...}``.
    """
    if not items:
        raise ConfigurationError("collate_batch got an empty list of items")
    items = [_without_trailing_padding(item) for item in items]
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if not isinstance(values[0], torch.Tensor):
            batch[key] = values
            continue
        if values[0].dim() == 0:
            batch[key] = torch.stack(values)
            continue
        longest = max(len(v) for v in values)
        fill = pad_token_id if key.endswith("input_ids") else IGNORE_INDEX if key == "labels" \
            else 0
        batch[key] = torch.stack([_pad(v, longest, fill) for v in values])
        if key.endswith("input_ids"):
            mask_key = key.replace("input_ids", "attention_mask")
            if mask_key not in items[0]:
                batch[mask_key] = torch.stack([
                    _pad(torch.ones(len(v), dtype=torch.long), longest, 0) for v in values])
    return batch
