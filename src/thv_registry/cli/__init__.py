"""``thv-registry-api``: the root group, its global flags, and the one place errors are mapped.

Commands raise; :class:`RootGroup` turns what escapes into one paragraph on stderr and the exit
code of :class:`thv_registry.errors.ExitCode` (``--debug`` adds the traceback). Heavy modules
(psycopg, msgspec, pglast, pgserver) are imported only by the code that needs them.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from thv_registry.cli.context import AppContext, HelpGroup, global_options
from thv_registry.cli.migrate import migrate
from thv_registry.cli.output import one_paragraph, report_failure
from thv_registry.errors import ExitCode, ThvError

__all__ = ["cli", "main", "RootGroup"]

PROG_NAME = "thv-registry-api"


class RootGroup(HelpGroup):
    """A click group that maps every failure to a message and an exit code, once."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click's own: usage errors keep exit 2
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (interrupt.Terminated)
            from thv_registry.cli import interrupt

            app = ctx.find_object(AppContext) or AppContext()
            if not app.json_mode:
                click.echo(err=True)  # end the line the terminal's ^C (or a prompt) left open
            self._fail(ctx, exc, interrupt.exit_code(exc), interrupt.describe_interrupt(exc, app))
        except Exception as exc:
            app = ctx.find_object(AppContext) or AppContext()
            code, message = describe_failure(exc, debug=app.debug)
            self._fail(ctx, exc, code, message)

    @staticmethod
    def _fail(ctx: click.Context, exc: BaseException, code: int, message: str) -> None:
        app = ctx.find_object(AppContext) or AppContext()
        report_failure(exc, message, exit_code=code, json_mode=app.json_mode, debug=app.debug)
        raise click.exceptions.Exit(code) from exc


def describe_failure(exc: Exception, *, debug: bool = False) -> tuple[int, str]:
    """The exit code and the one-paragraph message for an exception that reached the top.

    ``debug``: the traceback is already shown, so the message does not ask for --debug.
    """
    if isinstance(exc, ThvError):
        from thv_registry.cli.hints import describe

        return int(exc.exit_code), one_paragraph(describe(exc))
    psycopg = sys.modules.get("psycopg")  # only loaded if a database was touched
    if psycopg is not None and isinstance(exc, psycopg.Error):
        details = "" if debug else " Run again with --debug for the details."
        return int(ExitCode.FAILURE), (
            f"database error: {one_paragraph(str(exc)) or type(exc).__name__}.{details}"
        )
    report = (
        "report it with the traceback above"
        if debug
        else "run again with --debug and report it with the output"
    )
    return int(ExitCode.FAILURE), (
        f"internal error: {type(exc).__name__}: {one_paragraph(str(exc))}. This is a bug; {report}."
    )


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--version``: the same line as the ``version`` command (metadata read only when asked)."""
    if not value or ctx.resilient_parsing:
        return
    from thv_registry import __version__

    click.echo(f"{PROG_NAME} {__version__}")
    ctx.exit(0)


@click.group(
    cls=RootGroup,
    name=PROG_NAME,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_print_version,
    help="Print the version and exit.",
)
@global_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """ToolHive Registry API Server: database migrations (and, later, the registry API).

    Without --config, commands use an embedded PostgreSQL in a per-user data directory;
    a real deployment always passes --config.
    """
    ctx.ensure_object(AppContext).configure_logging()
    if ctx.invoked_subcommand != "serve":  # serve drains on SIGTERM itself
        from thv_registry.cli.interrupt import PROGRESS, install_sigterm

        install_sigterm()
        if ctx.invoked_subcommand == "migrate":
            PROGRESS.stage = "starting"  # the migrate commands say where they are from here


@cli.command("version", short_help="Print the version.")
def version_command() -> None:
    """Print the version of thv-registry-api."""
    from thv_registry import __version__

    click.echo(f"{PROG_NAME} {__version__}")


cli.add_command(migrate)


def main() -> None:
    """Entry point of the ``thv-registry-api`` script and of ``python -m thv_registry``."""
    cli.main(prog_name=PROG_NAME)


class LazyCommand(click.Command):
    """A subcommand whose module is imported only when it runs or its help is shown.

    ``migrate up`` on an up-to-date database is every deploy's start-up cost: the modules of
    commands it does not run (verify, lint, create, prime-db) stay unloaded.
    """

    def __init__(self, name: str, target: str) -> None:
        super().__init__(name)
        self._target = target  #: "module:attribute", relative to this package
        self._command: click.Command | None = None

    def real(self) -> click.Command:
        if self._command is None:
            from importlib import import_module

            module, attr = self._target.split(":")
            self._command = getattr(import_module(module, __name__), attr)
            assert isinstance(self._command, click.Command)
        return self._command

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        return self.real().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        return self.real().invoke(ctx)

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.real().get_short_help_str(limit)

    def get_help(self, ctx: click.Context) -> str:
        return self.real().get_help(ctx)

    def to_info_dict(self, ctx: click.Context) -> dict[str, Any]:
        return self.real().to_info_dict(ctx)


migrate.add_command(LazyCommand("redo", ".migrate_ops:redo_command"))
migrate.add_command(LazyCommand("baseline", ".migrate_ops:baseline_command"))
migrate.add_command(LazyCommand("dump-schema", ".migrate_ops:dump_schema_command"))
migrate.add_command(LazyCommand("verify", ".verify:verify_command"))
migrate.add_command(LazyCommand("lint", ".authoring:lint_command"))
migrate.add_command(LazyCommand("create", ".authoring:create_command"))
cli.add_command(LazyCommand("prime-db", ".prime_db:prime_db_command"))
cli.add_command(LazyCommand("serve", ".serve:serve_command"))
cli.add_command(LazyCommand("sources", ".sources:sources_command"))
