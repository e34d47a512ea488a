"""What a reader needs to trust or repeat a report: versions, machine, input checksums and the
wall time and peak memory of every workflow job (Snakemake ``benchmark:`` files)."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from hyena_glt.errors import DataError
from hyena_glt.evaluation.benchmark import machine_name
from hyena_glt.io import sha256sum

__all__ = ["versions", "environment", "checksums", "job_benchmarks"]

_PACKAGES = ("hyena-glt", "torch", "numpy", "pandas", "scikit-learn", "scipy", "pyarrow",
             "onnxruntime", "plotly", "jinja2", "snakemake")


def versions() -> dict[str, str]:
    """Installed versions of the package and its main dependencies (absent ones left out)."""
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def environment() -> dict[str, str]:
    """Machine, Python and the time of writing."""
    import torch

    return {"machine": machine_name(), "platform": platform.platform(),
            "python": platform.python_version(),
            "torch threads": str(torch.get_num_threads()),
            "accelerator": (torch.cuda.get_device_name(0) if torch.cuda.is_available()
                            else "none (CPU)"),
            "host": platform.node() or os.environ.get("HOSTNAME", ""),
            "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def checksums(paths: Sequence[str | Path]) -> list[tuple[str, int, str]]:
    """``(path, bytes, SHA-256)`` of each input file.

    Raises:
        DataError: a file is missing.
    """
    rows = []
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError("input file to checksum not found", path=str(path))
        rows.append((str(path), path.stat().st_size, sha256sum(path)))
    return rows


def job_benchmarks(root: str | Path | None) -> pd.DataFrame:
    """``job, wall_s, max_rss_mb`` of every Snakemake benchmark TSV under ``root`` (the job
    is the file's path below ``root``); empty when ``root`` is None or holds none.

    Raises:
        DataError: a benchmark file without the ``s`` and ``max_rss`` columns.
    """
    columns = ["job", "wall_s", "max_rss_mb"]
    if root is None or not Path(root).is_dir():
        return pd.DataFrame(columns=columns)
    rows = []
    for path in sorted(Path(root).rglob("*.tsv")):
        try:
            frame = pd.read_csv(path, sep="\t")
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as err:
            raise DataError(f"unreadable Snakemake benchmark file: {err}",
                            path=str(path)) from None
        if not {"s", "max_rss"} <= set(frame.columns) or frame.empty:
            raise DataError("a Snakemake benchmark file needs the columns s and max_rss and "
                            "a row", path=str(path))
        rss = pd.to_numeric(frame["max_rss"], errors="coerce")
        rows.append((str(path.relative_to(root).with_suffix("")), float(frame["s"].iloc[-1]),
                     float(rss.iloc[-1])))
    return pd.DataFrame(rows, columns=columns)
