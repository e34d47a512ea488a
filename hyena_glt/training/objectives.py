"""Training objectives and batch preparation: supervised, causal LM, masked LM.

* ``supervised``: the batch carries ``labels`` (class, value or per-base labels) and the task
  model computes its own loss.
* ``causal_lm``: next-nucleotide prediction over unlabelled windows; ``labels = input_ids``
  with padding set to -100, and ``HyenaGLTForCausalLM`` shifts them (HyenaDNA's objective).
* ``masked_lm``: BERT-style for bidirectional models (``config.bidirectional``, where
  ``HyenaGLTForCausalLM`` scores position t against token t): 15% of the real tokens are
  chosen; of those 80% become ``[MASK]`` (id 4), 10% a random token drawn from the batch's own
  real tokens (so the replacement follows the alphabet in use, DNA or protein) and 10% stay;
  labels are -100 everywhere else.
* Variant pairs (``ref_input_ids``/``alt_input_ids``, no ``input_ids``) go to a paired model
  (``paired_inputs``, i.e. ``HyenaGLTForVariantEffect``) as the alternate window plus
  ``ref_input_ids``, ``ref_attention_mask`` and ``variant_offset``; the label (class or score)
  is learned from the difference. Language-model objectives read the alternate window.

Random choices (crop offsets, masks) come from a ``torch.Generator`` the trainer seeds per
micro-batch from (seed, stage, epoch, batch index), so a resumed run draws the same ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..data.datasets import collate_batch
from ..errors import ConfigurationError, TrainingError

__all__ = ["OBJECTIVES", "IGNORE_INDEX", "MASK_TOKEN_ID", "FIRST_RESIDUE_ID", "crop_items",
           "make_collate", "mask_tokens", "model_inputs", "is_paired", "compute_loss",
           "batch_generator"]

OBJECTIVES = ("supervised", "causal_lm", "masked_lm")
IGNORE_INDEX = -100
MASK_TOKEN_ID = 4  # [MASK] in every tokenizer's id layout
FIRST_RESIDUE_ID = 7  # ids below are special tokens ([PAD], [UNK], [CLS], ...)


def batch_generator(*key: int) -> torch.Generator:
    """A CPU generator seeded from integers (seed, stage, epoch, batch), order-sensitive."""
    seed = 0
    for part in key:
        seed = (seed * 1_000_003 + int(part)) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


def crop_items(items: Sequence[Mapping[str, Any]], max_length: int | None,
               generator: torch.Generator) -> list[dict[str, Any]]:
    """Random crop of every item longer than ``max_length`` (curriculum stages).

    Every tensor whose first dimension equals the length of ``input_ids`` (per-base labels,
    masks) is cut at the same offset; other fields (a class label) are kept.
    """
    cropped = []
    for item in items:
        item = dict(item)
        length = len(item["input_ids"]) if "input_ids" in item else 0
        if max_length is not None and length > max_length:
            offset = int(torch.randint(0, length - max_length + 1, (1,), generator=generator))
            for key, value in item.items():
                if isinstance(value, torch.Tensor) and value.dim() >= 1 and len(value) == length:
                    item[key] = value[offset:offset + max_length]
        cropped.append(item)
    return cropped


def make_collate(max_length: int | None, pad_token_id: int,
                 generator_for_batch: Callable[[], torch.Generator]
                 ) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
    """collate_fn for a DataLoader: crop to the stage length, then pad (``collate_batch``)."""

    def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return collate_batch(crop_items(items, max_length, generator_for_batch()),
                             pad_token_id=pad_token_id)

    return collate


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor,
                generator: torch.Generator, probability: float = 0.15
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking of ``(B, L)`` ids -> (masked ids, labels with -100 off the chosen ones)."""
    real = (attention_mask.bool() & (input_ids >= FIRST_RESIDUE_ID)).cpu()
    ids = input_ids.cpu()
    draws = torch.rand(ids.shape, generator=generator)
    chosen = real & (draws < probability)
    if real.any() and not chosen.any():  # a short batch: still predict one token, never 0/0
        chosen.view(-1)[torch.where(real.view(-1), draws.view(-1), 2.0).argmin()] = True
    kind = torch.rand(ids.shape, generator=generator)
    replace_mask = chosen & (kind < 0.8)
    replace_random = chosen & (kind >= 0.8) & (kind < 0.9)
    pool = ids[real]
    masked = ids.clone()
    masked[replace_mask] = MASK_TOKEN_ID
    if len(pool):
        picks = torch.randint(0, len(pool), (int(replace_random.sum()),), generator=generator)
        masked[replace_random] = pool[picks]
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
    return masked.to(input_ids.device), labels.to(input_ids.device)


