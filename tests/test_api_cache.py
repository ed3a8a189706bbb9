"""The response cache through real ``serve`` processes: exactly as fresh as the database.

Each write path (a changed file synced by either of two replicas, a version deleted, a source
removed from a registry and a registry's order changed by reconciliation) is followed by the
very next request, sent as soon as the write is seen committed in the database (never through
the API): it shows the new data, though the same requests were being answered from the cache
just before (the hit counter in ``/metrics`` says so). Then the byte bound, the cached ETag's
304, the one (gzip) form an entry keeps, and the cache turned off.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from api_fixtures import make_env
from conftest import TestDatabase
from serving import running, serve_config, server_json, skill_json, write_registry
from sync_helpers import settings as sync_settings
from sync_helpers import with_pool
from waiting import wait_until

LIST = "/registry/default/v0.1/servers"
A, B, C = "io.example/alpha", "io.example/beta", "io.example/gamma"
SKILL = "/registry/default/v0.1/x/dev.toolhive/skills/io.example/writer"


def _conn(database: TestDatabase) -> dict[str, Any]:
    s = database.server
    return {"host": s.host, "port": s.port, "user": s.user, "database": database.name}


def _config(
    tmp: Path,
    database: TestDatabase,
    files: dict[str, Path],
    registry: list[str],
    server: dict[str, Any] | None = None,
) -> Path:
    """A serve config with file sources ``files`` (synced every second) and registry default."""
    path = serve_config(tmp / "config.yaml", _conn(database), next(iter(files.values())))
    doc = yaml.safe_load(path.read_text())
    doc["sources"] = [
        {"name": name, "file": {"path": str(f)}, "syncPolicy": {"interval": "1s"}}
        for name, f in files.items()
    ]
    doc["registries"] = [{"name": "default", "sources": registry}]
    doc["server"].update({"syncPollInterval": "1s", **(server or {})})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _cache_counts(process: Any) -> dict[str, float]:
    text = httpx.get(f"{process.internal}/metrics", timeout=5).text
    found = re.findall(r'^http_response_cache_total\{result="(\w+)"\} (\S+)$', text, re.M)
    gauges = re.findall(r"^http_response_cache_(bytes|entries) (\S+)$", text, re.M)
    return {k: float(v) for k, v in found + gauges}


def _pairs(base: str, path: str = LIST) -> list[tuple[str, str]]:
    response = httpx.get(f"{base}{path}", timeout=10)
    assert response.status_code == 200, response.text
    return [(s["server"]["name"], s["server"]["version"]) for s in response.json()["servers"]]


def _get(base: str, path: str) -> httpx.Response:
    return httpx.get(f"{base}{path}", timeout=10)


def _latest(base: str, name: str) -> str:
    response = _get(base, f"{LIST}/{name.replace('/', '%2F')}/versions/latest")
    assert response.status_code == 200, response.text
    return str(response.json()["server"]["version"])


def _warm(base: str, process: Any, paths: list[str]) -> None:
    """Each path twice: the second answer is a hit."""
    before = _cache_counts(process).get("hit", 0.0)
    for path in paths:
        first, second = _get(base, path), _get(base, path)
        assert first.status_code == second.status_code == 200, (path, second.text)
        assert first.content == second.content and first.headers["etag"] == second.headers["etag"]
    assert _cache_counts(process)["hit"] >= before + len(paths)


def _one(database: TestDatabase, query: str) -> object:
    with database.connect() as conn:
        row = conn.execute(query).fetchone()
    return row[0] if row else None


def test_a_sync_by_either_replica_is_served_by_both_at_once(
    database: TestDatabase, tmp_path: Path
) -> None:
    """A changed file (a new latest version, a vanished version, a new server, a new skill
    version), synced by whichever replica claims it: the next request to each replica, sent as
    soon as the sync's transaction is seen committed, shows all of it."""
    file = tmp_path / "registry.json"
    write_registry(
        file,
        [server_json(A, "1.0.0"), server_json(B, "1.0.0")],
        [skill_json("io.example", "writer", "1.0.0")],
    )
    config = _config(tmp_path, database, {"local": file}, ["local"])
    env = make_env(tmp_path)
    paths = [LIST, f"{LIST}/{A.replace('/', '%2F')}/versions/latest", SKILL]
    with running(config, env, tmp_path) as one, running(config, env, tmp_path) as two:
        for process in (one, two):
            assert _pairs(process.base) == [(A, "1.0.0"), (B, "1.0.0")]
            _warm(process.base, process, paths)
        write_registry(
            file,
            [server_json(A, "1.0.0"), server_json(A, "1.1.0"), server_json(C, "1.0.0")],
            [skill_json("io.example", "writer", "1.1.0")],
        )
        wait_until(
            lambda: (
                _one(database, "SELECT count(*) FROM entry_version WHERE version = '1.1.0'") == 2
            ),
            30,
            "the changed file's sync committing",
            interval=0.005,
        )
        for process in (one, two):  # the very next requests
            assert _pairs(process.base) == [(A, "1.1.0"), (A, "1.0.0"), (C, "1.0.0")]
            assert _latest(process.base, A) == "1.1.0"
            assert _get(process.base, SKILL).json()["version"] == "1.1.0"
            gone = _get(process.base, f"{LIST}/{B.replace('/', '%2F')}/versions/1.0.0").json()
            assert gone["_meta"]["io.modelcontextprotocol.registry/official"]["status"] == "deleted"
            with_deleted = _pairs(process.base, f"{LIST}?include_deleted=true")
            assert (B, "1.0.0") in with_deleted
        synced_by = {
            str(r[0])
            for r in database.query("SELECT replica FROM sync_attempt WHERE result IS NOT NULL")
        }
        print(f"syncs ran on {len(synced_by)} replica(s); both served the new data at once")


