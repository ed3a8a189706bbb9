"""The error tree: every failure a user can meet, with its exit code and what to do next.

The library raises these with a factual message and fields (the step, the versions to force, the
lock holder, ...); ``hint`` is advice in library terms, when any. The CLI words what to do next
from the fields (``cli/hints.py``), prints it once after the message and exits with
``error.exit_code``. Nothing here imports a heavy module.

Import every name from here (``from thv_registry.errors import X``); the submodules hold them by
job:

- ``base``: ``ExitCode``, the root ``ThvError``, the command line's, configuration's and
  migration set's errors (``UsageError``, ``ConfigError``, ``SourceError``,
  ``NoMigrationsDirectory``) and the step records the others carry (``StepRef``,
  ``DirtyRecovery``).
- ``database``: no connection or a lost one, a missing privilege (``ConnectionFailed``,
  ``ConnectionLost``, ``PermissionDenied``, ``StateTablesDenied``, ``PrimeDenied``).
- ``plan``: refused before anything ran (``PlanRefused`` and its subclasses) or not confirmed
  (``Cancelled``).
- ``run``: while migrating (``DirtyDatabase``, ``LockTimeout``, ``MigrationFailed``,
  ``TableLockTimeout``).
- ``tools``: the pg_dump-based tools (``BackupUnavailable``, ``BackupFailed``,
  ``SchemaDumpFailed``).
"""

from __future__ import annotations

from thv_registry.errors.base import (
    ConfigError,
    DirtyRecovery,
    ExitCode,
    NoMigrationsDirectory,
    SourceError,
    StepRef,
    ThvError,
    UsageError,
)
from thv_registry.errors.database import (
    ConnectionFailed,
    ConnectionLost,
    PermissionDenied,
    PrimeDenied,
    StateTablesDenied,
)
from thv_registry.errors.plan import (
    Cancelled,
    ChecksumMismatch,
    MissingDownFile,
    MissingFromSource,
    NotEnoughApplied,
    OutOfOrder,
    PlanRefused,
    SchemaMissing,
    StateChanged,
    UnknownVersion,
    VersionAlreadySet,
)
from thv_registry.errors.run import DirtyDatabase, LockTimeout, MigrationFailed, TableLockTimeout
from thv_registry.errors.tools import BackupFailed, BackupUnavailable, SchemaDumpFailed

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
