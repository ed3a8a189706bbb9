"""The sync against a real PostgreSQL: first sync, no-change re-sync, changes, deletions and
reactivation, broken files, filters, reconciliation, cancellation mid-write, the poll loop."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from conftest import TestDatabase
from sync_helpers import (
    SCHEMA,
    migrate,
    server,
    settings,
    skill,
    wait_for,
    with_pool,
    write_registry,
)
from thv_registry.config import Patterns
from thv_registry.sync import SyncService
from thv_registry.sync.errors import UnknownSource

A, B = "io.github.acme/alpha", "io.github.acme/beta"


@pytest.fixture
def db(database: TestDatabase) -> TestDatabase:
    migrate(database)
    return database


def versions(db: TestDatabase) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(name, version) -> (status, published_at, updated_at, xmin, description)."""
    rows = db.query(
        "SELECT e.name, v.version, v.status::text, v.published_at, v.updated_at, v.xmin::text,"
        " v.description FROM entry_version v JOIN registry_entry e ON e.id = v.entry_id"
    )
    return {(str(r[0]), str(r[1])): r[2:] for r in rows}


def latest(db: TestDatabase) -> dict[str, str]:
    rows = db.query(
        "SELECT e.name, l.version FROM latest_entry_version l JOIN registry_entry e"
        " ON e.id = l.entry_id"
    )
    return {str(r[0]): str(r[1]) for r in rows}


def sync_status(db: TestDatabase, source: str = "local") -> dict[str, Any]:
    cols = (
        "sync_status",
        "message",
        "attempt_count",
        "server_count",
        "skill_count",
        "version_count",
        "plugin_skipped_count",
        "last_sync_hash",
        "started_at",
        "last_success_at",
    )
    row = db.query(
        f"SELECT {', '.join('y.' + c for c in cols)} FROM registry_sync y"
        " JOIN source s ON s.id = y.source_id WHERE s.name = %s",
        (source,),
    )[0]
    return dict(zip(cols, row, strict=True))


def sync_once(db: TestDatabase, conf: Any, source: str = "local", times: int = 1) -> list[Any]:
    async def body(pool: AsyncConnectionPool[Any]) -> list[Any]:
        service = SyncService(pool, conf)
        await service.reconcile()
        try:
            return [await service.sync_now(source) for _ in range(times)]
        finally:
            await service.close()  # a replica that stops: its config no longer counts

    return with_pool(db, body)


