"""The two ways a step runs, and what a step says when it fails.

A step whose SQL can run in a transaction block runs in ONE transaction together with its
``schema_migrations`` update and history row (:class:`_TransactionalStep`). A file with
statements that cannot run in a transaction block, or with its own BEGIN/COMMIT, follows
golang-migrate's dirty protocol: mark dirty, run, mark clean (:class:`_DirtyProtocolStep`).

Faults: a transactional step that cannot get a table lock within ``lock_timeout`` is rolled back
and retried after a pause (the pause is when the queries queued behind it get through); the
final failure names the sessions holding the lock, found on the step's own connection once the
rollback has taken our request out of the queue (no extra connection). A connection lost
mid-step (the session terminated, the server restarted) is a ``ConnectionFailed`` that says where
the step stands: the server rolls back the open transaction of a session that ends, so only a
loss during COMMIT, or inside a non-transactional step, leaves something to check.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thv_registry.errors import ConnectionFailed, MigrationFailed, PermissionDenied
from thv_registry.migrations.engine import sqlfile, state
from thv_registry.migrations.engine.model import Direction, Step

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]

__all__ = [
    "PreparedStep",
    "StepSession",
    "prepare",
    "run_step",
    "server_message",
    "RETRY_BACKOFF_S",
]

log = logging.getLogger(__name__)

#: pauses between attempts of a step that hit lock_timeout (the last one repeats)
RETRY_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)


@dataclass
class StepSession:
    """What the steps of one run share on their connection, to skip repeated round trips."""

    tables_ready: bool  #: both state tables exist
    lock_timeout_ms: int  #: the configured lock_timeout for transactional steps
    _lock_timeout_set: bool = False  #: the session has lock_timeout_ms set (else its default)

    def lock_timeout(self, conn: Conn, *, on: bool) -> None:
        """Transactional steps run with lock_timeout; non-transactional ones with the default.

        A non-transactional step cannot be retried (its statements commit one by one), and
        CREATE INDEX CONCURRENTLY must wait for older transactions, so it gets no timeout.
        """
        if on == self._lock_timeout_set:
            return
        if on:
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false)", (f"{self.lock_timeout_ms}ms",)
            )
        else:
            conn.execute("RESET lock_timeout")
        self._lock_timeout_set = on


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


def run_step(
    conn: Conn,
    item: PreparedStep,
    table: str,
    before: int | None,
    session: StepSession,
    lock_retries: int,
) -> None:
    """Run one prepared step with the protocol its SQL allows; raise a ``ThvError`` on failure."""
    transactional = item.sql.runs_in_transaction
    session.lock_timeout(conn, on=transactional)
    protocol = _TransactionalStep if transactional else _DirtyProtocolStep
    protocol(conn, item, table, before, session.lock_timeout_ms, lock_retries, session).run()
    session.tables_ready = True


@dataclass
class _StepRun:
    conn: Conn
    item: PreparedStep
    table: str
    before: int | None  #: the version before this step
    lock_timeout_ms: int
    lock_retries: int
    session: StepSession
    #: the statement that hit lock_timeout in the last attempt (None: a state-table update)
    blocked_at: sqlfile.Statement | None = None
    #: how far the step got: "running" its statements, or "committing"/"marking"/"finishing"
    phase: str = "running"

    @property
    def step(self) -> Step:
        return self.item.step

    @property
    def _what(self) -> str:
        return f"migration {self.step.migration.label} ({self.step.direction.value})"

    def _statements(self, *, retry_locks: bool = False, prefix: str = "") -> None:
        """Run the file's statements; lock_timeout errors propagate raw when the caller retries.

        ``prefix`` (``BEGIN;``) is sent in the same query as the first statement, saving a round
        trip.
        """
        import psycopg

        for statement in self.item.sql.statements:
            log.debug("%s: %s", self.step.file.origin, statement.text)
            try:
                self.conn.execute((prefix + statement.text).encode(), prepare=False)
            except psycopg.errors.LockNotAvailable as exc:
                if retry_locks:
                    self.blocked_at = statement
                    raise
                raise self._failure(exc, statement, len(prefix)) from exc
            except psycopg.Error as exc:
                raise self._failure(exc, statement, len(prefix)) from exc
            prefix = ""

    def _failure(
        self, exc: Any, statement: sqlfile.Statement, shift: int = 0
    ) -> MigrationFailed | PermissionDenied | ConnectionFailed:
        """The error of ``statement``, sent after ``shift`` characters of other SQL."""
        import psycopg

        if self.conn.broken:
            return self._lost(exc, statement)
        diag = exc.diag
        position = int(diag.statement_position) - shift if diag.statement_position else None
        where = self.item.sql.location(statement, position)
        server = server_message(exc)
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

    def _lost(self, exc: Any, statement: sqlfile.Statement | None = None) -> ConnectionFailed:
        """The connection died mid-step: say where the step stands and what to check."""
        at = f" at {self.item.sql.location(statement, None)}" if statement is not None else ""
        outcome, hint = self._lost_outcome()
        return ConnectionFailed(
            f"The connection to the database was lost during {self._what}{at}: "
            f"{server_message(exc)}. {outcome}",
            hint="The session was ended by an administrator (pg_terminate_backend), a server "
            f"restart or a network failure. {hint}",
        )

    def _lost_outcome(self) -> tuple[str, str]:
        raise NotImplementedError

    def _roll_back(self) -> None:
        """End a transaction the step left open or failed (nothing to do on a lost connection)."""
        import psycopg

        if not self.conn.broken and self.conn.info.transaction_status in (
            psycopg.pq.TransactionStatus.INTRANS,
            psycopg.pq.TransactionStatus.INERROR,
        ):
            self.conn.execute("ROLLBACK")

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

        started = time.monotonic()
        for attempt in range(self.lock_retries + 1):
            try:
                self._attempt()
                return
            except psycopg.errors.LockNotAvailable as exc:
                # rolled back: our lock request has left the queue, the blockers still hold theirs
                blockers = self._blockers()
                if attempt >= self.lock_retries:
                    waited = time.monotonic() - started
                    raise self._lock_failure(exc, blockers, waited) from exc
                pause = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                log.warning(
                    "%s: a table is locked by another session (lock_timeout %d ms)%s; rolled "
                    "back, retrying in %.1f s (%d of %d)",
                    self.step.migration.label,
                    self.lock_timeout_ms,
                    f": {blockers[0].describe()}" if blockers else "",
                    pause,
                    attempt + 1,
                    self.lock_retries,
                )
                time.sleep(pause)
            except psycopg.OperationalError as exc:
                if not self.conn.broken:
                    raise
                raise self._lost(exc) from exc

    def _attempt(self) -> None:
        """One transaction in N + 1 round trips for N statements.

        BEGIN travels with the first statement and COMMIT with the version update and history
        row. On any failure (or Ctrl-C) the transaction is rolled back before this returns.
        """
        self.blocked_at, self.phase = None, "running"
        begin = "BEGIN;\n"
        try:
            # BEGIN alone when the state tables must be checked first, or nothing can carry it
            if not self.session.tables_ready or not self.item.sql.statements:
                self.conn.execute("BEGIN")
                begin = ""
                if not self.session.tables_ready:
                    self._ensure_tables()
            self._statements(retry_locks=True, prefix=begin)
            self.phase = "committing"  # from here a lost connection may have committed
            state.record_step(self.conn, self.table, **self._history_args(), commit=True)
        except BaseException:
            self._roll_back()
            raise

    def _blockers(self) -> list[Any]:
        """Who holds the lock the failed attempt waited for (read on this connection)."""
        from thv_registry.migrations.engine import lock
        from thv_registry.migrations.engine.lockinfo import LOCK_MODES, analyze

        if self.blocked_at is None:  # the state-table update (DELETE + INSERT) waited
            wanted = {self.table: "ROW EXCLUSIVE"}
        else:
            wanted = {}
            for held in analyze(self.blocked_at).locks:
                known = wanted.get(held.relation, held.mode)
                wanted[held.relation] = max(known, held.mode, key=LOCK_MODES.index)
        return lock.find_blockers(self.conn, wanted, older_than_s=self.lock_timeout_ms / 1000)

    def _ensure_tables(self) -> None:
        import psycopg

        try:
            if not state.tables_exist(self.conn, self.table):
                state.ensure_tables(self.conn, self.table, current=self.before)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PermissionDenied(
                f"Cannot create the migration state tables {self.table} and "
                f"{state.history_table(self.table)}: {server_message(exc)}. Nothing was changed.",
                hint=f"The migration user {_current_user(self.conn)} needs CREATE on the schema "
                "(GRANT USAGE, CREATE ON SCHEMA public TO that user).",
            ) from exc

    def _outcome(self) -> str:
        was = "no version" if self.before is None else f"version {self.before}"
        return f"The step was rolled back: the database is still at {was}, not dirty."

    def _lock_failure(self, exc: Any, blockers: list[Any], waited: float) -> MigrationFailed:
        where = ""
        if self.blocked_at is not None:
            where = f" at {self.item.sql.location(self.blocked_at, None)}"
        from thv_registry.migrations.engine.lock import describe_blockers

        who = describe_blockers(blockers)
        pids = ", ".join(str(b.pid) for b in blockers if b.relation) or "PID"
        return MigrationFailed(
            f"Migration {self.step.migration.label} could not get a table lock{where} within "
            f"lock_timeout ({self.lock_timeout_ms} ms) in {_attempts(self.lock_retries + 1)} over "
            f"{waited:.1f} s: {server_message(exc)}. {who}. {self._outcome()}",
            hint="Let that session commit or roll back (or end it with SELECT "
            f"pg_terminate_backend({pids})), then run the command again. Waiting longer is "
            "possible with --lock-timeout MS and --lock-retries N (config: "
            "migrations.lockTimeoutMs, migrations.lockRetries), but while the migration waits "
            "for its lock, every other query on the table waits behind it.",
            sqlstate=exc.diag.sqlstate,
            location=where[4:] or None,
        )

    def _lost_outcome(self) -> tuple[str, str]:
        if self.phase == "committing":
            before, after = _shown(self.before), _shown(self.step.target_version)
            return (
                "It was lost while the step was being committed, so whether the step was "
                f"committed is unknown: the database is at {before} or at {after}, clean either "
                "way.",
                "Run `thv-registry-api migrate version --config FILE` to see which, then run "
                "the command again (a committed step is not run twice).",
            )
        return (
            self._outcome().replace("The step was rolled back", "The server rolled the step back"),
            "Run the command again when the server is reachable.",
        )


class _DirtyProtocolStep(_StepRun):
    def run(self) -> None:
        import psycopg

        try:
            self._run()
        except psycopg.OperationalError as exc:
            if not self.conn.broken:
                raise
            raise self._lost(exc) from exc

    def _run(self) -> None:
        import psycopg

        target = self.step.target_version
        self.phase = "marking"
        with self.conn.transaction():
            if not self.session.tables_ready and not state.tables_exist(self.conn, self.table):
                state.ensure_tables(self.conn, self.table, current=self.before)
            state.set_version(self.conn, self.table, target, dirty=True)
            entry = state.start_history(self.conn, self.table, **self._history_args())
        self.phase = "running"
        try:
            self._statements()
        except BaseException:
            self._roll_back()
            raise
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._roll_back()
            raise MigrationFailed(
                f"Migration {self.step.migration.label} ({self.step.direction.value}) left a "
                f"transaction open (a BEGIN without COMMIT in {self.step.file.origin}); it was "
                f"rolled back. {self._outcome()}",
                hint=self._next_step(),
            )
        self.phase = "finishing"
        with self.conn.transaction():
            state.set_version(self.conn, self.table, target, dirty=False)
            state.finish_history(self.conn, self.table, entry)

    def _lost_outcome(self) -> tuple[str, str]:
        target = _shown(self.step.target_version)
        if self.phase == "marking":
            return (
                "None of the step's statements ran.",
                f"If `thv-registry-api migrate version --config FILE` says {target} (dirty), "
                f"nothing of it ran: run `thv-registry-api migrate force "
                f"{_force_arg(self.before)} --config FILE`; then run the command again.",
            )
        if self.phase == "finishing":
            return (
                "All of the step's statements ran, but it was lost while marking the step clean, "
                f"so the database may still be marked dirty at {target}.",
                f"If `thv-registry-api migrate version --config FILE` says {target} (dirty), "
                f"run `thv-registry-api migrate force {_force_arg(self.step.target_version)} "
                "--config FILE`; then run the command again.",
            )
        return self._outcome(), self._next_step()

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


def _attempts(n: int) -> str:
    return "1 attempt" if n == 1 else f"{n} attempts"


def _shown(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"


def server_message(exc: Any) -> str:
    diag = exc.diag
    lines = str(exc).strip().splitlines()
    primary = diag.message_primary or (lines[0] if lines else type(exc).__name__)
    if not diag.severity and not diag.sqlstate:  # raised by libpq (e.g. the socket closed)
        return primary
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
