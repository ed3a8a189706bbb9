"""The migration lock: a session-level advisory lock with golang-migrate's key.

Both tools compute the same key, so a Go server migrating the same database and this tool
exclude each other. The wait is bounded by polling ``pg_try_advisory_lock`` (golang-migrate's
blocking ``pg_advisory_lock`` ignores its own timeout); on timeout the holder is named.

Also here: :func:`table_lock_holders`, who holds a table lock that a migration statement could
not get within ``lock_timeout`` (the runner names them in its failure message).
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

from thv_registry.errors import LockTimeout
from thv_registry.migrations.engine.lockmodes import conflicts, from_server
from thv_registry.migrations.engine.model import TOOL_NAME
from thv_registry.redact import mask_password_literals

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "advisory_lock_id",
    "lock_key",
    "current_schema",
    "advisory_lock",
    "LockHolder",
    "TableLockHolder",
    "table_lock_holders",
    "long_transactions",
    "find_blockers",
    "describe_blockers",
]

log = logging.getLogger(__name__)

ADVISORY_LOCK_ID_SALT = 1486364155  # golang-migrate database/util.go
#: the start of the application_name of this tool's sessions (``Migrator.application_name``)
OUR_APPLICATION_PREFIX = TOOL_NAME
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
        from thv_registry.errors import ConnectionFailed

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
    query: str | None = None  #: what it runs now (e.g. a step of golang-migrate), or ran last

    def describe(self) -> str:
        where = self.client_addr or "a local socket"
        app = self.application_name or "an unnamed application"
        since = f", connected since {self.since:%Y-%m-%d %H:%M:%S %Z}" if self.since else ""
        running = ""
        if self.state == "active" and self.query:
            running = f", running: {shown_query(self.query, 100)}"
        state = f"{self.state}{running}"
        return f"pid {self.pid} ({app}, user {self.user}, from {where}{since}, {state})"

    @property
    def golang_migrate(self) -> bool:
        """Whether the holder looks like golang-migrate (or the Go server, which embeds it).

        Only golang-migrate and this tool take this lock. This tool names its sessions
        (``application_name`` starting with ``TOOL_NAME``); golang-migrate's driver sets none
        unless its URL does, and its own queries name the table quoted with its schema
        (``"public"."schema_migrations"``) or take the lock (``pg_advisory_lock``).
        """
        app = self.application_name.lower()
        if app.startswith(OUR_APPLICATION_PREFIX):
            return False
        query = (self.query or "").lower()
        return not app or "migrate" in app or "pg_advisory_lock(" in query or '"."' in query


@contextmanager
def advisory_lock(conn: psycopg.Connection[Any], key: int, *, timeout_s: float) -> Iterator[None]:
    """Hold the advisory lock ``key`` for the block; wait at most ``timeout_s`` for it."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while not _try_lock(conn, key):
        if time.monotonic() >= deadline:
            holder = find_holder(conn, key)
            who = holder.describe() if holder else "a session that has just released it"
            within = f"within {timeout_s:g} s" if timeout_s > 0 else "at once (no wait asked)"
            raise LockTimeout(
                f"Another migration holds the migration lock (advisory lock {key}) and did not "
                f"release it {within}: {who}.",
                key=key,
                timeout_s=timeout_s,
                holder=holder,
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
        _unlock(conn, key)


def _unlock(conn: psycopg.Connection[Any], key: int) -> None:
    """Release the lock; a lost connection needs nothing (the server released it at session end).

    Never raises for a dead connection, so the error that ended the block is the one reported.
    """
    import psycopg

    if conn.closed or conn.broken:
        return
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()  # e.g. interrupted mid-statement: the unlock must not fail on that
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    except psycopg.OperationalError as exc:
        log.debug("releasing the migration lock: %s (the session is gone with its locks)", exc)


def _try_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def find_holder(conn: psycopg.Connection[Any], key: int) -> LockHolder | None:
    """The session holding advisory lock ``key`` in this database, if any."""
    row = conn.execute(
        """
        SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
               host(a.client_addr), a.backend_start, a.state, a.query
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


@dataclass(frozen=True)
class TableLockHolder:
    """A session holding a table lock that conflicts with one a migration statement wants."""

    pid: int
    relation: str
    mode: str  #: e.g. "ACCESS SHARE"
    application_name: str
    user: str
    client_addr: str | None
    state: str | None
    xact_seconds: float | None  #: how long its transaction has been open
    query_seconds: float | None  #: how long since its current (or last) query started
    query: str

    def describe(self) -> str:
        app = self.application_name or "an unnamed application"
        where = self.client_addr or "a local socket"
        parts = [f"pid {self.pid} ({app}, user {self.user}, from {where})"]
        if self.relation:
            parts.append(f"holding {self.mode} on {self.relation}")
        if self.state:
            parts.append(self.state)
        if self.xact_seconds is not None:
            parts.append(f"its transaction open for {self.xact_seconds:.1f} s")
        query = shown_query(self.query, 200)
        secs = self.query_seconds
        if self.state == "active":
            ran = f"running for {secs:.1f} s" if secs is not None else "running"
            parts.append(f"query {ran}: {query or '(not shown)'}")
        else:
            ran = f" (started {secs:.1f} s ago)" if secs is not None else ""
            parts.append(f"last query{ran}: {query or '(not shown)'}")
        return ", ".join(parts)


def shown_query(query: str, limit: int) -> str:
    """Another session's query for a message: one line, at most ``limit`` characters, and the
    literal after a PASSWORD keyword masked (CREATE/ALTER ROLE), so no password reaches a log."""
    text = mask_password_literals(" ".join(query.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def table_lock_holders(
    conn: psycopg.Connection[Any], wanted: dict[str, str]
) -> list[TableLockHolder]:
    """Other sessions holding a lock that conflicts with ``wanted`` (relation name -> mode).

    Names are resolved as the statement would (``to_regclass`` with this session's
    search_path); a relation that does not exist (yet) is skipped. Runs on the migration's own
    connection, outside any transaction: no extra connection is opened. Longest-open first.
    """
    if not wanted:
        return []
    names = list(wanted)
    rows = conn.execute(
        """
        SELECT w.name, a.pid, l.mode, coalesce(a.application_name, ''),
               coalesce(a.usename::text, ''), host(a.client_addr), a.state,
               extract(epoch FROM now() - a.xact_start)::float8,
               extract(epoch FROM now() - a.query_start)::float8, coalesce(a.query, '')
          FROM unnest(%s::text[]) AS w(name)
          JOIN pg_locks l ON l.locktype = 'relation' AND l.granted
               AND l.relation = to_regclass(w.name)
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.pid <> pg_backend_pid()
         ORDER BY a.xact_start NULLS LAST, a.pid
        """,
        (names,),
    ).fetchall()
    holders: list[TableLockHolder] = []
    seen: set[tuple[int, str]] = set()
    for name, pid, mode, *rest in rows:
        mode = from_server(mode)
        if (pid, name) in seen or not conflicts(wanted[name], mode):
            continue
        seen.add((pid, name))
        holders.append(TableLockHolder(pid, name, mode, *rest))
    return holders


def find_blockers(
    conn: psycopg.Connection[Any], wanted: dict[str, str], *, older_than_s: float
) -> list[TableLockHolder]:
    """The holders of conflicting locks on ``wanted``; else the long-open transactions.

    Never raises: it only decorates a lock-timeout message, which must not be lost to it.
    """
    import psycopg

    try:
        return table_lock_holders(conn, wanted) or long_transactions(conn, older_than_s)
    except psycopg.Error as exc:
        log.debug("could not look up the blocking sessions: %s", exc)
        return []


def describe_blockers(blockers: list[TableLockHolder]) -> str:
    """One sentence naming the blockers :func:`find_blockers` found."""
    if blockers and blockers[0].relation:
        return "Blocked by " + "; and by ".join(b.describe() for b in blockers)
    if blockers:
        return (
            "No session holds a conflicting table lock now; sessions with a transaction open "
            "longer than lock_timeout: " + "; ".join(b.describe() for b in blockers)
        )
    return "The session that held the lock has finished meanwhile"


def long_transactions(conn: psycopg.Connection[Any], older_than_s: float) -> list[TableLockHolder]:
    """Other sessions of this database in a transaction open longer than ``older_than_s``.

    The fallback when no table lock explains a lock timeout (a row lock, a lock the statement's
    text does not show): the usual suspects, oldest first, at most three.
    """
    rows = conn.execute(
        """
        SELECT a.pid, '', '', coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
               host(a.client_addr), a.state,
               extract(epoch FROM now() - a.xact_start)::float8,
               extract(epoch FROM now() - a.query_start)::float8, coalesce(a.query, '')
          FROM pg_stat_activity a
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
           AND a.xact_start < now() - make_interval(secs => %s)
         ORDER BY a.xact_start
         LIMIT 3
        """,
        (older_than_s,),
    ).fetchall()
    return [TableLockHolder(*row) for row in rows]
