"""Deployment export: ONNX, verified in ONNX Runtime against PyTorch.

How the model is made exportable (``torch.onnx.export(dynamo=True)``, torch 2.13):

* FFT long convolutions export as ONNX ``DFT`` nodes, but ONNX Runtime's DFT fails at run time
  when the length axis is dynamic. The graph is therefore exported at a **fixed length** ``L``
  (``DeploymentConfig.sequence_length``, default the config's ``sequence_length``) with a
  **dynamic batch** axis; :class:`OnnxModel` right-pads shorter inputs to ``L`` with padding
  masked out (the models mask padding before every convolution and in pooling, so logits are
  unchanged). ``L`` is recorded in the ONNX metadata (``hyena_glt.sequence_length``).
* Dynamic merging has a data-dependent number of patches ``K``; while exporting, the model
  takes ``K = L`` (unused patches are masked), which gives identical outputs.
* ``aten.cummax`` (patch boundaries) has no ONNX form; it is decomposed into a log-depth
  prefix-maximum scan of ``maximum``/``where`` ops, exact for any input.
* The model's host-side input check (``int(input_ids.min())``) cannot be traced;
  :class:`OnnxModel` checks the ids in NumPy instead.

Every export is run in ONNX Runtime on the given example inputs and the maximum absolute
difference to PyTorch is recorded (``OnnxModel.max_abs_diff``); above ``DeploymentConfig.atol``
the export fails with :class:`OptimizationError`.
"""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import OptimizationError
from .report import CompressionReport, compression_report, measure_model

__all__ = ["DeploymentConfig", "ModelOptimizer", "OnnxModel", "EXPORT_FORMATS",
           "OPTIMIZATION_LEVELS", "prefix_cummax"]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx",)
