"""The error tree: every failure a user can meet, with its exit code and what to do next.

The library raises these with a factual message and fields (the step, the versions to force, the
lock holder, ...); ``hint`` is advice in library terms, when any. The CLI words what to do next
from the fields (``cli/hints.py``), prints it once after the message and exits with
``error.exit_code``. Nothing here imports a heavy module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

__all__ = [
    "ExitCode",
    "ThvError",
    "UsageError",
    "ConfigError",
    "SourceError",
    "ConnectionFailed",
    "PermissionDenied",
    "StateTablesDenied",
    "PlanRefused",
    "NotEnoughApplied",
    "MissingDownFile",
    "OutOfOrder",
    "MissingFromSource",
    "ChecksumMismatch",
    "StateChanged",
    "VersionAlreadySet",
    "SchemaMissing",
    "Cancelled",
    "UnknownVersion",
    "DirtyDatabase",
    "DirtyRecovery",
    "StepRef",
    "LockTimeout",
    "MigrationFailed",
    "TableLockTimeout",
    "ConnectionLost",
    "BackupUnavailable",
    "BackupFailed",
    "SchemaDumpFailed",
    "NoMigrationsDirectory",
    "PrimeDenied",
]


class ExitCode(IntEnum):
    """Process exit codes, documented in the README. Stable: scripts depend on them."""

    OK = 0
    FAILURE = 1  #: unexpected internal error (a bug: please report it with --debug output)
    USAGE = 2  #: bad command line (click's own code for usage errors)
    CONFIG = 3  #: configuration file missing, unreadable or invalid
    SOURCE = 4  #: migration files invalid (names, pairs, duplicates, encoding)
    UNCONFIRMED = 5  #: confirmation needed but no answer could be read (use --yes)
    CONNECTION = 6  #: server unreachable, authentication failed, database missing
    PERMISSION = 7  #: the migration user lacks a privilege
    REFUSED = 8  #: the request cannot be planned safely (nothing was run)
    DIRTY = 9  #: the database is in a dirty state; manual recovery needed
    LOCK_TIMEOUT = 10  #: another migrator held the lock past the timeout
    MIGRATION_FAILED = 11  #: a migration's SQL failed (the step was rolled back)
    PENDING = 12  #: (status) migrations are pending


class ThvError(Exception):
    """Base of every error meant for the user: a message, a hint, an exit code."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if not self.hint:
            return self.message
        end = "" if self.message.rstrip().endswith((".", "!", "?", ":")) else "."
        return f"{self.message}{end} {self.hint}"


class UsageError(ThvError):
    exit_code = ExitCode.USAGE


