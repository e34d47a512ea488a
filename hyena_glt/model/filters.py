"""Implicit long filters of the Hyena operator (Poli et al. 2023; HyenaDNA, Nguyen et al. 2023).

A filter as long as the sequence is not stored tap by tap: it is *generated* from the position
``t`` by a small network, ``h(t) = decay(t) * MLP(PositionalEmbedding(t))``, so the parameter
count does not grow with the length and the filter can be evaluated at any length (including
beyond ``l_max``, e.g. a 1 Mb chromosome window). The sine activations let the MLP express high
frequencies; the exponential decay gives each channel its own effective receptive field.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Sin", "PositionalEmbedding", "ExponentialModulation", "ImplicitFilter"]


class Sin(nn.Module):
    """``sin(w * x)`` with a learnable per-feature frequency ``w`` (HyenaDNA's ``Sin``).

    Element-wise: ``(..., dim) -> (..., dim)``.
    """

    def __init__(self, dim: int, w: float = 1.0) -> None:
        super().__init__()
        self.freq = nn.Parameter(w * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class PositionalEmbedding(nn.Module):
    """``length -> (L, emb_dim)`` features of positions ``0..L-1``: normalised time ``t`` plus
    ``bands`` cos/sin pairs.

    As in HyenaDNA, time is ``k / (l_max - 1)`` and frequencies are ``f * 2 pi k / l_max``, so
    positions past ``l_max`` continue the same functions instead of failing.
    """

    def __init__(self, emb_dim: int, l_max: int) -> None:
        super().__init__()
        if emb_dim < 3 or emb_dim % 2 == 0:
            raise ValueError(f"emb_dim must be odd and >= 3 (t + cos/sin pairs), got {emb_dim}")
        self.l_max = l_max
        bands = (emb_dim - 1) // 2
        self.register_buffer("freqs", torch.linspace(1e-4, bands - 1, bands), persistent=False)

    def forward(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(z (L, emb_dim), t (L, 1))``."""
        k = torch.arange(length, device=self.freqs.device, dtype=torch.float32)[:, None]
        t = k / max(self.l_max - 1, 1)
        angle = self.freqs.float() * (2 * math.pi * k / self.l_max)
        return torch.cat([t, torch.cos(angle), -torch.sin(angle)], dim=-1), t


class ExponentialModulation(nn.Module):
    """``h(t) exp(-|delta_c| t)``: channel c decays to ``target`` between 0.3 and 1.5 l_max.

    ``t (L, 1)``, ``h (L, channels) -> (L, channels)``.
    """

    def __init__(self, channels: int, fast_decay_pct: float = 0.3, slow_decay_pct: float = 1.5,
                 target: float = 1e-2, shift: float = 0.0) -> None:
        super().__init__()
        self.shift = shift
        max_decay = math.log(target) / fast_decay_pct
        min_decay = math.log(target) / slow_decay_pct
        self.register_buffer("deltas", torch.linspace(min_decay, max_decay, channels),
                             persistent=False)

    def forward(self, t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return h * (torch.exp(-t * self.deltas.float().abs()) + self.shift)


class ImplicitFilter(nn.Module):
    """Generate ``n_filters`` long filters of ``channels`` channels: ``length -> (n, channels, L)``.

    Args:
        channels: channels per filter (``d_model``).
        n_filters: filters generated at once (Hyena order - 1, doubled when bidirectional).
        l_max: length the time axis is normalised to.
        filter_order: width of the MLP.
        emb_dim: positional features (odd).
        num_inner_layers: hidden ``Linear -> Sin`` layers after the first.
        w: initial frequency of the sine activations.
        shift: added to the decay, so no tap decays below it (HyenaDNA: 0.05).
    """

    def __init__(self, channels: int, n_filters: int, l_max: int, filter_order: int = 64,
                 emb_dim: int = 5, num_inner_layers: int = 2, w: float = 1.0,
                 shift: float = 0.0) -> None:
        super().__init__()
        self.channels, self.n_filters = channels, n_filters
        self.pos_emb = PositionalEmbedding(emb_dim, l_max)
        layers: list[nn.Module] = [nn.Linear(emb_dim, filter_order), Sin(filter_order, w)]
        for _ in range(num_inner_layers):
            layers += [nn.Linear(filter_order, filter_order), Sin(filter_order, w)]
        layers.append(nn.Linear(filter_order, channels * n_filters, bias=False))
        self.mlp = nn.Sequential(*layers)
        self.modulation = ExponentialModulation(channels * n_filters, shift=shift)

    def forward(self, length: int) -> torch.Tensor:
        """``length`` -> float32 filters ``(n_filters, channels, length)``.

        Computed in float32 whatever the module's dtype (``model.to(torch.bfloat16)``, ``.half()``)
        or autocast: bf16 keeps 8 bits of mantissa, so positions ``t = k / (l_max - 1)`` would
        collide beyond a few hundred and the filter would turn piecewise constant. The
        parameters are read through float32 casts, so their gradients still reach them.
        """
        with torch.autocast(device_type=self.modulation.deltas.device.type, enabled=False):
            z, t = self.pos_emb(length)
            h = z
            for layer in self.mlp:
                if isinstance(layer, nn.Linear):
                    bias = None if layer.bias is None else layer.bias.float()
                    h = F.linear(h, layer.weight.float(), bias)
                else:
                    h = torch.sin(layer.freq.float() * h)
            h = self.modulation(t, h)  # (L, n * channels)
        return h.t().reshape(self.n_filters, self.channels, length)
