"""The store's skills reads, its health probe and its snapshot discipline, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from conftest import TestDatabase
from registry_seed import Seed, migrate
from test_registry_store import run
from thv_registry.registry.errors import InvalidCursor, RegistryNotFound, SkillNotFound
from thv_registry.registry.store import ServerQuery, SkillQuery, Store

EXTRA = {
    "license": "Apache-2.0",
    "compatibility": "claude-code",
    "allowedTools": ["Read", "Bash"],
    "repository": {"url": "https://github.com/s/skills", "type": "git"},
    "icons": [{"src": "https://e.com/i.png", "size": "48x48", "type": "image/png"}],
    "metadata": {"author": "s"},
    "_meta": {"dev.toolhive/x": {"tier": 1}},
}


@pytest.fixture
def seed(database: TestDatabase) -> Iterator[Seed]:
    migrate(database)
    with database.connect() as conn:
        yield Seed(conn)


def names(skills: Any) -> list[tuple[str, str, str]]:
    return [(s.namespace, s.name, s.version) for s in skills.skills]


def test_skills_list_versions_get_and_status(database: TestDatabase, seed: Seed) -> None:
    first, second = seed.registry("default", ["first", "second"])
    seed.skill(first, "io.github.s", "pdf", "1.0.0", oci=["ghcr.io/s/pdf:1"], extra=EXTRA)
    seed.skill(first, "io.github.s", "pdf", "1.10.0", latest=True, git=["https://g/s.git"])
    seed.skill(first, "io.github.s", "pdf", "2.0.0", status="DELETED")
    seed.skill(first, "io.github.s", "old", "0.1.0", status="DEPRECATED", latest=True)
    seed.skill(second, "io.github.s", "pdf", "9.0.0", latest=True)  # hidden: first wins
    seed.skill(second, "io.github.t", "docx", "0.2.0", latest=True, description="Word_docs")

    async def body(store: Store) -> None:
        listed = await store.list_skills("default", SkillQuery())
        assert names(listed) == [
            ("io.github.s", "old", "0.1.0"),
            ("io.github.s", "pdf", "1.10.0"),
            ("io.github.s", "pdf", "1.0.0"),
            ("io.github.t", "docx", "0.2.0"),
        ]
        assert listed.metadata.count == 4 and listed.metadata.next_cursor is None
        latest = await store.list_skills("default", SkillQuery(version="latest"))
        assert [v for _, _, v in names(latest)] == ["0.1.0", "1.10.0", "0.2.0"]
        deprecated = await store.list_skills("default", SkillQuery(statuses=("deprecated",)))
        assert names(deprecated) == [("io.github.s", "old", "0.1.0")]
        deleted = await store.list_skills("default", SkillQuery(statuses=("deleted",)))
        assert names(deleted) == [("io.github.s", "pdf", "2.0.0")]
        assert names(await store.list_skills("default", SkillQuery(search="Word%docs"))) == []
        found = await store.list_skills("default", SkillQuery(search="WORD_"))
        assert names(found) == [("io.github.t", "docx", "0.2.0")]

        versions = await store.list_skill_versions("default", "io.github.s", "pdf")
        assert [s.version for s in versions.skills] == ["1.10.0", "1.0.0"]
        got = await store.get_skill("default", "io.github.s", "pdf")
        assert got.version == "1.10.0" and got.status == "active"
        assert got.packages and got.packages[0].url == "https://g/s.git"
        gone = await store.get_skill("default", "io.github.s", "pdf", "2.0.0")
        assert gone.status == "deleted"
        one = await store.get_skill("default", "io.github.s", "pdf", "1.0.0")
        out = json.loads(msgspec.json.encode(one))
        assert out == {
            "namespace": "io.github.s",
            "name": "pdf",
            "description": "a skill",
            "version": "1.0.0",
            "status": "active",
            **EXTRA,
            "packages": [{"registryType": "oci", "identifier": "ghcr.io/s/pdf:1"}],
        }

        with pytest.raises(SkillNotFound):
            await store.get_skill("default", "io.github.s", "pdf", "9.0.0")
        with pytest.raises(SkillNotFound):
            await store.list_skill_versions("default", "io.github.s", "nope")
        with pytest.raises(RegistryNotFound):
            await store.list_skills("nope", SkillQuery())
        with pytest.raises(RegistryNotFound):
            await store.get_skill("nope", "io.github.s", "pdf")
        server_cursor = (await store.list_servers("default", ServerQuery(limit=1))).metadata
        assert server_cursor.next_cursor is None  # no servers here
        with pytest.raises(InvalidCursor):
            await store.list_skills("default", SkillQuery(cursor="AAAA"))

    run(database, body)


def test_skill_pages_walk_every_version_once(database: TestDatabase, seed: Seed) -> None:
    (src,) = seed.registry("default", ["files"])
    for n in range(5):
        for v in ["1.0.0", "2.0.0", "2.0.0-rc.1"][: 1 + n % 3]:
            seed.skill(src, "io.github.s", f"k{n}", v)

    async def body(store: Store) -> None:
        full = names(await store.list_skills("default", SkillQuery(limit=100)))
        assert len(full) == len(set(full)) == 9
        for limit in (1, 3, 4):
            walked: list[tuple[str, str, str]] = []
            cursor = None
            while True:
                page = await store.list_skills("default", SkillQuery(cursor=cursor, limit=limit))
                walked += names(page)
                cursor = page.metadata.next_cursor
                if cursor is None:
                    break
            assert walked == full

    run(database, body)


def test_health_reports_the_schema_version(database: TestDatabase) -> None:
    async def body(store: Store) -> Any:
        return await store.health()

    empty = run(database, body)
    assert (empty.version, empty.dirty) == (None, False)
    migrate(database)
    (latest,) = database.query("SELECT version FROM schema_migrations")
    health = run(database, body)
    assert (health.version, health.dirty) == (latest[0], False)
    database.query("UPDATE schema_migrations SET dirty = true RETURNING 1")
    assert run(database, body).dirty


def test_each_call_reads_one_read_only_snapshot(database: TestDatabase, seed: Seed) -> None:
    (src,) = seed.registry("default", ["files"])
    seed.server(src, "io.acme/a", "1.0.0", latest=True)
    seen: list[tuple[str, str]] = []
    original = psycopg.AsyncRawCursor.execute

    async def spy(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        conn = self.connection
        if "ListServers" in str(query):
            row = await (
                await conn.execute(
                    "SELECT current_setting('transaction_isolation'),"
                    " current_setting('transaction_read_only')"
                )
            ).fetchone()
            seen.append(row)
        return await original(self, query, *args, **kwargs)

    async def main() -> tuple[Any, Any]:
        pool = AsyncConnectionPool(database.conninfo, min_size=1, max_size=1, open=False)
        async with pool:
            store = Store(pool)
            psycopg.AsyncRawCursor.execute = spy  # type: ignore[method-assign]
            try:
                await store.list_servers("default", ServerQuery())
            finally:
                psycopg.AsyncRawCursor.execute = original  # type: ignore[method-assign]
            async with pool.connection() as conn:  # the pool's connection is left as it was
                assert (conn.read_only, conn.isolation_level) == (None, None)
                row = await (
                    await conn.execute("SELECT current_setting('transaction_read_only')")
                ).fetchone()
                await conn.execute("CREATE TABLE written (id int)")  # writable again
            return row, None

    row, _ = asyncio.run(main())
    assert seen == [("repeatable read", "on")]
    assert row == ("off",)
