"""Post-training quantization: dynamic int8, weight-only int8, or fp16/bf16 casting.

What is quantized, and why (measured in ``benchmarks/bench_compression.py``):

* ``dynamic`` (``torch.ao.quantization.quantize_dynamic``): ``nn.Linear`` weights int8,
  activations quantized per call, int8 GEMM (fbgemm). Only the GEMM gets faster, so the
  speed-up of the whole model is bounded by the share of time spent in ``nn.Linear``
  (projections, MLPs, attention, heads): the FFT long convolutions, the depthwise short
  convolutions, the gating products, GELU and LayerNorm keep their float cost.
* ``weight_only``: int8 weights with per-row scales, dequantized per layer on use
  (:mod:`.weight_only`): ~4x smaller weights at float speed, accuracy of the rounded weights.
* ``float16`` / ``bfloat16``: cast every floating parameter and buffer (halves the size; on a
  CPU without native half-precision arithmetic, e.g. AVX2 only, it is slower than float32).

Kept float in every mode: the generators of the implicit long filters (:class:`ImplicitFilter`):
tiny, run once per forward, and their sine MLP feeds every tap of every long filter, so int8
rounding there perturbs the whole convolution (``keep_filters_float``); the FFTs run in float32
anyway (``fft_conv``); LayerNorms are not ``nn.Linear``. With ``quantize_embeddings`` the token
and hash n-gram tables (the largest tensors at ``vocab_size`` 8192) are stored int8 per row.

Static (calibrated) int8 is not offered: every ``nn.Linear`` here sits between float-only ops
(LayerNorm, FFT convolution, gating products, GELU), so a static graph would quantize and
dequantize around each Linear exactly as ``dynamic`` does, only with fixed activation ranges
(more error, no saved op); and graph-mode static quantization (FX/PT2E) needs a traced graph,
which the host-side input check and the data-dependent patch count of dynamic merging prevent.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import OptimizationError
from ..model.filters import ImplicitFilter
from .report import CompressionReport, measure_pair
from .weight_only import WeightOnlyInt8Embedding, WeightOnlyInt8Linear

__all__ = ["QuantizationConfig", "ModelQuantizer", "QUANTIZATION_TYPES", "apply_quantization"]

logger = logging.getLogger(__name__)

#: ``dynamic``: int8 ``nn.Linear`` weights and on-the-fly int8 activations; ``weight_only``:
#: int8 weights dequantized per layer; ``float16`` / ``bfloat16``: cast every floating tensor.
QUANTIZATION_TYPES = ("dynamic", "weight_only", "float16", "bfloat16")


@dataclass
class QuantizationConfig:
    """How to quantize.

    Args:
        quantization_type: one of :data:`QUANTIZATION_TYPES`.
        dtype: weight type of ``dynamic`` quantization (``torch.qint8`` only).
        keep_filters_float: leave the implicit-filter MLPs in float (recommended).
        quantize_embeddings: store the embedding tables as weight-only int8 too (``dynamic``
            and ``weight_only``; a size saving, the lookups stay float).
    """

    quantization_type: str = "dynamic"
    dtype: torch.dtype = torch.qint8
    keep_filters_float: bool = True
    quantize_embeddings: bool = True

    def __post_init__(self) -> None:
        if self.quantization_type not in QUANTIZATION_TYPES:
            raise OptimizationError(
                f"QuantizationConfig.quantization_type={self.quantization_type!r} is invalid: "
                f"must be one of {', '.join(QUANTIZATION_TYPES)}")
        if self.quantization_type == "dynamic" and self.dtype != torch.qint8:
            raise OptimizationError(
                f"QuantizationConfig.dtype={self.dtype!r} is invalid for dynamic quantization: "
                "must be torch.qint8")

    @property
    def int8(self) -> bool:
        return self.quantization_type in ("dynamic", "weight_only")

    def to_recipe(self) -> dict[str, Any]:
        """JSON-ready form, stored as ``quantization.json`` next to the weights."""
        return {"quantization_type": self.quantization_type, "dtype": str(self.dtype),
                "keep_filters_float": self.keep_filters_float,
                "quantize_embeddings": self.quantize_embeddings}

    @classmethod
    def from_recipe(cls, recipe: dict[str, Any]) -> QuantizationConfig:
        if not isinstance(recipe, dict):
            raise OptimizationError(f"quantization recipe {recipe!r} is invalid: expected a "
                                    "JSON object; re-run the quantize command")
        dtype = {"torch.qint8": torch.qint8}.get(recipe.get("dtype", "torch.qint8"))
        if dtype is None:
            raise OptimizationError(f"quantization recipe dtype={recipe.get('dtype')!r} is "
                                    "invalid: must be torch.qint8")
        # Recipes written before quantize_embeddings existed kept the tables float.
        return cls(recipe.get("quantization_type", "dynamic"), dtype,
                   bool(recipe.get("keep_filters_float", True)),
                   bool(recipe.get("quantize_embeddings", False)))


def _filter_module_names(model: nn.Module) -> set[str]:
    """Names of every module inside an :class:`ImplicitFilter` (the filter included)."""
    names: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, ImplicitFilter):
            names.update(f"{name}.{sub}" if sub else name for sub, _ in module.named_modules())
    return names


def _names_of(model: nn.Module, kind: type, skipped: set[str]) -> list[str]:
    return [name for name, module in model.named_modules()
            if type(module) is kind and name not in skipped]


def _swap(model: nn.Module, name: str, new: nn.Module) -> None:
    owner, _, attribute = name.rpartition(".")
    setattr(model.get_submodule(owner) if owner else model, attribute, new)


def apply_quantization(model: nn.Module, config: QuantizationConfig) -> nn.Module:
    """Quantize ``model`` in place (int8 modes: layers are swapped) and return it."""
    model.eval()
    skipped = _filter_module_names(model) if config.keep_filters_float else set()
    if config.quantization_type in ("float16", "bfloat16"):
        model.to(getattr(torch, config.quantization_type))
        if config.keep_filters_float:  # they compute positions and sines in float32
            for module in model.modules():
                if isinstance(module, ImplicitFilter):
                    module.float()
    elif config.quantization_type == "weight_only":
        for name in _names_of(model, nn.Linear, skipped):
            _swap(model, name, WeightOnlyInt8Linear.from_float(model.get_submodule(name)))
    else:
        names = set(_names_of(model, nn.Linear, skipped))
        with warnings.catch_warnings():  # eager-mode quantization "is moving to torchao"
            warnings.filterwarnings("ignore", module=r"torch\.ao")
            warnings.filterwarnings("ignore", message=r"(?s).*torchao")
            torch.ao.quantization.quantize_dynamic(model, names, dtype=config.dtype,
                                                   inplace=True)
    if config.int8 and config.quantize_embeddings:
        for name in _names_of(model, nn.Embedding, skipped):
            _swap(model, name, WeightOnlyInt8Embedding.from_float(model.get_submodule(name)))
    model.quantization_recipe = config.to_recipe()
    return model


class ModelQuantizer:
    """Quantize a trained model for CPU inference.

    ``ModelQuantizer(QuantizationConfig("dynamic", torch.qint8)).quantize(model)`` returns a
    quantized copy (the input model is left unchanged) that runs the same ``forward`` and
    saves with :func:`hyena_glt.optimization.save_compressed` (int8 tensors in safetensors plus
    ``quantization.json``).
    """

    def __init__(self, config: QuantizationConfig | None = None) -> None:
        self.config = config or QuantizationConfig()
        self.report: CompressionReport | None = None

    def quantize(self, model: nn.Module,
                 validation_dataloader: Iterable[dict[str, Any]] | None = None) -> nn.Module:
        """Return a quantized copy of ``model`` (in eval mode).

        With ``validation_dataloader``, the before/after :class:`CompressionReport` is
        measured, logged and kept as ``self.report``.
        """
        if getattr(model, "quantization_recipe", None) is not None:
            raise OptimizationError("model is already quantized "
                                    f"({model.quantization_recipe['quantization_type']})")
        quantized = apply_quantization(copy.deepcopy(model), self.config)
        logger.info("quantized %s (%s)", type(model).__name__, self.config.quantization_type)
        if validation_dataloader is not None:
            self.report = measure_pair("quantization", self.config, model, quantized,
                                       validation_dataloader)
        return quantized
