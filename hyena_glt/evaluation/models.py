"""Any model directory the pipeline writes, as a predictor the benchmark and evaluation can run.

Three kinds of directory, told apart by their files:

* ``model.onnx`` (``hyena-glt export``): run by ONNX Runtime (:class:`OnnxModel`) at its fixed
  exported length ``L``: longer inputs are truncated to ``L``, shorter ones right-padded (masked).
* ``config.json`` + ``model.safetensors`` with ``quantization.json`` (``hyena-glt quantize``) or
  without (fine-tuned, pruned, distilled: ``save_pretrained``): loaded by
  :func:`hyena_glt.optimization.load_compressed`, which rebuilds the recorded architecture.

Inputs of torch models are truncated to ``config.sequence_length`` (what fine-tuning saw) unless
``max_length`` is given. Sequences are tokenized with the directory's ``tokenizer.json`` when
present (fine-tuned directories), else with the tokenizer of the data (compressed and exported
directories carry none), else :class:`DNATokenizer`.

``parameters()`` of every predictor is ``name -> tensor/array`` of what it stores, so the
benchmark counts values (:func:`count_stored_values`) and measures size (bytes of those tensors written as safetensors) the
same way for torch models, int8-quantized models (int8 weights + scale + zero point + bias, as
:func:`hyena_glt.optimization.save_compressed` stores them), ONNX graphs (their initializers)
and the baselines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from hyena_glt.data.tokenizers import CharTokenizer, DNATokenizer
from hyena_glt.errors import ModelError

__all__ = ["ONNX_NAME", "TorchSequenceClassifier", "OnnxSequenceClassifier", "load_model",
           "load_classifier", "model_tokenizer", "model_max_length", "stored_size_bytes",
           "count_stored_values"]

logger = logging.getLogger(__name__)

ONNX_NAME = "model.onnx"
_TOKENIZER_NAME = "tokenizer.json"


def model_tokenizer(directory: str | Path, fallback: CharTokenizer | None = None
                    ) -> CharTokenizer:
    """The directory's ``tokenizer.json``, else ``fallback``, else :class:`DNATokenizer`."""
    path = Path(directory) / _TOKENIZER_NAME
    if path.is_file():
        return CharTokenizer.load(path)
    return fallback if fallback is not None else DNATokenizer()


def load_model(directory: str | Path, architecture: str | None = None) -> Any:
    """A torch model in eval mode, or an :class:`OnnxModel` for an export directory.

    Args:
        directory: a model directory (module docstring).
        architecture: if given, the class name a torch model must have (e.g.
            ``"HyenaGLTForTokenClassification"``); ONNX graphs (which do not record it) are
            checked by the shape of their output at run time.

    Raises:
        ModelError: no model files in ``directory``, or another architecture.
    """
    directory = Path(directory)
    if (directory / ONNX_NAME).is_file():
        from hyena_glt.optimization import OnnxModel

        return OnnxModel(directory / ONNX_NAME)
    if not (directory / "config.json").is_file():
        raise ModelError(f"{directory}: not a model directory (neither {ONNX_NAME} nor "
                         f"config.json)")
    from hyena_glt.optimization import load_compressed

    model = load_compressed(directory)
    if architecture is not None and type(model).__name__ != architecture:
        raise ModelError(f"{directory}: holds a {type(model).__name__}, expected "
                         f"{architecture}")
    return model


def model_max_length(model: Any) -> int | None:
    """The longest input a model takes: the exported length, else ``config.sequence_length``."""
    length = getattr(model, "sequence_length", None)
    if length is None:
        length = getattr(getattr(model, "config", None), "sequence_length", None)
    return length


def stored_size_bytes(parameters: dict[str, Any]) -> int:
    """Bytes of ``parameters`` (tensors or arrays) written as one safetensors file."""
    tensors = {name: (value if isinstance(value, torch.Tensor)
                      else torch.from_numpy(np.require(value, requirements=["C", "W"])))
               .contiguous() for name, value in parameters.items()}
    return len(safetensors.torch.save(tensors))


def count_stored_values(parameters: dict[str, Any]) -> int:
    """Values in ``parameters``, leaving out int8 layers' scale and zero point (bookkeeping,
    not parameters)."""
    return int(sum(np.prod(np.shape(value), dtype=np.int64) for name, value in parameters.items()
                   if not name.endswith((".weight_scale", ".weight_zero_point"))))


