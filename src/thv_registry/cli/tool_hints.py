"""The CLI's advice for errors of the tools and of ``db/``: the commands and flags to use.

The library's errors carry data (``reason``, ``grant``, ...) and a hint in library terms; where
the way out is a command or a flag of this CLI, the sentence is written here.
:func:`thv_registry.cli.hints.hint_for` asks :func:`tool_hint` first (the engine's errors are
worded there). Imported only on the error path.
"""

from __future__ import annotations

from thv_registry.errors import (
    BackupFailed,
    BackupUnavailable,
    ConnectionFailed,
    NoMigrationsDirectory,
    PermissionDenied,
    PrimeDenied,
    ThvError,
)

__all__ = ["tool_hint"]

NO_BACKUP = "or pass --no-backup to revert without a backup"
DRY_RUN = "`thv-registry-api prime-db --dry-run`"


def tool_hint(exc: ThvError) -> str | None:
    """The hint in CLI terms for an error of the tools or ``db/``; None: keep the library's."""
    if isinstance(exc, BackupUnavailable):
        if exc.explicit is not None:
            return (
                f"Point THV_REGISTRY_PG_DUMP at pg_dump {exc.server_major} or newer, unset it to "
                f"let thv-registry-api search, {NO_BACKUP}."
            )
        return _and(exc.hint, NO_BACKUP)
    if isinstance(exc, BackupFailed):
        return _and(exc.hint, NO_BACKUP)
    if isinstance(exc, ConnectionFailed):
        if exc.reason == "role_missing":
            return (
                "Check database.migrationUser / database.user in the configuration, or create "
                "the role (thv-registry-api prime-db, or ask your DBA)."
            )
        if exc.waited_s is not None:
            return _and(exc.hint, "or wait longer with --wait-for-db SECONDS")
        if exc.reason in ("unreachable", "starting"):
            return _and(exc.hint, "or pass --wait-for-db SECONDS to wait for the server to start")
        if exc.reason == "embedded_start":
            return _and(exc.hint, "or pass --config with a database: block to use your own server")
        return None
    if isinstance(exc, PrimeDenied):
        if exc.grant is not None:
            return (
                f"Ask a superuser to run `{exc.grant}`, or to run the statements of {DRY_RUN} "
                "themselves."
            )
        return (
            "Ask a superuser or the objects' owner to grant that, or to run the statements of "
            f"{DRY_RUN} themselves."
        )
    if isinstance(exc, PermissionDenied) and exc.needed_for == "scratch_database":
        return (
            f"Ask your DBA to run ALTER ROLE {exc.user} CREATEDB, or run verify against a "
            "development server (or without --config, on the embedded PostgreSQL)."
        )
    if isinstance(exc, NoMigrationsDirectory):
        return (
            "Run from the repository root (where database/migrations is), or pass "
            "--migrations-dir DIR (THV_REGISTRY_MIGRATIONS_DIR), which is created if missing."
        )
    return None


def _and(hint: str | None, more: str) -> str:
    """``hint`` (a sentence) continued with ``more``: 'Do X, or pass --flag ...'."""
    if not hint:
        return more[0].upper() + more[1:] + "."
    return f"{hint.rstrip().rstrip('.')}, {more}."
