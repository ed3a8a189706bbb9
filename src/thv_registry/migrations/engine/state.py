"""The state tables: golang-migrate's ``schema_migrations`` and our ``schema_migrations_history``.

This is the only module that reads or writes them. ``schema_migrations`` keeps golang-migrate's
exact layout and protocol (truncate, then insert one row; ``-1`` with dirty means dirty at no
version) so that golang-migrate and this tool can take turns on one database. Both tables live in
the connection's current schema, as golang-migrate's do.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from thv_registry.migrations.engine.model import HistoryEntry, VersionState

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]

__all__ = [
    "read_version",
    "set_version",
    "ensure_tables",
    "tables_exist",
    "read_state",
    "start_history",
    "finish_history",
    "close_open_history",
    "record_history",
    "list_tables",
    "history_table",
]

log = logging.getLogger(__name__)

NIL_VERSION = -1  # golang-migrate's database.NilVersion


def history_table(table: str) -> str:
    return f"{table}_history"


def _ident(table: str) -> Any:
    from psycopg import sql

    return sql.Identifier(table)


#: history columns added after the first layout, with their definitions: an older table gets them
#: (and the current direction CHECK) from ``ensure_tables`` before anything writes to it
_ADDED_HISTORY_COLUMNS = {"interrupted": "boolean NOT NULL DEFAULT false"}
_DIRECTIONS = "('up', 'down', 'force', 'baseline', 'accept')"


def _catalog(conn: Conn, table: str) -> tuple[bool, set[str]]:
    """Whether ``schema_migrations`` (``table``) exists, and the columns of our history table
    (empty when it does not exist), in the current schema: one round trip."""
    row = conn.execute(
        "SELECT to_regclass(format('%%I.%%I', current_schema(), %s::text)) IS NOT NULL, "
        "ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = "
        "to_regclass(format('%%I.%%I', current_schema(), %s::text)) AND attnum > 0 "
        "AND NOT attisdropped)",
        (table, history_table(table)),
    ).fetchone()
    return bool(row and row[0]), set(row[1] if row else ())


def tables_exist(conn: Conn, table: str) -> bool:
    """True when both state tables exist, ours in its current layout.

    Ours may be missing (a golang-migrate database) or older (written by an earlier release).
    """
    exists, columns = _catalog(conn, table)
    return exists and _ADDED_HISTORY_COLUMNS.keys() <= columns


def read_version(conn: Conn, table: str) -> VersionState:
    """Read ``schema_migrations`` without creating it: no table or no row means no version."""
    from psycopg import sql

    if not _catalog(conn, table)[0]:
        return VersionState(None, False, table_exists=False)
    return _version_state(
        conn.execute(
            sql.SQL("SELECT version, dirty FROM {} LIMIT 1").format(_ident(table))
        ).fetchone()
    )


def _version_state(row: Any) -> VersionState:
    """The row of an existing ``schema_migrations``: none, or (-1, dirty) mean no version."""
    if row is None:
        return VersionState(None, False)
    version, dirty = int(row[0]), bool(row[1])
    return VersionState(None if version == NIL_VERSION else version, dirty)


def ensure_tables(conn: Conn, table: str, *, current: int | None) -> None:
    """Create the state tables if missing; a new history starts with a ``baseline`` row.

    The baseline records the version the database already had (e.g. from golang-migrate), so the
    planner knows which versions were applied before this tool kept a history.
    """
    from psycopg import sql

    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version bigint NOT NULL PRIMARY KEY, "
            "dirty boolean NOT NULL)"
        ).format(_ident(table))
    )
    hist = history_table(table)
    columns = _catalog(conn, table)[1]
    if columns:
        _upgrade_history(conn, hist, columns)
        return
    conn.execute(
        sql.SQL(
            """CREATE TABLE {} (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                version bigint NOT NULL,
                name text NOT NULL,
                direction text NOT NULL CONSTRAINT {} CHECK (direction IN {}),
                checksum text,
                resulting_version bigint,
                started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                finished_at timestamptz,
                duration_ms double precision,
                db_user text NOT NULL DEFAULT current_user,
                tool_version text,
                interrupted boolean NOT NULL DEFAULT false
            )"""
        ).format(_ident(hist), _ident(f"{hist}_direction_check"), sql.SQL(_DIRECTIONS))
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (version, name, direction, resulting_version, finished_at, "
            "tool_version) VALUES (%s, '', 'baseline', %s, clock_timestamp(), %s)"
        ).format(_ident(hist)),
        (current or 0, current, _tool_version()),
    )
    _keep_read_only_for_others(conn, (table, hist))


def _keep_read_only_for_others(conn: Conn, tables: tuple[str, ...]) -> None:
    """Take back write privileges that default privileges gave other roles on the state tables.

    prime-db's ``ALTER DEFAULT PRIVILEGES`` grants the application role DML on every table the
    migration user creates; the state tables are the exception: only migrators write them.
    """
    from psycopg import sql

    rows = conn.execute(
        "SELECT DISTINCT r.rolname FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "JOIN pg_roles r ON r.oid = a.grantee WHERE a.grantee <> c.relowner "
        "AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') AND c.oid = ANY(ARRAY("
        "SELECT to_regclass(format('%%I.%%I', current_schema(), t)) FROM unnest(%s::text[]) t))",
        (list(tables),),
    ).fetchall()
    for (role,) in rows:
        conn.execute(
            sql.SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(
                sql.SQL(", ").join(map(_ident, tables)), sql.Identifier(role)
            )
        )


def _upgrade_history(conn: Conn, hist: str, columns: set[str]) -> None:
    """Bring a history table written by an earlier release to the current layout."""
    from psycopg import sql

    missing = [name for name in _ADDED_HISTORY_COLUMNS if name not in columns]
    if not missing:
        return
    log.info("upgrading %s: adding %s", hist, ", ".join(missing))
    changes = [
        sql.SQL("ADD COLUMN {} {}").format(
            sql.Identifier(name), sql.SQL(_ADDED_HISTORY_COLUMNS[name])
        )
        for name in missing
    ]
    check = sql.Identifier(f"{hist}_direction_check")
    changes.append(sql.SQL("DROP CONSTRAINT IF EXISTS {}").format(check))
    changes.append(
        sql.SQL("ADD CONSTRAINT {} CHECK (direction IN {})").format(check, sql.SQL(_DIRECTIONS))
    )
    conn.execute(sql.SQL("ALTER TABLE {} ").format(_ident(hist)) + sql.SQL(", ").join(changes))


def set_version(conn: Conn, table: str, version: int | None, *, dirty: bool) -> None:
    """golang-migrate's SetVersion: empty the table, then one row unless clean at no version."""
    conn.execute(_set_version_sql(table, version, dirty=dirty))


