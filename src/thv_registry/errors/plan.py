"""Refusals before anything ran: a request the planner cannot carry out safely
(``PlanRefused`` and its subclasses), and a confirmation that could not be obtained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thv_registry.errors.base import ExitCode, ThvError

__all__ = [
    "PlanRefused",
    "NotEnoughApplied",
    "MissingDownFile",
    "OutOfOrder",
    "MissingFromSource",
    "UnknownVersion",
    "ChecksumMismatch",
    "StateChanged",
    "VersionAlreadySet",
    "SchemaMissing",
    "Cancelled",
]


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
