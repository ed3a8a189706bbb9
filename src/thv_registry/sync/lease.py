"""Claims and leases: which replica syncs which source, with no lock held over network I/O.

A replica claims a source in one short transaction (:func:`claim_due`, :func:`claim`): the
status row is locked with ``FOR UPDATE SKIP LOCKED`` (rows another replica is claiming are
skipped, never waited for), marked in progress with a lease (holder and expiry), the attempt is
counted and recorded in ``sync_attempt``, and the transaction commits. The fetch runs with no
transaction open while :func:`renewing` extends the lease in the background. The write
transaction starts with :func:`hold` (locks the status row, checks the lease is still this
replica's) and ends by recording the outcome and releasing the lease, all in one commit.

A replica that dies stops renewing: once the lease expires the source is due and another
replica claims it (its unfinished attempt is recorded as lost). A write transaction that was
open when its replica died is rolled back by PostgreSQL, so the last good data stays.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from thv_registry.queries.aio import coordinator as q
from thv_registry.sync.errors import SyncError
from thv_registry.sync.retry import retrying

__all__ = [
    "Lease",
    "LeaseLost",
    "claim_due",
    "claim",
    "hold",
    "holder_of",
    "renewing",
    "end_attempt",
    "HISTORY_KEPT",
]

log = logging.getLogger(__name__)

HISTORY_KEPT = 200  #: attempts kept in sync_attempt per source


@dataclass(frozen=True)
class Lease:
    """A claimed source: this replica (``holder``) syncs it until the lease ends."""

    source_id: uuid.UUID
    holder: str
    started_at: datetime.datetime
    attempt_id: int


class LeaseLost(SyncError):
    """Another replica took the source over (this one's lease had expired): this attempt's
    result is not recorded; ``holder`` is who holds the lease now (None: nobody)."""

    def __init__(self, source: str, holder: str | None) -> None:
        by = f"replica {holder}" if holder else "another replica"
        super().__init__(source, f"the lease on the source was lost to {by}; attempt abandoned")
        self.holder = holder


async def _start(conn: AsyncConnection[Any], row: Any, holder: str) -> Lease:
    await q.close_lost_attempts(conn, source_id=row.source_id)
    attempt = await q.start_attempt(
        conn, source_id=row.source_id, replica=holder, started_at=row.started_at
    )
    assert attempt is not None
    return Lease(row.source_id, holder, row.started_at, attempt)


async def claim_due(
    pool: AsyncConnectionPool[Any], names: list[str], holder: str, lease: datetime.timedelta
) -> tuple[Lease, str] | None:
    """Claim the most overdue of ``names`` (none due, or all held: None); commits at once."""

    async def body() -> tuple[Lease, str] | None:
        async with pool.connection() as conn, conn.transaction():
            row = await q.claim_due_source(conn, holder=holder, lease=lease, names=names)
            if row is None:
                return None
            cur = await conn.execute("SELECT name FROM source WHERE id = %s", (row.source_id,))
            found = await cur.fetchone()
            assert found is not None
            return await _start(conn, row, holder), str(found[0])

    return await retrying(body, "claiming a due source")


async def claim(
    pool: AsyncConnectionPool[Any],
    source_id: uuid.UUID,
    holder: str,
    lease: datetime.timedelta,
) -> Lease | None:
    """Claim one source now, due or not (None: another replica holds or claims it)."""

    async def body() -> Lease | None:
        async with pool.connection() as conn, conn.transaction():
            await q.ensure_sync_rows(conn)
            row = await q.claim_source(conn, holder=holder, lease=lease, source_id=source_id)
            return None if row is None else await _start(conn, row, holder)

    return await retrying(body, "claiming a source")


async def holder_of(pool: AsyncConnectionPool[Any], source_id: uuid.UUID) -> str | None:
    """Who holds the source's lease (None: nobody, or an expired lease)."""
    async with pool.connection() as conn, conn.transaction():
        row = await q.lease_holder_of(conn, source_id=source_id)
    if row is None or row.lease_expires_at is None:
        return None
    now = datetime.datetime.now(datetime.UTC)
    return row.lease_holder if row.lease_expires_at > now else None


async def hold(conn: AsyncConnection[Any], lease: Lease, source: str) -> None:
    """In the write transaction: lock the status row; raise :class:`LeaseLost` unless the lease
    is still ours (nobody can claim the row while the transaction holds it)."""
    holder = await q.hold_lease(conn, source_id=lease.source_id)
    if holder != lease.holder:
        raise LeaseLost(source, holder)


async def end_attempt(
    conn: AsyncConnection[Any], lease: Lease, result: str, message: str | None
) -> None:
    """Record how the attempt ended in the history, and prune the source's old attempts."""
    await q.end_attempt(conn, result=result, message=message, attempt_id=lease.attempt_id)
    await q.prune_attempts(conn, source_id=lease.source_id, keep=HISTORY_KEPT)


@asynccontextmanager
async def renewing(
    pool: AsyncConnectionPool[Any],
    lease: Lease,
    duration: datetime.timedelta,
    on_lost: Callable[[str | None], None],
) -> AsyncIterator[None]:
    """Renew ``lease`` every third of ``duration`` in the background while the block runs;
    ``on_lost(holder)`` is called (once) if another replica holds it now."""

    async def renew() -> None:
        every = max(duration.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(every)
            try:
                async with pool.connection() as conn, conn.transaction():
                    row = await q.renew_lease(
                        conn, source_id=lease.source_id, lease=duration, holder=lease.holder
                    )
            except Exception as e:  # the database away: the write's check decides later
                log.warning("cannot renew the sync lease: %s", e)
                continue
            holder = row.holder if row is not None else None
            if holder != lease.holder:
                on_lost(holder)
                return

    task = asyncio.create_task(renew(), name="sync-lease-renewal")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
