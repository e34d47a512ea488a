"""Shared fixtures: the real data sets in ``shared/data`` and tiny FASTA writers."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``shared/data`` next to the repository; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA}")
    return SHARED_DATA


def _fasta_text(records: Sequence[tuple[str, str]], width: int) -> str:
    lines = []
    for name, sequence in records:
        lines.append(f">{name}")
        lines.extend(sequence[i:i + width] for i in range(0, len(sequence), width))
    return "\n".join(lines) + "\n"


@pytest.fixture
def write_fasta(tmp_path: Path) -> Callable[..., Path]:
    """``write_fasta(records, name="x.fa", width=60)`` -> path; ``.gz`` names are gzipped.

    ``records`` is a list of ``(name, sequence)``; a raw string is written as is (for
    malformed files).
    """

    def write(records: Sequence[tuple[str, str]] | str, name: str = "x.fa",
              width: int = 60) -> Path:
        text = records if isinstance(records, str) else _fasta_text(records, width)
        path = tmp_path / name
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            path.write_text(text)
        return path

    return write


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run far faster on one thread than on two contended ones (CI has 2 cores).

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