def test_reconciliation_is_served_at_once(database: TestDatabase, tmp_path: Path) -> None:
    """Another replica's start-up reconciliation changes the registry's source order, then
    removes a source from it: the next request shows each change."""
    first = write_registry(
        tmp_path / "one.json", [server_json(A, "1.0.0"), server_json(B, "1.0.0")]
    )
    second = write_registry(
        tmp_path / "two.json", [server_json(A, "2.0.0"), server_json(C, "1.0.0")]
    )
    files = {"one": first, "two": second}
    config = _config(tmp_path, database, files, ["one", "two"])

    def reconcile(order: tuple[str, ...]) -> None:
        from thv_registry.sync import SyncService

        sources: dict[str, Path | str] = dict(files)
        wanted = sync_settings(sources, {"default": order}, interval=timedelta(seconds=1))

        async def body(pool: Any) -> None:
            await SyncService(pool, wanted).reconcile()

        with_pool(database, body)

    with running(config, make_env(tmp_path), tmp_path) as process:
        wait_until(lambda: len(_pairs(process.base)) == 3, 30, "both sources synced")
        assert _pairs(process.base) == [(A, "1.0.0"), (B, "1.0.0"), (C, "1.0.0")]
        a_latest = f"{LIST}/{A.replace('/', '%2F')}/versions/latest"
        _warm(process.base, process, [LIST, a_latest])

        reconcile(("two", "one"))  # A is served from source two now
        assert _pairs(process.base) == [(A, "2.0.0"), (B, "1.0.0"), (C, "1.0.0")]
        assert _latest(process.base, A) == "2.0.0"

        _warm(process.base, process, [LIST, a_latest])
        reconcile(("one",))  # source two leaves the registry
        assert _pairs(process.base) == [(A, "1.0.0"), (B, "1.0.0")]
        c_latest = f"{LIST}/{C.replace('/', '%2F')}/versions/latest"
        assert _get(process.base, c_latest).status_code == 404


