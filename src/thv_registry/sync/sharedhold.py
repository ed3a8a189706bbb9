"""A process-wide setting that holders share: the first one changes it, the last one undoes it.

:mod:`.gcpause` (the cyclic collector) and :mod:`.gilshare` (the GIL switch interval) hold one
each: syncs run in several threads at once, and the setting must stay changed until the last of
them is done, then go back to what the first one found.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["SharedHold"]


def _nothing() -> None:
    return None


class SharedHold:
    """``change()`` runs when the first holder comes and returns what undoes it; the undo runs
    when the last holder leaves. Nestable, from any thread."""

    def __init__(self, change: Callable[[], Callable[[], None]]) -> None:
        self._change = change
        self._lock = threading.Lock()
        self._holders = 0
        self._undo: Callable[[], None] = _nothing

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the setting for the ``with`` block."""
        with self._lock:
            if self._holders == 0:
                self._undo = self._change()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    self._undo()
