"""``MultiTaskLearner``: one shared backbone, one head per task, weighted losses.

The task models' ``backbone`` attributes are tied to one module (the first model's), so every
task's gradient updates the same weights while each head stays its own. Every optimizer step
trains one task's batch, the task drawn by a sampling schedule:

* ``"proportional"``: probability proportional to the task's training-set size;
* ``"temperature"``: proportional to ``size ** (1 / temperature)`` (T=1 proportional, large T
  uniform; the usual fix for small tasks drowned by large ones);
* ``"round_robin"``: tasks in turn.

The loss of a task's batch is multiplied by its weight. Draws and batches come from seeded
generators, so a run is reproducible on the CPU.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import HyenaGLTConfig
from ..errors import ConfigurationError, TrainingError
from ..io import atomic_directory
from ..progress import Progress
from .batching import eval_batches, train_batches
from .distributed import DistributedContext, resolve_device
from .eval_loop import evaluate_model
from .objectives import batch_generator, compute_loss
from .optim import configure_optimizer, warmup_cosine_schedule
from .state import seed_everything

__all__ = ["MultiTaskLearner", "SCHEDULES"]

logger = logging.getLogger(__name__)

SCHEDULES = ("proportional", "temperature", "round_robin")


class MultiTaskLearner:
    """Train several task models that share one backbone.

    Args:
        tasks: task names (e.g. ``["protein_function", "genome_annotation"]``); also the
            ``task_type`` used for each task's evaluation metrics when it is one.
        models: one Hyena-GLT task model per task, built from configs with the same backbone
            settings; their backbones are tied to the first model's.
        weights: loss weight per task (default 1 each).
        schedule: ``"proportional"``, ``"temperature"`` or ``"round_robin"``.
        temperature: for ``"temperature"``.

    Raises:
        ConfigurationError: mismatched lengths, a model without ``backbone``/``head``, or
            backbones whose parameters differ in name or shape.
    """

    def __init__(self, tasks: Sequence[str], models: Sequence[nn.Module],
                 weights: Sequence[float] | None = None, schedule: str = "proportional",
                 temperature: float = 2.0) -> None:
        weights = list(weights) if weights is not None else [1.0] * len(tasks)
        if not tasks or len(tasks) != len(models) or len(weights) != len(tasks):
            raise ConfigurationError(f"MultiTaskLearner needs as many models and weights as "
                                     f"tasks: {len(tasks)} tasks, {len(models)} models, "
                                     f"{len(weights)} weights")
        if len(set(tasks)) != len(tasks):
            raise ConfigurationError(f"task names must be distinct, got {list(tasks)}")
        if schedule not in SCHEDULES:
            raise ConfigurationError(f"schedule={schedule!r}; expected one of "
                                     f"{', '.join(SCHEDULES)}")
        if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise ConfigurationError(f"weights={weights}: need non-negative weights, one > 0")
        shared = getattr(models[0], "backbone", None)
        if shared is None or not all(hasattr(m, "head") for m in models):
            raise ConfigurationError("every model needs .backbone and .head (Hyena-GLT task "
                                     "models)")
        shapes = {k: v.shape for k, v in shared.state_dict().items()}
        for task, model in zip(tasks[1:], models[1:], strict=True):
            other = {k: v.shape for k, v in model.backbone.state_dict().items()}
            if other != shapes:
                raise ConfigurationError(f"task {task!r}: its backbone differs from "
                                         f"{tasks[0]!r}'s; build every model with the same "
                                         "backbone settings (d_model, n_layers, ...)")
            model.backbone = shared
        self.tasks, self.weights = list(tasks), [float(w) for w in weights]
        self.schedule, self.temperature = schedule, temperature
        self.models = nn.ModuleDict({f"task{i}": m for i, m in enumerate(models)})
        self.history: list[dict[str, Any]] = []

    def task_probabilities(self, sizes: Sequence[int]) -> list[float]:
        """Sampling probability of each task for ``"proportional"``/``"temperature"``."""
        power = 1.0 / self.temperature if self.schedule == "temperature" else 1.0
        scores = [size ** power for size in sizes]
        return [score / sum(scores) for score in scores]

    def _task_order(self, sizes: Sequence[int], steps: int, seed: int) -> list[int]:
        if self.schedule == "round_robin":
            return [step % len(sizes) for step in range(steps)]
        probabilities = torch.tensor(self.task_probabilities(sizes), dtype=torch.float64)
        return torch.multinomial(probabilities, steps, replacement=True,
                                 generator=batch_generator(seed, 7)).tolist()

    def _batches(self, task: int, dataset: Any, batch_size: int, seed: int,
                 pad_token_id: int) -> Iterator[dict[str, torch.Tensor]]:
        """Endless batches of one task: a new seeded permutation every pass."""
        single = DistributedContext()
        if len(dataset) == 0:
            raise TrainingError(f"task {self.tasks[task]!r}: empty training dataset")
        for epoch in itertools.count():
            key = (seed, task, epoch)
            for _, batch in train_batches(dataset, key=key, micro_batch_size=batch_size,
                                          max_length=None, start=0, context=single,
                                          pad_token_id=pad_token_id, num_workers=0,
                                          epoch=epoch):
                yield batch

    def train(self, datasets: Sequence[Any] | Mapping[str, Any],
              val_datasets: Sequence[Any] | Mapping[str, Any] | None = None,
              config: HyenaGLTConfig | None = None, num_steps: int | None = None,
              output_dir: str | Path | None = None, device: str | None = None,
              log_steps: int = 10) -> dict[str, Any]:
        """Train every task; return the latest metrics and the history.

        Args:
            datasets: one map-style training set per task (list in task order or by name),
                items as for :class:`HyenaGLTTrainer` (``input_ids (L,)``, ``labels``).
            val_datasets: optional, same layout; evaluated at the end per task.
            config: training hyper-parameters; default the first model's config. Without
                ``num_steps``, one epoch is as many steps as all tasks have batches.
            output_dir: if given, ``metrics.jsonl`` and one model directory per task
                (``<task>/``, each loadable on its own) are written there.
        """
        datasets = self._by_task(datasets, "datasets")
        config = config or self.models["task0"].config
        seed_everything(config.seed)
        device_ = resolve_device(device, DistributedContext())
        self.models.to(device_)
        sizes = [len(d) for d in datasets]
        batch_size = config.batch_size
        steps = num_steps or config.num_epochs * sum(math.ceil(n / batch_size) for n in sizes)
        optimizer = configure_optimizer(self.models, config.learning_rate, config.weight_decay)
        scheduler = warmup_cosine_schedule(optimizer, config.warmup_steps, steps)
        streams = [self._batches(t, d, batch_size, config.seed, config.pad_token_id)
                   for t, d in enumerate(datasets)]
        order = self._task_order(sizes, steps, config.seed)
        self.models.train()
        window: dict[int, list[float]] = {}
        with Progress(total=steps, desc="multi-task", unit="step") as bar:
            for step, task in enumerate(order, start=1):
                batch = {k: v.to(device_) for k, v in next(streams[task]).items()
                         if isinstance(v, torch.Tensor)}
                loss, _ = compute_loss(self.models[f"task{task}"], batch, "supervised",
                                       batch_generator(config.seed, step))
                if not torch.isfinite(loss):
                    raise TrainingError(f"non-finite loss ({float(loss.detach())}) at step {step} "
                                        f"(task {self.tasks[task]!r})")
                (self.weights[task] * loss).backward()
                torch.nn.utils.clip_grad_norm_(self.models.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                window.setdefault(task, []).append(float(loss.detach()))
                bar.update(1)
                if step % log_steps == 0 or step == steps:
                    self.history.append({"step": step, "lr": scheduler.get_last_lr()[0], **{
                        f"{self.tasks[t]}/loss": sum(v) / len(v) for t, v in window.items()}})
                    window = {}
        if val_datasets is not None:
            record: dict[str, Any] = {"step": steps}
            for task, dataset in enumerate(self._by_task(val_datasets, "val_datasets")):
                batches = eval_batches(dataset, batch_size=batch_size, max_length=None,
                                       pad_token_id=config.pad_token_id, num_workers=0)
                metrics = evaluate_model(self.models[f"task{task}"], batches,
                                         objective="supervised", task_type=self.tasks[task],
                                         device=device_, autocast=contextlib.nullcontext)
                record.update({f"{self.tasks[task]}/{k}": v for k, v in metrics.items()})
            self.history.append(record)
        if output_dir is not None:
            self.save(output_dir)
        latest: dict[str, Any] = {}
        for entry in self.history:
            latest.update(entry)
        return {**latest, "history": list(self.history)}

    def _by_task(self, values: Sequence[Any] | Mapping[str, Any], what: str) -> list[Any]:
        if isinstance(values, Mapping):
            missing = [t for t in self.tasks if t not in values]
            if missing:
                raise ConfigurationError(f"{what} lacks task(s) {missing}")
            return [values[t] for t in self.tasks]
        if len(values) != len(self.tasks):
            raise ConfigurationError(f"{what}: {len(values)} given for {len(self.tasks)} tasks")
        return list(values)

    def save(self, directory: str | Path) -> Path:
        """One model directory per task under ``directory`` (+ ``metrics.jsonl``), atomically."""
        with atomic_directory(directory) as tmp:
            for index, task in enumerate(self.tasks):
                self.models[f"task{index}"].save_pretrained(tmp / task)
            (tmp / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n"
                                                       for r in self.history))
        return Path(directory)
