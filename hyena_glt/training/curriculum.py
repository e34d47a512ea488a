"""Sequence-length warm-up (HyenaDNA): train on short crops first, then longer ones.

Each stage crops every training sequence to ``max_length`` (a random window, drawn
reproducibly) and runs for ``epochs`` passes over the data or ``steps`` optimizer steps.

Batch-size rule (tokens per optimizer step stay constant, memory per micro-batch too):
with the trainer's ``batch_size`` B, ``gradient_accumulation_steps`` A and the first stage's
length L0, a stage of length L uses

    micro-batch  m = max(1, B * L0 // L)            (B * L0 tokens per forward, like stage 0)
    accumulation a = max(1, (B * A * L0 // L) // m)   (B * A * L0 tokens per optimizer step)

so doubling the length halves the micro-batch, and once the micro-batch is 1 the
accumulation shrinks instead, as HyenaDNA went from 1k to 32k with batch 256 -> 8. With
lengths that grow by powers of two (and B * L0 divisible by them) the token count is exact; a
stage may also set ``batch_size`` and ``gradient_accumulation_steps`` explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..config import parse_number
from ..errors import ConfigurationError

__all__ = ["CurriculumStage", "CurriculumLearner"]

_KEYS = {"max_length", "epochs", "steps", "batch_size", "gradient_accumulation_steps"}


@dataclass(frozen=True)
class CurriculumStage:
    """One resolved stage: crop length, duration and batching."""

    max_length: int | None
    epochs: int | None
    steps: int | None
    micro_batch_size: int
    gradient_accumulation_steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positive(value: Any, where: str) -> int:
    """``value`` read by the config's one number reader (``"1e3"``, ``"512"``), checked >= 1."""
    number = parse_number(value, int, where)
    if number < 1:
        raise ConfigurationError(f"{where}={value!r} must be an integer >= 1")
    return number


class CurriculumLearner:
    """A list of stages ``{"max_length": L, "epochs": E}`` (or ``"steps": S``) run in order.

    Args:
        stages: one mapping per stage; keys ``max_length`` (required), exactly one of
            ``epochs``/``steps``, optionally ``batch_size`` and ``gradient_accumulation_steps``
            to override the rule in the module docstring.

    Raises:
        ConfigurationError: no stages, unknown keys, or non-positive values (stage named).
    """

    def __init__(self, stages: Sequence[Mapping[str, Any]]) -> None:
        if not stages:
            raise ConfigurationError("CurriculumLearner needs at least one stage")
        self.stages: list[dict[str, Any]] = []
        for index, stage in enumerate(stages):
            where = f"curriculum stage {index}"
            if not isinstance(stage, Mapping):
                raise ConfigurationError(f"{where}={stage!r}: expected a mapping such as "
                                         "{max_length: 1024, epochs: 1}")
            unknown = sorted(set(stage) - _KEYS)
            if unknown:
                raise ConfigurationError(f"{where}: unknown key(s) {unknown}; allowed "
                                         f"{sorted(_KEYS)}")
            if "max_length" not in stage:
                raise ConfigurationError(f"{where}: 'max_length' is required")
            if ("epochs" in stage) == ("steps" in stage):
                raise ConfigurationError(f"{where}: give exactly one of 'epochs' or 'steps'")
            self.stages.append({key: _positive(value, f"{where}.{key}")
                                for key, value in stage.items()})

    @classmethod
    def from_string(cls, text: str) -> CurriculumLearner:
        """Parse ``"1024:2,4096:1"`` (length:epochs) or ``"1024:500s"`` (length:steps)."""
        stages = []
        for part in text.split(","):
            length, _, duration = part.strip().partition(":")
            try:
                stage: dict[str, int] = {"max_length": int(length)}
                if duration.endswith("s"):
                    stage["steps"] = int(duration[:-1])
                else:
                    stage["epochs"] = int(duration)
            except ValueError:
                raise ConfigurationError(
                    f"curriculum {text!r}: stage {part.strip()!r} is not LENGTH:EPOCHS or "
                    "LENGTH:STEPSs (e.g. '1024:2,4096:1' or '1024:500s,4096:200s')") from None
            stages.append(stage)
        return cls(stages)

    def plan(self, batch_size: int, gradient_accumulation_steps: int) -> list[CurriculumStage]:
        """Resolve every stage's micro-batch and accumulation from the trainer's base values."""
        base_length = self.stages[0]["max_length"]
        tokens_per_micro = batch_size * base_length
        tokens_per_step = tokens_per_micro * gradient_accumulation_steps
        resolved = []
        for stage in self.stages:
            length = stage["max_length"]
            micro = stage.get("batch_size", max(1, tokens_per_micro // length))
            accumulation = stage.get("gradient_accumulation_steps",
                                     max(1, (tokens_per_step // length) // micro))
            resolved.append(CurriculumStage(
                max_length=length, epochs=stage.get("epochs"), steps=stage.get("steps"),
                micro_batch_size=micro, gradient_accumulation_steps=accumulation))
        return resolved

    def __len__(self) -> int:
        return len(self.stages)

    def __repr__(self) -> str:
        return f"CurriculumLearner(stages={self.stages!r})"
