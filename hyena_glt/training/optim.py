"""AdamW with weight-decay groups and the warm-up + cosine schedule, in one place.

As in nanoGPT's ``configure_optimizers``: matrices (``dim >= 2``: linear and embedding
weights) are decayed, biases and norm gains are not. Two kinds of per-parameter hints become
extra optimizer groups here and nowhere else:

* ``param._optim = {"lr": ..., "weight_decay": ...}`` set by a module (the HyenaDNA/Safari
  convention, e.g. no decay on the implicit-filter MLP);
* ``lr_by_prefix={"backbone.": 1e-5, "head.": 1e-3}`` from the caller (fine-tuning).

Every parameter goes into the optimizer, frozen ones included: AdamW skips parameters without
gradients, so unfreezing later (gradual unfreezing) needs no new optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from ..errors import ConfigurationError

__all__ = ["configure_optimizer", "warmup_cosine_schedule"]


def configure_optimizer(
    model: nn.Module,
    learning_rate: float,
    weight_decay: float,
    lr_by_prefix: Mapping[str, float] | None = None,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    """AdamW over ``model``'s parameters, grouped by (learning rate, weight decay).

    Args:
        model: the model (unwrapped, not DDP: names must not carry ``module.``).
        learning_rate: default peak learning rate.
        weight_decay: decay of matrices; biases and norm weights get 0.
        lr_by_prefix: parameter-name prefixes with their own learning rate; the first
            matching prefix wins.
        betas, eps: AdamW's.

    Returns:
        The optimizer; each group carries a ``"name"`` for logs.
    """
    lr_by_prefix = dict(lr_by_prefix or {})
    groups: dict[tuple[float, float], dict] = {}
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if id(param) in seen:  # tied weights appear once
            continue
        seen.add(id(param))
        decay = weight_decay if param.dim() >= 2 else 0.0
        lr = next((value for prefix, value in lr_by_prefix.items() if name.startswith(prefix)),
                  learning_rate)
        hint = getattr(param, "_optim", None) or {}
        lr = float(hint.get("lr", lr))
        decay = float(hint.get("weight_decay", decay))
        group = groups.setdefault((lr, decay), {
            "params": [], "lr": lr, "weight_decay": decay,
            "name": f"lr={lr:g},weight_decay={decay:g}",
        })
        group["params"].append(param)
    if not groups:
        raise ConfigurationError("the model has no parameters to optimise")
    return torch.optim.AdamW(list(groups.values()), lr=learning_rate, betas=betas, eps=eps)


def warmup_cosine_schedule(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up from 0 to each group's lr, then cosine decay to ``min_lr_ratio`` of it.

    The factor depends only on the step, so a resumed run recomputes exactly the same learning
    rates; only ``last_epoch`` needs to be checkpointed.
    """
    if total_steps < 1:
        raise ConfigurationError(f"total_steps={total_steps}: the schedule needs at least one step")
    warmup_steps = min(warmup_steps, total_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return min_lr_ratio + (1.0 - min_lr_ratio) * cosine

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