def test_first_sync_writes_servers_skills_details_and_status(
    db: TestDatabase, tmp_path: Path
) -> None:
    gh = server(
        B,
        "1.0.0",
        remotes=[
            {
                "type": "streamable-http",
                "url": "https://b.example/mcp",
                "headers": [{"name": "Authorization", "isSecret": True}],
            },
            {
                "type": "sse",
                "url": "https://b.example/sse",
                "variables": {"region": {"default": "eu"}},
            },
        ],
        icons=[
            {"src": "https://b.example/i.png", "mimeType": "image/png", "sizes": ["48x48"]},
            {"src": "https://b.example/d.svg", "theme": "dark"},
        ],
        _meta={"io.modelcontextprotocol.registry/publisher-provided": {"x": {"y": {"k": 1}}}},
    )
    gh["packages"].append(
        {
            "registryType": "oci",
            "identifier": "ghcr.io/acme/beta:1.0.0",
            "transport": {"type": "streamable-http", "url": "http://localhost:8080/mcp"},
        }
    )
    path = write_registry(
        tmp_path / "r.json",
        [server(A, "1.9.0"), server(A, "1.10.0"), server(A, "2.0.0-rc.1"), gh],
        skills=[skill("io.github.acme", "pdf", "1.0.0", status="deprecated")],
        plugins=[{"name": "p"}],
    )
    [outcome] = sync_once(db, settings({"local": path}))
    assert (outcome.result, outcome.changed, outcome.deleted) == ("synced", 5, 0)
    v = versions(db)
    assert sorted(v) == [
        (A, "1.10.0"),
        (A, "1.9.0"),
        (A, "2.0.0-rc.1"),
        (B, "1.0.0"),
        ("io.github.acme/pdf", "1.0.0"),
    ]
    assert v[("io.github.acme/pdf", "1.0.0")][0] == "DEPRECATED"
    # latest: the highest release (1.10.0 > 1.9.0 numerically; the rc is not a release)
    assert latest(db) == {A: "1.10.0", B: "1.0.0", "io.github.acme/pdf": "1.0.0"}
    keys = db.query(
        "SELECT v.version FROM entry_version v JOIN registry_entry e ON e.id = v.entry_id"
        " WHERE e.name = %s ORDER BY v.version_sort_key DESC",
        (A,),
    )
    assert [k[0] for k in keys] == ["2.0.0-rc.1", "1.10.0", "1.9.0"]
    packages = db.query(
        "SELECT p.position, p.registry_type, p.pkg_identifier, p.transport::text, p.transport_url"
        " FROM mcp_server_package p JOIN entry_version v ON v.id = p.server_id"
        " JOIN registry_entry e ON e.id = v.entry_id WHERE e.name = %s ORDER BY p.position",
        (B,),
    )
    assert packages == [
        (0, "npm", "@x/beta", "stdio", None),
        (1, "oci", "ghcr.io/acme/beta:1.0.0", "streamable-http", "http://localhost:8080/mcp"),
    ]
    remotes = db.query(
        "SELECT position, transport::text, transport_url, transport_headers, transport_variables"
        " FROM mcp_server_remote ORDER BY position"
    )
    assert remotes == [
        (
            0,
            "streamable-http",
            "https://b.example/mcp",
            [{"name": "Authorization", "isSecret": True}],
            None,
        ),
        (1, "sse", "https://b.example/sse", None, {"region": {"default": "eu"}}),
    ]
    icons = db.query(
        "SELECT position, source_uri, mime_type, sizes, theme::text FROM mcp_server_icon"
        " ORDER BY position"
    )
    assert icons == [
        (0, "https://b.example/i.png", "image/png", ["48x48"], None),
        (1, "https://b.example/d.svg", None, None, "DARK"),
    ]
    meta = db.query(
        "SELECT server_meta, schema_url FROM mcp_server m JOIN entry_version v"
        " ON v.id = m.version_id JOIN registry_entry e ON e.id = v.entry_id WHERE e.name = %s",
        (B,),
    )
    provided = {"io.modelcontextprotocol.registry/publisher-provided": {"x": {"y": {"k": 1}}}}
    assert meta == [(provided, SCHEMA)]
    assert db.query("SELECT namespace FROM skill") == [("io.github.acme",)]
    assert db.query("SELECT url, ref FROM skill_git_package") == [
        ("https://example.com/s.git", "main")
    ]
    st = sync_status(db)
    assert st["sync_status"] == "COMPLETED" and st["attempt_count"] == 0
    assert (
        st["server_count"],
        st["skill_count"],
        st["version_count"],
        st["plugin_skipped_count"],
    ) == (2, 1, 5, 1)
    assert "1 plugins skipped" in st["message"]


def test_unchanged_file_writes_nothing(db: TestDatabase, tmp_path: Path) -> None:
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0"), server(B, "2.0.0")])
    conf = settings({"local": path})
    sync_once(db, conf)
    before = versions(db)
    entries = db.query("SELECT id, xmin::text FROM registry_entry ORDER BY id")
    details = db.query("SELECT server_id, xmin::text FROM mcp_server_package ORDER BY server_id")
    first = sync_status(db)
    [outcome] = sync_once(db, conf)
    assert outcome.result == "unchanged"
    assert versions(db) == before  # same updated_at, same row versions (xmin): nothing written
    assert db.query("SELECT id, xmin::text FROM registry_entry ORDER BY id") == entries
    assert (
        db.query("SELECT server_id, xmin::text FROM mcp_server_package ORDER BY server_id")
        == details
    )
    second = sync_status(db)
    assert second["started_at"] > first["started_at"]  # the attempt is recorded
    assert second["last_success_at"] > first["last_success_at"]
    assert "unchanged since the last sync" in second["message"]


def test_a_reformatted_file_is_read_but_no_row_moves(db: TestDatabase, tmp_path: Path) -> None:
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])
    conf = settings({"local": path})
    sync_once(db, conf)
    before = versions(db)
    path.write_text(path.read_text().replace("\n", "\n  "))  # other bytes, same content
    [outcome] = sync_once(db, conf)
    assert (outcome.result, outcome.changed) == ("synced", 0)
    assert versions(db) == before


