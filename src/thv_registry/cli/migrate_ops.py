"""``migrate redo``, ``migrate baseline V`` and ``migrate dump-schema``: what peers' users expect.

``redo`` is ``down 1`` then ``up 1`` in one plan (one confirmation, one hold of the migration
lock, the backup ``down`` takes); ``baseline`` adopts a database whose schema already exists;
``dump-schema`` prints the schema the migrations produce. Loaded lazily (cli/__init__.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from thv_registry.cli.context import (
    AppContext,
    WholeNumber,
    global_options,
    lock_options,
    lock_wait_option,
    output_option,
    pass_app,
    target_options,
    yes_option,
)
from thv_registry.cli.migrate import _migrate, dry_run_option, no_backup_option
from thv_registry.cli.migrate_state import output_for
from thv_registry.cli.output import read_answer
from thv_registry.migrations.engine.model import Redo

if TYPE_CHECKING:
    from thv_registry.cli.output import Output
    from thv_registry.errors import ConnectionFailed
    from thv_registry.migrations.engine.model import DatabaseView

__all__ = ["redo_command", "baseline_command", "dump_schema_command"]


@click.command("redo", short_help="Revert the last migration and apply it again.")
@target_options
@no_backup_option
@dry_run_option
@output_option
@yes_option
@lock_options
@global_options
@pass_app
def redo_command(
    app: AppContext, no_backup: bool, dry_run: bool, output: str | None, yes: bool
) -> None:
    """Revert the last applied migration and apply it again (down 1, then up 1).

    For the author of a migration: edit its file, redo, look. Both steps run under one hold of
    the migration lock, after one confirmation (type 'yes': the revert may lose data) and the
    pg_dump backup `migrate down` takes (unless --no-backup). The file may have changed since
    it was applied; the new checksum is recorded.
    """
    _migrate(app, Redo(), yes=yes, dry_run=dry_run, output=output, no_backup=no_backup)


@click.command("baseline", short_help="Record version V for a schema made without migrations.")
@click.argument("version", type=WholeNumber(1, "V is a version of the migration set"), metavar="V")
@target_options
@output_option
@yes_option
@lock_wait_option
@global_options
@pass_app
def baseline_command(app: AppContext, version: int, output: str | None, yes: bool) -> None:
    """Record version V as applied, clean, without running any migration.

    For a database whose schema already exists (made by hand, by a dump, or by another tool):
    the migrations up to V are taken as applied, and `migrate up` applies only those after V.
    Refused when the database already has a version (use `migrate force` to change one). The
    baseline is recorded in the history. Without --yes, the database as it is now is shown and
    the baseline must be confirmed with 'y' or 'yes'.
    """
    migrator = app.migrator
    out = output_for(app, output, migrator.source)
    seen = None
    if not yes:
        view = migrator.inspect()
        if view.current.version is None and not view.current.dirty:  # else baseline refuses
            _show_baseline(app, out, view, version)
            answer = read_answer(f"Record version {version} without running anything? [y/N]: ")
            if answer.lower() not in {"y", "yes"}:
                out.cancelled()
                return
        seen = view.current
    result = migrator.baseline(version, confirmed=seen)
    name = migrator.source.get(version)
    if out.json_mode:
        out.event("done", version=result.version, dirty=False, steps=0, baselined=True)
    else:
        label = f" ({name.name})" if name is not None and name.name else ""
        click.echo(
            f"Database is now at version {version}{label}, clean, recorded as a baseline; no "
            f"migration ran. `migrate up` applies the migrations after {version}."
        )


def _show_baseline(app: AppContext, out: Output, view: DatabaseView, version: int) -> None:
    """The database now and what the baseline records (JSON: a ``baseline_plan`` event)."""
    from thv_registry.cli import render

    target = app.migrator.params.describe()
    if out.json_mode:
        fields = render.view_json(view, version, target=target)
        fields.pop("event", None)
        out.event("baseline_plan", **fields)
        return
    lines = render.view_lines(view, version, target=target, names=out.names)[:-1]
    lines.append(
        f"Baseline records version {version}, clean, without running any migration: the "
        f"migrations up to {version} are taken as applied, so the schema must already have "
        "their changes (tables, columns, indexes)."
    )
    click.echo("\n".join(lines))


@click.command("dump-schema", short_help="Print the schema the migrations produce (pg_dump).")
@target_options  # --migrations-dir as every migrate command takes it; the dump reads the database
@click.option(
    "--output",
    "output_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the schema to FILE (its directory is created) instead of standard output.",
)
@click.option(
    "--keep-owner",
    is_flag=True,
    help="Keep the ALTER ... OWNER TO lines (left out by default: they name deployment roles).",
)
@global_options
@pass_app
def dump_schema_command(app: AppContext, output_file: Path | None, keep_owner: bool) -> None:
    """Print the schema the migrations produced, as `pg_dump --schema-only` without its noise.

    Like dbmate's schema.sql: commit it beside the migrations, and a review sees what a
    migration does to the schema. Left out: SET lines, comments with timestamps or versions,
    pg_dump's \\restrict lines, ownership, privileges and the migration state tables.
    migrations.dumpSchema: FILE in the config writes it after every up/down/goto/redo that ran.
    pg_dump is found as for backups (THV_REGISTRY_PG_DUMP, PATH, the embedded server's).
    """
    from thv_registry.cli.migrate_files import write_dump

    params = app.migration_params()
    if app.wait_for_db_s:  # --wait-for-db: the first connection waits for the server
        from thv_registry.db.connect import connect_waiting

        def waiting(failure: ConnectionFailed, wait_s: float) -> None:
            app.output().notice(
                f"Waiting up to {wait_s:g} s for PostgreSQL at {params.describe()} to accept "
                f"connections (now: {failure.message.rstrip('.')}) ..."
            )

        name = "thv-registry-api dump-schema"
        wait_s = app.wait_for_db_s
        connect_waiting(params, application_name=name, wait_s=wait_s, on_wait=waiting).close()
    text = write_dump(params, output_file, keep_owner=keep_owner)
    if output_file is None:
        click.echo(text, nl=False)
    else:
        lines = text.count("\n")
        app.output().notice(
            f"Schema of {params.describe()} written to {output_file} ({lines} lines)."
        )
