"""Errors of reaching the database and of the migration user's privileges: no connection, a
connection lost while migrating, a missing privilege (on a step, the state tables, prime-db).
"""

from __future__ import annotations

from collections.abc import Sequence

from thv_registry.errors.base import ExitCode, StepRef, ThvError

__all__ = [
    "ConnectionFailed",
    "ConnectionLost",
    "PermissionDenied",
    "StateTablesDenied",
    "PrimeDenied",
]


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


class PrimeDenied(PermissionDenied):
    """prime-db's migration user lacks a privilege; ``grant`` is the statement a superuser
    could run to give it (None: it depends on the objects' owner)."""

    def __init__(
        self, message: str, *, user: str, grant: str | None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint, user=user, needed_for="prime")
        self.grant = grant