def test_changed_version_and_latest_flag_move_updated_at_only_there(
    db: TestDatabase, tmp_path: Path
) -> None:
    path = write_registry(
        tmp_path / "r.json", [server(A, "1.0.0"), server(A, "1.1.0"), server(B, "1.0.0")]
    )
    conf = settings({"local": path})
    sync_once(db, conf)
    before = versions(db)
    changed_b = server(B, "1.0.0", description="new words")
    write_registry(path, [server(A, "1.0.0"), server(A, "1.1.0"), server(A, "1.2.0"), changed_b])
    [outcome] = sync_once(db, conf)
    assert (outcome.result, outcome.changed) == ("synced", 2)
    after = versions(db)
    assert after[(A, "1.0.0")] == before[(A, "1.0.0")]  # untouched
    assert after[(A, "1.1.0")][2] > before[(A, "1.1.0")][2]  # lost the latest flag
    assert after[(A, "1.1.0")][1] == before[(A, "1.1.0")][1]  # published_at kept
    assert after[(B, "1.0.0")][2] > before[(B, "1.0.0")][2]  # content changed
    assert after[(B, "1.0.0")][1] == before[(B, "1.0.0")][1]
    assert after[(B, "1.0.0")][4] == "new words"
    assert latest(db) == {A: "1.2.0", B: "1.0.0"}


def test_vanished_version_is_deleted_and_comes_back(db: TestDatabase, tmp_path: Path) -> None:
    path = write_registry(
        tmp_path / "r.json", [server(A, "1.0.0"), server(A, "2.0.0"), server(B, "1.0.0")]
    )
    conf = settings({"local": path})
    sync_once(db, conf)
    first = versions(db)
    write_registry(path, [server(A, "1.0.0")])
    [outcome] = sync_once(db, conf)
    assert (outcome.result, outcome.deleted) == ("synced", 2)
    gone = versions(db)
    assert gone[(A, "2.0.0")][0] == "DELETED" and gone[(B, "1.0.0")][0] == "DELETED"
    assert gone[(A, "2.0.0")][2] > first[(A, "2.0.0")][2]
    assert gone[(A, "1.0.0")][0] == "ACTIVE"
    assert latest(db) == {A: "1.0.0"}  # B has no live version: no latest
    assert sync_status(db)["server_count"] == 1
    write_registry(path, [server(A, "1.0.0"), server(A, "2.0.0"), server(B, "1.0.0")])
    [outcome] = sync_once(db, conf)
    assert outcome.changed == 2
    back = versions(db)
    assert back[(A, "2.0.0")][0] == "ACTIVE" and back[(B, "1.0.0")][0] == "ACTIVE"
    assert back[(A, "2.0.0")][1] == first[(A, "2.0.0")][1]  # publishedAt: first seen, kept
    assert back[(A, "2.0.0")][2] > gone[(A, "2.0.0")][2]
    assert latest(db) == {A: "2.0.0", B: "1.0.0"}
    # the details of a reactivated version are there once
    assert db.query("SELECT count(*) FROM mcp_server_package") == [(3,)]


def test_broken_file_keeps_old_data_and_counts_attempts(db: TestDatabase, tmp_path: Path) -> None:
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0"), server(B, "1.0.0")])
    conf = settings({"local": path})
    sync_once(db, conf)
    before, good = versions(db), sync_status(db)
    bad = server(B, "1.1.0")
    bad["packages"][0]["transport"] = {"type": "stdio"}
    bad["packages"][0]["identifier"] = ""
    write_registry(path, [server(A, "1.1.0"), bad])
    outcomes = sync_once(db, conf, times=2)
    assert [o.result for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].message.startswith(f"data.servers[1] ({B}), at packages[0].identifier: ")
    assert versions(db) == before and latest(db) == {A: "1.0.0", B: "1.0.0"}
    st = sync_status(db)
    assert st["sync_status"] == "FAILED" and st["attempt_count"] == 2
    assert st["message"] == outcomes[1].message
    assert (st["server_count"], st["version_count"], st["last_sync_hash"]) == (
        2,
        2,
        good["last_sync_hash"],
    )
    path.write_text("{not json")
    [outcome] = sync_once(db, conf)
    assert outcome.result == "failed" and "not a valid upstream registry file" in outcome.message
    assert sync_status(db)["attempt_count"] == 3
    path.unlink()
    [outcome] = sync_once(db, conf)
    assert outcome.message == f"cannot read {path}: no such file"
    write_registry(path, [server(A, "1.1.0")])
    [outcome] = sync_once(db, conf)
    assert outcome.result == "synced" and sync_status(db)["attempt_count"] == 0


