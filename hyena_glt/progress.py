"""Progress reporting: a tqdm bar on a terminal, periodic plain log lines otherwise.

Cluster jobs write to log files, where a redrawn bar is noise; there we log one line every
``log_every`` seconds instead.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm.auto import tqdm

__all__ = ["progress", "Progress"]

T = TypeVar("T")
logger = logging.getLogger("hyena_glt")


class Progress:
    """Counts work done; shows a bar on a TTY, else logs ``desc: n/total unit`` periodically."""

    def __init__(
        self,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        enabled: bool = True,
        log_every: float = 30.0,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = 0.0
        self._bar = None
        self._log_every = log_every
        self._enabled = enabled
        self._start = self._last_log = time.monotonic()
        if enabled and sys.stderr.isatty():
            self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True)

    def update(self, n: float = 1, **postfix: Any) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            return
        now = time.monotonic()
        if self._enabled and now - self._last_log >= self._log_every:
            self._last_log = now
            self._log(postfix)

    def _log(self, postfix: dict[str, Any]) -> None:
        elapsed = time.monotonic() - self._start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        total = f"/{self.total:,.0f}" if self.total else ""
        extra = "".join(f" {k}={v}" for k, v in postfix.items())
        logger.info(
            "%s: %s%s %s (%.1f %s/s)%s", self.desc, f"{self.n:,.0f}", total, self.unit, rate,
            self.unit, extra,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._enabled:
            self._log({})

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(
    iterable: Iterable[T], total: float | None = None, desc: str = "", unit: str = "it",
    enabled: bool = True,
) -> Iterator[T]:
    """Iterate ``iterable`` while reporting progress (see :class:`Progress`)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total=total, desc=desc, unit=unit, enabled=enabled) as bar:
        for item in iterable:
            yield item
            bar.update(1)
