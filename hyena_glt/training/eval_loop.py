"""One pass over an evaluation set -> ``{"eval_loss": ..., "eval_accuracy": ..., ...}``.

Supervised models: predictions are gathered and scored by
:meth:`hyena_glt.evaluation.GenomicMetrics.compute_all`; the task family is inferred from the
labels (float -> regression, ``(B,)`` integers -> classification, ``(B, L)`` -> per-base
classification, scored over positions that are real and labelled) unless ``task_type`` names
it. Language models: cross-entropy, perplexity, bits per token and accuracy from
``GenomicMetrics.language_model``, token-weighted over batches. Only scalar metrics are kept
(they go to ``metrics.jsonl``). A binary model that stores a decision threshold
(``config.extra["decision_threshold"]``) is scored with its calls at that threshold.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ..evaluation.metrics import TASK_FAMILIES, GenomicMetrics, stored_threshold
from .objectives import IGNORE_INDEX, batch_generator, is_paired, mask_tokens, model_inputs

__all__ = ["evaluate_model"]


def _infer_family(labels: torch.Tensor) -> str:
    if labels.is_floating_point():
        return "regression"
    return "token_classification" if labels.dim() == 2 else "classification"


def _scalars(results: dict[str, Any]) -> dict[str, float]:
    return {f"eval_{key}": float(value) for key, value in results.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}


@torch.no_grad()
def _language_model(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                    objective: str, to_device: Callable, autocast: Callable) -> dict[str, float]:
    metrics = GenomicMetrics()
    tokens = cross_entropy = correct = 0.0
    for number, batch in enumerate(batches):
        inputs = model_inputs(batch)
        input_ids, attention_mask = to_device(inputs["input_ids"]), to_device(
            inputs["attention_mask"])
        if objective == "masked_lm":
            inputs, targets = mask_tokens(input_ids, attention_mask, batch_generator(0, number))
            with autocast():
                logits = model(input_ids=inputs, attention_mask=attention_mask).logits
            mask = targets != IGNORE_INDEX
        else:
            with autocast():
                logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
            logits, targets, mask = logits[:, :-1], input_ids[:, 1:], attention_mask[:, 1:]
        if not mask.any():
            continue
        result = metrics.language_model(logits.float(), targets.masked_fill(~mask.bool(),
                                        IGNORE_INDEX), attention_mask=mask)
        tokens += result["n_tokens"]
        cross_entropy += result["cross_entropy"] * result["n_tokens"]
        correct += result["accuracy"] * result["n_tokens"]
    if not tokens:
        return {"eval_loss": math.nan}
    loss = cross_entropy / tokens
    return {"eval_loss": loss, "eval_perplexity": math.exp(loss),
            "eval_bits_per_token": loss / math.log(2), "eval_accuracy": correct / tokens,
            "eval_n_tokens": tokens}


@torch.no_grad()
def _supervised(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                task_type: str | None, to_device: Callable, autocast: Callable
                ) -> dict[str, float]:
    predictions, targets = [], []
    loss_sum, count = 0.0, 0
    for batch in batches:
        inputs = {key: to_device(value) for key, value in
                  model_inputs(batch, paired=is_paired(model)).items()}
        attention_mask = inputs["attention_mask"]
        labels = to_device(batch["labels"])
        with autocast():
            output = model(**inputs, labels=labels)
        logits = output.logits.float()
        loss_sum += float(output.loss) * len(labels)
        count += len(labels)
        if labels.dim() == 2 and not labels.is_floating_point():  # per-base: real positions
            keep = (labels != IGNORE_INDEX) & attention_mask.bool()
            logits, labels = logits[keep], labels[keep]
        predictions.append(logits.cpu())
        targets.append(labels.cpu())
    if not count:
        return {"eval_loss": math.nan}
    preds, tgts = torch.cat(predictions), torch.cat(targets)
    family = TASK_FAMILIES.get(task_type, None) if task_type else None
    if family in (None, "language_model", "variant_effect", "token_classification"):
        family = _infer_family(tgts)
        if family == "token_classification":  # flattened above
            family = "classification"
    if family == "regression" and preds.dim() == 2 and preds.shape[1] == 1:
        preds = preds[:, 0]
    names = getattr(getattr(model, "config", None), "id2label", None)
    kwargs = {}
    if family == "classification" and names and len(names) == preds.shape[-1]:
        kwargs["label_names"] = [names[i] for i in range(len(names))]
    threshold = stored_threshold(getattr(model, "config", None))
    if family == "classification" and threshold is not None and preds.shape[-1] == 2:
        kwargs["decision_threshold"] = threshold  # a model's own calls, as predict makes them
    results = getattr(GenomicMetrics(), family)(preds, tgts, **kwargs)
    return {"eval_loss": loss_sum / count, **_scalars(results)}


def evaluate_model(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], *,
                   objective: str, task_type: str | None, device: torch.device,
                   autocast: Callable[[], contextlib.AbstractContextManager]
                   ) -> dict[str, float]:
    """Scalar metrics of ``model`` over ``batches`` (the model is left in eval mode)."""
    model.eval()

    def to_device(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(device, non_blocking=True)

    if objective in ("causal_lm", "masked_lm"):
        return _language_model(model, batches, objective, to_device, autocast)
    return _supervised(model, batches, task_type, to_device, autocast)
