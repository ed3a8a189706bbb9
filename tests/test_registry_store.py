"""The registry's read side (registry.store) against a real, migrated PostgreSQL.

Data is seeded with SQL (tests/registry_seed.py); the store is read through a real async pool.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import msgspec
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from conftest import TestDatabase
from registry_seed import T0, Seed, migrate
from test_registry_models import FULL
from thv_registry.registry.errors import (
    InvalidCursor,
    RegistryNotFound,
    ServerNotFound,
    VersionNotFound,
)
from thv_registry.registry.models import OFFICIAL_META_KEY, ServerListResponse
from thv_registry.registry.store import ServerQuery, Store

R = TypeVar("R")
Pairs = list[tuple[str, str]]


@pytest.fixture
def db(database: TestDatabase) -> Iterator[TestDatabase]:
    migrate(database)
    yield database


@pytest.fixture
def seed(db: TestDatabase) -> Iterator[Seed]:
    with db.connect() as conn:
        yield Seed(conn)


def run(db: TestDatabase, body: Callable[[Store], Awaitable[R]]) -> R:
    async def main() -> R:
        pool = AsyncConnectionPool(db.conninfo, min_size=1, max_size=2, open=False)
        async with pool:
            return await body(Store(pool))

    return asyncio.run(main())


def pairs(page: ServerListResponse) -> Pairs:
    return [(s.server.name, s.server.version) for s in page.servers]


async def walk(store: Store, limit: int, **kw: Any) -> tuple[Pairs, int]:
    """Every (name, version) of a full walk at ``limit``, and how many pages it took."""
    out: Pairs = []
    cursor, pages = None, 0
    while True:
        page = await store.list_servers("default", ServerQuery(cursor=cursor, limit=limit, **kw))
        pages += 1
        assert page.metadata.count == len(page.servers) <= limit
        out += pairs(page)
        cursor = page.metadata.next_cursor
        if cursor is None:
            return out, pages


def test_versions_order_by_semver_newest_first_non_semver_below(
    db: TestDatabase, seed: Seed
) -> None:
    (src,) = seed.registry("default", ["files"])
    # published in this order; the listing must not follow it
    for v in ["1.9.0", "nightly", "1.10.0", "1.0.0-rc.1", "1.0.0", "1.10.0-beta.2", "2024-06"]:
        seed.server(src, "io.acme/a", v, latest=v == "1.10.0")
    seed.server(src, "io.acme/b", "0.1.0", latest=True)
    expected = [
        ("io.acme/a", v)
        for v in ["1.10.0", "1.10.0-beta.2", "1.9.0", "1.0.0", "1.0.0-rc.1", "2024-06", "nightly"]
    ] + [("io.acme/b", "0.1.0")]

    async def body(store: Store) -> None:
        page = await store.list_servers("default", ServerQuery(limit=100))
        assert pairs(page) == expected
        assert page.metadata.next_cursor is None and page.metadata.count == 8
        versions = await store.list_versions("default", "io.acme/a")
        assert pairs(versions) == expected[:7]
        latest = await store.list_servers("default", ServerQuery(limit=100, version="latest"))
        assert pairs(latest) == [("io.acme/a", "1.10.0"), ("io.acme/b", "0.1.0")]
        exact = await store.list_servers("default", ServerQuery(limit=100, version="1.0.0"))
        assert pairs(exact) == [("io.acme/a", "1.0.0")]
        got = await store.get_version("default", "io.acme/a", "latest")
        assert got.server.version == "1.10.0"
        assert got.meta and got.meta.official and got.meta.official.is_latest

    run(db, body)


def test_full_walks_at_several_limits_yield_everything_once_in_order(
    db: TestDatabase, seed: Seed
) -> None:
    (src,) = seed.registry("default", ["files"])
    same_time = T0 + datetime.timedelta(days=30)
    for n in range(12):
        name = f"io.acme/s{n:02d}"
        for v in ["1.0.0", "1.0.0+b1", "2.0.0-alpha", "n1", "n2"][: 1 + n % 5]:
            seed.server(src, name, v, published_at=same_time if v.startswith("n") else None)

    async def body(store: Store) -> None:
        everything, _ = await walk(store, 100)
        assert len(everything) == len(set(everything)) == sum(1 + n % 5 for n in range(12))
        for limit in (1, 2, 3, 7, 11):
            walked, pages = await walk(store, limit)
            assert walked == everything, limit
            assert pages == -(-len(everything) // limit)  # no empty last page

    run(db, body)


def test_cursor_continues_after_a_row_that_vanished(db: TestDatabase, seed: Seed) -> None:
    (src,) = seed.registry("default", ["files"])
    ids = {}
    for name in ["io.acme/a", "io.acme/b", "io.acme/c"]:
        for v in ["1.0.0", "2.0.0"]:
            ids[(name, v)] = seed.server(src, name, v)

    async def body(store: Store) -> None:
        first = await store.list_servers("default", ServerQuery(limit=3))
        assert pairs(first) == [
            ("io.acme/a", "2.0.0"),
            ("io.acme/a", "1.0.0"),
            ("io.acme/b", "2.0.0"),
        ]
        # a sync removes the cursor's own row, and the whole server before it
        seed.conn.execute("DELETE FROM entry_version WHERE id = %s", (ids[("io.acme/b", "2.0.0")],))
        seed.conn.execute("DELETE FROM registry_entry WHERE name = 'io.acme/a'")
        # and adds a version before the cursor (not seen) and one after it (seen)
        seed.server(src, "io.acme/b", "3.0.0")
        seed.server(src, "io.acme/b", "1.5.0")
        rest, _ = await walk_from(store, first.metadata.next_cursor, 3)
        assert rest == [
            ("io.acme/b", "1.5.0"),
            ("io.acme/b", "1.0.0"),
            ("io.acme/c", "2.0.0"),
            ("io.acme/c", "1.0.0"),
        ]

    run(db, body)


async def walk_from(store: Store, cursor: str | None, limit: int) -> tuple[Pairs, int]:
    out: Pairs = []
    pages = 0
    while cursor is not None:
        page = await store.list_servers("default", ServerQuery(cursor=cursor, limit=limit))
        out += pairs(page)
        cursor, pages = page.metadata.next_cursor, pages + 1
    return out, pages


def test_a_name_is_served_from_the_highest_priority_source_only(
    db: TestDatabase, seed: Seed
) -> None:
    first, second = seed.registry("default", ["first", "second"])
    (only_second,) = seed.registry("other", ["second"])
    assert only_second == second
    seed.server(second, "io.acme/w", "9.0.0", latest=True)
    seed.server(second, "io.acme/w", "8.0.0")
    seed.server(first, "io.acme/w", "1.0.0", latest=True)
    seed.server(first, "io.acme/w", "0.9.0")
    seed.server(second, "io.acme/z", "0.1.0", latest=True)

    async def body(store: Store) -> None:
        expected = [("io.acme/w", "1.0.0"), ("io.acme/w", "0.9.0"), ("io.acme/z", "0.1.0")]
        for limit in (1, 2, 100):
            assert (await walk(store, limit))[0] == expected
        latest = await store.list_servers("default", ServerQuery(version="latest"))
        assert pairs(latest) == [("io.acme/w", "1.0.0"), ("io.acme/z", "0.1.0")]
        assert pairs(await store.list_versions("default", "io.acme/w")) == expected[:2]
        with pytest.raises(VersionNotFound):
            await store.get_version("default", "io.acme/w", "9.0.0")
        assert (await store.get_version("default", "io.acme/w", "latest")).server.version == "1.0.0"
        # the other registry has only the second source
        assert (await store.get_version("other", "io.acme/w", "latest")).server.version == "9.0.0"

    run(db, body)


def test_deleted_versions(db: TestDatabase, seed: Seed) -> None:
    (src,) = seed.registry("default", ["files"])
    seed.server(src, "io.acme/a", "1.0.0", latest=True)
    seed.server(src, "io.acme/a", "2.0.0", status="DELETED")
    seed.server(src, "io.acme/gone", "1.0.0", status="DELETED")

    async def body(store: Store) -> None:
        assert pairs(await store.list_servers("default", ServerQuery())) == [("io.acme/a", "1.0.0")]
        with_deleted = await store.list_servers("default", ServerQuery(include_deleted=True))
        assert pairs(with_deleted) == [
            ("io.acme/a", "2.0.0"),
            ("io.acme/a", "1.0.0"),
            ("io.acme/gone", "1.0.0"),
        ]
        meta = with_deleted.servers[0].meta
        assert meta and meta.official and meta.official.status == "deleted"
        got = await store.get_version("default", "io.acme/gone", "1.0.0")
        assert got.meta and got.meta.official and got.meta.official.status == "deleted"
        assert not got.meta.official.is_latest
        assert pairs(await store.list_versions("default", "io.acme/gone")) == []
        versions = await store.list_versions("default", "io.acme/a", include_deleted=True)
        assert pairs(versions) == [("io.acme/a", "2.0.0"), ("io.acme/a", "1.0.0")]
        with pytest.raises(VersionNotFound):  # no live version, so no latest
            await store.get_version("default", "io.acme/gone", "latest")

    run(db, body)


def test_search_is_literal_and_case_insensitive(db: TestDatabase, seed: Seed) -> None:
    (src,) = seed.registry("default", ["files"])
    seed.server(src, "io.acme/percent", "1.0.0", description="100% pure")
    seed.server(src, "io.acme/under_score", "1.0.0", description="plain")
    seed.server(src, "io.acme/back", "1.0.0", description="a\\b path")
    seed.server(src, "io.acme/other", "1.0.0", description="1000 underXscore aXb")

    async def names(store: Store, text: str) -> list[str]:
        page = await store.list_servers("default", ServerQuery(search=text, limit=100))
        return [s.server.name for s in page.servers]

    async def body(store: Store) -> None:
        assert await names(store, "0%") == ["io.acme/percent"]
        assert await names(store, "under_") == ["io.acme/under_score"]
        assert await names(store, "a\\b") == ["io.acme/back"]
        assert await names(store, "PURE") == ["io.acme/percent"]
        assert await names(store, "%") == ["io.acme/percent"]
        assert await names(store, "_") == ["io.acme/under_score"]
        assert await names(store, "'; DROP TABLE source; --") == []
        assert len(await names(store, "io.acme")) == 4

    run(db, body)
    assert db.query("SELECT count(*) FROM source") == [(1,)]


def test_updated_since(db: TestDatabase, seed: Seed) -> None:
    (src,) = seed.registry("default", ["files"])
    seed.server(src, "io.acme/a", "1.0.0", published_at=T0)
    seed.server(src, "io.acme/b", "1.0.0", published_at=T0 + datetime.timedelta(hours=2))

    async def body(store: Store) -> None:
        since = T0 + datetime.timedelta(hours=1)
        page = await store.list_servers("default", ServerQuery(updated_since=since))
        assert pairs(page) == [("io.acme/b", "1.0.0")]
        later = await store.list_servers(
            "default", ServerQuery(updated_since=T0 + datetime.timedelta(hours=2))
        )
        assert pairs(later) == []

    run(db, body)


def test_unknown_things_raise_typed_errors(db: TestDatabase, seed: Seed) -> None:
    (src,) = seed.registry("default", ["files"])
    seed.registry("empty", [])
    seed.server(src, "io.acme/a", "1.0.0", latest=True)

    async def body(store: Store) -> None:
        with pytest.raises(RegistryNotFound) as reg:
            await store.list_servers("nope", ServerQuery())
        assert reg.value.registry == "nope"
        with pytest.raises(RegistryNotFound):
            await store.list_versions("nope", "io.acme/a")
        with pytest.raises(RegistryNotFound):
            await store.get_version("nope", "io.acme/a", "1.0.0")
        empty = await store.list_servers("empty", ServerQuery())
        assert empty.servers == [] and empty.metadata.count == 0
        with pytest.raises(ServerNotFound) as srv:
            await store.list_versions("default", "io.acme/b")
        assert (srv.value.registry, srv.value.name) == ("default", "io.acme/b")
        with pytest.raises(ServerNotFound):
            await store.get_version("default", "io.acme/b", "latest")
        with pytest.raises(VersionNotFound) as ver:
            await store.get_version("default", "io.acme/a", "2.0.0")
        assert ver.value.version == "2.0.0"
        with pytest.raises(InvalidCursor):
            await store.list_servers("default", ServerQuery(cursor="bmFtZSwxLjAuMA"))

    run(db, body)


def test_server_detail_round_trips(db: TestDatabase, seed: Seed) -> None:
    (src,) = seed.registry("default", ["files"])
    seed.server(src, FULL["name"], FULL["version"], detail=FULL, latest=True)
    seed.server(src, FULL["name"], "1.0.0", detail={**FULL, "version": "1.0.0"})
    minimal = {"name": "io.acme/min", "description": "Minimal", "version": "0.0.1"}
    seed.server(src, "io.acme/min", "0.0.1", detail=minimal, latest=True)

    async def body(store: Store) -> None:
        got = await store.get_version("default", FULL["name"], FULL["version"])
        out = json.loads(msgspec.json.encode(got))
        assert out["server"] == FULL
        official = out["_meta"][OFFICIAL_META_KEY]
        assert official["status"] == "active" and official["isLatest"] is True
        assert official["publishedAt"].endswith("Z") and "updatedAt" in official
        page = json.loads(msgspec.json.encode(await store.list_servers("default", ServerQuery())))
        assert [s["server"] for s in page["servers"]] == [
            {**minimal, "$schema": FULL["$schema"]},
            {**FULL, "version": "1.2.0"},
            {**FULL, "version": "1.0.0"},
        ]
        assert page["servers"][2]["_meta"][OFFICIAL_META_KEY]["isLatest"] is False

    run(db, body)


def test_a_page_costs_a_constant_number_of_queries(
    db: TestDatabase, seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    (src,) = seed.registry("default", ["files"])
    for n in range(40):
        seed.server(src, f"io.acme/s{n:02d}", "1.0.0", detail={**FULL, "name": f"io.acme/s{n:02d}"})
    statements: list[str] = []
    original = psycopg.AsyncRawCursor.execute

    async def counting(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query).split("\n")[1])
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncRawCursor, "execute", counting)

    async def body(store: Store) -> list[int]:
        counts = []
        for limit in (1, 10, 30):
            statements.clear()
            page = await store.list_servers("default", ServerQuery(limit=limit))
            assert page.metadata.count == limit
            counts.append(len(statements))
        return counts

    assert run(db, body) == [4, 4, 4]  # the page, its packages, remotes and icons


def test_the_cached_generic_plan_of_a_page_walks_the_name_index(
    db: TestDatabase, seed: Seed
) -> None:
    """A prepared page query may run on PostgreSQL's generic plan: it must not scan and sort
    the whole registry (a cursor in the middle reads about one page of entries)."""
    (src,) = seed.registry("default", ["files"])
    seed.conn.execute(
        "INSERT INTO registry_entry (source_id, name)"
        " SELECT %s, format('io.acme/s%%s', lpad(n::text, 5, '0'))"
        " FROM generate_series(1, 5000) AS n",
        (src,),
    )
    seed.conn.execute(
        "INSERT INTO entry_version (entry_id, version, version_sort_key)"
        " SELECT e.id, v, '\\x01'::bytea || v::bytea FROM registry_entry AS e,"
        " unnest(ARRAY['1.0.0', '2.0.0']) AS v"
    )
    seed.conn.execute("ANALYZE")
    import inspect
    import re

    from thv_registry.queries import servers

    # the $n order of the query: the tuple the generated function passes
    call = inspect.getsource(servers.list_servers).split("LIST_SERVERS,")[1]
    order = re.findall(r"\b([a-z_]+)\b", call.split(")")[0])
    args = {
        "registry_name": "'default'",
        "cursor_name": "'io.acme/s02500'",
        "search": "NULL::text",
        "by_search": "false",
        "by_time": "false",
        "by_version": "false",
        "cursor_sort_key": "'\\x01'::bytea",
        "cursor_published_at": "now()",
        "cursor_version": "''",
        "cursor_entry_id": "'00000000-0000-0000-0000-000000000000'::uuid",
        "updated_since": "NULL::timestamptz",
        "version": "NULL::text",
        "latest_only": "false",
        "include_deleted": "false",
        "page_size": "31",
    }
    assert sorted(order) == sorted(args)
    body = servers.LIST_SERVERS.split("\n", 2)[2].strip().rstrip(";")
    seed.conn.execute("SET plan_cache_mode = force_generic_plan")
    seed.conn.execute("PREPARE page AS " + body, prepare=False)
    values = ", ".join(args[name] for name in order)
    rows = seed.conn.execute(
        f"EXPLAIN (ANALYZE, TIMING off, FORMAT JSON) EXECUTE page({values})"
    ).fetchone()
    assert rows is not None
    plan = json.dumps(rows[0])
    assert '"Relation Name": "registry_entry"' in plan
    scanned = [
        node for node in _nodes(rows[0][0]["Plan"]) if node.get("Relation Name") == "registry_entry"
    ]
    assert scanned and all(n["Node Type"] != "Seq Scan" for n in scanned), plan
    assert max(n["Actual Rows"] for n in scanned) < 200, plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
