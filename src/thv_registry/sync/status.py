"""The sync status of each source, kept in ``registry_sync`` (one row per source).

Phase (``sync_status``: IN_PROGRESS, COMPLETED, FAILED), last attempt (``started_at`` and
``ended_at``), last success (``last_success_at``), consecutive failed attempts
(``attempt_count``: +1 on each failure, 0 on success), the counts of the last good sync
(servers, skills, versions, skipped plugins: a failure leaves them as they were, like the data)
and a message (the summary of a success, or why the attempt failed, also in ``error_msg``).
Since several replicas share the database, the end of an attempt is recorded only by the
holder of its lease (:mod:`.lease`), which it releases, and sets when the source is due again
(the interval after the attempt started; after failures, the back-off). :func:`overview` is
what ``sources`` lists: every source, its status and lease, and the live replicas.

The SQL is in ``database/queries/sync.sql`` (SyncStatusById/ByName) and
``database/queries/coordinator.sql`` (CompleteLeased, FailLeased, InterruptLeased,
SourcesStatus, LiveReplicas), called through the generated query functions.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection, Connection

from thv_registry.queries import coordinator as sync_cq
from thv_registry.queries.aio import coordinator as cq
from thv_registry.queries.aio import sync as q
from thv_registry.queries.sync import SyncStatusByIdRow, SyncStatusByNameRow

if TYPE_CHECKING:
    from thv_registry.sync.lease import Lease

__all__ = [
    "Counts",
    "SourceStatus",
    "SourceRow",
    "ReplicaRow",
    "Overview",
    "overview",
    "complete",
    "fail",
    "interrupted",
    "read",
    "read_by_id",
    "summary",
    "INTERRUPTED",
]

#: the message of an attempt stopped from outside (serve stopping): not the source's failure
INTERRUPTED = "interrupted: the sync was stopped before it finished; the last good data is served"


@dataclass(frozen=True)
class Counts:
    servers: int = 0
    skills: int = 0
    versions: int = 0
    plugins_skipped: int = 0


@dataclass(frozen=True)
class SourceStatus:
    source: str
    phase: str | None  #: None: never synced
    message: str | None
    last_attempt_at: datetime.datetime | None
    last_attempt_ended_at: datetime.datetime | None
    last_success_at: datetime.datetime | None
    failed_attempts: int
    counts: Counts
    last_sync_hash: str | None
    filter_hash: str | None


def summary(counts: Counts) -> str:
    """The success message: what the source holds, and what was skipped."""
    text = f"{counts.servers} servers, {counts.skills} skills, {counts.versions} versions"
    if counts.plugins_skipped:
        text += (
            f"; {counts.plugins_skipped} plugins skipped (data.plugins[] is not served by this"
            " edition yet)"
        )
    return text


async def complete(
    conn: AsyncConnection[Any],
    lease: Lease,
    *,
    sha256: str,
    filter_hash: str | None,
    counts: Counts,
    message: str,
) -> bool:
    """Record a good attempt and release the lease (False: the lease was not ours)."""
    return (
        await cq.complete_leased(
            conn,
            source_id=lease.source_id,
            holder=lease.holder,
            sha256=sha256,
            filter_hash=filter_hash,
            servers=counts.servers,
            skills=counts.skills,
            versions=counts.versions,
            plugins_skipped=counts.plugins_skipped,
            message=message,
        )
        == 1
    )


async def fail(
    conn: AsyncConnection[Any], lease: Lease, message: str, backoff_max: datetime.timedelta
) -> bool:
    """Record a failed attempt (one more consecutive failure, the back-off) and release the
    lease (False: the lease was not ours)."""
    done = await cq.fail_leased(
        conn,
        source_id=lease.source_id,
        holder=lease.holder,
        message=message,
        backoff_max=backoff_max,
    )
    return done == 1


async def interrupted(conn: AsyncConnection[Any], lease: Lease) -> bool:
    """An attempt stopped from outside: FAILED with :data:`INTERRUPTED`, not counted as one of
    the source's failed attempts, due at once, the lease released."""
    done = await cq.interrupt_leased(
        conn, source_id=lease.source_id, holder=lease.holder, message=INTERRUPTED
    )
    return done == 1


def _status(row: SyncStatusByIdRow | SyncStatusByNameRow) -> SourceStatus:
    return SourceStatus(
        source=row.name,
        phase=row.sync_status,
        message=row.message,
        last_attempt_at=row.started_at,
        last_attempt_ended_at=row.ended_at,
        last_success_at=row.last_success_at,
        failed_attempts=row.attempt_count,
        counts=Counts(
            row.server_count, row.skill_count, row.version_count, row.plugin_skipped_count
        ),
        last_sync_hash=row.last_sync_hash,
        filter_hash=row.last_applied_filter_hash,
    )


async def read(conn: AsyncConnection[Any], name: str) -> SourceStatus | None:
    """The status of the source named ``name`` (None: no such source)."""
    row = await q.sync_status_by_name(conn, name=name)
    return None if row is None else _status(row)


async def read_by_id(conn: AsyncConnection[Any], source_id: uuid.UUID) -> SourceStatus | None:
    row = await q.sync_status_by_id(conn, source_id=source_id)
    return None if row is None else _status(row)


@dataclass(frozen=True)
class SourceRow:
    """One source as ``sources`` lists it."""

    name: str
    kind: str
    created_by: str  #: CONFIG or API
    syncable: bool
    interval: datetime.timedelta | None
    phase: str | None  #: None: never attempted
    message: str | None
    last_attempt_at: datetime.datetime | None
    last_attempt_ended_at: datetime.datetime | None
    last_success_at: datetime.datetime | None
    failed_attempts: int  #: consecutive
    attempts: int  #: every attempt ever claimed
    counts: Counts
    next_due_at: datetime.datetime | None
    lease_holder: str | None  #: None: nobody holds a live lease
    lease_expires_at: datetime.datetime | None


@dataclass(frozen=True)
class ReplicaRow:
    replica: str
    fingerprint: str
    sources: tuple[str, ...]
    started_at: datetime.datetime
    heartbeat_at: datetime.datetime


@dataclass(frozen=True)
class Overview:
    sources: list[SourceRow]
    replicas: list[ReplicaRow]  #: live ones, oldest first

    @property
    def config_mismatch(self) -> bool:
        """Live replicas run different sources/registries configurations."""
        return len({r.fingerprint for r in self.replicas}) > 1


def overview(conn: Connection[Any]) -> Overview:
    """Every source with its sync status and lease, and the live replicas (one snapshot)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        rows = sync_cq.sources_status(conn)
        live = sync_cq.live_replicas(conn)
    sources = [
        SourceRow(
            name=r.name,
            kind=str(r.source_type),
            created_by=str(r.creation_type),
            syncable=r.syncable,
            interval=r.sync_schedule,
            phase=r.sync_status,
            message=r.message,
            last_attempt_at=r.started_at,
            last_attempt_ended_at=r.ended_at,
            last_success_at=r.last_success_at,
            failed_attempts=r.attempt_count,
            attempts=r.attempts_total,
            counts=Counts(r.server_count, r.skill_count, r.version_count, r.plugin_skipped_count),
            next_due_at=r.next_due_at,
            lease_holder=r.lease_holder if r.lease_live else None,
            lease_expires_at=r.lease_expires_at if r.lease_live else None,
        )
        for r in rows
    ]
    replicas = [
        ReplicaRow(r.replica, r.config_fingerprint, tuple(r.sources), r.started_at, r.heartbeat_at)
        for r in live
    ]
    return Overview(sources, replicas)
