"""Errors of the pg_dump-based tools: the backup before a revert and the schema dump."""

from __future__ import annotations

from thv_registry.errors.base import ExitCode, ThvError

__all__ = ["BackupUnavailable", "BackupFailed", "SchemaDumpFailed"]


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
