"""Set-up of the API benchmark (``benchmarks/api_bench.py``): wrk, the database, the serve
config, and the ``serve`` process with its resident-memory sampler and sync metrics."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import api_load

__all__ = ["cpu_seconds", "backend_pids", "Database", "RssSampler", "Serve", "create_database",
           "drop_database", "ensure_wrk", "find_database", "write_config", "REGISTRY"]  # fmt: skip

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REGISTRY = "default"
SERVING = re.compile(
    r"Serving the registry API on (\S+):(\d+) and the internal endpoints on \S+:(\d+)"
)


# --- set-up ------------------------------------------------------------------------------------


def ensure_wrk(install: bool) -> str:
    """Where the load comes from; with ``install``, ``apt-get install -y wrk`` when missing."""
    if api_load.wrk_path() is None and install and shutil.which("apt-get") and os.geteuid() == 0:
        print("installing wrk (apt-get update; apt-get install -y wrk) ...", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["apt-get", "update"], check=False, timeout=300, **quiet)  # type: ignore[call-overload]
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, timeout=300, **quiet)  # type: ignore[call-overload]
    return "wrk" if api_load.wrk_path() else "python"


@dataclass
class Database:
    admin: str  #: conninfo of the server's admin database
    which: str  #: said beside the figures
    stop: Callable[[], None] = field(default=lambda: None)


def find_database(url: str | None) -> Database:
    import psycopg

    if url:
        return Database(url, "the server given by --url")
    try:
        with psycopg.connect(LOCAL_URL, connect_timeout=2) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        return Database(LOCAL_URL, f"the local PostgreSQL {version[0] if version else ''} "
                        "on 127.0.0.1:5432 (its own settings)")  # fmt: skip
    except psycopg.OperationalError:
        from benchmarks.server import start_private_server

        server = start_private_server()
        return Database(server.url(), f"a private PostgreSQL {server.version} in a temp dir "
                        "(PostgreSQL's defaults)", server.stop)  # fmt: skip


def create_database(admin: str) -> tuple[str, dict[str, Any]]:
    """A fresh database: its name and the ``database:`` block of a serve config."""
    import psycopg

    name = f"thv_api_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(admin)
    block: dict[str, Any] = {
        "host": str(info.get("host", "127.0.0.1")),
        "port": int(str(info.get("port") or 5432)),
        "user": str(info.get("user", "postgres")),
        "database": name,
        "sslmode": "disable",
    }
    if info.get("password"):
        block["password"] = str(info["password"])
    return name, block


def drop_database(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_config(
    path: Path, database: dict[str, Any], registry_file: Path, cache_bytes: int | None = None
) -> Path:
    """A serve config whose source is due again one second after a sync, while the server
    looks for due sources only at start-up and then hourly: each serve started syncs once
    (the first a full sync, a restarted one a no-change re-sync), and nothing syncs during
    the load. ``cache_bytes``: ``server.responseCache.maxBytes`` (None: serve's default)."""
    import yaml

    doc = {
        "database": database,
        "auth": {"mode": "anonymous"},
        "sources": [
            {
                "name": "bench",
                "file": {"path": str(registry_file)},
                "syncPolicy": {"interval": "1s"},
            }
        ],  # fmt: skip
        "registries": [{"name": REGISTRY, "sources": ["bench"]}],
        "server": {
            "address": "127.0.0.1:0",
            "internalAddress": "127.0.0.1:0",
            "syncPollInterval": "1h",
        },  # fmt: skip
    }
    if cache_bytes is not None:
        doc["server"]["responseCache"] = {"maxBytes": cache_bytes}  # type: ignore[index]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# --- the serve process -------------------------------------------------------------------------


def _status_kb(pid: int, name: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(rf"^{name}:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) if found else 0


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


class RssSampler:
    """The resident memory of a process and its children (``serve`` and its sync process), from
    ``/proc/PID/status``, every 50 ms: the sum over the processes (for ``VmHWM``, the sum of
    each one's peak: an upper bound of their peak together)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def field_kb(self, name: str) -> int:
        return sum(_status_kb(pid, name) for pid in (self.pid, *_children(self.pid)))

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kb = max(self.peak_kb, self.field_kb("VmRSS"))

    def reset(self) -> None:
        self.peak_kb = self.field_kb("VmRSS")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Serve:
    """``python -m thv_registry serve --config FILE``, output in files, stopped by SIGTERM."""

    def __init__(self, config: Path, workdir: Path, tag: str) -> None:
        self.err = workdir / f"serve-{tag}.err"
        with (workdir / f"serve-{tag}.out").open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "thv_registry", "serve", "--config", str(config)],
                cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )  # fmt: skip
        self.rss = RssSampler(self.proc.pid)
        self.base = self.internal = ""

    def wait_started(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = SERVING.search(self.err.read_text(errors="replace"))
            if found:
                self.base = f"http://127.0.0.1:{found.group(2)}"
                self.internal = f"http://127.0.0.1:{found.group(3)}"
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"serve did not start:\n{self.err.read_text(errors='replace')}")

    def cache_counts(self) -> dict[str, float]:
        """The response cache's ``http_response_cache_total`` by result (hit, miss)."""
        import httpx

        text = httpx.get(f"{self.internal}/metrics", timeout=10).text
        found = re.findall(r'^http_response_cache_total\{result="(\w+)"\} (\S+)$', text, re.M)
        return {k: float(v) for k, v in found}

    def sync_metrics(self) -> tuple[dict[str, float], float, int]:
        """(runs by result, summed sync seconds, sync count) of source ``bench``."""
        import httpx

        text = httpx.get(f"{self.internal}/metrics", timeout=10).text
        runs: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("registry_sync_runs_total{") and 'source="bench"' in line:
                result = re.search(r'result="([^"]+)"', line)
                runs[result.group(1) if result else "?"] = float(line.rsplit(" ", 1)[1])
        total = re.search(
            r'^registry_sync_duration_seconds_sum\{source="bench"\} (\S+)', text, re.M
        )
        count = re.search(
            r'^registry_sync_duration_seconds_count\{source="bench"\} (\S+)', text, re.M
        )
        return (
            runs,
            float(total.group(1)) if total else 0.0,
            int(float(count.group(1))) if count else 0,
        )

    def wait_sync(self, count: int, timeout: float = 300) -> tuple[str, float]:
        """Wait until ``count`` syncs of ``bench`` finished: (result of the last, its seconds)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, float] = {}
        while time.monotonic() < deadline:
            runs, total, done = self.sync_metrics()
            if done >= count:
                last = max(runs, key=lambda r: runs[r] - seen.get(r, 0.0))
                return last, total
            seen = runs
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)  # often enough to see a first sync end before a quick re-sync
        raise RuntimeError(f"the sync did not finish:\n{self.err.read_text(errors='replace')}")

    def settle(self, synced_s: float, wait: float = 10) -> tuple[str, float] | None:
        """After the first sync, the poll may sync the source once more at once (it is due one
        second after its last attempt): wait ``wait`` s for it, so that it happens before the
        load; (its result, its seconds) if it came."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            runs, total, done = self.sync_metrics()
            if done >= 2:
                return max(runs, key=lambda r: runs[r] if r != "synced" else runs[r] - 1), (
                    total - synced_s
                )
            time.sleep(0.1)
        return None

    def stop(self) -> None:
        self.rss.stop()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used (``/proc/PID/stat``)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def backend_pids(conninfo: str, application_name: str) -> list[int]:
    """The PostgreSQL backends of one database opened by ``application_name``."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s",
            (application_name,),
        ).fetchall()
    return [int(r[0]) for r in rows]