def test_filters_names_and_tags(db: TestDatabase, tmp_path: Path) -> None:
    def tagged(name: str, *tags: str) -> dict[str, Any]:
        meta = {
            "io.modelcontextprotocol.registry/publisher-provided": {
                "ns": {"id": {"tags": list(tags)}}
            }
        }
        return server(name, "1.0.0", _meta=meta)

    entries = [
        tagged("io.github.acme/db-one", "database"),
        tagged("io.github.acme/db-two", "database", "beta"),
        tagged("io.github.other/web", "web"),
        tagged("io.github.acme/misc"),
    ]
    path = write_registry(tmp_path / "r.json", entries)
    conf = settings(
        {"local": path},
        names=Patterns(include=("io.github.acme/*",)),
        tags=Patterns(include=("data*",), exclude=("beta",)),
    )
    sync_once(db, conf)
    assert sorted(n for n, _ in versions(db)) == ["io.github.acme/db-one"]
    # a new filter with the same bytes is a new sync: the others come in, db-one stays
    conf = settings({"local": path}, names=Patterns(exclude=("*/db-one",)))
    [outcome] = sync_once(db, conf)
    assert outcome.result == "synced"
    live = {n for (n, _), row in versions(db).items() if row[0] == "ACTIVE"}
    assert live == {"io.github.acme/db-two", "io.github.other/web", "io.github.acme/misc"}


def test_reconcile_registries_positions_and_removed_sources(
    db: TestDatabase, tmp_path: Path
) -> None:
    one = write_registry(tmp_path / "1.json", [server(A, "1.0.0")])
    two = write_registry(tmp_path / "2.json", [server(A, "2.0.0"), server(B, "1.0.0")])
    registries = {"main": ("second", "first"), "solo": ("first",)}
    conf = settings({"first": one, "second": two}, registries, claims={"org": "acme"})

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        service = SyncService(pool, conf)
        await service.reconcile()
        await service.sync_now("first")
        await service.sync_now("second")
        with pytest.raises(UnknownSource):
            await service.sync_now("nope")
        await service.close()

    with_pool(db, body)
    links = db.query(
        "SELECT r.name, s.name, rs.position FROM registry_source rs JOIN registry r ON r.id ="
        " rs.registry_id JOIN source s ON s.id = rs.source_id ORDER BY 1, 3"
    )
    assert links == [("main", "second", 0), ("main", "first", 1), ("solo", "first", 0)]
    assert db.query("SELECT DISTINCT claims FROM registry_entry") == [({"org": "acme"},)]
    assert db.query(
        "SELECT extract(epoch FROM sync_schedule)::int FROM source WHERE name = 'first'"
    ) == [(300,)]
    # "second" leaves the config: it goes with its entries, and "main" follows the config
    conf = settings({"first": one}, {"main": ("first",)})
    sync_once(db, conf, source="first")
    assert db.query("SELECT name FROM source") == [("first",)]
    assert db.query("SELECT name FROM registry") == [("main",)]
    assert sorted(n for n, _ in versions(db)) == [A]
    assert db.query("SELECT DISTINCT claims FROM registry_entry") == [(None,)]


