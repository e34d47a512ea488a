"""``HyenaGLTTrainer``: the training loop, built for preemptible jobs on shared GPU clusters.

Run directory (``output_dir``)::

    checkpoints/last/   resumable state (see :mod:`.checkpoint`), replaced atomically
    metrics.jsonl       one JSON object per log/eval event (loss, lr, tokens_per_s, eval_*)
    best/               best model so far by ``metric_for_best`` (when there is validation data)
    model/              the final model (the best one when ``load_best_at_end``; ``model_dir``)
    tensorboard/        event files, when the ``tensorboard`` package is installed

A model directory (``model/``, ``best/``) holds ``config.json``, ``model.safetensors``,
``tokenizer.json`` (when the trainer has a tokenizer), ``metrics.jsonl`` and
``training_config.json`` (the training settings, curriculum plan and final step).

Preemption: on SIGTERM or SIGUSR1 (SLURM sends SIGTERM at the time limit or on preemption,
and ``--signal=USR1@120`` gives earlier notice) the trainer finishes the current optimizer
step, saves ``checkpoints/last`` and raises :class:`TrainingPreempted`; the CLI exits with
:data:`~.state.PREEMPTED_EXIT_CODE` (75, ``EX_TEMPFAIL``: "try again"). Any later ``train()`` with the
same ``output_dir`` resumes from that checkpoint; on the CPU the result is bit-identical to an
uninterrupted run. A non-finite loss or gradient norm raises :class:`TrainingError` naming the
step before the weights change, so the last checkpoint stays the last good one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .. import __version__
from ..config import HyenaGLTConfig
from ..data.tokenizers import ProteinTokenizer
from ..errors import ConfigurationError, TrainingError
from ..io import atomic_directory
from ..progress import Progress
from .batching import eval_batches, is_streaming, micro_batches_per_epoch, train_batches
from .checkpoint import load_training_checkpoint, save_training_checkpoint
from .curriculum import CurriculumLearner, CurriculumStage
from .distributed import (
    all_reduce_sum,
    barrier,
    resolve_device,
    setup_distributed,
    torchrun_environment,
)
from .eval_loop import evaluate_model
from .metrics_log import MetricsLog
from .objectives import OBJECTIVES, batch_generator, compute_loss, model_inputs
from .optim import configure_optimizer, warmup_cosine_schedule
from .state import TrainerState, TrainingPreempted, seed_everything

__all__ = ["HyenaGLTTrainer"]

logger = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
_LOWER_IS_BETTER = ("loss", "mse", "mae", "rmse", "perplexity", "bits_per_token")


class HyenaGLTTrainer:
    """Train a Hyena-GLT model (or any model with the same forward/output contract).

    Args:
        model: e.g. ``HyenaGLTForCausalLM`` / ``HyenaGLTForSequenceClassification``; called as
            ``model(input_ids=, attention_mask=, labels=)`` returning ``.loss`` and ``.logits``.
        config: training hyper-parameters (``learning_rate``, ``batch_size`` (micro-batch per
            process), ``num_epochs``, ``weight_decay``, ``warmup_steps``, ``max_grad_norm``,
            ``gradient_accumulation_steps``, ``seed``); default ``model.config``.
        train_dataset, val_dataset: map-style datasets or streams (``ShardDataset``) of item
            dicts: ``input_ids (L,)`` int64, optional ``attention_mask (L,)`` and ``labels``
            (``()`` class/value or ``(L,)`` per base); batches are cropped to the stage length
            and padded to ``(B, L)`` by ``collate_batch``.
        tokenizer: saved as ``tokenizer.json`` with the model.
        output_dir: the run directory (layout in the module docstring).
        curriculum: a :class:`CurriculumLearner`; default one stage of ``config.num_epochs``.
        objective: ``"supervised"``, ``"causal_lm"``, ``"masked_lm"`` or ``"auto"`` (labels
            -> supervised, else masked LM for bidirectional models, causal LM otherwise).
        task_type: for eval metrics; default inferred from the labels.
        device: ``"cpu"``, ``"cuda"`` or ``None``/``"auto"``; bf16 autocast on CUDA.
        max_steps: stop after this many optimizer steps (also caps the schedule).
        log_steps, eval_steps, save_steps: intervals in optimizer steps (eval and checkpoint
            also happen at every epoch end).
        early_stopping_patience: stop after this many evaluations without improvement.
        metric_for_best, greater_is_better: validation metric that picks ``best/``
            (direction inferred from the name when ``None``).
        lr_by_prefix: per-parameter-prefix learning rates (``{"head.": 1e-3}``).
        callbacks: ``callback(trainer, event)`` for ``"epoch_start"``, ``"step_end"``,
            ``"epoch_end"`` and ``"train_end"`` (final weights in place, not yet saved).
        load_best_at_end: put the best validation weights into ``model`` when done.
        model_dir: where the final model directory goes (default ``output_dir/model``).
        find_unused_parameters: DDP's option, for models whose forward skips parameters.
    """

    def __init__(
        self,
        model: nn.Module,
        config: HyenaGLTConfig | None = None,
        train_dataset: Any = None,
        val_dataset: Any = None,
        tokenizer: Any = None,
        output_dir: str | Path = "hyena_glt_run",
        *,
        curriculum: CurriculumLearner | None = None,
        objective: str = "auto",
        task_type: str | None = None,
        device: str | torch.device | None = None,
        max_steps: int | None = None,
        log_steps: int = 10,
        eval_steps: int | None = None,
        save_steps: int | None = None,
        early_stopping_patience: int | None = None,
        metric_for_best: str = "eval_loss",
        greater_is_better: bool | None = None,
        lr_by_prefix: Mapping[str, float] | None = None,
        min_lr_ratio: float = 0.1,
        num_workers: int = 0,
        callbacks: Iterable[Callable[[HyenaGLTTrainer, str], None]] = (),
        handle_signals: bool = True,
        load_best_at_end: bool = True,
        show_progress: bool = True,
        model_dir: str | Path | None = None,
        find_unused_parameters: bool = False,
    ) -> None:
        self.config = config if config is not None else getattr(model, "config", None)
        if not isinstance(self.config, HyenaGLTConfig):
            raise ConfigurationError("HyenaGLTTrainer needs config= (a HyenaGLTConfig) when the "
                                     "model has no .config")
        data_tokenizer = tokenizer or getattr(train_dataset, "tokenizer", None)
        if getattr(model, "config", self.config).rc_average and isinstance(data_tokenizer,
                                                                             ProteinTokenizer):
            raise ConfigurationError("rc_average=True on protein data (ProteinTokenizer): "
                                     "amino acids have no complement; set rc_average=False")
        for name, value in (("max_steps", max_steps), ("log_steps", log_steps),
                            ("eval_steps", eval_steps), ("save_steps", save_steps),
                            ("early_stopping_patience", early_stopping_patience)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigurationError(f"{name}={value!r} must be an integer >= 1 or None")
        self.context = torchrun_environment()
        self.device = resolve_device(device, self.context)
        setup_distributed(self.context, self.device)
        seed_everything(self.config.seed + self.context.rank)
        self.model = model.to(self.device)
        self.train_dataset, self.val_dataset, self.tokenizer = train_dataset, val_dataset, tokenizer
        self.output_dir = Path(output_dir)
        self.model_dir = Path(model_dir) if model_dir is not None else self.output_dir / "model"
        self.objective = self._resolve_objective(objective)
        self.task_type = task_type
        self.max_steps, self.log_steps = max_steps, log_steps
        self.eval_steps, self.save_steps = eval_steps, save_steps
        self.early_stopping_patience = early_stopping_patience
        self.metric_for_best = metric_for_best
        self.greater_is_better = (greater_is_better if greater_is_better is not None else
                                  not any(word in metric_for_best for word in _LOWER_IS_BETTER))
        self.num_workers = num_workers
        self.callbacks = list(callbacks)
        self.handle_signals, self.load_best_at_end = handle_signals, load_best_at_end
        self.show_progress = show_progress
        self.find_unused_parameters = find_unused_parameters
        config = self.config
        self.stages: list[CurriculumStage] = (
            curriculum.plan(config.batch_size, config.gradient_accumulation_steps) if curriculum
            else [CurriculumStage(None, config.num_epochs, None, config.batch_size,
                                  config.gradient_accumulation_steps)])
        self.total_steps = self._planned_steps()
        self.optimizer = configure_optimizer(self.model, config.learning_rate,
                                             config.weight_decay, lr_by_prefix)
        self.scheduler = warmup_cosine_schedule(self.optimizer, config.warmup_steps,
                                                self.total_steps, min_lr_ratio)
        self.state = TrainerState()
        self.log = MetricsLog(self.output_dir / "metrics.jsonl", self.context.is_main,
                              self.output_dir / "tensorboard")
        self._wrapped: nn.Module = self.model
        self._trainable: tuple[bool, ...] = ()
        self._stop_reason: str | None = None
        self._last_eval_step: int | None = None
        self._window = {"loss": 0.0, "steps": 0, "tokens": 0, "start": time.monotonic()}
        self._step_loss, self._step_tokens = 0.0, 0

    # -- set-up ------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        """``output_dir/checkpoints/last``: where preemption and epoch-end saves go."""
        return self.output_dir / "checkpoints" / "last"

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every metrics record of the run so far (as in ``metrics.jsonl``)."""
        return self.log.records

    def _resolve_objective(self, objective: str) -> str:
        if objective != "auto":
            if objective not in OBJECTIVES:
                raise ConfigurationError(f"objective={objective!r}; expected auto or one of "
                                         f"{', '.join(OBJECTIVES)}")
            chosen = objective
        elif self.train_dataset is None:
            chosen = "supervised"
        else:
            kind = getattr(self.train_dataset, "kind", None)
            if is_streaming(self.train_dataset):
                labelled = kind != "windows" if kind else "labels" in next(
                    iter(self.train_dataset))
            else:
                labelled = "labels" in self.train_dataset[0]
            chosen = "supervised" if labelled else (
                "masked_lm" if self.config.bidirectional else "causal_lm")
        if chosen == "masked_lm" and not self.config.bidirectional:
            raise ConfigurationError("objective 'masked_lm' needs a bidirectional model "
                                     "(config.bidirectional=True); causal models use causal_lm")
        return chosen

    def _planned_steps(self) -> int:
        """Optimizer steps of the whole curriculum (the cosine schedule's length)."""
        total = 0
        for index, stage in enumerate(self.stages):
            if stage.steps is not None:
                total += stage.steps
                continue
            if self.train_dataset is None:
                return self.max_steps or 1
            batches = micro_batches_per_epoch(self.train_dataset, stage.micro_batch_size,
                                              self.context)
            if batches is None:
                if self.max_steps is None:
                    raise ConfigurationError(
                        f"stage {index} runs for epochs over a stream of unknown length; give "
                        "max_steps or per-stage 'steps'")
                return self.max_steps
            total += stage.epochs * math.ceil(batches / stage.gradient_accumulation_steps)
        return min(total, self.max_steps) if self.max_steps else max(total, 1)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.autocast("cuda", dtype=torch.bfloat16)  # fp32 weights, bf16 matmuls
        return contextlib.nullcontext()

    def _fire(self, event: str) -> None:
        for callback in self.callbacks:
            callback(self, event)

    def _sync_wrapper(self) -> None:
        """(Re)wrap in DDP when the set of trainable parameters changed (gradual unfreezing)."""
        trainable = tuple(p.requires_grad for p in self.model.parameters())
        if not self.context.is_distributed or trainable == self._trainable:
            return
        self._trainable = trainable
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self._wrapped = DistributedDataParallel(
            self.model, device_ids=device_ids, find_unused_parameters=self.find_unused_parameters)

    # -- checkpoints -------------------------------------------------------------------------
    def _plan(self) -> list[dict[str, Any]]:
        return [stage.to_dict() for stage in self.stages]

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write a resumable checkpoint (model, optimizer, scheduler, RNGs, data position)."""
        return save_training_checkpoint(path, self.model, self.optimizer, self.scheduler, {
            "state": dataclasses.asdict(self.state), "plan": self._plan(),
            "world_size": self.context.world_size, "objective": self.objective,
            "seed": self.config.seed, "total_steps": self.total_steps})

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore everything :meth:`save_checkpoint` wrote; training continues from there.

        Raises:
            TrainingError: unreadable checkpoint, one of another model (weights of other
                shapes), or one written with another curriculum plan, world size, seed or
                schedule length (resuming would silently differ).
        """
        try:
            data = load_training_checkpoint(path, self.model, self.optimizer, self.scheduler)
        except RuntimeError as err:
            if isinstance(err, TrainingError):
                raise
            # PyTorch's load_state_dict: "size mismatch for ..." (another architecture).
            raise TrainingError(f"{path}: the checkpoint there belongs to another model "
                                f"({str(err).splitlines()[-1].strip()}); give this run its own "
                                f"output_dir, or delete {self.output_dir} to start afresh"
                                ) from None
        expected = {"plan": self._plan(), "world_size": self.context.world_size,
                    "objective": self.objective, "seed": self.config.seed,
                    "total_steps": self.total_steps}
        for key, value in expected.items():
            if data.get(key) != value:
                raise TrainingError(f"{path}: checkpoint was written with {key}={data.get(key)!r}"
                                    f", this run has {value!r}; use the same settings or a new "
                                    "output directory")
        self.state = TrainerState(**data["state"])
        logger.info("resumed from %s at step %d (stage %d, epoch %d, batch %d)", path,
                    self.state.global_step, self.state.stage, self.state.epoch, self.state.batch)

    def _save_last(self) -> None:
        if self.context.is_main:
            self.save_checkpoint(self.checkpoint_dir)
        barrier(self.context)

    def save_model(self, directory: str | Path) -> Path:
        """Write a model directory (config, weights, tokenizer, metrics, training config)."""
        if not hasattr(self.model, "save_pretrained"):
            raise ConfigurationError(f"{type(self.model).__name__} has no save_pretrained")
        with atomic_directory(directory) as tmp:
            self.model.save_pretrained(tmp, tokenizer=self.tokenizer)
            if self.log.path.is_file():
                (tmp / "metrics.jsonl").write_bytes(self.log.path.read_bytes())
            (tmp / "training_config.json").write_text(json.dumps(self.training_config(),
                                                                 indent=2) + "\n")
        return Path(directory)

    def training_config(self) -> dict[str, Any]:
        """The settings and outcome of this run, as stored with the model."""
        config = self.config
        return {
            "package_version": __version__, "objective": self.objective,
            "curriculum": self._plan(), "total_steps": self.total_steps,
            "max_steps": self.max_steps, "world_size": self.context.world_size,
            **{name: getattr(config, name) for name in (
                "learning_rate", "batch_size", "num_epochs", "weight_decay", "warmup_steps",
                "max_grad_norm", "gradient_accumulation_steps", "seed")},
            "metric_for_best": self.metric_for_best, "state": dataclasses.asdict(self.state),
        }

    # -- metrics -----------------------------------------------------------------------------
    def get_metrics(self) -> dict[str, Any]:
        """Latest value of every metric, the best validation result and the full history."""
        return {**self.log.latest(), "global_step": self.state.global_step,
                "best_metric": self.state.best_metric, "best_step": self.state.best_step,
                "history": list(self.history)}

    # -- evaluation --------------------------------------------------------------------------
    def evaluate(self, dataset: Any = None) -> dict[str, float]:
        """Scalar metrics (``eval_loss``, ``eval_accuracy``, ...) on ``dataset`` (default:
        the validation set), cropped to the current curriculum stage's length."""
        dataset = dataset if dataset is not None else self.val_dataset
        if dataset is None:
            raise ConfigurationError("evaluate() needs a dataset: pass one or give the trainer "
                                     "val_dataset=")
        stage = self.stages[min(self.state.stage, len(self.stages) - 1)]
        batches = eval_batches(dataset, batch_size=stage.micro_batch_size,
                               max_length=stage.max_length, pad_token_id=self.config.pad_token_id,
                               num_workers=self.num_workers)
        modes = {module: module.training for module in self.model.modules()}
        metrics = evaluate_model(self.model, batches, objective=self.objective,
                                 task_type=self.task_type, device=self.device,
                                 autocast=self._autocast)
        for module, training in modes.items():  # frozen parts may stay in eval mode
            module.train(training)
        return metrics

    def _evaluate_and_track(self) -> bool:
        """Evaluate, log, keep ``best/``; True when early stopping says stop."""
        metrics = self.evaluate()
        self._last_eval_step = self.state.global_step
        self.log.append({"step": self.state.global_step, "epoch": self.state.epochs_completed,
                      **metrics})
        if self.metric_for_best not in metrics:
            raise ConfigurationError(f"metric_for_best={self.metric_for_best!r} is not among the "
                                     f"evaluation metrics {sorted(metrics)}")
        value = torch.tensor([metrics[self.metric_for_best]], dtype=torch.float64)
        if self.context.is_distributed:  # every rank follows rank 0's decision
            torch.distributed.broadcast(value, src=0)
        value = float(value)
        best = self.state.best_metric
        improved = math.isfinite(value) and (
            best is None or (value > best if self.greater_is_better else value < best))
        if improved:
            self.state.best_metric, self.state.best_step = value, self.state.global_step
            self.state.evals_without_improvement = 0
            if self.context.is_main:
                self.save_model(self.output_dir / "best")
        else:
            self.state.evals_without_improvement += 1
        patience = self.early_stopping_patience
        if patience is not None and self.state.evals_without_improvement >= patience:
            logger.info("early stopping at step %d: %s has not improved for %d evaluations "
                        "(best %.6g at step %s)", self.state.global_step, self.metric_for_best,
                        patience, self.state.best_metric, self.state.best_step)
            return True
        return False

    # -- training ----------------------------------------------------------------------------
    def request_stop(self, reason: str = "request") -> None:
        """Stop after the current optimizer step with a checkpoint (what SIGTERM does)."""
        self._stop_reason = reason

    def _on_signal(self, number: int, frame: Any) -> None:
        logger.warning("received %s: saving a checkpoint after this step",
                       signal.Signals(number).name)
        self.request_stop(signal.Signals(number).name)

    def train(self, resume_from: str | Path | None = "auto") -> dict[str, Any]:
        """Train through every curriculum stage; return :meth:`get_metrics`.

        Args:
            resume_from: ``"auto"`` resumes from ``checkpoints/last`` when it exists; a path
                resumes from that checkpoint; ``None`` starts afresh.

        Raises:
            TrainingPreempted: stopped by SIGTERM/SIGUSR1 (or :meth:`request_stop`) after
                saving a checkpoint.
            TrainingError: non-finite loss or gradient (step named), bad checkpoint.
        """
        if self.train_dataset is None:
            raise ConfigurationError("train() needs train_dataset=")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if resume_from == "auto":
            resume_from = self.checkpoint_dir if self.checkpoint_dir.is_dir() else None
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        self.log.start(self.state.global_step if resume_from is not None else None)
        previous = {}
        if self.handle_signals:
            with contextlib.suppress(ValueError):  # only the main thread may set handlers
                previous = {s: signal.signal(s, self._on_signal) for s in _STOP_SIGNALS}
        try:
            if not self.state.finished:
                self._run()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            self.log.flush()
        self._finish()
        return self.get_metrics()

    def _run(self) -> None:
        self.model.train()
        self._window.update(loss=0.0, steps=0, tokens=0, start=time.monotonic())
        enabled = self.context.is_main and self.show_progress
        remaining = self.total_steps - self.state.global_step
        with Progress(total=remaining, desc="train", unit="step", enabled=enabled) as bar:
            while self.state.stage < len(self.stages):
                stage = self.stages[self.state.stage]
                outcome = self._run_epoch(stage, bar)
                stage_done = outcome == "stage_steps"
                if outcome == "epoch":
                    self.state.epoch += 1
                    self.state.batch = 0
                    self.state.epochs_completed += 1
                    self._fire("epoch_end")
                    if self.val_dataset is not None and self._evaluate_and_track():
                        outcome = "early_stop"
                    stage_done = stage.epochs is not None and self.state.epoch >= stage.epochs
                elif (outcome in ("stage_steps", "max_steps") and self.val_dataset is not None
                      and self._last_eval_step != self.state.global_step):
                    if self._evaluate_and_track():  # step-limited stages end with an eval too
                        outcome = "early_stop"
                if stage_done:
                    self.state.stage += 1
                    self.state.epoch = self.state.batch = self.state.stage_steps = 0
                if outcome in ("max_steps", "early_stop"):
                    break
                self._save_last()
        self.state.finished = True
        self._save_last()

    def _run_epoch(self, stage: CurriculumStage, bar: Progress) -> str:
        """Run (the rest of) one epoch; return why it ended: ``"epoch"``, ``"stage_steps"``,
        ``"max_steps"`` or ``"early_stop"``."""
        state = self.state
        self._fire("epoch_start")
        self._sync_wrapper()
        streaming = is_streaming(self.train_dataset)
        batches = iter(train_batches(
            self.train_dataset, key=(self.config.seed, state.stage, state.epoch),
            micro_batch_size=stage.micro_batch_size, max_length=stage.max_length,
            start=state.batch, context=self.context, pad_token_id=self.config.pad_token_id,
            num_workers=self.num_workers, epoch=state.epochs_completed))
        known = None if streaming else micro_batches_per_epoch(
            self.train_dataset, stage.micro_batch_size, self.context)
        pending, any_batch = 0, False
        while True:
            item = next(batches, None)
            if streaming and self.context.is_distributed:  # stop when any rank runs dry
                alive = torch.tensor([float(item is not None)])
                if float(all_reduce_sum(alive, self.context)) < self.context.world_size:
                    item = None
            if item is None:
                break
            number, batch = item
            any_batch = True
            boundary = (pending + 1 == stage.gradient_accumulation_steps
                        or (known is not None and number + 1 == known))
            self._micro_step(batch, number, stage, sync=boundary)
            pending += 1
            if boundary:
                outcome = self._optimizer_step(stage, number + 1, pending, bar)
                pending = 0
                if outcome:
                    return outcome
        if pending:  # a stream's last, short accumulation group
            outcome = self._optimizer_step(stage, state.batch + pending, pending, bar)
            if outcome:
                return outcome
        if not any_batch and state.batch == 0:
            hint = (f"; a stream is split across the {self.context.world_size} ranks, so it "
                    "needs at least one row per rank"
                    if streaming and self.context.is_distributed else "")
            raise TrainingError(f"stage {state.stage} epoch {state.epoch}: the training data "
                                f"yielded no batches{hint}")
        return "epoch"

    def _micro_step(self, batch: dict[str, torch.Tensor], number: int, stage: CurriculumStage,
                    sync: bool) -> None:
        batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()
                 if isinstance(value, torch.Tensor)}
        generator = batch_generator(self.config.seed, self.state.stage, self.state.epoch,
                                    number, 1)
        no_sync = (self._wrapped.no_sync() if not sync and self.context.is_distributed
                   else contextlib.nullcontext())
        with no_sync:
            with self._autocast():
                loss, _ = compute_loss(self._wrapped, batch, self.objective, generator)
            (loss / stage.gradient_accumulation_steps).backward()
        self._step_loss += float(loss.detach())
        self._step_tokens += int(model_inputs(batch)["attention_mask"].sum())

    def _optimizer_step(self, stage: CurriculumStage, next_batch: int, micro_batches: int,
                        bar: Progress) -> str | None:
        state = self.state
        step = state.global_step + 1
        totals = torch.tensor([self._step_loss, micro_batches, self._step_tokens],
                              dtype=torch.float64)
        all_reduce_sum(totals, self.context)
        self._step_loss, self._step_tokens = 0.0, 0
        loss, tokens = float(totals[0] / totals[1]), int(totals[2])
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                                         self.config.max_grad_norm))
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            last = self.checkpoint_dir if self.checkpoint_dir.is_dir() else "none yet"
            raise TrainingError(
                f"non-finite loss ({loss}) or gradient norm ({grad_norm}) at step {step} "
                f"(stage {state.stage}, epoch {state.epoch}, batch {next_batch - 1}); the weights "
                f"were not updated and the last good checkpoint is {last}. Lower the learning "
                "rate or max_grad_norm, or check the data")
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        state.global_step, state.batch = step, next_batch
        state.stage_steps += 1
        state.tokens_seen += tokens
        self._window["loss"] += loss
        self._window["steps"] += 1
        self._window["tokens"] += tokens
        bar.update(1, loss=f"{loss:.4f}")
        # Every log_steps, and at the last step, so that even a short run has a metrics record.
        if step % self.log_steps == 0 or step == self.total_steps or (
                self.max_steps and step >= self.max_steps):
            self._log_window(stage, grad_norm)
        self._fire("step_end")
        outcome = None
        if self.eval_steps and step % self.eval_steps == 0 and self.val_dataset is not None:
            if self._evaluate_and_track():
                outcome = "early_stop"
        if self.save_steps and step % self.save_steps == 0:
            self._save_last()
        self._check_stop()
        if self.max_steps and step >= self.max_steps:
            outcome = outcome or "max_steps"
        if stage.steps is not None and state.stage_steps >= stage.steps:
            outcome = outcome or "stage_steps"
        return outcome

    def _log_window(self, stage: CurriculumStage, grad_norm: float) -> None:
        window = self._window
        elapsed = max(time.monotonic() - window["start"], 1e-9)
        self.log.append({
            "step": self.state.global_step, "epoch": self.state.epochs_completed,
            "stage": self.state.stage, "max_length": stage.max_length,
            "loss": window["loss"] / window["steps"], "lr": self.scheduler.get_last_lr()[0],
            "grad_norm": grad_norm, "tokens_per_s": window["tokens"] / elapsed,
            "tokens_seen": self.state.tokens_seen})
        window.update(loss=0.0, steps=0, tokens=0, start=time.monotonic())

    def _check_stop(self) -> None:
        flag = torch.tensor([1.0 if self._stop_reason else 0.0])
        if float(all_reduce_sum(flag, self.context)) == 0:
            return
        reason = self._stop_reason or "a signal on another rank"
        self._stop_reason = None
        self._save_last()
        raise TrainingPreempted(self.state.global_step, self.checkpoint_dir, reason)

    def _finish(self) -> None:
        best = self.output_dir / "best" / "model.safetensors"
        if self.load_best_at_end and self.val_dataset is not None and best.is_file():
            self.model.load_state_dict(load_file(str(best), device=str(self.device)))
        self._fire("train_end")  # the final weights, before they are saved
        if self.context.is_main and hasattr(self.model, "save_pretrained"):
            self.save_model(self.model_dir)
        barrier(self.context)
