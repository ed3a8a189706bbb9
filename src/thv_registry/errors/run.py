"""Errors while running migrations: a dirty version, the migration lock held past the timeout,
a failed step and a table lock a transactional step could not get.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thv_registry.errors.base import DirtyRecovery, ExitCode, StepRef, ThvError

__all__ = ["DirtyDatabase", "LockTimeout", "MigrationFailed", "TableLockTimeout"]


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
