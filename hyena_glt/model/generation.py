"""Sampling continuations from a causal Hyena-GLT language model (what Evo 2 users do first).

Each new token reruns the model over the whole sequence so far and reads the last position's
logits: there is no recurrent state cache, so a step costs one forward at the current length
``n`` (``O(n log n)`` per Hyena layer, ``O(n^2)`` per attention layer) and generating ``N``
tokens after a prompt of ``P`` costs about ``N`` forwards of length up to ``P + N``:
``O(N (P + N) log(P + N))`` overall (quadratic in the length, cubic with attention layers).
This is exact (merging and every filter see the same prefix as in training), not fast.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.tokenizers import SPECIAL_TOKENS
from ..errors import ConfigurationError, ModelError

__all__ = ["filter_logits", "generate"]


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None
                  ) -> torch.Tensor:
    """``(B, V)`` logits with tokens outside the top ``k`` / the nucleus ``p`` set to ``-inf``.

    The nucleus is the smallest set of most likely tokens whose probability reaches ``top_p``
    (Holtzman et al. 2020); the most likely token is always kept.
    """
    if top_k is not None:
        k = min(top_k, logits.shape[-1])
        kth = logits.topk(k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        ordered, order = logits.sort(dim=-1, descending=True)
        before = ordered.softmax(-1).cumsum(-1) - ordered.softmax(-1)  # mass of better tokens
        drop = before >= top_p
        drop[..., 0] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


@torch.no_grad()
def generate(model: nn.Module, input_ids: torch.Tensor, max_new_tokens: int = 100,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None, suppress_special_tokens: bool = True) -> torch.Tensor:
    """Sample ``max_new_tokens`` tokens after each prompt: ``(B, P)`` -> ``(B, P + N)`` ids.

    Args:
        model: a causal :class:`HyenaGLTForCausalLM` (run in eval mode here).
        input_ids: prompts of equal length, without padding.
        max_new_tokens: tokens to add.
        temperature: divides the logits; 0 picks the most likely token (greedy).
        top_k: sample among the ``k`` most likely tokens only.
        top_p: sample within the nucleus of probability ``p`` only.
        seed: seeds a private generator, so the same call gives the same sequence.
        suppress_special_tokens: never sample ``[PAD]``, ``[MASK]``, ``[EOS]`` etc. (ids below
            the alphabet), so the output decodes to residues only.

    Raises:
        ModelError: a bidirectional (masked) model, or prompts that are not ``(B, P)`` ids.
        ConfigurationError: a negative ``max_new_tokens`` or ``temperature``, ``top_k < 1``
            or ``top_p`` outside ``(0, 1]``.
    """
    if model.config.bidirectional:
        raise ModelError("generate needs a causal model; this config is bidirectional (a "
                         "masked LM predicts the token at its own position, not the next)")
    if input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise ModelError(f"input_ids must be (batch, prompt_length) with a non-empty prompt, "
                         f"got shape {tuple(input_ids.shape)}")
    if max_new_tokens < 0 or temperature < 0:
        raise ConfigurationError(f"max_new_tokens={max_new_tokens}, temperature={temperature}: "
                                 "both must be >= 0")
    if (top_k is not None and top_k < 1) or (top_p is not None and not 0 < top_p <= 1):
        raise ConfigurationError(f"top_k={top_k}, top_p={top_p}: need top_k >= 1 and "
                                 "0 < top_p <= 1")
    was_training = model.training
    model.eval()
    generator = None
    if seed is not None:
        generator = torch.Generator(device=input_ids.device).manual_seed(seed)
    ids = input_ids.long()
    try:
        for _ in range(max_new_tokens):
            logits = model(ids).logits[:, -1].float()
            if suppress_special_tokens:
                logits[:, :len(SPECIAL_TOKENS)] = float("-inf")
            if temperature == 0:
                step = logits.argmax(-1, keepdim=True)
            else:
                logits = filter_logits(logits / temperature, top_k, top_p)
                step = torch.multinomial(logits.softmax(-1), 1, generator=generator)
            ids = torch.cat([ids, step], dim=1)
    finally:
        model.train(was_training)
    return ids