#: ONNX Runtime graph optimisation levels.
OPTIMIZATION_LEVELS = {
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_LENGTH_KEY = "hyena_glt.sequence_length"
_PAD_KEY = "hyena_glt.pad_token_id"


@dataclass
class DeploymentConfig:
    """How to export.

    Args:
        export_format: one of :data:`EXPORT_FORMATS`.
        optimization_level: ONNX Runtime graph optimisation, one of :data:`OPTIMIZATION_LEVELS`.
        sequence_length: the exported (fixed) length; default the model config's.
        output_path: where to write the ``.onnx`` file (default: a new temporary directory;
            the path is ``OnnxModel.path``).
        atol: largest accepted |ONNX Runtime - PyTorch| on the verification inputs.
        opset: ONNX opset version.
    """

    export_format: str = "onnx"
    optimization_level: str = "all"
    sequence_length: int | None = None
    output_path: str | None = None
    atol: float = 1e-4
    opset: int = 18

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise OptimizationError(f"DeploymentConfig.{name}={getattr(self, name)!r} is "
                                        f"invalid: must be {allowed}")

        need(self.export_format in EXPORT_FORMATS, "export_format",
             f"one of {', '.join(EXPORT_FORMATS)}")
        need(self.optimization_level in OPTIMIZATION_LEVELS, "optimization_level",
             f"one of {', '.join(OPTIMIZATION_LEVELS)}")
        need(self.sequence_length is None or (isinstance(self.sequence_length, int)
                                              and self.sequence_length >= 2),
             "sequence_length", "None or an integer >= 2")
        need(self.atol > 0, "atol", "> 0")
        need(isinstance(self.opset, int) and self.opset >= 18, "opset", "an integer >= 18")


def prefix_cummax(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.cummax`` as a Hillis-Steele scan (log2(L) steps of ``where``): exportable.

    Ties keep the later index, as ``torch.cummax`` does.
    """
    x = x.movedim(dim, -1)
    length = x.shape[-1]
    values = x
    indices = torch.arange(length, device=x.device).expand_as(x)
    step = 1
    while step < length:
        earlier_values = torch.cat([values[..., :step], values[..., :-step]], -1)
        earlier_indices = torch.cat([indices[..., :step], indices[..., :-step]], -1)
        take = earlier_values > values
        values = torch.where(take, earlier_values, values)
        indices = torch.where(take, earlier_indices, indices)
        step *= 2
    return values.movedim(-1, dim), indices.movedim(-1, dim)


class _ExportableCummax(TorchFunctionMode):
    """While tracing, route ``torch.cummax`` / ``Tensor.cummax`` to :func:`prefix_cummax`."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.cummax, torch.Tensor.cummax):
            return torch.return_types.cummax(prefix_cummax(*args, **kwargs))
        return func(*args, **kwargs)


class _LogitsOnly(nn.Module):
    """``(input_ids (B, L), attention_mask (B, L)) -> logits``: the graph that is exported."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask).logits


class OnnxModel:
    """An exported model run by ONNX Runtime: ``model(input_ids, attention_mask) -> logits``.

    Inputs shorter than the exported length are right-padded (and masked); longer ones raise.

    Attributes:
        path: the ``.onnx`` file; sequence_length: the exported length; max_abs_diff: largest
        |ONNX Runtime - PyTorch| seen at verification.
    """

    def __init__(self, path: str | Path, optimization_level: str = "all",
                 alphabet_size: int | None = None) -> None:
        self.path = Path(path)
        metadata = {p.key: p.value for p in onnx.load(str(self.path),
                                                      load_external_data=False).metadata_props}
        if _LENGTH_KEY not in metadata:
            raise OptimizationError(f"{self.path}: no {_LENGTH_KEY} in the ONNX metadata (not "
                                    "exported by ModelOptimizer)")
        self.sequence_length = int(metadata[_LENGTH_KEY])
        self.pad_token_id = int(metadata.get(_PAD_KEY, 0))
        self.alphabet_size = alphabet_size
        options = ort.SessionOptions()
        options.graph_optimization_level = OPTIMIZATION_LEVELS[optimization_level]
        options.log_severity_level = 3  # constant-folding notices are not problems
        self.session = ort.InferenceSession(str(self.path), options,
                                            providers=["CPUExecutionProvider"])
        self.max_abs_diff: float | None = None

    def __call__(self, input_ids: Any, attention_mask: Any = None) -> torch.Tensor:
        ids = np.asarray(input_ids, dtype=np.int64)
        mask = (np.ones_like(ids) if attention_mask is None
                else np.asarray(attention_mask, dtype=np.int64))
        batch, length = ids.shape
        if length > self.sequence_length:
            raise OptimizationError(f"input length {length} exceeds the exported length "
                                    f"{self.sequence_length} of {self.path}")
        if self.alphabet_size is not None and ids.size and (ids.min() < 0
                                                            or ids.max() >= self.alphabet_size):
            raise OptimizationError(f"token ids must lie in [0, {self.alphabet_size}); got "
                                    f"{ids.min()}..{ids.max()}")
        pad = self.sequence_length - length
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=self.pad_token_id)
        mask = np.pad(mask, ((0, 0), (0, pad)))
        (logits,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        if logits.ndim == 3:  # per-position outputs: drop the padding again
            logits = logits[:, :length]
        return torch.from_numpy(logits)


class ModelOptimizer:
    """Export a model for deployment and verify the export.

    ``ModelOptimizer(DeploymentConfig("onnx", "all")).optimize(model)`` returns an
    :class:`OnnxModel` whose outputs matched PyTorch within ``atol``.
    """

    def __init__(self, config: DeploymentConfig | None = None) -> None:
        self.config = config or DeploymentConfig()
        self.report: CompressionReport | None = None

    def _example_inputs(self, model: nn.Module, length: int) -> tuple[torch.Tensor, ...]:
        """Two real-looking DNA sequences (ids 7..10 = A, C, G, T), the second padded."""
        del model
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(7, 11, (2, length), generator=generator)
        mask = torch.ones_like(ids)
        mask[1, length * 3 // 4:] = 0
        return ids, mask

    def optimize(self, model: nn.Module, example_inputs: tuple[torch.Tensor, torch.Tensor]
                 | None = None,
                 validation_dataloader: Iterable[dict[str, Any]] | None = None) -> OnnxModel:
        """Export ``model`` (a Hyena-GLT task model, float weights) and verify it.

        Args:
            model: model whose ``forward(input_ids, attention_mask)`` returns ``.logits``.
            example_inputs: ``(input_ids, attention_mask)`` of shape ``(B, L)`` used for the
                verification (padded to the exported length); default two random sequences.
            validation_dataloader: if given, PyTorch vs ONNX Runtime timings and accuracy are
                measured, logged and kept as ``self.report`` (size: the ``.onnx`` file).

        Raises:
            OptimizationError: the model is quantized, the export fails, or ONNX Runtime
                disagrees with PyTorch by more than ``atol``.
        """
        c = self.config
        if getattr(model, "quantization_recipe", None) is not None:
            raise OptimizationError("export the float model: dynamic int8 layers have no ONNX "
                                    "export here (ONNX Runtime can quantize the exported graph)")
        config = getattr(model, "config", None)
        length = c.sequence_length or getattr(config, "sequence_length", None)
        if length is None:
            raise OptimizationError("DeploymentConfig.sequence_length=None needs a model with "
                                    ".config.sequence_length")
        exported = copy.deepcopy(model).eval().float()
        backbone = getattr(exported, "backbone", exported)
        backbone._check_inputs = lambda *args: None  # checked by OnnxModel instead (see top)
        ids, mask = (self._example_inputs(model, length) if example_inputs is None
                     else example_inputs)
        if ids.shape[1] < length:
            pad = length - ids.shape[1]
            ids = torch.nn.functional.pad(ids, (0, pad), value=getattr(config, "pad_token_id", 0))
            mask = torch.nn.functional.pad(mask, (0, pad))
        path = Path(c.output_path) if c.output_path else _temporary_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._export(_LogitsOnly(exported), (ids, mask), path, length,
                     getattr(config, "pad_token_id", 0))
        runner = OnnxModel(path, c.optimization_level, getattr(config, "alphabet_size", None))
        with torch.no_grad():
            expected = model.eval()(ids, mask).logits.float()
        runner.max_abs_diff = float((runner(ids, mask) - expected).abs().max())
        logger.info("exported %s to %s (length %d): max |ORT - PyTorch| = %.3g",
                    type(model).__name__, path, length, runner.max_abs_diff)
        if not runner.max_abs_diff <= c.atol:
            raise OptimizationError(f"{path}: ONNX Runtime differs from PyTorch by "
                                    f"{runner.max_abs_diff:.3g} > atol={c.atol}")
        if validation_dataloader is not None:
            after = measure_model(model, validation_dataloader, runner=runner)
            after.size_bytes = path.stat().st_size
            self.report = compression_report("onnx_export", c, measure_model(
                model, validation_dataloader), after, max_abs_diff=runner.max_abs_diff,
                onnx_path=str(path), sequence_length=length)
        return runner

    def _export(self, module: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor], path: Path,
                length: int, pad_token_id: int) -> None:
        batch = torch.export.Dim("batch", min=1, max=65536)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with _ExportableCummax():
                    program = torch.export.export(module, inputs,
                                                  dynamic_shapes=({0: batch}, {0: batch}))
                onnx_program = torch.onnx.export(program, inputs, dynamo=True,
                                                 opset_version=self.config.opset,
                                                 input_names=["input_ids", "attention_mask"],
                                                 output_names=["logits"], verbose=False,
                                                 optimize=False)  # ONNX Runtime optimizes
            proto = onnx_program.model_proto
            onnx.helper.set_model_props(proto, {_LENGTH_KEY: str(length),
                                                _PAD_KEY: str(pad_token_id)})
            onnx.save(proto, str(tmp))
            tmp.replace(path)
        except Exception as err:  # the exporter raises many types; name the cause
            tmp.unlink(missing_ok=True)
            raise OptimizationError(f"ONNX export of {type(module.model).__name__} failed: "
                                    f"{type(err).__name__}: {str(err).splitlines()[0]}") from err


def _temporary_path() -> Path:
    return Path(tempfile.mkdtemp(prefix="hyena_glt_onnx_")) / "model.onnx"
