"""Next-token logits of sequences too long to run at once: windows of ``context + chunk``.

A causal model's logits at position t depend on every earlier position. Here the sequence is
cut into chunks of ``chunk`` positions, and each chunk is run together with the ``context``
positions before it; only the chunk's own logits are kept. Every position therefore sees at
least ``context`` (at most ``context + chunk``) earlier positions instead of all of them, and
patches of dynamic merging restart at each window's first position: the result equals the
full forward exactly only when ``context`` covers the whole prefix, and otherwise
approximates a model whose useful range is within ``context``.

Cost: memory of one forward at length ``context + chunk`` (not L); compute about
``(1 + context / chunk)`` times one full forward (``L / chunk`` windows of ``context + chunk``
positions, each ``O(n log n)`` per Hyena layer).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigurationError, ModelError

__all__ = ["chunked_logits"]


@torch.no_grad()
def chunked_logits(model: nn.Module, input_ids: torch.Tensor, chunk: int = 8192,
                   context: int = 8192) -> torch.Tensor:
    """``(B, L)`` ids -> ``(B, L, alphabet_size)`` next-token logits, window by window.

    Args:
        model: a causal :class:`HyenaGLTForCausalLM` (run in eval mode here).
        input_ids: unpadded sequences of equal length.
        chunk: positions whose logits each window produces.
        context: earlier positions each window also reads (see the module docstring).

    Raises:
        ModelError: a bidirectional model (later positions would be missing, not earlier).
        ConfigurationError: ``chunk < 1`` or ``context < 0``.
    """
    if model.config.bidirectional:
        raise ModelError("chunked_logits needs a causal model; this config is bidirectional, "
                         "so every position would also need the positions after its window")
    if chunk < 1 or context < 0:
        raise ConfigurationError(f"chunk={chunk}, context={context}: need chunk >= 1 and "
                                 "context >= 0")
    was_training = model.training
    model.eval()
    try:
        pieces = []
        for start in range(0, input_ids.shape[1], chunk):
            first = max(0, start - context)
            window = input_ids[:, first:start + chunk]
            pieces.append(model(window).logits[:, start - first:])
    finally:
        model.train(was_training)
    return torch.cat(pieces, dim=1)
