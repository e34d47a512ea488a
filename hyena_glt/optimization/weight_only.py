"""Weight-only int8 layers: int8 weights with one float scale per output row, dequantized on use.

They cut the stored and resident size of ``nn.Linear`` and ``nn.Embedding`` weights ~4x while
the arithmetic stays float, so accuracy is that of the rounded weights alone (no activation
quantization) and they run on any device and dtype. Symmetric per-row scales
(``scale = max|w_row| / 127``) keep one outlier from flattening every other row. Their state
is plain tensors (``weight_int8`` int8, ``weight_scale`` float32, ``bias``), so safetensors
stores it directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["quantize_rows", "WeightOnlyInt8Linear", "WeightOnlyInt8Embedding"]


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, cols)`` float -> ``(int8 (rows, cols), scale (rows,) float32)``, symmetric."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    int8 = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return int8, scale


class WeightOnlyInt8Linear(nn.Module):
    """``nn.Linear`` with int8 weights: ``(..., in) -> (..., out)``, computed in ``x``'s dtype."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features,
                                                        dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    @classmethod
    def from_float(cls, linear: nn.Linear) -> WeightOnlyInt8Linear:
        module = cls(linear.in_features, linear.out_features, linear.bias is not None)
        module.weight_int8, module.weight_scale = quantize_rows(linear.weight)
        if linear.bias is not None:
            module.bias = nn.Parameter(linear.bias.detach().float().clone(),
                                       requires_grad=False)
        return module

    def dequantized_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return (self.weight_int8.to(dtype) * self.weight_scale.to(dtype)[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.dequantized_weight(x.dtype), bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, weight=int8 per-row")


class WeightOnlyInt8Embedding(nn.Module):
    """``nn.Embedding`` with int8 rows: ``(...) ids -> (..., dim)`` float32; only the looked-up
    rows are dequantized."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.register_buffer("weight_int8", torch.zeros(num_embeddings, embedding_dim,
                                                        dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(num_embeddings))

    @classmethod
    def from_float(cls, embedding: nn.Embedding) -> WeightOnlyInt8Embedding:
        module = cls(embedding.num_embeddings, embedding.embedding_dim)
        module.weight_int8, module.weight_scale = quantize_rows(embedding.weight)
        return module

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(ids, self.weight_int8).float()
        return rows * F.embedding(ids, self.weight_scale[:, None])

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, weight=int8 per-row"
