"""A direct path from k-mer counts to the head's logits (``config.kmer_path``).

The baseline every model must clear is a logistic regression on k-mer counts. With this path
the model contains it as a special case, and a few hundred optimizer steps find it (a linear
model on a normalised bag) even where the backbone has not yet learned anything. The counts
are exact (one index per k-mer), not the BLT hash embeddings: on the chloroplast CDS task a
path through the hashed embeddings overfitted (held-out AUROC 0.87 against 0.92 with exact
codon counts, the same training), since every bucket is a free d_model-wide vector.

* :class:`SequenceKmerPath` (sequence heads): counts of every k-mer, k = 1..6 for nucleotides
  (5,460 columns) or 1..2 for proteins, normalised, and the log length (classes may differ in
  length; a CNN sees length through its padding).
* :class:`FrameKmerPath` (per-base heads): around each base, the codon usage of each of the
  three reading frames through it within ``+-half`` bases, for a short and a long ``half``
  (stop codons included: a frame open over the long window is an ORF, the short one places
  its ends). One small network scores each frame and the best frame wins (a max over frames:
  coding is "some frame is open", whichever it is).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..data.tokenizers import SPECIAL_TOKENS

__all__ = ["kmer_index", "kmer_counts", "SequenceKmerPath", "FrameKmerPath",
           "phase_window_means"]

_FIRST_LETTER_ID = len(SPECIAL_TOKENS)  # every tokenizer puts its alphabet after these ids


def kmer_index(input_ids: torch.Tensor, k: int, letters: int,
               attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, L)`` index in ``[0, letters ** k)`` of the k-mer ending at each position, or
    ``letters ** k`` where there is none (too close to the start, padding, or a letter
    outside the first ``letters`` of the alphabet such as N)."""
    codes = input_ids.long() - _FIRST_LETTER_ID
    valid = (codes >= 0) & (codes < letters)
    if attention_mask is not None:
        valid &= attention_mask.bool()
    codes = codes.clamp(0, letters - 1)
    index = torch.zeros_like(codes)
    whole = torch.ones_like(valid)
    length = codes.shape[1]
    for offset in range(k):  # the letter `offset` places before the end, weighted letters**offset
        shifted = nn.functional.pad(codes[:, :length - offset], (offset, 0))
        shifted_valid = nn.functional.pad(valid[:, :length - offset], (offset, 0), value=False)
        index += shifted * letters ** offset
        whole &= shifted_valid
    return torch.where(whole, index, torch.full_like(index, letters ** k))


def kmer_counts(input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                sizes: Sequence[int], letters: int) -> torch.Tensor:
    """``(B, sum(letters ** k))`` counts of every k-mer of each sequence, k in ``sizes``."""
    blocks = []
    for k in sizes:
        index = kmer_index(input_ids, k, letters, attention_mask)
        counts = torch.zeros(index.shape[0], letters ** k + 1, device=index.device)
        counts.scatter_add_(1, index, torch.ones_like(index, dtype=counts.dtype))
        blocks.append(counts[:, :-1])
    return torch.cat(blocks, 1)


def _frequencies(input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 sizes: Sequence[int], letters: int) -> torch.Tensor:
    """k-mer counts with each k's block normalised to sum 1 (0 where there is none)."""
    counts = kmer_counts(input_ids, attention_mask, sizes, letters)
    blocks = torch.split(counts, [letters ** k for k in sizes], 1)
    return torch.cat([block / block.sum(1, keepdim=True).clamp(min=1) for block in blocks], 1)


