"""Task heads, composed on top of the backbone (gReLU style: model = body + head).

``SequenceClassificationHead``: ``(B, L, d) -> (B, num_classes)``; ``RegressionHead``:
``(B, L, d) -> (B, output_dim)``, both by pooling over real positions only (no [CLS] token, so padding
never changes a sequence's result): a masked mean, or attention pooling, whose learned weights
can single out where a signal sits (a protein's N-terminal targeting peptide); ``TokenClassificationHead``: ``(B, L, d) ->
(B, L, num_classes)``. The variant head is in :mod:`.variant_head`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import POOLINGS

__all__ = ["masked_mean", "AttentionPooling", "SequenceClassificationHead", "TokenClassificationHead",
           "RegressionHead"]


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over real positions: ``(B, L, d), (B, L) -> (B, d)``."""
    if attention_mask is None:
        return hidden.mean(1)
    weight = attention_mask.to(hidden.dtype)[..., None]
    return (hidden * weight).sum(1) / weight.sum(1).clamp(min=1)


class AttentionPooling(nn.Module):
    """``(B, L, d), mask (B, L) -> (B, d)``: a softmax over real positions of a learned score
    (additive attention with one query, as DeepLoc pools for protein localization)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, 1))

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        scores = self.score(hidden).squeeze(-1).float()
        if attention_mask is not None:
            scores = scores.masked_fill(attention_mask == 0, torch.finfo(scores.dtype).min)
        weights = scores.softmax(-1).to(hidden.dtype)
        return (weights[..., None] * hidden).sum(1)


class _PooledHead(nn.Module):
    """Pooling (masked mean or attention) -> dropout -> Linear -> GELU -> dropout -> Linear."""

    def __init__(self, d_model: int, out_features: int, dropout: float,
                 pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r}: must be one of {', '.join(POOLINGS)}")
        self.attention_pool = AttentionPooling(d_model) if pooling == "attention" else None
        self.dense = nn.Linear(d_model, d_model)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(d_model, out_features)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        pooled = (masked_mean(hidden, attention_mask) if self.attention_pool is None
                  else self.attention_pool(hidden, attention_mask))
        pooled = self.dropout(pooled)
        return self.out_proj(self.dropout(self.activation(self.dense(pooled))))


class SequenceClassificationHead(_PooledHead):
    """``(B, L, d_model), mask (B, L) -> logits (B, num_classes)``."""

    def __init__(self, d_model: int, num_classes: int, dropout: float = 0.1,
                 pooling: str = "mean") -> None:
        super().__init__(d_model, num_classes, dropout, pooling)


class RegressionHead(_PooledHead):
    """``(B, L, d_model), mask (B, L) -> predictions (B, output_dim)``."""

    def __init__(self, d_model: int, output_dim: int = 1, dropout: float = 0.1,
                 pooling: str = "mean") -> None:
        super().__init__(d_model, output_dim, dropout, pooling)


class TokenClassificationHead(nn.Module):
    """``(B, L, d_model) -> logits (B, L, num_classes)`` (the mask is accepted and unused)."""

    def __init__(self, d_model: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(d_model, num_classes)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        return self.out_proj(self.dropout(hidden))
