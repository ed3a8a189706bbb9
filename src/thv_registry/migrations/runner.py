"""Execute a plan step by step, with the transaction rule in one place.

A step whose SQL can run in a transaction block runs in ONE transaction together with its
``schema_migrations`` update and history row: if it fails, the database is exactly at the
previous version, clean. A file with statements that cannot run in a transaction block (CREATE
INDEX CONCURRENTLY, VACUUM, ...) or with its own BEGIN/COMMIT follows golang-migrate's dirty
protocol instead: mark dirty, run, mark clean. Every planned file is read and parsed before the
first step runs, so a broken file later in the plan stops the run before anything changed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MigrationFailed, PermissionDenied
from . import sqlfile, state
from .model import Direction, Plan, RunResult, Step, StepEvent, VersionState

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]

__all__ = ["run", "prepare"]

log = logging.getLogger(__name__)

RETRY_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class PreparedStep:
    step: Step
    sql: sqlfile.SqlFile
    checksum: str


def prepare(step: Step) -> PreparedStep:
    """Read, decode and parse the step's file (raises ``SourceError`` with file:line:col)."""
    data = step.file.read_bytes()
    text = sqlfile.decode(data, step.file.origin)
    return PreparedStep(
        step, sqlfile.parse(text, step.file.origin), hashlib.sha256(data).hexdigest()
    )


def run(
    conn: Conn,
    plan: Plan,
    *,
    table: str,
    lock_timeout_ms: int,
    lock_retries: int,
    on_step: Callable[[StepEvent], None] | None = None,
) -> RunResult:
    """Run ``plan`` on ``conn`` (autocommit, migration lock held); return what was applied."""
    started = time.monotonic()
    prepared = [prepare(step) for step in plan.steps]
    if plan.accepted:
        _record_accepted(conn, plan, table)
    applied: list[Step] = []
    version = plan.current.version
    for index, item in enumerate(prepared, 1):
        transactional = item.sql.runs_in_transaction
        event = StepEvent("started", item.step, index, len(prepared), transactional)
        if on_step:
            on_step(event)
        t0 = time.monotonic()
        runner = _TransactionalStep if transactional else _DirtyProtocolStep
        runner(conn, item, table, version, lock_timeout_ms, lock_retries).run()
        version = item.step.target_version
        applied.append(item.step)
        if on_step:
            on_step(
                StepEvent(
                    "finished",
                    item.step,
                    index,
                    len(prepared),
                    transactional,
                    time.monotonic() - t0,
                )
            )
    return RunResult(plan, tuple(applied), VersionState(version, False), time.monotonic() - started)


def _record_accepted(conn: Conn, plan: Plan, table: str) -> None:
    """Record each changed file accepted with --accept-changed: its new checksum, logged loudly."""
    with conn.transaction():
        for change in plan.accepted:
            log.warning(
                "accepting the changed file %s (version %d, applied with sha256 %s, now %s) "
                "as requested with --accept-changed; the database is not changed",
                change.origin,
                change.version,
                change.recorded[:12],
                change.actual[:12],
            )
            state.record_history(
                conn,
                table,
                version=change.version,
                name=change.name,
                direction="accept",
                checksum=change.actual,
                resulting_version=plan.current.version,
            )


@dataclass
class _StepRun:
    conn: Conn
    item: PreparedStep
    table: str
    before: int | None  #: the version before this step
    lock_timeout_ms: int
    lock_retries: int

    @property
    def step(self) -> Step:
        return self.item.step

    def _statements(self, *, retry_locks: bool = False) -> None:
        """Run the file's statements; lock_timeout errors propagate raw when the caller retries."""
        import psycopg

        for statement in self.item.sql.statements:
            log.debug("%s: %s", self.step.file.origin, statement.text)
            try:
                self.conn.execute(statement.text.encode(), prepare=False)
            except psycopg.errors.LockNotAvailable as exc:
                if retry_locks:
                    raise
                raise self._failure(exc, statement) from exc
            except psycopg.Error as exc:
                raise self._failure(exc, statement) from exc

    def _failure(
        self, exc: Any, statement: sqlfile.Statement
    ) -> MigrationFailed | PermissionDenied:
        import psycopg

        diag = exc.diag
        position = int(diag.statement_position) if diag.statement_position else None
        where = self.item.sql.location(statement, position)
        server = _server_message(exc)
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return PermissionDenied(
                f"Migration {self.step.migration.label} ({self.step.direction.value}) failed at "
                f"{where}: {server}. {self._outcome()}",
                hint=f"The migration user {_current_user(self.conn)} needs privileges to create "
                "and drop tables, types and indexes and to modify the schema, e.g. "
                "GRANT USAGE, CREATE ON SCHEMA public TO that user, or ownership of the objects "
                "the migration alters (ALTER TABLE ... OWNER TO ...).",
            )
        return MigrationFailed(
            f"Migration {self.step.migration.label} ({self.step.direction.value}) failed at "
            f"{where}: {server}. {self._outcome()}",
            hint=self._next_step(),
            sqlstate=diag.sqlstate,
            location=where,
        )

    def _outcome(self) -> str:
        raise NotImplementedError

    def _next_step(self) -> str:
        return "Fix the SQL in the file and run the command again."

    def _history_args(self) -> dict[str, Any]:
        step = self.step
        return {
            "version": step.migration.version,
            "name": step.migration.name,
            "direction": step.direction.value,
            "checksum": self.item.checksum,
            "resulting_version": step.target_version,
        }


