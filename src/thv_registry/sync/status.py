"""The sync status of each source, kept in ``registry_sync`` (one row per source).

Phase (``sync_status``: IN_PROGRESS, COMPLETED, FAILED), last attempt (``started_at`` and
``ended_at``), last success (``last_success_at``), consecutive failed attempts
(``attempt_count``: +1 on each failure, 0 on success), the counts of the last good sync
(servers, skills, versions, skipped plugins: a failure leaves them as they were, like the data)
and a message (the summary of a success, or why the attempt failed, also in ``error_msg``).

SQL here rather than in ``database/queries/``: the generated query functions are synchronous,
and the sync runs on ``serve``'s event loop; move these when ``task gen`` emits async ones.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

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


_BEGIN = """
INSERT INTO registry_sync (source_id, sync_status, started_at, ended_at)
VALUES (%s, 'IN_PROGRESS', now(), NULL)
ON CONFLICT (source_id) DO UPDATE SET
    sync_status = 'IN_PROGRESS', started_at = now(), ended_at = NULL, updated_at = now()
"""
_COMPLETE = """
UPDATE registry_sync SET
    sync_status = 'COMPLETED', error_msg = NULL, message = %(message)s,
    ended_at = clock_timestamp(), last_success_at = clock_timestamp(), attempt_count = 0,
    last_sync_hash = %(sha)s, last_applied_filter_hash = %(filter_hash)s,
    server_count = %(servers)s, skill_count = %(skills)s, version_count = %(versions)s,
    plugin_skipped_count = %(plugins)s, updated_at = clock_timestamp()
WHERE source_id = %(source_id)s
"""
_FAIL = """
UPDATE registry_sync SET
    sync_status = 'FAILED', error_msg = %(message)s, message = %(message)s,
    ended_at = clock_timestamp(), attempt_count = attempt_count + 1,
    updated_at = clock_timestamp()
WHERE source_id = %(source_id)s
"""
_INTERRUPTED = """
UPDATE registry_sync SET
    sync_status = 'FAILED', error_msg = %(message)s, message = %(message)s,
    ended_at = clock_timestamp(), updated_at = clock_timestamp()
WHERE source_id = %(source_id)s AND sync_status = 'IN_PROGRESS'
"""
_READ = """
SELECT s.name, y.sync_status::text, y.message, y.started_at, y.ended_at, y.last_success_at,
       coalesce(y.attempt_count, 0), coalesce(y.server_count, 0), coalesce(y.skill_count, 0),
       coalesce(y.version_count, 0), coalesce(y.plugin_skipped_count, 0), y.last_sync_hash,
       y.last_applied_filter_hash
  FROM source s LEFT JOIN registry_sync y ON y.source_id = s.id
"""


async def begin(conn: AsyncConnection[Any], source_id: uuid.UUID) -> None:
    """Record that an attempt started (its own statement: an attempt counts even if it fails)."""
    await conn.execute(_BEGIN, (source_id,))


async def complete(
    conn: AsyncConnection[Any],
    source_id: uuid.UUID,
    *,
    sha256: str,
    filter_hash: str | None,
    counts: Counts,
    message: str,
) -> None:
    await conn.execute(
        _COMPLETE,
        {
            "source_id": source_id,
            "sha": sha256,
            "filter_hash": filter_hash,
            "servers": counts.servers,
            "skills": counts.skills,
            "versions": counts.versions,
            "plugins": counts.plugins_skipped,
            "message": message,
        },
    )


async def fail(conn: AsyncConnection[Any], source_id: uuid.UUID, message: str) -> None:
    await conn.execute(_FAIL, {"source_id": source_id, "message": message})


async def interrupted(conn: AsyncConnection[Any], source_id: uuid.UUID) -> None:
    """An attempt stopped from outside: FAILED with :data:`INTERRUPTED`, not counted as one of
    the source's failed attempts."""
    await conn.execute(_INTERRUPTED, {"source_id": source_id, "message": INTERRUPTED})


def _status(row: tuple[Any, ...]) -> SourceStatus:
    return SourceStatus(
        source=row[0],
        phase=row[1],
        message=row[2],
        last_attempt_at=row[3],
        last_attempt_ended_at=row[4],
        last_success_at=row[5],
        failed_attempts=row[6],
        counts=Counts(row[7], row[8], row[9], row[10]),
        last_sync_hash=row[11],
        filter_hash=row[12],
    )


async def read(conn: AsyncConnection[Any], name: str) -> SourceStatus | None:
    """The status of the source named ``name`` (None: no such source)."""
    cur = await conn.execute(_READ + " WHERE s.name = %s", (name,))
    row = await cur.fetchone()
    return None if row is None else _status(row)


async def read_by_id(conn: AsyncConnection[Any], source_id: uuid.UUID) -> SourceStatus | None:
    cur = await conn.execute(_READ + " WHERE s.id = %s", (source_id,))
    row = await cur.fetchone()
    return None if row is None else _status(row)
