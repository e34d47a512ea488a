"""Post-training quantization: dynamic int8 linear layers, or fp16/bf16 casting.

Dynamic int8 (``torch.ao.quantization.quantize_dynamic``) stores ``nn.Linear`` weights as int8
and quantizes activations on the fly, which speeds up the matmul-heavy parts (projections, MLPs,
attention, heads) on CPU. The generators of the implicit long filters (:class:`ImplicitFilter`)
stay float: they are tiny, run once per length, and their sine MLP feeds every tap of every
long filter, so int8 rounding there would perturb the whole convolution. FFTs and LayerNorms
are not ``nn.Linear`` and stay float too.
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

__all__ = ["QuantizationConfig", "ModelQuantizer", "QUANTIZATION_TYPES", "apply_quantization"]

logger = logging.getLogger(__name__)

#: ``dynamic``: int8 weights of ``nn.Linear`` (activations quantized on the fly);
#: ``float16`` / ``bfloat16``: cast every floating parameter and buffer.
QUANTIZATION_TYPES = ("dynamic", "float16", "bfloat16")


@dataclass
class QuantizationConfig:
    """How to quantize.

    Args:
        quantization_type: one of :data:`QUANTIZATION_TYPES`.
        dtype: weight type of ``dynamic`` quantization (``torch.qint8`` only).
        keep_filters_float: leave the implicit-filter MLPs in float (recommended).
    """

    quantization_type: str = "dynamic"
    dtype: torch.dtype = torch.qint8
    keep_filters_float: bool = True

    def __post_init__(self) -> None:
        if self.quantization_type not in QUANTIZATION_TYPES:
            raise OptimizationError(
                f"QuantizationConfig.quantization_type={self.quantization_type!r} is invalid: "
                f"must be one of {', '.join(QUANTIZATION_TYPES)}")
        if self.quantization_type == "dynamic" and self.dtype != torch.qint8:
            raise OptimizationError(
                f"QuantizationConfig.dtype={self.dtype!r} is invalid for dynamic quantization: "
                "must be torch.qint8")

    def to_recipe(self) -> dict[str, Any]:
        """JSON-ready form, stored as ``quantization.json`` next to the weights."""
        return {"quantization_type": self.quantization_type, "dtype": str(self.dtype),
                "keep_filters_float": self.keep_filters_float}

    @classmethod
    def from_recipe(cls, recipe: dict[str, Any]) -> QuantizationConfig:
        dtype = {"torch.qint8": torch.qint8}.get(recipe.get("dtype", "torch.qint8"))
        if dtype is None:
            raise OptimizationError(f"quantization recipe dtype={recipe.get('dtype')!r} is "
                                    "invalid: must be torch.qint8")
        return cls(recipe.get("quantization_type", "dynamic"), dtype,
                   bool(recipe.get("keep_filters_float", True)))


def _linear_names(model: nn.Module, keep_filters_float: bool) -> set[str]:
    """Names of the ``nn.Linear`` modules to quantize."""
    skipped: set[str] = set()
    if keep_filters_float:
        for name, module in model.named_modules():
            if isinstance(module, ImplicitFilter):
                skipped.update(f"{name}.{sub}" if sub else name
                               for sub, _ in module.named_modules())
    return {name for name, module in model.named_modules()
            if type(module) is nn.Linear and name not in skipped}


def apply_quantization(model: nn.Module, config: QuantizationConfig) -> nn.Module:
    """Quantize ``model`` in place (``dynamic``: layers are swapped) and return it."""
    model.eval()
    if config.quantization_type in ("float16", "bfloat16"):
        model.to(getattr(torch, config.quantization_type))
        if config.keep_filters_float:  # they compute positions and sines in float32
            for module in model.modules():
                if isinstance(module, ImplicitFilter):
                    module.float()
    else:
        names = _linear_names(model, config.keep_filters_float)
        with warnings.catch_warnings():  # eager-mode quantization "is moving to torchao"
            warnings.filterwarnings("ignore", module=r"torch\.ao")
            warnings.filterwarnings("ignore", message=r"(?s).*torchao")
            torch.ao.quantization.quantize_dynamic(model, names, dtype=config.dtype,
                                                   inplace=True)
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
