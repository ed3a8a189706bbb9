"""The sync process's side (``python -m thv_registry.sync.worker FD``): see :mod:`.process`.

It reads its :class:`~thv_registry.sync.process.WorkerSpec` from the socket ``FD``, arranges to
die with its parent, lowers its CPU priority, sends its log records to the parent, opens a small
pool and runs :meth:`SyncService.run <thv_registry.sync.SyncService.run>` until the parent says
stop, the socket closes, or SIGTERM comes. SIGINT is ignored: a terminal's Ctrl-C reaches the
whole process group, and the parent decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from thv_registry.sync.process import (
    APPLICATION_NAME,
    NICE,
    POOL_MAX,
    POOL_MIN,
    STOP,
    WorkerSpec,
)

__all__ = ["main"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  #: prctl(2)


class _Channel:
    """Sends to the parent from any thread; a parent gone is not an error here (the reader of
    the socket sees it and stops the sync)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock, contextlib.suppress(OSError):
            self._conn.send(message)

    def put_nowait(self, record: logging.LogRecord) -> None:  # QueueHandler's queue
        attributes = dict(record.__dict__)
        attributes.pop("message", None)
        self.send(("log", attributes))


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL when the parent dies; anywhere: exit now if it is already gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(0)


def _log_to(channel: _Channel, levels: tuple[tuple[str, int], ...]) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(channel))  # type: ignore[arg-type]
    for name, level in levels:
        logging.getLogger(name or None).setLevel(level)


async def _run(spec: WorkerSpec, conn: Connection, channel: _Channel) -> None:
    from thv_registry.db.pool import PoolSizing, open_pool
    from thv_registry.sync import SyncService

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def readable() -> None:
        try:
            while conn.poll():
                if conn.recv() == STOP:
                    stop.set()
        except (EOFError, OSError):  # the parent is gone
            stop.set()
            loop.remove_reader(conn.fileno())

    loop.add_reader(conn.fileno(), readable)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    database = spec.settings.database
    most = (database.max_open_conns if database else None) or POOL_MAX
    lifetime = database.conn_max_lifetime if database else None
    sizing = PoolSizing.from_settings(max(POOL_MIN, min(POOL_MAX, most)), 1, lifetime)
    pool = await open_pool(spec.params, sizing, application_name=APPLICATION_NAME)
    channel.send(("ready",))
    try:
        service = SyncService(
            pool,
            spec.settings,
            on_sync=lambda source, result, seconds: channel.send(
                ("sync", source, result, float(seconds))
            ),
            on_mismatch=lambda flag: channel.send(("mismatch", bool(flag))),
            holder=spec.holder,
            deletions_held=spec.deletions_held,
        )
        await service.run(stop)
    finally:
        await pool.close()


def main(argv: list[str]) -> int:
    conn = Connection(int(argv[1]))
    spec: WorkerSpec = conn.recv()
    _die_with_parent(spec.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(NICE)
    channel = _Channel(conn)
    _log_to(channel, spec.log_levels)
    try:
        asyncio.run(_run(spec, conn, channel))
    except Exception as e:  # the database away at start, say: the parent starts another
        log.warning("the sync process stops: %s", e, exc_info=log.isEnabledFor(logging.DEBUG))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
