"""Compression report: what a compression step bought and what it cost, measured.

For a model before and after compression: parameters, non-zero parameters, size on disk (of
what :func:`save_for_size` writes: safetensors, no pickle), CPU latency per batch and throughput
(sequences/s), and the task metric (accuracy for classification) on a validation loader.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score
from torch import nn

from ..io import atomic_file

__all__ = ["ModelMeasurement", "CompressionReport", "count_parameters", "measure_model",
           "evaluate_accuracy", "compression_report", "measure_pair"]

logger = logging.getLogger(__name__)


@dataclass
class ModelMeasurement:
    """One model's numbers (``metric`` and timings are ``None`` when no loader was given)."""

    parameters: int
    nonzero_parameters: int
    size_bytes: int
    latency_ms: float | None = None
    throughput_seqs_per_s: float | None = None
    metric_name: str = "accuracy"
    metric: float | None = None


@dataclass
class CompressionReport:
    """Before/after measurements of one compression method, with its settings."""

    method: str
    settings: dict[str, Any]
    before: ModelMeasurement
    after: ModelMeasurement
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        b, a = self.before, self.after
        data["size_ratio"] = a.size_bytes / b.size_bytes if b.size_bytes else None
        data["speedup"] = (a.throughput_seqs_per_s / b.throughput_seqs_per_s
                           if a.throughput_seqs_per_s and b.throughput_seqs_per_s else None)
        data["metric_change"] = (a.metric - b.metric if a.metric is not None
                                 and b.metric is not None else None)
        return data

    def save(self, path: str | Path) -> Path:
        """Write the report as JSON (atomically)."""
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")
        return Path(path)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(parameters, non-zero parameters)``, counting int8 weights of quantized layers too."""
    total = nonzero = 0
    for tensor in _weight_tensors(model):
        total += tensor.numel()
        nonzero += int(torch.count_nonzero(tensor))
    return total, nonzero


def _weight_tensors(model: nn.Module) -> Iterable[torch.Tensor]:
    seen: set[int] = set()
    for module in model.modules():
        packed = getattr(module, "_packed_params", None)
        if packed is not None and hasattr(module, "weight") and callable(module.weight):
            weight, bias = module.weight(), module.bias()
            yield weight.int_repr() if weight.is_quantized else weight
            if bias is not None:
                yield bias
        for param in module.parameters(recurse=False):
            if id(param) not in seen:
                seen.add(id(param))
                yield param.detach()
        int8 = getattr(module, "weight_int8", None)  # weight-only int8 layers (buffers)
        if isinstance(int8, torch.Tensor):
            yield int8


def _size_on_disk(model: nn.Module, save: Callable[[nn.Module, Path], Any] | None) -> int:
    from .serialization import save_compressed

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "model"
        (save or save_compressed)(model, directory)
        return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _batches(loader: Iterable[dict[str, Any]]) -> Iterable[tuple[torch.Tensor, Any, Any]]:
    for batch in loader:
        yield batch["input_ids"], batch.get("attention_mask"), batch.get("labels")


@torch.no_grad()
def evaluate_accuracy(model: Callable[..., Any], loader: Iterable[dict[str, Any]]) -> float:
    """Accuracy (scikit-learn) of a sequence classifier's argmax over ``loader``."""
    predictions, targets = [], []
    for input_ids, mask, labels in _batches(loader):
        logits = _logits(model(input_ids, mask))
        predictions.append(logits.argmax(-1).cpu().numpy())
        targets.append(np.asarray(labels))
    return float(accuracy_score(np.concatenate(targets), np.concatenate(predictions)))


def _logits(output: Any) -> torch.Tensor:
    logits = getattr(output, "logits", output)
    return torch.as_tensor(logits)


@torch.no_grad()
def _time_model(model: Callable[..., Any], loader: Iterable[dict[str, Any]], repeats: int
                ) -> tuple[float, float]:
    """Latency per batch (ms) and throughput (sequences/s) of the fastest of ``repeats``
    passes over ``loader``, after one warm-up batch (the least disturbed pass on a shared
    machine)."""
    batches = list(_batches(loader))
    model(batches[0][0], batches[0][1])
    sequences = sum(input_ids.shape[0] for input_ids, _mask, _labels in batches)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for input_ids, mask, _labels in batches:
            model(input_ids, mask)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(batches), sequences / best


def measure_model(model: nn.Module, loader: Iterable[dict[str, Any]] | None = None,
                  repeats: int = 1, save: Callable[[nn.Module, Path], Any] | None = None,
                  runner: Callable[..., Any] | None = None) -> ModelMeasurement:
    """Measure ``model``; timings and accuracy on ``loader`` if given.

    Args:
        model: the PyTorch model (its weights are counted and saved to measure the size).
        loader: validation batches with ``input_ids``, ``attention_mask`` and ``labels``.
        repeats: passes over ``loader`` for the timing.
        save: how to write the model for the size (default :func:`save_compressed`).
        runner: what to time and score instead of ``model`` (e.g. an ONNX Runtime session).
    """
    parameters, nonzero = count_parameters(model)
    measurement = ModelMeasurement(parameters, nonzero, _size_on_disk(model, save))
    if loader is not None:
        run = runner or model
        was_training = getattr(model, "training", False)
        model.eval()
        measurement.latency_ms, measurement.throughput_seqs_per_s = _time_model(run, loader,
                                                                                repeats)
        measurement.metric = evaluate_accuracy(run, loader)
        model.train(was_training)
    return measurement


def compression_report(method: str, settings: Any, before: ModelMeasurement,
                       after: ModelMeasurement, **extra: Any) -> CompressionReport:
    """Assemble and log a :class:`CompressionReport`."""
    if dataclasses.is_dataclass(settings):
        settings = {k: str(v) if isinstance(v, torch.dtype) else v
                    for k, v in dataclasses.asdict(settings).items()}
    report = CompressionReport(method, dict(settings), before, after, dict(extra))
    logger.info("%s: %s", method, json.dumps(report.to_dict(), default=str))
    return report


def measure_pair(method: str, settings: Any, before: nn.Module, after: nn.Module,
                 loader: Iterable[dict[str, Any]] | None, runner: Callable[..., Any] | None = None,
                 **extra: Any) -> CompressionReport:
    """Measure ``before`` and ``after`` (run through ``runner`` if given) on ``loader``."""
    return compression_report(method, settings, measure_model(before, loader),
                              measure_model(after, loader, runner=runner), **extra)
