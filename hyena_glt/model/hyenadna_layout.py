"""The backbone layout of a checkpoint imported from HyenaDNA (Nguyen et al. 2023).

HyenaDNA is a plain stack of pre-norm Hyena blocks: token embeddings -> ``n_layer`` blocks ->
final LayerNorm, with no n-gram hashing, no merging and no global stack beside a local one. A
Hyena-GLT config marks such a model with ``extra["backbone"] = "hyenadna"``; the backbone then
builds ``n_layers`` blocks in a row with HyenaDNA's two differences from ours: the MLP's GELU
is the tanh approximation and the implicit filters' decay has a floor of 0.05 (its
``ExponentialModulation(shift=0.05)``). ``hyena-glt import-hyenadna`` writes such configs.
"""

from __future__ import annotations

from typing import Any

from ..config import HyenaGLTConfig
from ..errors import ConfigurationError

__all__ = ["BACKBONE_KEY", "HYENADNA", "HYENADNA_BLOCK", "hyenadna_block_options"]

#: ``config.extra`` key naming a backbone layout other than Hyena-GLT's own.
BACKBONE_KEY = "backbone"
HYENADNA = "hyenadna"
#: HyenaBlock options reproducing HyenaDNA's block.
HYENADNA_BLOCK: dict[str, Any] = {"filter_shift": 0.05, "gelu_approximate": "tanh"}


def hyenadna_block_options(config: HyenaGLTConfig) -> dict[str, Any] | None:
    """HyenaBlock options of a HyenaDNA-layout config, or None for Hyena-GLT's own layout.

    Raises:
        ConfigurationError: a HyenaDNA-layout config asking for parts HyenaDNA does not have
            (merging, a local decoder, n-gram embeddings, bidirectional filters).
    """
    if config.extra.get(BACKBONE_KEY) != HYENADNA:
        return None
    extras = {"use_dynamic_merging": config.use_dynamic_merging,
              "local_decoder_layers": config.local_decoder_layers,
              "vocab_size": config.vocab_size, "bidirectional": config.bidirectional}
    wrong = {name: value for name, value in extras.items() if value}
    if wrong:
        settings = ", ".join(f"{name}={value!r}" for name, value in wrong.items())
        raise ConfigurationError(
            f"{settings}: an imported HyenaDNA model has no merging, local decoder, n-gram "
            "embeddings or bidirectional filters; keep use_dynamic_merging=False, "
            "local_decoder_layers=0, vocab_size=0, bidirectional=False")
    return dict(HYENADNA_BLOCK)
