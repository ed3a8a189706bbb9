"""The root of the error tree and what the rest share: the exit codes, ``ThvError`` and the
errors of the command line, the configuration and the migration set, and the step records
(``StepRef``, ``DirtyRecovery``) the database and run errors carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "ExitCode",
    "ThvError",
    "UsageError",
    "ConfigError",
    "SourceError",
    "NoMigrationsDirectory",
    "StepRef",
    "DirtyRecovery",
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


class NoMigrationsDirectory(SourceError):
    """The directory to create migration files in does not exist (``origin`` names it)."""


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
