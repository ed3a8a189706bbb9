"""Files the migrate commands write besides the database: backups kept, the schema dumped.

Used by :mod:`.migrate` around a run: before a revert (the backup a dry run would take, old
backups pruned after a new one) and after it (``migrations.dumpSchema``); and by
``migrate dump-schema``. Imported only when one of them is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from thv_registry.errors import SchemaDumpFailed

if TYPE_CHECKING:
    from thv_registry.cli.context import AppContext
    from thv_registry.cli.output import Output
    from thv_registry.db.connect import ConnectionParams
    from thv_registry.migrations.engine.model import Plan, RunResult
    from thv_registry.migrations.tools.backup import Backup
    from thv_registry.migrations.tools.schema_dump import SchemaDump

__all__ = ["keep_backups", "backup_preview", "prune_after", "dump_header", "dump_after_run"]

PROG = "thv-registry-api"


def keep_backups(app: AppContext) -> int:
    """``migrations.keepBackups`` (default 10; 0 keeps all)."""
    from thv_registry.config.database import DEFAULT_KEEP_BACKUPS

    settings = app.settings
    return settings.migrations.keep_backups if settings is not None else DEFAULT_KEEP_BACKUPS


def backup_preview(app: AppContext, out: Output, plan: Plan, *, no_backup: bool) -> None:
    """A dry run of a revert: whether a backup would be taken, and where."""
    from thv_registry.migrations.tools.backup import (
        backup_label,
        backup_name_pattern,
        default_backup_dir,
    )

    params = app.migrator.params
    directory = default_backup_dir()
    name = backup_name_pattern(params.dbname, backup_label(plan))
    keep = keep_backups(app)
    if out.json_mode:
        out.event(
            "backup_planned",
            taken=not no_backup,
            directory=str(directory),
            file=str(directory / name),
            keep=keep,
        )
        return
    if no_backup:
        click.echo("No backup would be taken (--no-backup).")
        return
    kept = f"the newest {keep} backups of {params.dbname} are kept" if keep else "all are kept"
    click.echo(
        f"A backup would be taken first (pg_dump -Fc) to {directory / name} (the time in the "
        f"name is when it runs; {kept}: migrations.keepBackups)."
    )


def prune_after(app: AppContext, out: Output, backup: Backup, dbname: str) -> None:
    """Remove the oldest backups of ``dbname`` beyond ``migrations.keepBackups``."""
    from thv_registry.migrations.tools.backup import prune_backups

    keep = keep_backups(app)
    removed = prune_backups(backup.path.parent, dbname, keep=keep)
    if removed:
        names = ", ".join(p.name for p in removed)
        out.notice(
            f"Removed {len(removed)} older backup(s) of {dbname} from {backup.path.parent}, "
            f"keeping the newest {keep} (migrations.keepBackups): {names}"
        )


def dump_header(dump: SchemaDump) -> str:
    at = "no version" if dump.version is None else f"version {dump.version}"
    return (
        f"-- Schema {dump.schema} at migration {at}{' (dirty)' if dump.dirty else ''}: "
        f"`{PROG} migrate dump-schema`.\n"
        "-- pg_dump --schema-only without ownership, privileges, state tables and the lines "
        "that differ between runs.\n\n"
    )


def write_dump(params: ConnectionParams, path: Path | None, *, keep_owner: bool = False) -> str:
    """Dump the schema; write it to ``path`` (None: return it only). Returns the text."""
    from thv_registry.migrations.tools.schema_dump import dump_schema, write_atomically

    dump = dump_schema(params, keep_owner=keep_owner)
    text = dump_header(dump) + dump.sql
    if path is not None:
        try:
            write_atomically(path, text)
        except OSError as exc:
            raise SchemaDumpFailed(
                f"Cannot write the schema to {path}: {exc.strerror or exc}.",
                pg_dump=None,
                hint="Choose a writable path (--output FILE, or migrations.dumpSchema).",
            ) from exc
    return text


def dump_after_run(app: AppContext, out: Output, result: RunResult) -> None:
    """``migrations.dumpSchema``: write the schema after a run that changed it."""
    settings = app.settings
    path = settings.dump_schema_path() if settings is not None else None
    if path is None or not result.applied:
        return
    try:
        write_dump(app.migrator.params, path)
    except SchemaDumpFailed as exc:
        at = result.final.version
        raise SchemaDumpFailed(
            f"The migrations ran (the database is now at "
            f"{'no version' if at is None else f'version {at}'}), but writing the schema to "
            f"{path} (migrations.dumpSchema) failed: {exc.message}",
            pg_dump=exc.pg_dump,
            hint=exc.hint,
        ) from exc
    out.notice(f"Schema written to {path} (migrations.dumpSchema).")
