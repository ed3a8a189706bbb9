"""The sync in a process of its own beside the serving one: start it, hear it, stop it, restart it.

``serve`` reads and syncs on one database. In one process the sync's CPU work (parsing a large
source, making its rows, reading what the source holds) shares the GIL with the event loop that
serves, and a read waits behind it: p99 was 6-8x the idle p99 during a 10,000-server sync
(``benchmarks/sync_read_bench.py``). So :class:`SyncProcess` runs :class:`~thv_registry.sync.
SyncService` in a child process (``python -m thv_registry.sync.worker``, see :mod:`.worker`) at
a lower CPU priority (:data:`NICE`), with a pool of its own (:data:`POOL_MIN` to
:data:`POOL_MAX` connections, within ``maxOpenConns`` when it allows two, which bounds the
serving pool), under the parent's replica name. The parent keeps the API, the metrics and the
signals; the reconciliation at start-up stays in the parent, so its errors stop ``serve`` before
it serves.

One socket pair joins them. Parent to child: the :class:`WorkerSpec` (pickled: the settings,
which may hold a password, never travel in argv or the environment), then :data:`STOP`. Child to
parent: each finished sync attempt (``("sync", source, result, seconds)``: the metrics), the
mismatch flag (``("mismatch", bool)``) and the child's log records (``("log", attributes)``),
which the parent's logging handles like its own: one stream, one format, the same filters.

The child stops when told, when the socket closes (the parent is gone) and, on Linux, dies with
the parent (``PR_SET_PDEATHSIG``): a replica killed with SIGKILL is gone whole and its leases
expire, as when its machine dies. A child that exits by itself is started again after
:data:`RESTART_MIN_S`, doubling up to :data:`RESTART_MAX_S` while it keeps failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe
from typing import Any

from thv_registry.db.connect import ConnectionParams
from thv_registry.sync.settings import SyncSettings

__all__ = [
    "SyncProcess",
    "WorkerSpec",
    "STOP",
    "NICE",
    "POOL_MAX",
    "POOL_MIN",
    "APPLICATION_NAME",
    "log_levels",
]

log = logging.getLogger(__name__)

STOP = "stop"  #: the parent's one instruction
NICE = 10  #: added to the child's niceness: the kernel gives the serving process the CPU first
POOL_MAX = 3  #: the child's connections at most (the write, the lease renewal, the heartbeat)
POOL_MIN = 2  #: ... and at least, whatever ``maxOpenConns`` says: a write and its lease renewal
APPLICATION_NAME = "thv-registry-api sync"  #: the child's connections in ``pg_stat_activity``
READY_TIMEOUT_S = 30.0  #: how long :meth:`SyncProcess.wait_ready` waits for a child's pool
RESTART_MIN_S = 1.0
RESTART_MAX_S = 60.0
RESTART_RESET_S = 60.0  #: a child that ran this long before exiting is restarted after MIN again
STOP_TIMEOUT_S = 10.0  #: a stop waits this long for the child (one transaction per source)


@dataclass(frozen=True)
class WorkerSpec:
    """Everything the child needs, sent pickled over the socket pair."""

    settings: SyncSettings
    params: ConnectionParams  #: the application user
    holder: str  #: the parent's replica name: its leases and heartbeat are the replica's
    deletions_held: bool  #: what the parent's reconcile left for every replica to agree on
    parent_pid: int
    log_levels: tuple[tuple[str, int], ...]  #: (logger name, level) as the parent set them


def log_levels(*names: str) -> tuple[tuple[str, int], ...]:
    """The levels the parent's loggers ``names`` have ("" is the root): the child logs alike."""
    return tuple((name, logging.getLogger(name or None).level) for name in names)


class SyncProcess:
    """Runs the sync in a child process until ``stop``; hears what it reports."""

    def __init__(
        self,
        spec: WorkerSpec,
        *,
        on_sync: Callable[[str, str, float], None] | None = None,
        on_mismatch: Callable[[bool], None] | None = None,
    ) -> None:
        self.spec = spec
        self.on_sync = on_sync
        self.on_mismatch = on_mismatch
        self._ready = asyncio.Event()  #: a child said its pool is open (it syncs from now)
        self._settled = asyncio.Event()  #: ... or a child exited before that

    async def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> bool:
        """Wait until a child has opened its pool (``serve`` says it serves once the sync runs
        too); False if the first child exited first or after ``timeout`` (it is started again;
        serving does not wait for it)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout)
        return self._ready.is_set()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep a child running until ``stop`` is set; then stop it (and wait for it)."""
        delay = RESTART_MIN_S
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                started = time.monotonic()
                code = await self._once(stopping)
                if stop.is_set():
                    break
                if time.monotonic() - started >= RESTART_RESET_S:
                    delay = RESTART_MIN_S
                log.warning(
                    "the sync process exited (exit code %s); starting it again in %g s",
                    code, delay,
                )  # fmt: skip
                await asyncio.wait({stopping}, timeout=delay)
                delay = min(delay * 2, RESTART_MAX_S)
        finally:
            stopping.cancel()

    async def _once(self, stopping: asyncio.Task[Any]) -> int | None:
        """Start a child, relay its messages until it exits or ``stopping`` completes; its
        exit code (None: it was killed after not stopping in time)."""
        loop = asyncio.get_running_loop()
        ours, theirs = Pipe(duplex=True)
        try:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "thv_registry.sync.worker", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            theirs.close()
        loop.add_reader(ours.fileno(), self._readable, ours, loop)
        try:
            with contextlib.suppress(OSError):
                ours.send(self.spec)
            exited = asyncio.create_task(child.wait())
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                with contextlib.suppress(OSError):
                    ours.send(STOP)
                try:
                    await asyncio.wait_for(asyncio.shield(exited), STOP_TIMEOUT_S)
                except TimeoutError:
                    log.warning("the sync process did not stop within %g s; killed",
                                STOP_TIMEOUT_S)  # fmt: skip
                    with contextlib.suppress(ProcessLookupError):
                        child.kill()
                    await exited
                    return None
            return exited.result()
        finally:
            self._drain(ours)
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(ours.fileno())
            ours.close()
            self._settled.set()

    def _readable(self, conn: Connection, loop: asyncio.AbstractEventLoop) -> None:
        if not self._drain(conn):  # the child is gone: its exit is awaited in _once
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(conn.fileno())

    def _drain(self, conn: Connection) -> bool:
        """Handle what the child said and was not read yet; False once its end is closed."""
        try:
            while conn.poll():
                self._dispatch(conn.recv())
        except (EOFError, OSError):
            return False
        return True

    def _dispatch(self, message: Any) -> None:
        match message:
            case ("sync", str(source), str(result), float(seconds)):
                if self.on_sync is not None:
                    self.on_sync(source, result, seconds)
            case ("ready",):
                self._ready.set()
                self._settled.set()
            case ("mismatch", bool(flag)):
                if self.on_mismatch is not None:
                    self.on_mismatch(flag)
            case ("log", dict(attributes)):
                record = logging.makeLogRecord(attributes)
                logger = logging.getLogger(record.name)
                if logger.isEnabledFor(record.levelno):
                    logger.handle(record)
            case _:  # pragma: no cover - the child sends only the messages above
                log.debug("unknown message from the sync process: %r", message)