def test_the_byte_bound_holds_and_the_cached_etag_answers_304(
    database: TestDatabase, tmp_path: Path
) -> None:
    """A walk of 30 one-server pages through a cache of 8,000 bytes: the cache never holds
    more; a body whose stored (gzip) form is over the bound is never stored; a page asked for
    again gets in; a hit's ETag is the miss's, and 304s; a hit is gzip for a client that
    accepts it, plain for one that does not."""
    names = [f"io.example/s{i:02d}" for i in range(30)]
    servers = [server_json(n, "1.0.0") for n in names]
    # 12,000 random characters: no gzip form of a page with this server fits in 8,000 bytes
    servers[-1]["packages"][0]["environmentVariables"] = [
        {"name": "NOISE", "default": secrets.token_urlsafe(9000)}
    ]
    file = write_registry(tmp_path / "r.json", servers)
    bound = 8000
    config = _config(
        tmp_path, database, {"local": file}, ["local"], {"responseCache": {"maxBytes": bound}}
    )
    with running(config, make_env(tmp_path), tmp_path) as process:
        wait_until(lambda: len(_pairs(process.base, f"{LIST}?limit=100")) == 30, 30, "synced")
        walked: list[str] = []
        cursor: str | None = None
        while True:
            params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
            doc = httpx.get(f"{process.base}{LIST}", params=params, timeout=10).json()
            walked += [s["server"]["name"] for s in doc["servers"]]
            cursor = doc["metadata"].get("nextCursor")
            counts = _cache_counts(process)
            assert counts.get("bytes", 0.0) <= bound, counts
            if cursor is None:
                break
        assert walked == names
        counts = _cache_counts(process)
        assert 0 < counts["entries"] < 30 and counts["bytes"] <= bound, counts

        big = f"{LIST}?limit=100"  # about 22 KB, over 9 KB gzipped: never stored
        misses = _cache_counts(process)["miss"]
        assert _get(process.base, big).status_code == _get(process.base, big).status_code == 200
        assert _cache_counts(process)["miss"] == misses + 2

        # the cache is full of pages asked for once: a page asked for again wins a place
        page = f"{LIST}?limit=2"
        missed, _, hit = (_get(process.base, page) for _ in range(3))
        assert missed.headers["etag"] == hit.headers["etag"] and missed.content == hit.content
        hits = _cache_counts(process)["hit"]
        again = httpx.get(
            f"{process.base}{page}", headers={"If-None-Match": hit.headers["etag"]}, timeout=10
        )
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == hit.headers["etag"]
        assert _cache_counts(process)["hit"] == hits + 1

        # a hit for a client that accepts gzip: the entry's gzip form, the same tag and JSON
        plain = httpx.get(
            f"{process.base}{page}", headers={"Accept-Encoding": "identity"}, timeout=10
        )
        zipped = httpx.get(f"{process.base}{page}", headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert "content-encoding" not in plain.headers and len(plain.content) > 1024
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.headers["vary"] == "Accept-Encoding"
        assert zipped.content == plain.content == hit.content  # httpx decodes the gzip
        assert zipped.headers["etag"] == plain.headers["etag"] == hit.headers["etag"]
        assert _cache_counts(process)["hit"] == hits + 3
        assert _cache_counts(process)["bytes"] <= bound


def test_an_entry_holds_the_gzip_form_only(database: TestDatabase, tmp_path: Path) -> None:
    """A page of 1 KiB or more is kept gzip-compressed only: the cache's bytes are fewer than
    the plain body's; a client without gzip gets the same JSON and tag from that entry, and a
    miss for such a client stores the same single form."""
    names = [f"io.example/s{i:02d}" for i in range(30)]
    file = write_registry(tmp_path / "r.json", [server_json(n, "1.0.0") for n in names])
    config = _config(tmp_path, database, {"local": file}, ["local"])
    identity = {"Accept-Encoding": "identity"}
    with running(config, make_env(tmp_path), tmp_path) as process:
        wait_until(lambda: len(_pairs(process.base, f"{LIST}?limit=100")) == 30, 30, "synced")
        empty = _cache_counts(process)
        page = f"{process.base}{LIST}?limit=50"
        missed = httpx.get(page, headers=identity, timeout=10)  # a miss, for a plain client
        stored = _cache_counts(process)
        assert stored["entries"] == empty["entries"] + 1
        assert "content-encoding" not in missed.headers
        assert stored["bytes"] - empty["bytes"] < len(missed.content) / 2
        hits = [httpx.get(page, headers=h, timeout=10) for h in (identity, {})]
        assert hits[1].headers["content-encoding"] == "gzip"
        assert "content-encoding" not in hits[0].headers
        assert missed.content == hits[0].content == hits[1].content
        assert missed.headers["etag"] == hits[0].headers["etag"] == hits[1].headers["etag"]
        after = _cache_counts(process)
        assert after["hit"] == stored.get("hit", 0.0) + 2 and after["bytes"] == stored["bytes"]


def test_max_bytes_0_turns_the_cache_off(database: TestDatabase, tmp_path: Path) -> None:
    file = write_registry(tmp_path / "r.json", [server_json(A, "1.0.0")])
    config = _config(
        tmp_path, database, {"local": file}, ["local"], {"responseCache": {"maxBytes": 0}}
    )
    with running(config, make_env(tmp_path), tmp_path) as process:
        first, second = _get(process.base, LIST), _get(process.base, LIST)
        assert first.headers["etag"] == second.headers["etag"]
        tagged = httpx.get(
            f"{process.base}{LIST}", headers={"If-None-Match": first.headers["etag"]}, timeout=10
        )
        assert tagged.status_code == 304
        counts = _cache_counts(process)
        assert "hit" not in counts and "miss" not in counts, counts
