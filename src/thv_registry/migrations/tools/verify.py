"""``verify``: every migration up, down and up again on a scratch database, schemas compared.

For each migration in order: snapshot the schema (catalogs, not pg_dump text), apply its up with
the real engine (``Migrator``, so the transaction rules are the real ones), snapshot, apply its
down, compare with the snapshot taken before the up, apply the up again and compare with the
snapshot taken after the first up. With data (the default), generated rows are inserted into every
table after each up, so that a down (or a later up) that only fails on real data is caught; when
that happens the tables are emptied and the step is tried again, so the schema comparison still
runs. A chain that cannot continue (a re-up that fails on what a down left behind, a step left
dirty) is rebuilt on a fresh scratch database up to that migration and goes on from there.

The scratch database ``thv_verify_<random>`` is created on the configured server (the migration
user needs CREATEDB) and always dropped at the end, also on failure. Nothing here prints.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from thv_registry.errors import MigrationFailed, PermissionDenied, ThvError
from thv_registry.migrations.engine.model import Down, Goto, Migration
from thv_registry.migrations.tools.snapshot import Difference, Snapshot

if TYPE_CHECKING:
    import psycopg

    from thv_registry.db.connect import ConnectionParams
    from thv_registry.migrations.engine.migrator import Migrator
    from thv_registry.migrations.engine.source import Source

__all__ = ["Finding", "MigrationReport", "VerifyReport", "verify", "new_scratch_name"]

log = logging.getLogger(__name__)

APPLICATION_NAME = "thv-registry-api verify"
SCRATCH_PREFIX = "thv_verify_"


@dataclass(frozen=True)
class Finding:
    """Something a migration gets wrong; ``warning`` for what cannot be checked (no down file)."""

    severity: Literal["error", "warning"]
    message: str  #: e.g. "down of 000007 leaves index servers_name_idx on servers"


@dataclass(frozen=True)
class MigrationReport:
    migration: Migration
    status: Literal["ok", "failed", "warning", "not verified"]
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()  #: e.g. tables that refused generated rows
    rows: tuple[tuple[str, int], ...] = ()  #: generated rows inserted after the up, per table

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class VerifyReport:
    database: str  #: the scratch database's name
    server: str  #: user@host:port of the server it lived on
    with_data: bool
    migrations: tuple[MigrationReport, ...]
    dropped: bool  #: the scratch database was dropped at the end
    drop_error: str | None = None  #: why it could not be dropped (it is left on the server)

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.migrations)

    @property
    def failed(self) -> tuple[MigrationReport, ...]:
        return tuple(m for m in self.migrations if not m.ok)


def new_scratch_name() -> str:
    return f"{SCRATCH_PREFIX}{secrets.token_hex(3)}"


def verify(
    params: ConnectionParams,
    source: Source,
    *,
    with_data: bool = True,
    scratch_name: str | None = None,
    on_migration: Callable[[MigrationReport], None] | None = None,
) -> VerifyReport:
    """Verify every migration of ``source`` on a scratch database next to ``params``' database.

    :param params: how to reach the server; the scratch database is created and dropped from
        ``params.dbname`` by ``params.user``, who needs the CREATEDB privilege.
    :param on_migration: called with each migration's report as soon as it is known.
    """
    scratch = _Scratch(params, scratch_name or new_scratch_name(), source, with_data)
    reports: list[MigrationReport] = []
    scratch.create()
    try:
        stopped: str | None = None
        for index, migration in enumerate(source.migrations):
            if stopped is not None:
                report = MigrationReport(migration, "not verified", notes=(stopped,))
            else:
                report, stopped = _verify_one(scratch, index, migration)
            reports.append(report)
            if on_migration:
                on_migration(report)
    finally:
        drop_error = scratch.drop()
    return VerifyReport(
        scratch.name,
        f"{params.user}@{params.host}:{params.port}",
        with_data,
        tuple(reports),
        dropped=drop_error is None,
        drop_error=drop_error,
    )


@dataclass
class _Outcome:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def error(self, message: str) -> None:
        self.findings.append(Finding("error", message))


def _verify_one(
    scratch: _Scratch, index: int, migration: Migration
) -> tuple[MigrationReport, str | None]:
    """Up, down, up for one migration; the report, and why the chain stops (None: it goes on)."""
    v = _num(migration)
    out = _Outcome()
    before = scratch.snapshot()
    up_error = scratch.run(Goto(migration.version), out, f"up of {v}", data_note=True)
    if up_error:
        return _report(migration, out), f"not run: the up of {v} failed"
    scratch.fill(out, first=True)
    after_up = scratch.snapshot()
    if migration.down is None:
        out.findings.append(
            Finding("warning", f"{v} has no down file, so it cannot be reverted or verified")
        )
        return _report(migration, out), None
    if scratch.run(Down(1), out, f"down of {v}"):
        return _rebuilt(scratch, index, migration, out)
    for d in _diff(before, scratch.snapshot()):
        out.error(_down_sentence(v, d))
    if scratch.run(Goto(migration.version), out, f"re-applying {v} after its down"):
        return _rebuilt(scratch, index, migration, out)
    scratch.fill(out, first=False)
    for d in _diff(after_up, scratch.snapshot()):
        out.error(f"re-applying {v} after its down gives a different schema: {d.message}")
    return _report(migration, out), None


def _rebuilt(
    scratch: _Scratch, index: int, migration: Migration, out: _Outcome
) -> tuple[MigrationReport, str | None]:
    """Continue the chain on a fresh scratch database migrated up to ``migration``."""
    failure = scratch.rebuild(index)
    stop = f"not run: the chain could not be rebuilt after {_num(migration)} ({failure})"
    return _report(migration, out), stop if failure else None


def _report(migration: Migration, out: _Outcome) -> MigrationReport:
    if any(f.severity == "error" for f in out.findings):
        status: Literal["ok", "failed", "warning"] = "failed"
    else:
        status = "warning" if out.findings else "ok"
    return MigrationReport(
        migration, status, tuple(out.findings), tuple(out.notes), tuple(sorted(out.rows.items()))
    )


def _diff(expected: Snapshot, actual: Snapshot) -> list[Difference]:
    from thv_registry.migrations.tools.snapshot import diff

    return diff(expected, actual)


def _down_sentence(v: str, d: Difference) -> str:
    if d.change == "extra":
        return f"down of {v} leaves {d.label}"
    if d.change == "missing":
        return f"down of {v} does not restore {d.label}"
    return f"down of {v} leaves {d.label} {d.detail}"


def _num(migration: Migration) -> str:
    return f"{migration.version:06d}"


class _Scratch:
    """The scratch database: created, migrated, filled, snapshotted, rebuilt and dropped."""

    def __init__(self, admin: ConnectionParams, name: str, source: Source, with_data: bool) -> None:
        self.admin = admin
        self.name = name
        self.params = replace(admin, dbname=name)
        self.source = source
        self.with_data = with_data
        self.conn: psycopg.Connection[Any] | None = None
        self.created = False

    # -- lifecycle --------------------------------------------------------------------------------

    def create(self) -> None:
        import psycopg
        from psycopg import sql

        with self._admin() as conn:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise PermissionDenied(
                    f"Cannot create the scratch database {self.name} on "
                    f"{self.admin.host}:{self.admin.port} as {self.admin.user!r}: "
                    f"{exc.diag.message_primary or exc}. verify needs the CREATEDB privilege to "
                    "create (and afterwards drop) a throw-away database; nothing was created.",
                    hint=f"Ask your DBA to run ALTER ROLE {self.admin.user} CREATEDB, or run "
                    "verify against a development server (or the embedded PostgreSQL).",
                    user=self.admin.user,
                    needed_for="scratch_database",
                ) from exc
        self.created = True
        self._connect()
        if self.params.search_path is not None:  # migrations.schema: the scratch copy needs it too
            schema = sql.Identifier(self.params.search_path)
            self._conn().execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))

    def drop(self) -> str | None:
        """Drop the scratch database; why that failed (it is then left behind), or None.

        Never raises: a failure here must neither hide the report nor an error that is already
        on its way up.
        """
        import psycopg
        from psycopg import sql

        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if not self.created:
            return None
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
        try:
            with self._admin() as conn:
                conn.execute(query)
        except (psycopg.Error, ThvError) as exc:
            why = _why(exc)
            log.warning("could not drop the scratch database %s: %s", self.name, why)
            return why
        self.created = False
        return None

    def rebuild(self, index: int) -> str | None:
        """A fresh scratch database with migrations 0..index applied; the reason if that fails."""
        failure = self.drop()
        if failure is not None:
            return f"the scratch database could not be dropped: {failure}"
        self.create()
        out = _Outcome()
        for migration in self.source.migrations[: index + 1]:
            what = f"up of {_num(migration)}"
            error = self.run(Goto(migration.version), out, what, data_note=True)
            if error:
                return error
            self.fill(out, first=False)
        return None

    # -- steps ------------------------------------------------------------------------------------

    def run(
        self, request: Goto | Down, out: _Outcome, what: str, *, data_note: bool = False
    ) -> str | None:
        """Apply ``request``; record a finding if it fails. Returns why the chain must be rebuilt.

        A step that fails while generated rows are present is tried again on empty tables: the
        failure with data is the finding, and the schema checks still run. With ``data_note``
        (a first up, which meets rows generated for the previous schema, not rows its own
        down produced) that failure is only a note: generated values need not be realistic.
        """
        try:
            self._migrator().apply(request)
            return None
        except ThvError as exc:
            first = exc
        if self.with_data and not self._migrator().version().dirty and self._has_rows():
            self._truncate()
            try:
                self._migrator().apply(request)
            except ThvError as exc:
                out.error(f"{what} fails: {_message(exc)}")
                return _message(exc)
            if data_note:
                out.notes.append(
                    f"{what} fails on the generated rows ({_message(first)}); it was verified "
                    "on emptied tables"
                )
            else:
                out.error(f"{what} fails with rows present: {_message(first)}")
            return None
        out.error(f"{what} fails: {_message(first)}")
        return _message(first)

    def fill(self, out: _Outcome, *, first: bool) -> None:
        if not self.with_data:
            return
        from thv_registry.migrations.tools.sampledata import fill

        result = fill(self._conn())
        if first:
            out.rows = dict(result.inserted)
            for table, reason in sorted(result.skipped.items()):
                out.notes.append(f"no generated rows in table {table}: {reason}")

    def snapshot(self) -> Snapshot:
        from thv_registry.migrations.tools.snapshot import take

        conn = self._conn()
        row = conn.execute("SELECT current_schema()").fetchone()
        return take(conn, str(row[0]) if row and row[0] else "public")

    # -- internals --------------------------------------------------------------------------------

    def _migrator(self) -> Migrator:
        from thv_registry.migrations.engine.migrator import Migrator

        return Migrator(
            self.params, self.source, lock_wait_s=5.0, application_name=APPLICATION_NAME
        )

    def _admin(self) -> psycopg.Connection[Any]:
        from thv_registry.db.connect import connect

        return connect(self.admin, application_name=APPLICATION_NAME)

    def _connect(self) -> None:
        from thv_registry.db.connect import connect

        self.conn = connect(self.params, application_name=APPLICATION_NAME)

    def _conn(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            self._connect()
        assert self.conn is not None
        return self.conn

    def _tables(self) -> list[str]:
        from thv_registry.migrations.tools.snapshot import STATE_TABLES

        rows = (
            self._conn()
            .execute(
                "SELECT c.relname FROM pg_class c"
                " WHERE c.relnamespace = current_schema()::regnamespace"
                " AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
                " AND NOT c.relname = ANY(%s)"
                " ORDER BY 1",
                (list(STATE_TABLES),),
            )
            .fetchall()
        )
        return [str(r[0]) for r in rows]

    def _has_rows(self) -> bool:
        from psycopg import sql

        conn = self._conn()
        for table in self._tables():
            q = sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(table))
            row = conn.execute(q).fetchone()
            if row and row[0]:
                return True
        return False

    def _truncate(self) -> None:
        from psycopg import sql

        tables = self._tables()
        if tables:
            names = sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            self._conn().execute(sql.SQL("TRUNCATE {} CASCADE").format(names))


def _why(exc: Exception) -> str:
    import psycopg

    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        return exc.diag.message_primary
    return exc.message.rstrip(". ") if isinstance(exc, ThvError) else str(exc)


def _message(exc: ThvError) -> str:
    """Where and why a step failed, without the engine's recovery advice (the scratch database
    is thrown away)."""
    from thv_registry.db.connect import server_message

    cause = exc.__cause__
    if isinstance(exc, MigrationFailed) and exc.location and cause is not None:
        return f"{server_message(cause)} at {exc.location}"
    return exc.message.rstrip(". ")
