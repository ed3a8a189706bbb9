"""Sync benchmark: a generated upstream registry file of N servers x V versions (default
10,000 x 3, each version with two packages, a remote and an icon) synced into a private
PostgreSQL (PostgreSQL's default settings, fsync on) through ``SyncService``:

1. first sync (every row new);
2. no-change re-sync (same bytes: status only);
3. re-sync of a file with other bytes but the same content (every version hashed and compared,
   nothing written);
4. re-sync with 1% of the servers changed (a new description) and one new version each.

Peak resident memory of the process is reported too. Run: ``python benchmarks/sync_bench.py
[--servers N] [--versions V] [--repeat R] [--type file|git|api|all]`` (or against an existing
empty database with ``--dsn``). Prints one line per step (median of R runs where the step is
repeatable). ``--type git`` and ``--type api`` time the same registry through a git source (a
local bare repository) and an api source (a local ``serve``), see ``sync_sources_bench.py``;
``--type all`` runs each type in its own process and database, so each peak memory is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"


def generate(servers: int, versions: int, changed_every: int = 0, tag: str = "") -> dict[str, Any]:
    """The upstream document; ``changed_every`` > 0 changes every n-th server and adds a
    version to it."""
    items = []
    for i in range(servers):
        name = f"io.github.bench{i % 97}/server-{i:05d}"
        count = versions + (1 if changed_every and i % changed_every == 0 else 0)
        for v in range(count):
            version = f"1.{v}.0"
            changed = changed_every and i % changed_every == 0
            items.append(
                {
                    "$schema": SCHEMA,
                    "name": name,
                    "title": f"Server {i}",
                    "description": f"Benchmark server {i}{' (changed)' if changed else ''}{tag}",
                    "version": version,
                    "websiteUrl": f"https://example.com/{i}",
                    "repository": {"url": f"https://github.com/bench/s{i}", "source": "github"},
                    "icons": [{"src": f"https://example.com/{i}.png", "mimeType": "image/png",
                               "sizes": ["48x48"]}],
                    "packages": [
                        {"registryType": "npm", "identifier": f"@bench/s{i}", "version": version,
                         "runtimeHint": "npx", "transport": {"type": "stdio"},
                         "environmentVariables": [{"name": "TOKEN", "isSecret": True}]},
                        {"registryType": "oci", "identifier": f"ghcr.io/bench/s{i}:{version}",
                         "transport": {"type": "streamable-http",
                                       "url": "http://localhost:8080/mcp"}},
                    ],
                    "remotes": [{"type": "streamable-http",
                                 "url": f"https://mcp.example.com/s{i}/mcp",
                                 "headers": [{"name": "Authorization", "isSecret": True}]}],
                    "_meta": {"io.modelcontextprotocol.registry/publisher-provided": {
                        "io.github.bench": {f"@bench/s{i}": {"tags": ["bench", f"t{i % 10}"]}}}},
                }
            )  # fmt: skip
    return {"$schema": "x", "version": "1.0.0", "meta": {"last_updated": "2026-01-01T00:00:00Z"},
            "data": {"servers": items}}  # fmt: skip


def write_file(
    path: Path, servers: int, versions: int, *, changed_every: int = 0, indent: int | None = None
) -> None:
    """Generate the file in a child process, so this one's memory is the sync's alone."""
    code = (
        "import json, sys; from benchmarks.sync_bench import generate; "
        f"open({str(path)!r}, 'w').write(json.dumps(generate({servers}, {versions}, "
        f"{changed_every}), indent={indent!r}))"
    )
    root = str(Path(__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def _settings(path: Path) -> Any:
    from datetime import timedelta

    from thv_registry.config import (
        FileSourceSettings,
        RegistrySettings,
        Settings,
        SourceSettings,
        SyncPolicy,
    )

    source = SourceSettings(
        name="bench", file=FileSourceSettings(path=str(path)),
        sync_policy=SyncPolicy(interval=timedelta(hours=1)),
    )  # fmt: skip
    return Settings(
        sources=(source,), registries=(RegistrySettings(name="default", sources=("bench",)),)
    )


async def timed_syncs(
    pool: Any, conf: Any, lines: list[str], cache: Path | None = None
) -> Callable[[str], Awaitable[float]]:
    """A ``SyncService`` on ``conf`` (reconciled) and a coroutine that syncs its source
    ``bench`` now, adds a line to ``lines`` and returns the seconds it took."""
    from thv_registry.sync import SyncService

    service = SyncService(pool, conf, cache_dir=cache)
    await service.reconcile()

    async def timed(label: str) -> float:
        started = time.perf_counter()
        outcome = await service.sync_now("bench")
        seconds = time.perf_counter() - started
        assert outcome.result != "failed", outcome.message
        lines.append(f"  {label}: {seconds:.3f} s ({outcome.result}, {outcome.changed} versions "
                     f"written, {outcome.deleted} deleted)")  # fmt: skip
        return seconds

    return timed


async def _run(dsn: str, work: Path, servers: int, versions: int, repeat: int) -> list[str]:
    from psycopg_pool import AsyncConnectionPool

    path = work / "registry.json"
    write_file(path, servers, versions)
    size = path.stat().st_size
    lines = [f"file: {servers} servers x {versions} versions, {size / 1e6:.1f} MB"]
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(dsn, min_size=1, max_size=4, open=False)
    await pool.open()
    try:
        timed = await timed_syncs(pool, _settings(path), lines)
        await timed("first sync")
        same = [await timed("no-change re-sync") for _ in range(repeat)]
        reformatted = []
        for r in range(repeat):
            write_file(path, servers, versions, indent=r + 1)  # other bytes, same content
            reformatted.append(await timed("same content, other bytes"))
        write_file(path, servers, versions, changed_every=100)
        await timed("1% of servers changed (+1 version each)")
        lines.append(
            f"medians: no-change {statistics.median(same):.3f} s, same content "
            f"{statistics.median(reformatted):.3f} s"
        )
    finally:
        await pool.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"peak resident memory of this process: {peak:.0f} MB")
    return lines


async def _run_type(
    kind: str, dsn: str, work: Path, servers: int, versions: int, repeat: int
) -> list[str]:
    if kind == "file":
        return await _run(dsn, work, servers, versions, repeat)
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    from benchmarks import sync_sources_bench as other

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(dsn, min_size=1, max_size=4, open=False)
    await pool.open()
    try:
        if kind == "git":
            lines = await other.run_git(pool, work, servers, versions, repeat)
        else:
            admin = psycopg.conninfo.make_conninfo(dsn, dbname="postgres")
            lines = await other.run_api(pool, admin, work, servers, versions, repeat)
    finally:
        await pool.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [*lines, f"peak resident memory of this process: {peak:.0f} MB"]


def _each_type(dsn: str, args: argparse.Namespace) -> None:
    """Each type in a child process on a database of its own (``{dbname}_{type}``)."""
    import psycopg

    for kind in ("file", "git", "api"):
        name = f"{psycopg.conninfo.conninfo_to_dict(dsn)['dbname']}_{kind}"
        with psycopg.connect(psycopg.conninfo.make_conninfo(dsn), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        child = psycopg.conninfo.make_conninfo(dsn, dbname=name)
        sys.stdout.flush()
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--type", kind, "--dsn", child,
             "--servers", str(args.servers), "--versions", str(args.versions),
             "--repeat", str(args.repeat)],
            check=True,
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dsn", help="an empty database to use instead of a private server")
    parser.add_argument("--type", choices=("file", "git", "api", "all"), default="file")
    args = parser.parse_args()
    from thv_registry.db.connect import ConnectionParams
    from thv_registry.migrations import Migrator, Source, Up

    server = None
    if args.dsn is None:
        import psycopg

        from benchmarks.server import start_private_server

        server = start_private_server()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE syncbench")
        dsn = server.url("syncbench")
        params = ConnectionParams(server.host, server.port, "postgres", "syncbench", "disable")
        print(f"PostgreSQL {server.version} (private server, default settings)")
    else:
        import psycopg

        dsn = args.dsn
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        params = ConnectionParams(
            str(info.get("host", "127.0.0.1")), int(str(info.get("port") or 5432)),
            str(info.get("user", "postgres")), str(info["dbname"]), "disable",
        )  # fmt: skip
    try:
        if args.type == "all":
            _each_type(dsn, args)
            return
        Migrator(params, Source.embedded()).apply(Up())
        with tempfile.TemporaryDirectory() as work:
            for line in asyncio.run(
                _run_type(args.type, dsn, Path(work), args.servers, args.versions, args.repeat)
            ):
                print(line)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
