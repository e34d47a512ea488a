"""Save/load shared by every model: ``config.json`` + ``model.safetensors``, never pickle.

Loading is strict by default: missing keys, unexpected keys and shape mismatches are all named
in one :class:`ModelError`. A task model can take just the backbone of another architecture's
checkpoint (``backbone_only=True`` / :func:`load_backbone`), which is how a pretrained causal LM
becomes the start of a classifier.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import HyenaGLTConfig
from ..errors import ConfigurationError, HyenaGLTWarning, ModelError
from ..io import atomic_directory

__all__ = ["WEIGHTS_NAME", "TOKENIZER_NAME", "HyenaGLTPreTrainedModel", "load_backbone",
           "load_state_checked"]

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"
_BACKBONE_PREFIX = "backbone."
#: Checkpoints whose backbone is the point (pretraining outputs): any task model starts there.
_PRETRAINED_ARCHITECTURES = ("HyenaGLTForCausalLM", "HyenaGLTModel")

ModelT = TypeVar("ModelT", bound="HyenaGLTPreTrainedModel")


def load_state_checked(module: nn.Module, state: dict[str, torch.Tensor], source: str,
                       strict: bool = True) -> None:
    """Load ``state`` into ``module``; raise :class:`ModelError` naming every bad key.

    Shape mismatches always raise; missing/unexpected keys raise when ``strict`` and are
    logged otherwise. Keys a module lists in ``optional_state_keys`` (state added after older
    checkpoints were written) may be missing: they keep their initial values.
    """
    own = module.state_dict()
    optional = {f"{name}.{key}".lstrip(".") for name, child in module.named_modules()
                for key in getattr(child, "optional_state_keys", ())}
    missing = sorted(set(own) - set(state) - optional)
    unexpected = sorted(set(state) - set(own))
    mismatched = [f"{key} (checkpoint {tuple(state[key].shape)}, model {tuple(own[key].shape)})"
                  for key in sorted(set(own) & set(state)) if state[key].shape != own[key].shape]
    problems = []
    if mismatched:
        problems.append(f"shape mismatch: {', '.join(mismatched)}")
    if strict and missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if problems:
        raise ModelError(f"{source}: cannot load into {type(module).__name__}: "
                         + "; ".join(problems) + " (was it saved with a different config?)")
    if missing or unexpected:
        logger.warning("%s: loaded non-strictly; missing %s, unexpected %s", source,
                       missing, unexpected)
    module.load_state_dict({key: value for key, value in state.items() if key in own},
                           strict=False)


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    path = directory / WEIGHTS_NAME
    if not path.is_file():
        raise ModelError(f"{path}: no weights file; expected a directory written by "
                         "save_pretrained")
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError) as err:
        raise ModelError(f"{path}: cannot read safetensors weights ({err})") from None


def _backbone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The backbone's tensors of a task checkpoint (prefix stripped), or a bare backbone's."""
    if any(key.startswith(_BACKBONE_PREFIX) for key in state):
        return {key[len(_BACKBONE_PREFIX):]: value for key, value in state.items()
                if key.startswith(_BACKBONE_PREFIX)}
    return state


def load_backbone(model: HyenaGLTPreTrainedModel, directory: str | Path,
                  strict: bool = True) -> HyenaGLTPreTrainedModel:
    """Load the backbone weights of any saved Hyena-GLT model into ``model``'s backbone.

    The head of ``model`` is left as it is. Returns ``model``.
    """
    directory = Path(directory)
    return _load_backbone_state(model, _read_weights(directory), str(directory), strict)


def _load_backbone_state(model: ModelT, state: dict[str, torch.Tensor], source: str,
                         strict: bool) -> ModelT:
    target = getattr(model, "backbone", model)
    load_state_checked(target, _backbone_state(state), source, strict)
    return model


