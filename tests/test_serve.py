"""``thv-registry-api serve`` as a process: start-up, refusals, readiness, replicas, shutdown."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_fixtures import make_env, seed_servers
from conftest import TestDatabase
from serving import (
    ServeProcess,
    free_port,
    running,
    serve_config,
    wait_port_closed,
    write_registry,
)
from waiting import wait_until

LIST = "/registry/default/v0.1/servers"
#: a page not asked for before: not in the response cache, so answering it reads the tables
UNCACHED = LIST + "?limit=29"


def _execute(database: TestDatabase, statement: str) -> None:
    with database.connect() as conn:
        conn.execute(statement)


def _conn(database: TestDatabase) -> dict[str, Any]:
    s = database.server
    return {"host": s.host, "port": s.port, "user": s.user, "database": database.name}


@pytest.fixture
def setup(database: TestDatabase, tmp_path: Path) -> dict[str, Any]:
    """A serve config on the test database (nothing started)."""
    registry = write_registry(tmp_path / "registry.json", seed_servers())
    config = serve_config(
        tmp_path / "config.yaml", _conn(database), registry, server={"shutdownTimeout": "20s"}
    )
    return {"config": config, "env": make_env(tmp_path), "workdir": tmp_path}


def _running(setup: dict[str, Any], **kwargs: Any) -> Any:
    return running(setup["config"], setup["env"], setup["workdir"], **kwargs)


def _serve_cli(setup: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "thv_registry", "serve", "--config", str(setup["config"])]
    return subprocess.run(
        [*argv, *args], env=setup["env"], cwd=setup["workdir"], stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _migrated(setup: dict[str, Any]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "thv_registry", "migrate", "up", "--yes",
         "--config", str(setup["config"])],
        env=setup["env"], cwd=setup["workdir"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_start_up_says_database_sources_and_url(setup: dict[str, Any]) -> None:
    with _running(setup) as process:
        listed = httpx.get(process.base + LIST, timeout=5).json()
        assert listed["metadata"]["count"] == len(listed["servers"]) > 0
        health = httpx.get(process.internal + "/health", timeout=5)
        assert health.json() == {"status": "healthy"}
        version = httpx.get(process.internal + "/version", timeout=5).json()
        assert set(version) == {"version", "commit", "build_date", "python_version", "platform"}
        err = process.stderr
        assert "Database:" in err and "local" in err
        assert f"curl {process.base}/registry/default/v0.1/servers" in err
        assert "Traceback" not in err


def test_dirty_schema_is_refused_with_exit_9(setup: dict[str, Any], database: TestDatabase) -> None:
    _migrated(setup)
    _execute(database, "UPDATE schema_migrations SET dirty = true")
    done = _serve_cli(setup)
    assert done.returncode == 9, done.stderr
    assert "dirty" in done.stderr.lower() and "Traceback" not in done.stderr


def test_newer_schema_is_refused_with_exit_8(setup: dict[str, Any], database: TestDatabase) -> None:
    _migrated(setup)
    _execute(database, "UPDATE schema_migrations SET version = 9999")
    done = _serve_cli(setup)
    assert done.returncode == 8, done.stderr
    assert "9999" in done.stderr and "Traceback" not in done.stderr


def test_invalid_config_exits_3_naming_file_and_line(setup: dict[str, Any]) -> None:
    config: Path = setup["config"]
    config.write_text(config.read_text() + "bogusKey: 1\n")
    done = _serve_cli(setup)
    assert done.returncode == 3, done.stderr
    assert str(config) in done.stderr and "bogusKey" in done.stderr


def test_busy_port_is_refused_before_migrating(
    setup: dict[str, Any], database: TestDatabase
) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = _serve_cli(setup, "--address", f"127.0.0.1:{port}")
    assert done.returncode == 2, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and "--address" in done.stderr
    assert "schema_migrations" not in database.tables()  # nothing ran


def test_flags_beat_the_config_addresses(setup: dict[str, Any]) -> None:
    public = free_port()
    extra = ("--address", f"127.0.0.1:{public}", "--internal-address", "127.0.0.1:0")
    with _running(setup, synced=False, extra=extra) as process:
        assert process.public_port == public
        assert httpx.get(f"http://127.0.0.1:{public}/openapi.json", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("break_it", "mend_it", "reason"),
    [
        ("UPDATE schema_migrations SET dirty = true",
         "UPDATE schema_migrations SET dirty = false", "dirty at version"),
        ("UPDATE schema_migrations SET version = version + 1",
         "UPDATE schema_migrations SET version = version - 1", "newer than this build's"),
        ("ALTER TABLE schema_migrations RENAME TO sm_away",
         "ALTER TABLE sm_away RENAME TO schema_migrations", "no version"),
    ],
)  # fmt: skip
def test_readiness_503_with_the_reason_then_200_again(
    setup: dict[str, Any], database: TestDatabase, break_it: str, mend_it: str, reason: str
) -> None:
    with _running(setup, synced=False) as process:
        _execute(database, break_it)
        response = httpx.get(process.internal + "/readiness", timeout=5)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not ready" and reason in body["reason"], body
        assert httpx.get(process.internal + "/health", timeout=5).status_code == 200
        _execute(database, mend_it)
        response = httpx.get(process.internal + "/readiness", timeout=5)
        assert response.status_code == 200 and response.json() == {"status": "ready"}


def test_sigterm_finishes_in_flight_requests_then_exits_0(
    setup: dict[str, Any], database: TestDatabase
) -> None:
    with _running(setup) as process:
        results: list[httpx.Response | BaseException] = []
        with database.connect() as blocker:
            blocker.autocommit = False
            blocker.execute("LOCK TABLE entry_version IN ACCESS EXCLUSIVE MODE")

            def request() -> None:
                try:
                    results.append(httpx.get(process.base + UNCACHED, timeout=30))
                except BaseException as exc:  # reported by the assertion below
                    results.append(exc)

            thread = threading.Thread(target=request)
            thread.start()
            wait_until(
                lambda: database.query(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                ),
                15,
                "the list request waiting on the locked table",
            )
            process.signal(signal.SIGTERM)
            wait_port_closed(process.public_port)
            with pytest.raises(httpx.TransportError):  # no longer accepting
                httpx.get(process.base + LIST, timeout=2)
            assert process.proc.poll() is None  # still draining
            blocker.rollback()
        thread.join(30)
        assert len(results) == 1 and isinstance(results[0], httpx.Response), results
        assert results[0].status_code == 200
        assert process.wait(30) == 0, process.describe()


def test_two_replicas_on_an_empty_database_both_become_ready(
    setup: dict[str, Any], database: TestDatabase
) -> None:
    processes = [ServeProcess(setup["config"], setup["env"], setup["workdir"]) for _ in range(2)]
    try:
        for process in processes:
            process.wait_ready()
        for process in processes:
            process.wait_synced()
        migrated = [p for p in processes if "Migrated the schema" in p.stderr]
        assert len(migrated) == 1, [p.stderr for p in processes]
        history = database.query(
            "SELECT version, count(*) FROM schema_migrations_history "
            "WHERE direction = 'up' GROUP BY version HAVING count(*) > 1"
        )
        assert history == []
    finally:
        for process in processes:
            process.stop()
    assert all(p.proc.returncode == 0 for p in processes), [p.describe() for p in processes]


def test_json_log_format_gives_json_access_lines(setup: dict[str, Any]) -> None:
    with _running(setup, global_args=("--log-format", "json")) as process:
        httpx.get(process.base + LIST, headers={"X-Request-ID": "trace-me-1"}, timeout=5)
        process.stop()
        lines = [json.loads(line) for line in process.stderr.splitlines() if line.strip()]
    access = [line for line in lines if line.get("request_id") == "trace-me-1"]
    assert len(access) == 1, lines
    entry = access[0]
    assert entry["method"] == "GET" and entry["path"] == LIST and entry["status"] == 200
    assert entry["bytes"] > 0 and entry["duration_ms"] >= 0


def test_sigint_twice_exits_at_once(setup: dict[str, Any], database: TestDatabase) -> None:
    with _running(setup) as process:
        with database.connect() as blocker:
            blocker.autocommit = False
            blocker.execute("LOCK TABLE entry_version IN ACCESS EXCLUSIVE MODE")
            thread = threading.Thread(
                target=lambda: _quietly(lambda: httpx.get(process.base + UNCACHED, timeout=30))
            )
            thread.start()
            wait_until(
                lambda: database.query(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                ),
                15,
                "the list request waiting on the locked table",
            )
            process.signal(signal.SIGINT)
            wait_port_closed(process.public_port)
            assert process.proc.poll() is None  # draining the blocked request
            process.signal(signal.SIGINT)
            assert process.wait(10) == 128 + signal.SIGINT
            blocker.rollback()
        thread.join(30)


def _quietly(call: Any) -> None:
    with contextlib.suppress(httpx.TransportError):
        call()


def test_without_config_serves_the_sample_registry_on_the_embedded_server(
    tmp_path: Path,
) -> None:
    env = make_env(tmp_path)
    env["THV_REGISTRY_EMBEDDED_DIR"] = str(tmp_path / "pgdata")
    extra = ("--address", "127.0.0.1:0", "--internal-address", "127.0.0.1:0")
    process = ServeProcess(None, env, tmp_path, extra=extra)
    try:
        process.wait_started(90)
        base = f"{process.base}/registry/default/v0.1"

        def listed() -> Any:
            try:
                response = httpx.get(f"{base}/servers", timeout=5)
            except httpx.TransportError:
                return None
            return response.status_code == 200 and response.json()["metadata"]["count"] > 0

        wait_until(listed, 90, "the sample registry being served", alive=process.proc)
        skills = httpx.get(f"{base}/x/dev.toolhive/skills", timeout=5).json()
        assert skills["metadata"]["count"] > 0
        process.signal(signal.SIGTERM)
        assert process.wait(30) == 0, process.describe()
        text = process.stderr
        assert "embedded PostgreSQL" in text and "Source sample" in text, text
        assert f"curl {process.base}/registry/default/v0.1/servers" in text
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{process.describe()}") from exc
    finally:
        process.stop()
        _stop_postgres(tmp_path / "pgdata")


def _stop_postgres(data_dir: Path) -> None:
    """Stop the embedded server this test started (fast shutdown), by its postmaster.pid."""
    import os

    pid_file = data_dir / "postmaster.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        wait_until(lambda: not pid_file.exists(), 30, "the embedded PostgreSQL stopping")


def test_a_database_failure_is_a_json_500_without_details(
    setup: dict[str, Any], database: TestDatabase
) -> None:
    with _running(setup) as process:
        _execute(database, "ALTER TABLE mcp_server_package RENAME TO gone")
        response = httpx.get(process.base + UNCACHED, timeout=10)
        assert response.status_code == 500
        assert response.json() == {"error": "internal server error"}
        assert response.headers["x-content-type-options"] == "nosniff"
        _execute(database, "ALTER TABLE gone RENAME TO mcp_server_package")
        assert httpx.get(process.base + LIST, timeout=10).status_code == 200
        process.stop()
        assert process.proc.returncode == 0
    assert "internal error answering GET" in process.stderr


def test_a_config_source_named_like_an_api_source_exits_3(
    setup: dict[str, Any], database: TestDatabase
) -> None:
    _migrated(setup)
    _execute(database, "INSERT INTO source (name, source_type, creation_type) "
                       "VALUES ('local', 'managed', 'API')")  # fmt: skip
    done = _serve_cli(setup)
    assert done.returncode == 3, done.stderr
    assert "'local'" in done.stderr and "created through the API" in done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
