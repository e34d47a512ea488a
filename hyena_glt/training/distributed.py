"""torchrun / DDP detection and the few collectives the trainer needs.

``torchrun --nproc_per_node N`` (and SLURM jobs launched through it) sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup_distributed` reads them, picks the backend
(NCCL on GPU, gloo on CPU) and initialises the process group once. Without those variables
everything here is a no-op, so single-process code and tests pay nothing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigurationError

__all__ = [
    "DistributedContext",
    "torchrun_environment",
    "setup_distributed",
    "resolve_device",
    "all_reduce_sum",
    "all_reduce_min",
    "barrier",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, metrics and models; the others only compute."""
        return self.rank == 0


def torchrun_environment() -> DistributedContext:
    """The context described by torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` variables.

    Raises:
        ConfigurationError: the variables are present but not integers or inconsistent.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistributedContext()
    try:
        rank = int(os.environ["RANK"])
        world_size = int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    except ValueError:
        raise ConfigurationError(
            f"torchrun environment is malformed: RANK={os.environ.get('RANK')!r}, "
            f"WORLD_SIZE={os.environ.get('WORLD_SIZE')!r}, "
            f"LOCAL_RANK={os.environ.get('LOCAL_RANK')!r} must be integers") from None
    if not 0 <= rank < world_size:
        raise ConfigurationError(f"torchrun environment: RANK={rank} is outside "
                                 f"[0, WORLD_SIZE={world_size})")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)


def resolve_device(device: str | torch.device | None, context: DistributedContext) -> torch.device:
    """``None``/``"auto"`` -> this rank's GPU if CUDA is available, else the CPU.

    Raises:
        ConfigurationError: ``"cuda"`` was asked for but no GPU is visible.
    """
    if device is None or str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigurationError("device='cuda' but torch sees no CUDA device; use "
                                     "--device cpu or auto")
        if device.index is None:
            device = torch.device("cuda", context.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


def setup_distributed(context: DistributedContext, device: torch.device) -> None:
    """Initialise the default process group for a multi-process context (idempotent)."""
    if not context.is_distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=context.rank, world_size=context.world_size,
                            device_id=device if device.type == "cuda" else None)
    logger.info("process group %s: rank %d of %d on %s", backend, context.rank,
                context.world_size, device)


def all_reduce_sum(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (identity without a process group)."""
    if context.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_min(tensor: torch.Tensor, context: DistributedContext) -> torch.Tensor:
    """Element-wise minimum over ranks in place, e.g. "does every rank still have data?"."""
    if context.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return tensor


def barrier(context: DistributedContext) -> None:
    if context.is_distributed:
        dist.barrier()
