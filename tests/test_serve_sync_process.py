"""``serve`` runs its sync in a child process (``sync/process.py``), on real processes:

- the child is ``python -m thv_registry.sync.worker`` at a lower CPU priority (nice +10), its
  connections are ``thv-registry-api sync`` in ``pg_stat_activity``, its log lines reach serve's
  stderr in serve's format, and its finished syncs reach serve's ``/metrics``;
- a child that dies is started again, and syncs;
- SIGTERM stops both and the replica is forgotten; SIGKILL of serve takes the child with it
  (its leases then expire, as when a machine dies);
- the configured password reaches the child over its socket, never in its command line or
  environment.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import httpx

from api_fixtures import make_env
from conftest import TestDatabase
from serving import ServeProcess, running, serve_config, server_json, write_registry
from waiting import wait_until

LIST = "/registry/default/v0.1/servers"
SYNC_APP = "thv-registry-api sync"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:  # field 4 of stat: the parent's pid
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _nice(pid: int) -> int:
    return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[16])


def _sync_child(serve: ServeProcess) -> int | None:
    kids = [p for p in _children(serve.proc.pid) if "thv_registry.sync.worker" in _cmdline(p)]
    return kids[0] if kids else None


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _conn(database: TestDatabase) -> dict[str, Any]:
    s = database.server
    return {"host": s.host, "port": s.port, "user": s.user, "database": database.name}


def _servers(n: int, words: str) -> list[dict[str, Any]]:
    return [server_json(f"io.example/p{i:03d}", "1.0.0", description=words) for i in range(n)]


def _setup(database: TestDatabase, tmp_path: Path, **conn: Any) -> tuple[Path, Path]:
    """A registry file of five servers and a serve config syncing it (source ``local``)."""
    registry = write_registry(tmp_path / "r.json", _servers(5, "one"))
    return registry, serve_config(tmp_path / "c.yaml", {**_conn(database), **conn}, registry)


def _descriptions(serve: ServeProcess) -> set[str]:
    body = httpx.get(f"{serve.base}{LIST}?limit=100", timeout=10).json()
    return {s["server"]["description"] for s in body["servers"]}


def _due_now(database: TestDatabase) -> None:
    """The source's interval is a minute: make it due at the next poll (2 s)."""
    database.query("UPDATE registry_sync SET next_due_at = now() RETURNING 1")


def test_the_sync_runs_in_a_lower_priority_child_that_reports_to_serve(
    database: TestDatabase, tmp_path: Path
) -> None:
    registry, config = _setup(database, tmp_path)
    with running(config, make_env(tmp_path), tmp_path) as serve:
        child = _sync_child(serve)
        assert child is not None, serve.describe()
        assert _nice(child) == _nice(serve.proc.pid) + 10 or _nice(child) == 19
        rows = database.query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND datname = current_database()",
            (SYNC_APP,),
        )
        assert int(str(rows[0][0])) >= 1
        metrics = httpx.get(f"{serve.internal}/metrics", timeout=5).text
        assert 'registry_sync_runs_total{result="synced",source="local"} 1.0' in metrics, metrics

        registry.write_text("{ not json")  # the next sync fails: the child logs why
        failed = "sync of source local failed"
        _due_now(database)
        wait_until(lambda: failed in serve.stderr, 30, "the child's warning in serve's log")
        line = next(x for x in serve.stderr.splitlines() if failed in x)
        assert line.startswith("warning: sync of source local failed: "), line


def test_a_child_that_dies_is_started_again_and_syncs(
    database: TestDatabase, tmp_path: Path
) -> None:
    registry, config = _setup(database, tmp_path)
    with running(config, make_env(tmp_path), tmp_path) as serve:
        first = _sync_child(serve)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: (
                "the sync process exited (exit code -9); starting it again in 1 s" in serve.stderr
            ),
            15,
            "serve saying it restarts the sync process",
            alive=serve.proc,
        )
        second = wait_until(lambda: _sync_child(serve), 15, "a new sync process", alive=serve.proc)
        assert second != first
        write_registry(registry, _servers(5, "two"))
        _due_now(database)
        wait_until(lambda: _descriptions(serve) == {"two"}, 30, "the new child's sync")
        assert httpx.get(f"{serve.internal}/readiness", timeout=5).status_code == 200


def test_sigterm_stops_both_and_sigkill_of_serve_takes_the_child(
    database: TestDatabase, tmp_path: Path
) -> None:
    registry, config = _setup(database, tmp_path)
    env = make_env(tmp_path)
    with running(config, env, tmp_path) as serve:
        first = _sync_child(serve)
        assert first is not None
        serve.signal(signal.SIGTERM)
        assert serve.wait(30) == 0, serve.describe()
        wait_until(lambda: not _alive(first), 10, "the sync process gone after SIGTERM")
    assert database.query("SELECT count(*) FROM sync_replica") == [(0,)]

    with running(config, env, tmp_path) as serve:
        child = _sync_child(serve)
        assert child is not None
        serve.proc.kill()
        serve.proc.wait(10)
        wait_until(lambda: not _alive(child), 10, "the sync process gone with serve (SIGKILL)")


def test_the_password_reaches_the_child_only_over_its_socket(
    database: TestDatabase, tmp_path: Path
) -> None:
    secret = "s3cret-for-the-sync-child"  # the test server trusts loopback: it is not checked
    _, config = _setup(database, tmp_path, password=secret)
    with running(config, make_env(tmp_path), tmp_path) as serve:
        child = _sync_child(serve)
        assert child is not None
        assert secret not in _cmdline(child)
        environ = (Path("/proc") / str(child) / "environ").read_bytes()
        assert secret.encode() not in environ
