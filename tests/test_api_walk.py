"""Walking the servers list page by page over HTTP: every (name, version) once and in order,
whatever the ``limit``; and while a source is re-synced, no duplicates and never the versions of
one name from two sources."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from api_fixtures import Seeded, make_env
from serving import ServeProcess, running, server_json, write_registry
from waiting import wait_until

LIST = "/registry/default/v0.1/servers"
#: per name, newest first by semver precedence (text order would put 1.10.0 before 1.2.0)
VERSIONS = ("1.10.0", "1.2.0", "1.2.0-rc.1", "0.9.1")


def walk(process: ServeProcess, limit: int, pause: float = 0.0) -> list[dict[str, Any]]:
    """Every item of the list, following nextCursor from the first page."""
    items: list[dict[str, Any]] = []
    url = f"{process.base}{LIST}?limit={limit}"
    while True:
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["metadata"]["count"] == len(body["servers"]) <= limit
        items += body["servers"]
        cursor = body["metadata"].get("nextCursor")
        if not cursor:
            return items
        url = f"{process.base}{LIST}?limit={limit}&cursor={cursor}"
        time.sleep(pause)


def _config(seeded: Seeded, path: Path, sources: dict[str, Path], poll: str) -> Path:
    doc = {
        "database": {**seeded.conn, "sslmode": "disable"},
        "auth": {"mode": "anonymous"},
        "sources": [
            {"name": name, "file": {"path": str(file)}, "syncPolicy": {"interval": "1s"}}
            for name, file in sources.items()
        ],
        "registries": [{"name": "default", "sources": list(sources)}],
        "server": {
            "address": "127.0.0.1:0",
            "internalAddress": "127.0.0.1:0",
            "syncPollInterval": poll,
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def seeded(pg_server: Any) -> Iterator[Seeded]:
    made = Seeded(pg_server)
    try:
        yield made
    finally:
        made.drop()


def test_walks_with_several_limits_yield_everything_once_in_order(
    seeded: Seeded, tmp_path: Path
) -> None:
    names = [f"io.example/server-{i:03d}" for i in range(25)]
    docs = [server_json(n, v) for n in names for v in reversed(VERSIONS)]
    registry = write_registry(tmp_path / "registry.json", docs)
    config = _config(seeded, tmp_path / "config.yaml", {"local": registry}, "30s")
    expected = [(n, v) for n in names for v in VERSIONS]
    with running(config, make_env(tmp_path), tmp_path) as process:
        for limit in (1, 7, 30, 100):
            seen = [(s["server"]["name"], s["server"]["version"]) for s in walk(process, limit)]
            assert seen == expected, limit


def test_a_name_that_leaves_the_first_source_is_served_from_the_second(
    seeded: Seeded, tmp_path: Path
) -> None:
    names = ["io.example/kept", "io.example/moved"]
    first_file = write_registry(
        tmp_path / "first.json", [server_json(n, "2.0.0", description="first") for n in names]
    )
    second_file = write_registry(
        tmp_path / "second.json", [server_json(n, "1.0.0", description="second") for n in names]
    )
    config = _config(
        seeded, tmp_path / "config.yaml", {"first": first_file, "second": second_file}, "1s"
    )
    with running(config, make_env(tmp_path), tmp_path) as process:
        before = [(s["server"]["name"], s["server"]["description"]) for s in walk(process, 30)]
        assert before == [("io.example/kept", "first"), ("io.example/moved", "first")]
        write_registry(first_file, [server_json(names[0], "2.0.0", description="first")])

        def moved() -> list[tuple[str, str]]:
            items = walk(process, 30)
            return [(s["server"]["name"], s["server"]["description"]) for s in items]

        wait_until(lambda: moved() != before, 15, "the first source's re-sync", alive=process.proc)
        assert moved() == [("io.example/kept", "first"), ("io.example/moved", "second")]


def test_walk_during_resyncs_has_no_duplicates_and_one_source_per_name(
    seeded: Seeded, tmp_path: Path
) -> None:
    names = [f"io.example/srv-{i:03d}" for i in range(20)]

    def first(upto: int) -> list[dict[str, Any]]:
        return [server_json(n, "2.0.0", description="from first") for n in names[:upto]]

    second = [
        server_json(n, v, description="from second") for n in names for v in ("1.0.0", "1.1.0")
    ]
    first_file = write_registry(tmp_path / "first.json", first(10))
    second_file = write_registry(tmp_path / "second.json", second)
    config = _config(
        seeded, tmp_path / "config.yaml", {"first": first_file, "second": second_file}, "1s"
    )
    stop = threading.Event()
    flips = 0

    def resync() -> None:  # names 5..9 move between the two sources, again and again
        nonlocal flips
        while not stop.wait(0.4):
            flips += 1
            write_registry(first_file, first(5 if flips % 2 else 10))

    with running(config, make_env(tmp_path), tmp_path) as process:
        flipper = threading.Thread(target=resync)
        flipper.start()
        try:
            deadline = time.monotonic() + 6
            walks = 0
            while time.monotonic() < deadline or walks < 3:
                items = walk(process, limit=3, pause=0.05)
                walks += 1
                pairs = [(s["server"]["name"], s["server"]["version"]) for s in items]
                assert len(pairs) == len(set(pairs)), pairs
                origin: dict[str, str] = {}
                for s in items:
                    name, where = s["server"]["name"], s["server"]["description"]
                    assert origin.setdefault(name, where) == where, (name, items)
                assert {p[0] for p in pairs} == set(names)  # nobody lost in a move
        finally:
            stop.set()
            flipper.join(10)
        assert flips >= 5
        runs = httpx.get(f"{process.internal}/metrics", timeout=5).text
        assert 'registry_sync_runs_total{result="synced",source="first"}' in runs
