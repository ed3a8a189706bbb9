"""``migrate up|down``: plan, confirm, apply. The engine decides; this shows and asks."""

from __future__ import annotations

from typing import Any

import click

from ..migrations.model import Down, Request, Up
from .context import (
    AppContext,
    config_option,
    global_options,
    migrations_dir_option,
    pass_app,
    yes_option,
)

__all__ = ["migrate"]

DOWN_NEEDS_STEPS = (
    "For safety, 'migrate down' needs --num-steps N: N reverts the last N applied migrations, "
    "and 0 reverts all of them (all the way down, removing the whole schema)."
)


@click.group("migrate", short_help="Apply or revert database schema migrations.")
def migrate() -> None:
    """Apply or revert the database schema migrations (golang-migrate compatible).

    The state is kept in schema_migrations, as golang-migrate does, so both tools can take
    turns on one database. Without --yes, the plan is shown and confirmed before anything runs.
    """


def _require_num_steps(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None and not ctx.resilient_parsing:
        raise click.MissingParameter(DOWN_NEEDS_STEPS, ctx=ctx, param=param)
    return value


@migrate.command("up", short_help="Apply pending migrations.")
@config_option
@migrations_dir_option
@click.option(
    "--num-steps",
    "-n",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Apply only the next N pending migrations; 0 applies all of them.",
)
@yes_option
@global_options
@pass_app
def up_command(app: AppContext, num_steps: int, yes: bool) -> None:
    """Apply pending migrations: all of them, or the next --num-steps N.

    Without --yes, the plan (database, current version, each migration) is shown and must be
    confirmed with 'y' or 'yes'.
    """
    _migrate(app, Up(num_steps or None), yes=yes)


@migrate.command("down", short_help="Revert applied migrations (may lose data).")
@config_option
@migrations_dir_option
@click.option(
    "--num-steps",
    "-n",
    type=click.IntRange(min=0),
    callback=_require_num_steps,
    help="Required. Revert the last N applied migrations; 0 reverts all of them.",
)
@yes_option
@global_options
@pass_app
def down_command(app: AppContext, num_steps: int, yes: bool) -> None:
    """Revert the last --num-steps N applied migrations (0: all the way down).

    Reverting drops what the migrations created, data included. Without --yes, the plan is
    shown with a warning and must be confirmed by typing 'yes'.
    """
    _migrate(app, Down(num_steps), yes=yes)


def _migrate(app: AppContext, request: Request, *, yes: bool) -> None:
    """Plan read-only; unless --yes, show the plan and ask; then apply under the lock."""
    migrator = app.migrator
    out = app.output(migrator.source)
    plan = migrator.plan(request)
    if plan.is_empty:
        out.nothing_to_do(plan)
        return
    if not yes:
        out.plan(plan, target=migrator.params.describe())
        if not out.confirm(plan):
            out.cancelled()
            return
    # With --yes the plan is made again under the lock (others may have run meanwhile); after a
    # confirmation, a plan that no longer matches is refused rather than run unconfirmed.
    result = migrator.apply(request, confirmed=None if yes else plan, on_step=out.step)
    if result.applied:
        out.done(result)
    else:
        out.nothing_to_do(result.plan)
