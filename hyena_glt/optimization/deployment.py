"""Deployment export: ONNX (verified in ONNX Runtime), or ``torch.export`` as the fallback where
an op has no ONNX form; each export is run and compared to PyTorch.

How the model is made exportable (torch 2.13):

* FFT long convolutions export as ONNX ``DFT`` nodes, but ONNX Runtime's DFT fails at run time
  when the length axis is dynamic; the FFT size is also computed in Python from the length, so
  ``torch.export`` specialises on it. Every format is therefore exported at a **fixed length**
  ``L`` (``DeploymentConfig.sequence_length``, default the config's ``sequence_length``) with a
  **dynamic batch** axis; the runners (:mod:`.runners`) right-pad shorter inputs to ``L`` with
  padding masked out. ``L`` is recorded in the file.
* The implicit long filters are computed inside the graph from their small MLPs (``Sin``,
  ``MatMul`` nodes), not stored tap by tap, so the file holds the weights once.
* The dynamo ONNX exporter attaches debug metadata to every node (stack trace, module path,
  FX node text: ~1.6 MB for a 1.2 MB model); it is dropped before saving, so the ``.onnx`` file
  is about the size of the float32 weights.
* Dynamic merging has a data-dependent number of patches ``K``; while exporting, the model
  takes ``K = L`` (unused patches are masked), which gives identical outputs.
* ``aten.cummax`` (patch boundaries) has no ONNX form; for ONNX it is decomposed into a
  log-depth prefix-maximum scan of ``maximum``/``where`` ops, exact for any input.
* The model's host-side input check (``int(input_ids.min())``) cannot be traced; the runners
  check the ids in NumPy instead.

* Long convolutions are exported with power-of-two FFT sizes
  (:func:`hyena_glt.model.fftconv.fft_size`): ONNX Runtime's DFT kernel is exact to float32
  rounding only for those.

Every export is run on the given example inputs and the maximum absolute difference to PyTorch
is recorded (``max_abs_diff``); above the tolerance (``DeploymentConfig.atol``, by default
derived from the FFT size, the depth and the logits' scale: :mod:`.parity`) the export fails
with :class:`OptimizationError`. Sequences whose merging boundaries sit within rounding
distance of the threshold are left out of the comparison (``ambiguous_sequences``).
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
import warnings
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import OptimizationError
from ..model.fftconv import fft_size
from .parity import boundary_ambiguous, parity_tolerance
from .report import CompressionReport, compression_report, measure_model
from .runners import (
    ALPHABET_KEY,
    LENGTH_KEY,
    METADATA_FILE,
    OPTIMIZATION_LEVELS,
    PAD_KEY,
    THRESHOLD_KEY,
    DeployedModel,
    ExportedProgramModel,
    OnnxModel,
)

__all__ = ["DeploymentConfig", "ModelOptimizer", "OnnxModel", "ExportedProgramModel", "DeployedModel", "EXPORT_FORMATS", "OPTIMIZATION_LEVELS",
           "prefix_cummax", "strip_onnx_debug_metadata"]

logger = logging.getLogger(__name__)

#: ``onnx`` (ONNX Runtime) or ``torch_export`` (a ``torch.export`` ``.pt2`` archive, the
#: fallback for ops without an ONNX form). TorchScript is not offered: ``torch.jit`` is
#: deprecated in torch 2.13, and tracing turned the sizes the model derives from the batch
#: into constants (a file traced at batch 2 failed at batch 3).
EXPORT_FORMATS = ("onnx", "torch_export")
_SUFFIXES = {"onnx": ".onnx", "torch_export": ".pt2"}


@dataclass
class DeploymentConfig:
    """How to export.

    Args:
        export_format: one of :data:`EXPORT_FORMATS`.
        optimization_level: ONNX Runtime graph optimisation, one of :data:`OPTIMIZATION_LEVELS`
            (``onnx`` only).
        sequence_length: the exported (fixed) length; default the model config's.
        output_path: where to write the file (default: ``model.onnx`` / ``model.pt2`` in a
            new temporary directory; the path is the runner's ``.path``).
        atol: largest accepted |export - PyTorch| on the verification inputs; ``None``
            (default) derives it from float32 rounding (:func:`.parity.parity_tolerance`),
            so the check holds on every CPU.
        opset: ONNX opset version.
    """

    export_format: str = "onnx"
    optimization_level: str = "all"
    sequence_length: int | None = None
    output_path: str | None = None
    atol: float | None = None
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
        need(self.atol is None or self.atol > 0, "atol", "None or > 0")
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


def strip_onnx_debug_metadata(proto: onnx.ModelProto) -> int:
    """Drop the per-node debug metadata (stack traces, module paths) and doc strings that the
    dynamo exporter writes; return the bytes saved. The graph itself is untouched."""
    before = proto.ByteSize()
    graphs = [proto.graph] + [function for function in proto.functions]
    for graph in graphs:
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
    return before - proto.ByteSize()


class ModelOptimizer:
    """Export a model for deployment and verify the export.

    ``ModelOptimizer(DeploymentConfig("onnx", "all")).optimize(model)`` returns an
    :class:`OnnxModel` whose outputs matched PyTorch within ``atol``;
    ``DeploymentConfig("torch_export")`` returns an :class:`ExportedProgramModel`.
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
                 validation_dataloader: Iterable[dict[str, Any]] | None = None
                 ) -> DeployedModel:
        """Export ``model`` (a Hyena-GLT task model, float or weight-only int8) and verify it.

        Args:
            model: model whose ``forward(input_ids, attention_mask)`` returns ``.logits``.
            example_inputs: ``(input_ids, attention_mask)`` of shape ``(B, L)`` used for the
                verification (padded to the exported length); default two random sequences.
            validation_dataloader: if given, PyTorch vs exported timings and accuracy are
                measured, logged and kept as ``self.report`` (size: the exported file).

        Raises:
            OptimizationError: the model is dynamically quantized or cast to half precision,
                the export fails, or the export disagrees with PyTorch by more than ``atol``.
        """
        c = self.config
        recipe = getattr(model, "quantization_recipe", None)
        if recipe is not None and recipe["quantization_type"] != "weight_only":
            raise OptimizationError(f"export the float model, not a {recipe['quantization_type']}"
                                    " one: dynamic int8 layers have no ONNX export "
                                    "here (ONNX Runtime can quantize the exported graph)")
        config = getattr(model, "config", None)
        length = c.sequence_length or getattr(config, "sequence_length", None)
        if length is None:
            raise OptimizationError("DeploymentConfig.sequence_length=None needs a model with "
                                    ".config.sequence_length")
        exported = copy.deepcopy(model).eval().float()
        backbone = getattr(exported, "backbone", exported)
        backbone._check_inputs = lambda *args: None  # checked by the runner instead (see top)
        ids, mask = (self._example_inputs(model, length) if example_inputs is None
                     else example_inputs)
        pad_token_id = getattr(config, "pad_token_id", 0)
        if ids.shape[1] < length:
            pad = length - ids.shape[1]
            ids = torch.nn.functional.pad(ids, (0, pad), value=pad_token_id)
            mask = torch.nn.functional.pad(mask, (0, pad))
        path = (Path(c.output_path) if c.output_path
                else _temporary_path(_SUFFIXES[c.export_format]))
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {LENGTH_KEY: str(length), PAD_KEY: str(pad_token_id)}
        alphabet_size = getattr(config, "alphabet_size", None)
        if alphabet_size is not None:
            metadata[ALPHABET_KEY] = str(alphabet_size)
        threshold = (getattr(config, "extra", None) or {}).get("decision_threshold")
        if threshold is not None:  # predict calls per-base outputs at it, as for the float model
            metadata[THRESHOLD_KEY] = str(float(threshold))
        runner = self._export(_LogitsOnly(exported), (ids, mask), path, metadata)
        self._verify(runner, model, ids, mask, length)
        if validation_dataloader is not None:
            after = measure_model(model, validation_dataloader, runner=runner)
            after.size_bytes = path.stat().st_size
            method = "onnx_export" if c.export_format == "onnx" else c.export_format
            self.report = compression_report(method, c, measure_model(
                model, validation_dataloader), after, max_abs_diff=runner.max_abs_diff,
                export_path=str(path), sequence_length=length, tolerance=runner.tolerance,
                ambiguous_sequences=runner.ambiguous_sequences)
        return runner

    def _verify(self, runner: DeployedModel, model: nn.Module, ids: torch.Tensor,
                mask: torch.Tensor, length: int) -> None:
        """Compare the export to PyTorch on the sequences whose patching is unambiguous and
        record ``max_abs_diff``, ``tolerance`` and ``ambiguous_sequences`` on the runner."""
        c = self.config
        with torch.no_grad():
            expected = model.eval()(ids, mask).logits.float()
        compared = ~boundary_ambiguous(model, ids, mask)
        if not compared.any():
            raise OptimizationError(
                f"cannot verify the {c.export_format} export: every example sequence has a "
                "merging boundary within float32 rounding of the threshold, where any two "
                "CPUs may patch differently; pass other example inputs")
        runner.max_abs_diff = float((runner(ids, mask) - expected).abs()[compared].max())
        runner.tolerance = (c.atol if c.atol is not None
                            else parity_tolerance(model, expected, fft_size(length)))
        runner.ambiguous_sequences = int((~compared).sum())
        logger.info("exported %s to %s (%s, length %d): max |export - PyTorch| = %.3g "
                    "(tolerance %.3g; %d of %d sequences left out: ambiguous patching)",
                    type(model).__name__, runner.path, c.export_format, length,
                    runner.max_abs_diff, runner.tolerance, runner.ambiguous_sequences,
                    len(compared))
        if not runner.max_abs_diff <= runner.tolerance:
            raise OptimizationError(f"{runner.path}: the {c.export_format} export differs from "
                                    f"PyTorch by {runner.max_abs_diff:.3g} > tolerance "
                                    f"{runner.tolerance:.3g}")

    def _export(self, module: _LogitsOnly, inputs: tuple[torch.Tensor, torch.Tensor],
                path: Path, metadata: dict[str, str]) -> DeployedModel:
        """Write ``path`` (under a temporary name, renamed when complete) and load it."""
        c = self.config
        batch = torch.export.Dim("batch", min=1, max=65536)
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # .pt2 must end in .pt2
        extra = {METADATA_FILE: json.dumps(metadata)}
        try:
            with warnings.catch_warnings():  # exporter notices
                warnings.simplefilter("ignore")
                with _ExportableCummax() if c.export_format == "onnx" else nullcontext():
                    program = torch.export.export(module, inputs,
                                                  dynamic_shapes=({0: batch}, {0: batch}))
                if c.export_format == "torch_export":
                    torch.export.save(program, str(tmp), extra_files=extra)
                else:
                    self._save_onnx(program, inputs, tmp, metadata)
            tmp.replace(path)
        except Exception as err:  # the exporters raise many types; name the cause
            tmp.unlink(missing_ok=True)
            raise OptimizationError(f"{c.export_format} export of {type(module.model).__name__}"
                                    f" failed: {type(err).__name__}: "
                                    f"{str(err).splitlines()[0] if str(err) else ''}") from err
        if c.export_format == "onnx":
            return OnnxModel(path, c.optimization_level)
        return ExportedProgramModel(path)

    def _save_onnx(self, program: torch.export.ExportedProgram,
                   inputs: tuple[torch.Tensor, torch.Tensor], tmp: Path,
                   metadata: dict[str, str]) -> None:
        onnx_program = torch.onnx.export(program, inputs, dynamo=True,
                                         opset_version=self.config.opset,
                                         input_names=["input_ids", "attention_mask"],
                                         output_names=["logits"], verbose=False,
                                         optimize=False)  # ONNX Runtime optimizes
        proto = onnx_program.model_proto
        saved = strip_onnx_debug_metadata(proto)
        logger.debug("dropped %d bytes of per-node debug metadata", saved)
        onnx.helper.set_model_props(proto, metadata)
        onnx.save(proto, str(tmp))


def _temporary_path(suffix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix="hyena_glt_export_")) / f"model{suffix}"
