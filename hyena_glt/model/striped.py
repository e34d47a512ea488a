"""The striped Hyena/attention stack of StripedHyena, Savanna and Evo 2.

Most layers are Hyena blocks (cheap, long context); a few rotary-attention blocks sit at fixed
depths (Evo 2 1B: layers 3/10/17/24 of 25) to add precise token-to-token recall.
``(batch, L, d_model) -> (batch, L, d_model)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .blocks import AttentionBlock, HyenaBlock, run_block

__all__ = ["StrippedHyenaOperator", "StripedHyenaOperator", "default_attention_layers"]


def default_attention_layers(n_layers: int) -> tuple[int, ...]:
    """One attention block in every four layers, from the second (as ``HyenaGLTConfig``)."""
    return tuple(range(1, n_layers, 4))


class StrippedHyenaOperator(nn.Module):
    """A stack of Hyena blocks with attention blocks at ``attention_layers``:
    ``x (B, L, d_model), attention_mask (B, L) -> (B, L, d_model)``.

    (The API spells it "Stripped"; :data:`StripedHyenaOperator` is the same class.)

    Args:
        d_model: width.
        l_max: length the Hyena filters are normalised to.
        order: Hyena order.
        num_heads: heads of the attention blocks.
        n_layers: blocks in the stack.
        attention_layers: 0-based indices of attention blocks (default: one in four, from 1).
        filter_order: width of the Hyena filter MLP.
        short_filter_order: kernel of the short depthwise convolution.
        dropout: dropout inside the blocks.
        bidirectional: non-causal Hyena filters and attention.
    """

    def __init__(self, d_model: int, l_max: int, order: int = 2, num_heads: int = 8,
                 n_layers: int = 4, attention_layers: Sequence[int] | None = None,
                 filter_order: int = 64, short_filter_order: int = 3, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        if attention_layers is None:
            attention_layers = default_attention_layers(n_layers)
        bad = [i for i in attention_layers if not 0 <= i < n_layers]
        if bad:
            raise ValueError(f"attention_layers {bad} outside [0, n_layers={n_layers})")
        self.attention_layers = tuple(sorted(attention_layers))
        #: Recompute each layer's activations in the backward pass (see ``run_block``).
        self.gradient_checkpointing = False
        self.layers = nn.ModuleList(
            AttentionBlock(d_model, num_heads, dropout, bidirectional)
            if i in self.attention_layers
            else HyenaBlock(d_model, l_max, order, filter_order, short_filter_order, dropout,
                            bidirectional)
            for i in range(n_layers)
        )

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                hidden_states: list[torch.Tensor] | None = None,
                attentions: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``x (B, L, d)``, ``attention_mask (B, L)`` -> ``(B, L, d)``.

        If lists are given, each layer's output is appended to ``hidden_states`` and each
        attention block's weights ``(B, H, L, L)`` to ``attentions``.
        """
        for layer in self.layers:
            x, weights = run_block(layer, x, attention_mask, attentions is not None,
                                   self.gradient_checkpointing)
            if hidden_states is not None:
                hidden_states.append(x)
            if attentions is not None and weights is not None:
                attentions.append(weights)
        return x


StripedHyenaOperator = StrippedHyenaOperator
