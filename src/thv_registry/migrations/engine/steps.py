"""What every step shares: the prepared file, the session, and what a failing step says.

A step whose SQL can run in a transaction block runs in ONE transaction together with its
``schema_migrations`` update and history row (:mod:`.transactional`); a file with statements
that cannot run in a transaction block, or with its own BEGIN/COMMIT, follows golang-migrate's
dirty protocol (:mod:`.dirty_protocol`). :class:`StepRun` holds what both say when they fail,
in data (``MigrationFailed``, ``PermissionDenied``, ``ConnectionLost`` with the step's fields):
a state update that fails is a failed step like any other, and a connection lost mid-step says
where the step stands.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from thv_registry.db.connect import server_message
from thv_registry.errors import (
    ConnectionLost,
    MigrationFailed,
    PermissionDenied,
    SourceError,
    StepRef,
)
from thv_registry.migrations.engine import sqlfile
from thv_registry.migrations.engine.model import TEMPLATE_MARKS, Step
from thv_registry.redact import mask_password_literals

if TYPE_CHECKING:
    import psycopg

    from thv_registry.migrations.engine.state import Entry, StateStore

    Conn = psycopg.Connection[Any]

__all__ = [
    "PreparedStep",
    "StepSession",
    "StepRun",
    "prepare",
    "shown",
    "is_at",
    "dirty_at",
]

log = logging.getLogger(__name__)


@dataclass
class StepSession:
    """What the steps of one run share: the state tables, and the lock tuning."""

    store: StateStore
    tables_ready: bool  #: both state tables exist
    lock_timeout_ms: int  #: the longest lock_timeout of a transactional step (its last attempt)
    lock_retries: int  #: extra attempts of a transactional step that hit lock_timeout
    statement_timeout_ms: int = 0  #: statement_timeout of each step's statements; 0: not set


@dataclass(frozen=True)
class PreparedStep:
    step: Step
    sql: sqlfile.SqlFile
    checksum: str


def is_unwritten_template(parsed: sqlfile.SqlFile, text: str) -> bool:
    """True for a file without statements that still carries a mark of ``create``'s template."""
    return not parsed.statements and any(mark in text for mark in TEMPLATE_MARKS)


def prepare(step: Step) -> PreparedStep:
    """Read, decode and parse the step's file (raises ``SourceError`` with file:line:col).

    A file still holding ``create``'s template and no statement is refused: it would move the
    version without the change its author meant to write. Other files without statements run as
    no-op steps, as golang-migrate runs them.
    """
    data = step.file.read_bytes()
    origin = step.file.origin
    text = sqlfile.decode(data, origin)
    parsed = sqlfile.parse(text, origin)
    if is_unwritten_template(parsed, text):
        raise SourceError(
            [f"{origin} still holds only the template `create` wrote (comments, no SQL "
             "statement): running it would move the version without changing anything"],
            origin=origin,
            hint="Write the migration's SQL in it and run again; nothing was run.",
        )  # fmt: skip
    return PreparedStep(step, parsed, hashlib.sha256(data).hexdigest())


@dataclass
class StepRun:
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

        debug = log.isEnabledFor(logging.DEBUG)
        for statement in self.item.sql.statements:
            if debug:
                log.debug("%s: %s", self.step.file.origin, mask_password_literals(statement.text))
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
                message, user=current_user(self.conn), schema=self.store.schema, needed_for="step"
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
                user=current_user(self.conn),
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


def shown(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"


def is_at(version: int | None, *, still: bool = False) -> str:
    """``is (still) at version 3`` / ``(still) has no version``: after "the database"."""
    adverb = "still " if still else ""
    return f"{adverb}has no version" if version is None else f"is {adverb}at version {version}"


def dirty_at(version: int | None) -> str:
    """``dirty at version 3`` / ``dirty with no version``."""
    return "dirty with no version" if version is None else f"dirty at version {version}"


def current_user(conn: Conn) -> str | None:
    try:
        return conn.info.user
    except Exception:  # noqa: BLE001 - only decorates a message
        return None
