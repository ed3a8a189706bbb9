"""What keeps reads fast while ``serve`` syncs a large source in the same process: the parse's
worker thread runs under a short GIL switch interval (:mod:`thv_registry.sync.gilshare`), and
the writer's long loops give the event loop a turn every ``YIELD_EVERY`` entries or rows.
The latency itself is measured by benchmarks/sync_read_bench.py."""

from __future__ import annotations

import asyncio
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

import thv_registry.sync as sync_pkg
from conftest import TestDatabase
from sync_helpers import migrate, server, settings, with_pool, write_registry
from thv_registry.sync import SyncService, writer
from thv_registry.sync.gilshare import SWITCH_INTERVAL, short_switches


@pytest.fixture
def db(database: TestDatabase) -> TestDatabase:
    migrate(database)
    return database


def test_short_switches_nests_across_threads_and_restores_the_interval() -> None:
    before = sys.getswitchinterval()
    seen: list[float] = []
    with short_switches():
        seen.append(sys.getswitchinterval())

        def other() -> None:
            with short_switches():
                seen.append(sys.getswitchinterval())

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        seen.append(sys.getswitchinterval())  # the other holder left; this one still holds
    assert seen == [SWITCH_INTERVAL] * 3
    assert sys.getswitchinterval() == before


def test_the_parse_runs_under_the_short_interval_then_it_is_restored(
    db: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_registry(tmp_path / "r.json", [server("io.github.acme/alpha", "1.0.0")])
    real_parse = vars(sync_pkg)["parse"]  # the name the service calls (not an export)
    during: list[tuple[float, bool]] = []

    def parse(*args: Any, **kwargs: Any) -> Any:
        during.append(
            (sys.getswitchinterval(), threading.current_thread() is threading.main_thread())
        )
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(sync_pkg, "parse", parse)
    before = sys.getswitchinterval()

    async def body(pool: AsyncConnectionPool[Any]) -> str:
        service = SyncService(pool, settings({"local": path}))
        await service.reconcile()
        return (await service.sync_now("local")).result

    assert with_pool(db, body) == "synced"
    assert during == [(SWITCH_INTERVAL, False)]  # in a worker thread, the interval short
    assert sys.getswitchinterval() == before


def test_a_large_write_gives_the_event_loop_turns_in_each_long_loop(
    db: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = 4 * writer.YIELD_EVERY
    names = [f"io.github.acme/s{i:04d}" for i in range(count)]
    path = write_registry(tmp_path / "r.json", [server(n, "1.0.0") for n in names])
    turns: list[str] = []

    async def sleep(delay: float) -> None:
        frame = sys._getframe(1)
        turns.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        await asyncio.sleep(delay)

    monkeypatch.setattr(writer, "asyncio", types.SimpleNamespace(sleep=sleep))

    async def body(pool: AsyncConnectionPool[Any]) -> list[str]:
        service = SyncService(pool, settings({"local": path}))
        await service.reconcile()
        assert (await service.sync_now("local")).result == "synced"
        first = list(turns)
        turns.clear()
        write_registry(tmp_path / "r.json", [server(n, "1.0.1") for n in names])
        assert (await service.sync_now("local")).result == "synced"
        return first

    first = with_pool(db, body)
    planning = [t for t in first if t.startswith("write:")]
    staging = [t for t in first if t.startswith("_apply_stages:")]
    # the changes loop and the latest-version loop: once every YIELD_EVERY names each
    assert len(planning) == 2 * (count // writer.YIELD_EVERY), first
    assert len(set(planning)) == 2
    # rows: a version, an mcp_server row and more per server, a turn every YIELD_EVERY rows
    assert len(staging) >= 2 * count // writer.YIELD_EVERY
    # a re-sync also reads the source's current versions in stretches
    assert len({t for t in turns if t.startswith("write:")}) == 3, turns
