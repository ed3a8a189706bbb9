"""``migrate up|down|goto``: plan, show, confirm, apply. The engine decides; this shows and asks.

``status``, ``version`` and ``force`` live in :mod:`.migrate_state`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from thv_registry.cli.context import (
    AppContext,
    HelpGroup,
    WholeNumber,
    _setter,
    global_options,
    lock_options,
    output_option,
    pass_app,
    target_options,
    yes_option,
)
from thv_registry.cli.interrupt import PROGRESS
from thv_registry.cli.migrate_state import (
    NEGATIVE_ARGUMENT,
    force_command,
    output_for,
    status_command,
    version_command,
)
from thv_registry.migrations.engine.model import Direction, Down, Goto, Plan, Request, Up

if TYPE_CHECKING:
    from thv_registry.migrations.engine.migrator import Migrator
    from thv_registry.migrations.tools.explain import StepInfo

__all__ = ["migrate"]

FC = TypeVar("FC", bound=Callable[..., Any])

DOWN_NEEDS_STEPS = (
    "For safety, 'migrate down' needs --num-steps N: N reverts the last N applied migrations, "
    "and 0 reverts all of them (all the way down, removing the whole schema)."
)


@click.group("migrate", cls=HelpGroup, short_help="Apply or revert database schema migrations.")
def migrate() -> None:
    """Apply or revert the database schema migrations (golang-migrate compatible).

    The state is kept in schema_migrations, as golang-migrate does, so both tools can take
    turns on one database. Without --yes, the plan is shown and confirmed before anything runs.
    """


def _require_num_steps(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None and not ctx.resilient_parsing:
        raise click.MissingParameter(DOWN_NEEDS_STEPS, ctx=ctx, param=param)
    return value


def dry_run_option(f: FC) -> FC:
    """``--dry-run`` and ``--sql`` (the SQL of every step, as Alembic's offline mode)."""
    f = click.option(
        "--sql",
        is_flag=True,
        expose_value=False,
        callback=_setter("show_sql"),
        help="Print the full SQL of every planned step (passwords masked) and change nothing.",
    )(f)
    return click.option(
        "--dry-run",
        is_flag=True,
        help="Show the plan (statements, locks, rewrites, transaction) and change nothing.",
    )(f)


def no_backup_option(f: FC) -> FC:
    return click.option(
        "--no-backup",
        is_flag=True,
        help="Revert without taking a pg_dump backup first. Backups go to "
        "$THV_REGISTRY_BACKUP_DIR (default ~/.local/share/thv-registry/backups); pg_dump comes "
        "from $THV_REGISTRY_PG_DUMP, PATH, /usr/lib/postgresql/*/bin or the embedded server.",
    )(f)


def accept_changed_option(f: FC) -> FC:
    return click.option(
        "--accept-changed",
        "accept_changed",
        type=WholeNumber(1, "VERSION is the version of a changed file"),
        multiple=True,
        metavar="VERSION",
        help="Continue although the file of this applied version changed since it was applied; "
        "the new checksum is recorded in the history (repeatable).",
    )(f)


@migrate.command("up", short_help="Apply pending migrations.")
@target_options
@click.option(
    "--num-steps",
    "-n",
    type=WholeNumber(0, "N applies the next N pending migrations, 0 all of them"),
    default=0,
    show_default=True,
    help="Apply only the next N pending migrations; 0 applies all of them.",
)
@accept_changed_option
@dry_run_option
@output_option
@yes_option
@lock_options
@global_options
@pass_app
def up_command(
    app: AppContext,
    num_steps: int,
    accept_changed: tuple[int, ...],
    dry_run: bool,
    output: str | None,
    yes: bool,
) -> None:
    """Apply pending migrations: all of them, or the next --num-steps N.

    Without --yes, the plan (database, current version, each migration with its statements and
    the locks they take) is shown and must be confirmed with 'y' or 'yes'. An applied migration
    whose file changed since it was applied stops the run, unless --accept-changed names it.
    """
    request = Up(num_steps or None, accept_changed=frozenset(accept_changed))
    _migrate(app, request, yes=yes, dry_run=dry_run, output=output)


@migrate.command("down", short_help="Revert applied migrations (may lose data).")
@target_options
@click.option(
    "--num-steps",
    "-n",
    type=WholeNumber(0, "N reverts the last N applied migrations, 0 all of them"),
    callback=_require_num_steps,
    help="Required. Revert the last N applied migrations; 0 reverts all of them.",
)
@no_backup_option
@dry_run_option
@output_option
@yes_option
@lock_options
@global_options
@pass_app
def down_command(
    app: AppContext, num_steps: int, no_backup: bool, dry_run: bool, output: str | None, yes: bool
) -> None:
    """Revert the last --num-steps N applied migrations (0: all the way down).

    Reverting drops what the migrations created, data included, so a pg_dump backup is taken
    first (unless --no-backup). Without --yes, the plan is shown with a warning and must be
    confirmed by typing 'yes'.
    """
    _migrate(app, Down(num_steps), yes=yes, dry_run=dry_run, output=output, no_backup=no_backup)


@migrate.command(
    "goto",
    short_help="Migrate up or down to exactly version V.",
    context_settings=NEGATIVE_ARGUMENT,
)
@click.argument(
    "version", type=WholeNumber(-1, "V is a version of the set, 0 or -1 none"), metavar="V"
)
@target_options
@accept_changed_option
@no_backup_option
@dry_run_option
@output_option
@yes_option
@lock_options
@global_options
@pass_app
def goto_command(
    app: AppContext,
    version: int,
    accept_changed: tuple[int, ...],
    no_backup: bool,
    dry_run: bool,
    output: str | None,
    yes: bool,
) -> None:
    """Apply or revert migrations until the database is at exactly version V (0 or -1: none).

    Going down asks for 'yes' and takes a backup first, like `migrate down`; going up accepts
    'y' or 'yes'.
    """
    request = Goto(max(version, 0), accept_changed=frozenset(accept_changed))
    _migrate(app, request, yes=yes, dry_run=dry_run, output=output, no_backup=no_backup)


def _migrate(
    app: AppContext,
    request: Request,
    *,
    yes: bool,
    dry_run: bool,
    output: str | None,
    no_backup: bool = False,
) -> None:
    """Plan read-only; show the plan unless --yes; ask; then apply under the lock."""
    dry_run = dry_run or app.show_sql
    migrator = app.migrator
    out = output_for(app, output, migrator.source)
    plan = migrator.plan(request)
    if plan.is_empty and not (dry_run and out.json_mode):  # JSON dry runs always get a plan
        out.nothing_to_do(plan)
        return
    if dry_run or not yes:
        details = _explain(migrator, plan)  # parses every file: a broken one fails before asking
        target = migrator.params.describe()
        out.plan(plan, target=target, details=details, dry_run=dry_run, sql=app.show_sql)
        if dry_run:
            if plan.direction is Direction.DOWN:
                from thv_registry.cli.migrate_files import backup_preview

                backup_preview(app, out, plan, no_backup=no_backup)
            return
        if not out.confirm(plan):
            out.cancelled()
            return

    # With --yes the plan is made again under the lock (others may have run meanwhile); after a
    # confirmation, a plan that no longer matches is refused rather than run unconfirmed.
    def backup_first(final: Plan) -> None:
        """Under the migration lock, right before a revert runs: nobody can change it between."""
        if final.direction is Direction.DOWN and not no_backup:
            from thv_registry.cli.migrate_files import prune_after
            from thv_registry.migrations.tools.backup import backup_label, take_backup

            PROGRESS.stage = "backup"
            backup = take_backup(migrator.params, label=backup_label(final))
            out.backup(backup)
            prune_after(app, out, backup, migrator.params.dbname)  # migrations.keepBackups
            PROGRESS.stage = "confirmed"

    PROGRESS.stage = "confirmed"  # an interrupt from here reads the version back
    try:
        result = migrator.apply(
            request, confirmed=None if yes else plan, on_step=out.step, before_run=backup_first
        )
    finally:
        out.stop_progress()  # a step's progress line ends before any message
    if result.applied or result.plan.accepted:
        out.done(result)
    else:
        out.nothing_to_do(result.plan)
    from thv_registry.cli.migrate_files import dump_after_run

    dump_after_run(app, out, result)  # migrations.dumpSchema, after a run that changed something


def _explain(migrator: Migrator, plan: Plan) -> tuple[StepInfo, ...]:
    """Each step's statements and locks; foreign keys are looked up in the database's catalog."""
    from thv_registry.db.connect import connect
    from thv_registry.migrations.tools.explain import DatabaseCatalog, explain

    def catalog_connection() -> Any:
        return connect(migrator.params, application_name=migrator.application_name)

    with DatabaseCatalog(catalog_connection) as catalog:
        return explain(plan, catalog)


migrate.add_command(status_command)
migrate.add_command(version_command)
migrate.add_command(force_command)
