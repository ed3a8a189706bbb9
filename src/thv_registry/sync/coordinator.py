"""The poll loop of one replica among several on one database.

Every ``server.sync_poll_interval`` (jittered by ±10%) a replica claims due sources one after
the other (:func:`thv_registry.sync.lease.claim_due`: ``FOR UPDATE SKIP LOCKED``, a lease,
committed at once) and syncs each, until none is left to claim; then it waits for the next
poll. Sources are claimed most overdue first. A source whose data did not change is recorded
as checked and is due again one interval later, so it never holds back another due source;
a source another replica holds is skipped. A second loop (:func:`every`) runs the replica's
heartbeat on the same period.

When ``stop`` is set, a sync in flight is cancelled: its transaction rolls back (or had
committed), so the source keeps either its old or its new data, and its lease is released.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

__all__ = ["run_loop", "every", "jittered", "JITTER"]

log = logging.getLogger(__name__)

T = TypeVar("T")

JITTER = 0.10  #: the poll interval varies by this fraction either way


def jittered(interval: timedelta) -> float:
    seconds = interval.total_seconds()
    return max(0.01, seconds * random.uniform(1 - JITTER, 1 + JITTER))


async def _until_stopped(job: Awaitable[Any], stopping: asyncio.Task[Any]) -> None:
    """Await ``job``; cancel it if ``stop`` comes first."""
    task = asyncio.ensure_future(job)
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def run_loop(
    claim: Callable[[], Awaitable[T | None]],
    sync: Callable[[T], Coroutine[Any, Any, Any]],
    poll: timedelta,
    stop: asyncio.Event,
) -> None:
    """Claim and sync until nothing is due, wait a poll, again, until ``stop`` is set; a failed
    claim (database away) is logged and retried at the next poll."""
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            while not stop.is_set():
                try:
                    claimed = await claim()
                except Exception as e:  # the database may be restarting: try again next poll
                    log.warning("sync: cannot look for due sources: %s", e)
                    claimed = None
                if claimed is None:
                    break
                await _until_stopped(sync(claimed), stopping)
            if stop.is_set():
                break
            await asyncio.wait({stopping}, timeout=jittered(poll))
    finally:
        stopping.cancel()


async def every(
    period: timedelta, beat: Callable[[], Awaitable[None]], stop: asyncio.Event
) -> None:
    """``await beat()`` now and then every ``period`` (jittered) until ``stop``; a failing beat
    is logged and tried again at the next period."""
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            try:
                await _until_stopped(beat(), stopping)
            except Exception as e:  # pragma: no cover - beat logs its own failures
                log.warning("sync: heartbeat failed: %s", e)
            await asyncio.wait({stopping}, timeout=jittered(period))
    finally:
        stopping.cancel()
