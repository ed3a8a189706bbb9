"""The poll loop of a single replica: every ``server.sync_poll_interval`` (jittered by ±10%),
sync each syncable source whose ``syncPolicy.interval`` has elapsed since its last attempt.

Sources are taken oldest attempt first, one at a time, so one slow source delays the others
by its own duration only. When ``stop`` is set, a sync in flight is cancelled: its transaction
rolls back (or had committed), so the source keeps either its old or its new data.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from thv_registry.queries.aio import sync as q

__all__ = ["due_sources", "run_loop", "JITTER"]

log = logging.getLogger(__name__)

JITTER = 0.10  #: the poll interval varies by this fraction either way


async def due_sources(pool: AsyncConnectionPool[Any], names: list[str]) -> list[str]:
    """The names among ``names`` that are due now, oldest attempt first."""
    async with pool.connection() as conn, conn.transaction():
        return await q.due_sources(conn, names=names)


def jittered(interval: timedelta) -> float:
    seconds = interval.total_seconds()
    return max(0.01, seconds * random.uniform(1 - JITTER, 1 + JITTER))


async def run_loop(
    pool: AsyncConnectionPool[Any],
    names: list[str],
    poll: timedelta,
    sync: Callable[[str], Coroutine[Any, Any, Any]],
    stop: asyncio.Event,
) -> None:
    """Poll and sync until ``stop`` is set; a failed poll (database away) is logged and retried."""
    stopping = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            try:
                due = await due_sources(pool, names) if names else []
            except Exception as e:  # the database may be restarting: try again next poll
                log.warning("sync: cannot look for due sources: %s", e)
                due = []
            for name in due:
                if stop.is_set():
                    break
                job = asyncio.create_task(sync(name))
                await asyncio.wait({job, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not job.done():
                    job.cancel()
                await asyncio.gather(job, return_exceptions=True)
            if stop.is_set():
                break
            await asyncio.wait({stopping}, timeout=jittered(poll))
    finally:
        stopping.cancel()
