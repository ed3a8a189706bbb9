"""Which source serves a name, and paging while names move between sources (store level)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import TestDatabase
from registry_seed import Seed, migrate
from test_registry_store import pairs, run, walk
from thv_registry.registry.store import ServerQuery, Store


@pytest.fixture
def seed(database: TestDatabase) -> Iterator[Seed]:
    migrate(database)
    with database.connect() as conn:
        yield Seed(conn)


def test_a_name_gone_from_the_first_source_is_served_from_the_next(
    database: TestDatabase, seed: Seed
) -> None:
    first, second = seed.registry("default", ["first", "second"])
    seed.server(first, "io.acme/moved", "2.0.0", status="DELETED")  # it left the first source
    seed.server(second, "io.acme/moved", "1.0.0", latest=True)
    seed.server(first, "io.acme/gone", "3.0.0", status="DELETED")  # gone from both:
    seed.server(second, "io.acme/gone", "1.0.0", status="DELETED")  # the first still answers
    seed.server(first, "io.acme/kept", "2.0.0", latest=True)
    seed.server(second, "io.acme/kept", "1.0.0", latest=True)

    async def body(store: Store) -> None:
        listed = await store.list_servers("default", ServerQuery())
        assert pairs(listed) == [("io.acme/kept", "2.0.0"), ("io.acme/moved", "1.0.0")]
        everything = await store.list_servers("default", ServerQuery(include_deleted=True))
        assert pairs(everything) == [
            ("io.acme/gone", "3.0.0"),
            ("io.acme/kept", "2.0.0"),
            ("io.acme/moved", "1.0.0"),
        ]
        moved = await store.get_version("default", "io.acme/moved", "latest")
        assert moved.server.version == "1.0.0"
        assert pairs(await store.list_versions("default", "io.acme/moved")) == [
            ("io.acme/moved", "1.0.0")
        ]
        gone = await store.get_version("default", "io.acme/gone", "3.0.0")
        assert gone.meta and gone.meta.official and gone.meta.official.status == "deleted"

    run(database, body)


def test_a_name_that_moves_between_pages_is_not_continued_from_the_other_source(
    database: TestDatabase, seed: Seed
) -> None:
    first, second = seed.registry("default", ["first", "second"])
    ids = {}
    for name in ("io.acme/a", "io.acme/b", "io.acme/c"):
        for v in ("3.0.0", "2.0.0"):
            ids[(name, v)] = seed.server(first, name, v)
        for v in ("1.1.0", "1.0.0"):
            seed.server(second, name, v)

    async def body(store: Store) -> None:
        page = await store.list_servers("default", ServerQuery(limit=3))
        assert pairs(page) == [
            ("io.acme/a", "3.0.0"),
            ("io.acme/a", "2.0.0"),
            ("io.acme/b", "3.0.0"),
        ]
        # a re-sync: b leaves the first source (c too, before the walk reaches it)
        for name in ("io.acme/b", "io.acme/c"):
            for v in ("3.0.0", "2.0.0"):
                seed.conn.execute(
                    "UPDATE entry_version SET status = 'DELETED' WHERE id = %s", (ids[(name, v)],)
                )
        rest: list[tuple[str, str]] = []
        cursor = page.metadata.next_cursor
        while cursor:
            page = await store.list_servers("default", ServerQuery(limit=3, cursor=cursor))
            rest += pairs(page)
            cursor = page.metadata.next_cursor
        # b is not continued with the second source's versions (one source per name in a
        # walk); c, not reached yet, comes whole from the second source
        assert rest == [("io.acme/c", "1.1.0"), ("io.acme/c", "1.0.0")]
        after, _ = await walk(store, 2)
        assert after == [
            ("io.acme/a", "3.0.0"),
            ("io.acme/a", "2.0.0"),
            ("io.acme/b", "1.1.0"),
            ("io.acme/b", "1.0.0"),
            ("io.acme/c", "1.1.0"),
            ("io.acme/c", "1.0.0"),
        ]

    run(database, body)
