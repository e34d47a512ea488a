"""Token embeddings plus BLT hash n-gram embeddings: ``(B, L) ids -> (B, L, d_model)``.

BLT (Pagnoni et al. 2024) adds to each byte's embedding the embeddings of the n-grams ending at
that byte, hashed into ``vocab_size`` buckets (one table shared by all n; the hash mixes in n).
Only n-grams *ending* at t are used, so the embedding at t never depends on t + 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..data.ngrams import hash_ngrams

__all__ = ["HashNGramEmbedding"]


class HashNGramEmbedding(nn.Module):
    """``e_t = E_tok[x_t] + sum_n E_hash[hash(x_{t-n+1..t})]``, then dropout.

    Args:
        alphabet_size: character-level token ids.
        d_model: width.
        vocab_size: hash buckets (0 disables the n-gram part).
        ngram_sizes: n-gram lengths.
        dropout: dropout on the sum.
    """

    def __init__(self, alphabet_size: int, d_model: int, vocab_size: int = 8192,
                 ngram_sizes: Sequence[int] = (3, 4, 5, 6), dropout: float = 0.0) -> None:
        super().__init__()
        self.token = nn.Embedding(alphabet_size, d_model)
        self.ngram_sizes = tuple(ngram_sizes) if vocab_size > 0 else ()
        self.ngram = nn.Embedding(vocab_size, d_model) if self.ngram_sizes else None
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.token.weight, std=0.02)
        if self.ngram is not None:
            nn.init.normal_(self.ngram.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``input_ids (B, L)`` int64 character ids -> ``(B, L, d_model)`` float embeddings."""
        x = self.token(input_ids)
        for n in self.ngram_sizes:  # loop over n-gram sizes, never positions
            x = x + self.ngram(hash_ngrams(input_ids, n, self.ngram.num_embeddings))
        return self.dropout(x)
