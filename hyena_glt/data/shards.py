"""Shard directories: the Parquet output of every ``hyena-glt ingest`` command.

A shard directory holds ``part-00000.parquet``, ``part-00001.parquet``, ... and a
``manifest.json`` describing them (kind, tokenizer, columns, rows per part, total tokens,
source files with SHA-256, the ingest parameters, package version). It is written under a
temporary name and renamed into place only when complete (:func:`hyena_glt.io.atomic_directory`),
so a failed ingest leaves nothing behind. The layout and every column are documented in
``docs/schemas.md``; :data:`SCHEMAS` holds the required columns of each kind.

Per-token columns (``list<uint8>`` token ids, ``list<int8>`` per-base labels) are stored in
Parquet as one ``binary`` value per row (the same bytes, tagged in the field metadata), because
Parquet's nested lists write at ~40 MB/s and binary at ~150 MB/s (zstd); :func:`read_table` and
:func:`iter_batches` give them back as lists without copying.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..errors import DataError
from ..io import atomic_directory, atomic_file, sha256sum

__all__ = [
    "SCHEMA_VERSION",
    "SCHEMAS",
    "KINDS",
    "MANIFEST_NAME",
    "ShardWriter",
    "read_manifest",
    "part_paths",
    "iter_batches",
    "read_table",
    "list_array",
]

logger = logging.getLogger(__name__)

#: Bumped whenever the layout or a required column changes incompatibly.
SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
TOKENS = pa.list_(pa.uint8())

_WINDOW_COORDINATES = [
    pa.field("record_id", pa.string()),  # FASTA record the window comes from
    pa.field("start", pa.int64()),  # 0-based, forward strand, inclusive
    pa.field("end", pa.int64()),  # 0-based, forward strand, exclusive
    pa.field("strand", pa.string()),  # "+" or "-" (reverse complement of [start, end))
]

#: Required columns of each shard kind (more columns may follow: labels, passthrough fields).
SCHEMAS: dict[str, pa.Schema] = {
    # FASTA windows for pretraining.
    "windows": pa.schema([
        pa.field("id", pa.string()), pa.field("input_ids", TOKENS), *_WINDOW_COORDINATES,
        pa.field("source", pa.string()),  # FASTA file name
    ]),
    # Labelled sequences; ``label`` is int64 (class index) or float64 (regression).
    "table": pa.schema([pa.field("id", pa.string()), pa.field("input_ids", TOKENS)]),
    # Per-base labels for token classification (``labels`` has one int8 per token).
    "annotation": pa.schema([
        pa.field("id", pa.string()), pa.field("input_ids", TOKENS),
        pa.field("labels", pa.list_(pa.int8())), *_WINDOW_COORDINATES,
    ]),
    # Reference and alternate windows around a variant; ``label`` int64 or float64 (NaN = none).
    "variants": pa.schema([
        pa.field("id", pa.string()), pa.field("ref_input_ids", TOKENS),
        pa.field("alt_input_ids", TOKENS),
        pa.field("variant_offset", pa.int64()),  # 0-based position of the variant in the windows
        pa.field("chrom", pa.string()), pa.field("pos", pa.int64()),  # 1-based, as in VCF
        pa.field("ref", pa.string()), pa.field("alt", pa.string()),
    ]),
}
KINDS = tuple(SCHEMAS)

#: Token columns counted in the manifest's ``total_tokens``, per kind.
_TOKEN_COLUMN = {"variants": "ref_input_ids"}


def list_array(values: np.ndarray, offsets: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    """A list column from one flat ``values`` array and ``offsets`` (length rows + 1), no copy loop.

    This is how the ingesters build ``input_ids`` for thousands of windows at once.
    """
    return pa.ListArray.from_arrays(
        pa.array(np.asarray(offsets, dtype=np.int32)),
        pa.array(np.ascontiguousarray(values).astype(value_type.to_pandas_dtype(), copy=False)),
        type=pa.list_(value_type),
    )


#: Field metadata key marking a list column stored as packed bytes (value: its value type).
_PACKED = b"hyena_glt.packed_list"
_PACKABLE = {pa.uint8(): b"uint8", pa.int8(): b"int8"}
_UNPACKED = {name: dtype for dtype, name in _PACKABLE.items()}


def _is_packable(field_type: pa.DataType) -> bool:
    return pa.types.is_list(field_type) and field_type.value_type in _PACKABLE


def _pack(array: pa.Array) -> pa.BinaryArray:
    """A list<uint8|int8> column as one ``binary`` value per row, sharing the same bytes.

    Parquet writes and reads binary columns 4-10x faster than nested lists (no per-element
    repetition levels), so per-token columns are stored this way; :func:`_unpack` restores them.
    """
    if array.null_count:
        raise ValueError("per-token list columns cannot hold nulls")
    offsets = np.asarray(array.offsets, dtype=np.int64)
    values = np.asarray(array.flatten()).view(np.uint8)
    relative = (offsets - offsets[0]).astype(np.int32) if len(offsets) else np.zeros(1, np.int32)
    return pa.BinaryArray.from_buffers(
        pa.binary(), len(array), [None, pa.py_buffer(relative), pa.py_buffer(values)])


def _unpack(array: pa.Array, value_type: pa.DataType) -> pa.ListArray:
    """Inverse of :func:`_pack`, without copying the bytes."""
    if isinstance(array, pa.ChunkedArray):
        return pa.chunked_array([_unpack(chunk, value_type) for chunk in array.chunks],
                                type=pa.list_(value_type))
    _, offset_buffer, data = array.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int32)[array.offset:array.offset + len(array) + 1]
    size = data.size if data is not None else 0
    values = pa.Array.from_buffers(value_type, size, [None, data])
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=pa.list_(value_type))


def _storage_schema(schema: pa.Schema) -> pa.Schema:
    """The Parquet schema: packable list columns become ``binary`` tagged with their value type."""
    fields = [
        pa.field(f.name, pa.binary(), metadata={_PACKED: _PACKABLE[f.type.value_type]})
        if _is_packable(f.type) else f for f in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


def _to_storage(table: pa.Table, storage: pa.Schema) -> pa.Table:
    arrays = [_pack(table.column(f.name).combine_chunks()) if f.metadata and _PACKED in f.metadata
              else table.column(f.name) for f in storage]
    return pa.Table.from_arrays(arrays, schema=storage)


def _from_storage(data: pa.Table | pa.RecordBatch) -> pa.Table | pa.RecordBatch:
    """Restore packed per-token columns of a table or batch read from Parquet."""
    fields, arrays = [], []
    for field, column in zip(data.schema, data.columns, strict=True):
        if field.metadata and _PACKED in field.metadata:
            value_type = _UNPACKED[field.metadata[_PACKED]]
            column = _unpack(column, value_type)
            field = pa.field(field.name, pa.list_(value_type))
        fields.append(field)
        arrays.append(column)
    schema = pa.schema(fields, metadata=data.schema.metadata)
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatch.from_arrays(arrays, schema=schema)
    return pa.Table.from_arrays(arrays, schema=schema)


def _to_arrow(values: Any, field_type: pa.DataType | None) -> pa.Array:
    """Convert one column (Arrow array, numpy array, or list of scalars/arrays) to Arrow."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if field_type is None or values.type == field_type else values.cast(field_type)
    if field_type is not None and pa.types.is_list(field_type):
        items = [np.asarray(item) for item in values]
        lengths = np.fromiter((len(item) for item in items), dtype=np.int64, count=len(items))
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.concatenate(items) if items else np.zeros(0)
        return list_array(flat, offsets, field_type.value_type)
    if isinstance(values, np.ndarray) and values.ndim == 1:
        array = pa.array(values)
    else:
        array = pa.array(list(values), type=field_type)
    return array if field_type is None or array.type == field_type else array.cast(field_type)


