"""The migration lock: a session-level advisory lock with golang-migrate's key.

Both tools compute the same key, so a Go server migrating the same database and this tool
exclude each other. The wait is bounded by polling ``pg_try_advisory_lock`` (golang-migrate's
blocking ``pg_advisory_lock`` ignores its own timeout); on timeout the holder is named.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import LockTimeout

if TYPE_CHECKING:
    import psycopg

__all__ = ["advisory_lock_id", "lock_key", "current_schema", "advisory_lock", "LockHolder"]

log = logging.getLogger(__name__)

ADVISORY_LOCK_ID_SALT = 1486364155  # golang-migrate database/util.go
POLL_INTERVAL_S = 0.1


def advisory_lock_id(database_name: str, *additional_names: str) -> int:
    """golang-migrate's ``GenerateAdvisoryLockId``: CRC-32 of the joined names, times a salt."""
    if additional_names:
        database_name = "\x00".join([*additional_names, database_name])
    return (zlib.crc32(database_name.encode()) * ADVISORY_LOCK_ID_SALT) & 0xFFFFFFFF


def lock_key(schema: str, table: str, dbname: str) -> int:
    """The key golang-migrate's postgres driver uses for ``postgres://host:port/dbname``.

    golang-migrate takes the database name from the URL path, leading slash included.
    """
    return advisory_lock_id("/" + dbname, schema, table)


def current_schema(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        from ..errors import ConnectionFailed

        raise ConnectionFailed(
            "The connection has no current schema (search_path names no existing schema), so "
            "there is nowhere to keep schema_migrations.",
            hint="Set a search_path whose first schema exists, e.g. ALTER ROLE ... SET "
            "search_path = public.",
        )
    return str(row[0])


@dataclass(frozen=True)
class LockHolder:
    pid: int
    application_name: str
    user: str
    client_addr: str | None
    since: datetime | None
    state: str | None

    def describe(self) -> str:
        where = self.client_addr or "a local socket"
        app = self.application_name or "an unnamed application"
        since = f", connected since {self.since:%Y-%m-%d %H:%M:%S %Z}" if self.since else ""
        return f"pid {self.pid} ({app}, user {self.user}, from {where}{since}, {self.state})"


@contextmanager
def advisory_lock(conn: psycopg.Connection[Any], key: int, *, timeout_s: float) -> Iterator[None]:
    """Hold the advisory lock ``key`` for the block; wait at most ``timeout_s`` for it."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while not _try_lock(conn, key):
        if time.monotonic() >= deadline:
            holder = find_holder(conn, key)
            who = holder.describe() if holder else "a session that has just released it"
            raise LockTimeout(
                f"Another migration holds the migration lock (advisory lock {key}) and did not "
                f"release it within {timeout_s:g} s: {who}.",
                hint="Wait for it to finish and run again, or raise the wait with "
                "migrations.lockWaitSeconds in the config. If that session is stuck, end it with "
                f"SELECT pg_terminate_backend({holder.pid if holder else 'PID'}); its "
                "transactional step is rolled back.",
            )
        if not announced:
            holder = find_holder(conn, key)
            log.info(
                "waiting for the migration lock held by %s", holder.describe() if holder else "?"
            )
            announced = True
        time.sleep(min(POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _try_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def find_holder(conn: psycopg.Connection[Any], key: int) -> LockHolder | None:
    """The session holding advisory lock ``key`` in this database, if any."""
    row = conn.execute(
        """
        SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
               host(a.client_addr), a.backend_start, a.state
          FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.classid = (%s::bigint >> 32)::oid AND l.objid = (%s::bigint & 4294967295)::oid
           AND l.objsubid = 1
         LIMIT 1
        """,
        (key, key),
    ).fetchone()
    return LockHolder(*row) if row else None
