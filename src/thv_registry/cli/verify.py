"""``migrate verify``: up, down and up again for every migration on a scratch database."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from thv_registry.cli.context import (
    AppContext,
    config_option,
    database_url_option,
    global_options,
    migrations_dir_option,
    output_option,
    pass_app,
    wants_json,
)
from thv_registry.cli.interrupt import PROGRESS
from thv_registry.errors import ExitCode

if TYPE_CHECKING:
    from thv_registry.migrations.tools.verify import MigrationReport, VerifyReport

__all__ = ["verify_command"]


@click.command("verify", short_help="Check that every down restores the schema exactly.")
@config_option
@database_url_option
@migrations_dir_option
@click.option(
    "--no-data", is_flag=True, help="Do not insert generated rows before running each down."
)
@output_option
@global_options
@pass_app
def verify_command(app: AppContext, no_data: bool, output: str | None) -> None:
    """Apply every migration up, down and up again on a scratch database and compare schemas.

    The scratch database thv_verify_<random> is created on the configured server (the migration
    user needs CREATEDB), or on the embedded PostgreSQL without --config, and dropped at the end.
    After each up, generated rows go into every table, so a down that fails on real data is
    caught (--no-data skips that). Exit 0 when every migration passes; exit 11 when any migration
    has a finding (a down that does not restore the schema, a step that fails, a missing down).
    """
    from thv_registry.migrations.tools.verify import new_scratch_name, verify

    migrator = app.migrator
    params, source = migrator.params, migrator.source
    name = new_scratch_name()
    PROGRESS.stage, PROGRESS.scratch = "verify", name
    text = not wants_json(app, output)
    if text:
        rows = "with generated rows" if not no_data else "without data (--no-data)"
        click.echo(
            f"Verifying {_count(len(source.migrations))} on a scratch database {name} "
            f"(server {params.host}:{params.port}) {rows}"
        )
    width = max((len(m.name) for m in source.migrations), default=0)
    report = verify(
        params,
        source,
        with_data=not no_data,
        scratch_name=name,
        on_migration=(lambda r: click.echo(_line(r, width))) if text else None,
    )
    if text:
        click.echo(_summary(report))
    else:
        click.echo(json.dumps(_json(report)))
    if not report.ok:
        raise click.exceptions.Exit(int(ExitCode.MIGRATION_FAILED))


def _line(r: MigrationReport, width: int) -> str:
    head = f"  {r.migration.version:06d} {r.migration.name:<{width}}  "
    pad = " " * len(head)
    if r.status == "ok":
        checks = "up, down, up: schema identical" if r.migration.down else "up"
        lines = [f"{head}ok ({checks}{_rows(r)})"]
    elif r.status == "not verified":
        lines = [f"{head}{r.notes[0]}"]
        return "\n".join(lines)
    else:
        word = "FAILED" if r.status == "failed" else "WARNING"
        messages = [f.message for f in r.findings]
        lines = [f"{head}{word}: {messages[0]}", *(pad + m for m in messages[1:])]
    lines += [f"{pad}note: {n}" for n in r.notes]
    return "\n".join(lines)


def _rows(r: MigrationReport) -> str:
    if not r.rows:
        return ""
    counts = {n for _, n in r.rows}
    tables = f"{len(r.rows)} table" + ("" if len(r.rows) == 1 else "s")
    if len(counts) == 1:
        return f"; {tables} got {counts.pop()} rows each"
    return f"; {tables} got generated rows"


def _summary(report: VerifyReport) -> str:
    total = len(report.migrations)
    if report.dropped:
        dropped = f"Dropped {report.database}."
    else:
        dropped = (
            f"Could not drop the scratch database {report.database} ({report.drop_error}); "
            f"drop it yourself: DROP DATABASE {report.database} WITH (FORCE);"
        )
    if report.ok:
        return f"{dropped} All {_count(total)} passed verification."
    failed = sum(1 for m in report.migrations if m.status == "failed")
    warned = sum(1 for m in report.migrations if m.status == "warning")
    skipped = sum(1 for m in report.migrations if m.status == "not verified")
    parts = [f"{failed} of {total} migrations failed verification"]
    if warned:
        parts.append(f"{warned} with warnings")
    if skipped:
        parts.append(f"{skipped} not verified")
    return f"{dropped} {', '.join(parts)}."


def _json(report: VerifyReport) -> dict[str, Any]:
    return {
        "event": "verify",
        "ok": report.ok,
        "database": report.database,
        "server": report.server,
        "with_data": report.with_data,
        "dropped": report.dropped,
        "drop_error": report.drop_error,
        "migrations": [
            {
                "version": m.migration.version,
                "name": m.migration.name,
                "status": m.status,
                "findings": [{"severity": f.severity, "message": f.message} for f in m.findings],
                "notes": list(m.notes),
                "rows": dict(m.rows),
            }
            for m in report.migrations
        ],
    }


def _count(n: int) -> str:
    return f"{n} migration" + ("" if n == 1 else "s")