def test_cancelled_sync_leaves_old_or_new_data_never_a_mix(
    db: TestDatabase, tmp_path: Path
) -> None:
    """A sync cancelled (as serve's stop does) while its transaction writes: the source keeps
    every old row or every new one; the pool stays usable and the next sync completes."""
    n = 3000
    path = tmp_path / "r.json"

    def rewrite(words: str) -> None:
        write_registry(
            path, [server(f"io.github.acme/s{i}", "1.0.0", description=words) for i in range(n)]
        )

    rewrite("initial")
    conf = settings({"local": path})
    sync_once(db, conf)

    async def body(pool: AsyncConnectionPool[Any]) -> list[set[str]]:
        service = SyncService(pool, conf)
        await service.reconcile()
        seen = []
        for round_, delay in enumerate((0.0, 0.05, 0.15, 0.3, 0.6)):
            rewrite(f"round {round_}")
            task = asyncio.create_task(service.sync_now("local"))

            async def writing(task: asyncio.Task[Any] = task) -> bool:
                async with pool.connection() as conn:
                    cur = await conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                        " AND query ~* 'stage_|entry_version|COPY' AND pid <> pg_backend_pid()"
                    )
                    row = await cur.fetchone()
                    return bool(row and row[0]) or task.done()

            await wait_for(writing)
            await asyncio.sleep(delay)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT DISTINCT description FROM entry_version")
                seen.append({r[0] for r in await cur.fetchall()})
        rewrite("final")
        outcome = await service.sync_now("local")
        assert outcome.result == "synced"
        return seen

    for descriptions in with_pool(db, body):
        assert len(descriptions) == 1, descriptions  # never two syncs' rows at once
    assert {r[4] for r in versions(db).values()} == {"final"}
    assert db.query("SELECT count(*) FROM mcp_server_package") == [(n,)]


def test_poll_loop_syncs_due_sources_and_stops(db: TestDatabase, tmp_path: Path) -> None:
    from datetime import timedelta

    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])
    conf = settings(
        {"local": path}, interval=timedelta(seconds=1), poll=timedelta(milliseconds=100)
    )
    runs: list[tuple[str, str]] = []

    async def body(pool: AsyncConnectionPool[Any]) -> float:
        service = SyncService(pool, conf, on_sync=lambda s, r, _: runs.append((s, r)))
        await service.reconcile()
        stop = asyncio.Event()
        loop_task = asyncio.create_task(service.run(stop))

        async def has(name: str) -> bool:
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT 1 FROM registry_entry WHERE name = %s", (name,))
                return await cur.fetchone() is not None

        await wait_for(lambda: has(A))
        write_registry(path, [server(A, "1.0.0"), server(B, "1.0.0")])
        await wait_for(lambda: has(B), timeout=5)

        async def reported() -> bool:
            return ("local", "synced") in runs[1:]

        await wait_for(reported)
        stop.set()
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(loop_task, 5)
        return asyncio.get_running_loop().time() - started

    stopped_in = with_pool(db, body)
    assert stopped_in < 1.0
    assert runs[0] == ("local", "synced")  # and "unchanged" runs every second in between


def test_stop_during_a_sync_ends_the_loop_at_once_with_whole_data(
    db: TestDatabase, tmp_path: Path
) -> None:
    """serve's stop (the event) while the poll loop's sync writes: the loop returns promptly,
    the sync's transaction rolled back or committed whole."""
    n = 3000
    path = write_registry(
        tmp_path / "r.json",
        [server(f"io.github.acme/s{i}", "1.0.0", description="one") for i in range(n)],
    )
    conf = settings({"local": path})

    async def body(pool: AsyncConnectionPool[Any]) -> float:
        service = SyncService(pool, conf)
        await service.reconcile()
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))

        async def writing() -> bool:
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                    " AND query ~* 'stage|entry_version|COPY' AND pid <> pg_backend_pid()"
                )
                row = await cur.fetchone()
                return bool(row and row[0])

        await wait_for(writing)
        stop.set()
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(task, 5)
        return asyncio.get_running_loop().time() - started

    assert with_pool(db, body) < 2.0
    rows = db.query("SELECT count(*), count(DISTINCT description) FROM entry_version")
    assert rows in ([(0, 0)], [(n, 1)])
    st = sync_status(db)
    if rows == [(0, 0)]:  # rolled back: the status says the attempt was interrupted
        assert (st["sync_status"], st["attempt_count"]) == ("FAILED", 0)
        assert st["message"].startswith("interrupted: ")
    else:
        assert st["sync_status"] == "COMPLETED"
    assert db.query("SELECT count(*) FROM mcp_server_package")[0][0] == rows[0][0]


