"""The state tables: golang-migrate's ``schema_migrations`` and our ``schema_migrations_history``.

:class:`StateStore` is the only code that reads or writes them. ``schema_migrations`` keeps
golang-migrate's exact layout and protocol (empty it, then insert one row; ``-1`` with dirty
means dirty at no version) so that golang-migrate and this tool can take turns on one database.
Both tables live in the connection's current schema, as golang-migrate's do; the schema is read
once (with the lock key, or by the first catalog query) and every query names it, so a migration
that changes ``search_path`` (pg_dump's ``set_config('search_path', '', false)``) cannot move
them, as golang-migrate's qualified queries cannot be moved either.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from thv_registry.migrations.engine.model import (
    TOOL_NAME,
    HistoryDirection,
    HistoryEntry,
    VersionState,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

    Conn = psycopg.Connection[Any]

__all__ = ["StateStore", "NIL_VERSION"]

log = logging.getLogger(__name__)

NIL_VERSION = -1  # golang-migrate's database.NilVersion

#: history columns added after the first layout, with their definitions: an older table gets them
#: (and the current direction CHECK) from ``ensure_tables`` before anything writes to it
_ADDED_HISTORY_COLUMNS = {"interrupted": "boolean NOT NULL DEFAULT false"}
_DIRECTIONS = "(" + ", ".join(f"'{d.value}'" for d in HistoryDirection) + ")"

#: a history row's identity: version, name, direction, checksum, resulting_version
Entry = tuple[int, str, str, str | None, int | None]


class StateStore:
    """``schema_migrations`` (``table``) and its history, in ``schema``, on ``conn``.

    ``schema`` None: the connection's current schema, learnt by the first catalog query (for
    read-only use; a writer passes the schema its lock key was made from).
    """

    def __init__(self, conn: Conn, table: str = "schema_migrations", schema: str | None = None):
        self.conn = conn
        self.table = table
        self.schema = schema

    @property
    def history_table(self) -> str:
        return f"{self.table}_history"

    def _name(self, table: str) -> sql.Identifier:
        from psycopg import sql

        return sql.Identifier(*(() if self.schema is None else (self.schema,)), table)

    @property
    def _version_ident(self) -> sql.Identifier:
        return self._name(self.table)

    @property
    def _history_ident(self) -> sql.Identifier:
        return self._name(self.history_table)

    # -- reading ---------------------------------------------------------------------------------

    def _catalog(self) -> tuple[bool, set[str]]:
        """Whether ``schema_migrations`` exists, and the columns of our history table (empty
        when it does not exist): one round trip, which also learns the schema if unknown."""
        row = self.conn.execute(
            "SELECT s, to_regclass(format('%%I.%%I', s, %s::text)) IS NOT NULL, "
            "ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = "
            "to_regclass(format('%%I.%%I', s, %s::text)) AND attnum > 0 AND NOT attisdropped) "
            "FROM (SELECT coalesce(%s::text, current_schema()) AS s) AS here",
            (self.table, self.history_table, self.schema),
        ).fetchone()
        if row is None or row[0] is None:  # no current schema: nowhere to keep the tables
            return False, set()
        self.schema = str(row[0])
        return bool(row[1]), set(row[2] or ())

    def tables_exist(self) -> bool:
        """True when both state tables exist, ours in its current layout.

        Ours may be missing (a golang-migrate database) or older (written by an earlier release).
        """
        exists, columns = self._catalog()
        return exists and _ADDED_HISTORY_COLUMNS.keys() <= columns

    def read_version(self) -> VersionState:
        """Read ``schema_migrations`` without creating it: no table or no row means no version."""
        from psycopg import sql

        if not self._catalog()[0]:
            return VersionState(None, False, table_exists=False)
        query = sql.SQL("SELECT version, dirty FROM {} LIMIT 1").format(self._version_ident)
        return _version_state(self.conn.execute(query).fetchone())

    def read_state(self) -> tuple[VersionState, tuple[HistoryEntry, ...]]:
        """The version and every history row in order, in two round trips (a missing table is
        fine). An older history layout (read-only commands never upgrade it) lacks newer columns.
        """
        from psycopg import sql

        has_version_table, columns = self._catalog()
        queries = []
        if has_version_table:
            queries.append(
                sql.SQL("SELECT version, dirty FROM {} LIMIT 1").format(self._version_ident)
            )
        if columns:
            interrupted = sql.SQL("interrupted" if "interrupted" in columns else "false")
            queries.append(
                sql.SQL(
                    "SELECT version, name, direction, checksum, resulting_version, started_at, "
                    "finished_at, duration_ms, db_user, tool_version, {} FROM {} ORDER BY id"
                ).format(interrupted, self._history_ident)
            )
        current = VersionState(None, False, table_exists=False)
        history: tuple[HistoryEntry, ...] = ()
        if not queries:
            return current, history
        cursor = self.conn.execute(sql.SQL("; ").join(queries))  # one simple query, two results
        if has_version_table:
            current = _version_state(cursor.fetchone())
            cursor.nextset()
        if columns:
            history = tuple(HistoryEntry(*r) for r in cursor.fetchall())
        return current, history

    def list_tables(self) -> tuple[str, tuple[str, ...]]:
        """The schema and the tables (incl. partitioned, views excluded) in it."""
        if self.schema is None:
            self._catalog()
        rows = self.conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            (self.schema,),
        ).fetchall()
        return self.schema or "", tuple(str(r[0]) for r in rows)

    def missing_privileges(self) -> tuple[list[tuple[str, str]], bool]:
        """What the current user lacks to write the state tables, in one round trip:
        (table, privilege) pairs on the existing tables (tables named ``schema.table``), and
        whether a table is missing that it cannot create (no CREATE on the schema)."""
        needed = [(self.table, p) for p in ("SELECT", "INSERT", "DELETE")]
        needed += [(self.history_table, p) for p in ("SELECT", "INSERT", "UPDATE")]
        rows = self.conn.execute(
            "SELECT w.t, w.p, to_regclass(format('%%I.%%I', s, w.t)) IS NULL FROM (SELECT "
            "coalesce(%s::text, current_schema()) AS s) AS here, unnest(%s::text[], %s::text[]) "
            "AS w(t, p) WHERE CASE WHEN to_regclass(format('%%I.%%I', s, w.t)) IS NULL THEN "
            "NOT has_schema_privilege(s, 'CREATE') ELSE NOT (has_schema_privilege(s, 'USAGE') "
            "AND has_table_privilege(to_regclass(format('%%I.%%I', s, w.t)), w.p)) END",
            (self.schema, [t for t, _ in needed], [p for _, p in needed]),
        ).fetchall()
        schema = self.schema or "public"
        missing = [(f"{schema}.{t}", str(p)) for t, p, absent in rows if not absent]
        return missing, any(absent for _, _, absent in rows)

    # -- creating --------------------------------------------------------------------------------

    def ensure_tables(self, *, current: int | None) -> None:
        """Create the state tables if missing; a new history starts with a ``baseline`` row.

        The baseline records the version the database already had (e.g. from golang-migrate), so
        the planner knows which versions were applied before this tool kept a history.
        """
        from psycopg import sql

        self.conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version bigint NOT NULL PRIMARY KEY, "
                "dirty boolean NOT NULL)"
            ).format(self._version_ident)
        )
        columns = self._catalog()[1]
        if columns:
            self._upgrade_history(columns)
            return
        self.conn.execute(
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
            ).format(
                self._history_ident,
                sql.Identifier(f"{self.history_table}_direction_check"),
                sql.SQL(_DIRECTIONS),
            )
        )
        self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (version, name, direction, resulting_version, finished_at, "
                "tool_version) VALUES (%s, '', 'baseline', %s, clock_timestamp(), %s)"
            ).format(self._history_ident),
            (current or 0, current, _tool_version()),
        )
        self._keep_read_only_for_others()

    def _keep_read_only_for_others(self) -> None:
        """Take back write privileges that default privileges gave other roles on the tables.

        prime-db's ``ALTER DEFAULT PRIVILEGES`` grants the application role DML on every table
        the migration user creates; the state tables are the exception: only migrators write.
        """
        from psycopg import sql

        idents = (self._version_ident, self._history_ident)
        rows = self.conn.execute(
            "SELECT DISTINCT r.rolname FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
            "JOIN pg_roles r ON r.oid = a.grantee WHERE a.grantee <> c.relowner "
            "AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') AND c.oid = ANY("
            "ARRAY(SELECT to_regclass(format('%%I.%%I', %s::text, t)) "
            "FROM unnest(%s::text[]) t))",
            (self.schema, [self.table, self.history_table]),
        ).fetchall()
        for (role,) in rows:
            self.conn.execute(
                sql.SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(
                    sql.SQL(", ").join(idents), sql.Identifier(role)
                )
            )

    def _upgrade_history(self, columns: set[str]) -> None:
        """Bring a history table written by an earlier release to the current layout."""
        from psycopg import sql

        missing = [name for name in _ADDED_HISTORY_COLUMNS if name not in columns]
        if not missing:
            return
        log.info("upgrading %s: adding %s", self.history_table, ", ".join(missing))
        changes = [
            sql.SQL("ADD COLUMN {} {}").format(
                sql.Identifier(name), sql.SQL(_ADDED_HISTORY_COLUMNS[name])
            )
            for name in missing
        ]
        check = sql.Identifier(f"{self.history_table}_direction_check")
        changes.append(sql.SQL("DROP CONSTRAINT IF EXISTS {}").format(check))
        changes.append(
            sql.SQL("ADD CONSTRAINT {} CHECK (direction IN {})").format(check, sql.SQL(_DIRECTIONS))
        )
        self.conn.execute(
            sql.SQL("ALTER TABLE {} ").format(self._history_ident) + sql.SQL(", ").join(changes)
        )

    # -- writing ---------------------------------------------------------------------------------

    def set_version(self, version: int | None, *, dirty: bool, prefix: str = "") -> None:
        """golang-migrate's SetVersion: empty the table, then one row unless clean at no version.

        ``prefix``: SQL sent in the same query, before it (e.g. a session setting).
        """
        from psycopg import sql

        query = self._set_version_sql(version, dirty=dirty)
        self.conn.execute(sql.SQL(prefix) + query if prefix else query)

    def _set_version_sql(self, version: int | None, *, dirty: bool) -> sql.Composed:
        """The statements of ``set_version`` as one simple query (one round trip).

        golang-migrate truncates; DELETE leaves the same single row for it to read, without
        TRUNCATE's ACCESS EXCLUSIVE lock and the new file it creates on every step.
        """
        from psycopg import sql

        parts: list[sql.Composable] = [sql.SQL("DELETE FROM {}").format(self._version_ident)]
        if version is not None or dirty:
            parts.append(
                sql.SQL("INSERT INTO {} (version, dirty) VALUES ({}, {})").format(
                    self._version_ident,
                    sql.Literal(NIL_VERSION if version is None else version),
                    sql.Literal(dirty),
                )
            )
        return sql.SQL("; ").join(parts)

    def record_step(self, entry: Entry, *, commit: bool = False) -> None:
        """Set the clean version (the entry's resulting version) and add its finished history
        row, in one round trip.

        For a step inside a transaction: ``now()`` is the transaction's start, i.e. the step's,
        so the row carries the step's real start and duration without a round trip of its own.
        The step's COMMIT can travel in the same query.
        """
        from psycopg import sql

        parts: list[sql.Composable] = [
            self._set_version_sql(entry[4], dirty=False),
            self._finished_row_sql(entry, started="now()"),
        ]
        if commit:
            parts.append(sql.SQL("COMMIT"))
        self.conn.execute(sql.SQL("; ").join(parts))

    def record_history(self, entry: Entry) -> None:
        """Insert a finished row for something that runs no SQL (``force``, ``accept``)."""
        self.conn.execute(self._finished_row_sql(entry, started="clock_timestamp()"))

    def _finished_row_sql(self, entry: Entry, *, started: str) -> sql.Composed:
        """INSERT of a finished history row.

        ``started`` is SQL: ``now()`` (the transaction's start, i.e. the step's) or
        ``clock_timestamp()`` (a row that records no work: duration 0).
        """
        from psycopg import sql

        start = sql.SQL(started)
        version, name, direction, checksum, resulting = entry
        values = (version, name, str(direction), checksum, resulting, _tool_version())
        return sql.SQL(
            "INSERT INTO {} (version, name, direction, checksum, resulting_version, "
            "tool_version, started_at, finished_at, duration_ms) VALUES ({}, {}, {}, {}, {}, {}, "
            "{}, clock_timestamp(), extract(epoch FROM clock_timestamp() - {}) * 1000)"
        ).format(self._history_ident, *map(sql.Literal, values), start, start)

    def start_history(self, entry: Entry) -> int:
        """Insert an unfinished history row; return its id for :meth:`finish_history`."""
        from psycopg import sql

        version, name, direction, checksum, resulting = entry
        row = self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (version, name, direction, checksum, resulting_version, "
                "tool_version) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
            ).format(self._history_ident),
            (version, name, str(direction), checksum, resulting, _tool_version()),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def finish_history(self, entry_id: int) -> None:
        from psycopg import sql

        self.conn.execute(
            sql.SQL(
                "UPDATE {} SET finished_at = clock_timestamp(), duration_ms = "
                "extract(epoch FROM clock_timestamp() - started_at) * 1000 WHERE id = %s"
            ).format(self._history_ident),
            (entry_id,),
        )

    def close_open_history(self) -> int:
        """Mark every unfinished step as interrupted (after ``force``); return how many.

        A dirty-protocol step that failed leaves its row open (``finished_at`` NULL). Once the
        version is forced, that step is over: it is closed, flagged as never having completed.
        """
        from psycopg import sql

        cursor = self.conn.execute(
            sql.SQL(
                "UPDATE {} SET finished_at = clock_timestamp(), interrupted = true "
                "WHERE finished_at IS NULL"
            ).format(self._history_ident)
        )
        return cursor.rowcount


def _version_state(row: Any) -> VersionState:
    """The row of an existing ``schema_migrations``: none, or (-1, dirty) mean no version."""
    if row is None:
        return VersionState(None, False)
    version, dirty = int(row[0]), bool(row[1])
    return VersionState(None if version == NIL_VERSION else version, dirty)


def _tool_version() -> str:
    """What the history's ``tool_version`` column records: this package and its version."""
    from thv_registry import __version__

    return f"{TOOL_NAME} {__version__}"