class ConfigError(ThvError):
    """The configuration file is missing, unreadable or invalid.

    ``reason`` (None: the file's content is invalid, the message lists every problem):
    ``missing``, ``directory``, ``permission`` (the path cannot be read as a file), ``empty``,
    ``no_database`` (a database is needed and the file has no ``database:`` block).
    """

    exit_code = ExitCode.CONFIG

    def __init__(self, message: str, *, hint: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class SourceError(ThvError):
    """The migration set is invalid; ``problems`` lists every problem found, not just the first."""

    exit_code = ExitCode.SOURCE

    def __init__(
        self,
        problems: list[str],
        *,
        origin: str,
        hint: str | None = None,
        missing_directory: str | None = None,
    ) -> None:
        self.problems = list(problems)
        self.origin = origin
        #: the migrations directory asked for, when it does not exist (the CLI words the hint)
        self.missing_directory = missing_directory
        if len(problems) == 1:
            message = f"Invalid migration set in {origin}: {problems[0]}"
        else:
            listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
            message = f"Invalid migration set in {origin}, {len(problems)} problems: {listed}"
        if hint is None and missing_directory is None:
            hint = (
                "Fix the files (names are NNNNNN_description.up.sql / .down.sql) and run again; "
                "nothing was run."
            )
        super().__init__(message, hint=hint)


@dataclass(frozen=True)
class StepRef:
    """The migration step an error is about, in data terms (the CLI words the advice)."""

    version: int
    name: str
    direction: str  #: ``up`` or ``down``
    before: int | None  #: the version before the step (None: no version)
    target: int | None  #: the version the step leads to (None: no version)
    transactional: bool  #: ran in one transaction with its state update (else: dirty protocol)

    def recovery(self) -> DirtyRecovery:
        """The way out when this step, run outside a transaction, left the version dirty."""
        undone = self.before if self.direction == "up" else self.version
        return DirtyRecovery(self.direction, self.version, self.name, self.target, undone)


@dataclass(frozen=True)
class DirtyRecovery:
    """What left a version dirty, and the version to ``force`` for each way out of it.

    ``if_finished``: the version once the step is finished by hand; ``if_undone``: once what it
    did is undone by hand (None: no version, i.e. ``force -1``). ``version``/``name`` name the
    step's migration when known.
    """

    direction: str | None  #: ``up``, ``down``, or None when unknown
    version: int | None
    name: str
    if_finished: int | None
    if_undone: int | None
    #: True when our history has the step open: it ran outside a transaction (dirty protocol).
    #: False: the flag was left by another tool (golang-migrate marks every step dirty).
    recorded: bool = True


class ConnectionFailed(ThvError):
    """No connection. ``reason`` says why, when known: ``unreachable``, ``no_password``,
    ``auth_failed``, ``role_missing``, ``database_missing``, ``pg_hba``, ``ssl``,
    ``login_refused``, ``embedded_start`` (the embedded server did not start), ``starting``
    (the server is starting up); ``user`` is the role that tried to connect; ``waited_s`` how
    long connecting was retried before giving up (None: it was not)."""

    exit_code = ExitCode.CONNECTION

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        reason: str | None = None,
        user: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        self.user = user
        self.waited_s: float | None = None


class ConnectionLost(ConnectionFailed):
    """The connection died while migrating: ``step`` is None when no step had started.

    ``phase`` says how far the step got: ``running`` its statements, ``committing`` (may have
    committed), ``marking`` it dirty (nothing ran) or ``finishing`` (marking it clean).
    """

    def __init__(
        self,
        message: str,
        *,
        step: StepRef | None = None,
        phase: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.step = step
        self.phase = phase


class PermissionDenied(ThvError):
    exit_code = ExitCode.PERMISSION

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        user: str | None = None,
        schema: str | None = None,
        needed_for: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.user = user  #: the role that lacked the privilege
        self.schema = schema
        #: what the privilege was needed for: ``step`` (a migration) or ``state_tables``
        self.needed_for = needed_for


class StateTablesDenied(PermissionDenied):
    """The migration user cannot write the state tables; found before anything ran.

    ``missing``: (table, privilege) pairs it lacks on existing tables, tables named with their
    schema; ``create``: True when a state table is missing and the user cannot create it (no
    CREATE on ``schema``).
    """

    def __init__(
        self,
        message: str,
        *,
        user: str | None,
        schema: str | None,
        missing: Sequence[tuple[str, str]],
        create: bool,
    ) -> None:
        super().__init__(message, user=user, schema=schema, needed_for="state_tables")
        self.missing = tuple(missing)
        self.create = create


class PlanRefused(ThvError):
    """A request that cannot be carried out safely; refused before anything ran."""

    exit_code = ExitCode.REFUSED


class NotEnoughApplied(PlanRefused):
    def __init__(self, message: str, *, requested: int, applied: int) -> None:
        super().__init__(message)
        self.requested = requested
        self.applied = applied  #: how many migrations are applied


class MissingDownFile(PlanRefused):
    def __init__(self, message: str, *, version: int, file: str) -> None:
        super().__init__(message)
        self.version = version
        self.file = file  #: the down file that does not exist


class OutOfOrder(PlanRefused):
    def __init__(self, message: str, *, versions: Sequence[int], current: int) -> None:
        super().__init__(message)
        self.versions = tuple(versions)  #: never applied, numbered below ``current``
        self.current = current


class MissingFromSource(PlanRefused):
    """The database is at a version the migration set does not have."""

    def __init__(self, message: str, *, version: int) -> None:
        super().__init__(message)
        self.version = version


class UnknownVersion(PlanRefused):
    """A version named in a request (``purpose``: goto, force, accept_changed) is not in the set."""

    def __init__(self, message: str, *, version: int, purpose: str) -> None:
        super().__init__(message)
        self.version = version
        self.purpose = purpose


class ChecksumMismatch(PlanRefused):
    """An applied migration's file changed since it was applied (sha256 in the history).

    ``changed`` holds the ``ChangedFile`` records (version, origin, recorded and actual sha256).
    """

    def __init__(self, message: str, *, changed: Sequence[Any], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.changed = tuple(changed)


class StateChanged(PlanRefused):
    """Another runner changed the state while a person was reading the plan (or the force)."""


class VersionAlreadySet(PlanRefused):
    """``baseline`` on a database that already has a version (``version`` -1: dirty at none)."""

    def __init__(self, message: str, *, version: int, dirty: bool, requested: int) -> None:
        super().__init__(message)
        self.version = version
        self.dirty = dirty
        self.requested = requested  #: the version baseline was asked to record


class SchemaMissing(PlanRefused):
    """The schema the migrations are configured to use (``search_path``) does not exist."""

    def __init__(self, message: str, *, schema: str, user: str | None) -> None:
        super().__init__(message)
        self.schema = schema
        self.user = user  #: the role that connected (the one that should own the schema)


class Cancelled(ThvError):
    """Confirmation was required but could not be obtained (EOF, no terminal)."""

    exit_code = ExitCode.UNCONFIRMED


class DirtyDatabase(ThvError):
    """The version is dirty: ``version`` as stored (-1: no version), ``recovery`` the way out."""

    exit_code = ExitCode.DIRTY

    def __init__(
        self,
        message: str,
        *,
        version: int,
        recovery: DirtyRecovery | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.version = version
        self.recovery = recovery


class LockTimeout(ThvError):
    """Another migrator held the migration lock past ``timeout_s``.

    ``holder`` is the session holding it when known (``migrations.engine.lock.LockHolder``:
    pid, application_name, query, ``golang_migrate``).
    """

    exit_code = ExitCode.LOCK_TIMEOUT

    def __init__(
        self,
        message: str,
        *,
        key: int | None = None,
        timeout_s: float | None = None,
        holder: Any = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.key = key
        self.timeout_s = timeout_s
        self.holder = holder


class MigrationFailed(ThvError):
    """A step failed. ``phase``: ``statement`` (its SQL), ``open_transaction`` (a BEGIN left
    open), ``recording`` (the state update in its transaction), ``marking`` or ``finishing``
    (the dirty protocol's state updates). ``recovery`` is set when it left the version dirty."""

    exit_code = ExitCode.MIGRATION_FAILED

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        sqlstate: str | None = None,
        location: str | None = None,
        step: StepRef | None = None,
        phase: str | None = None,
        recovery: DirtyRecovery | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.sqlstate = sqlstate
        self.location = location
        self.step = step
        self.phase = phase
        self.recovery = recovery


class TableLockTimeout(MigrationFailed):
    """A transactional step could not get a table lock in any attempt: ``bounds_ms`` is the
    lock_timeout of each attempt (escalating), ``lock_timeout_ms`` the last and longest."""

    def __init__(
        self,
        message: str,
        *,
        lock_timeout_ms: int,
        attempts: int,
        blocker_pids: Sequence[int] = (),
        bounds_ms: Sequence[int] = (),
        **fields: Any,
    ) -> None:
        super().__init__(message, **fields)
        self.lock_timeout_ms = lock_timeout_ms
        self.bounds_ms = tuple(bounds_ms) or (lock_timeout_ms,) * attempts
        self.attempts = attempts
        self.blocker_pids = tuple(blocker_pids)


class BackupUnavailable(ThvError):
    """No pg_dump able to dump this server was found; the revert was refused, nothing ran.

    ``server_major``: the server's major version; ``explicit``: the pg_dump the environment
    named (refused), or None when the search found none able to dump it.
    """

    exit_code = ExitCode.REFUSED

    def __init__(
        self, message: str, *, server_major: int, explicit: str | None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.server_major = server_major
        self.explicit = explicit


class BackupFailed(ThvError):
    """pg_dump failed before a revert; the revert was refused, nothing ran.

    ``directory``: where the backup was to be written; ``pg_dump``: the binary that failed
    (None: the backup file could not be created).
    """

    exit_code = ExitCode.REFUSED

    def __init__(
        self, message: str, *, directory: str, pg_dump: str | None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.directory = directory
        self.pg_dump = pg_dump


class SchemaDumpFailed(ThvError):
    """The schema could not be dumped (no suitable pg_dump, or pg_dump failed); nothing was
    written. ``pg_dump``: the binary used (None: none was found)."""

    exit_code = ExitCode.REFUSED

    def __init__(self, message: str, *, pg_dump: str | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.pg_dump = pg_dump


class NoMigrationsDirectory(SourceError):
    """The directory to create migration files in does not exist (``origin`` names it)."""


class PrimeDenied(PermissionDenied):
    """prime-db's migration user lacks a privilege; ``grant`` is the statement a superuser
    could run to give it (None: it depends on the objects' owner)."""

    def __init__(
        self, message: str, *, user: str, grant: str | None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint, user=user, needed_for="prime")
        self.grant = grant
