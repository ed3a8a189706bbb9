"""The two ways a step runs, and what a step says, in data, when it fails.

A step whose SQL can run in a transaction block runs in ONE transaction together with its
``schema_migrations`` update and history row (:class:`_TransactionalStep`); its BEGIN carries
``SET LOCAL lock_timeout``, so every such step has exactly the configured bound whatever an
earlier step set for the session. A file with statements that cannot run in a transaction block,
or with its own BEGIN/COMMIT, follows golang-migrate's dirty protocol: mark dirty, run, mark
clean (:class:`_DirtyProtocolStep`), with the server's default lock_timeout.

Faults: a transactional step that cannot get a table lock within ``lock_timeout`` is rolled back
and retried after a pause (the pause is when the queries queued behind it get through); the
final failure names the sessions holding the lock, found on the step's own connection once the
rollback has taken our request out of the queue (no extra connection). A state update that fails
is a failed step like any other. A connection lost mid-step is a ``ConnectionLost`` that says
where the step stands: the server rolls back the open transaction of a session that ends, so only
a loss during COMMIT, or inside a non-transactional step, leaves something to check.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thv_registry.errors import (
    ConnectionLost,
    MigrationFailed,
    PermissionDenied,
    StepRef,
    TableLockTimeout,
)
from thv_registry.migrations.engine import sqlfile
from thv_registry.migrations.engine.model import Step

if TYPE_CHECKING:
    import psycopg

    from thv_registry.migrations.engine.state import Entry, StateStore

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
    """What the steps of one run share: the state tables, and the lock tuning."""

    store: StateStore
    tables_ready: bool  #: both state tables exist
    lock_timeout_ms: int  #: lock_timeout of each transactional step (SET LOCAL with its BEGIN)
    lock_retries: int  #: extra attempts of a transactional step that hit lock_timeout


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


def run_step(item: PreparedStep, before: int | None, session: StepSession) -> None:
    """Run one prepared step with the protocol its SQL allows; raise a ``ThvError`` on failure."""
    protocol = _TransactionalStep if item.sql.runs_in_transaction else _DirtyProtocolStep
    protocol(item, before, session).run()
    session.tables_ready = True


@dataclass
class _StepRun:
    item: PreparedStep
    before: int | None  #: the version before this step
    session: StepSession
    #: the statement that hit lock_timeout in the last attempt (None: a state-table update)
    blocked_at: sqlfile.Statement | None = None
    #: how far the step got: "running" its statements, or "committing"/"marking"/"finishing"
    phase: str = "running"

    @property
    def conn(self) -> Conn:
        return self.session.store.conn

    @property
    def store(self) -> StateStore:
        return self.session.store

    @property
    def step(self) -> Step:
        return self.item.step

    @property
    def ref(self) -> StepRef:
        step = self.step
        return StepRef(
            step.migration.version,
            step.migration.name,
            step.direction.value,
            self.before,
            step.target_version,
            self.item.sql.runs_in_transaction,
        )

    @property
    def _what(self) -> str:
        return f"migration {self.step.migration.label} ({self.step.direction.value})"

    def _statements(self, *, retry_locks: bool = False, prefix: str = "") -> None:
        """Run the file's statements; lock_timeout errors propagate raw when the caller retries.

        ``prefix`` (``BEGIN; SET LOCAL ...``) is sent in the same query as the first statement,
        saving a round trip.
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
    ) -> MigrationFailed | PermissionDenied | ConnectionLost:
        """The error of ``statement``, sent after ``shift`` characters of other SQL."""
        import psycopg

        if self.conn.broken:
            return self._lost(exc, statement)
        diag = exc.diag
        position = int(diag.statement_position) - shift if diag.statement_position else None
        where = self.item.sql.location(statement, position)
        message = (
            f"Migration {self.step.migration.label} ({self.step.direction.value}) failed at "
            f"{where}: {server_message(exc)}. {self._outcome()}"
        )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return PermissionDenied(
                message, user=_current_user(self.conn), schema=self.store.schema, needed_for="step"
            )
        return self._failed(message, exc, phase="statement", location=where)

    def _failed(
        self, message: str, exc: Any = None, *, phase: str, location: str | None = None
    ) -> MigrationFailed:
        ref = self.ref
        return MigrationFailed(
            message,
            sqlstate=exc.diag.sqlstate if exc is not None else None,
            location=location,
            step=ref,
            phase=phase,
            recovery=None if ref.transactional else ref.recovery(),
        )

    def _outcome(self) -> str:
        raise NotImplementedError

    def _lost(self, exc: Any, statement: sqlfile.Statement | None = None) -> ConnectionLost:
        """The connection died mid-step: say where the step stands."""
        at = f" at {self.item.sql.location(statement, None)}" if statement is not None else ""
        return ConnectionLost(
            f"The connection to the database was lost during {self._what}{at}: "
            f"{server_message(exc)}. {self._lost_outcome()}",
            step=self.ref,
            phase=self.phase,
        )

    def _lost_outcome(self) -> str:
        raise NotImplementedError

    def _roll_back(self) -> None:
        """End a transaction the step left open or failed (nothing to do on a lost connection)."""
        import psycopg

        if not self.conn.broken and self.conn.info.transaction_status in (
            psycopg.pq.TransactionStatus.INTRANS,
            psycopg.pq.TransactionStatus.INERROR,
        ):
            self.conn.execute("ROLLBACK")

    def _ensure_tables(self) -> None:
        """Create (or upgrade) the state tables, in the step's transaction."""
        import psycopg

        try:
            if not self.store.tables_exist():
                self.store.ensure_tables(current=self.before)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise PermissionDenied(
                f"Cannot create the migration state tables {self.store.table} and "
                f"{self.store.history_table} in schema {self.store.schema}: "
                f"{server_message(exc)}. Nothing was changed.",
                user=_current_user(self.conn),
                schema=self.store.schema,
                needed_for="state_tables",
            ) from exc

    def _entry(self) -> Entry:
        step = self.step
        return (
            step.migration.version,
            step.migration.name,
            step.direction.value,
            self.item.checksum,
            step.target_version,
        )


