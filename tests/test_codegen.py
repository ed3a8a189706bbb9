"""The sqlc pipeline: generated query functions against a real migrated database, the committed
package matching what `task gen` writes, and sqlc refusing a query on a dropped column.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import REPO_ROOT, TestDatabase
from thv_registry.codegen import GENERATED_MARK, CodegenError, generate
from thv_registry.codegen.pytypes import snake_case
from thv_registry.codegen.request import parse_request
from thv_registry.config import ConnectionParams
from thv_registry.migrations import Migrator, Source, Up
from thv_registry.queries import aio, servers, sync

Conn = psycopg.Connection[Any]
BIN = Path(sys.executable).parent
QUERIES_PKG = REPO_ROOT / "src" / "thv_registry" / "queries"


def _tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]' brings it)")
    return found


@pytest.fixture
def conn(database: TestDatabase) -> Iterator[Conn]:
    server = database.server
    params = ConnectionParams(server.host, server.port, server.user, database.name, "disable")
    Migrator(params, Source.from_directory(REPO_ROOT / "database" / "migrations")).apply(Up())
    with database.connect() as connection:
        yield connection


def _publish(
    conn: Conn,
    source_id: uuid.UUID,
    name: str,
    versions: list[str],
    *,
    description: str = "",
    latest: str | None = None,
) -> dict[str, uuid.UUID]:
    """Write one server's versions the way a file-source sync does; return version ids."""
    entry_id = sync.upsert_registry_entry(
        conn, source_id=source_id, entry_type="MCP", name=name, claims={"org": "acme"}
    )
    assert entry_id is not None
    ids: dict[str, uuid.UUID] = {}
    for version in versions:
        version_id = sync.upsert_entry_version(
            conn,
            entry_id=entry_id,
            version=version,
            title=name.split("/")[-1].title(),
            description=description or f"{name} {version}",
            status="ACTIVE",
            status_message=None,
            status_changed_at=None,
            published_at=None,
        )
        assert version_id is not None
        sync.upsert_mcp_server(
            conn,
            version_id=version_id,
            website=f"https://{name}.example",
            schema_url=None,
            repository_url="https://github.com/acme/servers",
            repository_type="github",
            repository_id=None,
            repository_subfolder=None,
            server_meta={"io.acme/tier": "gold"},
            upstream_meta=None,
        )
        ids[version] = version_id
    sync.set_latest_version(conn, entry_id=entry_id, version=latest or versions[-1])
    return ids


def _registry(
    conn: Conn, name: str = "default", sources: tuple[str, ...] = ("files",)
) -> list[uuid.UUID]:
    registry_id = sync.upsert_registry(conn, name=name, creation_type="CONFIG", claims=None)
    assert registry_id is not None
    ids = []
    for position, source in enumerate(sources):
        source_id = sync.upsert_source(
            conn,
            name=source,
            source_type="file",
            creation_type="CONFIG",
            source_config={"file": {"path": f"/data/{source}.json"}},
            filter_config=None,
            syncable=True,
            sync_schedule=datetime.timedelta(minutes=30),
            claims=None,
        )
        assert source_id is not None
        sync.upsert_registry_source(
            conn, registry_id=registry_id, source_id=source_id, position=position
        )
        ids.append(source_id)
    return ids


def _page(conn: Conn, after: servers.ListServersRow | None = None, **filters: Any) -> list[Any]:
    args: dict[str, Any] = {
        "registry_name": "default",
        "cursor_name": after.name if after else "",
        "cursor_sort_key": after.sort_key if after else b"",
        "cursor_published_at": after.published_at if after else datetime.datetime.now(datetime.UTC),
        "cursor_version": after.version if after else "",
        "cursor_entry_id": after.entry_id if after else uuid.UUID(int=0),
        "version": None,
        "by_version": False,
        "search": None,
        "by_search": False,
        "updated_since": None,
        "by_time": False,
        "latest_only": False,
        "include_deleted": False,
        "page_size": 3,
    }
    args.update(filters)
    args["by_search"] = args["search"] is not None
    args["by_time"] = args["updated_since"] is not None
    args["by_version"] = args["version"] is not None
    return servers.list_servers(conn, **args)


