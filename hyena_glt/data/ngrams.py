"""BLT-style hash n-gram ids: what ``vocab_size`` means in Hyena-GLT.

Byte Latent Transformer (Pagnoni et al. 2024) enriches each byte embedding with embeddings of
the n-grams ending at that byte, hashed into a fixed table. Here ``vocab_size`` is the number
of hash buckets of that table (shared by all n). Only n-grams *ending* at position t are used,
so a causal model never sees t+1 through them.
"""

from __future__ import annotations

import torch

__all__ = ["hash_ngrams"]

# Large odd multiplier for a rolling polynomial hash; int64 arithmetic wraps deterministically.
_PRIME = 1_000_003


def hash_ngrams(input_ids: torch.Tensor, n: int, num_buckets: int) -> torch.Tensor:
    """Bucket id of the n-gram ending at each position.

    Args:
        input_ids: ``(batch, length)`` integer token ids.
        n: n-gram length (>= 2).
        num_buckets: size of the hash table (``HyenaGLTConfig.vocab_size``).

    Returns:
        ``(batch, length)`` int64 ids in ``[0, num_buckets)``. Positions ``t < n - 1`` hash the
        shorter prefix n-gram left-padded with id 0 (the pad token), so every id is defined and
        depends only on positions ``<= t``.
    """
    if n < 2 or num_buckets < 1:
        raise ValueError(f"need n >= 2 and num_buckets >= 1, got n={n}, num_buckets={num_buckets}")
    ids = input_ids.long()
    padded = torch.nn.functional.pad(ids, (n - 1, 0), value=0)
    length = ids.shape[-1]
    h = torch.zeros_like(ids)
    for k in range(n):  # loop over n (<= 8), never over positions
        h = h * _PRIME + padded[..., k : k + length] + 1
    return torch.remainder(h ^ (n * 0x9E3779B1), num_buckets)
