"""Task heads, composed on top of the backbone (gReLU style: model = body + head).

``SequenceClassificationHead``: ``(B, L, d) -> (B, num_classes)``; ``RegressionHead``:
``(B, L, d) -> (B, output_dim)``, both by mean pooling over real positions (no [CLS] token, so
padding never changes a sequence's result); ``TokenClassificationHead``: ``(B, L, d) ->
(B, L, num_classes)``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["masked_mean", "SequenceClassificationHead", "TokenClassificationHead",
           "RegressionHead"]


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over real positions: ``(B, L, d), (B, L) -> (B, d)``."""
    if attention_mask is None:
        return hidden.mean(1)
    weight = attention_mask.to(hidden.dtype)[..., None]
    return (hidden * weight).sum(1) / weight.sum(1).clamp(min=1)


class _PooledHead(nn.Module):
    """Masked mean pooling -> dropout -> Linear -> GELU -> dropout -> Linear."""

    def __init__(self, d_model: int, out_features: int, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(d_model, d_model)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(d_model, out_features)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        pooled = self.dropout(masked_mean(hidden, attention_mask))
        return self.out_proj(self.dropout(self.activation(self.dense(pooled))))


class SequenceClassificationHead(_PooledHead):
    """``(B, L, d_model), mask (B, L) -> logits (B, num_classes)``."""

    def __init__(self, d_model: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__(d_model, num_classes, dropout)


class RegressionHead(_PooledHead):
    """``(B, L, d_model), mask (B, L) -> predictions (B, output_dim)``."""

    def __init__(self, d_model: int, output_dim: int = 1, dropout: float = 0.1) -> None:
        super().__init__(d_model, output_dim, dropout)


class TokenClassificationHead(nn.Module):
    """``(B, L, d_model) -> logits (B, L, num_classes)`` (the mask is accepted and unused)."""

    def __init__(self, d_model: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(d_model, num_classes)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        return self.out_proj(self.dropout(hidden))
