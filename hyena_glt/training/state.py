"""Training position and the preemption signal, shared by the trainer, CLI and checkpoints."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import torch

from ..errors import TrainingError

__all__ = ["PREEMPTED_EXIT_CODE", "TrainingPreempted", "TrainerState", "seed_everything"]

#: Exit status after a preemption checkpoint (sysexits.h EX_TEMPFAIL: temporary, retry).
PREEMPTED_EXIT_CODE = 75


class TrainingPreempted(TrainingError):
    """Training stopped on request (signal) after saving a checkpoint; rerun to resume."""

    exit_code = PREEMPTED_EXIT_CODE

    def __init__(self, step: int, checkpoint: Path, reason: str) -> None:
        self.step, self.checkpoint = step, checkpoint
        super().__init__(f"training stopped by {reason} after step {step}; checkpoint saved to "
                         f"{checkpoint}; run again with the same output directory to resume")


@dataclasses.dataclass
class TrainerState:
    """Where training stands; everything a resumed run needs besides tensors."""

    global_step: int = 0
    stage: int = 0  # curriculum stage index
    epoch: int = 0  # epoch within the stage
    batch: int = 0  # micro-batches of this epoch already consumed
    stage_steps: int = 0
    epochs_completed: int = 0
    tokens_seen: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    finished: bool = False


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
