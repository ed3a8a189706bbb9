"""The serving process once the schema is migrated: pool, sync, two uvicorn listeners, drain.

The sync runs in a child process (:mod:`thv_registry.sync.process`: its CPU work never takes
the event loop's GIL); the reconciliation of the config's sources runs here first.

Both listeners run in one event loop (``uvicorn.Server.serve`` twice). Signals are the caller's:
it sets ``stop``; then both listeners stop accepting, in-flight requests get up to
``shutdown_timeout`` to finish, the sync is stopped, and the pool is closed. Uvicorn's own
signal capture is turned off (it would re-raise the signal after a clean stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.types import ASGIApp

from thv_registry.api.app import internal_app, public_app
from thv_registry.api.internal import store_readiness
from thv_registry.api.metrics import Metrics
from thv_registry.db.pool import PoolSizing, open_pool

if TYPE_CHECKING:
    from thv_registry.config import ConnectionParams, Settings

__all__ = ["Address", "ServeOptions", "bind", "serve"]

log = logging.getLogger(__name__)

#: the sync process gets STOP_TIMEOUT_S (sync/process.py) to stop, then is killed; this is the
#: bound on the whole of that
SYNC_STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Address:
    """``HOST:PORT`` as the Go edition reads it: an empty host is every interface."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address | None:
        """The address, or None when ``text`` is not ``[HOST]:PORT`` with a port 0..65535."""
        host, sep, port = text.strip().rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            return None
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        return cls(host, int(port))

    def shown(self, port: int | None = None) -> str:
        host = self.host or "0.0.0.0"
        return f"[{host}]:{port or self.port}" if ":" in host else f"{host}:{port or self.port}"


def bind(address: Address) -> socket.socket:
    """Listen on ``address`` now (before migrating), so a busy port fails at once."""
    host = address.host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, address.port), family=family, backlog=2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class ServeOptions:
    """What :func:`serve` needs beyond the settings."""

    app_params: ConnectionParams
    schema_version: int | None  #: the version this build migrates to (readiness compares)
    public_socket: socket.socket
    internal_socket: socket.socket
    shutdown_timeout_s: float = 30.0
    cors_origins: Sequence[str] = ()
    on_ready: Callable[[], None] = field(default=lambda: None)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to its caller."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn(app: ASGIApp, shutdown_timeout_s: float) -> _Server:
    config = uvicorn.Config(
        app,
        http="httptools",
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,  # ours is RequestContext's
        server_header=False,
        proxy_headers=False,  # X-Forwarded-* are not trusted from anyone
        timeout_keep_alive=60,
        timeout_graceful_shutdown=max(int(shutdown_timeout_s), 1),
    )
    return _Server(config)


async def serve(settings: Settings, options: ServeOptions, stop: asyncio.Event) -> None:
    """Pool, reconcile and sync, listeners; return once ``stop`` is set and all has drained."""
    from thv_registry.registry.store import Store
    from thv_registry.sync import SyncService
    from thv_registry.sync.process import SyncProcess, WorkerSpec, log_levels

    database = settings.database
    sizing = PoolSizing.from_settings(
        database.max_open_conns if database else None,
        database.max_idle_conns if database else None,
        database.conn_max_lifetime if database else None,
    )
    pool = await open_pool(options.app_params, sizing)
    try:
        metrics = Metrics()
        metrics.watch_pool(pool.get_stats)
        reconciled = SyncService(pool, settings, on_mismatch=metrics.on_config_mismatch)
        await reconciled.reconcile()  # here: a conflict stops serve before it serves
        spec = WorkerSpec(
            settings=settings,
            params=options.app_params,
            holder=reconciled.holder,
            deletions_held=reconciled.deletions_held,
            parent_pid=os.getpid(),
            log_levels=log_levels("", "thv_registry"),
        )
        sync = SyncProcess(spec, on_sync=metrics.on_sync, on_mismatch=metrics.on_config_mismatch)
        stop_sync = asyncio.Event()
        sync_task = asyncio.create_task(sync.run(stop_sync), name="sync")
        if not await sync.wait_ready():
            log.warning("the sync process has not started yet; serving without waiting for it")

        store = Store(pool)
        apps = (
            public_app(
                store,
                metrics,
                cors_origins=options.cors_origins,
                cache_bytes=settings.server.response_cache.max_bytes,
            ),
            internal_app(store_readiness(store, options.schema_version), metrics),
        )
        try:
            await _listen(apps, options, stop)
        finally:
            stop_sync.set()
            await _finish(sync_task)
    finally:
        await pool.close()


async def _listen(
    apps: tuple[ASGIApp, ASGIApp], options: ServeOptions, stop: asyncio.Event
) -> None:
    servers = [_uvicorn(app, options.shutdown_timeout_s) for app in apps]
    sockets = (options.public_socket, options.internal_socket)
    tasks = [
        asyncio.create_task(s.serve(sockets=[sock]), name=f"listener-{i}")
        for i, (s, sock) in enumerate(zip(servers, sockets, strict=True))
    ]
    stopping = asyncio.create_task(stop.wait())
    try:
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                break  # failed to start: the gather below raises its error
            await asyncio.sleep(0.01)
        else:
            options.on_ready()
        await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for server in servers:
            server.should_exit = True
        stopping.cancel()
        await asyncio.gather(*tasks)


async def _finish(task: asyncio.Task[Any]) -> None:
    """Wait for the sync loop to stop after its stop event; cancel it if it takes too long."""
    try:
        await asyncio.wait_for(task, SYNC_STOP_TIMEOUT_S)
    except TimeoutError:
        log.warning("the sync did not stop within %g s; cancelled", SYNC_STOP_TIMEOUT_S)
    except Exception:
        log.exception("the sync loop failed")
