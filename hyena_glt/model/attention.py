"""Multi-head self-attention with rotary positions (Su et al. 2021), the attention blocks of the
striped stack (StripedHyena / Evo 2 use rotary attention between their Hyena layers).

Exact attention through ``torch.nn.functional.scaled_dot_product_attention``, so PyTorch picks a
fused kernel (flash / memory-efficient on CUDA, flash on CPU) whenever no weights are requested.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RotaryEmbedding", "MultiHeadAttention", "attention_bias_mask"]


class RotaryEmbedding(nn.Module):
    """Rotate pairs of query/key features by position-dependent angles (``(B, H, L, hd)``)."""

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)
        angles = torch.outer(positions, self.inv_freq)  # (L, hd/2)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        first, second = x[..., 0::2], x[..., 1::2]
        rotated = torch.stack([first * cos - second * sin, first * sin + second * cos], dim=-1)
        return rotated.flatten(-2)


def attention_bias_mask(attention_mask: torch.Tensor | None, length: int, causal: bool,
                        device: torch.device) -> torch.Tensor | None:
    """Boolean ``(B or 1, 1, L, L)`` mask, True = may attend; ``None`` when nothing is masked.

    The diagonal is always allowed so that a padded query row is never empty (no NaN); padded
    rows are discarded downstream anyway.
    """
    if attention_mask is None and not causal:
        return None
    allowed = torch.ones(length, length, dtype=torch.bool, device=device)
    if causal:
        allowed = allowed.tril()
    allowed = allowed[None, None]
    if attention_mask is not None:
        eye = torch.eye(length, dtype=torch.bool, device=device)
        allowed = (allowed & attention_mask.bool()[:, None, None, :]) | eye
    return allowed


class MultiHeadAttention(nn.Module):
    """``(batch, L, d_model) -> (batch, L, d_model)``; causal unless ``bidirectional``.

    Args:
        d_model: width (divisible by ``num_heads``, head dimension even).
        num_heads: attention heads.
        dropout: attention-probability dropout (training only).
        bidirectional: full attention instead of causal.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.causal, self.dropout = not bidirectional, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.rotary = RotaryEmbedding(self.head_dim)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_attentions: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(output (B, L, d), weights (B, H, L, L) or None)``."""
        batch, length, width = x.shape
        q, k, v = (self.qkv(x).view(batch, length, 3, self.num_heads, self.head_dim)
                   .permute(2, 0, 3, 1, 4))  # 3 x (B, H, L, hd)
        q, k = self.rotary(q), self.rotary(k)
        dropout = self.dropout if self.training else 0.0
        weights = None
        if output_attentions:  # explicit softmax: slower, but exposes the weights
            scores = (q @ k.transpose(-1, -2)) * self.head_dim ** -0.5
            allowed = attention_bias_mask(attention_mask, length, self.causal, x.device)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            weights = scores.softmax(-1)
            out = F.dropout(weights, dropout, self.training) @ v
        elif attention_mask is None:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=self.causal)
        else:
            allowed = attention_bias_mask(attention_mask, length, self.causal, x.device)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(batch, length, width)
        return self.out_proj(out), weights
