"""Save and load compressed models without pickle.

A model directory holds ``config.json`` and ``model.safetensors`` as written by
``save_pretrained``. A dynamically quantized model stores, for each int8 linear layer ``name``,
the exact quantized weight as ``name.weight_int8`` (int8), ``name.weight_scale`` and
``name.weight_zero_point`` (per-tensor), and ``name.bias`` (float); every other tensor is stored
as is. Weight-only int8 layers and int8 embedding tables (:mod:`.weight_only`) are plain
tensors already: ``name.weight_int8`` (int8) and ``name.weight_scale`` (float32, one per row).
``quantization.json`` holds the recipe: loading rebuilds the float model from the config,
re-applies the recipe (same layers swapped) and copies the stored int8 weights in, so the loaded
model is bit-identical to the saved one.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from .. import model as model_module
from ..config import HyenaGLTConfig
from ..errors import ModelError, OptimizationError
from ..io import atomic_directory
from ..model.pretrained import WEIGHTS_NAME, HyenaGLTPreTrainedModel, _read_weights
from .quantization import QuantizationConfig, apply_quantization

__all__ = ["RECIPE_NAME", "save_compressed", "load_compressed"]

RECIPE_NAME = "quantization.json"
_INT8_SUFFIXES = ("weight_int8", "weight_scale", "weight_zero_point", "bias")


def _quantized_linears(model: nn.Module) -> dict[str, nn.Module]:
    return {name: module for name, module in model.named_modules()
            if isinstance(module, torch.ao.nn.quantized.dynamic.Linear)}


def _float_state(model: nn.Module, quantized: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Plain tensors of the state dict, leaving out quantized layers' packed parameters."""
    return {key: value for key, value in model.state_dict().items()
            if isinstance(value, torch.Tensor) and not value.is_quantized
            and not any(key.startswith(f"{name}.") for name in quantized)}


def save_compressed(model: HyenaGLTPreTrainedModel, directory: str | Path) -> Path:
    """Write a (possibly quantized) model directory; see the module docstring for the layout."""
    recipe = getattr(model, "quantization_recipe", None)
    if recipe is None:
        return model.save_pretrained(directory)
    quantized = _quantized_linears(model)
    state = {key: value.detach().contiguous() for key, value in
             _float_state(model, quantized).items()}
    for name, module in quantized.items():
        weight, bias = module.weight(), module.bias()
        if weight.qscheme() != torch.per_tensor_affine:
            raise OptimizationError(f"{name}: cannot save quantization scheme "
                                    f"{weight.qscheme()} (per-tensor only)")
        state[f"{name}.weight_int8"] = weight.int_repr().contiguous()
        state[f"{name}.weight_scale"] = torch.tensor(weight.q_scale(), dtype=torch.float64)
        state[f"{name}.weight_zero_point"] = torch.tensor(weight.q_zero_point())
        state[f"{name}.bias"] = (bias if bias is not None
                                 else torch.zeros(weight.shape[0])).detach().contiguous()
    architecture = type(model).__name__
    config = model.config.replace(extra={**model.config.extra, "architecture": architecture})
    with atomic_directory(directory) as tmp:
        config.save_pretrained(tmp)
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"architecture": architecture})
        (tmp / RECIPE_NAME).write_text(json.dumps(recipe, indent=2) + "\n")
    return Path(directory)


def _architecture(directory: Path) -> tuple[type[HyenaGLTPreTrainedModel], HyenaGLTConfig]:
    config = HyenaGLTConfig.from_pretrained(directory)
    name = config.extra.get("architecture")
    cls = getattr(model_module, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, HyenaGLTPreTrainedModel)):
        raise ModelError(f"{directory}: config.json names no known architecture ({name!r})")
    return cls, config


def load_compressed(directory: str | Path) -> HyenaGLTPreTrainedModel:
    """Load a directory written by :func:`save_compressed` (quantized or not), in eval mode."""
    directory = Path(directory)
    cls, config = _architecture(directory)
    recipe_path = directory / RECIPE_NAME
    if not recipe_path.is_file():
        return cls.from_pretrained(directory).eval()
    try:
        recipe = json.loads(recipe_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise OptimizationError(f"{recipe_path}: not valid JSON ({err}); re-run the "
                                "quantize command") from None
    quant_config = QuantizationConfig.from_recipe(recipe)
    if not quant_config.int8:  # a cast of the float model
        return apply_quantization(cls.from_pretrained(directory), quant_config)
    model = apply_quantization(cls(config), quant_config)
    state = _read_weights(directory)  # a missing or truncated file is a named ModelError
    for name, module in _quantized_linears(model).items():
        try:
            int8, scale, zero_point, bias = (state.pop(f"{name}.{s}") for s in _INT8_SUFFIXES)
        except KeyError as err:
            raise ModelError(f"{directory / WEIGHTS_NAME}: missing {err} of quantized layer "
                             f"{name}") from None
        with warnings.catch_warnings():  # quantized-tensor creation "is deprecated" (torchao)
            warnings.simplefilter("ignore")
            weight = torch._make_per_tensor_quantized_tensor(int8, float(scale),
                                                             int(zero_point))
            module.set_weight_bias(weight, bias)
    expected = set(_float_state(model, _quantized_linears(model)))
    if set(state) != expected:
        raise ModelError(f"{directory / WEIGHTS_NAME}: missing keys "
                         f"{sorted(expected - set(state))}, unexpected keys "
                         f"{sorted(set(state) - expected)}")
    with torch.no_grad():  # tensor by tensor: quantized layers reject partial state dicts
        for key, value in state.items():
            owner, _, attribute = key.rpartition(".")
            target = getattr(model.get_submodule(owner), attribute)
            if target.shape != value.shape:
                raise ModelError(f"{directory / WEIGHTS_NAME}: {key} has shape "
                                 f"{tuple(value.shape)}, model {tuple(target.shape)}")
            target.copy_(value)
    return model.eval()