def _set_version_sql(table: str, version: int | None, *, dirty: bool) -> Any:
    """The statements of ``set_version`` as one simple query (one round trip).

    golang-migrate truncates; DELETE leaves the same single row for it to read, without
    TRUNCATE's ACCESS EXCLUSIVE lock and the new file it creates on every step.
    """
    from psycopg import sql

    parts = [sql.SQL("DELETE FROM {}").format(_ident(table))]
    if version is not None or dirty:
        parts.append(
            sql.SQL("INSERT INTO {} (version, dirty) VALUES ({}, {})").format(
                _ident(table),
                sql.Literal(NIL_VERSION if version is None else version),
                sql.Literal(dirty),
            )
        )
    return sql.SQL("; ").join(parts)


def record_step(
    conn: Conn,
    table: str,
    *,
    version: int,
    name: str,
    direction: str,
    checksum: str | None,
    resulting_version: int | None,
    commit: bool = False,
) -> None:
    """Set the clean version and add the finished history row, in one round trip.

    For a step inside a transaction: ``now()`` is the transaction's start, i.e. the step's, so
    the row carries the step's real start and duration without a round trip of its own. The
    step's COMMIT can travel in the same query.
    """
    from psycopg import sql

    entry = (version, name, direction, checksum, resulting_version)
    parts = [
        _set_version_sql(table, resulting_version, dirty=False),
        _finished_row_sql(table, entry, started="now()"),
    ]
    if commit:
        parts.append(sql.SQL("COMMIT"))
    conn.execute(sql.SQL("; ").join(parts))


