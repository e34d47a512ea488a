"""The variant-effect head: a ref/alt pair of backbone states -> a variant's class or score."""

from __future__ import annotations

import torch
from torch import nn

from .heads import masked_mean

__all__ = ["VariantEffectHead"]


class VariantEffectHead(nn.Module):
    """Scores a variant from the backbone states of its reference and alternate windows.

    A pooled alt window alone hides a single-base change among hundreds of identical
    positions; the effect lives in the difference. Features (each ``(B, d)``): alt - ref at
    the variant, alt - ref mean-pooled over the window (for a causal backbone only positions
    from the variant on differ), and the reference state at the variant (the site's context,
    e.g. a splice site or codon position). ``ref (B, L, d), alt (B, L, d), variant_offset
    (B,), masks (B, L) -> (B, out_features)``.
    """

    def __init__(self, d_model: int, out_features: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dense = nn.Linear(3 * d_model, d_model)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(d_model, out_features)

    def forward(self, ref: torch.Tensor, alt: torch.Tensor, variant_offset: torch.Tensor,
                ref_mask: torch.Tensor | None = None, alt_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        rows = torch.arange(len(ref), device=ref.device)
        site = variant_offset.long().clamp(0, ref.shape[1] - 1)
        ref_site = ref[rows, site]
        features = torch.cat([alt[rows, site] - ref_site,
                              masked_mean(alt, alt_mask) - masked_mean(ref, ref_mask),
                              ref_site], dim=-1)
        return self.out_proj(self.dropout(self.activation(self.dense(self.dropout(features)))))
