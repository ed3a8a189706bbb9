"""``migrate lint`` and ``migrate create``: for people writing migrations; no database needed."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from thv_registry.cli.context import (
    AppContext,
    global_options,
    migrations_dir_option,
    output_option,
    pass_app,
    wants_json,
)
from thv_registry.errors import ExitCode

if TYPE_CHECKING:
    from thv_registry.migrations.tools.lint import LintReport

__all__ = ["lint_command", "create_command"]

DEFAULT_DIR = Path("database") / "migrations"


@click.command("lint", short_help="Check migration files: names, pairs, SQL, squawk's rules.")
@migrations_dir_option
@click.option("--strict", is_flag=True, help="Fail (exit 4) on warnings too, not only on errors.")
@click.option(
    "--pg-version",
    metavar="VERSION",
    help="PostgreSQL version the migrations target (e.g. 16), for squawk's version-aware rules.",
)
@click.option("--no-squawk", is_flag=True, help="Skip squawk's rules (parser checks only).")
@click.option(
    "--include",
    "include",
    multiple=True,
    metavar="RULE",
    help="Apply a squawk rule that is off: require-lock-timeout or require-statement-timeout "
    "(off by default), or one of squawk's opt-in rules (repeatable).",
)
@output_option
@global_options
@pass_app
def lint_command(
    app: AppContext,
    strict: bool,
    pg_version: str | None,
    no_squawk: bool,
    include: tuple[str, ...],
    output: str | None,
) -> None:
    """Check every migration file without a database.

    Each up and down file is read, decoded and parsed with PostgreSQL's parser (syntax errors
    at file:line:col); the set is checked for duplicate versions, stray files, missing down
    files (an error: this project's convention is pairs) and gaps (a note). The up files then
    go through squawk's migration-safety rules (the squawk-cli package; a .squawk.toml in the
    migrations directory or above it configures them; its excluded_paths are matched against
    the file names). Findings print one per line as 'file:line:col: level: [rule] message',
    paths relative to the current directory when they are below it.

    squawk's require-lock-timeout and require-statement-timeout are off by default: this tool
    sets those itself on every step (lock_timeout from --lock-timeout or
    migrations.lockTimeoutMs, statement_timeout from migrations.statementTimeoutMs when set),
    and a SET in a file would bound only that file's step. --include RULE turns one back on.

    Exit code: 0 without errors (warnings and notes do not fail, unless --strict); 4 when
    there are errors, or warnings with --strict.
    """
    from thv_registry.migrations.tools.lint import lint

    report = lint(app.migrations_dir, pg_version=pg_version, squawk=not no_squawk, include=include)
    if wants_json(app, output):
        click.echo(json.dumps(_report_json(report)))
    else:
        for line in _report_lines(report):
            click.echo(line)
    if not report.ok or (strict and report.count("warning")):
        raise click.exceptions.Exit(int(ExitCode.SOURCE))


def _report_lines(report: LintReport) -> list[str]:
    lines = []
    for f in report.findings:
        location = _relative(f.location) if f.location else ""
        text = f"{location}: " if location else ""
        text += f"{f.level}: [{f.rule}] {f.message}"
        if f.help:
            text += f" -- {f.help}"
        if f.url:
            text += f" <{f.url}>"
        lines.append(text)
    errors, warnings, notes = (report.count(x) for x in ("error", "warning", "info"))
    squawk = "squawk rules checked" if report.squawk else "squawk rules not checked"
    if report.squawk and report.off_rules:
        squawk += f" ({', '.join(report.off_rules)} off: the tool sets them)"
    if report.excluded:
        shown = _relative(report.squawk_config or "")
        squawk += f"; {_n(len(report.excluded), 'file')} excluded from them by {shown}"
    lines.append(
        f"{report.files} files checked in {_relative(report.origin)}: {_n(errors, 'error')}, "
        f"{_n(warnings, 'warning')}, {_n(notes, 'note')}; {squawk}."
    )
    return lines


def _relative(location: str) -> str:
    """``location`` (a path, maybe with ``:line:col``) relative to the current directory when it
    is below it; anything else as it is."""
    import os

    if not os.path.isabs(location):
        return location
    cwd = os.getcwd() + os.sep
    return location[len(cwd) :] if location.startswith(cwd) else location


def _report_json(report: LintReport) -> dict[str, Any]:
    return {
        "event": "lint",
        "origin": report.origin,
        "files": report.files,
        "squawk": report.squawk,
        "errors": report.count("error"),
        "warnings": report.count("warning"),
        "notes": report.count("info"),
        "ok": report.ok,
        "findings": [
            {**asdict(f), "file": _relative(f.file) if f.file else f.file} for f in report.findings
        ],
        "off_rules": list(report.off_rules),
        "squawk_config": report.squawk_config,
        "excluded": [_relative(path) for path in report.excluded],
    }


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


@click.command("create", short_help="Create the next NNNNNN_name.up.sql / .down.sql pair.")
@click.argument("name")
@click.option(
    "--migrations-dir",
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="THV_REGISTRY_MIGRATIONS_DIR",
    help="Directory to create the files in (created if it does not exist; --dir is the same "
    "option). Default: ./database/migrations, which must exist. "
    "[env: THV_REGISTRY_MIGRATIONS_DIR]",
)
@click.option(
    "--format",
    "version_format",
    type=click.Choice(["sequential", "timestamp"]),
    default="sequential",
    show_default=True,
    help="Version numbers: sequential (highest + 1, six digits: 000010_name) or timestamp "
    "(UTC YYYYMMDDHHMMSS: 20261205101530_name), as golang-migrate's -seq and -format.",
)
@output_option
@global_options
@pass_app
def create_command(
    app: AppContext, name: str, directory: Path | None, version_format: str, output: str | None
) -> None:
    """Create NAME's up and down files, numbered after the highest existing version.

    NAME is lowercase letters, digits and underscores, starting with a letter (at most 60
    characters), e.g. add_claims. Existing files are never overwritten.
    """
    from thv_registry.migrations.tools.create import create_migration

    target = directory or app.migrations_dir or DEFAULT_DIR
    from thv_registry.cli.target import check_create_target

    check_create_target(target, explicit=target is not DEFAULT_DIR)  # only where up reads
    created = create_migration(
        target,
        name,
        format="timestamp" if version_format == "timestamp" else "sequential",
        create_directory=target is not DEFAULT_DIR,  # named by the user: make it
    )
    if wants_json(app, output):
        fields = {"event": "created", "version": created.version, "name": created.name}
        click.echo(json.dumps({**fields, "up": str(created.up), "down": str(created.down)}))
        return
    for path in (created.up, created.down):
        click.echo(f"Created {path}")
