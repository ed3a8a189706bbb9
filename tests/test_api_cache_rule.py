"""The response cache's freshness rule, audited in the code (registry/generation.py).

The rule: a transaction that writes a table the API serves also moves a generation (the
source's data version or the catalog version). These tests keep it auditable: the served tables
are exactly those the store's queries read; every module that writes one of them, by its own
SQL or through a generated query, calls ``bump_source`` or ``bump_catalog``; and the writers are
the two known ones (a new one fails here until it is reviewed and added). That each bump really
lands in the writing transaction, only when rows change, is tests/test_api_cache.py's part
(through real servers) and :func:`test_a_write_moves_the_generation_an_unchanged_one_does_not`'s.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import thv_registry
from conftest import TestDatabase
from sync_helpers import migrate, settings, with_pool, write_registry
from sync_helpers import server as server_doc
from thv_registry.queries import aio, servers, skills
from thv_registry.registry.generation import GENERATION, SERVED_TABLES

SRC = Path(thv_registry.__file__).parent
READS = re.compile(r"\b(?:FROM|JOIN)\s+([a-z_]+)")
WRITES = re.compile(r"\b(?:INSERT INTO|UPDATE|DELETE FROM)\s+([a-z_]+)")  #: SQL is upper-case
BUMPS = re.compile(r"\bbump_(?:source|catalog)\(conn")
#: the modules that write served tables, each in a transaction that bumps
WRITERS = {"sync/writer.py", "sync/reconcile.py"}


def _sql(module: Any) -> dict[str, str]:
    """A generated module's SQL constants by name."""
    return {k: v for k, v in vars(module).items() if k.isupper() and isinstance(v, str)}


def test_served_tables_are_the_tables_the_store_reads(database: TestDatabase) -> None:
    migrate(database)
    tables = database.tables()
    read: set[str] = set()
    for module in (servers, skills):
        for text in _sql(module).values():
            read |= set(READS.findall(text)) & tables
    assert read == SERVED_TABLES
    assert set(READS.findall(GENERATION)) & tables == {
        "catalog_version",
        "registry",
        "registry_source",
        "source",
    }


def test_every_write_to_a_served_table_is_in_a_module_that_bumps() -> None:
    writing: dict[str, set[str]] = {}  #: generated function -> served tables it writes
    for module in (aio.sync, aio.coordinator, aio.servers, aio.skills):
        for name, text in _sql(module).items():
            if served := set(WRITES.findall(text)) & SERVED_TABLES:
                assert hasattr(module, name.lower()), name
                writing[name.lower()] = served
    assert {"upsert_config_source", "link_registry_sources", "mark_versions_deleted"} <= set(
        writing
    )
    found: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("queries/") or rel == "registry/generation.py":
            continue
        text = path.read_text()
        direct = set(WRITES.findall(text)) & SERVED_TABLES
        called = {f for f in writing if re.search(rf"\.{f}\(", text)}
        if direct or called:
            found[rel] = direct | called
            assert BUMPS.search(text), f"{rel} writes {sorted(direct | called)} without a bump"
    assert set(found) == WRITERS, found


def test_a_write_moves_the_generation_an_unchanged_one_does_not(
    database: TestDatabase, tmp_path: Path
) -> None:
    """The writer bumps its source once per writing transaction and not for an unchanged
    write; reconciliation bumps the catalog."""
    from thv_registry.queries.aio import sync as q
    from thv_registry.sync.reconcile import reconcile
    from thv_registry.sync.upstream import parse
    from thv_registry.sync.writer import write

    migrate(database)
    file = write_registry(tmp_path / "r.json", [server_doc("io.example/a", "1.0.0")])
    wanted = settings({"local": file})

    async def body(pool: Any) -> list[tuple[int, int]]:
        seen = []

        async def generation() -> tuple[int, int]:
            async with pool.connection() as conn:
                row = await (
                    await conn.execute(
                        "SELECT (SELECT version FROM catalog_version), data_version"
                        " FROM source WHERE name = 'local'"
                    )
                ).fetchone()
                return int(row[0]), int(row[1])

        async with pool.connection() as conn:
            done = await reconcile(conn, wanted)
        seen.append(await generation())
        source_id = done.ids["local"]
        for docs in (
            [server_doc("io.example/a", "1.0.0")],
            [server_doc("io.example/a", "1.0.0")],  # unchanged: no row written, no bump
            [server_doc("io.example/a", "1.0.0"), server_doc("io.example/a", "1.1.0")],
        ):
            write_registry(file, docs)
            data = parse("local", str(file), file.read_bytes(), None)
            async with pool.connection() as conn, conn.transaction():
                await q.lock_source(conn, source_id=source_id)
                await write(conn, source_id, data)
            seen.append(await generation())
        return seen

    assert with_pool(database, body) == [(1, 0), (1, 1), (1, 1), (1, 2)]
