"""``thv-registry-api serve``: migrate, then serve the registry API until a signal.

Start-up: the whole config is validated (exit 3), both addresses are bound (so a busy port fails
before anything else), the schema is migrated to the latest version as the migration user under
the migration lock (``--yes`` semantics: several replicas starting together all come up and one
applies), then :func:`thv_registry.api.server.serve` runs the pool, the sync and the listeners.
The first SIGTERM or SIGINT drains and exits 0; a second one exits at once.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from thv_registry.cli.context import AppContext, config_option, pass_app, wait_for_db_option
from thv_registry.errors import ConfigError, UsageError
from thv_registry.redact import mask_url

if TYPE_CHECKING:
    import socket

    from thv_registry.api.server import Address
    from thv_registry.cli.output import Output
    from thv_registry.config import Settings

__all__ = ["serve_command"]

SUPPORTED_SOURCE_KINDS = frozenset({"file", "git", "api"})


@click.command("serve", short_help="Serve the registry API (migrates first).")
@config_option
@wait_for_db_option
@click.option(
    "--address",
    metavar="HOST:PORT",
    envvar="THV_REGISTRY_ADDRESS",
    help="Public listener (the registry API). [config: server.address; default :8080]",
)
@click.option(
    "--internal-address",
    metavar="HOST:PORT",
    envvar="THV_REGISTRY_INTERNAL_ADDRESS",
    help="Internal listener: /health, /readiness, /version, /metrics (no auth). "
    "[config: server.internalAddress; default :8081]",
)
@pass_app
def serve_command(app: AppContext, address: str | None, internal_address: str | None) -> None:
    """Serve the MCP Registry API v0.1 until Ctrl-C (or SIGTERM).

    Migrates the schema to the latest version first (as the migration user, under the migration
    lock). Without --config: the embedded PostgreSQL and a small sample registry, so a new user
    sees a working registry at once.
    """
    settings = _settings(app)
    public = _address(address, "--address", settings.server.address, settings)
    internal = _address(
        internal_address, "--internal-address", settings.server.internal_address, settings
    )
    sockets = (_bind(public, "--address"), _bind(internal, "--internal-address"))
    out = app.output()
    latest = _migrate(app, out)
    app_params = settings.app_params()  # the application user (the embedded server: one)
    out.notice(f"Database: {app_params.describe()} (schema version {latest}).")
    for line in _describe_sources(settings):
        out.notice(line)

    from thv_registry.api.server import ServeOptions

    def ready() -> None:
        ports = [sock.getsockname()[1] for sock in sockets]
        registry = settings.registries[0].name if settings.registries else "default"
        out.notice(
            f"Serving the registry API on {public.shown(ports[0])} and the internal endpoints on "
            f"{internal.shown(ports[1])}. Try: curl {_url(public, ports[0])}/registry/{registry}"
            "/v0.1/servers (Ctrl-C stops)."
        )

    options = ServeOptions(
        app_params=app_params,
        schema_version=latest,
        public_socket=sockets[0],
        internal_socket=sockets[1],
        shutdown_timeout_s=settings.server.shutdown_timeout.total_seconds(),
        cors_origins=tuple(settings.server.cors.allow_origins),
        on_ready=ready,
    )
    _run(settings, options)
    out.notice("Stopped.")


_CONFIG_HELP = (
    "Configuration file (YAML): database, sources, registries, auth, server. Without it: the "
    "embedded PostgreSQL and the sample registry shipped in the package. [env: THV_REGISTRY_CONFIG]"
)
for _param in serve_command.params:  # the shared --config option, worded for serve
    if _param.name == "config" and isinstance(_param, click.Option):
        _param.help = _CONFIG_HELP


def _migrate(app: AppContext, out: Output) -> int | None:
    """Migrate to the latest version (``migrate up --yes``); the version this build expects."""
    from thv_registry.errors import MissingFromSource, PlanRefused
    from thv_registry.migrations.engine.model import Up

    migrator = app.migrator
    latest = max((m.version for m in migrator.source.migrations), default=None)
    try:
        result = migrator.apply(Up())  # under the migration lock; other replicas wait, then skip
    except MissingFromSource as exc:  # the migrate wording names --migrations-dir: not serve's
        raise PlanRefused(
            exc.message,
            hint=f"This release knows the schema up to version {latest}; the database was "
            f"migrated by a newer release. Serve with that release (or a newer one), or revert "
            f"the schema to version {latest} with that release's `migrate goto {latest}` first.",
        ) from exc
    if result.applied:
        out.notice(f"Migrated the schema to version {latest} ({len(result.applied)} applied).")
    return latest


def _url(address: Address, port: int) -> str:
    """A URL to try from this machine: loopback when listening on every interface."""
    if address.host in ("", "0.0.0.0", "::"):
        return f"http://127.0.0.1:{port}"
    return f"http://{address.shown(port)}"


def _settings(app: AppContext) -> Settings:
    """The validated config; without --config, the embedded server and the sample registry."""
    settings = app.settings
    if settings is None:
        from thv_registry.config import DatabaseSettings, Settings
        from thv_registry.sample import sample_settings

        params = app.migrator.params  # starts the embedded server (and says so)
        database = DatabaseSettings(
            host=params.host,
            port=params.port,
            user=params.user,
            database=params.dbname,
            sslmode=params.sslmode,
        )
        settings = sample_settings(Settings(database=database))
    settings.check_serve(SUPPORTED_SOURCE_KINDS)
    return settings


def _address(flag: str | None, option: str, configured: str, settings: Settings) -> Address:
    from thv_registry.api.server import Address

    text = flag if flag is not None else configured
    parsed = Address.parse(text)
    if parsed is None:
        what = f"{option} {text!r}" if flag is not None else f"server address {text!r}"
        message = f"Invalid {what}: expected HOST:PORT (e.g. :8080 or 127.0.0.1:8080)."
        if flag is None and settings.path is not None:
            raise ConfigError(message, hint=f"Fix the server: block of {settings.path}.")
        raise UsageError(message)
    return parsed


def _bind(address: Address, option: str) -> socket.socket:
    from thv_registry.api.server import bind

    try:
        return bind(address)
    except OSError as exc:
        raise UsageError(
            f"Cannot listen on {address.shown()}: {exc.strerror or exc}.",
            hint=f"Stop what uses that port or pass another {option}.",
        ) from exc


def _describe_sources(settings: Settings) -> list[str]:
    lines = []
    for source in settings.sources:
        where = ""
        if source.file is not None:
            where = f" {source.file.path or source.file.url or 'inline data'}"
        elif source.git is not None:
            g = source.git
            ref = g.branch or g.tag or g.commit or "HEAD"
            where = f" {mask_url(g.repository)} {g.path} at {ref}"
        elif source.api is not None:
            where = f" {mask_url(source.api.endpoint)}"
        lines.append(f"Source {source.name}: {source.kind}{where}.")
    for registry in settings.registries:
        lines.append(f"Registry {registry.name}: sources {', '.join(registry.sources)}.")
    return lines


def _run(settings: Settings, options: Any) -> None:
    """Run the server in a uvloop event loop; first signal drains, second exits at once."""
    import asyncio
    import signal

    import uvloop

    from thv_registry.api.server import serve

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if stop.is_set():
                os._exit(128 + signum)  # a second signal: no more waiting
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        await serve(settings, options, stop)

    from thv_registry.sync import ReconcileConflict

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    except ReconcileConflict as exc:  # the library's data, worded for the command line
        where = settings.path or "The configuration"
        raise ConfigError(
            f"Cannot serve with {where}: {exc}; nothing was served.",
            hint=f"Give the {exc.kind} another name in {where}: names of sources and registries "
            "created through the API are theirs.",
        ) from exc
