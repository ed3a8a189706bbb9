"""Issue 10's ``serve`` requirements that test_serve.py leaves unproven, on real processes:

- SIGTERM while a sync writes: exit 0, the source keeps its old rows or the new ones (never a
  mix), its status is not left in progress, and the next start syncs it;
- the pool is sized by ``database.maxOpenConns``: never more connections than that;
- ``/version`` names the commit and build date (git in a checkout, a stamp in a wheel);
- a schema newer than this release is refused with advice for serve (no ``--migrations-dir``);
- ``serve --help`` describes serve's ``--config``.
"""

from __future__ import annotations

import datetime
import importlib.util
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from api_fixtures import make_env, seed_servers
from conftest import REPO_ROOT, TestDatabase
from serving import running, serve_config, server_json, write_registry
from waiting import wait_until

LIST = "/registry/default/v0.1/servers"
APP = "thv-registry-api serve"  #: the serving pool's connections
SYNC_APP = "thv-registry-api sync"  #: the sync process's (sync/process.py)


def _conn(database: TestDatabase) -> dict[str, Any]:
    s = database.server
    return {"host": s.host, "port": s.port, "user": s.user, "database": database.name}


def _config(
    database: TestDatabase, tmp: Path, registry: Path, *, interval: str = "1m", **db: Any
) -> Path:
    config = serve_config(tmp / "config.yaml", {**_conn(database), **db}, registry)
    doc = yaml.safe_load(config.read_text())
    doc["sources"][0]["syncPolicy"]["interval"] = interval
    doc["server"]["syncPollInterval"] = "1s" if interval == "1s" else "1h"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    return config


def _many(n: int, words: str) -> list[dict[str, Any]]:
    return [server_json(f"io.example/s{i:05d}", "1.0.0", description=words) for i in range(n)]


def test_sigterm_during_a_sync_leaves_the_source_consistent(
    database: TestDatabase, tmp_path: Path
) -> None:
    n = 3000
    registry = write_registry(tmp_path / "registry.json", _many(n, "one"))
    config = _config(database, tmp_path, registry, interval="1s")
    env = make_env(tmp_path)
    with running(config, env, tmp_path) as process:
        write_registry(registry, _many(n, "two"))  # the next poll re-syncs every version

        def writing() -> bool:
            return bool(
                database.query(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND "
                    "state = 'active' AND datname = current_database() AND query ~* 'stage|COPY'",
                    (SYNC_APP,),
                )
            )

        wait_until(writing, 30, "serve's re-sync writing", alive=process.proc, interval=0.005)
        process.signal(signal.SIGTERM)
        assert process.wait(30) == 0, process.describe()
    rows = database.query("SELECT count(*), array_agg(DISTINCT description) FROM entry_version")
    assert rows[0][0] == n and rows[0][1] in (["one"], ["two"]), rows[0][1]
    assert database.query("SELECT count(*) FROM mcp_server_package") == [(n,)]
    (status,) = database.query("SELECT y.sync_status FROM registry_sync y")
    assert status[0] != "IN_PROGRESS", status
    with running(config, env, tmp_path) as again:  # the source syncs on the next start
        wait_until(
            lambda: database.query("SELECT DISTINCT description FROM entry_version") == [("two",)],
            30,
            "the re-sync after the restart",
            alive=again.proc,
        )
        assert httpx.get(f"{again.base}{LIST}?limit=1", timeout=5).json()["metadata"]["count"]


