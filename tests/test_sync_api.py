"""``api`` sources against a real PostgreSQL: paging the official registry's shape, change
detection by content, caps, fetch faults (hang, 500, truncated, oversized, an invalid entry on
page 7) and incremental fetches; and one ``serve`` reading another over loopback."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from psycopg_pool import AsyncConnectionPool

from api_fixtures import Seeded, make_env
from conftest import TestDatabase
from serving import running, serve_config
from serving import write_registry as write_serve_registry
from sync_helpers import migrate, server, with_pool
from thv_registry.config import (
    ApiSourceSettings,
    RegistrySettings,
    ServerSettings,
    Settings,
    SourceSettings,
    SyncPolicy,
)
from thv_registry.sync import SyncOutcome, SyncService
from upstream_server import OFFICIAL, Upstream, response, running_upstream


@pytest.fixture
def db(database: TestDatabase) -> TestDatabase:
    migrate(database)
    return database


def name(i: int) -> str:
    return f"io.github.acme/s{i:04d}"


def items(n: int, version: str = "1.0.0") -> list[dict[str, Any]]:
    return [response(server(name(i), version)) for i in range(n)]


def api_settings(endpoint: str, **api: Any) -> Settings:
    api.setdefault("timeout", timedelta(seconds=5))
    source = SourceSettings(
        name="up",
        api=ApiSourceSettings(endpoint=endpoint, **api),
        sync_policy=SyncPolicy(interval=timedelta(minutes=5)),
    )
    return Settings(
        sources=(source,),
        registries=(RegistrySettings(name="default", sources=("up",)),),
        server=ServerSettings(),
    )


def sync(db: TestDatabase, conf: Settings, times: int = 1) -> list[SyncOutcome]:
    async def body(pool: AsyncConnectionPool[Any]) -> list[SyncOutcome]:
        service = SyncService(pool, conf)
        await service.reconcile()
        return [await service.sync_now("up") for _ in range(times)]

    return with_pool(db, body)


def stored(db: TestDatabase) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(name, version) -> (status, description)."""
    rows = db.query(
        "SELECT e.name, v.version, v.status::text, v.description FROM entry_version v"
        " JOIN registry_entry e ON e.id = v.entry_id"
    )
    return {(str(r[0]), str(r[1])): (str(r[2]), None if r[3] is None else str(r[3])) for r in rows}


def status(db: TestDatabase) -> dict[str, Any]:
    row = db.query(
        "SELECT y.sync_status, y.message, y.attempt_count, y.server_count, y.version_count"
        " FROM registry_sync y JOIN source s ON s.id = y.source_id WHERE s.name = 'up'"
    )[0]
    return dict(zip(("phase", "message", "attempts", "servers", "versions"), row, strict=True))


def test_pages_the_official_shape_and_detects_change_by_content(db: TestDatabase) -> None:
    up = Upstream(items=items(250))
    with running_upstream(up):
        conf = api_settings(up.base + "/")
        first, again = sync(db, conf, times=2)
        assert (first.result, again.result) == ("synced", "unchanged")
        assert len(stored(db)) == 250
        assert status(db) == {
            "phase": "COMPLETED",
            "message": status(db)["message"],
            "attempts": 0,
            "servers": 250,
            "versions": 250,
        }
        pages = up.page_requests()
        assert up.requests[0] == "/v0.1/servers?limit=1"  # the v0.1 check comes first
        assert pages[:3] == [
            "/v0.1/servers?limit=100",
            "/v0.1/servers?limit=100&cursor=100",
            "/v0.1/servers?limit=100&cursor=200",
        ]
        # other page boundaries, and a new updatedAt in _meta (not copied): unchanged
        up.page_size = 30
        for item in up.items:
            item["_meta"][OFFICIAL]["updatedAt"] = "2026-01-01T00:00:00Z"
        assert sync(db, conf)[0].result == "unchanged"
        assert up.page_requests()[-1] == "/v0.1/servers?limit=100&cursor=240"
        # the same content in other bytes (keys reordered): compared version by version,
        # nothing written; the next sync of those bytes is unchanged
        up.items = [json.loads(json.dumps(i, sort_keys=True)) for i in up.items]
        reordered = sync(db, conf, times=2)
        assert [(o.result, o.changed, o.deleted) for o in reordered] == [
            ("synced", 0, 0),
            ("unchanged", 0, 0),
        ]
        # one server deleted upstream, one gone, one changed
        up.items[0]["_meta"]["io.modelcontextprotocol.registry/official"]["status"] = "deleted"
        del up.items[1]
        up.items[1]["server"]["description"] = "changed"
        outcome = sync(db, conf)[0]
        assert (outcome.result, outcome.changed, outcome.deleted) == ("synced", 1, 2)
    rows = stored(db)
    assert rows[(name(0), "1.0.0")][0] == rows[(name(1), "1.0.0")][0] == "DELETED"
    assert rows[(name(2), "1.0.0")] == ("ACTIVE", "changed")
    assert status(db)["servers"] == 248


