"""Pause Python's cyclic garbage collector while a sync builds and writes its objects.

Parsing a large file allocates hundreds of thousands of objects that all stay alive, so the
collector runs again and again and walks every one of them each time: for 30,000 versions that
is most of the parse time (4.8 s against 0.7 s without it). Reference counting still frees what
dies; the collector runs as usual once no sync holds the pause.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_lock = threading.Lock()
_holders = 0
_was_enabled = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the pause (nestable, from any thread); the last holder restores the collector."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
