"""Pause Python's cyclic garbage collector while a sync builds and writes its objects.

Parsing a large file allocates hundreds of thousands of objects that all stay alive, so the
collector runs again and again and walks every one of them each time: for 30,000 versions that
is most of the parse time (4.8 s against 0.7 s without it). Reference counting still frees what
dies; the collector runs as usual once no sync holds the pause.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from contextlib import AbstractContextManager

from thv_registry.sync.sharedhold import SharedHold

__all__ = ["gc_paused"]


def _pause() -> Callable[[], None]:
    was_enabled = gc.isenabled()
    gc.disable()
    return gc.enable if was_enabled else _nothing


def _nothing() -> None:
    return None


_PAUSE = SharedHold(_pause)


def gc_paused() -> AbstractContextManager[None]:
    """Hold the pause (nestable, from any thread); the last holder restores the collector."""
    return _PAUSE.hold()