@pytest.mark.parametrize("endpoint_tail", ["/v0.1", "/v0.1/servers"])
def test_endpoint_may_name_the_version(db: TestDatabase, endpoint_tail: str) -> None:
    with running_upstream(Upstream(items=items(3))) as up:
        assert sync(db, api_settings(up.base + endpoint_tail))[0].result == "synced"
    assert len(stored(db)) == 3


FAULTS = [
    ("hang", {"timeout": timedelta(seconds=1)}, "page 2: no complete answer within 1 s"),
    ("500", {}, "page 2: HTTP 500 Internal Server Error"),
    ("redirect", {}, "page 2: more than 5 redirects"),
    ("truncate", {}, "page 2: RemoteProtocolError"),
    (
        "oversize",
        {"max_response_bytes": 1024 * 1024},
        "page 2: the response is larger than 1048576 bytes (the source's maxResponseBytes)",
    ),
]


@pytest.mark.parametrize(("fault", "api", "expected"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_fetch_fault_fails_the_sync_and_keeps_the_old_data(
    db: TestDatabase, fault: str, api: dict[str, Any], expected: str
) -> None:
    up = Upstream(items=items(250))
    with running_upstream(up):
        conf = api_settings(up.base, **api)
        assert sync(db, conf)[0].result == "synced"
        before = stored(db)
        up.items = items(260, "2.0.0")  # new data the faulty walk must not half-write
        up.requests.clear()
        up.fault, up.fault_page = fault, 2
        failures = sync(db, conf, times=2)
    assert [f.result for f in failures] == ["failed", "failed"]
    assert expected in failures[0].message, failures[0].message
    assert failures[0].message.startswith(f"cannot read {up.base}/v0.1/servers: ")
    assert stored(db) == before
    st = status(db)
    assert (st["phase"], st["attempts"], st["servers"], st["versions"]) == ("FAILED", 2, 250, 250)
    assert expected in st["message"]


def test_an_invalid_entry_on_page_seven_names_page_position_and_entry(db: TestDatabase) -> None:
    up = Upstream(items=items(700))
    with running_upstream(up):
        conf = api_settings(up.base)
        assert sync(db, conf)[0].result == "synced"
        up.items = items(700, "1.1.0")
        up.items[642]["server"]["packages"][0]["transport"] = {"type": "carrier-pigeon"}
        up.items[610]["_meta"][OFFICIAL]["status"] = "deleted"  # left out, still counted
        failed = sync(db, conf)[0]
    assert failed.result == "failed"
    assert failed.message.startswith(f"{up.base}/v0.1/servers: page 7, servers[42] ({name(642)})")
    assert "at server.packages[0].transport" in failed.message
    assert {v for _, v in stored(db)} == {"1.0.0"}
    assert status(db)["attempts"] == 1


def test_an_entry_that_is_not_an_object_fails_on_its_page(db: TestDatabase) -> None:
    up = Upstream(items=items(150))
    up.items[120] = {"server": "nope"}
    with running_upstream(up):
        failed = sync(db, api_settings(up.base))[0]
    assert failed.result == "failed"
    assert "page 2, servers[20]" in failed.message, failed.message


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ({"max_pages": 2}, "page 3: more than 2 pages (the source's maxPages)"),
        (
            {"max_servers": 150},
            "page 2: servers[50]: more than 150 servers (the source's maxServers)",
        ),
    ],
)
def test_caps(db: TestDatabase, api: dict[str, Any], expected: str) -> None:
    with running_upstream(Upstream(items=items(250))) as up:
        failed = sync(db, api_settings(up.base, **api))[0]
    assert failed.result == "failed"
    assert expected in failed.message, failed.message
    assert stored(db) == {}