def _torch_parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Stored tensors; dynamic int8 linear layers as int8 weight + scale + zero point + bias."""
    quantized = {name: module for name, module in model.named_modules()
                 if isinstance(module, torch.ao.nn.quantized.dynamic.Linear)}
    stored = {key: value.detach().cpu() for key, value in model.state_dict().items()
              if isinstance(value, torch.Tensor) and not value.is_quantized
              and not any(key.startswith(f"{name}.") for name in quantized)}
    for name, module in quantized.items():
        weight, bias = module.weight(), module.bias()
        per_tensor = weight.qscheme() == torch.per_tensor_affine
        stored[f"{name}.weight_int8"] = weight.int_repr()
        stored[f"{name}.weight_scale"] = (torch.tensor(weight.q_scale(), dtype=torch.float64)
                                          if per_tensor else weight.q_per_channel_scales())
        stored[f"{name}.weight_zero_point"] = (torch.tensor(weight.q_zero_point())
                                               if per_tensor
                                               else weight.q_per_channel_zero_points())
        if bias is not None:
            stored[f"{name}.bias"] = bias.detach()
    return stored


@dataclass
class TorchSequenceClassifier:
    """``predict_proba`` over a torch classifier whose output has ``.logits (B, C)``.

    ``max_length=None`` truncates to the model's ``config.sequence_length`` (if it has one).
    """

    model: torch.nn.Module
    tokenizer: CharTokenizer = field(default_factory=DNATokenizer)
    max_length: int | None = None
    batch_size: int = 64

    @torch.no_grad()
    def predict_proba(self, sequences: Sequence[str]) -> np.ndarray:
        """``(N, C)`` class probabilities."""
        self.model.eval()
        device = next(iter(self.model.parameters()), torch.empty(0)).device
        max_length = self.max_length or model_max_length(self.model)
        probs = []
        for start in range(0, len(sequences), self.batch_size):
            batch = self.tokenizer.batch_encode(list(sequences[start:start + self.batch_size]),
                                                max_length=max_length)
            out = self.model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            logits = out.logits if hasattr(out, "logits") else out
            probs.append(logits.float().softmax(-1).cpu().numpy())
        return np.concatenate(probs)

    def parameters(self) -> dict[str, torch.Tensor]:
        return _torch_parameters(self.model)


class OnnxSequenceClassifier:
    """``predict_proba`` over an exported classifier in ONNX Runtime (fixed length ``L``).

    Rows are truncated to ``L``; :class:`OnnxModel` right-pads shorter ones with the padding
    masked out, as the export was verified.
    """

    def __init__(self, runner: Any, tokenizer: CharTokenizer | None = None,
                 batch_size: int = 64) -> None:
        self.runner = runner
        self.tokenizer = tokenizer or DNATokenizer()
        self.batch_size = batch_size

    def predict_proba(self, sequences: Sequence[str]) -> np.ndarray:
        """``(N, C)`` class probabilities."""
        probs = []
        for start in range(0, len(sequences), self.batch_size):
            batch = self.tokenizer.batch_encode(list(sequences[start:start + self.batch_size]),
                                                max_length=self.runner.sequence_length,
                                                return_tensors="np")
            logits = self.runner(batch["input_ids"], batch["attention_mask"])
            if logits.dim() != 2:
                raise ModelError(f"{self.runner.path}: logits of shape {tuple(logits.shape)}; a "
                                 "sequence classifier gives (batch, classes)")
            probs.append(logits.float().softmax(-1).numpy())
        return np.concatenate(probs)

    def parameters(self) -> dict[str, np.ndarray]:
        """The graph's initializers (its weights)."""
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(str(self.runner.path)).graph
        return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def load_classifier(directory: str | Path, tokenizer: CharTokenizer | None = None,
                    max_length: int | None = None, batch_size: int = 64
                    ) -> TorchSequenceClassifier | OnnxSequenceClassifier:
    """A sequence classifier from any model directory (module docstring).

    ``tokenizer`` is used when the directory has no ``tokenizer.json`` (pass the data's).
    """
    model = load_model(directory, "HyenaGLTForSequenceClassification")
    tokenizer = model_tokenizer(directory, tokenizer)
    if isinstance(model, torch.nn.Module):
        return TorchSequenceClassifier(model, tokenizer, max_length, batch_size)
    return OnnxSequenceClassifier(model, tokenizer, batch_size)
