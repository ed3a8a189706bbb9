"""The sync status of each source, kept in ``registry_sync`` (one row per source).

Phase (``sync_status``: IN_PROGRESS, COMPLETED, FAILED), last attempt (``started_at`` and
``ended_at``), last success (``last_success_at``), consecutive failed attempts
(``attempt_count``: +1 on each failure, 0 on success), the counts of the last good sync
(servers, skills, versions, skipped plugins: a failure leaves them as they were, like the data)
and a message (the summary of a success, or why the attempt failed, also in ``error_msg``).

The SQL is in ``database/queries/sync.sql`` (BeginSync, CompleteSync, FailSync, InterruptSync,
SyncStatusById/ByName), called through the generated coroutines of ``queries.aio.sync``.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from thv_registry.queries.aio import sync as q
from thv_registry.queries.sync import SyncStatusByIdRow, SyncStatusByNameRow

__all__ = [
    "Counts",
    "SourceStatus",
    "begin",
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


async def begin(conn: AsyncConnection[Any], source_id: uuid.UUID) -> None:
    """Record that an attempt started (its own statement: an attempt counts even if it fails)."""
    await q.begin_sync(conn, source_id=source_id)


async def complete(
    conn: AsyncConnection[Any],
    source_id: uuid.UUID,
    *,
    sha256: str,
    filter_hash: str | None,
    counts: Counts,
    message: str,
) -> None:
    await q.complete_sync(
        conn,
        source_id=source_id,
        sha256=sha256,
        filter_hash=filter_hash,
        servers=counts.servers,
        skills=counts.skills,
        versions=counts.versions,
        plugins_skipped=counts.plugins_skipped,
        message=message,
    )


async def fail(conn: AsyncConnection[Any], source_id: uuid.UUID, message: str) -> None:
    await q.fail_sync(conn, source_id=source_id, message=message)


async def interrupted(conn: AsyncConnection[Any], source_id: uuid.UUID) -> None:
    """An attempt stopped from outside: FAILED with :data:`INTERRUPTED`, not counted as one of
    the source's failed attempts."""
    await q.interrupt_sync(conn, source_id=source_id, message=INTERRUPTED)


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
