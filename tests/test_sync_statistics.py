"""A large sync leaves planner statistics behind (the writer ANALYZEs in its transaction), so
the first listing after a first sync gets the name-index plan; a small change does not ANALYZE.

Without statistics (a first sync, before autovacuum's next round, or never where it is off) the
generic plan of the listing sorted every name at each step of its walk: 1.4 s a page for
10,000 servers instead of 2 ms (benchmarks/api_bench.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from conftest import TestDatabase
from sync_helpers import migrate, server, settings, with_pool, write_registry
from thv_registry.sync import SyncService

TABLES = ("registry_entry", "entry_version", "mcp_server", "mcp_server_package")


@pytest.fixture
def db(database: TestDatabase) -> TestDatabase:
    migrate(database)
    return database


def analyzed(db: TestDatabase) -> dict[str, int]:
    """How many times each table was ANALYZEd by hand (autovacuum's runs not counted)."""
    rows = db.query(
        "SELECT relname, analyze_count FROM pg_stat_user_tables WHERE relname = ANY(%s)",
        (list(TABLES),),
    )
    return {str(r[0]): int(str(r[1])) for r in rows}


def sync(db: TestDatabase, path: Path) -> Any:
    async def body(pool: AsyncConnectionPool[Any]) -> Any:
        service = SyncService(pool, settings({"local": path}))
        await service.reconcile()
        return await service.sync_now("local")

    return with_pool(db, body)


def test_first_sync_analyzes_and_a_small_change_does_not(db: TestDatabase, tmp_path: Path) -> None:
    names = [f"io.github.acme/s{i:03d}" for i in range(120)]
    path = tmp_path / "r.json"
    write_registry(path, [server(n, "1.0.0") for n in names])
    before = analyzed(db)
    outcome = sync(db, path)
    assert (outcome.result, outcome.changed) == ("synced", 120)
    after_first = analyzed(db)
    assert all(after_first[t] == before[t] + 1 for t in TABLES), (before, after_first)
    # the statistics are there: the planner knows how many versions there are
    [(tuples,)] = db.query("SELECT reltuples FROM pg_class WHERE relname = 'entry_version'")
    assert float(str(tuples)) == 120

    # one new version among 120 (under 50 + 10 %): no ANALYZE
    write_registry(path, [server(n, "1.0.0") for n in names] + [server(names[0], "1.1.0")])
    outcome = sync(db, path)
    assert (outcome.result, outcome.changed) == ("synced", 1)
    assert analyzed(db) == after_first
