"""Knowledge distillation from a trained teacher into a smaller student (Hinton et al. 2015).

``response``: ``alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) *
task loss``. ``feature`` adds the mean squared error between the backbones' final hidden states
``(B, L, d)`` over real positions, through a learned linear projection when the widths differ
(trained with the student, discarded afterwards).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OptimizationError
from .report import CompressionReport, measure_pair
from .training import train_steps

__all__ = ["DistillationConfig", "KnowledgeDistiller", "DISTILLATION_TYPES",
           "distillation_kl", "response_distillation_loss"]

logger = logging.getLogger(__name__)

DISTILLATION_TYPES = ("response", "feature")


@dataclass
class DistillationConfig:
    """How to distil.

    Args:
        temperature: softmax temperature T (> 0) of the soft targets.
        alpha: weight of the soft-target term, in [0, 1]; ``1 - alpha`` weighs the task loss.
        distillation_type: one of :data:`DISTILLATION_TYPES`.
        feature_weight: weight of the hidden-state term (``feature`` only).
        steps: training batches (the loader is cycled).
        learning_rate: AdamW learning rate.
    """

    temperature: float = 4.0
    alpha: float = 0.7
    distillation_type: str = "response"
    feature_weight: float = 1.0
    steps: int = 100
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise OptimizationError(f"DistillationConfig.{name}={getattr(self, name)!r} "
                                        f"is invalid: must be {allowed}")

        need(self.temperature > 0, "temperature", "> 0")
        need(0.0 <= self.alpha <= 1.0, "alpha", "in [0, 1]")
        need(self.distillation_type in DISTILLATION_TYPES, "distillation_type",
             f"one of {', '.join(DISTILLATION_TYPES)}")
        need(self.feature_weight >= 0, "feature_weight", ">= 0")
        need(isinstance(self.steps, int) and self.steps >= 1, "steps", "an integer >= 1")
        need(self.learning_rate > 0, "learning_rate", "> 0")


def _soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """Mean KL(teacher || student) of the temperature-softened distributions."""
    return F.kl_div(F.log_softmax(student_logits.float() / temperature, -1),
                    F.log_softmax(teacher_logits.float() / temperature, -1),
                    reduction="batchmean", log_target=True)


def response_distillation_loss(teacher: nn.Module, temperature: float, alpha: float
                               ) -> Callable[[nn.Module, dict[str, Any]], torch.Tensor]:
    """``loss_fn(student, batch)`` for :func:`.training.train_steps`: ``alpha * T^2 *
    KL(teacher || student) + (1 - alpha) * task loss`` (the teacher runs without gradients)."""
    teacher.eval()

    def loss_fn(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        ids, mask = batch["input_ids"], batch.get("attention_mask")
        with torch.no_grad():
            teacher_logits = teacher(ids, mask).logits
        out = model(ids, mask, labels=batch["labels"])
        return (alpha * temperature ** 2 * _soft_kl(out.logits, teacher_logits, temperature)
                + (1 - alpha) * out.loss)

    return loss_fn


@torch.no_grad()
def distillation_kl(teacher: nn.Module, student: nn.Module,
                    loader: Iterable[dict[str, Any]], temperature: float = 1.0) -> float:
    """Mean per-sequence KL(teacher || student) over ``loader`` (both in eval mode)."""
    teacher.eval()
    student.eval()
    total, count = 0.0, 0
    for batch in loader:
        ids, mask = batch["input_ids"], batch.get("attention_mask")
        kl = _soft_kl(student(ids, mask).logits, teacher(ids, mask).logits, temperature)
        total += float(kl) * ids.shape[0]
        count += ids.shape[0]
    return total / max(count, 1)


class _FinalHidden:
    """Forward hook keeping the backbone's ``last_hidden_state`` of the latest call."""

    def __init__(self, model: nn.Module) -> None:
        backbone = getattr(model, "backbone", None)
        if backbone is None:
            raise OptimizationError(f"feature distillation needs a model with a .backbone; "
                                    f"{type(model).__name__} has none")
        self.value: torch.Tensor | None = None
        self.handle = backbone.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs: Any, output: Any) -> None:
        self.value = output.last_hidden_state


class KnowledgeDistiller:
    """``KnowledgeDistiller(config).distill(teacher, student, loader)`` -> trained student."""

    def __init__(self, config: DistillationConfig | None = None) -> None:
        self.config = config or DistillationConfig()
        self.projection: nn.Module | None = None
        self.report: CompressionReport | None = None

    def distill(self, teacher: nn.Module, student: nn.Module,
                train_dataloader: Iterable[dict[str, Any]],
                validation_dataloader: Iterable[dict[str, Any]] | None = None) -> nn.Module:
        """Train ``student`` (in place) to match ``teacher`` on ``train_dataloader``.

        Batches need ``input_ids (B, L)``, ``attention_mask (B, L)`` and ``labels`` (the task
        loss; e.g. ``(B,)`` classes); teacher and student logits must have the same shape.
        With ``validation_dataloader``, a teacher-vs-student :class:`CompressionReport` (with
        the KL to the teacher) is logged and kept as ``self.report``. Returns the student in
        eval mode.
        """
        c = self.config
        teacher.eval()  # its forward runs under no_grad below
        hooks = None
        if c.distillation_type == "feature":
            hooks = (_FinalHidden(teacher), _FinalHidden(student))
            d_teacher, d_student = teacher.config.d_model, student.config.d_model
            self.projection = (nn.Linear(d_student, d_teacher) if d_student != d_teacher
                               else nn.Identity())

        response_loss = response_distillation_loss(teacher, c.temperature, c.alpha)

        def loss_fn(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
            loss = response_loss(model, batch)  # runs both models: the hooks fill in
            if hooks is not None:
                mask = batch.get("attention_mask")
                teacher_hidden, student_hidden = hooks[0].value, hooks[1].value
                error = (self.projection(student_hidden) - teacher_hidden).pow(2).mean(-1)
                real = (torch.ones_like(error) if mask is None else mask.to(error.dtype))
                loss = loss + c.feature_weight * (error * real).sum() / real.sum().clamp(min=1)
            return loss

        extra = list(self.projection.parameters()) if self.projection is not None else []
        try:
            mean_loss = train_steps(student, train_dataloader, c.steps, c.learning_rate,
                                    loss_fn, extra)
        finally:
            if hooks is not None:
                for hook in hooks:
                    hook.handle.remove()
        logger.info("distilled %s into %s (%s, %d steps): mean loss %.4f",
                    type(teacher).__name__, type(student).__name__, c.distillation_type,
                    c.steps, mean_loss)
        student.eval()
        if validation_dataloader is not None:
            self.report = measure_pair(
                "distillation", c, teacher, student, validation_dataloader,
                kl_to_teacher=distillation_kl(teacher, student, validation_dataloader))
        return student