def test_upserts_return_the_same_ids_when_run_again(conn: Conn) -> None:
    (source_id,) = _registry(conn)
    first = _publish(conn, source_id, "io.acme/weather", ["1.0.0", "1.1.0"])
    assert _registry(conn) == [source_id]
    assert _publish(conn, source_id, "io.acme/weather", ["1.0.0", "1.1.0"]) == first
    sync_state = sync.get_source_sync(conn, name="files")
    assert sync_state is not None
    assert sync_state.source_type == "file"
    assert sync_state.sync_schedule == datetime.timedelta(minutes=30)
    assert sync_state.sync_status is None  # never synced


def test_list_servers_pages_by_name_and_version(conn: Conn) -> None:
    (source_id,) = _registry(conn)
    _publish(conn, source_id, "io.acme/weather", ["1.0.0", "1.1.0", "2.0.0"])
    _publish(conn, source_id, "io.acme/calendar", ["0.1.0"])
    _publish(conn, source_id, "io.acme/maps", ["3.0.0", "3.1.0"], latest="3.0.0")

    # no version_sort_key written here: versions order newest published first
    first = _page(conn)
    assert [(r.name, r.version) for r in first] == [
        ("io.acme/calendar", "0.1.0"),
        ("io.acme/maps", "3.1.0"),
        ("io.acme/maps", "3.0.0"),
    ]
    second = _page(conn, after=first[-1])
    assert [(r.name, r.version) for r in second] == [
        ("io.acme/weather", "2.0.0"),
        ("io.acme/weather", "1.1.0"),
        ("io.acme/weather", "1.0.0"),
    ]
    assert _page(conn, after=second[-1]) == []

    row = first[2]
    assert isinstance(row, servers.ListServersRow)
    assert row.is_latest and not first[1].is_latest
    assert isinstance(row.version_id, uuid.UUID)
    assert row.published_at.tzinfo is not None
    assert row.server_meta == {"io.acme/tier": "gold"}
    assert row.status == "ACTIVE"


def test_list_servers_filters(conn: Conn) -> None:
    (source_id,) = _registry(conn)
    _publish(conn, source_id, "io.acme/weather", ["1.0.0", "2.0.0"], description="Forecasts")
    _publish(conn, source_id, "io.acme/calendar", ["0.1.0"], description="100% dates_only")

    assert {r.name for r in _page(conn, search="WEATH")} == {"io.acme/weather"}
    assert {r.name for r in _page(conn, search="forecast")} == {"io.acme/weather"}
    # The search text is literal: % and _ are not wildcards.
    assert {r.name for r in _page(conn, search="100% dates_")} == {"io.acme/calendar"}
    assert _page(conn, search="1_0") == []
    assert [(r.name, r.version) for r in _page(conn, latest_only=True)] == [
        ("io.acme/calendar", "0.1.0"),
        ("io.acme/weather", "2.0.0"),
    ]

    cutoff = conn.execute("SELECT max(updated_at) FROM entry_version").fetchone()
    assert cutoff is not None
    assert _page(conn, updated_since=cutoff[0]) == []
    versions = _publish(conn, source_id, "io.acme/weather", ["1.0.0"], description="Forecasts")
    assert _page(conn, updated_since=cutoff[0]) == []  # the same data again changes nothing
    assert sync.touch_entry_version(conn, version_id=versions["1.0.0"]) == 1
    assert [(r.name, r.version) for r in _page(conn, updated_since=cutoff[0])] == [
        ("io.acme/weather", "1.0.0")
    ]


def test_lowest_position_source_wins(conn: Conn) -> None:
    primary, secondary = _registry(conn, sources=("primary", "secondary"))
    _publish(conn, secondary, "io.acme/weather", ["9.9.9"])
    _publish(conn, primary, "io.acme/weather", ["1.0.0"])
    _publish(conn, secondary, "io.acme/only-second", ["0.1.0"])
    rows = _page(conn, page_size=10)
    assert [(r.name, r.version) for r in rows] == [
        ("io.acme/only-second", "0.1.0"),
        ("io.acme/weather", "1.0.0"),  # not the secondary source's 9.9.9
    ]
    versions = servers.list_server_versions(
        conn, registry_name="default", server_name="io.acme/weather", include_deleted=False
    )
    assert [(v.version, v.source_name, v.is_latest) for v in versions] == [
        ("1.0.0", "primary", True)
    ]