class SequenceKmerPath(nn.Module):
    """``ids (B, L), mask (B, L) -> (B, out_features)`` logits to add to a pooled head's: a
    linear read-out of the k-mer frequencies (standardised across columns) and the log length.

    ``terminal > 0`` adds the letter frequencies of the first and of the last ``terminal``
    real tokens: where a signal sits matters for proteins (an N-terminal signal or transit
    peptide, a C-terminal retention or peroxisome signal), which whole-sequence counts lose.
    """

    def __init__(self, out_features: int, letters: int = 4,
                 sizes: Sequence[int] = (1, 2, 3, 4, 5, 6), terminal: int = 0) -> None:
        super().__init__()
        self.letters, self.sizes, self.terminal = letters, tuple(sizes), terminal
        width = sum(letters ** k for k in self.sizes) + (2 * letters if terminal else 0)
        self.norm = nn.LayerNorm(width)
        self.out_proj = nn.Linear(width + 1, out_features)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.long()
        length = mask.sum(1)
        blocks = [_frequencies(input_ids, mask, self.sizes, self.letters)]
        if self.terminal:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None]
            first = mask * (positions < self.terminal)
            last = mask * (positions >= length[:, None] - self.terminal)
            blocks += [_frequencies(input_ids, part, (1,), self.letters) for part in (first, last)]
        # The norm's dtype is the model's: int8 quantization replaces only the Linear layers.
        counts = torch.cat(blocks, 1).to(self.norm.weight.dtype)
        log_length = length.clamp(min=1).to(counts.dtype).log()[:, None]
        return self.out_proj(torch.cat([self.norm(counts), log_length], -1))


def phase_window_means(values: torch.Tensor, attention_mask: torch.Tensor | None,
                       half: int) -> torch.Tensor:
    """``(B, L, C) -> (B, L, 3, C)``: at each base t and relative phase p, the mean of the
    real positions s in ``[t - half, t + half]`` with ``s = t + p (mod 3)``.

    Window sums come from cumulative sums per residue class (O(L), no L x window tensor).
    """
    batch, length, _ = values.shape
    device = values.device
    mask = (torch.ones(batch, length, device=device) if attention_mask is None
            else attention_mask.to(values.dtype))
    positions = torch.arange(length, device=device)
    residue = torch.stack([positions % 3 == r for r in range(3)]).to(values.dtype)  # (3, L)
    weights = residue[None] * mask[:, None]                                  # (B, 3, L)
    stacked = torch.cat([weights[..., None] * values[:, None], weights[..., None]], -1)
    cumulative = nn.functional.pad(stacked.cumsum(2), (0, 0, 1, 0))          # (B, 3, L + 1, .)
    upper = (positions + half + 1).clamp(max=length)
    lower = (positions - half).clamp(min=0)
    sums = cumulative[:, :, upper] - cumulative[:, :, lower]                 # (B, 3, L, C + 1)
    # relative phase p at t reads residue class (t + p) mod 3
    phase = (positions[None, :] + torch.arange(3, device=device)[:, None]) % 3  # (3, L)
    index = phase[None, :, :, None].expand(batch, 3, length, sums.shape[-1])
    relative = torch.gather(sums, 1, index)                                  # (B, 3, L, C + 1)
    means = relative[..., :-1] / relative[..., -1:].clamp(min=1)
    return means.permute(0, 2, 1, 3)


class FrameKmerPath(nn.Module):
    """``ids (B, L), mask (B, L) -> (B, L, out_features)`` logits to add to a per-base head's:
    per-frame codon usage around each base within each of ``halves``, scored by one shared
    network, the best frame kept."""

    def __init__(self, out_features: int, halves: Sequence[int] = (60, 200), hidden: int = 64
                 ) -> None:
        super().__init__()
        self.halves = tuple(halves)
        width = (4 ** 3 + 1) * len(self.halves)
        self.norm = nn.LayerNorm(width)
        self.frame = nn.Sequential(nn.Linear(width, hidden), nn.GELU())
        self.out_proj = nn.Linear(hidden, out_features)

    def codon_frames(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
                     ) -> torch.Tensor:
        """``(B, L, 3, 65 * len(halves))`` codon usage of the three frames around each base,
        one block of 65 per window (the 65th column: positions without a whole codon)."""
        codons = nn.functional.one_hot(kmer_index(input_ids, 3, 4), 4 ** 3 + 1).float()
        return torch.cat([phase_window_means(codons, attention_mask, half)
                          for half in self.halves], -1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        frames = self.frame(self.norm(self.codon_frames(input_ids, attention_mask)
                                      .to(self.norm.weight.dtype)))  # as SequenceKmerPath
        return self.out_proj(frames.amax(2))
