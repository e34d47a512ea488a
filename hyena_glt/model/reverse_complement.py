"""Reverse complement in token-id space, for post-hoc RC averaging (Caduceus's "RC-equivariance
by averaging"): predictions on a sequence and on its reverse complement are averaged.
"""

from __future__ import annotations

import torch

__all__ = ["complement_table", "reverse_complement", "flip_positions"]

# Shared id layout: 7..21 = A C G T N R Y S W K M B D H V (RNA: U in T's slot).
_DNA = "ACGTNRYSWKMBDHV"
_PARTNER = dict(zip(_DNA, "TGCANYRSWMKVHDB", strict=True))
_FIRST_BASE_ID = 7


def complement_table(alphabet_size: int) -> torch.Tensor:
    """``(alphabet_size,)`` id -> complement id; special tokens and other ids map to themselves."""
    table = torch.arange(alphabet_size)
    for offset, base in enumerate(_DNA):
        source, target = _FIRST_BASE_ID + offset, _FIRST_BASE_ID + _DNA.index(_PARTNER[base])
        if source < alphabet_size and target < alphabet_size:
            table[source] = target
    return table


def _source_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index map reversing the real (right-aligned-padding) part of each row; an involution."""
    lengths = attention_mask.long().sum(1, keepdim=True)
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return torch.where(positions < lengths, lengths - 1 - positions, positions)


def flip_positions(values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Reverse the real positions of ``(B, L, ...)`` values, padding kept at the end."""
    index = _source_positions(attention_mask)
    index = index.view(*index.shape, *([1] * (values.dim() - 2))).expand_as(values)
    return torch.gather(values, 1, index)


def reverse_complement(input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       table: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` ids -> reverse complement of each row's real part (right padding kept)."""
    return flip_positions(table[input_ids], attention_mask)