def test_server_version_with_packages_and_remotes(conn: Conn) -> None:
    (source_id,) = _registry(conn)
    ids = _publish(conn, source_id, "io.acme/weather", ["1.0.0", "1.1.0"], latest="1.0.0")
    version_id = ids["1.1.0"]
    for position, (registry_type, identifier) in enumerate([("npm", "@acme/w"), ("oci", "acme/w")]):
        package_id = sync.insert_server_package(
            conn,
            version_id=version_id,
            position=position,
            registry_type=registry_type,
            pkg_registry_url=None,
            pkg_identifier=identifier,
            pkg_version="1.1.0",
            sha256_hash=None,
            runtime_hint="npx" if registry_type == "npm" else None,
            runtime_arguments=None,
            package_arguments=[{"type": "positional", "value": "--stdio"}],
            env_vars=[{"name": "API_KEY", "isSecret": True}],
            transport="stdio",
            transport_url=None,
            transport_headers=None,
        )
        assert isinstance(package_id, uuid.UUID)
    sync.insert_server_remote(
        conn,
        version_id=version_id,
        position=0,
        transport="streamable-http",
        transport_url="https://weather.acme.example/mcp",
        transport_headers=[{"name": "Authorization"}],
        transport_variables=None,
    )

    detail = servers.get_server_version(
        conn, registry_name="default", server_name="io.acme/weather", version="1.1.0"
    )
    assert detail is not None
    assert (detail.version, detail.is_latest) == ("1.1.0", False)
    latest = servers.get_server_version(
        conn, registry_name="default", server_name="io.acme/weather", version=None
    )
    assert latest is not None and latest.version == "1.0.0" and latest.is_latest
    assert (
        servers.get_server_version(
            conn, registry_name="default", server_name="io.acme/nope", version=None
        )
        is None
    )

    packages = servers.list_server_packages(conn, version_ids=[version_id])
    assert [(p.position, p.registry_type, p.pkg_identifier) for p in packages] == [
        (0, "npm", "@acme/w"),
        (1, "oci", "acme/w"),
    ]
    assert packages[0].env_vars == [{"name": "API_KEY", "isSecret": True}]
    assert packages[0].transport == "stdio" and packages[0].transport_url is None
    remotes = servers.list_server_remotes(conn, version_ids=[version_id])
    assert [(r.transport, r.transport_url) for r in remotes] == [
        ("streamable-http", "https://weather.acme.example/mcp")
    ]
    assert servers.list_server_icons(conn, version_ids=[version_id]) == []

    assert sync.delete_server_packages(conn, version_id=version_id) == 2
    assert sync.delete_server_remotes(conn, version_id=version_id) == 1
    assert servers.list_server_packages(conn, version_ids=[version_id]) == []


def test_sync_state_and_stale_deletes(conn: Conn) -> None:
    (source_id,) = _registry(conn)
    _publish(conn, source_id, "io.acme/weather", ["1.0.0", "2.0.0"])
    _publish(conn, source_id, "io.acme/gone", ["0.1.0"])
    sync.start_source_sync(conn, source_id=source_id)
    sync.start_source_sync(conn, source_id=source_id)
    assert sync.fail_source_sync(conn, source_id=source_id, error_msg="file not found") == 1
    state = sync.get_source_sync(conn, name="files")
    assert state is not None
    assert (state.sync_status, state.error_msg, state.attempt_count) == (
        "FAILED",
        "file not found",
        2,
    )

    sync.start_source_sync(conn, source_id=source_id)
    assert (
        sync.delete_stale_entries(
            conn, source_id=source_id, entry_type="MCP", keep_names=["io.acme/weather"]
        )
        == 1
    )
    entry = conn.execute("SELECT id FROM registry_entry").fetchone()
    assert entry is not None
    entry_id = entry[0]
    assert sync.delete_stale_versions(conn, entry_id=entry_id, keep_versions=["1.0.0"]) == 1
    assert (
        sync.complete_source_sync(
            conn,
            source_id=source_id,
            last_sync_hash="abc",
            last_applied_filter_hash=None,
            server_count=1,
        )
        == 1
    )
    state = sync.get_source_sync(conn, name="files")
    assert state is not None
    assert (state.sync_status, state.attempt_count, state.server_count) == ("COMPLETED", 0, 1)
    assert [(r.name, r.version) for r in _page(conn)] == [("io.acme/weather", "1.0.0")]


