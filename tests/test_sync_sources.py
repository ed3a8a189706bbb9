"""File sources read over HTTP (a real server on loopback) and the shipped sample registry."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from conftest import TestDatabase
from sync_helpers import migrate, server, settings, with_pool, write_registry
from thv_registry.config import FileSourceSettings
from thv_registry.sample import SAMPLE_REGISTRY, sample_settings
from thv_registry.sync import SyncService
from thv_registry.sync.errors import FetchFailed
from thv_registry.sync.file_source import fetch
from thv_registry.sync.upstream import parse


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(1.5)
            self.send_response(200)
            self.end_headers()
        else:
            super().do_GET()


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()

    def handler(*args: Any) -> Handler:
        return Handler(*args, directory=str(root))

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def fetch_error(url: str, **kw: Any) -> FetchFailed:
    spec = FileSourceSettings(url=url, timeout=kw.pop("timeout", timedelta(seconds=5)))
    with pytest.raises(FetchFailed) as caught:
        asyncio.run(fetch("web", spec, **kw))
    assert caught.value.source == "web" and caught.value.origin == url
    return caught.value


def test_url_source_syncs_and_failures_are_named(
    database: TestDatabase, http_dir: tuple[str, Path]
) -> None:
    base, root = http_dir
    write_registry(root / "r.json", [server("io.github.acme/web", "1.0.0")])
    migrate(database)
    conf = settings({"web": f"{base}/r.json"})

    async def body(pool: AsyncConnectionPool[Any]) -> list[Any]:
        service = SyncService(pool, conf)
        await service.reconcile()
        first = await service.sync_now("web")
        (root / "r.json").unlink()
        return [first, await service.sync_now("web")]

    ok, missing = with_pool(database, body)
    assert ok.result == "synced" and ok.counts.servers == 1
    assert missing.result == "failed"
    assert missing.message == f"cannot read {base}/r.json: HTTP 404 File not found"
    assert database.query("SELECT name FROM registry_entry") == [("io.github.acme/web",)]


def test_url_limits(http_dir: tuple[str, Path]) -> None:
    base, root = http_dir
    (root / "big.json").write_bytes(b" " * 2048)
    assert (
        "larger than the 1024-byte limit" in fetch_error(f"{base}/big.json", max_bytes=1024).reason
    )
    assert fetch_error(f"{base}/loop").reason == "more than 5 redirects"
    slow = fetch_error(f"{base}/slow", timeout=timedelta(milliseconds=300))
    assert slow.reason == "no complete answer within 0.3 s"
    refused = fetch_error("http://127.0.0.1:9/r.json")
    assert refused.reason.startswith("ConnectError")


def test_path_limits(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2048)
    with pytest.raises(FetchFailed, match="larger than the 1024-byte limit"):
        asyncio.run(fetch("f", FileSourceSettings(path=str(big)), max_bytes=1024))
    with pytest.raises(FetchFailed, match="it is a directory"):
        asyncio.run(fetch("f", FileSourceSettings(path=str(tmp_path))))


def test_the_sample_registry_is_valid_and_serves_with_its_settings(database: TestDatabase) -> None:
    parsed = parse("sample", str(SAMPLE_REGISTRY), SAMPLE_REGISTRY.read_bytes())
    names = {s.name for s in parsed.servers}
    assert "io.github.modelcontextprotocol/server-filesystem" in names and len(names) >= 4
    assert len(parsed.skills) >= 2
    conf = sample_settings()
    assert [s.name for s in conf.sources] == ["sample"]
    assert [(r.name, r.sources) for r in conf.registries] == [("default", ("sample",))]
    assert conf.auth is not None and conf.auth.mode == "anonymous"
    migrate(database)

    async def body(pool: AsyncConnectionPool[Any]) -> Any:
        service = SyncService(pool, conf)
        await service.reconcile()
        return await service.sync_now("sample")

    outcome = with_pool(database, body)
    assert outcome.result == "synced", outcome.message
    rows = database.query(
        "SELECT e.name, l.version FROM latest_entry_version l"
        " JOIN registry_entry e ON e.id = l.entry_id"
    )
    latest = {str(name): str(version) for name, version in rows}
    assert latest["io.github.microsoft/playwright-mcp"] == "0.0.86"  # not the pre-release
    [(icons, remotes)] = database.query(
        "SELECT (SELECT count(*) FROM mcp_server_icon), (SELECT count(*) FROM mcp_server_remote)"
    )
    assert isinstance(icons, int) and icons >= len(parsed.servers)
    assert isinstance(remotes, int) and remotes >= 1
    assert database.query("SELECT count(*) FROM skill")[0][0] == len(parsed.skills)


def test_what_sync_writes_the_store_reads_back_as_written(database: TestDatabase) -> None:
    """Round trip: every server.json and skill of the sample, synced and read through the
    registry store, comes back equal to the file's entry (icons, package order, remote
    variables and headers, publisher _meta included)."""
    import msgspec

    from thv_registry.registry.models import ServerDetail, Skill
    from thv_registry.registry.store import ServerQuery, SkillQuery, Store

    migrate(database)
    parsed = parse("sample", str(SAMPLE_REGISTRY), SAMPLE_REGISTRY.read_bytes())

    async def body(pool: AsyncConnectionPool[Any]) -> tuple[Any, Any]:
        service = SyncService(pool, sample_settings())
        await service.reconcile()
        await service.sync_now("sample")
        store = Store(pool)
        return (
            await store.list_servers("default", ServerQuery(limit=100)),
            await store.list_skills("default", SkillQuery(limit=100)),
        )

    servers, skills = with_pool(database, body)
    served = {(r.server.name, r.server.version): r.server for r in servers.servers}
    assert len(served) == len(parsed.servers)
    for entry in parsed.servers:
        expected = msgspec.json.decode(entry.raw, type=ServerDetail)
        assert msgspec.to_builtins(served[(entry.name, entry.version)]) == msgspec.to_builtins(
            expected
        ), entry.name
    served_skills = {(f"{s.namespace}/{s.name}", s.version): s for s in skills.skills}
    for k in parsed.skills:
        got = msgspec.to_builtins(served_skills[(k.name, k.version)])
        assert got == msgspec.to_builtins(msgspec.json.decode(k.raw, type=Skill)), k.name
