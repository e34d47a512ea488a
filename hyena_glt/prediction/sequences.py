"""Per-sequence outputs: class probabilities or regression values, and embeddings.

``predictions.parquet`` (and the same rows as ``predictions.tsv``): ``id``, ``length`` (bases
read), ``truncated`` (the sequence was longer than the model's input and only its first
``max_length`` bases were read), then ``prob_<class>`` for each class and ``predicted_label``
of a classifier, or ``prediction`` (``prediction_<i>`` for several outputs) of a regression.

``embeddings.parquet``: ``id``, ``length``, ``embedding`` (the backbone's final states averaged
over the real positions, ``d_model`` float32) and, for a head with attention pooling,
``pooled`` (the head's pooled vector). A sequence longer than the model's input is read in
consecutive windows and both vectors are averaged over them, weighted by their lengths, so every
base counts and memory stays at one batch of windows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..errors import DataError, ModelError, TokenizationError
from ..model.heads import masked_mean
from ..progress import Progress
from .predictor import Predictor

__all__ = ["predict_sequences", "write_embeddings"]

logger = logging.getLogger(__name__)


def _batches(records: Iterable[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    batch: list[tuple[str, str]] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _encode(predictor: Predictor, batch: list[tuple[str, str]], path: Path,
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(B, L)`` ids and mask, right-padded, each sequence cut to the model's input length."""
    rows = []
    for name, sequence in batch:
        predictor.check_nucleotides(sequence, path, name)
        try:
            rows.append(predictor.tokenizer.encode_array(sequence[:predictor.max_length]))
        except TokenizationError as err:
            raise DataError(f"{err}; is this the right model for these sequences?", path=path,
                            record=name) from None
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), predictor.tokenizer.pad_token_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, :len(row)], mask[i, :len(row)] = row, 1
    return ids, mask


def _write_table(frame: pd.DataFrame, out_dir: Path, stem: str) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out_dir / f"{stem}.parquet")
    if stem == "predictions":
        frame.to_csv(out_dir / f"{stem}.tsv", sep="\t", index=False, float_format="%.6g")


def predict_sequences(predictor: Predictor, records: Iterable[tuple[str, str]], path: Path,
                      out_dir: Path, batch_size: int = 32) -> dict[str, int]:
    """Write ``predictions.parquet`` and ``predictions.tsv`` into ``out_dir``.

    Returns:
        Counts: ``sequences``, ``truncated``.

    Raises:
        DataError: a model that does not predict per sequence, a sequence outside the model's
            alphabet, DNA for a protein model, or no sequence at all (each names file/record).
    """
    predictor.require(("sequence_classification", "regression"),
                      "per-sequence predictions for FASTA records or table rows need a "
                      "sequence model (any model directory gives --embeddings)", path)
    ids, lengths, outputs = [], [], []
    with Progress(desc="sequences", unit="seq") as bar:
        for batch in _batches(records, batch_size):
            tokens, mask = _encode(predictor, batch, path)
            logits = predictor.logits(tokens, mask)
            if logits.dim() != 2:
                raise ModelError(f"{predictor.source}: logits of shape {tuple(logits.shape)}; "
                                 "a sequence model gives (batch, outputs)")
            outputs.append(logits if predictor.task == "regression" else logits.softmax(-1))
            ids += [name for name, _ in batch]
            lengths += [len(sequence) for _, sequence in batch]
            bar.update(len(batch))
    if not ids:
        raise DataError("no sequence to predict", path=path)
    values = torch.cat(outputs).numpy()
    frame = pd.DataFrame({"id": ids, "length": lengths})
    frame["truncated"] = frame["length"] > predictor.max_length
    names = predictor.class_names
    if predictor.task == "regression":
        columns = ["prediction"] if values.shape[1] == 1 else [f"prediction_{n}" for n in names]
        for j, column in enumerate(columns):
            frame[column] = values[:, j]
    else:
        for j, name in enumerate(names):
            frame[f"prob_{name}"] = values[:, j]
        frame["predicted_label"] = [names[j] for j in values.argmax(1)]
    _write_table(frame, out_dir, "predictions")
    counts = {"sequences": len(frame), "truncated": int(frame["truncated"].sum())}
    if counts["truncated"]:
        logger.warning("%d of %d sequences were longer than the model's %d-token input; only "
                       "their first %d bases were read (column 'truncated')", counts["truncated"],
                       len(frame), predictor.max_length, predictor.max_length)
    return counts


def _backbone_vectors(predictor: Predictor, ids: np.ndarray, mask: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(B, d)`` masked-mean final states, and the head's attention-pooled ``(B, d)`` if any."""
    model = predictor.model
    backbone = getattr(model, "backbone", model)
    pool = getattr(getattr(model, "head", None), "attention_pool", None)
    tokens = torch.as_tensor(ids).to(predictor.device)
    real = torch.as_tensor(mask).to(predictor.device)
    with torch.inference_mode(), predictor.autocast():
        states = backbone(tokens, real).last_hidden_state
        mean = masked_mean(states.float(), real).cpu().numpy()
        pooled = pool(states, real).float().cpu().numpy() if pool is not None else None
    return mean, pooled


def _windows(records: Iterable[tuple[str, str]], length: int
             ) -> Iterator[tuple[int, str, str, int]]:
    """``(record index, id, window, record length)`` of consecutive windows of each record."""
    for index, (name, sequence) in enumerate(records):
        for start in range(0, len(sequence), length):
            yield index, name, sequence[start:start + length], len(sequence)


def write_embeddings(predictor: Predictor, records: Iterable[tuple[str, str]], path: Path,
                     out_dir: Path, batch_size: int = 32) -> dict[str, int]:
    """Write ``embeddings.parquet`` into ``out_dir`` (module docstring).

    Raises:
        ModelError: an ONNX export (its graph returns logits only).
        DataError: as :func:`predict_sequences`.
    """
    if not predictor.is_torch:
        raise ModelError(f"{predictor.source} is an ONNX export, whose graph returns logits "
                         "only; give the model directory it was exported from for --embeddings")
    sums: dict[int, list] = {}
    names: dict[int, tuple[str, int]] = {}
    with Progress(desc="embeddings", unit="bp") as bar:
        batches = _batches(_windows(records, predictor.max_length), batch_size)
        for batch in batches:
            tokens, mask = _encode(predictor, [(name, window) for _, name, window, _ in batch],
                                   path)
            mean, pooled = _backbone_vectors(predictor, tokens, mask)
            for row, (index, name, window, length) in enumerate(batch):
                weight = len(window)
                names[index] = (name, length)
                total = sums.setdefault(index, [0.0, 0.0])
                total[0] = total[0] + weight * mean[row]
                if pooled is not None:
                    total[1] = total[1] + weight * pooled[row]
            bar.update(int(mask.sum()))
    if not names:
        raise DataError("no sequence to embed", path=path)
    order = sorted(names)
    columns = {"id": pa.array([names[i][0] for i in order]),
               "length": pa.array([names[i][1] for i in order], pa.int64())}
    for key, slot in (("embedding", 0), ("pooled", 1)):
        if key == "pooled" and isinstance(sums[order[0]][1], float):
            continue
        matrix = np.stack([sums[i][slot] / names[i][1] for i in order]).astype(np.float32)
        columns[key] = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)),
                                                         matrix.shape[1])
    pq.write_table(pa.table(columns), out_dir / "embeddings.parquet")
    return {"embedded": len(order)}
