"""``metrics.jsonl``: the training history, one JSON object per log or evaluation event.

Only the main rank writes. On resume, lines after the checkpoint's step are dropped (the
resumed run logs those steps again), so the file reads as one uninterrupted run. Scalars also
go to TensorBoard when the optional ``tensorboard`` package is installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..io import atomic_file

__all__ = ["MetricsLog"]


class MetricsLog:
    """Append-only history in memory and in ``path`` (written when ``write`` is True)."""

    def __init__(self, path: Path, write: bool, tensorboard_dir: Path | None = None) -> None:
        self.path, self.write = path, write
        self.records: list[dict[str, Any]] = []
        self._tensorboard_dir = tensorboard_dir
        self._tensorboard: Any = None

    def start(self, resume_step: int | None) -> None:
        """Begin a run: fresh (``None``) or resumed after ``resume_step``."""
        if resume_step is None:
            self.records = []
            if self.write:
                self.path.unlink(missing_ok=True)
        elif self.path.is_file():
            lines = [json.loads(line) for line in self.path.read_text().splitlines() if line]
            self.records = [r for r in lines if r.get("step", 0) <= resume_step]
            if self.write and len(self.records) != len(lines):
                with atomic_file(self.path) as tmp:
                    tmp.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        if self.write and self._tensorboard_dir is not None and self._tensorboard is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # optional dependency
                return
            self._tensorboard = SummaryWriter(str(self._tensorboard_dir))

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if not self.write:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._tensorboard is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self._tensorboard.add_scalar(key, value, record["step"])

    def flush(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.flush()

    def latest(self) -> dict[str, Any]:
        """The most recent value of every metric."""
        merged: dict[str, Any] = {}
        for record in self.records:
            merged.update(record)
        return merged