def test_the_pool_never_opens_more_than_max_open_conns(
    database: TestDatabase, tmp_path: Path
) -> None:
    registry = write_registry(tmp_path / "registry.json", seed_servers())
    config = _config(database, tmp_path, registry, maxOpenConns=2, maxIdleConns=1)
    with running(config, make_env(tmp_path), tmp_path) as process:
        results: list[int] = []

        def request() -> None:
            # a page not asked for before (not in the response cache): it reads the tables
            results.append(httpx.get(process.base + LIST + "?limit=29", timeout=30).status_code)

        def backends() -> int:
            rows = database.query(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                " AND datname = current_database()",
                (APP,),
            )
            return int(str(rows[0][0]))

        with database.connect() as blocker:
            blocker.autocommit = False
            blocker.execute("LOCK TABLE entry_version IN ACCESS EXCLUSIVE MODE")
            threads = [threading.Thread(target=request) for _ in range(6)]
            for thread in threads:
                thread.start()
            wait_until(
                lambda: (
                    database.query(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND application_name = %s AND datname = current_database()",
                        (APP,),
                    )
                    == [(2,)]
                ),
                15,
                "two pooled connections waiting on the locked table",
            )
            assert backends() == 2  # the other four requests wait for a connection
            metrics = httpx.get(process.internal + "/metrics", timeout=5).text
            assert 'db_pool_connections{state="open"} 2.0' in metrics, metrics
            blocker.rollback()
        for thread in threads:
            thread.join(30)
        assert results == [200] * 6


def test_version_names_the_commit_and_build_date(database: TestDatabase, tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "registry.json", seed_servers())
    config = _config(database, tmp_path, registry)
    with running(config, make_env(tmp_path), tmp_path, synced=False) as process:
        info = httpx.get(process.internal + "/version", timeout=5).json()
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "log", "-1", "--format=%H"], capture_output=True, text=True
    )
    if head.returncode != 0:  # not a git checkout: an installed wheel carries a stamp
        assert info["commit"] != "unknown"
    else:
        assert info["commit"] == head.stdout.strip(), info
    assert datetime.datetime.fromisoformat(info["build_date"]).tzinfo is not None, info


def _hook_module() -> Any:
    spec = importlib.util.spec_from_file_location("hatch_build", REPO_ROOT / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_wheel_stamp_names_the_commit_and_the_build_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook_module()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    stamp = hook.stamp(REPO_ROOT)
    assert stamp["build_date"] == "2023-11-14T22:13:20Z"
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
                          capture_output=True, text=True)  # fmt: skip
    assert stamp["commit"] == (head.stdout.strip() if head.returncode == 0 else "unknown")
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    outside = hook.stamp(tmp_path)  # not a git checkout
    assert outside["commit"] == "unknown"
    assert datetime.datetime.fromisoformat(outside["build_date"]).tzinfo is not None


def test_build_info_outside_a_checkout_is_unknown(tmp_path: Path) -> None:
    from thv_registry.buildinfo import UNKNOWN, _from_git

    info = _from_git(tmp_path)
    assert (info.commit, info.build_date) == (UNKNOWN, UNKNOWN)


def _serve(config: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "thv_registry", *args]
    return subprocess.run(argv, env=make_env(tmp_path), cwd=tmp_path, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_newer_schema_is_refused_with_advice_for_serve(
    database: TestDatabase, tmp_path: Path
) -> None:
    registry = write_registry(tmp_path / "registry.json", seed_servers())
    config = _config(database, tmp_path, registry)
    migrated = _serve(config, tmp_path, "migrate", "up", "--yes", "--config", str(config))
    assert migrated.returncode == 0, migrated.stderr
    with database.connect() as conn:
        conn.execute("UPDATE schema_migrations SET version = 9999")
    done = _serve(config, tmp_path, "serve", "--config", str(config))
    assert done.returncode == 8, done.stderr
    err = " ".join(done.stderr.split())
    assert "9999" in err and "Serve with that release" in err, err
    assert "--migrations-dir" not in err and "Traceback" not in err, err


def test_serve_help_describes_its_config(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "thv_registry", "serve", "--help"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "sources, registries" in text and "sample registry" in text, text
    assert "migrate commands" not in text and "prime-db" not in text, text


def test_a_built_wheel_carries_the_stamp_and_reads_it(tmp_path: Path) -> None:
    import json
    import zipfile

    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(dist), str(REPO_ROOT)],
        check=True, cwd=tmp_path, capture_output=True, timeout=120,
    )  # fmt: skip
    (wheel,) = dist.glob("thv_registry-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        stamp = json.loads(archive.read("thv_registry/_build.json"))
        archive.extractall(tmp_path / "site")
    assert stamp["commit"] != "" and stamp["build_date"].endswith("Z"), stamp
    read = subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "from thv_registry.buildinfo import build_stamp as b; import thv_registry as t; "
         "print(t.__file__); print(b().commit, b().build_date)", str(tmp_path / "site")],
        cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines()  # fmt: skip
    assert read[0].startswith(str(tmp_path / "site")), read
    assert read[1] == f"{stamp['commit']} {stamp['build_date']}"


