"""Output dataclasses (HuggingFace style: ``loss`` first, only set when labels are given).

Shapes: ``last_hidden_state (B, L, d_model)`` (always per position, un-merged);
``hidden_states``: embeddings, then each local-encoder, global (patch level ``(B, K, d)`` when
merging) and local-decoder layer; ``attentions``: ``(B, H, K, K)`` per attention block;
``patch_boundaries (B, L)`` bool, True where a patch starts; ``num_patches (B,)``;
``aux_loss``: the entropy model's next-token loss (already added into ``loss``).

Like transformers' ``ModelOutput``, an output is also indexable: ``out["logits"]`` by name and
``out[0]`` by position among the fields that are set (``None`` fields are skipped, so without
labels ``out[0]`` is the logits), ``out.to_tuple()`` gives those fields in order, and iterating
gives their names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import torch

__all__ = ["ModelOutput", "HyenaGLTOutput", "SequenceClassifierOutput", "TokenClassifierOutput",
           "RegressionOutput", "CausalLMOutput"]


class ModelOutput:
    """Mixin for the output dataclasses: access by name or by position, as in transformers."""

    def to_tuple(self) -> tuple[Any, ...]:
        """The fields that are set (not ``None``), in declaration order."""
        return tuple(value for _, value in self.items())

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` of the fields that are set."""
        for field in fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if value is not None:
                yield field.name, value

    def keys(self) -> list[str]:
        return [name for name, _ in self.items()]

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(f"{key!r} is not set in this {type(self).__name__}; set fields: "
                               f"{', '.join(self.keys())}")
            return getattr(self, key)
        return self.to_tuple()[key]

    def __iter__(self) -> Iterator[str]:
        """The names of the set fields, as iterating a transformers ``ModelOutput`` does."""
        return iter(self.keys())


@dataclass
class HyenaGLTOutput(ModelOutput):
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
class _TaskOutput(ModelOutput):
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
