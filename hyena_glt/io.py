"""Atomic outputs and file checksums.

Every file or directory a stage produces is written under a temporary name in the same folder
and renamed into place only when complete, so Snakemake (or a user) never sees a partial output,
and a failure leaves nothing behind, not even the output's parent folders it had to create.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigurationError

__all__ = ["atomic_file", "atomic_directory", "remove_empty", "sha256sum"]


def _temporary_sibling(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def _make_parents(final: Path, directory: bool) -> list[Path]:
    """Create the missing parent folders of ``final``; return them, deepest first.

    Raises:
        ConfigurationError: ``final`` exists as the other kind (a file where a directory is
            written, or the reverse), or a parent cannot be made; nothing is replaced.
    """
    if final.exists() and final.is_dir() != directory:
        kind, wanted = ("directory", "file") if final.is_dir() else ("file", "directory")
        raise ConfigurationError(f"{final}: exists and is a {kind}, but the output is a "
                                 f"{wanted}; choose another output path or remove it")
    missing = []
    for parent in final.absolute().parents:
        if parent.exists():
            break
        missing.append(parent)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        remove_empty(missing)
        raise ConfigurationError(f"{final}: cannot create its folder ({err.strerror}: "
                                 f"{err.filename}); choose another output path") from None
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) that are still empty: a failed command leaves no
    empty parent of its output behind."""
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty (another output landed there) or gone
            folder.rmdir()


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    final = Path(path)
    created = _make_parents(final, directory=False)
    tmp = _temporary_sibling(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_empty(created)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``path`` (an old one is removed).

    On an exception the temporary directory is removed and ``path`` is left as it was.
    """
    final = Path(path)
    created = _make_parents(final, directory=True)
    tmp = _temporary_sibling(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty(created)
        raise


def sha256sum(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, for provenance in reports and model cards."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
