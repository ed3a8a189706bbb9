"""The CLI's shared state: global flags, the config, and a lazily built ``Migrator``.

Like flask's ``ScriptInfo``: one small object is ``ctx.obj``; options only record what was asked,
and the expensive parts (config validation, the migration set, the embedded server) are built on
first use, so ``--help`` and usage errors never pay for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from thv_registry.cli.output import Output, configure_logging

if TYPE_CHECKING:
    from thv_registry.config import Settings
    from thv_registry.db.connect import ConnectionParams
    from thv_registry.migrations.engine.migrator import Migrator
    from thv_registry.migrations.engine.source import Source

__all__ = [
    "AppContext",
    "pass_app",
    "config_option",
    "database_url_option",
    "migrations_dir_option",
    "yes_option",
    "output_option",
    "wants_json",
    "lock_options",
    "lock_wait_option",
    "wait_for_db_option",
    "target_options",
    "global_options",
    "WholeNumber",
    "HelpGroup",
]

FC = TypeVar("FC", bound=Callable[..., Any])


@dataclass
class AppContext:
    """Global flags and per-command inputs, plus the lazily loaded settings and migrator."""

    debug: bool = False
    log_format: str = "text"
    config_path: Path | None = None
    migrations_dir: Path | None = None
    #: --lock-wait / --lock-timeout / --lock-retries; None: the config's value (or the default)
    lock_wait_s: float | None = None
    lock_timeout_ms: int | None = None
    lock_retries: int | None = None
    #: --sql: show the SQL of every planned step (and change nothing)
    show_sql: bool = False
    #: --wait-for-db: retry the first connection this long while the server is not up yet
    wait_for_db_s: float | None = None
    #: --database-url (or THV_REGISTRY_DATABASE_URL), and which of the two gave it
    database_url: str | None = None
    database_url_from: str = "--database-url"
    _settings: Settings | None = field(default=None, init=False, repr=False)
    _settings_loaded: bool = field(default=False, init=False, repr=False)
    _migrator: Migrator | None = field(default=None, init=False, repr=False)

    @property
    def json_mode(self) -> bool:
        return self.log_format == "json"

    def configure_logging(self) -> None:
        configure_logging(debug=self.debug, json_mode=self.json_mode)

    def output(self, source: Source | None = None) -> Output:
        names = {m.version: m.name for m in source.migrations} if source else None
        return Output(json_mode=self.json_mode, debug=self.debug, names=names)

    @property
    def settings(self) -> Settings | None:
        """The validated config file, or None when no ``--config`` was given."""
        if not self._settings_loaded:
            if self.config_path is not None:
                from thv_registry.config import load_config

                self._settings = load_config(self.config_path)
            self._settings_loaded = True
        return self._settings

    @property
    def built_migrator(self) -> Migrator | None:
        """The migrator if one was built (nothing is loaded or started to answer)."""
        return self._migrator

    @property
    def migrator(self) -> Migrator:
        """A ``Migrator`` for the configured (or embedded) database and the chosen migration set."""
        if self._migrator is None:
            from thv_registry.migrations.engine import migrator as m
            from thv_registry.migrations.engine.source import load_source

            settings = self.settings  # config errors first: they need no files and no server
            source = load_source(self.migrations_dir)
            from thv_registry.cli.target import set_notice

            if (notice := set_notice(self.migrations_dir, source.origin)) is not None:
                self.output().notice(notice)
            tuning = settings.migrations if settings is not None else None
            # flags (or their env vars) win over the config's migrations: block
            wait, timeout, retries = self.lock_wait_s, self.lock_timeout_ms, self.lock_retries
            self._migrator = m.Migrator(
                self.migration_params(),
                source,
                lock_wait_s=wait if wait is not None else
                tuning.lock_wait_seconds if tuning else m.DEFAULT_LOCK_WAIT_S,
                lock_timeout_ms=timeout if timeout is not None else
                tuning.lock_timeout_ms if tuning else m.DEFAULT_LOCK_TIMEOUT_MS,
                lock_retries=retries if retries is not None else
                tuning.lock_retries if tuning else m.DEFAULT_LOCK_RETRIES,
                statement_timeout_ms=tuning.statement_timeout_ms if tuning else 0,
                wait_for_db_s=self.wait_for_db_s or 0.0,
                on_wait=self._waiting,
            )  # fmt: skip
        return self._migrator

    def migration_params(self) -> ConnectionParams:
        """The database to migrate: --database-url, else --config's database: block, else the
        embedded server (only without --config; see :mod:`.target`)."""
        from thv_registry.cli.target import configured_params, ignored_env_notice

        params = configured_params(
            self.settings, self.config_path, self.database_url, self.database_url_from
        )
        if params is not None:
            return params
        if (warning := ignored_env_notice()) is not None:
            self.output().notice(warning)
        return self._embedded_params()

    def _embedded_params(self) -> ConnectionParams:
        """Start (or reuse) the embedded PostgreSQL and say so: deployments pass --config."""
        from thv_registry.db.connect import ConnectionParams
        from thv_registry.db.embedded import DEFAULT_DATABASE, start_embedded

        server = start_embedded(database=DEFAULT_DATABASE)
        self.output().notice(
            f"Using the embedded PostgreSQL {server.version} (data in {server.data_dir}, "
            f"database {DEFAULT_DATABASE}); pass --config or --database-url to use your own "
            "server."
        )
        return ConnectionParams(
            host=server.host,
            port=server.port,
            user=server.user,
            dbname=DEFAULT_DATABASE,
            sslmode="disable",
        )

    def _waiting(self, failure: Any, wait_s: float) -> None:
        """--wait-for-db: say what is awaited, once, before the first pause."""
        self.output().notice(
            f"Waiting up to {wait_s:g} s for PostgreSQL at {self.migrator.params.describe()} to "
            f"accept connections (now: {failure.message.rstrip('.')}) ..."
        )


pass_app = click.make_pass_decorator(AppContext, ensure=True)


class WholeNumber(click.IntRange):
    """An integer parameter whose errors say what is expected (click's say "integer range")."""

    name = "whole number"

    def __init__(self, minimum: int, what: str, maximum: int | None = None) -> None:
        super().__init__(min=minimum, max=maximum)
        self.what = what  #: what the value means, e.g. "N applies the next N migrations"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = value if isinstance(value, int) else int(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a whole number: {self.what}.", param, ctx)
        if number < (self.min or 0) or (self.max is not None and number > self.max):
            bound = f"at least {self.min}" if self.max is None else f"{self.min} to {self.max}"
            self.fail(f"{number} is out of range ({bound}): {self.what}.", param, ctx)
        return number


class HelpGroup(click.Group):
    """A group that, run without a subcommand, prints its help and exits 0 (as git does)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:
            click.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)


def _setter(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """An option callback that records a given value on the ``AppContext``."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value is False:
            return  # not given here: keep what an outer command set
        app = ctx.ensure_object(AppContext)
        setattr(app, attr, value)
        if attr in {"debug", "log_format"}:
            app.configure_logging()

    return callback


def config_option(f: FC) -> FC:
    return click.option(
        "--config",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="THV_REGISTRY_CONFIG",
        expose_value=False,
        callback=_setter("config_path"),
        help="Configuration file (YAML) with a database: block. Without it, migrate commands "
        "use the embedded PostgreSQL (prime-db requires it). [env: THV_REGISTRY_CONFIG]",
    )(f)


def _url_setter(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if not value:
        return  # not given (an empty variable is unset)
    app = ctx.ensure_object(AppContext)
    app.database_url = value
    source = ctx.get_parameter_source(param.name or "")
    if source is click.core.ParameterSource.ENVIRONMENT:
        app.database_url_from = "THV_REGISTRY_DATABASE_URL"


def database_url_option(f: FC) -> FC:
    """``--database-url URL``: the database to migrate, instead of a config's database: block."""
    return click.option(
        "--database-url",
        envvar="THV_REGISTRY_DATABASE_URL",
        metavar="URL",
        expose_value=False,
        callback=_url_setter,
        show_envvar=False,
        help="The database, as postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=...] "
        "(libpq's URL; sslmode defaults to prefer), instead of a config's database: block. "
        "The password is never shown. [env: THV_REGISTRY_DATABASE_URL]",
    )(f)


def migrations_dir_option(f: FC) -> FC:
    return click.option(
        "--migrations-dir",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="THV_REGISTRY_MIGRATIONS_DIR",
        expose_value=False,
        callback=_setter("migrations_dir"),
        help="Read migrations from this directory instead of the embedded set. "
        "[env: THV_REGISTRY_MIGRATIONS_DIR]",
    )(f)


def lock_options(f: FC) -> FC:
    """``--lock-wait``, ``--lock-timeout``, ``--lock-retries``: override the config's tuning."""
    f = click.option(
        "--lock-retries",
        type=click.IntRange(0, 100),
        envvar="THV_REGISTRY_LOCK_RETRIES",
        expose_value=False,
        callback=_setter("lock_retries"),
        metavar="N",
        help="Attempts after the first when a step hits its lock_timeout (rolled back, then "
        "retried after a pause with a longer bound, the last one --lock-timeout). [config: "
        "migrations.lockRetries; default 3; env: THV_REGISTRY_LOCK_RETRIES]",
    )(f)
    f = click.option(
        "--lock-timeout",
        type=click.IntRange(0, 2**31 - 1),
        envvar="THV_REGISTRY_LOCK_TIMEOUT",
        expose_value=False,
        callback=_setter("lock_timeout_ms"),
        metavar="MS",
        help="Longest wait of a step for a table lock, in ms (PostgreSQL lock_timeout of its "
        "last attempt; the first waits 100 ms, each retry longer; 0: no limit). Other queries "
        "on the table queue behind the waiting migration, so keep it short. [config: "
        "migrations.lockTimeoutMs; default 5000; env: THV_REGISTRY_LOCK_TIMEOUT]",
    )(f)
    return lock_wait_option(f)


def _seconds_option(name: str, envvar: str, attr: str, help: str) -> Callable[[FC], FC]:
    """``NAME SECONDS`` (0 to a day) recorded on the ``AppContext`` as ``attr``."""
    return click.option(
        name,
        type=click.FloatRange(0, 86400),
        envvar=envvar,
        expose_value=False,
        callback=_setter(attr),
        metavar="SECONDS",
        help=help,
    )


def wait_for_db_option(f: FC) -> FC:
    """``--wait-for-db SECONDS``: retry connecting while the server is not up (dbmate's wait)."""
    return _seconds_option(
        "--wait-for-db",
        "THV_REGISTRY_WAIT_FOR_DB",
        "wait_for_db_s",
        "Retry connecting for up to SECONDS while nothing answers yet (a container started "
        "beside its database), once a second; wrong credentials fail at once. Default 0: one "
        "attempt. [env: THV_REGISTRY_WAIT_FOR_DB]",
    )(f)


def lock_wait_option(f: FC) -> FC:
    """``--lock-wait``: how long to wait for another migrator's lock (0: one try)."""
    return _seconds_option(
        "--lock-wait",
        "THV_REGISTRY_LOCK_WAIT",
        "lock_wait_s",
        "Longest wait for the migration lock held by another migrator; 0: do not wait "
        "(one try). [config: migrations.lockWaitSeconds; default 15; env: "
        "THV_REGISTRY_LOCK_WAIT]",
    )(f)


def target_options(f: FC) -> FC:
    """What a migrate command acts on: ``--config``, ``--database-url``, ``--wait-for-db``,
    ``--migrations-dir`` (in that order in its help)."""
    return config_option(database_url_option(wait_for_db_option(migrations_dir_option(f))))


def output_option(f: FC) -> FC:
    """``-o/--output text|json`` for commands that report; ``--log-format json`` implies json."""
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["text", "json"]),
        default=None,
        help="text (default) or json (on stdout; shapes in docs/json-output.md). "
        "--log-format json also selects json.",
    )(f)


def wants_json(app: AppContext, output: str | None) -> bool:
    """JSON when --output json, or when --output is not given and --log-format is json."""
    return output == "json" or (output is None and app.json_mode)


def yes_option(f: FC) -> FC:
    return click.option(
        "--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts and CI)."
    )(f)


def global_options(f: FC) -> FC:
    """``--debug`` and ``--log-format``, also accepted after a subcommand (cobra-style)."""
    f = click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default=None,
        expose_value=False,
        callback=_setter("log_format"),
        help="Output format: text for people, json (one object per line) for programs.",
    )(f)
    return click.option(
        "--debug",
        is_flag=True,
        default=False,
        expose_value=False,
        callback=_setter("debug"),
        help="Show tracebacks and debug logging (including the SQL sent).",
    )(f)
