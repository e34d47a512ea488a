"""Pruning: magnitude (unstructured, global or per layer) and structured (output channels).

Pruned tensors are the weights of ``nn.Linear`` layers outside the implicit-filter generators
(which are tiny and shape every tap of the long filters). Masks are applied with
``torch.nn.utils.prune`` so optional fine-tuning keeps pruned weights at zero, and made
permanent (``prune.remove``) before the model is returned, so ``save_pretrained`` writes plain
tensors with real zeros. Iterative pruning raises the sparsity in ``iterations`` equal steps,
fine-tuning ``fine_tune_steps`` batches after each; with ``distillation_alpha > 0`` the
fine-tuning also matches the unpruned model's soft outputs (prune-and-distil: the original is
the teacher, so the pruned copy recovers its function rather than only the labels).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.nn.utils import prune

from ..errors import OptimizationError
from ..model.filters import ImplicitFilter
from .distillation import response_distillation_loss
from .report import CompressionReport, measure_pair
from .training import task_loss, train_steps

__all__ = ["PruningConfig", "ModelPruner", "PRUNING_TYPES", "prunable_weights",
           "measured_sparsity"]

logger = logging.getLogger(__name__)

#: ``magnitude``: smallest |w| set to zero; ``structured``: output channels (rows) with the
#: smallest L2 norm set to zero, layer by layer.
PRUNING_TYPES = ("magnitude", "structured")
SCOPES = ("global", "layer")


@dataclass
class PruningConfig:
    """How to prune.

    Args:
        pruning_type: one of :data:`PRUNING_TYPES`.
        sparsity: fraction of prunable weights set to zero, in ``[0, 1)``.
        scope: ``global`` (one magnitude threshold over all layers) or ``layer`` (each layer
            to ``sparsity``); structured pruning is always per layer.
        iterations: pruning steps to reach ``sparsity`` (>= 1).
        fine_tune_steps: training batches after each step (0: no fine-tuning).
        learning_rate: AdamW learning rate of the fine-tuning.
        distillation_alpha: weight in [0, 1] of the soft-target loss toward the unpruned model
            during fine-tuning (0: task loss only).
        distillation_temperature: softmax temperature (> 0) of those soft targets.
    """

    pruning_type: str = "magnitude"
    sparsity: float = 0.5
    scope: str = "global"
    iterations: int = 1
    fine_tune_steps: int = 0
    learning_rate: float = 1e-4
    distillation_alpha: float = 0.0
    distillation_temperature: float = 4.0

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise OptimizationError(f"PruningConfig.{name}={getattr(self, name)!r} is "
                                        f"invalid: must be {allowed}")

        need(self.pruning_type in PRUNING_TYPES, "pruning_type",
             f"one of {', '.join(PRUNING_TYPES)}")
        need(isinstance(self.sparsity, (int, float)) and 0.0 <= self.sparsity < 1.0,
             "sparsity", "in [0, 1)")
        need(self.scope in SCOPES, "scope", f"one of {', '.join(SCOPES)}")
        need(isinstance(self.iterations, int) and self.iterations >= 1, "iterations",
             "an integer >= 1")
        need(isinstance(self.fine_tune_steps, int) and self.fine_tune_steps >= 0,
             "fine_tune_steps", "an integer >= 0")
        need(self.learning_rate > 0, "learning_rate", "> 0")
        need(0.0 <= self.distillation_alpha <= 1.0, "distillation_alpha", "in [0, 1]")
        need(self.distillation_temperature > 0, "distillation_temperature", "> 0")


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` of every ``nn.Linear`` outside the implicit-filter generators."""
    inside_filters = {id(sub) for module in model.modules() if isinstance(module, ImplicitFilter)
                      for sub in module.modules()}
    return [(module, "weight") for module in model.modules()
            if isinstance(module, nn.Linear) and id(module) not in inside_filters]


def measured_sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros over the prunable weights of ``model``."""
    weights = [getattr(module, name).detach() for module, name in prunable_weights(model)]
    total = sum(w.numel() for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / total if total else 0.0


class ModelPruner:
    """Prune a model to a requested sparsity: ``ModelPruner(config).prune(model, loader)``."""

    def __init__(self, config: PruningConfig | None = None) -> None:
        self.config = config or PruningConfig()
        self.achieved_sparsity: float | None = None
        self.report: CompressionReport | None = None

    def _prune_step(self, targets: list[tuple[nn.Module, str]], sparsity: float) -> None:
        """Apply masks so that ``sparsity`` of the targets are zero (masks compose)."""
        c = self.config
        if c.pruning_type == "magnitude" and c.scope == "global":
            prune.global_unstructured(targets, prune.L1Unstructured, amount=sparsity)
            return
        for module, name in targets:
            if c.pruning_type == "magnitude":
                prune.l1_unstructured(module, name, amount=sparsity)
            else:  # rows = output channels
                prune.ln_structured(module, name, amount=sparsity, n=2, dim=0)

    def prune(self, model: nn.Module,
              train_dataloader: Iterable[dict[str, Any]] | None = None,
              validation_dataloader: Iterable[dict[str, Any]] | None = None) -> nn.Module:
        """Return a pruned copy of ``model`` (the input is left unchanged).

        Args:
            model: a model whose ``forward(input_ids, attention_mask, labels)`` returns
                ``.loss`` (needed only when fine-tuning).
            train_dataloader: batches for the fine-tuning steps (``fine_tune_steps > 0``):
                ``input_ids (B, L)``, ``attention_mask (B, L)``, ``labels``.
            validation_dataloader: if given, measure and log a :class:`CompressionReport`
                (kept as ``self.report``, with the reached sparsity).

        Raises:
            OptimizationError: fine-tuning requested without a loader.
        """
        c = self.config
        if c.fine_tune_steps and train_dataloader is None:
            raise OptimizationError(f"PruningConfig.fine_tune_steps={c.fine_tune_steps} needs "
                                    "a train_dataloader")
        pruned = copy.deepcopy(model)
        targets = prunable_weights(pruned)
        if not targets:
            raise OptimizationError(f"{type(model).__name__} has no prunable linear layers")
        loss_fn = (response_distillation_loss(model, c.distillation_temperature,
                                              c.distillation_alpha)
                   if c.distillation_alpha > 0 else task_loss)
        done = 0.0
        for step in range(1, c.iterations + 1):
            goal = c.sparsity * step / c.iterations
            # prune's amount is a fraction of what is still unpruned: compose to reach ``goal``.
            self._prune_step(targets, (goal - done) / (1.0 - done) if goal > done else 0.0)
            done = goal
            if c.fine_tune_steps and train_dataloader is not None:
                train_steps(pruned, train_dataloader, c.fine_tune_steps, c.learning_rate,
                            loss_fn)
        for module, name in targets:
            prune.remove(module, name)  # permanent: plain weights holding real zeros
        pruned.eval()
        self.achieved_sparsity = measured_sparsity(pruned)
        logger.info("pruned %s: requested sparsity %.3f, reached %.4f over %d layers",
                    type(model).__name__, c.sparsity, self.achieved_sparsity, len(targets))
        if validation_dataloader is not None:
            self.report = measure_pair("pruning", c, model, pruned, validation_dataloader,
                                       achieved_sparsity=self.achieved_sparsity)
        return pruned
