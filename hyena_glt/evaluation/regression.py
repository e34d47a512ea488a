"""Evaluation of a sequence regressor on a labelled table with real-valued labels.

The model — a fine-tuned :class:`HyenaGLTForRegression` or its ONNX export — predicts
``logits (B, output_dim)``; the metrics are :meth:`GenomicMetrics.regression` (MSE, RMSE, MAE,
R², Pearson, Spearman) of the predictions against the labels of a "table" shard directory
(``hyena-glt ingest table --task regression``) or a CSV/TSV/Parquet with numeric labels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from hyena_glt.data.datasets import GenomicDataset, collate_batch
from hyena_glt.data.tokenizers import CharTokenizer, DNATokenizer
from hyena_glt.errors import DataError
from hyena_glt.evaluation.metrics import GenomicMetrics
from hyena_glt.evaluation.models import TorchSequenceClassifier, model_max_length

__all__ = ["evaluate_regressor", "predict_regressor", "TorchSequenceRegressor"]

logger = logging.getLogger(__name__)


@torch.no_grad()
def predict_regressor(model: Any, data: str | Path | GenomicDataset, batch_size: int = 32,
                      max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(predictions (N, K), targets (N, K))`` of ``model`` on ``data`` (sequences cut to
    ``max_length``, default the model's ``sequence_length`` or exported length).

    Raises:
        DataError: the data has class labels or none.
    """
    if isinstance(data, GenomicDataset):
        dataset = data
    else:
        dataset = GenomicDataset(data_path=data, max_length=max_length or model_max_length(model),
                                 padding=None)
    if dataset.labels is None or dataset.label2id is not None:
        raise DataError("regression needs real-valued labels (this data has "
                        f"{'none' if dataset.labels is None else 'class labels'})",
                        path=str(data))
    if isinstance(model, torch.nn.Module):
        model.eval()
    predictions, targets = [], []
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate_batch):
        if isinstance(model, torch.nn.Module):
            output = model(batch["input_ids"], batch["attention_mask"]).logits
        else:  # OnnxModel
            output = model(batch["input_ids"].numpy(), batch["attention_mask"].numpy())
        predictions.append(output.float().reshape(len(output), -1).numpy())
        targets.append(batch["labels"].float().reshape(len(output), -1).numpy())
    return np.concatenate(predictions), np.concatenate(targets)


def evaluate_regressor(model: Any, data: str | Path | GenomicDataset, batch_size: int = 32,
                       max_length: int | None = None) -> dict[str, Any]:
    """Regression metrics of :func:`predict_regressor` output, plus ``n_samples``."""
    predictions, targets = predict_regressor(model, data, batch_size, max_length)
    metrics = GenomicMetrics().regression(predictions, targets)
    metrics["n_samples"] = len(targets)
    logger.info("regression: %s", {k: round(v, 4) for k, v in metrics.items()
                                   if k in ("mse", "r2", "spearman_rho")})
    return metrics


@dataclass
class TorchSequenceRegressor:
    """``predict(sequences) -> (N,)`` over a torch regressor whose output has
    ``.logits (B, 1)`` (the first output of a multi-output head), as the benchmark drives it.

    ``max_length=None`` truncates to the model's ``config.sequence_length``.
    """

    model: torch.nn.Module
    tokenizer: CharTokenizer = field(default_factory=DNATokenizer)
    max_length: int | None = None
    batch_size: int = 64

    @torch.no_grad()
    def predict(self, sequences: Sequence[str]) -> np.ndarray:
        """``(N,)`` predicted values."""
        self.model.eval()
        max_length = self.max_length or model_max_length(self.model)
        values = []
        for start in range(0, len(sequences), self.batch_size):
            batch = self.tokenizer.batch_encode(list(sequences[start:start + self.batch_size]),
                                                max_length=max_length)
            output = self.model(batch["input_ids"], batch["attention_mask"])
            logits = output.logits if hasattr(output, "logits") else output
            values.append(logits.float().reshape(len(logits), -1)[:, 0].numpy())
        return np.concatenate(values)

    def parameters(self) -> dict[str, torch.Tensor]:
        """Stored tensors, counted as for every torch model of the benchmark."""
        return TorchSequenceClassifier(self.model).parameters()
