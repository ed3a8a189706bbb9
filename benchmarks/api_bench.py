"""Registry API benchmark (issue 10): a real ``serve`` over a generated registry, against floors.

Data: ``benchmarks/sync_bench.generate`` (N servers x V versions, default 10,000 x 3, each
version with two packages, a remote and an icon) written as an upstream registry file and
loaded by a real ``thv-registry-api serve`` process (a ``file`` source) on a fresh database.
The database server is the one ``--url`` names, else the local PostgreSQL on 127.0.0.1:5432
when it answers, else a private server in a temp dir (``benchmarks/server.py``).

Measures, each with its floor and target (see benchmarks/README.md, "API benchmark"):
list (``limit=30``) and get-latest throughput at 32 connections against the combined floor
``1 / (1/http + 1/db)`` (``benchmarks/api_floors.py``); p99 latency at a steady 500 requests/s
(an open-loop generator, ``benchmarks/api_load.py``); a full walk at ``limit=100``; the first
sync and a no-change re-sync (``registry_sync_duration_seconds`` of the serve process, the
re-sync being the one a restarted serve does at start-up); resident memory of the serve
process (``/proc/PID/status``) while serving and while syncing.

Run: ``python benchmarks/api_bench.py`` (or ``task bench-api``); ``--quick`` for tiny sizes.
Load comes from ``wrk`` when installed (``--install-wrk``: ``apt-get install -y wrk`` first, as
root), else from a Python closed-loop client.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import api_load
from benchmarks.api_report import Row, latency_note, median, record, render
from benchmarks.api_setup import (
    REGISTRY,
    Database,
    Serve,
    backend_pids,
    cpu_seconds,
    create_database,
    drop_database,
    ensure_wrk,
    find_database,
    write_config,
)

#: the set-up helpers are re-exported (benchmarks/sync_sources_bench.py imports them from here)
__all__ = ["REGISTRY", "Serve", "create_database", "drop_database", "main", "run", "write_config"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# --- measures ----------------------------------------------------------------------------------


def list_pages(base: str, pages: int) -> tuple[list[str], dict[str, bytes], list[str | None]]:
    """The paths of the first ``pages`` pages at ``limit=30``, their bodies and cursors."""
    import httpx

    paths: list[str] = []
    bodies: dict[str, bytes] = {}
    cursors: list[str | None] = [None]
    path: str | None = f"/registry/{REGISTRY}/v0.1/servers?limit=30"
    with httpx.Client(base_url=base, timeout=30) as client:
        while path is not None and len(paths) < pages:
            response = client.get(path)
            response.raise_for_status()
            paths.append(path)
            bodies[path] = response.content
            cursor = response.json()["metadata"].get("nextCursor")
            cursors.append(cursor)
            path = None if cursor is None else (
                f"/registry/{REGISTRY}/v0.1/servers?limit=30&cursor={quote(cursor, safe='')}"
            )  # fmt: skip
    return paths, bodies, cursors[: len(paths)]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the HTTP floor server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the HTTP floor server did not listen")


def server_name(i: int) -> str:
    return f"io.github.bench{i % 97}/server-{i:05d}"  # sync_bench.generate's names


def get_paths(base: str, names: Sequence[str]) -> tuple[list[str], dict[str, bytes]]:
    import httpx

    paths: list[str] = []
    bodies: dict[str, bytes] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for name in names:
            path = f"/registry/{REGISTRY}/v0.1/servers/{quote(name, safe='')}/versions/latest"
            response = client.get(path)
            response.raise_for_status()
            paths.append(path)
            bodies[path] = response.content
    return paths, bodies


def full_walk(base: str, limit: int) -> tuple[float, int, int, bool]:
    """Walk every page: (seconds, versions, pages, every (name, version) once and in order)."""
    import httpx

    seen: list[tuple[str, str]] = []
    pages = 0
    cursor: str | None = None
    started = time.perf_counter()
    with httpx.Client(base_url=base, timeout=30) as client:
        while True:
            params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
            response = client.get(f"/registry/{REGISTRY}/v0.1/servers", params=params)
            response.raise_for_status()
            doc = response.json()
            pages += 1
            seen.extend((s["server"]["name"], s["server"]["version"]) for s in doc["servers"])
            cursor = doc["metadata"].get("nextCursor")
            if cursor is None:
                break
    seconds = time.perf_counter() - started
    names = [n for n, _ in seen]
    ok = len(set(seen)) == len(seen) and names == sorted(names)
    return seconds, len(seen), pages, ok


def throughput(
    tool: str,
    base: str,
    paths: Sequence[str],
    seconds: float,
    cpu: dict[str, Callable[[], float]] | None = None,
) -> api_load.LoadResult:
    """32 connections, closed loop: a short warm-up, then the measure; ``cpu``: CPU seconds
    used so far by each watched process group, read around the measure."""
    warm = min(2.0, seconds / 2)
    if tool == "wrk":
        api_load.wrk(base, paths, connections=32, seconds=warm)
    else:
        asyncio.run(api_load.closed_loop(base, paths, connections=32, seconds=warm))
    before = {k: f() for k, f in (cpu or {}).items()}
    if tool == "wrk":
        result = api_load.wrk(base, paths, connections=32, seconds=seconds)
    else:
        result = asyncio.run(api_load.closed_loop(base, paths, connections=32, seconds=seconds))
    for k, f in (cpu or {}).items():
        result.cpu_ms[k] = (f() - before[k]) * 1000 / max(result.requests, 1)
    return result


def latency(base: str, paths: Sequence[str], rate: float, seconds: float) -> api_load.LoadResult:
    import uvloop

    asyncio.run(api_load.open_loop(base, paths, rate=rate, seconds=min(2.0, seconds / 2)))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(api_load.open_loop(base, paths, rate=rate, seconds=seconds))


def http_floor(
    tool: str, workdir: Path, bodies: dict[str, bytes], paths: Sequence[str], seconds: float
) -> api_load.LoadResult:
    """The same paths' bytes from memory on the same uvicorn, under the same load."""
    import json
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    bodies_file = workdir / "bodies.json"
    bodies_file.write_text(json.dumps({k: v.decode() for k, v in bodies.items()}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.api_floors", str(bodies_file), str(port)], cwd=ROOT
    )
    try:
        wait_for_port(port, proc)
        return throughput(tool, f"http://127.0.0.1:{port}", paths, seconds)
    finally:
        proc.terminate()
        proc.wait(30)


def db_floor(
    conninfo: str, kind: str, items: Sequence[Any], concurrency: int, seconds: float
) -> float:
    import uvloop

    from benchmarks.api_floors import db_floor as run

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        warm = min(2.0, seconds / 2)
        runner.run(run(conninfo, REGISTRY, kind, items, concurrency=concurrency, seconds=warm))
        done, elapsed = runner.run(
            run(conninfo, REGISTRY, kind, items, concurrency=concurrency, seconds=seconds)
        )
    return done / elapsed


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Options:
    servers: int
    versions: int
    seconds: float  #: each throughput measure (and each database floor)
    latency_seconds: float  #: each open-loop latency measure
    rate: float
    pages: int  #: distinct list pages cycled through
    names: int  #: distinct servers cycled through by get-latest
    tool: str
    rounds: int = 3  #: throughput rounds, ours and the database floor taking turns
    cache_bytes: int | None = None  #: server.responseCache.maxBytes (None: serve's default)


def run(db: Database, opts: Options, workdir: Path, log: Callable[[str], None]) -> list[Row]:
    import psycopg

    from benchmarks.api_floors import START
    from benchmarks.sync_bench import write_file
    from thv_registry.db.pool import APPLICATION_NAME
    from thv_registry.registry import cursor as cursors
    from thv_registry.registry.cursor import ServerPosition

    name, block = create_database(db.admin)
    conninfo = psycopg.conninfo.make_conninfo(db.admin, dbname=name)
    rows: list[Row] = []
    try:
        registry_file = workdir / "registry.json"
        write_file(registry_file, opts.servers, opts.versions)
        log(f"registry file: {opts.servers} x {opts.versions}, "
            f"{registry_file.stat().st_size / 1e6:.1f} MB")  # fmt: skip
        config = write_config(workdir / "config.yaml", block, registry_file, opts.cache_bytes)

        serve = Serve(config, workdir, "first")
        try:
            serve.wait_started()
            result, first_sync = serve.wait_sync(1)
            syncing_mb = serve.rss.field_kb("VmHWM") / 1024  # peak so far: start-up + first sync
            settled = serve.settle(first_sync)
            if settled is not None:
                log(f"a re-sync right after the first one (its source was due): {settled[0]}, "
                    f"{settled[1]:.3f} s")  # fmt: skip
            log(f"first sync: {result}, {first_sync:.2f} s; peak RSS {syncing_mb:.0f} MB")
            list_p, list_bodies, list_cursors = list_pages(serve.base, opts.pages)
            step = max(1, opts.servers // opts.names)
            names = [server_name(i) for i in range(0, opts.servers, step)][: opts.names]
            get_p, get_bodies = get_paths(serve.base, names)
            serve.rss.reset()
            walk_s, walked, walk_pages, walk_ok = full_walk(serve.base, 100)
            log(f"walk: {walked} versions in {walk_pages} pages, {walk_s:.2f} s, ok={walk_ok}")
            cpu = {
                "serve": lambda: cpu_seconds([serve.proc.pid]),
                "PostgreSQL": lambda: cpu_seconds(backend_pids(conninfo, APPLICATION_NAME)),
            }
            positions = [START if c is None else cursors.decode(c, ServerPosition)
                         for c in list_cursors]  # fmt: skip
            # ours and the database floor take turns (serve idle meanwhile), so that the drift
            # of a shared machine's load hits both alike; the median round of each is reported
            ours: dict[str, list[api_load.LoadResult]] = {"list": [], "get": []}
            floor: dict[str, list[float]] = {"list": [], "get": []}
            for r in range(opts.rounds):
                for kind, paths, items in (("list", list_p, positions), ("get", get_p, names)):
                    ours[kind].append(throughput(opts.tool, serve.base, paths, opts.seconds, cpu))
                    floor[kind].append(db_floor(conninfo, kind, items, 32, opts.seconds))
                    last = ours[kind][-1]
                    log(f"round {r + 1} {kind}: ours {last.rps:.0f}/s ({last.errors} errors), "
                        f"DB floor {floor[kind][-1]:.0f}/s")  # fmt: skip
            db_list4 = db_floor(conninfo, "list", positions, 4, opts.seconds)
            ours_list, ours_get = (median(ours[k], lambda x: x.rps) for k in ("list", "get"))
            db_list, db_get = (median(floor[k], float) for k in ("list", "get"))
            lat_list = latency(serve.base, list_p, opts.rate, opts.latency_seconds)
            lat_get = latency(serve.base, get_p, opts.rate, opts.latency_seconds)
            log(f"p99 at {opts.rate:g}/s: list {lat_list.p99_ms} ms, get {lat_get.p99_ms} ms")
            serving_mb = serve.rss.peak_kb / 1024
            cache = serve.cache_counts()
        finally:
            serve.stop()

        http_list = http_floor(opts.tool, workdir, list_bodies, list_p, opts.seconds)
        http_get = http_floor(opts.tool, workdir, get_bodies, get_p, opts.seconds)
        log(f"HTTP floor: list {http_list.rps:.0f}/s, get {http_get.rps:.0f}/s")

        # a restarted serve: its source is due at once, the same bytes: a no-change re-sync
        again = Serve(config, workdir, "again")
        try:
            again.wait_started()
            resync_result, resync = again.wait_sync(1)
            log(f"no-change re-sync: {resync_result}, {resync:.3f} s")
        finally:
            again.stop()
    finally:
        drop_database(db.admin, name)

    total = opts.servers * opts.versions
    rows += [
        Row.throughput("list `limit=30`, 32 connections", ours_list, http_list.rps, db_list),
        Row.throughput("get latest, 32 connections", ours_get, http_get.rps, db_get),
        Row.ceiling(f"list p99 at a steady {opts.rate:g}/s", lat_list.p99_ms, 25.0, "ms",
                    latency_note(lat_list)),
        Row.ceiling(f"get latest p99 at a steady {opts.rate:g}/s", lat_get.p99_ms, 10.0, "ms",
                    latency_note(lat_get)),
        Row.ceiling(f"full walk of {total:,} versions at `limit=100`", walk_s, 10.0, "s",
                    f"{walk_pages} pages, {walked:,} versions, "
                    f"{'each once, in order' if walk_ok and walked == total else 'WRONG'}"),
        Row.ceiling(f"first sync of the {opts.servers:,}-server file", first_sync, 15.0, "s",
                    f"result {result}"),
        Row.ceiling("no-change re-sync", resync, 1.0, "s", f"result {resync_result}"),
        Row.ceiling("RSS of serve, serving (peak over walk and load)", serving_mb, 150.0, "MB",
                    "after the first sync; serve and its sync process, summed"),
        Row.ceiling("RSS of serve, syncing (peak: start-up + first sync)", syncing_mb, 300.0,
                    "MB", "VmHWM: each process's peak, summed (serve and its sync process)"),
    ]  # fmt: skip
    for row, kind in ((rows[0], "list"), (rows[1], "get")):
        row.note += (
            "; rounds: ours " + ", ".join(f"{x.rps:,.0f}" for x in ours[kind])
            + ", DB floor " + ", ".join(f"{x:,.0f}" for x in floor[kind])
        )  # fmt: skip
    rows[0].note += f"; DB floor with 4 connections {db_list4:,.0f}/s"
    hits, misses = cache.get("hit", 0.0), cache.get("miss", 0.0)
    rows[0].note += (
        f"; response cache over the whole run: {hits:,.0f} hits, {misses:,.0f} misses"
        if hits + misses else "; response cache off"
    )  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="each throughput measure")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=500.0, help="requests/s of the p99 measure")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (median)")
    parser.add_argument("--pages", type=int, default=20, help="distinct list pages")
    parser.add_argument("--names", type=int, default=200, help="distinct servers for get")
    parser.add_argument("--url", help="a PostgreSQL server (admin database) to create one in")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--install-wrk", action="store_true", help="apt-get install wrk if missing")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--cache-bytes", type=int, help="server.responseCache.maxBytes (0: off)")
    parser.add_argument(
        "--out", type=Path, default=HERE / "results.md", help="its API section is replaced"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.servers, args.versions, args.seconds, args.latency_seconds = 40, 3, 0.5, 0.5
        args.rate, args.pages, args.names, args.rounds = 100.0, 3, 10, 1
    tool = ensure_wrk(args.install_wrk) if args.client == "auto" else args.client
    if tool == "wrk" and api_load.wrk_path() is None:
        parser.error("--client wrk: wrk is not installed (try --install-wrk)")
    opts = Options(args.servers, args.versions, args.seconds, args.latency_seconds, args.rate,
                   args.pages, args.names, tool, args.rounds, args.cache_bytes)  # fmt: skip
    db = find_database(args.url)
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="thv-api-bench-") as work:
            rows = run(db, opts, Path(work), lambda line: print(line, file=sys.stderr, flush=True))
    finally:
        db.stop()
    load = f"{load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after it"
    setting = (
        f"Everything on this one machine ({os.cpu_count()} cores, shared by serve, PostgreSQL "
        f"and the load generator; 1-minute load average {load}), loopback only. "
        f"Database: {db.which}, a fresh database. "
        f"Load: {'wrk 4.1 (closed loop, 2 threads)' if tool == 'wrk' else 'a Python client'}"
        f" for throughput ({opts.seconds:g} s after a warm-up, median of {opts.rounds} rounds, "
        f"{opts.pages} list pages and "
        f"{opts.names} servers taken in turn, no Accept-Encoding: no gzip); a Python open-loop "
        f"generator for p99 ({opts.latency_seconds:g} s, latency from each request's scheduled "
        f"time). Python {platform.python_version()}; serve: one process, uvicorn with uvloop and "
        "httptools, the pool's default size; response cache "
        + ("off" if opts.cache_bytes == 0 else
           "at serve's default size" if opts.cache_bytes is None else f"{opts.cache_bytes:,} B")
        + " (nothing syncs during the load, so after the first request of each page every"
        " request is a hit: the figures are the read-only steady state)."
    )  # fmt: skip
    text = render(rows, started, opts.servers, opts.versions, setting)
    print(text)
    record(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
