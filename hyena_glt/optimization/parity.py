"""How closely an export must reproduce PyTorch, and on which inputs that can be asked.

Two effects make bit-exact agreement impossible without the export being wrong, and both
depend on the CPU (instruction set, libm, thread count) of whoever runs it:

* **Float32 rounding.** Every backend rounds differently (ONNX Runtime's MLAS and DFT kernels,
  PyTorch's MKL/pocketFFT). The rounding error of a float32 FFT of size ``n`` grows like
  ``eps * log2(n)`` relative to the values, each layer adds its own, and it is relative to the
  size of the outputs. So the check accepts::

      |export - PyTorch| <= SAFETY * eps_float32 * log2(n_fft) * n_layers * max(1, max|logits|)

  Measured (``d_model`` 64, 4 layers, ``L`` 64 to 2000): ONNX Runtime and PyTorch's own float32
  both differ from a float64 reference by 2e-8 to 2e-7, about 100 times inside the bound.
* **Patch boundaries of dynamic merging** are threshold tests (``score > threshold``), so they
  are discontinuous: a position whose score lies within rounding distance of the threshold may
  close a patch on one CPU and not on another, which moves the logits by far more than
  rounding. On an AMD EPYC the export check of a test model failed by 5.3e-4, exactly the logit
  change of moving its threshold by one ulp. Such sequences are ambiguous on *any* two float
  implementations, so they are left out of the comparison (and counted); the others must agree.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SAFETY", "BOUNDARY_ULPS", "parity_tolerance", "boundary_ambiguous"]

#: Safety factor of the rounding bound (measured errors are ~100x inside it).
SAFETY = 16
#: A patch boundary is ambiguous when its score is this many float32 ulps (of the threshold's
#: magnitude) or fewer from the threshold: a score is a few operations of float32 rounding away
#: from the hidden states, which themselves differ between backends by ~1e-7 relative.
BOUNDARY_ULPS = 64
_EPS = torch.finfo(torch.float32).eps


def parity_tolerance(model: nn.Module, logits: torch.Tensor, fft_size: int) -> float:
    """The largest |export - PyTorch| that float32 rounding explains (see the module docstring).

    Args:
        model: the exported model (its ``config.n_layers`` counts the layers; 1 without one).
        logits: PyTorch's logits on the verification inputs (their scale sets the bound's).
        fft_size: the FFT size of the exported long convolutions.
    """
    n_layers = getattr(getattr(model, "config", None), "n_layers", 1)
    scale = max(1.0, float(logits.abs().max())) if logits.numel() else 1.0
    return SAFETY * _EPS * math.log2(max(fft_size, 2)) * max(n_layers, 1) * scale


def boundary_ambiguous(model: nn.Module, input_ids: torch.Tensor,
                       attention_mask: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: sequences with a real position whose merging score lies within
    :data:`BOUNDARY_ULPS` ulps of its layer's threshold. All False for models without merging."""
    from ..model.merging import DynamicMergingLayer

    layers = [m for m in model.modules() if isinstance(m, DynamicMergingLayer)]
    ambiguous = torch.zeros(input_ids.shape[0], dtype=torch.bool)
    if not layers:
        return ambiguous
    margins: list[torch.Tensor] = []

    def record(layer: DynamicMergingLayer, args: tuple) -> None:
        hidden, mask, ids = (tuple(args) + (None, None))[:3]
        scores, _ = layer.boundary_scores(hidden, ids, mask)
        real = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask.bool()
        threshold = layer.threshold.float()
        delta = BOUNDARY_ULPS * _EPS * max(1.0, float(threshold.abs()))
        margins.append(((scores.float() - threshold).abs() <= delta) & real)

    handles = [layer.register_forward_pre_hook(record) for layer in layers]
    try:
        with torch.no_grad():
            model.eval()(input_ids, attention_mask)
    finally:
        for handle in handles:
            handle.remove()
    for near in margins:
        if near.shape[0] == ambiguous.shape[0]:
            ambiguous |= near.any(dim=1).cpu()
    return ambiguous
