"""A model ready to predict: loaded from a directory or registered name, on a device, with the
task it does, its tokenizer and its longest input.

Any directory the pipeline writes is accepted (fine-tuned, compressed or an ONNX export; see
:func:`hyena_glt.evaluation.models.load_model`). The task is read from the architecture the
directory records; an ONNX graph records none, so it is read from the graph's output: ``(B, L,
C)`` is per base, ``(B, 1)`` a regression, ``(B, C)`` a classifier. :meth:`Predictor.logits`
runs ``ids (B, L), mask (B, L)`` in inference mode, under bf16 autocast on a GPU, and returns
float32 logits on the CPU; reverse-complement averaging happens inside the model when its
config says ``rc_average`` (exports carry it in their graph).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.tokenizers import CharTokenizer
from ..errors import ConfigurationError, DataError, ModelError
from ..evaluation.metrics import DEFAULT_THRESHOLD, THRESHOLD_KEY, stored_threshold
from ..evaluation.models import load_model, model_max_length, model_tokenizer
from ..training.registry import resolve_model

__all__ = ["Predictor", "load_predictor", "TASKS", "THRESHOLD_KEY", "DEFAULT_THRESHOLD"]

logger = logging.getLogger(__name__)

#: What a model predicts, by its architecture (the ``task`` of a :class:`Predictor`).
TASKS = {
    "HyenaGLTForSequenceClassification": "sequence_classification",
    "HyenaGLTForRegression": "regression",
    "HyenaGLTForTokenClassification": "token_classification",
    "HyenaGLTForVariantEffect": "variant_effect",
    "HyenaGLTForCausalLM": "language_model",
    "HyenaGLTModel": "backbone",
}
_DNA_LETTERS = frozenset("ACGTUNacgtun")


@dataclass
class Predictor:
    """A loaded model and what it needs to run.

    Attributes:
        model: a torch module in eval mode, or an :class:`~hyena_glt.optimization.OnnxModel`.
        task: one of the values of :data:`TASKS`.
        tokenizer: the model's tokenizer (``tokenizer.json``, else DNA).
        max_length: the longest input (``config.sequence_length`` or the exported length).
        device: where a torch model runs (ONNX graphs run on the CPU).
        source: the directory the model came from.
    """

    model: Any
    task: str
    tokenizer: CharTokenizer
    max_length: int
    device: torch.device
    source: Path

    @property
    def is_torch(self) -> bool:
        return isinstance(self.model, torch.nn.Module)

    @property
    def config(self) -> Any:
        return getattr(self.model, "config", None)

    @property
    def class_names(self) -> list[str]:
        """Names of the output classes (``id2label``, else ``"0"``, ``"1"``, ...)."""
        id2label = getattr(self.config, "id2label", None) or {}
        return [id2label.get(i, str(i)) for i in range(self.num_outputs)]

    @property
    def num_outputs(self) -> int:
        if self.is_torch:
            config = self.config
            return config.output_dim if self.task == "regression" else config.num_classes
        return int(self.model.session.get_outputs()[0].shape[-1])

    @property
    def threshold(self) -> tuple[float, str]:
        """The per-base decision threshold and where it came from (for the log and outputs)."""
        stored = (stored_threshold(self.config) if self.is_torch
                  else getattr(self.model, "decision_threshold", None))
        if stored is not None:
            return stored, f"stored with the model ({THRESHOLD_KEY})"
        return DEFAULT_THRESHOLD, "default: the model stores no threshold"

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on a GPU (the FFT convolutions keep float32 inside), else nothing."""
        if self.is_torch and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def logits(self, input_ids: np.ndarray | torch.Tensor, attention_mask: np.ndarray | torch.Tensor
               ) -> torch.Tensor:
        """Float32 logits on the CPU: ``(B, C)`` per sequence or ``(B, L, C)`` per base."""
        if not self.is_torch:
            return self.model(np.asarray(input_ids), np.asarray(attention_mask)).float()
        ids = torch.as_tensor(input_ids, dtype=torch.long).to(self.device)
        mask = torch.as_tensor(attention_mask, dtype=torch.long).to(self.device)
        with self.autocast():
            return self.model(ids, mask).logits.float().cpu()

    def check_nucleotides(self, sequence: str, path: str | Path, record: str) -> None:
        """Refuse DNA given to a protein model (its alphabet would read ACGT as amino acids).

        Raises:
            DataError: naming the file, the record and the fix.
        """
        if self.tokenizer.type_name == "protein" and sequence and set(sequence[:10_000]) <= \
                _DNA_LETTERS:
            raise DataError(f"looks like DNA (only A/C/G/T/N) but {self.source} is a protein "
                            "model; give protein sequences or a DNA model", path=path,
                            record=record)

    def require(self, tasks: tuple[str, ...], what: str, path: str | Path) -> None:
        """Raise :class:`DataError` unless this model does one of ``tasks`` (``what`` names the
        input and the kind of model it needs)."""
        if self.task not in tasks:
            raise DataError(f"{what}, but {self.source} is a {self.task} model; choose a model "
                            f"of type {' or '.join(tasks)}", path=path)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigurationError(f"--device {name!r}: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(f"--device {name}: no CUDA device is visible; use --device cpu")
    return device


def _onnx_task(model: Any) -> str:
    shape = model.session.get_outputs()[0].shape
    if len(shape) == 3:
        return "token_classification"
    return "regression" if shape[-1] == 1 else "sequence_classification"


def load_predictor(model: str | Path, device: str = "auto") -> Predictor:
    """A :class:`Predictor` for a model directory (fine-tuned, compressed, ONNX) or a registered
    name such as ``hyena-glt-base``.

    Raises:
        ModelError: not a model directory or name, an unknown architecture, or a model that
            cannot run on ``device`` (int8 layers and ONNX graphs run on the CPU).
        ConfigurationError: an unknown or unavailable ``device``.
    """
    path = Path(model)
    directory = path if (path / "model.onnx").is_file() else resolve_model(model)
    loaded = load_model(directory)
    target = _device(device)
    if isinstance(loaded, torch.nn.Module):
        name = type(loaded).__name__
        if name not in TASKS:
            raise ModelError(f"{directory}: a {name} cannot predict; expected one of "
                             f"{', '.join(TASKS)}")
        task = TASKS[name]
        quantized = any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear)
                        for m in loaded.modules())
        if quantized and target.type != "cpu":
            raise ModelError(f"{directory}: int8-quantized layers run on the CPU only; use "
                             "--device cpu")
        loaded = loaded.to(target).eval()
    else:
        task = _onnx_task(loaded)
        if target.type != "cpu":
            logger.warning("%s: ONNX graphs run on the CPU (ONNX Runtime); --device %s ignored",
                           directory, device)
            target = torch.device("cpu")
    predictor = Predictor(loaded, task, model_tokenizer(directory), int(model_max_length(loaded)),
                          target, directory)
    rc = bool(getattr(predictor.config, "rc_average", False))
    logger.info("model %s: %s, %s tokenizer, inputs up to %d tokens, on %s%s", directory, task,
                predictor.tokenizer.type_name, predictor.max_length, target,
                ", reverse-complement averaged" if rc else "")
    return predictor