def test_async_queries_match_the_sync_ones(conn: Conn, database: TestDatabase) -> None:
    """queries.aio: the same functions as coroutines over psycopg.AsyncConnection."""
    (source_id,) = _registry(conn)
    _publish(conn, source_id, "io.acme/weather", ["1.0.0", "2.0.0"])
    _publish(conn, source_id, "io.acme/maps", ["3.0.0"])
    expected = _page(conn, page_size=10)

    async def read() -> tuple[list[Any], uuid.UUID | None]:
        aconn = await psycopg.AsyncConnection.connect(database.conninfo, autocommit=True)
        async with aconn:
            args: dict[str, Any] = {
                "registry_name": "default",
                "cursor_name": "",
                "cursor_sort_key": b"",
                "cursor_published_at": datetime.datetime.now(datetime.UTC),
                "cursor_version": "",
                "cursor_entry_id": uuid.UUID(int=0),
                "version": None,
                "by_version": False,
                "search": None,
                "by_search": False,
                "updated_since": None,
                "by_time": False,
                "latest_only": False,
                "include_deleted": False,
                "page_size": 10,
            }
            rows = await aio.servers.list_servers(aconn, **args)
            return rows, await aio.servers.get_registry_id(aconn, registry_name="default")

    rows, registry_id = asyncio.run(read())
    assert rows == expected and len(rows) == 3
    assert isinstance(rows[0], servers.ListServersRow)  # the row classes are shared
    assert registry_id == servers.get_registry_id(conn, registry_name="default")
    assert aio.servers.LIST_SERVERS is servers.LIST_SERVERS  # type: ignore[attr-defined]
    assert sorted(aio.servers.__all__) == sorted(
        n for n in servers.__all__ if not n.endswith("Row")
    )


def test_snake_case_matches_sqlc_names() -> None:
    assert snake_case("ListServerVersions") == "list_server_versions"
    assert snake_case("UpsertMCPServer") == "upsert_mcp_server"
    assert snake_case("GetV2Thing") == "get_v2_thing"


def test_unknown_type_is_a_clear_error(tmp_path: Path) -> None:
    column = {"name": "x", "not_null": True, "type": {"name": "tsvector"}}
    request = parse_request(
        {
            "queries": [
                {
                    "name": "Q",
                    "cmd": ":one",
                    "text": "SELECT",
                    "filename": "a.sql",
                    "columns": [column],
                    "params": [],
                }
            ]
        }
    )
    with pytest.raises(CodegenError) as err:
        generate(request, tmp_path)
    assert "a.sql (query Q :one)" in str(err.value) and "'tsvector'" in str(err.value)


def _copy_project(dest: Path) -> Path:
    """The files `task gen` reads, in a scratch copy of the repository."""
    for name in ("Taskfile.yml", "sqlc.yaml", "pyproject.toml"):
        shutil.copy2(REPO_ROOT / name, dest / name)
    shutil.copytree(REPO_ROOT / "database" / "migrations", dest / "database" / "migrations")
    shutil.copytree(REPO_ROOT / "database" / "queries", dest / "database" / "queries")
    return dest


def test_task_gen_reproduces_the_committed_package(tmp_path: Path) -> None:
    """CI's guard: the committed thv_registry.queries is exactly what `task gen` writes."""
    task = _tool("task")
    _tool("sqlc")
    root = _copy_project(tmp_path)
    done = subprocess.run(
        [task, "gen", f"PYTHON={sys.executable}"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = root / "src" / "thv_registry" / "queries"
    generated = {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.py"))}
    committed = {
        str(p.relative_to(QUERIES_PKG)): p.read_text() for p in sorted(QUERIES_PKG.rglob("*.py"))
    }
    assert "aio/servers.py" in generated
    assert sorted(generated) == sorted(committed)
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"run `task gen` and commit the result: {stale} differ"
    assert all(text.startswith(GENERATED_MARK) for text in committed.values())
    assert not (root / "build" / "sqlc").exists()


def test_generated_package_passes_ruff() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(QUERIES_PKG)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_query_on_a_dropped_column_fails_task_gen(tmp_path: Path) -> None:
    task = _tool("task")
    _tool("sqlc")
    root = _copy_project(tmp_path)
    migrations = root / "database" / "migrations"
    last = max(int(p.name.split("_")[0]) for p in migrations.glob("*.up.sql"))
    name = f"{last + 1:06d}_drop_status_message"
    (migrations / f"{name}.up.sql").write_text(
        "ALTER TABLE entry_version DROP COLUMN status_message;\n"
    )
    (migrations / f"{name}.down.sql").write_text(
        "ALTER TABLE entry_version ADD COLUMN status_message TEXT;\n"
    )
    done = subprocess.run(
        [task, "gen", f"PYTHON={sys.executable}"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert 'column "status_message" does not exist' in output
    assert "database/queries/servers.sql:" in output
    assert not (root / "src").exists()  # nothing was generated
