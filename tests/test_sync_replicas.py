"""Several ``serve`` replicas on one database, as real processes on loopback (always stopped):
each due source is synced once per interval by one replica and none is starved, readers
walking the API meanwhile see no 5xx, no torn page and no duplicate; a replica killed with
SIGKILL in the middle of writing a 10,000-server source loses its lease, the database keeps
serving the previous data, and another replica takes the source over and completes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from api_fixtures import make_env
from conftest import TestDatabase
from serving import ServeProcess, server_json, write_registry
from waiting import wait_until

LIST = "/registry/default/v0.1/servers"


def replica_config(
    path: Path,
    database: TestDatabase,
    sources: dict[str, tuple[Path, str]],
    **server: str,
) -> Path:
    """A serve config: ``sources`` (name -> (file, interval)), registry ``default`` over them."""
    s = database.server
    doc = {
        "database": {"host": s.host, "port": s.port, "user": s.user,
                     "database": database.name, "sslmode": "disable"},
        "auth": {"mode": "anonymous"},
        "sources": [
            {"name": n, "file": {"path": str(f)}, "syncPolicy": {"interval": every}}
            for n, (f, every) in sources.items()
        ],
        "registries": [{"name": "default", "sources": list(sources)}],
        "server": {"address": "127.0.0.1:0", "internalAddress": "127.0.0.1:0", **server},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@contextmanager
def replicas(n: int, config: Path, workdir: Path) -> Iterator[list[ServeProcess]]:
    """``n`` serve processes on one config, all ready; every one stopped afterwards."""
    env = make_env(workdir)
    with ExitStack() as stack:
        procs = []
        for _ in range(n):
            proc = ServeProcess(config, env, workdir)
            stack.callback(proc.stop)
            procs.append(proc)
        for proc in procs:
            try:
                proc.wait_ready()
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{proc.describe()}") from exc
        yield procs


class Walker(threading.Thread):
    """Walks the servers list through every replica in turn until stopped; records problems:
    a status other than 200, a page mixing two syncs of the ``gen`` source, a duplicate or an
    out-of-order (name, version) within one walk."""

    def __init__(self, bases: list[str], limit: int, gen: str = "io.github.gen/") -> None:
        super().__init__(name="walker", daemon=True)
        self.bases, self.limit, self.gen = bases, limit, gen
        self.dead: set[str] = set()  #: replicas the test is about to kill: no longer walked
        self.stop = threading.Event()
        self.problems: list[str] = []
        self.walks = self.pages = 0

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            turn = 0
            while not self.stop.is_set():
                base = self.bases[turn % len(self.bases)]
                turn += 1
                if base not in self.dead:
                    self._walk(client, base)

    def _walk(self, client: httpx.Client, base: str) -> None:
        seen: list[tuple[str, str]] = []
        cursor: str | None = None
        while True:
            params = {"limit": str(self.limit), **({"cursor": cursor} if cursor else {})}
            try:
                response = client.get(base + LIST, params=params)
            except httpx.TransportError as e:  # a replica stopping at the end, or killed
                if not self.stop.is_set() and base not in self.dead:
                    self.problems.append(f"{base}: {e!r}")
                return
            self.pages += 1
            if response.status_code != 200:
                self.problems.append(f"{base}: {response.status_code} {response.text[:200]}")
                return
            body = response.json()
            gens = {
                s["server"]["description"]
                for s in body["servers"]
                if s["server"]["name"].startswith(self.gen)
            }
            if len(gens) > 1:
                self.problems.append(f"torn page: {sorted(gens)}")
            seen += [(s["server"]["name"], s["server"]["version"]) for s in body["servers"]]
            cursor = body["metadata"].get("nextCursor")
            if not cursor:
                break
        if len(seen) != len(set(seen)):
            self.problems.append("a duplicate in one walk")
        names = [n for n, _ in seen]
        if names != sorted(names):
            self.problems.append("a walk out of order")
        self.walks += 1


def atomic_write(path: Path, servers: list[dict[str, Any]]) -> None:
    """Replace a registry file at once: a sync never reads half of it."""
    tmp = write_registry(path.with_suffix(".tmp"), servers)
    os.replace(tmp, path)


def attempts(database: TestDatabase) -> dict[str, list[tuple[Any, ...]]]:
    rows = database.query(
        "SELECT s.name, a.replica, a.started_at, a.ended_at, a.result FROM sync_attempt a"
        " JOIN source s ON s.id = a.source_id ORDER BY s.name, a.id"
    )
    found: dict[str, list[tuple[Any, ...]]] = {}
    for name, *rest in rows:
        found.setdefault(str(name), []).append(tuple(rest))
    return found


@pytest.mark.parametrize("n", [2, 3])
def test_replicas_sync_each_due_source_once_per_interval_while_readers_walk(
    n: int, database: TestDatabase, tmp_path: Path
) -> None:
    intervals = {"one": 1.0, "two": 1.0, "three": 2.0, "gen": 1.0}
    sources: dict[str, tuple[Path, str]] = {}
    for name in intervals:
        prefix = "io.github.gen" if name == "gen" else f"io.github.{name}"
        servers = [
            server_json(f"{prefix}/s{i:02d}", "1.0.0", description="gen 0") for i in range(40)
        ]
        sources[name] = (
            write_registry(tmp_path / f"{name}.json", servers),
            f"{intervals[name]:g}s",
        )
    config = replica_config(tmp_path / "c.yaml", database, sources, syncPollInterval="500ms")

    def rewrite_gen(gen: int) -> None:  # a source that really changes, all its rows at once
        servers = [
            server_json(f"io.github.gen/s{i:02d}", "1.0.0", description=f"gen {gen}")
            for i in range(40)
        ]
        atomic_write(sources["gen"][0], servers)

    with replicas(n, config, tmp_path) as procs:
        since = database.query("SELECT now()")[0][0]  # every replica is up from here
        walker = Walker([p.base for p in procs], limit=7)
        walker.start()
        for gen in range(1, 8):
            rewrite_gen(gen)
            time.sleep(1.0)
        walker.stop.set()
        walker.join(timeout=30)
        stopped_at = database.query("SELECT now()")[0][0]
    assert walker.problems == [], walker.problems[:5]
    assert walker.walks >= 5 and walker.pages >= 100, (walker.walks, walker.pages)

    history = attempts(database)
    holders: set[str] = set()
    late: dict[str, float] = {}
    for name, every in intervals.items():
        runs = [
            r for r in history[name] if r[1] >= since and r[2] is not None and r[2] < stopped_at
        ]
        starts = [r[1] for r in runs]
        gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
        # exactly once per interval: never two attempts in one interval, none skipped (late by
        # a poll of 0.5 s and a busy 2-core machine's delay at most); nothing overlaps
        assert all(every <= g < every + 1.5 for g in gaps), (name, gaps)
        # and none starved: attempts from the start to the end of the window
        assert (starts[0] - since).total_seconds() < every + 1.5, (name, starts[0], since)
        assert (stopped_at - starts[-1]).total_seconds() < every + 2.5, (name, starts[-1])
        assert all(a[2] is not None and a[2] <= b[1] for a, b in zip(runs, runs[1:], strict=False))
        assert {r[3] for r in runs} <= {"synced", "unchanged"}, (name, runs)
        holders |= {r[0] for r in runs}
        late[name] = round(max(gaps) - every, 3)
    assert len(holders) >= 2  # the work is shared
    print(json.dumps({"replicas": n, "walks": walker.walks, "pages": walker.pages,
                      "max_late_s": late, "replicas_that_synced": len(holders)}))  # fmt: skip
    assert "synced" in {r[3] for r in history["gen"] if r[1] >= since}
    # the last write of "gen" is served
    rows = database.query(
        "SELECT DISTINCT v.description FROM entry_version v JOIN registry_entry e"
        " ON e.id = v.entry_id WHERE e.name LIKE 'io.github.gen/%%'"
    )
    assert rows == [("gen 7",)]


def _big(path: Path, words: str, n: int = 10_000) -> None:
    servers = [
        server_json(f"io.github.big/server-{i:05d}", "1.0.0", description=words) for i in range(n)
    ]
    atomic_write(path, servers)


def _writing_holder(database: TestDatabase) -> str | None:
    """The lease holder of "big" while its write transaction is open and has written."""
    rows = database.query(
        "SELECT y.lease_holder FROM registry_sync y JOIN source s ON s.id = y.source_id"
        " WHERE s.name = 'big' AND y.lease_holder IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = current_database()"
        "  AND a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()"
        "  AND a.query ~* 'stage|entry_version|registry_entry|mcp_server|COPY')"
    )
    return str(rows[0][0]) if rows else None


def test_a_replica_killed_while_writing_loses_its_lease_and_another_completes(
    database: TestDatabase, tmp_path: Path
) -> None:
    big = tmp_path / "big.json"
    _big(big, "old")
    config = replica_config(
        tmp_path / "c.yaml", database, {"big": (big, "2s")},
        syncPollInterval="500ms", syncLease="3s",
    )  # fmt: skip

    def synced(words: str) -> bool:
        rows = database.query(
            "SELECT count(*), count(*) FILTER (WHERE v.description = %s) FROM entry_version v",
            (words,),
        )
        return rows[0] == (10_000, 10_000)

    with replicas(2, config, tmp_path) as procs:
        wait_until(lambda: synced("old"), 90, "the first sync of 10,000 servers")
        walker = Walker([p.base for p in procs], limit=100, gen="io.github.big/")
        walker.start()
        _big(big, "new")  # the next attempt rewrites every version
        holder = wait_until(lambda: _writing_holder(database), 60, "a replica writing 'big'")
        assert holder is not None
        victim = next(p for p in procs if holder.split(":")[1] == str(p.proc.pid))
        survivor = next(p for p in procs if p is not victim)
        walker.dead.add(victim.base)
        os.kill(victim.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.proc.wait(timeout=10)

        # the previous data is still what is served: whole, through the other replica
        page = httpx.get(f"{survivor.base}{LIST}", params={"limit": "100"}, timeout=10)
        assert page.status_code == 200
        assert {s["server"]["description"] for s in page.json()["servers"]} == {"old"}
        assert database.query("SELECT count(*) FROM entry_version WHERE description = 'new'") == [
            (0,)
        ]

        wait_until(lambda: synced("new"), 90, "the survivor completing the source")
        took = time.monotonic() - killed_at
        walker.stop.set()
        walker.join(timeout=60)
        # readers walking 10,000 servers all along: no 5xx, no torn page, no duplicate
        assert walker.problems == [] and walker.walks >= 1, (walker.problems[:5], walker.walks)
        status = database.query(
            "SELECT y.sync_status::text, y.attempt_count, y.server_count, y.lease_holder"
            " FROM registry_sync y"
        )[0]
        assert status[:3] in (("COMPLETED", 0, 10_000), ("IN_PROGRESS", 0, 10_000))
        history = attempts(database)["big"]
        lost = [r for r in history if r[0] == holder]
        assert lost[-1][3] == "lost"  # its attempt, closed by the replica that took over
        after = [r for r in history if r[1] > lost[-1][1]]
        assert after and after[0][0] != holder and after[0][3] == "synced"
        # not before the lease (3 s from its last renewal) expired
        assert (after[0][1] - lost[-1][1]).total_seconds() >= 2.0
        assert database.query("SELECT count(*) FROM mcp_server_package") == [(10_000,)]
        walk = httpx.get(f"{survivor.base}{LIST}", params={"limit": "100"}, timeout=10)
        assert {s["server"]["description"] for s in walk.json()["servers"]} == {"new"}
    print(json.dumps({"takeover_and_rewrite_s": round(took, 2), "walks": walker.walks,
                      "pages": walker.pages}))  # fmt: skip


def _gauge(proc: ServeProcess) -> float | None:
    text = httpx.get(f"{proc.internal}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("registry_config_mismatch "):
            return float(line.split()[1])
    return None


def test_replicas_with_different_configs_are_loud_not_destructive(
    database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    one = write_registry(tmp_path / "one.json", [server_json("io.github.one/s", "1.0.0")])
    two = write_registry(tmp_path / "two.json", [server_json("io.github.two/s", "1.0.0")])
    both = {"one": (one, "1m"), "two": (two, "1m")}
    old = replica_config(tmp_path / "old.yaml", database, both, syncPollInterval="500ms")
    new = replica_config(
        tmp_path / "new.yaml", database, {"one": (one, "1m")}, syncPollInterval="500ms"
    )
    env = make_env(tmp_path)
    with ExitStack() as stack:
        first = ServeProcess(old, env, tmp_path)
        stack.callback(first.stop)
        first.wait_ready()
        first.wait_synced()
        second = ServeProcess(new, env, tmp_path)
        stack.callback(second.stop)
        second.wait_ready()
        for proc in (first, second):

            def flagged(p: ServeProcess = proc) -> bool:
                return _gauge(p) == 1.0

            wait_until(flagged, 10, "the mismatch gauge at 1")
            ready = proc.readiness()
            assert ready is not None and ready.status_code == 200  # serving still works
        time.sleep(1.2)  # a few more polls
        warned = second.stderr.count("configuration mismatch: replicas ")
        assert warned >= 3, second.stderr  # at start-up and on every poll
        assert "must share one configuration" in first.stderr
        assert database.query("SELECT count(*) FROM source WHERE name = 'two'") == [(1,)]
        listed = subprocess.run(
            [sys.executable, "-m", "thv_registry", "sources", "--config", str(new)],
            env=cli_env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert listed.returncode == 0 and "Config mismatch: " in listed.stdout, listed.stderr
        first.stop()  # the old config's replica leaves: now every replica agrees
        assert first.proc.returncode == 0
        wait_until(lambda: _gauge(second) == 0.0, 10, "the mismatch gauge back at 0")
        wait_until(
            lambda: database.query("SELECT count(*) FROM source WHERE name = 'two'") == [(0,)],
            10,
            "the source only the old config named removed",
        )
        names = httpx.get(f"{second.base}{LIST}", timeout=5).json()["servers"]
        assert [s["server"]["name"] for s in names] == ["io.github.one/s"]
