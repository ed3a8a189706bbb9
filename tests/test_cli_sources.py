"""``thv-registry-api sources``: the sync status of every source, read from the database, as a
user runs it (a subprocess), in text and JSON; a database without the schema is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from conftest import TestDatabase
from sync_helpers import migrate, server, settings, with_pool, write_registry
from thv_registry.sync import SyncService, lease

A, B = "io.github.acme/alpha", "io.github.acme/beta"


def sources(env: dict[str, str], config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thv_registry", "sources", "--config", str(config), *args],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_sources_lists_status_counts_failures_leases_and_a_config_mismatch(
    database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    migrate(database)
    good = write_registry(tmp_path / "good.json", [server(A, "1.0.0"), server(B, "1.0.0")])
    broken = write_registry(tmp_path / "broken.json", [server(A, "2.0.0")])
    conf = settings({"good": good, "broken": broken, "held": good})
    other = settings({"good": good})  # another config: without "broken" and "held"

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        service = SyncService(pool, conf)
        await service.reconcile()
        await service.sync_now("good")
        await service.sync_now("broken")
        broken.write_text("{oops")
        await service.sync_now("broken")
        claimed = await lease.claim(
            pool, service._ids["held"], "replica-b:42:cafe", timedelta(minutes=5)
        )
        assert claimed is not None
        await SyncService(pool, other).reconcile()  # a live replica with another config

    with_pool(database, body)
    config = database.write_config(tmp_path / "config.yaml")
    done = sources(cli_env, config, "--output", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["event"] == "sources" and doc["config_mismatch"] is True
    by_name = {s["name"]: s for s in doc["sources"]}
    assert list(by_name) == ["broken", "good", "held"]
    g = by_name["good"]
    assert (g["type"], g["created_by"], g["phase"], g["consecutive_failures"]) == (
        "file", "CONFIG", "COMPLETED", 0,
    )  # fmt: skip
    assert g["counts"] == {"servers": 2, "skills": 0, "versions": 2, "plugins_skipped": 0}
    assert g["last_success_at"] and g["lease_holder"] is None and g["interval_seconds"] == 300
    b = by_name["broken"]
    assert (b["phase"], b["consecutive_failures"], b["attempts"]) == ("FAILED", 1, 2)
    assert b["counts"]["servers"] == 1  # the last good sync's, still served
    assert "is not a valid upstream registry file" in b["message"]
    h = by_name["held"]
    assert (h["phase"], h["lease_holder"]) == ("IN_PROGRESS", "replica-b:42:cafe")
    assert len(doc["replicas"]) == 2
    assert len({r["config_fingerprint"] for r in doc["replicas"]}) == 2

    text = sources(cli_env, config)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("Sources in ") and "SOURCE" in lines[1] and "LEASE" in lines[1]
    assert any(ln.startswith("held") and "replica-b:42:cafe" in ln for ln in lines)
    assert any(ln.startswith("broken") and "FAILED" in ln for ln in lines)
    assert any("is not a valid upstream registry file" in ln for ln in lines)
    assert any(ln.startswith("Config mismatch: ") for ln in lines), text.stdout
    assert any(ln.startswith("Replicas: 2 live") for ln in lines)


def test_sources_on_a_database_without_the_schema_says_to_migrate(
    database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    config = database.write_config(tmp_path / "config.yaml")
    done = sources(cli_env, config)
    assert done.returncode == 8, done.stderr
    assert "has no sync status to show (no schema version" in done.stderr
    assert "migrate up" in done.stderr and "Traceback" not in done.stderr
    done = sources(cli_env, config, "--output", "json", "--log-format", "json")
    assert done.returncode == 8 and done.stdout == ""
    assert json.loads(done.stderr.splitlines()[-1])["exit_code"] == 8


def test_sources_with_a_config_error_exits_3(tmp_path: Path, cli_env: dict[str, str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("database:\n  port: nope\n")
    done = sources(cli_env, bad)
    assert done.returncode == 3 and str(bad) in done.stderr and "Traceback" not in done.stderr


def test_sources_without_config_reads_the_embedded_server(
    pg_server: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """No --config: the embedded PostgreSQL, as serve and migrate use it (here the test
    session's own embedded server, so nothing new is started)."""
    from conftest import TEST_STATE_DIR

    if pg_server.kind != "embedded":
        pytest.skip("the test server is not the embedded one")
    env = {**cli_env, "THV_REGISTRY_EMBEDDED_DIR": str(TEST_STATE_DIR / "pgdata")}
    done = subprocess.run(
        [sys.executable, "-m", "thv_registry", "sources"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )  # fmt: skip
    assert "Using the embedded PostgreSQL" in done.stderr, done.stderr
    if done.returncode == 8:  # its default database was never migrated
        assert "has no sync status to show" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("Sources in ")
