"""Output dataclasses (HuggingFace style: ``loss`` first, only set when labels are given).

Shapes: ``last_hidden_state (B, L, d_model)`` (always per position, un-merged);
``hidden_states``: embeddings, then each local-encoder, global (patch level ``(B, K, d)`` when
merging) and local-decoder layer; ``attentions``: ``(B, H, K, K)`` per attention block;
``patch_boundaries (B, L)`` bool, True where a patch starts; ``num_patches (B,)``;
``aux_loss``: the entropy model's next-token loss (already added into ``loss``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["HyenaGLTOutput", "SequenceClassifierOutput", "TokenClassifierOutput",
           "RegressionOutput", "CausalLMOutput"]


@dataclass
class HyenaGLTOutput:
    """What the backbone returns: ``last_hidden_state (B, L, d_model)`` float, always per position.

    Optional (requested or merging on): ``hidden_states`` and ``attentions`` tuples (shapes in
    the module docstring), ``patch_boundaries (B, L)`` bool, ``num_patches (B,)`` int64,
    ``aux_loss`` a scalar ``()``.
    """

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    patch_boundaries: torch.Tensor | None = None
    num_patches: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None


@dataclass
class _TaskOutput:
    """Fields shared by the task outputs: ``loss ()`` (only with labels), then ``logits``."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    patch_boundaries: torch.Tensor | None = None
    num_patches: torch.Tensor | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    aux_loss: torch.Tensor | None = None


@dataclass
class SequenceClassifierOutput(_TaskOutput):
    """``logits (B, num_classes)``."""


@dataclass
class TokenClassifierOutput(_TaskOutput):
    """``logits (B, L, num_classes)``."""


@dataclass
class RegressionOutput(_TaskOutput):
    """``logits (B, output_dim)`` (the predictions)."""


@dataclass
class CausalLMOutput(_TaskOutput):
    """``logits (B, L, alphabet_size)``: position t scores token t + 1 (causal) or token t
    (masked LM, bidirectional configs)."""
