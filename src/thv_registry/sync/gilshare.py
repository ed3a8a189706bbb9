"""Give the event loop the GIL back quickly while a sync's worker thread parses a large source.

``serve`` runs the API and the sync in one process: the parse runs in a worker thread (so the
event loop keeps serving), but it is Python code holding the GIL. Each time the event loop's
thread wakes up (a request arrives, PostgreSQL answers) it waits for the worker to let the GIL
go, which CPython asks for only after the switch interval (5 ms by default): a read that wakes
the loop three or four times was 15-20 ms slower during a sync. While a parse runs the interval
is 0.5 ms (:data:`SWITCH_INTERVAL`), so a waiting read gets the GIL within about half a
millisecond; the parse pays a few per cent more switches. Measured with
``benchmarks/sync_read_bench.py`` (docs/decisions.md, "Reads during a sync").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager

from thv_registry.sync.sharedhold import SharedHold

__all__ = ["short_switches", "SWITCH_INTERVAL"]

SWITCH_INTERVAL = 0.0005  #: seconds, while a sync's worker thread holds the GIL


def _shorten() -> Callable[[], None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, SWITCH_INTERVAL))
    return lambda: sys.setswitchinterval(previous)


_SHORT = SharedHold(_shorten)


def short_switches() -> AbstractContextManager[None]:
    """Hold the short switch interval (nestable, from any thread); the last holder restores
    the interval found when the first one came."""
    return _SHORT.hold()