def _finished_row_sql(
    table: str, entry: tuple[int, str, str, str | None, int | None], *, started: str
) -> Any:
    """INSERT of a finished history row (version, name, direction, checksum, resulting_version).

    ``started`` is SQL: ``now()`` (the transaction's start, i.e. the step's) or
    ``clock_timestamp()`` (a row that records no work: duration 0).
    """
    from psycopg import sql

    start = sql.SQL(started)
    return sql.SQL(
        "INSERT INTO {} (version, name, direction, checksum, resulting_version, tool_version, "
        "started_at, finished_at, duration_ms) VALUES ({}, {}, {}, {}, {}, {}, {}, "
        "clock_timestamp(), extract(epoch FROM clock_timestamp() - {}) * 1000)"
    ).format(
        _ident(history_table(table)),
        *map(sql.Literal, (*entry, _tool_version())),
        start,
        start,
    )


def start_history(
    conn: Conn,
    table: str,
    *,
    version: int,
    name: str,
    direction: str,
    checksum: str | None,
    resulting_version: int | None,
) -> int:
    """Insert an unfinished history row; return its id for :func:`finish_history`."""
    from psycopg import sql

    row = conn.execute(
        sql.SQL(
            "INSERT INTO {} (version, name, direction, checksum, resulting_version, tool_version) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
        ).format(_ident(history_table(table))),
        (version, name, direction, checksum, resulting_version, _tool_version()),
    ).fetchone()
    assert row is not None
    return int(row[0])


def finish_history(conn: Conn, table: str, entry_id: int) -> None:
    from psycopg import sql

    conn.execute(
        sql.SQL(
            "UPDATE {} SET finished_at = clock_timestamp(), duration_ms = "
            "extract(epoch FROM clock_timestamp() - started_at) * 1000 WHERE id = %s"
        ).format(_ident(history_table(table))),
        (entry_id,),
    )


def record_history(
    conn: Conn,
    table: str,
    *,
    version: int,
    name: str,
    direction: str,
    checksum: str | None,
    resulting_version: int | None,
) -> None:
    """Insert a finished row for something that runs no SQL (``force``, ``accept``)."""
    entry = (version, name, direction, checksum, resulting_version)
    conn.execute(_finished_row_sql(table, entry, started="clock_timestamp()"))


def close_open_history(conn: Conn, table: str) -> int:
    """Mark every unfinished step as interrupted (after ``force``); return how many there were.

    A dirty-protocol step that failed leaves its row open (``finished_at`` NULL). Once the version
    is forced, that step is over: it is closed, flagged as never having completed.
    """
    from psycopg import sql

    cursor = conn.execute(
        sql.SQL(
            "UPDATE {} SET finished_at = clock_timestamp(), interrupted = true "
            "WHERE finished_at IS NULL"
        ).format(_ident(history_table(table)))
    )
    return cursor.rowcount


def list_tables(conn: Conn) -> tuple[str, tuple[str, ...]]:
    """The current schema and the tables (incl. partitioned, views excluded) in it."""
    row = conn.execute("SELECT current_schema()").fetchone()
    schema = str(row[0]) if row and row[0] else ""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    ).fetchall()
    return schema, tuple(str(r[0]) for r in rows)


def read_state(conn: Conn, table: str) -> tuple[VersionState, tuple[HistoryEntry, ...]]:
    """The version and every history row in order, in two round trips (a missing table is fine).

    First the catalog (which state tables exist, the history's columns), then both tables in one
    query. An older history layout (read-only commands never upgrade it) lacks newer columns.
    """
    from psycopg import sql

    has_version_table, columns = _catalog(conn, table)
    queries = []
    if has_version_table:
        queries.append(sql.SQL("SELECT version, dirty FROM {} LIMIT 1").format(_ident(table)))
    if columns:
        interrupted = sql.SQL("interrupted" if "interrupted" in columns else "false")
        queries.append(
            sql.SQL(
                "SELECT version, name, direction, checksum, resulting_version, started_at, "
                "finished_at, duration_ms, db_user, tool_version, {} FROM {} ORDER BY id"
            ).format(interrupted, _ident(history_table(table)))
        )
    current = VersionState(None, False, table_exists=False)
    history: tuple[HistoryEntry, ...] = ()
    if not queries:
        return current, history
    cursor = conn.execute(sql.SQL("; ").join(queries))  # one simple query, one result each
    if has_version_table:
        current = _version_state(cursor.fetchone())
        cursor.nextset()
    if columns:
        history = tuple(HistoryEntry(*r) for r in cursor.fetchall())
    return current, history


def _tool_version() -> str:
    from thv_registry import __version__

    return f"thv-registry-api {__version__}"
