"""``migrate status|version|force``: what the database is at, and setting it by hand.

Also the ``--output`` option and the ``Output`` factory shared with :mod:`.migrate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from thv_registry.cli.context import (
    AppContext,
    WholeNumber,
    global_options,
    lock_wait_option,
    output_option,
    pass_app,
    target_options,
    wants_json,
    yes_option,
)
from thv_registry.cli.interrupt import PROGRESS
from thv_registry.cli.output import Output
from thv_registry.errors import ExitCode

if TYPE_CHECKING:
    from thv_registry.migrations.engine.source import Source

__all__ = ["status_command", "version_command", "force_command", "output_for"]

FC = TypeVar("FC", bound=Callable[..., Any])

#: lets V be -1 (golang-migrate's "no version") instead of click reading it as an option
NEGATIVE_ARGUMENT = {"ignore_unknown_options": True}

#: status exit codes by outlook: 0 only when nothing is left for `migrate up` to do
STATUS_EXIT = {
    "up_to_date": ExitCode.OK,
    "pending": ExitCode.PENDING,
    "refused": ExitCode.REFUSED,
    "dirty": ExitCode.DIRTY,
}


def output_for(app: AppContext, output: str | None, source: Source | None = None) -> Output:
    """The renderer: JSON when --output json or --log-format json was given."""
    names = {m.version: m.name for m in source.migrations} if source else None
    return Output(json_mode=wants_json(app, output), debug=app.debug, names=names)


@click.command("status", short_help="Show each migration's state; exit 12 if any is pending.")
@target_options
@output_option
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also list the entries of the migrations directory skipped as not migration files "
    "(README.md, sub-directories; dotfiles are not listed).",
)
@lock_wait_option
@global_options
@pass_app
def status_command(app: AppContext, output: str | None, verbose: bool) -> None:
    """Show the current version and one row per migration: applied, pending, changed since
    applied, unknown (applied by another tool), applied but missing from the source, out of
    order, or dirty; when it was applied, by whom, and how long it took.

    A dirty version is read again once the migration lock is free (--lock-wait): another
    migrator holding the lock means a step in progress, not a failed one.

    Exit code: 0 when up to date, 12 when migrations are pending, 8 when `migrate up` would
    refuse (a changed or out-of-order file, a version missing from the source), 9 when dirty.
    """
    migrator = app.migrator
    from thv_registry.migrations.tools.status import read_status

    status = read_status(migrator)
    output_for(app, output, migrator.source).status(
        status,
        target=migrator.params.describe(),
        ignored=migrator.source.ignored,
        verbose=verbose,
    )
    code = STATUS_EXIT[status.outlook.value]
    if code:
        raise click.exceptions.Exit(int(code))


@click.command("version", short_help="Print the database's version and dirty flag.")
@target_options
@output_option
@global_options
@pass_app
def version_command(app: AppContext, output: str | None) -> None:
    """Print the version recorded in schema_migrations on one line: `3`, `3 (dirty)` or
    `no version`.
    """
    output_for(app, output).version(app.migrator.version())


def _not_for_force(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """``--lock-timeout``/``--lock-retries`` bound a step's table locks; force runs no step."""
    if value is not None and not ctx.resilient_parsing:
        raise click.UsageError(
            f"{param.opts[0]} does not apply to `migrate force`: force runs no migration SQL "
            "and takes no table lock; it only waits for the migration lock (--lock-wait).",
            ctx=ctx,
        )


@click.command(
    "force",
    short_help="Set the version by hand, running nothing (recovery).",
    context_settings=NEGATIVE_ARGUMENT,
)
@click.argument("version", type=WholeNumber(-1, "V is a version of the set, -1 none"), metavar="V")
@target_options
@output_option
@yes_option
@lock_wait_option
@click.option("--lock-timeout", hidden=True, expose_value=False, callback=_not_for_force)
@click.option("--lock-retries", hidden=True, expose_value=False, callback=_not_for_force)
@global_options
@pass_app
def force_command(app: AppContext, version: int, output: str | None, yes: bool) -> None:
    """Record version V (-1: no version) as clean without running any migration.

    For recovery from a dirty state: first make the schema match V by hand, then force V.
    Without --yes, the database as it is now (version, recent history, tables) is shown and
    the force must be confirmed by typing 'yes'. The force is recorded in the history.
    """
    migrator = app.migrator
    out = output_for(app, output, migrator.source)
    target = migrator.force_target(version)
    seen = None
    if not yes:
        view = migrator.inspect()
        out.force_view(view, target, target=migrator.params.describe())
        if not out.confirm_force(target):
            out.cancelled()
            return
        seen = view.current
    PROGRESS.stage = "forcing"
    out.forced(migrator.force(version, confirmed=seen))
