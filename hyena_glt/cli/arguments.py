"""Argparse types for numeric and device options, so a bad value stops at parsing.

argparse reports a type's ``ArgumentTypeError`` as ``hyena-glt X: error: argument --opt: ...``
with exit status 2, before any file is read or any output folder made; every numeric option of
every subcommand uses one of these, so ``--batch-size 0`` or ``--head-lr -0.01`` never reaches
the code that would silently replace or misuse it.

The choice lists of the compression commands live here too: taking them from
``hyena_glt.optimization`` would import torch and ONNX Runtime just to build ``--help``
(``tests/test_bad_inputs.py`` checks they equal the package's lists).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

__all__ = ["positive_int", "non_negative_int", "positive_float", "non_negative_float",
           "fraction", "open_fraction", "unit_interval", "device", "QUANTIZATION_TYPES",
           "PRUNING_TYPES", "PRUNING_SCOPES", "EXPORT_FORMATS"]

#: ``hyena_glt.optimization`` choice lists, kept here so ``--help`` does not import torch.
QUANTIZATION_TYPES = ("dynamic", "weight_only", "float16", "bfloat16")
PRUNING_TYPES = ("magnitude", "structured")
PRUNING_SCOPES = ("global", "layer")
EXPORT_FORMATS = ("onnx", "torch_export")

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")


def _number(text: str, kind: type) -> int | float:
    """``text`` as ``kind``; exponent form (``1e-3``, ``2e3`` for an integer) is accepted."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    if kind is int:
        if value != int(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        return int(value)
    return value


def _checked(kind: type, ok: Callable[[float], bool], allowed: str) -> Callable[[str], float]:
    def parse(text: str) -> int | float:
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {allowed}")
        return value

    return parse


positive_int = _checked(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _checked(float, lambda v: v > 0, "a number > 0")
non_negative_float = _checked(float, lambda v: v >= 0, "a number >= 0")
#: A train fraction: strictly between 0 and 1.
open_fraction = _checked(float, lambda v: 0 < v < 1, "a fraction strictly between 0 and 1")
#: A fraction that may be 0 but not 1 (sparsity).
fraction = _checked(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
#: A weight or fraction in [0, 1].
unit_interval = _checked(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def device(text: str) -> str:
    """``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a device: use auto, cpu, cuda, cuda:N or mps")
    return text
