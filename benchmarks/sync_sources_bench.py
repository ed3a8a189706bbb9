"""The git and api steps of ``sync_bench.py``: the same generated registry (N servers x V
versions) synced through a ``git`` source (a local bare repository, ``file://``) or an ``api``
source (a local ``serve`` process serving the file from its own database, read over loopback).

git: first sync (shallow fetch into an empty cache, validate, write), no-change re-syncs
(fetch finds the commit in the cache; same bytes), and a re-sync after a pushed commit that
changes 1% of the servers.
api: first sync (the v0.1 check, then every page at limit=100), no-change re-syncs with full
fetches (every page again, from the upstream's response cache at its default size; content hash
equal, nothing written; the cache's hits and misses are printed), and no-change re-syncs with
``fullResyncInterval`` set (incremental: one ``updated_since`` page that is empty; the
look-back margin is set to 0 for this, as the upstream was written seconds before).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.sync_bench import timed_syncs, write_file

__all__ = ["run_git", "run_api"]


def _settings(**source: Any) -> Any:
    from thv_registry.config import RegistrySettings, Settings, SourceSettings, SyncPolicy

    spec = SourceSettings(
        name="bench", sync_policy=SyncPolicy(interval=timedelta(hours=1)), **source
    )
    return Settings(
        sources=(spec,), registries=(RegistrySettings(name="default", sources=("bench",)),)
    )


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}  # fmt: skip
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


async def run_git(pool: Any, work: Path, servers: int, versions: int, repeat: int) -> list[str]:
    from thv_registry.config import GitSourceSettings

    if shutil.which("git") is None:
        return ["git: skipped (no git program)"]
    bare, tree = work / "origin.git", work / "tree"
    _git(work, "init", "-q", "--bare", "-b", "main", str(bare))
    tree.mkdir()
    _git(tree, "init", "-q", "-b", "main")
    write_file(tree / "registry.json", servers, versions)
    _git(tree, "add", "registry.json")
    _git(tree, "commit", "-q", "-m", "first")
    _git(tree, "push", "-q", str(bare), "main")
    size = (tree / "registry.json").stat().st_size
    lines = [f"git (file:// bare repository): {servers} x {versions}, {size / 1e6:.1f} MB file"]
    git = GitSourceSettings(repository=bare.as_uri(), branch="main", path="registry.json")
    timed = await timed_syncs(pool, _settings(git=git), lines, cache=work / "cache")
    first = await timed("first sync")
    same = [await timed("no-change re-sync") for _ in range(repeat)]
    write_file(tree / "registry.json", servers, versions, changed_every=100)
    _git(tree, "commit", "-q", "-am", "1% changed")
    _git(tree, "push", "-q", str(bare), "main")
    await timed("pushed commit, 1% of servers changed")
    lines.append(f"git medians: first {first:.3f} s, no-change {statistics.median(same):.3f} s")
    return lines


async def run_api(
    pool: Any, admin: str, work: Path, servers: int, versions: int, repeat: int
) -> list[str]:
    from benchmarks.api_bench import REGISTRY, Serve, create_database, drop_database, write_config
    from thv_registry.config import ApiSourceSettings

    path = work / "registry.json"
    write_file(path, servers, versions)
    name, block = create_database(admin)
    upstream = Serve(write_config(work / "upstream.yaml", block, path), work, "upstream")
    try:
        upstream.wait_started()
        result, seconds = upstream.wait_sync(1)
        assert result == "synced", upstream.err.read_text()
        endpoint = f"{upstream.base}/registry/{REGISTRY}"
        lines = [f"api (a local serve, its first sync took {seconds:.1f} s): {servers} x "
                 f"{versions} from {endpoint}"]  # fmt: skip
        full = ApiSourceSettings(endpoint=endpoint, timeout=timedelta(seconds=30))
        timed = await timed_syncs(pool, _settings(api=full), lines)
        first = await timed("first sync (full fetch)")
        before = upstream.cache_counts()
        same = [await timed("no-change re-sync, full fetch") for _ in range(repeat)]
        after = upstream.cache_counts()
        hits, misses = (after.get(k, 0.0) - before.get(k, 0.0) for k in ("hit", "miss"))
        lines.append(f"  the upstream's response cache over those re-syncs: {hits:.0f} hits, "
                     f"{misses:.0f} misses")  # fmt: skip
        incremental = ApiSourceSettings(
            endpoint=endpoint,
            timeout=timedelta(seconds=30),
            full_resync_interval=timedelta(hours=24),
        )
        # the upstream was written seconds ago, inside the 5-minute margin that incremental
        # fetches look back (fetchers.SKEW): without it they would fetch everything again here
        from thv_registry.sync import fetchers

        fetchers.SKEW = timedelta(0)
        timed = await timed_syncs(pool, _settings(api=incremental), lines)
        await timed("re-sync, incremental mode's first (a full fetch)")
        quick = [await timed("no-change re-sync, incremental") for _ in range(repeat)]
        lines.append(
            f"api medians: first {first:.3f} s, no-change full {statistics.median(same):.3f} s, "
            f"no-change incremental {statistics.median(quick):.3f} s; upstream serve peak RSS "
            f"{upstream.rss.peak_kb / 1024:.0f} MB"
        )
        return lines
    finally:
        upstream.stop()
        drop_database(admin, name)
