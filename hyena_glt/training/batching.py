"""Reproducible, resumable micro-batches for map-style and streaming datasets.

Map-style datasets (``__getitem__`` + ``__len__``): each epoch draws one permutation from a
generator seeded by (seed, stage, epoch) and cuts it into global micro-batches of
``micro_batch_size * world_size`` indices; rank r takes the r-th slice. With several ranks the
permutation wraps around so every rank gets full, equal batches (as ``DistributedSampler``).
Batch ``b`` of an epoch is therefore a pure function of (seed, stage, epoch, b): resuming at
batch ``b`` just starts the plan there, and two ranks see exactly the global batch one process
would see.

Streaming datasets (``IterableDataset`` such as ``ShardDataset``, which splits its rows across
DataLoader workers and DDP ranks itself) are batched in order; ``set_epoch(epoch)`` is called
when the dataset has it, and resuming skips the batches already consumed.

Each batch is cropped to the stage's ``max_length`` with offsets drawn from a generator seeded
by (seed, stage, epoch, batch[, worker]), then padded by ``collate_batch``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from .distributed import DistributedContext
from .objectives import batch_generator, make_collate

__all__ = ["is_streaming", "micro_batches_per_epoch", "epoch_permutation", "train_batches",
           "eval_batches"]


def is_streaming(dataset: Any) -> bool:
    return isinstance(dataset, IterableDataset)


def micro_batches_per_epoch(dataset: Any, micro_batch_size: int,
                            context: DistributedContext) -> int | None:
    """Micro-batches each rank runs per epoch; None for a stream of unknown length."""
    try:
        rows = len(dataset)
    except TypeError:  # ShardDataset has no __len__ but knows its row count
        rows = getattr(dataset, "num_rows", None)
    if rows is None:
        return None
    return math.ceil(rows / (micro_batch_size * context.world_size))


def epoch_permutation(size: int, key: tuple[int, ...], micro_batch_size: int,
                      context: DistributedContext) -> list[list[int]]:
    """This rank's index lists for one epoch (see the module docstring)."""
    order = torch.randperm(size, generator=batch_generator(*key))
    step = micro_batch_size * context.world_size
    batches = math.ceil(size / step)
    if context.is_distributed:
        order = order[torch.arange(batches * step) % size]
    start = context.rank * micro_batch_size
    return [order[b * step + start:b * step + start + micro_batch_size].tolist()
            for b in range(batches)]


class _PlannedBatches(Dataset):
    """Batch number -> collated batch, so DataLoader workers stay deterministic."""

    def __init__(self, dataset: Any, plan: list[list[int]], key: tuple[int, ...],
                 max_length: int | None, pad_token_id: int) -> None:
        self.dataset, self.plan, self.key = dataset, plan, key
        self.max_length, self.pad_token_id = max_length, pad_token_id

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, number: int) -> dict[str, torch.Tensor]:
        items = [self.dataset[i] for i in self.plan[number]]
        collate = make_collate(self.max_length, self.pad_token_id,
                               lambda: batch_generator(*self.key, number))
        return collate(items)


class _StreamBatches(IterableDataset):
    """Group a stream into micro-batches with per-(worker, batch) crop generators."""

    def __init__(self, dataset: IterableDataset, micro_batch_size: int, key: tuple[int, ...],
                 max_length: int | None, pad_token_id: int) -> None:
        self.dataset, self.micro_batch_size, self.key = dataset, micro_batch_size, key
        self.max_length, self.pad_token_id = max_length, pad_token_id

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = get_worker_info()
        worker_id = worker.id if worker is not None else 0
        items = iter(self.dataset)
        for number in itertools.count():
            chunk = list(itertools.islice(items, self.micro_batch_size))
            if not chunk:
                return
            collate = make_collate(self.max_length, self.pad_token_id,
                                   lambda n=number: batch_generator(*self.key, worker_id, n))
            yield collate(chunk)


def train_batches(dataset: Any, *, key: tuple[int, ...], micro_batch_size: int,
                  max_length: int | None, start: int, context: DistributedContext,
                  pad_token_id: int, num_workers: int, epoch: int
                  ) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """(batch number, batch) pairs of one epoch from batch ``start`` on."""
    if is_streaming(dataset):
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        stream = _StreamBatches(dataset, micro_batch_size, key, max_length, pad_token_id)
        loader = DataLoader(stream, batch_size=None, num_workers=num_workers,
                            generator=batch_generator(*key))
        return itertools.islice(enumerate(loader), start, None)
    plan = epoch_permutation(len(dataset), key, micro_batch_size, context)
    planned = _PlannedBatches(dataset, plan, key, max_length, pad_token_id)
    loader = DataLoader(planned, batch_size=None, sampler=range(start, len(plan)),
                        num_workers=num_workers, generator=batch_generator(*key))
    return zip(range(start, len(plan)), loader, strict=True)


def eval_batches(dataset: Any, *, batch_size: int, max_length: int | None, pad_token_id: int,
                 num_workers: int) -> DataLoader:
    """In-order batches of a whole evaluation set (every rank sees all of it)."""
    key = (0, 0, 0)
    if is_streaming(dataset):
        stream = _StreamBatches(dataset, batch_size, key, max_length, pad_token_id)
        return DataLoader(stream, batch_size=None, num_workers=num_workers,
                          generator=batch_generator(*key))
    plan = [list(range(i, min(i + batch_size, len(dataset))))
            for i in range(0, len(dataset), batch_size)]
    return DataLoader(_PlannedBatches(dataset, plan, key, max_length, pad_token_id),
                      batch_size=None, num_workers=num_workers,
                      generator=batch_generator(*key))  # leaves the global RNG untouched
