"""``finetune --auto``: the learning rate and the number of epochs chosen on validation data.

Defaults tuned on one task did not transfer to others (issue 20), and with a few thousand
labelled sequences a small validation-based choice is affordable. :func:`auto_finetune` trains
one candidate per learning rate of a small grid (by default 1/3, 1 and 3 times the configured
backbone and head rates, their ratio kept), evaluates it at every epoch on a validation part,
and takes the (learning rate, epoch count) with the best validation metric: AUROC for two
classes, accuracy for more, loss for scores (:func:`auto_metric`), unless one is named.

Without validation data the part is a seeded share of the training rows (per class of sequence
labels, whole windows of per-base data; :func:`~.threshold.carve_validation`), and the final
model is retrained on all training rows, from the same pretrained start and seed, with the
chosen rate for the chosen number of epochs. A binary head then keeps the decision threshold
its chosen candidate found on the validation part (unless ``val_fraction`` holds out a part
of the final training for its own). With validation data the best candidate's weights are kept.
Cost: about ``len(grid) + 1`` trainings (``len(grid)`` with validation data). On the example
promoters (1,600 training sequences, hyena-glt-base, 2 epochs, seeds 0-2, one thread) it took
3.3x the wall time and did not beat the configured rate the defaults were tuned with (test
AUROC 0.901 vs 0.906): the rates' validation AUROCs differed by 0.004-0.02, within the noise
of 240 sequences.

The choice and every candidate's score by epoch go into ``config.extra["auto"]``. Candidates
run in ``RUN_DIR/auto/`` and are removed afterwards, on failure too (a preempted search starts
again); the choice is kept in ``RUN_DIR/auto.json`` until the final model is written, so a
preempted final training resumes without repeating the search.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError, TrainingError
from ..evaluation.metrics import THRESHOLD_KEY
from ..io import atomic_file, remove_empty
from ..model import HyenaGLTForRegression, HyenaGLTForTokenClassification
from .batching import is_streaming
from .finetune import TASK_MODELS, FineTuner
from .objectives import IGNORE_INDEX
from .state import TrainingPreempted
from .threshold import carve_validation
from .trainer import HyenaGLTTrainer

__all__ = ["auto_finetune", "auto_metric", "learning_rate_grid", "AUTO_KEY", "GRID_FACTORS",
           "DEFAULT_VAL_FRACTION"]

logger = logging.getLogger(__name__)

#: ``config.extra`` key of the record of the choice.
AUTO_KEY = "auto"
#: The default grid: these multiples of the configured backbone and head learning rates.
GRID_FACTORS = (1 / 3, 1.0, 3.0)
#: Share of the training rows held out for the choice when no validation data is given.
DEFAULT_VAL_FRACTION = 0.15


def auto_metric(finetuner: FineTuner) -> str:
    """The validation metric of the choice: ``eval_auroc`` for two classes (threshold-free),
    ``eval_accuracy`` for more, ``eval_loss`` for regression and variant scores."""
    classes = finetuner.config.num_classes
    if TASK_MODELS[finetuner.task_type] is HyenaGLTForRegression or classes == 1:
        return "eval_loss"
    return "eval_auroc" if classes == 2 else "eval_accuracy"


def learning_rate_grid(finetuner: FineTuner, learning_rates: Sequence[float] | None = None
                       ) -> list[tuple[float, float]]:
    """``(backbone, head)`` learning rates of the candidates, lowest first.

    Args:
        learning_rates: backbone rates to try; default :data:`GRID_FACTORS` times the
            configured one. The head keeps its configured ratio to the backbone.

    Raises:
        ConfigurationError: an empty grid, a rate that is not a positive number, a repeat.
    """
    rates = [finetuner.backbone_lr * factor for factor in GRID_FACTORS] \
        if learning_rates is None else list(learning_rates)
    if not rates:
        raise ConfigurationError("--auto-lrs: give at least one learning rate, e.g. "
                                 "--auto-lrs 3e-4,1e-3,3e-3")
    for rate in rates:
        if not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
            raise ConfigurationError(f"--auto-lrs: {rate!r} is not a learning rate > 0")
    if len(set(rates)) < len(rates):
        raise ConfigurationError(f"--auto-lrs {','.join(f'{r:g}' for r in rates)}: a learning "
                                 "rate repeats; each candidate costs a training")
    ratio = finetuner.head_lr / finetuner.backbone_lr
    return [(float(rate), float(rate) * ratio) for rate in sorted(rates)]


def _carve(finetuner: FineTuner, dataset: Any, fraction: float) -> tuple[Any, Any, str]:
    """``(train part, validation part, where it came from)`` for the choice."""
    if not 0 < fraction < 1:
        raise ConfigurationError(f"--auto-val-fraction {fraction!r}: give a share in (0, 1)")
    if is_streaming(dataset):
        raise ConfigurationError("--auto holds out a validation part of the training rows, "
                                 "which a stream cannot give; pass validation data (--val)")
    model_class = TASK_MODELS[finetuner.task_type]
    per_base = model_class is HyenaGLTForTokenClassification
    stratify = not per_base and auto_metric(finetuner) != "eval_loss"
    parts = carve_validation(dataset, fraction, finetuner.config.seed, stratify=stratify)
    if parts is None:
        raise ConfigurationError(f"{len(dataset)} training rows: too few for --auto to hold "
                                 "out a validation part; pass validation data (--val)")
    unit = "windows" if per_base else "sequences"
    logger.info("auto: holding out %d of %d training %s to choose the learning rate and "
                "epochs (fraction %g, seed %d)", len(parts[1]), len(dataset), unit, fraction,
                finetuner.config.seed)
    return parts[0], parts[1], (f"{fraction:g} of the training {unit} (seed "
                                f"{finetuner.config.seed})")


def _both_classes(dataset: Any) -> bool:
    """Whether the labelled rows (sequences) or bases (per-base windows) of a map-style
    ``dataset`` hold both classes; True for a stream, which is not read here."""
    if is_streaming(dataset):
        return True
    labels = getattr(dataset, "labels", None)
    if not (isinstance(labels, np.ndarray) and labels.ndim == 1):
        labels = np.concatenate([np.ravel(dataset[i]["labels"]) for i in range(len(dataset))])
    return len(np.setdiff1d(np.unique(labels), [IGNORE_INDEX])) >= 2


def _epoch_scores(trainer: HyenaGLTTrainer, metric: str, epoch_ends: set[int]
                  ) -> dict[int, float]:
    """Validation score by epochs trained; an evaluation that ends a run mid-epoch (max_steps)
    counts that epoch."""
    scores = {}
    for record in trainer.history:
        if metric in record:
            epochs = record["epoch"] + (record["step"] not in epoch_ends)
            scores[epochs] = float(record[metric])
    return scores


def _run_candidate(template: FineTuner, rates: tuple[float, float], folder: Path, train: Any,
                   val: Any, metric: str, num_epochs: int | None, kwargs: dict[str, Any]
                   ) -> tuple[dict[str, Any], FineTuner | None]:
    """Train one candidate; ``(its record, the trained FineTuner or None if it failed)``."""
    finetuner = copy.deepcopy(template)  # the same pretrained start and head initialisation
    finetuner.backbone_lr, finetuner.head_lr = rates
    entry: dict[str, Any] = {"learning_rate": rates[0], "head_lr": rates[1]}
    epoch_ends: set[int] = set()

    def note_epoch_end(trainer: HyenaGLTTrainer, event: str) -> None:
        if event == "epoch_end":
            epoch_ends.add(trainer.state.global_step)

    callbacks = [*kwargs.get("callbacks", ()), note_epoch_end]
    started = time.monotonic()
    try:
        finetuner.finetune(train, val, num_epochs=num_epochs, **{
            **kwargs, "output_dir": folder, "model_dir": folder / "model", "eval_steps": None,
            "metric_for_best": metric, "callbacks": callbacks})
    except TrainingPreempted:
        raise
    except TrainingError as err:  # e.g. a rate too high for this task: a non-finite loss
        return {**entry, "error": str(err)}, None
    entry["seconds"] = round(time.monotonic() - started, 1)
    assert finetuner.trainer is not None
    scores = {epochs: score for epochs, score in
              _epoch_scores(finetuner.trainer, metric, epoch_ends).items()
              if math.isfinite(score)}
    if not scores:
        return {**entry, "error": f"no finite {metric} on the validation part"}, None
    sign = 1 if finetuner.trainer.greater_is_better else -1
    best = max(sorted(scores), key=lambda epochs: sign * scores[epochs])  # ties: fewer epochs
    entry.update(scores=[scores.get(e) for e in range(1, max(scores) + 1)], best_epoch=best,
                 score=scores[best])
    return entry, finetuner


def _search(template: FineTuner, grid: list[tuple[float, float]], train: Any, val: Any,
            folder: Path, metric: str, num_epochs: int | None, kwargs: dict[str, Any]
            ) -> tuple[list[dict[str, Any]], FineTuner, dict[str, Any]]:
    """Every candidate's record, the chosen candidate and its record (the caller removes
    ``folder``, where the candidates ran)."""
    candidates: list[dict[str, Any]] = []
    chosen: tuple[FineTuner, dict[str, Any]] | None = None
    for index, rates in enumerate(grid):
        entry, trained = _run_candidate(template, rates, folder / f"candidate-{index}", train,
                                        val, metric, num_epochs, kwargs)
        candidates.append(entry)
        head = f"auto: candidate {index + 1}/{len(grid)}, learning rate {rates[0]:.3g} " \
               f"(head {rates[1]:.3g})"
        if trained is None:
            logger.warning("%s failed: %s", head, entry["error"])
            continue
        logger.info("%s: %s by epoch %s -> %.4f at epoch %d (%.0f s)", head, metric,
                    ", ".join("-" if s is None else f"{s:.4f}" for s in entry["scores"]),
                    entry["score"], entry["best_epoch"], entry["seconds"])
        assert trained.trainer is not None
        sign = 1 if trained.trainer.greater_is_better else -1
        if chosen is None or sign * entry["score"] > sign * chosen[1]["score"]:
            chosen = (trained, entry)  # ties keep the lower rate
    if chosen is None:
        raise TrainingError(f"every --auto candidate failed; the first: "
                            f"{candidates[0]['error']}")
    return candidates, *chosen


def _saved_choice(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The choice a preempted run of the same settings saved, else None."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) and saved.get("key") == key else None


def auto_finetune(finetuner: FineTuner, train_dataset: Any, val_dataset: Any = None, *,
                  num_epochs: int | None = None,
                  learning_rates: Sequence[float] | None = None,
                  validation_fraction: float = DEFAULT_VAL_FRACTION, metric: str | None = None,
                  output_dir: str | Path | None = None, model_dir: str | Path | None = None,
                  **finetune_kwargs: Any) -> FineTuner:
    """Choose the learning rate and epochs on validation data, then train (module docstring).

    Args:
        finetuner: an untrained :class:`FineTuner`, the start of every candidate.
        val_dataset: validation data; without it ``validation_fraction`` of the training rows
            is held out for the choice and the final model retrained on all of them.
        num_epochs: epochs of each candidate, the most the choice can give (default the
            config's ``num_epochs``).
        learning_rates: backbone rates of the grid (:func:`learning_rate_grid`).
        metric: validation metric of the choice (default :func:`auto_metric`).
        output_dir: the run directory (default ``finetuner.output_dir``); model_dir: where the
            final model goes (default ``output_dir/model``).
        **finetune_kwargs: passed to :meth:`FineTuner.finetune` (``val_fraction`` there is a
            part the final training holds out for its own threshold and best model).

    Returns:
        The FineTuner of the final model (``.model``, ``.trainer`` for a test evaluation).

    Raises:
        ConfigurationError: a bad grid or fraction, a stream without validation data, too few
            rows. TrainingError: every candidate failed.
    """
    if finetuner.trainer is not None:
        raise ConfigurationError("auto_finetune needs an untrained FineTuner: every candidate "
                                 "starts from its weights")
    run_dir = Path(output_dir) if output_dir is not None else finetuner.output_dir
    model_dir = Path(model_dir) if model_dir is not None else run_dir / "model"
    metric = metric or auto_metric(finetuner)
    grid = learning_rate_grid(finetuner, learning_rates)
    retrain = val_dataset is None
    if retrain:
        train, val, source = _carve(finetuner, train_dataset, validation_fraction)
    else:
        train, val, source = train_dataset, val_dataset, "validation data"
    if metric == "eval_auroc" and not _both_classes(val):
        logger.warning("auto: the validation part holds one class only: no AUROC, choosing by "
                       "eval_loss")
        metric = "eval_loss"
    key = {"grid": [list(rates) for rates in grid], "metric": metric,
           "epochs": num_epochs or finetuner.config.num_epochs, "seed": finetuner.config.seed,
           "rows": len(train_dataset), "fraction": validation_fraction,
           "strategy": finetuner.strategy}
    state_file = run_dir / "auto.json"
    saved = _saved_choice(state_file, key) if retrain else None
    if saved is not None:
        logger.info("auto: the choice saved by an earlier run of these settings (%s): %s",
                    state_file, saved["record"]["chosen"])
    else:
        logger.info("auto: %d candidates (learning rates %s), up to %s epochs each, chosen by "
                    "%s on %d validation rows", len(grid), ", ".join(f"{b:.3g}" for b, _ in grid),
                    key["epochs"], metric, len(val))
        folder = run_dir / "auto"
        shutil.rmtree(folder, ignore_errors=True)  # left over by a killed run
        try:
            candidates, best, entry = _search(finetuner, grid, train, val, folder, metric,
                                              num_epochs, finetune_kwargs)
            assert best.trainer is not None
            record = {"metric": metric, "greater_is_better": best.trainer.greater_is_better,
                      "validation": {"source": source, "size": len(val)},
                      "train_examples": len(train), "candidates": candidates,
                      "chosen": {"learning_rate": entry["learning_rate"],
                                 "head_lr": entry["head_lr"], "epochs": entry["best_epoch"],
                                 "score": entry["score"]}}
            logger.info("auto: chose learning rate %.3g (head %.3g), %d epochs: %s %.4f",
                        entry["learning_rate"], entry["head_lr"], entry["best_epoch"], metric,
                        entry["score"])
            if not retrain:  # the best candidate's weights (and threshold) are the model
                record["final"] = {"retrained": False, "train_examples": len(train),
                                   "epochs": entry["best_epoch"]}
                best.model.config = best.config = best.config.replace(
                    extra={**best.config.extra, AUTO_KEY: record})
                best.trainer.save_model(model_dir)
                return best
            saved = {"key": key, "record": record, "threshold": _carried_threshold(best, source)}
            with atomic_file(state_file) as tmp:
                tmp.write_text(json.dumps(saved, indent=2) + "\n")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            remove_empty([run_dir])  # with --val nothing else goes there
    _retrain(finetuner, train_dataset, saved["record"], saved["threshold"], run_dir, model_dir,
             finetune_kwargs)
    state_file.unlink(missing_ok=True)
    return finetuner


def _carried_threshold(candidate: FineTuner, source: str) -> dict[str, Any]:
    """The decision-threshold entries of the chosen candidate, for the retrained model."""
    threshold = {name: value for name, value in candidate.config.extra.items()
                 if name.startswith(THRESHOLD_KEY)}
    validation = f"{THRESHOLD_KEY}_validation"
    if validation in threshold:
        threshold[validation] = {**threshold[validation], "source": (
            f"{source}, scored by the chosen --auto candidate (trained without them) before "
            "the final model was retrained on all rows")}
    return threshold


def _retrain(finetuner: FineTuner, dataset: Any, record: dict[str, Any],
             threshold: dict[str, Any], run_dir: Path, model_dir: Path,
             kwargs: dict[str, Any]) -> None:
    """Train ``finetuner`` on all ``dataset`` rows with the chosen rate and epochs; the
    record (and the candidate's threshold) go into the saved config."""
    chosen = record["chosen"]
    finetuner.backbone_lr, finetuner.head_lr = chosen["learning_rate"], chosen["head_lr"]

    def store(trainer: HyenaGLTTrainer, event: str) -> None:
        if event != "train_end":
            return
        final = {"retrained": True, "train_examples": len(trainer.train_dataset),
                 "epochs": chosen["epochs"]}
        config = finetuner.model.config
        finetuner.model.config = finetuner.config = config.replace(extra={
            **config.extra, **threshold, AUTO_KEY: {**record, "final": final}})

    callbacks: list[Callable[[HyenaGLTTrainer, str], None]] = [*kwargs.get("callbacks", ()),
                                                               store]
    logger.info("auto: training the final model on all %d training rows", len(dataset))
    finetuner.finetune(dataset, None, num_epochs=chosen["epochs"], **{
        **kwargs, "output_dir": run_dir, "model_dir": model_dir,
        "metric_for_best": record["metric"], "callbacks": callbacks})
