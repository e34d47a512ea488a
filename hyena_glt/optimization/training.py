"""A small training loop shared by prune-and-fine-tune and distillation."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ..errors import OptimizationError

__all__ = ["train_steps", "task_loss"]

logger = logging.getLogger(__name__)


def task_loss(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """The model's own loss on a labelled batch."""
    return model(batch["input_ids"], batch.get("attention_mask"), labels=batch["labels"]).loss


def train_steps(model: nn.Module, loader: Iterable[dict[str, Any]], steps: int,
                learning_rate: float,
                loss_fn: Callable[[nn.Module, dict[str, Any]], torch.Tensor] = task_loss,
                extra_parameters: Iterable[nn.Parameter] = ()) -> float:
    """Run ``steps`` AdamW steps over ``loader`` (cycled); return the mean loss.

    Raises:
        OptimizationError: the loader is empty or the loss is not finite.
    """
    parameters = [p for p in model.parameters() if p.requires_grad] + list(extra_parameters)
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate)
    model.train()
    total, done = 0.0, 0
    batches = itertools.cycle(loader) if steps else iter(())
    for step in range(steps):
        try:
            batch = next(batches)
        except StopIteration:
            raise OptimizationError("the train_dataloader yielded no batches") from None
        loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            raise OptimizationError(f"non-finite loss {loss.item()} at fine-tuning step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        total += float(loss.detach())
        done += 1
    model.eval()
    logger.debug("trained %d steps, mean loss %.4f", done, total / max(done, 1))
    return total / max(done, 1)