def test_an_endpoint_that_does_not_speak_v0_1_is_named(db: TestDatabase) -> None:
    with running_upstream(Upstream(items=items(1))) as up:
        failed = sync(db, api_settings(up.base + "/somewhere-else"))[0]
    assert failed.result == "failed"
    assert "the v0.1 check (limit=1): HTTP 404" in failed.message, failed.message


def test_incremental_fetches_mark_deleted_only_what_upstream_deleted(db: TestDatabase) -> None:
    up = Upstream(items=items(150))
    with running_upstream(up):
        conf = api_settings(up.base, full_resync_interval=timedelta(hours=1))

        async def body(pool: AsyncConnectionPool[Any]) -> list[SyncOutcome]:
            service = SyncService(pool, conf)
            await service.reconcile()
            first = await service.sync_now("up")  # full
            assert not any("updated_since" in r for r in up.requests)
            up.requests.clear()
            changed = response(server(name(5), "1.0.0", description="new text"))
            new = response(server(name(500), "3.0.0"))
            gone = response(server(name(7), "1.0.0"), status="deleted")
            up.changes = [changed, new, gone]
            second = await service.sync_now("up")  # only the changes
            third = await service.sync_now("up")  # the same changes again: unchanged
            up.changes = []
            fourth = await service.sync_now("up")
            return [first, second, third, fourth]

        outcomes = with_pool(db, body)
    assert [o.result for o in outcomes] == ["synced", "synced", "unchanged", "synced"]
    assert all("updated_since=" in r and "include_deleted=true" in r for r in up.page_requests())
    rows = stored(db)
    assert rows[(name(5), "1.0.0")] == ("ACTIVE", "new text")
    assert rows[(name(500), "3.0.0")][0] == "ACTIVE"
    assert rows[(name(7), "1.0.0")][0] == "DELETED"
    assert sum(1 for s, _ in rows.values() if s == "ACTIVE") == 150  # 150 - 1 deleted + 1 new
    assert (outcomes[1].changed, outcomes[1].deleted) == (2, 1)
    assert (outcomes[3].changed, outcomes[3].deleted) == (0, 0)
    assert status(db)["servers"] == 150 and status(db)["versions"] == 150


def _conn(database: TestDatabase) -> dict[str, Any]:
    s = database.server
    return {"host": s.host, "port": s.port, "user": s.user, "database": database.name}


def _walk(base: str) -> list[tuple[str, str]]:
    cursor, seen = None, []
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{base}/registry/default/v0.1/servers", params=params).json()
        seen += [(s["server"]["name"], s["server"]["version"]) for s in page["servers"]]
        cursor = page["metadata"].get("nextCursor")
        if not cursor:
            return seen


def test_an_api_source_reads_another_serve(database: TestDatabase, tmp_path: Path) -> None:
    """Two real serve processes on loopback, each with its own database: B's api source reads
    A's registry ``default`` (one of our registries' ``.../registry/{name}`` URLs)."""
    served = [server(name(i), v) for i in range(130) for v in ("1.0.0", "1.1.0")]
    registry = write_serve_registry(tmp_path / "a.json", served)
    a_conf = serve_config(tmp_path / "a.yaml", _conn(database), registry)
    other = Seeded(database.server)
    env = make_env(tmp_path)
    try:
        with running(a_conf, env, tmp_path) as a:
            b_path = serve_config(tmp_path / "b.yaml", other.conn, registry)
            b_doc = yaml.safe_load(b_path.read_text())
            b_doc["sources"] = [
                {
                    "name": "upstream",
                    "api": {"endpoint": f"{a.base}/registry/default", "timeout": "5s"},
                    "syncPolicy": {"interval": "1m"},
                }
            ]
            b_doc["registries"] = [{"name": "default", "sources": ["upstream"]}]
            b_path.write_text(yaml.safe_dump(b_doc))
            with running(b_path, env, tmp_path) as b:
                walked_a = _walk(a.base)
                walked_b = _walk(b.base)
                one = name(3).replace("/", "%2F")
                latest = httpx.get(
                    f"{b.base}/registry/default/v0.1/servers/{one}/versions/latest"
                ).json()
    finally:
        other.drop()
    assert len(walked_a) == 260
    assert walked_b == walked_a
    assert latest["server"]["version"] == "1.1.0"
    assert latest["_meta"]["io.modelcontextprotocol.registry/official"]["isLatest"] is True