class _TransactionalStep(_StepRun):
    def run(self) -> None:
        import psycopg

        for attempt in range(self.lock_retries + 1):
            try:
                with self.conn.transaction():
                    self.conn.execute(
                        "SELECT set_config('lock_timeout', %s, true)",
                        (f"{self.lock_timeout_ms}ms",),
                    )
                    self._ensure_tables()
                    # started before the statements, so the row's duration is the step's
                    entry = state.start_history(self.conn, self.table, **self._history_args())
                    self._statements(retry_locks=True)
                    state.set_version(self.conn, self.table, self.step.target_version, dirty=False)
                    state.finish_history(self.conn, self.table, entry)
                return
            except psycopg.errors.LockNotAvailable as exc:
                if attempt >= self.lock_retries:
                    raise self._lock_failure(exc) from exc
                pause = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                log.warning(
                    "%s: a table is locked by another session (lock_timeout %d ms); retrying in "
                    "%.1f s (%d of %d)",
                    self.step.migration.label,
                    self.lock_timeout_ms,
                    pause,
                    attempt + 1,
                    self.lock_retries,
                )
                time.sleep(pause)

    def _ensure_tables(self) -> None:
        import psycopg

        try:
            if not state.tables_exist(self.conn, self.table):
                state.ensure_tables(self.conn, self.table, current=self.before)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PermissionDenied(
                f"Cannot create the migration state tables {self.table} and "
                f"{state.history_table(self.table)}: {_server_message(exc)}. Nothing was changed.",
                hint=f"The migration user {_current_user(self.conn)} needs CREATE on the schema "
                "(GRANT USAGE, CREATE ON SCHEMA public TO that user).",
            ) from exc

    def _outcome(self) -> str:
        was = "no version" if self.before is None else f"version {self.before}"
        return f"The step was rolled back: the database is still at {was}, not dirty."

    def _lock_failure(self, exc: Any) -> MigrationFailed:
        return MigrationFailed(
            f"Migration {self.step.migration.label} could not get a table lock within "
            f"lock_timeout ({self.lock_timeout_ms} ms), {self.lock_retries + 1} attempts: "
            f"{_server_message(exc)}. {self._outcome()}",
            hint="Another session holds a lock on a table this migration alters (often a long "
            "query or an idle transaction; see pg_stat_activity). Run again when it has finished, "
            "or raise migrations.lockTimeoutMs / lockRetries in the config.",
            sqlstate=exc.diag.sqlstate,
        )


class _DirtyProtocolStep(_StepRun):
    def run(self) -> None:
        import psycopg

        target = self.step.target_version
        with self.conn.transaction():
            if not state.tables_exist(self.conn, self.table):
                state.ensure_tables(self.conn, self.table, current=self.before)
            state.set_version(self.conn, self.table, target, dirty=True)
            entry = state.start_history(self.conn, self.table, **self._history_args())
        try:
            self._statements()
        except BaseException:
            self._leave_open_transaction()
            raise
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._leave_open_transaction()
            raise MigrationFailed(
                f"Migration {self.step.migration.label} ({self.step.direction.value}) left a "
                f"transaction open (a BEGIN without COMMIT in {self.step.file.origin}); it was "
                f"rolled back. {self._outcome()}",
                hint=self._next_step(),
            )
        with self.conn.transaction():
            state.set_version(self.conn, self.table, target, dirty=False)
            state.finish_history(self.conn, self.table, entry)

    def _leave_open_transaction(self) -> None:
        import psycopg

        if not self.conn.broken and self.conn.info.transaction_status in (
            psycopg.pq.TransactionStatus.INTRANS,
            psycopg.pq.TransactionStatus.INERROR,
        ):
            self.conn.execute("ROLLBACK")

    def _outcome(self) -> str:
        target = self.step.target_version
        shown = "no version" if target is None else f"version {target}"
        return (
            f"This file runs outside a transaction, so statements before the failing one stay "
            f"applied and the database is marked dirty at {shown}."
        )

    def _next_step(self) -> str:
        done = self.step.target_version
        if self.step.direction is Direction.UP:
            finish, undo, undone = "finish the change", "undo what it applied", self.before
        else:
            finish, undo = "finish the revert", "restore what it already dropped"
            undone = self.step.migration.version
        return (
            f"Inspect the schema, then either (1) {finish} by hand and run "
            f"`thv-registry-api migrate force {_force_arg(done)} --config FILE`, or (2) {undo} "
            f"by hand and run `thv-registry-api migrate force {_force_arg(undone)} --config "
            "FILE`; then run the command again."
        )


def _force_arg(version: int | None) -> str:
    return "-1" if version is None else str(version)


def _server_message(exc: Any) -> str:
    diag = exc.diag
    primary = diag.message_primary or str(exc).strip().splitlines()[0]
    parts = [f"{diag.severity or 'ERROR'}: {primary}"]
    if diag.message_detail:
        parts.append(f"DETAIL: {diag.message_detail}")
    if diag.message_hint:
        parts.append(f"HINT: {diag.message_hint}")
    if diag.sqlstate:
        parts.append(f"(SQLSTATE {diag.sqlstate})")
    return " ".join(parts)


def _current_user(conn: Conn) -> str:
    try:
        return repr(conn.info.user)
    except Exception:  # noqa: BLE001 - only decorates a message
        return "in use"
