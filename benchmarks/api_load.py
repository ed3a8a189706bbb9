"""Load generators of the API benchmark (``benchmarks/api_bench.py``).

- :func:`wrk` runs ``wrk`` (closed loop: each connection sends its next request when the last
  one is answered) over a list of paths taken in turn, and parses its summary.
- :func:`closed_loop` is the same measure in Python, for machines without ``wrk``.
- :func:`open_loop` sends requests at fixed times (``rate`` per second, whether or not earlier
  ones were answered) and measures each latency from its *scheduled* time, so a server that
  falls behind is charged for the queueing too (no coordinated omission). Debian's ``wrk`` is
  not wrk2 (it has no ``-R``), hence this generator.

The Python clients speak HTTP/1.1 over keep-alive asyncio streams with a few lines of parsing,
not an HTTP library: a library client costs a few hundred microseconds per request, which
would sit inside the latencies measured here and take CPU from the server on a 2-core machine.
They expect what both servers under test send: a ``content-length`` on every response.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: the open loop stops when this many seconds of requests are unanswered (bounded run time)
OVERLOAD_BACKLOG_S = 2.0

__all__ = ["LoadResult", "closed_loop", "open_loop", "percentile", "wrk", "wrk_path"]


@dataclass
class LoadResult:
    """One load run: answers, errors (non-2xx answers and failed requests), and latencies."""

    tool: str
    requests: int
    seconds: float
    errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    #: open loop: stopped early, the server being seconds behind (latencies are lower bounds)
    overloaded: bool = False
    #: CPU milliseconds per request of the processes watched (e.g. ``serve``, ``PostgreSQL``)
    cpu_ms: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, int(round(q * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def _summarise(result: LoadResult) -> LoadResult:
    if result.latencies_ms:
        result.p50_ms = percentile(result.latencies_ms, 0.50)
        result.p99_ms = percentile(result.latencies_ms, 0.99)
        result.max_ms = max(result.latencies_ms)
    return result


# --- wrk ---------------------------------------------------------------------------------------


def wrk_path() -> str | None:
    return shutil.which("wrk")


_LUA = """
paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(
    base: str, paths: Sequence[str], *, connections: int, seconds: float, threads: int = 2
) -> LoadResult:
    """``wrk -t threads -c connections -d seconds --latency`` cycling through ``paths``."""
    binary = wrk_path()
    assert binary is not None, "wrk is not installed"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % ", ".join(_lua_string(p) for p in paths))
    try:
        argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        argv += ["--latency", "-s", script.name, base]
        out = subprocess.run(
            argv, capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
    finally:
        Path(script.name).unlink()
    total = re.search(r"(\d+) requests in ([\d.]+)(m|s|ms)", out)
    if total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    elapsed = _ms(total.group(2), total.group(3)) / 1000
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if sockets:
        errors += sum(int(x) for x in sockets.groups())
    result = LoadResult("wrk", int(total.group(1)), elapsed, errors)
    for q, attr in (("50", "p50_ms"), ("99", "p99_ms")):
        found = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if found:
            setattr(result, attr, _ms(found.group(1), found.group(2)))
    return result


# --- Python clients ----------------------------------------------------------------------------


class _Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def get(self, path: str, host: str) -> int:
        """Send ``GET path``; return the status once the whole body has arrived."""
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("latin-1"))
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        found = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
        if found is None:
            raise RuntimeError("a response without content-length")
        await self.reader.readexactly(int(found.group(1)))
        return status

    def close(self) -> None:
        self.writer.close()


def _split(base: str) -> tuple[str, int]:
    host, _, port = base.removeprefix("http://").rstrip("/").rpartition(":")
    return host, int(port)


async def closed_loop(
    base: str, paths: Sequence[str], *, connections: int, seconds: float
) -> LoadResult:
    """``connections`` clients, each sending its next request when the last is answered."""
    host, port = _split(base)
    conns = [await _Connection.open(host, port) for _ in range(connections)]
    counts = [0, 0]  # answers, errors
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(k: int, conn: _Connection) -> None:
        i = k
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            status = await conn.get(paths[i % len(paths)], host)
            latencies.append((time.perf_counter() - sent) * 1000)
            counts[0] += 1
            counts[1] += not 200 <= status < 300
            i += connections

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(k, c) for k, c in enumerate(conns)))
    finally:
        for conn in conns:
            conn.close()
    elapsed = time.perf_counter() - started
    result = LoadResult("python closed loop", counts[0], elapsed, counts[1])
    result.latencies_ms = latencies
    return _summarise(result)


async def open_loop(
    base: str,
    paths: Sequence[str],
    *,
    rate: float,
    seconds: float,
    max_connections: int = 64,
    stop: asyncio.Event | None = None,
    timeline: list[tuple[float, str, float]] | None = None,
) -> LoadResult:
    """``rate`` requests per second at fixed times for ``seconds``; latency from the schedule.

    A request whose time has come takes an idle connection, else opens one (up to
    ``max_connections``), else waits for one: the wait counts in its latency. ``stop``: no
    request is scheduled once it is set. ``timeline``: each answered request appended as
    (its scheduled time as ``time.time()``, its path, its latency in ms), so that a caller can
    tell which requests fell inside a window it timed on the wall clock.
    """
    host, port = _split(base)
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    opened = 0
    for _ in range(8):
        idle.put_nowait(await _Connection.open(host, port))
        opened += 1
    latencies: list[float] = []
    errors = [0]
    wall = time.time() - loop.time()  # loop time + wall = the wall clock

    async def one(path: str, scheduled: float) -> None:
        nonlocal opened
        if idle.empty() and opened < max_connections:
            opened += 1
            conn = await _Connection.open(host, port)
        else:
            conn = await idle.get()
        try:
            status = await conn.get(path, host)
        except (OSError, asyncio.IncompleteReadError, RuntimeError):
            errors[0] += 1
            conn.close()
            opened -= 1
            return
        latencies.append((loop.time() - scheduled) * 1000)
        if timeline is not None:
            timeline.append((scheduled + wall, path, latencies[-1]))
        errors[0] += not 200 <= status < 300
        idle.put_nowait(conn)

    count = int(rate * seconds)
    tasks: dict[asyncio.Task[None], float] = {}  # unanswered requests and their scheduled time
    start = loop.time() + 0.05
    overloaded = False
    for i in range(count):
        if stop is not None and stop.is_set():
            break
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) > max(50.0, rate * OVERLOAD_BACKLOG_S):
            overloaded = True  # the server is behind by seconds: stop, the bound is known
            break
        task = asyncio.create_task(one(paths[i % len(paths)], scheduled))
        tasks[task] = scheduled
        task.add_done_callback(lambda t: tasks.pop(t, None))
    if tasks:
        await asyncio.wait(list(tasks), timeout=5 if overloaded else 30)
    stopped = loop.time()
    for task, scheduled in list(tasks.items()):  # still unanswered: at least this late
        task.cancel()
        latencies.append((stopped - scheduled) * 1000)
    elapsed = stopped - start
    while not idle.empty():
        with contextlib.suppress(Exception):
            idle.get_nowait().close()
    result = LoadResult(f"python open loop, {rate:g}/s", len(latencies), elapsed, errors[0])
    result.latencies_ms = latencies
    result.overloaded = overloaded
    return _summarise(result)
