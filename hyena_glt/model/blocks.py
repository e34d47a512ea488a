"""Pre-norm residual blocks: ``x + mixer(norm(x))`` then ``x + mlp(norm(x))``.

``(batch, L, d_model) -> (batch, L, d_model)``. The mixer is a Hyena operator or rotary
attention; both take the same ``attention_mask`` (1 = real position) so the striped stack can
treat them alike.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import MultiHeadAttention
from .hyena import HyenaOperator

__all__ = ["MLP", "HyenaBlock", "AttentionBlock", "run_block"]


def run_block(block: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None,
              output_attentions: bool = False, checkpointing: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Call a block; with ``checkpointing`` (and gradients on), its activations are not kept but
    recomputed in the backward pass: memory per block drops from its intermediates (the
    ``(order + 1) d`` projections, FFT buffers, the 4x MLP) to its input, for one more forward.
    Dropout draws the same mask again (the RNG state is restored), so gradients are unchanged.
    """
    if checkpointing and torch.is_grad_enabled():
        return checkpoint(block, x, attention_mask, output_attentions, use_reentrant=False)
    return block(x, attention_mask, output_attentions)


class MLP(nn.Module):
    """Position-wise ``Linear -> GELU -> Linear`` with a 4x expansion: ``(..., d) -> (..., d)``.

    ``gelu_approximate="tanh"`` is the GELU of HyenaDNA's (and GPT-2's) MLP, for imported
    checkpoints; the exact GELU otherwise.
    """

    def __init__(self, d_model: int, expansion: int = 4, dropout: float = 0.0,
                 gelu_approximate: str = "none") -> None:
        super().__init__()
        self.fc_in = nn.Linear(d_model, expansion * d_model)
        self.activation = nn.GELU(approximate=gelu_approximate)
        self.fc_out = nn.Linear(expansion * d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc_out(self.activation(self.fc_in(x))))


class HyenaBlock(nn.Module):
    """Pre-norm residual Hyena block (arguments as :class:`HyenaOperator` and :class:`MLP`)."""

    def __init__(self, d_model: int, l_max: int, order: int = 2, filter_order: int = 64,
                 short_filter_order: int = 3, dropout: float = 0.0,
                 bidirectional: bool = False, filter_shift: float = 0.0,
                 gelu_approximate: str = "none") -> None:
        super().__init__()
        self.norm_mixer = nn.LayerNorm(d_model)
        self.mixer = HyenaOperator(d_model, l_max, order, filter_order, short_filter_order,
                                   dropout, bidirectional, filter_shift)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, dropout=dropout, gelu_approximate=gelu_approximate)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_attentions: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(x (B, L, d), None)`` (Hyena has no attention weights)."""
        x = x + self.dropout(self.mixer(self.norm_mixer(x), attention_mask))
        return x + self.mlp(self.norm_mlp(x)), None


class AttentionBlock(nn.Module):
    """Pre-norm residual rotary attention block (arguments as :class:`MultiHeadAttention`)."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.norm_mixer = nn.LayerNorm(d_model)
        self.mixer = MultiHeadAttention(d_model, num_heads, dropout, bidirectional)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, dropout=dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_attentions: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(x (B, L, d), weights (B, H, L, L) or None)``."""
        mixed, weights = self.mixer(self.norm_mixer(x), attention_mask, output_attentions)
        x = x + self.dropout(mixed)
        return x + self.mlp(self.norm_mlp(x)), weights
