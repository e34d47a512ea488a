"""Resumable training checkpoints without pickle: safetensors for tensors, JSON for the rest.

A checkpoint is a directory, written under a temporary name and renamed into place when
complete (:func:`hyena_glt.io.atomic_directory`), so a job killed while saving leaves the
previous checkpoint intact::

    model.safetensors       model state dict
    optimizer.safetensors   optimizer tensors, keyed "<param index>.<name>" (exp_avg, step, ...)
    rng.safetensors         torch CPU/CUDA generator states, numpy's MT19937 key
    state.json              optimizer groups, scheduler, python/numpy RNG scalars and the
                            trainer's position (step, curriculum stage, epoch, batch, seed)

Loading reads only tensors and JSON, so a checkpoint from an untrusted source cannot run code.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import TrainingError
from ..io import atomic_directory, atomic_file

__all__ = ["CHECKPOINT_FORMAT", "save_training_checkpoint", "load_training_checkpoint",
           "capture_rng_state", "restore_rng_state", "save_state_dict", "load_state_dict"]

logger = logging.getLogger(__name__)

#: Version of the layout above; bumped on incompatible changes.
CHECKPOINT_FORMAT = 1
_STATE = "state.json"


def save_state_dict(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors file of ``tensors`` (shared storage is copied: safetensors refuses aliases)."""
    save_file({key: value.detach().to("cpu").clone().contiguous()
               for key, value in tensors.items()}, str(path))


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (OSError, SafetensorError) as err:
        raise TrainingError(f"{path}: unreadable checkpoint tensors ({err})") from None


def capture_rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, JSON) describing every random generator a training step touches."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda.{index}"] = state
    algorithm, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    scalars = {
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "numpy": {"algorithm": algorithm, "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
    }
    return tensors, scalars


def restore_rng_state(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda_states = [tensors[f"torch_cuda.{i}"] for i in range(len(tensors))
                   if f"torch_cuda.{i}" in tensors]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[:torch.cuda.device_count()])
    numpy = scalars["numpy"]
    np.random.set_state((numpy["algorithm"], tensors["numpy_keys"].numpy().astype(np.uint32),
                         numpy["position"], numpy["has_gauss"], numpy["cached_gaussian"]))
    python = scalars["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))


def _split_optimizer_state(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _join_optimizer_state(tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in data["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [{**group, "betas": tuple(group["betas"])} if "betas" in group else group
              for group in data["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_training_checkpoint(
    directory: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    trainer_state: dict[str, Any],
) -> Path:
    """Write a checkpoint directory atomically (an existing one is replaced) and return it."""
    directory = Path(directory)
    optimizer_tensors, optimizer_json = _split_optimizer_state(optimizer.state_dict())
    rng_tensors, rng_json = capture_rng_state()
    state = {"format": CHECKPOINT_FORMAT, "trainer": trainer_state, "optimizer": optimizer_json,
             "scheduler": scheduler.state_dict(), "rng": rng_json}
    with atomic_directory(directory) as tmp:
        save_state_dict(model.state_dict(), tmp / "model.safetensors")
        save_state_dict(optimizer_tensors, tmp / "optimizer.safetensors")
        save_state_dict(rng_tensors, tmp / "rng.safetensors")
        with atomic_file(tmp / _STATE) as path:
            path.write_text(json.dumps(state, indent=1) + "\n")
    logger.info("saved checkpoint %s", directory)
    return directory


def load_training_checkpoint(
    directory: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (and optimizer/scheduler/RNGs); return the trainer state.

    Raises:
        TrainingError: missing or unreadable files, another format version, or model keys
            that do not match (named).
    """
    directory = Path(directory)
    state_path = directory / _STATE
    try:
        state = json.loads(state_path.read_text())
    except FileNotFoundError:
        raise TrainingError(f"{directory}: not a training checkpoint (no {_STATE})") from None
    except (OSError, json.JSONDecodeError) as err:
        raise TrainingError(f"{state_path}: unreadable checkpoint state ({err})") from None
    if state.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{state_path}: checkpoint format {state.get('format')!r}; this "
                            f"version reads format {CHECKPOINT_FORMAT}")
    weights = load_state_dict(directory / "model.safetensors")
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise TrainingError(f"{directory}: checkpoint does not fit the model: missing "
                            f"{sorted(missing)}, unexpected {sorted(unexpected)}")
    if optimizer is not None:
        tensors = load_state_dict(directory / "optimizer.safetensors")
        try:
            optimizer.load_state_dict(_join_optimizer_state(tensors, state["optimizer"]))
        except (ValueError, KeyError) as err:
            raise TrainingError(f"{directory}: optimizer state does not fit ({err})") from None
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng:
        restore_rng_state(load_state_dict(directory / "rng.safetensors"), state["rng"])
    return state["trainer"]