def test_a_config_name_taken_by_an_api_source_is_refused(db: TestDatabase, tmp_path: Path) -> None:
    from thv_registry.sync import ReconcileConflict

    with db.connect() as conn:
        conn.execute(
            "INSERT INTO source (name, source_type, creation_type)"
            " VALUES ('local', 'managed', 'API')"
        )
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        with pytest.raises(ReconcileConflict) as caught:
            await SyncService(pool, settings({"local": path})).reconcile()
        assert (caught.value.kind, caught.value.name) == ("source", "local")

    with_pool(db, body)
    assert db.query("SELECT name, creation_type::text FROM source") == [("local", "API")]
    assert db.query("SELECT count(*) FROM registry") == [(0,)]


def test_a_write_the_database_refuses_rolls_back_and_is_recorded(
    db: TestDatabase, tmp_path: Path
) -> None:
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])
    conf = settings({"local": path})
    sync_once(db, conf)
    before = versions(db)
    with db.connect() as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'icons are refused today'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON mcp_server_icon EXECUTE FUNCTION refuse()"
        )
    icon = [{"src": "https://x.example/i.png"}]
    write_registry(path, [server(A, "1.0.0"), server(B, "1.0.0", icons=icon)])
    [outcome] = sync_once(db, conf)
    assert (outcome.result, outcome.message) == (
        "failed",
        "database error: icons are refused today",
    )
    assert versions(db) == before  # B's rows went with the rolled-back transaction
    st = sync_status(db)
    assert (st["sync_status"], st["attempt_count"]) == ("FAILED", 1)


def test_replicas_reconcile_one_at_a_time(db: TestDatabase, tmp_path: Path) -> None:
    """Reconciliations take a transaction-level advisory lock: replicas starting together
    re-link registries one after the other (concurrent DELETE + INSERT of the same links would
    hit the key), and all of them succeed."""
    from thv_registry.sync.reconcile import RECONCILE_LOCK_KEY

    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])
    conf = settings({"local": path, "other": path}, {"default": ("local", "other")})

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        services = [SyncService(pool, conf) for _ in range(4)]
        for _ in range(3):  # on an empty database, then with everything there
            await asyncio.gather(*(s.reconcile() for s in services))
        async with pool.connection() as holder:
            await holder.set_autocommit(True)
            await holder.execute("SELECT pg_advisory_lock(%s)", (RECONCILE_LOCK_KEY,))
            waiting = asyncio.create_task(services[0].reconcile())
            await asyncio.sleep(0.3)
            assert not waiting.done()  # waits for the lock
            await holder.execute("SELECT pg_advisory_unlock(%s)", (RECONCILE_LOCK_KEY,))
            await asyncio.wait_for(waiting, 5)

    with_pool(db, body)
    assert db.query("SELECT count(*) FROM registry_source") == [(2,)]


def test_a_removed_source_an_api_registry_uses_is_refused(db: TestDatabase, tmp_path: Path) -> None:
    from thv_registry.sync import SourceInUse

    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])
    sync_once(db, settings({"local": path, "gone": path}), source="gone")
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO registry (name, creation_type) VALUES ('mine', 'API');"
            " INSERT INTO registry_source (registry_id, source_id, position)"
            " SELECT r.id, s.id, 0 FROM registry r, source s WHERE r.name = 'mine'"
            " AND s.name = 'gone'"
        )

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        with pytest.raises(SourceInUse) as caught:
            await SyncService(pool, settings({"local": path})).reconcile()
        assert (caught.value.source, caught.value.registry) == ("gone", "mine")

    with_pool(db, body)
    assert sorted(db.query("SELECT name FROM source")) == [("gone",), ("local",)]
    assert db.query(
        "SELECT count(*) FROM registry_entry e JOIN source s ON s.id = e.source_id"
        " WHERE s.name = 'gone'"
    ) == [(1,)]


def test_latest_among_non_semver_versions_is_the_last_seen(
    db: TestDatabase, tmp_path: Path
) -> None:
    path = write_registry(tmp_path / "r.json", [server(A, "zzz")])
    conf = settings({"local": path})
    sync_once(db, conf)
    assert latest(db) == {A: "zzz"}
    write_registry(path, [server(A, "zzz"), server(A, "aaa")])
    sync_once(db, conf)
    assert latest(db) == {A: "aaa"}  # first seen later, although "zzz" sorts after it
    write_registry(path, [server(A, "zzz"), server(A, "aaa"), server(A, "0.1.0")])
    sync_once(db, conf)
    assert latest(db) == {A: "0.1.0"}  # any semver version above every non-semver one
