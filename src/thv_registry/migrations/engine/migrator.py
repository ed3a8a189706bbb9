"""``Migrator``: the library entry point. Plans, then applies under the lock; never prints.

The CLI confirms between :meth:`Migrator.plan` and :meth:`Migrator.apply`, so the prompt shows
exactly what will run. ``apply`` re-reads the state once the lock is held and plans again; when a
confirmed plan is passed and the state moved meanwhile, it refuses (``StateChanged``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from thv_registry.errors import (
    ConnectionLost,
    SchemaMissing,
    StateChanged,
    StateTablesDenied,
    UnknownVersion,
)
from thv_registry.migrations.engine.lock import OUR_APPLICATION_PREFIX
from thv_registry.migrations.engine.model import (
    DatabaseView,
    ForceResult,
    HistoryDirection,
    HistoryEntry,
    Plan,
    Redo,
    Request,
    RunResult,
    StepEvent,
    VersionState,
)

if TYPE_CHECKING:
    import psycopg

    from thv_registry.db.connect import ConnectionParams
    from thv_registry.errors import ConnectionFailed
    from thv_registry.migrations.engine.source import Source
    from thv_registry.migrations.engine.state import StateStore

    Conn = psycopg.Connection[tuple[object, ...]]

__all__ = [
    "Migrator",
    "DEFAULT_LOCK_WAIT_S",
    "DEFAULT_LOCK_TIMEOUT_MS",
    "DEFAULT_LOCK_RETRIES",
    "DEFAULT_STATEMENT_TIMEOUT_MS",
]

log = logging.getLogger(__name__)

DEFAULT_LOCK_WAIT_S = 15.0  #: how long to wait for the advisory lock (golang-migrate's default)
#: the longest PostgreSQL lock_timeout of a transactional step (its attempts escalate up to it)
DEFAULT_LOCK_TIMEOUT_MS = 5000
DEFAULT_LOCK_RETRIES = 3  #: extra attempts of a step that hit lock_timeout
DEFAULT_STATEMENT_TIMEOUT_MS = 0  #: statement_timeout inside steps; 0: not set (the server's)
APPLICATION_NAME = f"{OUR_APPLICATION_PREFIX} migrate"  #: how other sessions see ours


class Migrator:
    """Run migrations from ``source`` against the database ``params`` describe."""

    def __init__(
        self,
        params: ConnectionParams,
        source: Source,
        *,
        lock_wait_s: float = DEFAULT_LOCK_WAIT_S,
        lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
        lock_retries: int = DEFAULT_LOCK_RETRIES,
        statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
        application_name: str = APPLICATION_NAME,
        migrations_table: str = "schema_migrations",
        wait_for_db_s: float = 0.0,
        on_wait: Callable[[ConnectionFailed, float], None] | None = None,
    ) -> None:
        """:param wait_for_db_s: retry the first connection this long while the server is not
        reachable yet (a container started beside its database); ``on_wait`` is told once.
        """
        self.params = params
        self.source = source
        self.lock_wait_s = lock_wait_s
        self.lock_timeout_ms = lock_timeout_ms
        self.lock_retries = lock_retries
        self.statement_timeout_ms = statement_timeout_ms
        self.application_name = application_name
        self.migrations_table = migrations_table
        self.wait_for_db_s = wait_for_db_s
        self.on_wait = on_wait
        self._schema_checked = params.search_path is None

    # -- read-only -------------------------------------------------------------------------------

    def version(self) -> VersionState:
        """The version and dirty flag now (no lock, no writes)."""
        with self._connect() as conn:
            return self._store(conn).read_version()

    def plan(self, request: Request) -> Plan:
        """Plan ``request`` from the current state without writing anything.

        A dirty version is read again under the migration lock: golang-migrate marks every step
        dirty while it runs (and so do our non-transactional steps), so dirty with the lock held
        means a migration in progress. Waiting for it (``lock_wait_s``) tells that apart from a
        failed one, which stays dirty after its migrator is gone.
        """
        with self._connect() as conn, self._connection_kept(conn):
            plan = self._plan(self._store(conn), request, settle=True)
        accept: frozenset[int] = getattr(request, "accept_changed", frozenset())
        for version in sorted(accept - {c.version for c in plan.accepted}):
            log.warning(
                "accepting a changed file of version %d: it has not changed since it was "
                "applied (or it is not applied, or was applied by another tool); nothing to accept",
                version,
            )
        return plan

    def read_state(self) -> tuple[VersionState, tuple[HistoryEntry, ...], dict[int, str]]:
        """The version, the history and the sha256 of each applied version's up file now.

        A dirty version is read again under the lock (see :meth:`plan`); nothing is written.
        """
        with self._connect() as conn:
            current, history = self._read(self._store(conn), settle=True)
            return current, history, self._checksums(current, history)

    def inspect(self, *, history_rows: int = 5) -> DatabaseView:
        """The version, the last history rows and the tables of the schema (shown before force)."""
        with self._connect() as conn:
            store = self._store(conn)
            current, history = self._read(store)
            schema, tables = store.list_tables()
        recent = history[-history_rows:] if history_rows else ()
        return DatabaseView(current, recent, schema, tables)

    def force_target(self, version: int) -> int | None:
        """Check a ``force`` argument: -1 (no version) or a version of the migration set."""
        if version == -1:
            return None
        if self.source.get(version) is None:
            raise self._unknown(version, "force")
        return version

    # -- writing ---------------------------------------------------------------------------------

    def apply(
        self,
        request: Request,
        *,
        confirmed: Plan | None = None,
        on_step: Callable[[StepEvent], None] | None = None,
        before_run: Callable[[Plan], None] | None = None,
    ) -> RunResult:
        """Take the lock, plan ``request`` again from the state seen under it, and run the plan.

        :param confirmed: the plan a person approved; if the state changed so that the new plan
            differs, raise ``StateChanged`` instead of running something nobody confirmed.
        :param before_run: called with the final plan under the lock, before the first step
            (e.g. the CLI's backup before a revert, so no other runner can slip in between);
            not called when there is nothing to run. An exception stops the run: nothing ran.
        """
        from thv_registry.migrations.engine import runner

        with self._connect() as conn, self._connection_kept(conn), self._locked(conn) as store:
            plan = self._plan(store, request)
            if confirmed is not None and not _same_steps(plan, confirmed):
                raise StateChanged(
                    "The database changed while the plan was being confirmed: it was at "
                    f"{_v(confirmed.current.version)} and is now at {_v(plan.current.version)}"
                    f"{' (dirty)' if plan.current.dirty else ''}; nothing was run."
                )
            if not plan.is_empty:
                _check_privileges(store)  # before anything runs (down's backup included)
            if before_run is not None and not plan.is_empty:
                before_run(plan)
            return runner.run(
                store,
                plan,
                lock_timeout_ms=self.lock_timeout_ms,
                lock_retries=self.lock_retries,
                statement_timeout_ms=self.statement_timeout_ms,
                on_step=on_step,
            )

    def redo(self, **options: Any) -> RunResult:
        """Revert the last applied migration and apply it again: ``apply(Redo(), **options)``,
        one plan under one hold of the lock (``NotEnoughApplied`` when nothing is applied)."""
        return self.apply(Redo(), **options)

    def force(self, version: int, *, confirmed: VersionState | None = None) -> ForceResult:
        """Set ``version`` (-1: no version) clean, running nothing; record it in the history.

        Runs under the migration lock. Unfinished steps in the history are closed as interrupted.
        :param confirmed: the state a person saw when confirming; if it moved, ``StateChanged``.
        """
        target = self.force_target(version)
        with self._connect() as conn, self._connection_kept(conn), self._locked(conn) as store:
            current = store.read_version()
            if confirmed is not None and (current.version, current.dirty) != (
                confirmed.version,
                confirmed.dirty,
            ):
                raise StateChanged(
                    "The database changed while the force was being confirmed: it was at "
                    f"{_v(confirmed.version)}{' (dirty)' if confirmed.dirty else ''} and is now "
                    f"at {_v(current.version)}{' (dirty)' if current.dirty else ''}; nothing was "
                    "changed."
                )
            _check_privileges(store)
            with conn.transaction():
                if not store.tables_exist():
                    store.ensure_tables(current=current.version)
                closed = store.close_open_history()
                store.set_version(target, dirty=False)
                migration = self.source.get(target) if target is not None else None
                name = migration.name if migration else ""
                store.record_history((target or 0, name, HistoryDirection.FORCE, None, target))
        log.warning(
            "forced %s (was %s%s) without running any migration; recorded in %s",
            _v(target),
            _v(current.version),
            ", dirty" if current.dirty else "",
            store.history_table,
        )
        return ForceResult(current, target, closed)

    def baseline(self, version: int, *, confirmed: VersionState | None = None) -> ForceResult:
        """Record ``version`` clean for a database whose schema already exists, running nothing.

        The history gets a ``baseline`` row: versions up to ``version`` count as applied. Refused
        (``VersionAlreadySet``) when the database already has a version, clean or dirty; use
        force for that. Runs under the migration lock.
        """
        from thv_registry.migrations.engine.baseline import record_baseline

        migration = self.source.get(version)
        if migration is None:
            raise self._unknown(version, "baseline")
        with self._connect() as conn, self._connection_kept(conn), self._locked(conn) as store:
            return record_baseline(store, migration, confirmed=confirmed)

    # -- internals -------------------------------------------------------------------------------

    def _unknown(self, version: int, purpose: str) -> UnknownVersion:
        versions = [m.version for m in self.source.migrations]
        span = f"{min(versions)} to {max(versions)}" if versions else "none"
        return UnknownVersion(
            f"Cannot {purpose} version {version}: the migration set ({self.source.origin}) has "
            f"no migration {version} (its versions: {span}). Nothing was changed.",
            version=version,
            purpose=purpose,
        )

    def _read(
        self, store: StateStore, *, settle: bool = False
    ) -> tuple[VersionState, tuple[HistoryEntry, ...]]:
        """The version and history; ``settle``: a dirty version is read again under the lock."""
        current, history = store.read_state()
        if settle and current.dirty:  # a step in progress, or a failed one: see plan()
            with self._locked(store.conn) as locked:
                current, history = locked.read_state()
        return current, history

    def _checksums(
        self, current: VersionState, history: tuple[HistoryEntry, ...]
    ) -> dict[int, str]:
        """sha256 of the up file of each applied version now; only those files are read."""
        from thv_registry.migrations.engine import planner

        if not history:
            return {}  # no history, no recorded checksums: nothing to compare
        by_version = {m.version: m for m in self.source.migrations}
        applied = planner.applied_versions(by_version, current, history)
        return {  # a version without a file (missing from the set) has no checksum to compare
            v: hashlib.sha256(by_version[v].up.read_bytes()).hexdigest()
            for v in applied
            if v in by_version
        }

    def _plan(self, store: StateStore, request: Request, *, settle: bool = False) -> Plan:
        from thv_registry.migrations.engine import planner

        current, history = self._read(store, settle=settle)
        checksums = None if current.dirty else self._checksums(current, history)
        return planner.plan(request, self.source.migrations, current, history, checksums)

    def _store(self, conn: Conn, schema: str | None = None) -> StateStore:
        """The state tables; without ``schema``, the current one (learnt by the first read)."""
        from thv_registry.migrations.engine.state import StateStore

        return StateStore(conn, self.migrations_table, schema)

    def _connect(self) -> Conn:
        from thv_registry.db.connect import connect, connect_waiting

        if self.wait_for_db_s > 0:
            conn = connect_waiting(
                self.params,
                application_name=self.application_name,
                wait_s=self.wait_for_db_s,
                on_wait=self.on_wait,
            )
            self.wait_for_db_s = 0.0  # the server answered: later connections need no wait
        else:
            conn = connect(self.params, application_name=self.application_name)
        if not self._schema_checked:
            self._check_schema(conn)
        return conn

    def _check_schema(self, conn: Conn) -> None:
        """The configured schema (search_path) exists and is usable, or ``SchemaMissing``."""
        row = conn.execute("SELECT current_schema()").fetchone()
        if row is None or row[0] is None:
            conn.close()
            schema = self.params.search_path or ""
            raise SchemaMissing(
                f"The schema {schema!r} that the migrations are configured to use does not exist "
                f"in database {self.params.dbname} (or user {self.params.user!r} has no USAGE "
                "on it), so there is nowhere to keep the schema or its state tables. Nothing "
                "was changed.",
                schema=schema,
                user=self.params.user,
            )
        self._schema_checked = True

    @contextmanager
    def _connection_kept(self, conn: Conn) -> Iterator[None]:
        """A connection lost outside a step (lock wait, planning) is a ``ConnectionFailed``.

        Steps report a loss themselves, saying where they stand; here no step had started.
        """
        import psycopg

        try:
            yield
        except psycopg.OperationalError as exc:
            if not conn.broken:
                raise
            from thv_registry.db.connect import one_line

            raise ConnectionLost(
                f"The connection to the database at {self.params.describe()} was lost before "
                f"any migration step started: {one_line(str(exc))}. Nothing was changed."
            ) from exc

    @contextmanager
    def _locked(self, conn: Conn) -> Iterator[StateStore]:
        """Hold the migration lock, on a session set up for changing the database; yield the
        state tables in the schema the lock key was made from (read once, here).

        PostgreSQL 14+: if this process dies (kill -9), the server notices within a second and
        cancels the running statement, instead of finishing it and holding its locks meanwhile.
        Read-only commands skip that round trip.
        """
        from thv_registry.migrations.engine import lock

        conn.execute(
            "SELECT set_config('client_connection_check_interval', '1000', false) "
            "WHERE current_setting('server_version_num')::int >= 140000"
        )
        schema = lock.current_schema(conn)
        key = lock.lock_key(schema, self.migrations_table, self.params.dbname)
        with lock.advisory_lock(conn, key, timeout_s=self.lock_wait_s):
            yield self._store(conn, schema)


def _check_privileges(store: StateStore) -> None:
    """Refuse, before anything is written, when the user cannot write the state tables: every
    step writes them, and a step that cannot record itself fails after its SQL ran."""
    missing, create = store.missing_privileges()
    if not missing and not create:
        return
    user = store.conn.info.user
    lacks = [f"{privilege} on {table}" for table, privilege in missing]
    if create:
        lacks.append(f"CREATE on schema {store.schema} (to create the state tables)")
    raise StateTablesDenied(
        f"The migration user {user!r} cannot write the migration state tables: it lacks "
        f"{', '.join(lacks)}. Nothing was run.",
        user=user,
        schema=store.schema,
        missing=missing,
        create=create,
    )


def _same_steps(a: Plan, b: Plan) -> bool:
    def key(p: Plan) -> list[tuple[int, str, int | None]]:
        return [(s.migration.version, s.direction.value, s.target_version) for s in p.steps]

    accepted = [c.version for c in a.accepted] == [c.version for c in b.accepted]
    return a.current == b.current and key(a) == key(b) and accepted


def _v(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"
