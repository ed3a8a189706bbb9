"""The error tree: every failure a user can meet, with its exit code and what to do next.

The library raises these; the CLI prints ``str(error)`` (message, then hint) once and exits with
``error.exit_code``. Nothing here imports a heavy module.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    "PlanRefused",
    "NotEnoughApplied",
    "MissingDownFile",
    "OutOfOrder",
    "MissingFromSource",
    "ChecksumMismatch",
    "StateChanged",
    "Cancelled",
    "DirtyDatabase",
    "LockTimeout",
    "MigrationFailed",
    "BackupUnavailable",
    "BackupFailed",
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
    exit_code = ExitCode.CONFIG


class SourceError(ThvError):
    """The migration set is invalid; ``problems`` lists every problem found, not just the first."""

    exit_code = ExitCode.SOURCE

    def __init__(self, problems: list[str], *, origin: str, hint: str | None = None) -> None:
        self.problems = list(problems)
        self.origin = origin
        if len(problems) == 1:
            message = f"Invalid migration set in {origin}: {problems[0]}"
        else:
            listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
            message = f"Invalid migration set in {origin}, {len(problems)} problems: {listed}"
        super().__init__(
            message,
            hint=hint
            or "Fix the files (names are NNNNNN_description.up.sql / .down.sql) and run again; "
            "nothing was run.",
        )


class ConnectionFailed(ThvError):
    exit_code = ExitCode.CONNECTION


class PermissionDenied(ThvError):
    exit_code = ExitCode.PERMISSION


class PlanRefused(ThvError):
    """A request that cannot be carried out safely; refused before anything ran."""

    exit_code = ExitCode.REFUSED


class NotEnoughApplied(PlanRefused):
    pass


class MissingDownFile(PlanRefused):
    pass


class OutOfOrder(PlanRefused):
    pass


class MissingFromSource(PlanRefused):
    pass


class ChecksumMismatch(PlanRefused):
    """An applied migration's file changed since it was applied (sha256 in the history).

    ``changed`` holds the ``ChangedFile`` records (version, origin, recorded and actual sha256).
    """

    def __init__(self, message: str, *, changed: Sequence[Any], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.changed = tuple(changed)


class StateChanged(PlanRefused):
    """Another runner changed the state while a person was reading the plan."""


class Cancelled(ThvError):
    """Confirmation was required but could not be obtained (EOF, no terminal)."""

    exit_code = ExitCode.UNCONFIRMED


class DirtyDatabase(ThvError):
    exit_code = ExitCode.DIRTY

    def __init__(self, message: str, *, version: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.version = version


class LockTimeout(ThvError):
    exit_code = ExitCode.LOCK_TIMEOUT


class MigrationFailed(ThvError):
    exit_code = ExitCode.MIGRATION_FAILED

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        sqlstate: str | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.sqlstate = sqlstate
        self.location = location


class BackupUnavailable(ThvError):
    """No pg_dump able to dump this server was found; the revert was refused, nothing ran."""

    exit_code = ExitCode.REFUSED


class BackupFailed(ThvError):
    """pg_dump failed before a revert; the revert was refused, nothing ran."""

    exit_code = ExitCode.REFUSED
