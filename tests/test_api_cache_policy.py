"""The response cache's admission rule through a real ``serve`` process (``api/cache.py``).

A cache smaller than a walk of one-server pages: a repeated walk (what an ``api`` source syncing
from this server does) keeps getting the pages the cache holds as hits, where a plain
least-recently-used map would have evicted each just before the walk came back to it; a single
pass does not push out a page that clients keep asking for; and after a sync the new
generation's pages take the old ones' places. Then the frequency sketch alone (no database):
its size within any bound, its estimates, its halving.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from api_fixtures import make_env
from conftest import TestDatabase
from serving import running, server_json, write_registry
from test_api_cache import LIST, _cache_counts, _config, _one, _pairs
from waiting import wait_until

NAMES = [f"io.example/s{i:02d}" for i in range(40)]
#: room for about ten one-server pages (each about 1.1 KB with its key and overhead) beside the
#: sketch's 1,024 counters
BOUND = 12_000


def _walk(base: str, process: object) -> float:
    """Every page at limit=1; the hits it got."""
    before = _cache_counts(process).get("hit", 0.0)
    cursor: str | None = None
    seen = 0
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        response = httpx.get(f"{base}{LIST}", params=params, timeout=10)
        assert response.status_code == 200, response.text
        doc = response.json()
        seen += len(doc["servers"])
        cursor = doc["metadata"].get("nextCursor")
        if cursor is None:
            break
    assert seen == len(NAMES)
    return _cache_counts(process).get("hit", 0.0) - before


def _registry(tmp_path: Path, description: str = "") -> Path:
    extra = {"description": description} if description else {}
    return write_registry(tmp_path / "r.json", [server_json(n, "1.0.0", **extra) for n in NAMES])


def test_a_repeated_walk_larger_than_the_cache_gets_hits(
    database: TestDatabase, tmp_path: Path
) -> None:
    file = _registry(tmp_path)
    config = _config(
        tmp_path, database, {"local": file}, ["local"], {"responseCache": {"maxBytes": BOUND}}
    )
    with running(config, make_env(tmp_path), tmp_path) as process:
        wait_until(lambda: len(_pairs(process.base, f"{LIST}?limit=100")) == 40, 30, "synced")
        assert _walk(process.base, process) == 0
        held = _cache_counts(process)["entries"]
        assert 3 <= held < 40, held
        hits = [_walk(process.base, process) for _ in range(2)]
        assert all(h >= held // 2 for h in hits), (held, hits)
        assert _cache_counts(process)["bytes"] <= BOUND

        # a sync changes every page: the next walks get hits from the new generation
        _registry(tmp_path, "changed")
        wait_until(
            lambda: (
                _one(database, "SELECT count(*) FROM entry_version WHERE description = 'changed'")
                == 40
            ),
            30,
            "the changed file's sync committing",
        )
        assert _walk(process.base, process) == 0
        assert _walk(process.base, process) >= held // 2
        first = httpx.get(f"{process.base}{LIST}?limit=1", timeout=10).json()
        assert first["servers"][0]["server"]["description"] == "changed"


def test_a_single_pass_keeps_what_clients_keep_asking_for(
    database: TestDatabase, tmp_path: Path
) -> None:
    file = _registry(tmp_path)
    config = _config(
        tmp_path, database, {"local": file}, ["local"], {"responseCache": {"maxBytes": BOUND}}
    )
    with running(config, make_env(tmp_path), tmp_path) as process:
        wait_until(lambda: len(_pairs(process.base, f"{LIST}?limit=100")) == 40, 30, "synced")
        hot = f"{process.base}{LIST}?limit=3"
        for _ in range(3):
            assert httpx.get(hot, timeout=10).status_code == 200
        _walk(process.base, process)
        before = _cache_counts(process)["hit"]
        assert httpx.get(hot, timeout=10).status_code == 200
        assert _cache_counts(process)["hit"] == before + 1


def test_the_sketch_fits_any_bound_and_fades() -> None:
    """The sketch's counters (counted in the bound) never take more than a quarter of it; an
    estimate is never below the true count; after ``10 * width`` lookups they are halved."""
    from thv_registry.api.cache import _Frequencies, _sketch_width

    for bound in (1, 7, 100, 1000, 8000, 600_000, 32 * 2**20, 2**40):
        width = _sketch_width(bound)
        assert width & (width - 1) == 0 and (width == 1 or width <= bound // 4), (bound, width)
    sketch = _Frequencies(1024)
    keys = [("default", ("servers", i)) for i in range(200)]
    for i, key in enumerate(keys):
        for _ in range(i % 5 + 1):
            sketch.add(key)
    assert all(sketch.estimate(key) >= i % 5 + 1 for i, key in enumerate(keys))
    hot = ("default", "hot")
    while sketch.counted < 10 * 1024 - 1:
        sketch.add(hot)
    assert sketch.estimate(hot) == 255  # saturated
    before = sum(sketch.table)
    sketch.add(("default", "cold"))  # the 10,240th lookup: every counter halved
    assert sketch.counted == 10 * 1024 // 2
    assert sketch.estimate(hot) == 127 and sum(sketch.table) <= before // 2 + 4