class ShardWriter:
    """Write one shard directory; use as a context manager.

    Rows arrive as single-row dicts (:meth:`write`), column dicts (:meth:`write_columns`) or
    Arrow batches (:meth:`write_batch`). The required columns of ``kind`` (:data:`SCHEMAS`)
    must be present; further columns are typed by ``schema`` if listed there, else inferred
    from the first rows and kept fixed afterwards. Rows are buffered into row groups of
    ``row_group_rows`` and parts of ``rows_per_part``. On a clean exit the manifest is written
    and the directory renamed into place; on an exception nothing is left.

    Attributes a caller may fill before the block ends: ``metadata`` (dict, stored under the
    manifest's ``metadata``: the ingest parameters and counts), ``labels`` (class names, the
    manifest's ``labels`` list) and ``sources`` (via :meth:`add_source`).

    Args:
        out_dir: the shard directory to create (an old one is replaced on success).
        kind: one of :data:`KINDS`.
        tokenizer: the tokenizer that made the ids; its ``to_dict()`` goes into the manifest.
        schema: types of extra columns (e.g. ``pa.schema([("label", pa.float64())])``).
        rows_per_part: rows per Parquet file.
        row_group_rows: rows per row group (the unit :class:`ShardDataset` streams).
        metadata: initial ``metadata`` dict.
        compression: Parquet codec; zstd level 1 keeps writing close to decompression speed.
    """

    def __init__(
        self,
        out_dir: str | Path,
        kind: str,
        tokenizer: Any,
        schema: pa.Schema | None = None,
        rows_per_part: int = 262_144,
        row_group_rows: int = 16_384,
        metadata: Mapping[str, Any] | None = None,
        compression: str = "zstd",
        compression_level: int | None = 1,
        labels: Sequence[str] | None = None,
    ) -> None:
        if kind not in SCHEMAS:
            raise ValueError(f"kind={kind!r}; expected one of {', '.join(KINDS)}")
        if rows_per_part < 1 or row_group_rows < 1:
            raise ValueError("rows_per_part and row_group_rows must be >= 1")
        self.out_dir = Path(out_dir)
        self.kind = kind
        self.tokenizer = tokenizer
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.labels: list[str] | None = list(labels) if labels is not None else None
        self.sources: list[dict[str, str]] = []
        self._declared = {f.name: f.type for f in SCHEMAS[kind]}
        if schema is not None:
            self._declared.update({f.name: f.type for f in schema})
        self._schema: pa.Schema | None = None  # logical: per-token columns as lists
        self._storage: pa.Schema | None = None  # in Parquet: those columns packed as binary
        self._rows_per_part = rows_per_part
        self._row_group_rows = row_group_rows
        self._compression = compression
        self._compression_level = compression_level
        self._pending_rows: list[Mapping[str, Any]] = []
        self._pending: list[pa.Table] = []
        self._pending_count = 0
        self._parts: list[dict[str, Any]] = []
        self._writer: pq.ParquetWriter | None = None
        self._part_rows = 0
        self._total_tokens = 0
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer")
        self._in_flight: deque[Future[Any]] = deque()
        self._context: Any = None
        self._tmp: Path | None = None

    # -- context management -------------------------------------------------------------
    def __enter__(self) -> ShardWriter:
        self._context = atomic_directory(self.out_dir)
        self._tmp = self._context.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            if exc_type is None:
                self._finish()
        except BaseException as err:
            self._close()
            self._context.__exit__(type(err), err, err.__traceback__)  # removes the temporary
            raise
        self._close()
        return self._context.__exit__(exc_type, exc, tb)

    def _close(self) -> None:
        """Stop the writer thread and close an open part (after success, or on an error)."""
        for future in self._in_flight:
            future.exception()
        self._in_flight.clear()
        self._io.shutdown(wait=True)
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _submit(self, task: Any, *args: Any) -> None:
        """Run Parquet encoding/compression on the writer thread, overlapping the caller's work.

        At most two tasks wait, which bounds memory; a failed task re-raises here.
        """
        while len(self._in_flight) >= 2:
            self._in_flight.popleft().result()
        self._in_flight.append(self._io.submit(task, *args))

    # -- input ------------------------------------------------------------------------------
    def add_source(self, path: str | Path) -> None:
        """Record an input file (name and SHA-256) in the manifest."""
        self.sources.append({"path": str(path), "sha256": sha256sum(path)})

    def write(self, row: Mapping[str, Any]) -> None:
        """Buffer one row (column name -> value; token columns as arrays or lists of ints)."""
        self._pending_rows.append(row)
        if len(self._pending_rows) >= self._row_group_rows:
            self._flush_rows()

    def write_columns(self, columns: Mapping[str, Any]) -> None:
        """Append rows given column-wise (Arrow arrays, numpy arrays or lists of equal length)."""
        self._flush_rows()
        self._append(self._table_from_columns(columns))

    def write_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Append an Arrow record batch or table."""
        self._flush_rows()
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        self._append(self._table_from_columns({n: table.column(n) for n in table.column_names}))

    # -- internals --------------------------------------------------------------------------
    def _flush_rows(self) -> None:
        if not self._pending_rows:
            return
        rows, self._pending_rows = self._pending_rows, []
        names = list(rows[0])
        columns = {}
        for name in names:
            try:
                columns[name] = [row[name] for row in rows]
            except KeyError:
                raise ValueError(f"rows written to {self.out_dir} differ in their columns "
                                 f"({name!r} missing in some)") from None
        self._append(self._table_from_columns(columns))

    def _table_from_columns(self, columns: Mapping[str, Any]) -> pa.Table:
        missing = [name for name in SCHEMAS[self.kind].names if name not in columns]
        if missing:
            raise ValueError(f"{self.kind!r} shards need column(s) {missing}; got {list(columns)}")
        if self._schema is not None:
            extra = set(columns) - set(self._schema.names)
            absent = set(self._schema.names) - set(columns)
            if extra or absent:
                raise ValueError(f"columns changed while writing {self.out_dir}: "
                                 f"new {sorted(extra)}, missing {sorted(absent)}")
            arrays = [_to_arrow(columns[f.name], f.type) for f in self._schema]
            return pa.Table.from_arrays(arrays, schema=self._schema)
        names = SCHEMAS[self.kind].names + [n for n in columns if n not in SCHEMAS[self.kind].names]
        arrays = [_to_arrow(columns[n], self._declared.get(n)) for n in names]
        table = pa.Table.from_arrays(arrays, names=names)
        self._schema = table.schema.with_metadata(self._file_metadata())
        self._storage = _storage_schema(self._schema)
        return table.replace_schema_metadata(self._schema.metadata)

    def _file_metadata(self) -> dict[bytes, bytes]:
        return {
            b"hyena_glt.schema_version": str(SCHEMA_VERSION).encode(),
            b"hyena_glt.kind": self.kind.encode(),
            b"hyena_glt.tokenizer": json.dumps(_tokenizer_dict(self.tokenizer)).encode(),
        }

    def _append(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_count += table.num_rows
        while self._pending_count >= self._row_group_rows:
            self._write_group(self._row_group_rows)

    def _write_group(self, rows: int) -> None:
        merged = pa.concat_tables(self._pending)
        rows = min(rows, self._rows_per_part - self._part_rows)
        group, rest = merged.slice(0, rows), merged.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_count = rest.num_rows
        if self._writer is None:
            name = f"part-{len(self._parts):05d}.parquet"
            self._parts.append({"file": name, "rows": 0})
            assert self._tmp is not None, "ShardWriter must be used as a context manager"
            self._writer = pq.ParquetWriter(
                self._tmp / name, self._storage, compression=self._compression,
                compression_level=self._compression_level, use_dictionary=False,
                write_statistics=False,
            )
        self._submit(_write_row_group, self._writer, group, self._storage)
        self._parts[-1]["rows"] += group.num_rows
        self._part_rows += group.num_rows
        token_column = _TOKEN_COLUMN.get(self.kind, "input_ids")
        self._total_tokens += len(group.column(token_column).combine_chunks().values)
        if self._part_rows >= self._rows_per_part:
            self._submit(self._writer.close)
            self._writer = None
            self._part_rows = 0

    def _finish(self) -> None:
        self._flush_rows()
        while self._pending_count:
            self._write_group(self._pending_count)
        if self._schema is None:  # no rows at all: still leave a readable, typed empty part
            self._schema = SCHEMAS[self.kind].with_metadata(self._file_metadata())
            self._storage = _storage_schema(self._schema)
        if not self._parts:
            assert self._tmp is not None
            pq.write_table(self._storage.empty_table(), self._tmp / "part-00000.parquet")
            self._parts.append({"file": "part-00000.parquet", "rows": 0})
        if self._writer is not None:
            self._submit(self._writer.close)
            self._writer = None
        while self._in_flight:
            self._in_flight.popleft().result()
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "kind": self.kind,
            "package_version": __version__,
            "num_rows": sum(part["rows"] for part in self._parts),
            "total_tokens": self._total_tokens,
            "columns": {f.name: str(f.type) for f in self._schema},
            "parts": self._parts,
            "tokenizer": _tokenizer_dict(self.tokenizer),
            "labels": self.labels,
            "sources": self.sources,
            "metadata": self.metadata,
        }
        assert self._tmp is not None
        with atomic_file(self._tmp / MANIFEST_NAME) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
        logger.info("wrote %s: %s rows in %d part(s), %s tokens", self.out_dir,
                    f"{manifest['num_rows']:,}", len(self._parts), f"{self._total_tokens:,}")


def _write_row_group(writer: pq.ParquetWriter, group: pa.Table, storage: pa.Schema) -> None:
    writer.write_table(_to_storage(group, storage), row_group_size=group.num_rows)


def _tokenizer_dict(tokenizer: Any) -> dict[str, Any] | None:
    return tokenizer.to_dict() if tokenizer is not None else None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in manifest.json")


# -- reading ----------------------------------------------------------------------------------
def read_manifest(shard_dir: str | Path) -> dict[str, Any]:
    """Load and check ``manifest.json`` of a shard directory.

    Raises:
        DataError: the directory or manifest is missing or unreadable, the schema version is
            not :data:`SCHEMA_VERSION`, the kind is unknown, or a listed part file is missing.
    """
    shard_dir = Path(shard_dir)
    path = shard_dir / MANIFEST_NAME
    if not shard_dir.is_dir():
        raise DataError("not a shard directory (it does not exist or is a file)", path=shard_dir)
    if not path.is_file():
        parts = sorted(p.name for p in shard_dir.iterdir() if (p / MANIFEST_NAME).is_file())
        if parts:
            raise DataError(f"a folder of split parts ({', '.join(parts)}), not one shard "
                            f"directory: give one part, e.g. {shard_dir / parts[-1]}",
                            path=shard_dir)
        raise DataError(f"missing {MANIFEST_NAME}: not a complete shard directory "
                        "(re-run the ingest command)", path=shard_dir)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"unreadable manifest: {err}", path=path) from None
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        found = manifest.get("schema_version") if isinstance(manifest, dict) else None
        raise DataError(f"schema_version {found!r}, this version of hyena-glt reads "
                        f"{SCHEMA_VERSION}; re-run the ingest command", path=path)
    if manifest.get("kind") not in SCHEMAS:
        raise DataError(f"unknown kind {manifest.get('kind')!r}; expected one of "
                        f"{', '.join(KINDS)}", path=path)
    for part in manifest.get("parts", []):
        if not (shard_dir / part["file"]).is_file():
            raise DataError(f"part file listed in {MANIFEST_NAME} is missing",
                            path=shard_dir / part["file"])
    return manifest


def part_paths(shard_dir: str | Path) -> list[Path]:
    """The checked Parquet files of a shard directory, in order."""
    manifest = read_manifest(shard_dir)
    return [Path(shard_dir) / part["file"] for part in manifest["parts"]]


def _open_part(path: Path, kind: str) -> pq.ParquetFile:
    try:
        handle = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"unreadable Parquet file: {err}", path=path) from None
    missing = [n for n in SCHEMAS[kind].names if n not in handle.schema_arrow.names]
    if missing:
        raise DataError(f"missing column(s) {missing} required in {kind!r} shards", path=path)
    return handle


def iter_batches(
    shard_dir: str | Path, columns: Sequence[str] | None = None, batch_size: int = 8192,
) -> Iterator[pa.RecordBatch]:
    """Stream the rows of a shard directory as record batches, part after part."""
    manifest = read_manifest(shard_dir)
    for part in manifest["parts"]:
        path = Path(shard_dir) / part["file"]
        handle = _open_part(path, manifest["kind"])
        _check_columns(handle, columns, path)
        for batch in handle.iter_batches(batch_size=batch_size, columns=columns):
            yield _from_storage(batch)


def read_table(shard_dir: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """All rows of a shard directory as one Arrow table (small shards; else :func:`iter_batches`)."""
    manifest = read_manifest(shard_dir)
    tables = []
    for part in manifest["parts"]:
        path = Path(shard_dir) / part["file"]
        handle = _open_part(path, manifest["kind"])
        _check_columns(handle, columns, path)
        tables.append(_from_storage(handle.read(columns=columns)))
    return pa.concat_tables(tables)


def _check_columns(handle: pq.ParquetFile, columns: Sequence[str] | None, path: Path) -> None:
    if columns is None:
        return
    missing = [n for n in columns if n not in handle.schema_arrow.names]
    if missing:
        raise DataError(f"no column(s) {missing}; columns are {handle.schema_arrow.names}",
                        path=path)