def test_pool_sizing_follows_the_go_keys() -> None:
    """maxOpenConns: the most connections; maxIdleConns: kept open while idle (at most the
    maximum); connMaxLifetime: a connection's life; 0 or unset: the defaults."""
    import os
    from datetime import timedelta

    from thv_registry.db.pool import PoolSizing

    sized = PoolSizing.from_settings(8, 3, timedelta(minutes=5))
    assert (sized.max_size, sized.min_size, sized.max_lifetime_s) == (8, 3, 300.0)
    assert PoolSizing.from_settings(2, 10, None).min_size == 2
    default = PoolSizing.from_settings(None, None, None)
    assert default.max_size == max(4, os.cpu_count() or 1) and default.min_size == 1
    assert default.max_lifetime_s == 3600.0
    assert PoolSizing.from_settings(0, 0, timedelta(0)) == default


def _runs(process: Any, result: str) -> float:
    text = httpx.get(process.internal + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f'registry_sync_runs_total{{result="{result}",source="local"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_serve_syncs_unchanged_changed_and_broken_files(
    database: TestDatabase, tmp_path: Path
) -> None:
    """Through a running serve (1 s interval): an unchanged file moves no row; a broken one keeps
    the old data served and counts the attempt; a changed one appears."""
    registry = write_registry(tmp_path / "registry.json", seed_servers())
    config = _config(database, tmp_path, registry, interval="1s")
    with running(config, make_env(tmp_path), tmp_path) as process:
        rows = "SELECT v.id, v.xmin::text, v.updated_at FROM entry_version v ORDER BY v.id"
        before = database.query(rows)
        wait_until(lambda: _runs(process, "unchanged") >= 2, 20, "two unchanged polls",
                   alive=process.proc)  # fmt: skip
        assert database.query(rows) == before  # nothing rewritten, no updated_at moved
        served = httpx.get(process.base + LIST, timeout=5).json()

        registry.write_text('{"version": "1.0.0", "data": {"servers": [{"name": 1}]}}')
        wait_until(lambda: _runs(process, "failed") >= 2, 20, "two failed attempts",
                   alive=process.proc)  # fmt: skip
        (attempts,) = database.query("SELECT attempt_count, message FROM registry_sync")
        assert int(str(attempts[0])) >= 2 and "data.servers[0]" in str(attempts[1]), attempts
        assert httpx.get(process.base + LIST, timeout=5).json() == served  # old data served

        write_registry(registry, [*seed_servers(), server_json("io.example/new", "1.0.0")])
        wait_until(
            lambda: httpx.get(f"{process.base}/registry/default/v0.1/servers/io.example%2Fnew"
                              "/versions/latest", timeout=5).status_code == 200,
            20, "the changed file's new server", alive=process.proc,
        )  # fmt: skip
        (status,) = database.query("SELECT sync_status, attempt_count FROM registry_sync")
        assert status == ("COMPLETED", 0), status


def test_a_wheel_built_from_the_sdist_keeps_the_stamp(tmp_path: Path) -> None:
    """The sdist carries the stamp (its tree has no git), so a wheel built from it keeps it."""
    import json
    import tarfile
    import zipfile

    build = [sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(tmp_path)]
    subprocess.run([*build, str(REPO_ROOT)], check=True, capture_output=True, timeout=180)
    (sdist,) = tmp_path.glob("thv_registry-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (tree,) = (tmp_path / "unpacked").iterdir()
    stamp = json.loads((tree / "src" / "thv_registry" / "_build.json").read_text())
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(tree)],
        check=True, cwd=tmp_path, capture_output=True, timeout=180,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("thv_registry-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert json.loads(archive.read("thv_registry/_build.json")) == stamp
        assert archive.namelist().count("thv_registry/_build.json") == 1
