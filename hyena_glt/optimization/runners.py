"""Exported models, loaded and run: ``model(input_ids, attention_mask) -> logits``.

Every export has a fixed length ``L`` (see :mod:`.deployment`) and a dynamic batch axis; the
runners right-pad shorter inputs to ``L`` with the padding masked out (the models mask padding
before every convolution and in pooling, so logits are unchanged), refuse longer ones, and check
the token ids on the host (the model's own check cannot be traced). ``L`` and the pad id travel
inside the file: ONNX metadata properties, or a ``hyena_glt.json`` extra file in ``torch.export``
archives.

* :class:`OnnxModel`: ONNX Runtime (CPU).
* :class:`ExportedProgramModel`: ``torch.export.load`` of a ``.pt2`` archive (graph as JSON,
  plain tensors as raw bytes; the archive writer pickles only tensor subclasses, which these
  models do not have).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from ..errors import OptimizationError

__all__ = ["DeployedModel", "OnnxModel", "ExportedProgramModel",
           "OPTIMIZATION_LEVELS", "METADATA_FILE", "LENGTH_KEY", "PAD_KEY", "ALPHABET_KEY",
           "THRESHOLD_KEY"]

#: ONNX Runtime graph optimisation levels.
OPTIMIZATION_LEVELS = {
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
LENGTH_KEY = "hyena_glt.sequence_length"
PAD_KEY = "hyena_glt.pad_token_id"
ALPHABET_KEY = "hyena_glt.alphabet_size"
#: The decision threshold of a binary/per-base model (``config.extra``), chosen at fine-tuning.
THRESHOLD_KEY = "hyena_glt.decision_threshold"
#: Extra file of ``torch.export`` archives holding the keys above.
METADATA_FILE = "hyena_glt.json"


class DeployedModel:
    """Common padding and input checks of the exported-model runners.

    Attributes:
        path: the exported file; sequence_length: the exported length; max_abs_diff: largest
        |export - PyTorch| seen at verification, tolerance: the bound it was held to,
        ambiguous_sequences: verification sequences left out (all set by
        :class:`ModelOptimizer`); decision_threshold: the model's stored decision threshold,
        carried in the file, or None.
    """

    def __init__(self, path: str | Path, metadata: dict[str, str],
                 alphabet_size: int | None = None) -> None:
        self.path = Path(path)
        if LENGTH_KEY not in metadata:
            raise OptimizationError(f"{self.path}: no {LENGTH_KEY} in its metadata (not "
                                    "exported by ModelOptimizer)")
        self.sequence_length = int(metadata[LENGTH_KEY])
        self.pad_token_id = int(metadata.get(PAD_KEY, 0))
        if alphabet_size is None and ALPHABET_KEY in metadata:
            alphabet_size = int(metadata[ALPHABET_KEY])
        self.alphabet_size = alphabet_size
        self.decision_threshold = (float(metadata[THRESHOLD_KEY]) if THRESHOLD_KEY in metadata
                                   else None)
        self.max_abs_diff: float | None = None
        self.tolerance: float | None = None
        self.ambiguous_sequences = 0

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, input_ids: Any, attention_mask: Any = None) -> torch.Tensor:
        """``input_ids (B, L)`` int64 with L <= ``sequence_length``, ``attention_mask (B, L)``
        (default all ones) -> float logits ``(B, C)``, or ``(B, L, C)`` for per-position
        models (the padding to the exported length is removed again)."""
        ids = np.asarray(input_ids, dtype=np.int64)
        mask = (np.ones_like(ids) if attention_mask is None
                else np.asarray(attention_mask, dtype=np.int64))
        length = ids.shape[1]
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
        logits = self._run(ids, mask)
        if logits.ndim == 3:  # per-position outputs: drop the padding again
            logits = logits[:, :length]
        return torch.as_tensor(logits)


class OnnxModel(DeployedModel):
    """An exported ``.onnx`` model run by ONNX Runtime on the CPU."""

    def __init__(self, path: str | Path, optimization_level: str = "all",
                 alphabet_size: int | None = None) -> None:
        proto = onnx.load(str(path), load_external_data=False)
        super().__init__(path, {p.key: p.value for p in proto.metadata_props}, alphabet_size)
        options = ort.SessionOptions()
        options.graph_optimization_level = OPTIMIZATION_LEVELS[optimization_level]
        options.log_severity_level = 3  # constant-folding notices are not problems
        options.intra_op_num_threads = torch.get_num_threads()  # as many as PyTorch uses
        self.session = ort.InferenceSession(str(self.path), options,
                                            providers=["CPUExecutionProvider"])

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return logits


def _metadata(path: Path, extra: dict[str, str]) -> dict[str, str]:
    try:
        return json.loads(extra[METADATA_FILE])
    except (KeyError, json.JSONDecodeError):
        raise OptimizationError(f"{path}: no readable {METADATA_FILE} inside (not exported by "
                                "ModelOptimizer)") from None


class ExportedProgramModel(DeployedModel):
    """A ``torch.export`` ``.pt2`` archive, run with ``torch.export.load(...).module()``."""

    def __init__(self, path: str | Path, alphabet_size: int | None = None) -> None:
        extra = {METADATA_FILE: ""}
        self.module = torch.export.load(str(path), extra_files=extra).module()
        super().__init__(path, _metadata(Path(path), extra), alphabet_size)

    @torch.no_grad()
    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