class _TransactionalStep(_StepRun):
    def run(self) -> None:
        import psycopg

        started = time.monotonic()
        retries = self.session.lock_retries
        for attempt in range(retries + 1):
            try:
                self._attempt()
                return
            except psycopg.errors.LockNotAvailable as exc:
                # rolled back: our lock request has left the queue, the blockers still hold theirs
                blockers = self._blockers()
                if attempt >= retries:
                    waited = time.monotonic() - started
                    raise self._lock_failure(exc, blockers, waited) from exc
                pause = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                log.warning(
                    "%s: a table is locked by another session (lock_timeout %d ms)%s; rolled "
                    "back, retrying in %.1f s (%d of %d)",
                    self.step.migration.label,
                    self.session.lock_timeout_ms,
                    f": {blockers[0].describe()}" if blockers else "",
                    pause,
                    attempt + 1,
                    retries,
                )
                time.sleep(pause)
            except psycopg.OperationalError as exc:
                if not self.conn.broken:
                    raise
                raise self._lost(exc) from exc

    def _attempt(self) -> None:
        """One transaction in N + 1 round trips for N statements.

        BEGIN (with the step's lock_timeout) travels with the first statement and COMMIT with
        the version update and history row. On any failure (or Ctrl-C) the transaction is rolled
        back before this returns.
        """
        self.blocked_at, self.phase = None, "running"
        # an int, so no quoting question; LOCAL: it ends with the transaction
        begin = f"BEGIN; SET LOCAL lock_timeout = {int(self.session.lock_timeout_ms)};\n"
        try:
            # BEGIN alone when the state tables must be checked first, or nothing can carry it
            if not self.session.tables_ready or not self.item.sql.statements:
                self.conn.execute(begin)
                begin = ""
                if not self.session.tables_ready:
                    self._ensure_tables()
            self._statements(retry_locks=True, prefix=begin)
            self._record()
        except BaseException:
            self._roll_back()
            raise

    def _record(self) -> None:
        """The state update and COMMIT; if it fails, the step fails (and is rolled back)."""
        import psycopg

        self.phase = "committing"  # from here a lost connection may have committed
        try:
            self.store.record_step(self._entry(), commit=True)
        except psycopg.errors.LockNotAvailable:
            raise  # retried
        except psycopg.Error as exc:
            if self.conn.broken:
                raise  # lost (phase committing)
            raise self._failed(
                f"Migration {self.step.migration.label} ({self.step.direction.value}) ran, but "
                f"recording it in {self.store.table} and {self.store.history_table} (schema "
                f"{self.store.schema}) failed: {server_message(exc)}. {self._outcome()}",
                exc,
                phase="recording",
            ) from exc

    def _blockers(self) -> list[Any]:
        """Who holds the lock the failed attempt waited for (read on this connection)."""
        from psycopg import sql

        from thv_registry.migrations.engine import lock
        from thv_registry.migrations.engine.lockinfo import analyze
        from thv_registry.migrations.engine.lockmodes import strongest

        if self.blocked_at is None:  # the state-table update (DELETE + INSERT) waited
            name = sql.Identifier(self.store.schema or "public", self.store.table)
            wanted = {name.as_string(self.conn): "ROW EXCLUSIVE"}
        else:
            wanted = {}
            for held in analyze(self.blocked_at).locks:
                known = wanted.get(held.relation, held.mode)
                wanted[held.relation] = strongest(known, held.mode)
        older_than = self.session.lock_timeout_ms / 1000
        return lock.find_blockers(self.conn, wanted, older_than_s=older_than)

    def _outcome(self) -> str:
        was = _shown(self.before)
        return f"The step was rolled back: the database is still at {was}, not dirty."

    def _lock_failure(self, exc: Any, blockers: list[Any], waited: float) -> TableLockTimeout:
        from thv_registry.migrations.engine.lock import describe_blockers

        where = ""
        if self.blocked_at is not None:
            where = f" at {self.item.sql.location(self.blocked_at, None)}"
        attempts = self.session.lock_retries + 1
        timeout_ms = self.session.lock_timeout_ms
        return TableLockTimeout(
            f"Migration {self.step.migration.label} could not get a table lock{where} within "
            f"lock_timeout ({timeout_ms} ms) in {_attempts(attempts)} over {waited:.1f} s: "
            f"{server_message(exc)}. {describe_blockers(blockers)}. {self._outcome()}",
            lock_timeout_ms=timeout_ms,
            attempts=attempts,
            blocker_pids=[b.pid for b in blockers if b.relation],
            sqlstate=exc.diag.sqlstate,
            location=where[4:] or None,
            step=self.ref,
            phase="statement" if self.blocked_at is not None else "recording",
        )

    def _lost_outcome(self) -> str:
        if self.phase == "committing":
            return (
                "It was lost while the step was being committed, so whether the step was "
                f"committed is unknown: the database is at {_shown(self.before)} or at "
                f"{_shown(self.step.target_version)}, clean either way."
            )
        rolled_back = "The server rolled the step back"
        return self._outcome().replace("The step was rolled back", rolled_back)


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
        try:
            with self.conn.transaction():
                if not self.session.tables_ready:
                    self._ensure_tables()
                # the server's default lock_timeout (see docs/decisions.md, Running steps)
                self.store.set_version(target, dirty=True, prefix="RESET lock_timeout; ")
                entry = self.store.start_history(self._entry())
        except psycopg.Error as exc:
            if self.conn.broken:
                raise
            raise self._state_failure(exc, "marking it dirty") from exc
        self.phase = "running"
        try:
            self._statements()
        except BaseException:
            self._roll_back()
            raise
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._roll_back()
            raise self._failed(
                f"Migration {self.step.migration.label} ({self.step.direction.value}) left a "
                f"transaction open (a BEGIN without COMMIT in {self.step.file.origin}); it was "
                f"rolled back. {self._outcome()}",
                phase="open_transaction",
            )
        self.phase = "finishing"
        try:
            with self.conn.transaction():
                self.store.set_version(target, dirty=False)
                self.store.finish_history(entry)
        except psycopg.Error as exc:
            if self.conn.broken:
                raise
            raise self._state_failure(exc, "marking it clean") from exc

    def _state_failure(self, exc: Any, doing: str) -> MigrationFailed:
        """A state update of the dirty protocol failed (its transaction was rolled back)."""
        if self.phase == "marking":
            outcome = f"None of its statements ran: the database is still at {_shown(self.before)}."
        else:
            outcome = (
                "All of its statements ran, but the database is still marked dirty at "
                f"{_shown(self.step.target_version)}."
            )
        return self._failed(
            f"Migration {self.step.migration.label} ({self.step.direction.value}): {doing} in "
            f"{self.store.table} (schema {self.store.schema}) failed: {server_message(exc)}. "
            f"{outcome}",
            exc,
            phase=self.phase,
        )

    def _lost_outcome(self) -> str:
        if self.phase == "marking":
            return "None of the step's statements ran."
        if self.phase == "finishing":
            return (
                "All of the step's statements ran, but it was lost while marking the step clean, "
                f"so the database may still be marked dirty at {_shown(self.step.target_version)}."
            )
        return self._outcome()

    def _outcome(self) -> str:
        return (
            "This file runs outside a transaction, so statements before the failing one stay "
            f"applied and the database is marked dirty at {_shown(self.step.target_version)}."
        )


def _attempts(n: int) -> str:
    return "1 attempt" if n == 1 else f"{n} attempts"


def _shown(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"


def server_message(exc: Any) -> str:
    """The server's error in one line: severity, message, detail, hint and SQLSTATE."""
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


def _current_user(conn: Conn) -> str | None:
    try:
        return conn.info.user
    except Exception:  # noqa: BLE001 - only decorates a message
        return None
