"""The Hyena operator (Poli et al. 2023), as in the reference code of safari/HyenaDNA.

``(batch, L, d_model) -> (batch, L, d_model)``. The input is projected to ``order + 1`` streams
``x_0 .. x_{N-1}, v``, each smoothed by a short depthwise causal convolution; then, for
``n = N-1 .. 1``, ``v <- h_n * (x_n . v) + D_n (x_n . v)`` (long implicit filter by FFT plus a
skip term), and the output is ``out_proj(x_0 . v)``. This is the paper's order-N recurrence with
the first filter the identity, as in the published code and StripedHyena (order 2:
``y = x_0 . (h * (x_1 . v))``), so order N costs N - 1 FFT convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fftconv import fft_conv
from .filters import ImplicitFilter

__all__ = ["HyenaOperator", "ShortDepthwiseConv"]


class ShortDepthwiseConv(nn.Module):
    """Short depthwise convolution ``(B, C, L) -> (B, C, L)``, causal or centred.

    The same parameters as ``nn.Conv1d(C, C, k, groups=C)`` (``weight (C, 1, k)``, ``bias (C,)``,
    so checkpoints are interchangeable), computed as ``k`` shifted multiply-adds: PyTorch's CPU
    depthwise ``Conv1d`` backward took half of a training step's time; this takes a few percent
    and exports to ONNX as plain slices and products.
    """

    def __init__(self, channels: int, kernel_size: int, centred: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size))
        self.bias = nn.Parameter(torch.empty(channels))
        bound = 1 / kernel_size**0.5  # nn.Conv1d's default initialisation (fan_in = k)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        self.kernel_size = kernel_size
        self.right = (kernel_size - 1) // 2 if centred else 0  # future positions seen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, k = x.shape[-1], self.kernel_size
        padded = F.pad(x, (k - 1 - self.right, self.right))
        out = self.bias[:, None] + self.weight[:, 0, 0, None] * padded[..., :length]
        for j in range(1, k):
            out = out + self.weight[:, 0, j, None] * padded[..., j:j + length]
        return out


class HyenaOperator(nn.Module):
    """Hyena long-convolution mixer: ``(batch, L, d_model) -> (batch, L, d_model)``.

    Args:
        d_model: model width.
        l_max: length the implicit filters are normalised to (longer inputs still work).
        order: Hyena order N (>= 2): N gates, N - 1 long convolutions.
        filter_order: width of the filter-generating MLP.
        short_filter_order: kernel size of the short depthwise convolution.
        dropout: dropout on the gated streams.
        bidirectional: two-sided long filters and a centred short filter (encoder use);
            otherwise causal: output ``t`` depends on inputs ``<= t`` only.
        filter_shift: floor added to the filters' exponential decay (HyenaDNA uses 0.05).
    """

    def __init__(self, d_model: int, l_max: int, order: int = 2, filter_order: int = 64,
                 short_filter_order: int = 3, dropout: float = 0.0,
                 bidirectional: bool = False, filter_shift: float = 0.0) -> None:
        super().__init__()
        if order < 2:
            raise ValueError(f"Hyena order must be >= 2, got {order}")
        self.d_model, self.order, self.bidirectional = d_model, order, bidirectional
        width = d_model * (order + 1)
        self.in_proj = nn.Linear(d_model, width)
        self.short_filter = ShortDepthwiseConv(width, short_filter_order, centred=bidirectional)
        n_long = order - 1
        self.filter = ImplicitFilter(d_model, n_long * (2 if bidirectional else 1), l_max,
                                     filter_order, shift=filter_shift)
        self.skip = nn.Parameter(torch.randn(n_long, d_model, 1))  # the D term of each filter
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, u: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``u (B, L, d)``, ``attention_mask (B, L)`` (1 = real) -> ``(B, L, d)``.

        Padded positions are zeroed before each convolution, so they never reach real ones.
        """
        length = u.shape[1]
        mask = None if attention_mask is None else attention_mask[:, None, :].to(u.dtype)
        x = self.in_proj(u).transpose(1, 2)  # (B, (N+1) d, L)
        if mask is not None:
            x = x * mask
        x = self.short_filter(x)
        *gates, v = x.split(self.d_model, dim=1)
        filters = self.filter(length)  # (n_long [x2], d, L)
        n_long = self.order - 1
        for i, gate in enumerate(reversed(gates[1:])):
            v = self.dropout(v * gate)
            if mask is not None:
                v = v * mask
            reverse = filters[n_long + i] if self.bidirectional else None
            v = fft_conv(v, filters[i], reverse) + v * self.skip[i]
        y = (v * gates[0]).transpose(1, 2)
        return self.out_proj(y)