def model_inputs(batch: Mapping[str, torch.Tensor], paired: bool = False
                 ) -> dict[str, torch.Tensor]:
    """The model's keyword arguments from a batch: ``input_ids (B, L)``, ``attention_mask``.

    Variant pairs give their alternate window as ``input_ids``; with ``paired`` (a model with
    ``paired_inputs``) also ``ref_input_ids (B, L')``, ``ref_attention_mask`` and
    ``variant_offset (B,)``.

    Raises:
        ConfigurationError: no input ids, or ``paired`` for a batch without ref/alt windows.
    """
    pair = "input_ids" not in batch and "alt_input_ids" in batch
    if "input_ids" not in batch and not pair:
        raise ConfigurationError(f"batch has no 'input_ids' (keys: {sorted(batch)})")
    if paired and not pair:
        raise ConfigurationError("a paired variant-effect model needs ref/alt windows (a "
                                 "'variants' shard directory or VariantEffectDataset)")
    def window(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = batch[f"{prefix}input_ids"], batch.get(f"{prefix}attention_mask")
        return ids, torch.ones_like(ids) if mask is None else mask

    input_ids, attention_mask = window("alt_" if pair else "")
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    if paired:
        ref_ids, ref_mask = window("ref_")
        inputs.update(ref_input_ids=ref_ids, ref_attention_mask=ref_mask,
                      variant_offset=batch["variant_offset"])
    return inputs


def is_paired(model: nn.Module) -> bool:
    """Whether ``model`` (or the model inside a DDP wrapper) scores ref/alt pairs."""
    return bool(getattr(getattr(model, "module", model), "paired_inputs", False))


def compute_loss(model: nn.Module, batch: Mapping[str, torch.Tensor], objective: str,
                 generator: torch.Generator) -> tuple[torch.Tensor, Any]:
    """Forward ``batch`` through ``model`` under ``objective``; return (loss, model output).

    Raises:
        ConfigurationError: unknown objective, or a supervised batch without ``labels``.
        TrainingError: the model returned no loss for labelled input.
    """
    paired = objective == "supervised" and is_paired(model)
    if objective == "supervised" and not paired and "alt_input_ids" in batch:
        raise ConfigurationError(f"variant pairs (ref/alt windows) need a paired model, "
                                 f"task_type='variant_effect' (HyenaGLTForVariantEffect), not "
                                 f"{type(getattr(model, 'module', model)).__name__}")
    inputs = model_inputs(batch, paired=paired)
    input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
    if objective == "supervised":
        if "labels" not in batch:
            raise ConfigurationError("objective 'supervised' needs datasets whose items have "
                                     "'labels'; use 'causal_lm' or 'masked_lm' for unlabelled "
                                     "sequences")
        labels = batch["labels"]
    elif objective == "causal_lm":
        labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
    elif objective == "masked_lm":
        inputs["input_ids"], labels = mask_tokens(input_ids, attention_mask, generator)
    else:
        raise ConfigurationError(f"objective={objective!r}; expected one of {', '.join(OBJECTIVES)}")
    output = model(**inputs, labels=labels)
    if output.loss is None:
        raise TrainingError(f"{type(model).__name__} returned no loss for a labelled batch")
    return output.loss, output
