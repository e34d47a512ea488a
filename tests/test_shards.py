"""Shard directories: round trips, part/row-group layout, atomicity and validation on read."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hyena_glt.data.shards import (
    SCHEMA_VERSION,
    SCHEMAS,
    ShardWriter,
    iter_batches,
    read_manifest,
    read_table,
)
from hyena_glt.data.tokenizers import DNATokenizer
from hyena_glt.errors import DataError


def table_rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"id": f"r{i}", "input_ids": rng.integers(7, 11, rng.integers(0, 40)).astype(np.uint8),
             "label": int(i % 3), "note": f"n{i}"} for i in range(n)]


def test_rows_round_trip_across_parts_and_row_groups(tmp_path):
    rows = table_rows(23)
    out = tmp_path / "shards"
    with ShardWriter(out, "table", DNATokenizer(), rows_per_part=10, row_group_rows=4,
                     labels=["a", "b", "c"], metadata={"parameters": {"x": 1}}) as writer:
        for row in rows[:9]:
            writer.write(row)
        writer.write_columns({key: [row[key] for row in rows[9:]] for key in rows[0]})
    manifest = read_manifest(out)
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["kind"] == "table"
    assert [p["rows"] for p in manifest["parts"]] == [10, 10, 3]
    assert manifest["num_rows"] == 23
    assert manifest["total_tokens"] == sum(len(r["input_ids"]) for r in rows)
    assert manifest["labels"] == ["a", "b", "c"] and manifest["metadata"] == {"parameters": {"x": 1}}
    assert manifest["tokenizer"] == DNATokenizer().to_dict()
    assert pq.ParquetFile(out / "part-00000.parquet").num_row_groups == 3  # 4 + 4 + 2
    table = read_table(out)
    assert table.schema.field("input_ids").type == pa.list_(pa.uint8())
    assert table.column("id").to_pylist() == [r["id"] for r in rows]
    assert table.column("input_ids").to_pylist() == [r["input_ids"].tolist() for r in rows]
    assert table.column("label").to_pylist() == [r["label"] for r in rows]
    batches = list(iter_batches(out, columns=["input_ids"], batch_size=5))
    assert sum(b.num_rows for b in batches) == 23
    assert pa.Table.from_batches(batches).column("input_ids").to_pylist() == \
        table.column("input_ids").to_pylist()


def test_token_columns_are_stored_as_tagged_binary(tmp_path):
    out = tmp_path / "shards"
    with ShardWriter(out, "annotation", DNATokenizer()) as writer:
        writer.write({"id": "w", "input_ids": np.array([7, 8, 9], np.uint8),
                      "labels": np.array([0, 1, -1], np.int8), "record_id": "r", "start": 0,
                      "end": 3, "strand": "+"})
    stored = pq.read_table(out / "part-00000.parquet")
    assert stored.schema.field("input_ids").type == pa.binary()
    assert stored.column("input_ids").to_pylist() == [bytes([7, 8, 9])]
    assert stored.schema.metadata[b"hyena_glt.kind"] == b"annotation"
    row = read_table(out).to_pylist()[0]
    assert row["input_ids"] == [7, 8, 9] and row["labels"] == [0, 1, -1]


def test_failure_inside_the_block_leaves_nothing_and_keeps_the_old_directory(tmp_path):
    out = tmp_path / "shards"
    with ShardWriter(out, "table", DNATokenizer()) as writer:
        writer.write(table_rows(1)[0])
    with pytest.raises(RuntimeError), ShardWriter(out, "table", DNATokenizer(),
                                                  row_group_rows=2) as writer:
        for row in table_rows(5):
            writer.write(row)
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]
    assert read_manifest(out)["num_rows"] == 1


def test_missing_required_column_is_refused_and_nothing_is_left(tmp_path):
    with pytest.raises(ValueError, match="record_id"), ShardWriter(
            tmp_path / "w", "windows", DNATokenizer()) as writer:
        writer.write_columns({"id": ["a"], "input_ids": [[7]]})
    assert list(tmp_path.iterdir()) == []


def test_empty_writer_leaves_a_typed_readable_directory(tmp_path):
    with ShardWriter(tmp_path / "w", "windows", DNATokenizer()):
        pass
    table = read_table(tmp_path / "w")
    assert table.num_rows == 0 and table.schema.names == SCHEMAS["windows"].names


def test_reading_a_bad_directory_names_it(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_manifest(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="missing manifest.json") as info:
        read_manifest(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(info.value)
    out = tmp_path / "w"
    with ShardWriter(out, "table", DNATokenizer()) as writer:
        writer.write(table_rows(1)[0])
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 99}))
    with pytest.raises(DataError, match="schema_version 99"):
        read_table(out)
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "part-00000.parquet").unlink()
    with pytest.raises(DataError, match="part-00000.parquet"):
        read_table(out)
