"""Error and warning classes of Hyena-GLT.

Each error subclasses the built-in a caller would naturally catch (``ValueError`` for bad
settings or bad input, ``RuntimeError`` for failures while running), so code written against
plain Python keeps working, while ``except HyenaGLTError`` catches everything of ours.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "HyenaGLTError",
    "ConfigurationError",
    "TokenizationError",
    "DataError",
    "ModelError",
    "TrainingError",
    "OptimizationError",
    "HyenaGLTWarning",
]


class HyenaGLTError(Exception):
    """Base class of every error raised by Hyena-GLT."""


class ConfigurationError(HyenaGLTError, ValueError):
    """A configuration value is impossible; the message names the field, value and allowed range."""


class TokenizationError(HyenaGLTError, ValueError):
    """A sequence cannot be tokenized (e.g. a character outside the alphabet, with its position)."""


class DataError(HyenaGLTError, ValueError):
    """An input file is malformed or inconsistent.

    The message always starts with the file and, where known, the record and line, so a user can
    open the file at the right place: ``genome.fa: record 'chr2' (line 1043): ...``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        record: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.record = record
        self.line = line
        where = []
        if self.path is not None:
            where.append(self.path)
        detail = []
        if record is not None:
            detail.append(f"record {record!r}")
        if line is not None:
            detail.append(f"line {line}")
        if detail:
            where.append(" ".join(detail))
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ModelError(HyenaGLTError, RuntimeError):
    """A model cannot be built, loaded or run (shape or config mismatch, missing weights)."""


class TrainingError(HyenaGLTError, RuntimeError):
    """Training cannot continue (non-finite loss, bad checkpoint); the message names the step."""


class OptimizationError(HyenaGLTError, ValueError):
    """A compression or export setting is invalid, or the result failed its verification."""


class HyenaGLTWarning(UserWarning):
    """Warnings of Hyena-GLT, so callers can filter them with ``warnings.filterwarnings``."""