class HyenaGLTPreTrainedModel(nn.Module):
    """Base of all Hyena-GLT models: holds the config; save/load; parameter count.

    Subclasses take ``input_ids (B, L)`` int64 and ``attention_mask (B, L)`` (1 = real token)
    and return an output dataclass (:mod:`hyena_glt.model.outputs`).
    """

    def __init__(self, config: HyenaGLTConfig) -> None:
        super().__init__()
        if not isinstance(config, HyenaGLTConfig):
            raise ModelError(f"{type(self).__name__} needs a HyenaGLTConfig, got "
                             f"{type(config).__name__}")
        self.config = config

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (only those with ``requires_grad`` if ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    def gradient_checkpointing_enable(self) -> None:
        """Recompute block activations in the backward pass instead of storing them (long
        sequences: activation memory per block falls to its input; one extra forward)."""
        self._set_checkpointing(True)

    def gradient_checkpointing_disable(self) -> None:
        self._set_checkpointing(False)

    def _set_checkpointing(self, enabled: bool) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = enabled

    def save_pretrained(self, directory: str | Path, tokenizer: Any = None) -> Path:
        """Write ``config.json`` (architecture recorded in ``extra``) + ``model.safetensors``
        (+ ``tokenizer.json`` if a tokenizer is given).

        The directory is written under a temporary name and renamed when complete, replacing
        any previous one as a whole.
        """
        name = type(self).__name__
        config = self.config.replace(extra={**self.config.extra, "architecture": name})
        state = {key: value.detach().cpu().contiguous() for key, value in
                 self.state_dict().items()}
        with atomic_directory(directory) as tmp:
            config.save_pretrained(tmp)
            save_file(state, str(tmp / WEIGHTS_NAME), metadata={"architecture": name})
            if tokenizer is not None:
                tokenizer.save(tmp / TOKENIZER_NAME)
        return Path(directory)

    @classmethod
    def from_pretrained(cls: type[ModelT], name_or_dir: str | Path, strict: bool = True,
                        backbone_only: bool = False, **config_overrides: Any) -> ModelT:
        """Build ``cls`` from a ``save_pretrained`` directory or a registered model name.

        A pretrained model (causal LM or bare backbone, e.g. ``"hyena-glt-base"``) starts any
        task model: its backbone is loaded and the new head is initialised, with a
        :class:`HyenaGLTWarning` saying so (as transformers does). A fine-tuned task model
        loads only into its own class, since its trained head would be dropped.

        Args:
            name_or_dir: the model directory, or a name of the model registry
                (:func:`hyena_glt.training.registry.resolve_model`).
            strict: every key must match (shape mismatches always raise).
            backbone_only: take only the backbone of a checkpoint of any architecture and keep
                this class's freshly initialised head (no warning).
            **config_overrides: config fields to change first (e.g. ``num_classes=3``).

        Raises:
            ModelError: an unknown name, missing files, an unreadable config, an architecture
                mismatch, or missing/unexpected/mis-shaped weights (all named).
        """
        from ..training.registry import resolve_model  # training imports model: resolve late

        directory = Path(name_or_dir).expanduser()
        if not directory.exists() and len(directory.parts) == 1:  # a bare name: the registry
            directory = resolve_model(name_or_dir)
        state = _read_weights(directory)
        try:
            config = HyenaGLTConfig.from_pretrained(directory)
            saved_as = config.extra.get("architecture")
            if saved_as is not None and saved_as != cls.__name__ and not backbone_only:
                if saved_as not in _PRETRAINED_ARCHITECTURES and cls.__name__ != "HyenaGLTModel":
                    raise ModelError(f"{directory} holds a {saved_as}, not a {cls.__name__}; "
                                     "pass backbone_only=True to start from its backbone")
                if hasattr(cls, "_build_head"):  # a task model
                    warnings.warn(f"{cls.__name__}: backbone loaded from the {saved_as} in "
                                  f"{directory}; the task head is newly initialised and must "
                                  "be trained (backbone_only=True says so and silences this)",
                                  HyenaGLTWarning, stacklevel=2)
                backbone_only = True
            if backbone_only:
                # A new head: its k-mer path (head weights) takes this task's default, not the
                # checkpoint's setting (a base model saved with kmer_path=False has no head).
                config_overrides = {"kmer_path": None, **config_overrides}
            if config_overrides:
                config = config.replace(**config_overrides)
        except ConfigurationError as err:
            raise ModelError(f"cannot load {cls.__name__} from {directory}: {err}") from None
        model = cls(config)
        if backbone_only:
            if not config.use_dynamic_merging:  # merging turned off: its weights have no home
                state = {key: value for key, value in state.items()
                         if not key.removeprefix(_BACKBONE_PREFIX).startswith("merging.")}
            return _load_backbone_state(model, state, str(directory), strict)
        load_state_checked(model, state, str(directory), strict)
        return model
