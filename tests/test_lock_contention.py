"""Lock contention, the production outage pattern: a session holds ACCESS SHARE on a table in an
open transaction and a migration ALTERs the table. The migration's ACCESS EXCLUSIVE request
queues, and every later reader queues behind it. lock_timeout bounds that queueing: a reader
never waits much longer than lock_timeout, the step is retried after a pause (when the readers
get through), and the final failure names the blocker. If the blocker goes away meanwhile, the
migration succeeds. The bounds escalate (GitLab's with_lock_retries): 100 ms first, each retry
longer, the configured lock_timeout last, so readers usually wait a fraction of a second.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import TestDatabase, write_migrations
from thv_registry.cli.hints import describe
from thv_registry.config import ConnectionParams
from thv_registry.errors import ExitCode, TableLockTimeout
from thv_registry.migrations import Migrator, Source, Up
from thv_registry.migrations.engine.lock import lock_key
from thv_registry.migrations.engine.transactional import lock_timeout_schedule
from waiting import wait_until

LOCK_TIMEOUT_MS = 200
MARGIN_S = 0.3  #: generous: the bound is lock_timeout, the margin absorbs a loaded 2-core box
BLOCKER_QUERY = "SELECT count(*) FROM accounts /* long report */"

SET = {
    "000001_accounts.up.sql": "CREATE TABLE accounts (id int PRIMARY KEY);\n"
    "INSERT INTO accounts SELECT generate_series(1, 100);\n",
    "000001_accounts.down.sql": "DROP TABLE accounts;\n",
    "000002_email.up.sql": "ALTER TABLE accounts ADD COLUMN email text;\n",
    "000002_email.down.sql": "ALTER TABLE accounts DROP COLUMN email;\n",
}


def params(db: TestDatabase) -> ConnectionParams:
    s = db.server
    return ConnectionParams(s.host, s.port, s.user, db.name, "disable")


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "m", SET)


@pytest.fixture
def at_version_1(database: TestDatabase, migrations: Path) -> TestDatabase:
    Migrator(params(database), Source.from_directory(migrations)).apply(Up(1))
    return database


@pytest.fixture
def blocker(at_version_1: TestDatabase) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A session holding ACCESS SHARE on accounts in an open transaction (idle in transaction)."""
    with at_version_1.connect(application_name="report job") as conn:
        conn.execute("BEGIN")
        conn.execute(BLOCKER_QUERY)
        yield conn


class Reader(threading.Thread):
    """Reads the table every 10 ms from its own session; records each read's latency."""

    def __init__(self, db: TestDatabase) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self.db.connect() as conn:
            while not self.stop.is_set():
                t0 = time.monotonic()
                conn.execute("SELECT count(*) FROM accounts").fetchone()
                self.latencies.append(time.monotonic() - t0)
                time.sleep(0.01)


def migrator(db: TestDatabase, migrations: Path, retries: int = 2) -> Migrator:
    return Migrator(
        params(db),
        Source.from_directory(migrations),
        lock_timeout_ms=LOCK_TIMEOUT_MS,
        lock_retries=retries,
    )


def columns(db: TestDatabase) -> set[str]:
    rows = db.query(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'accounts'::regclass AND attnum > 0"
    )
    return {str(r[0]) for r in rows}


@pytest.mark.slow
def test_readers_wait_at_most_lock_timeout_and_the_failure_names_the_blocker(
    at_version_1: TestDatabase,
    migrations: Path,
    blocker: psycopg.Connection[tuple[object, ...]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    blocker_pid = blocker.info.backend_pid
    reader = Reader(at_version_1)
    reader.start()
    wait_until(lambda: reader.latencies, 10, "the reader's first read", alive=reader)
    try:
        with pytest.raises(TableLockTimeout) as err:
            migrator(at_version_1, migrations).apply(Up())
    finally:
        reader.stop.set()
        reader.join(10)
    worst = max(reader.latencies)
    with capsys.disabled():
        print(f"\nreader: {len(reader.latencies)} reads, worst latency {worst * 1000:.0f} ms")
    assert worst < LOCK_TIMEOUT_MS / 1000 + MARGIN_S
    assert len(reader.latencies) > 20  # it kept reading while the migration retried

    message = str(err.value)
    assert "could not get a table lock at " in message and "000002_email.up.sql:1:1" in message
    assert "within lock_timeout (100, 141, 200 ms) in 3 attempts" in message  # escalating
    assert f"Blocked by pid {blocker_pid} (report job" in message
    assert "holding ACCESS SHARE on accounts" in message and "idle in transaction" in message
    assert "its transaction open for " in message
    assert "last query (started " in message and BLOCKER_QUERY in message
    assert err.value.blocker_pids == (blocker_pid,)
    assert f"pg_terminate_backend({blocker_pid})" in describe(err.value)  # the CLI's advice
    assert "still at version 1, not dirty" in message
    assert err.value.sqlstate == "55P03"
    assert at_version_1.query("SELECT version, dirty FROM schema_migrations") == [(1, False)]
    assert "email" not in columns(at_version_1)


@pytest.mark.slow
def test_migration_succeeds_when_the_blocker_goes_away_during_the_retries(
    at_version_1: TestDatabase,
    migrations: Path,
    blocker: psycopg.Connection[tuple[object, ...]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="thv_registry")
    outcome: list[object] = []
    run = threading.Thread(
        target=lambda: outcome.append(migrator(at_version_1, migrations, retries=5).apply(Up()))
    )

    def retries() -> list[str]:
        return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]

    run.start()
    # the first attempt timed out, was rolled back, and named the blocker
    wait_until(retries, 60, "the migration's first retry", alive=run, interval=0.005)
    blocker.execute("COMMIT")  # the report finishes while the migration pauses
    run.join(60)
    assert outcome, "the migration did not succeed"
    assert "email" in columns(at_version_1)
    assert at_version_1.query("SELECT version, dirty FROM schema_migrations") == [(2, False)]
    assert f"pid {blocker.info.backend_pid} (report job" in retries()[0]
    assert "holding ACCESS SHARE on accounts" in retries()[0]


def test_lock_flags_override_the_config(
    at_version_1: TestDatabase,
    migrations: Path,
    blocker: psycopg.Connection[tuple[object, ...]],
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    config = tmp_path / "config.yaml"
    at_version_1.write_config(config)
    data = yaml.safe_load(config.read_text())
    data["migrations"] = {"lockTimeoutMs": 600000, "lockRetries": 50, "lockWaitSeconds": 600}
    config.write_text(yaml.safe_dump(data))

    def cli(*args: str, env: dict[str, str] = cli_env) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "thv_registry", "migrate", "up", "--yes", *args]
            + ["--config", str(config), "--migrations-dir", str(migrations)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    flags = cli("--lock-timeout", "100", "--lock-retries", "0")
    assert flags.returncode == ExitCode.MIGRATION_FAILED, flags.stderr
    assert "within lock_timeout (100 ms) in 1 attempt over" in flags.stderr
    assert f"Blocked by pid {blocker.info.backend_pid}" in flags.stderr
    assert "--lock-timeout MS and --lock-retries N" in flags.stderr

    env = dict(cli_env, THV_REGISTRY_LOCK_TIMEOUT="150", THV_REGISTRY_LOCK_RETRIES="1")
    by_env = cli(env=env)
    assert by_env.returncode == ExitCode.MIGRATION_FAILED, by_env.stderr
    assert "within lock_timeout (100, 150 ms) in 2 attempts" in by_env.stderr
    assert "retrying in 0.5 s with lock_timeout 150 ms (1 of 1)" in by_env.stderr

    blocker.execute("ROLLBACK")
    key = lock_key("public", "schema_migrations", at_version_1.name)
    with at_version_1.connect(application_name="other migrator") as other:
        other.execute("SELECT pg_advisory_lock(%s)", (key,))
        waited = cli("--lock-wait", "0.3")
    assert waited.returncode == ExitCode.LOCK_TIMEOUT, waited.stderr
    assert "did not release it within 0.3 s" in waited.stderr and "other migrator" in waited.stderr

    bad = cli("--lock-timeout", "-5")
    assert bad.returncode == ExitCode.USAGE and "--lock-timeout" in bad.stderr
    assert at_version_1.query("SELECT version, dirty FROM schema_migrations") == [(1, False)]


def test_the_lock_timeout_schedule_escalates_to_the_maximum() -> None:
    assert lock_timeout_schedule(5000, 3) == (100, 368, 1357, 5000)
    assert lock_timeout_schedule(4000, 3) == (100, 342, 1170, 4000)
    assert lock_timeout_schedule(200, 2) == (100, 141, 200)
    assert lock_timeout_schedule(5000, 0) == (5000,)  # no retry: the one attempt gets it all
    assert lock_timeout_schedule(80, 2) == (80, 80, 80)  # at or below the first bound
    assert lock_timeout_schedule(0, 1) == (0, 0)  # 0: no limit
    bounds = lock_timeout_schedule(600000, 50)
    assert bounds[0] == 100 and bounds[-1] == 600000 and list(bounds) == sorted(bounds)


@pytest.mark.slow
def test_escalating_bounds_keep_readers_moving_and_the_step_succeeds_mid_schedule(
    at_version_1: TestDatabase,
    migrations: Path,
    blocker: psycopg.Connection[tuple[object, ...]],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Maximum 4000 ms over 4 attempts (100, 342, 1170, 4000 ms): the blocker ends during the
    pause after the second attempt, so the third succeeds, and readers waited at most the
    second bound, never the configured maximum."""
    caplog.set_level(logging.WARNING, logger="thv_registry")
    reader = Reader(at_version_1)
    reader.start()
    wait_until(lambda: reader.latencies, 10, "the reader's first read", alive=reader)
    m = Migrator(
        params(at_version_1),
        Source.from_directory(migrations),
        lock_timeout_ms=4000,
        lock_retries=3,
    )
    outcome: list[object] = []
    started = time.monotonic()
    run = threading.Thread(target=lambda: outcome.append(m.apply(Up())))

    def retries() -> list[str]:
        return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]

    try:
        run.start()
        wait_until(lambda: len(retries()) >= 2, 60, "the second retry", alive=run, interval=0.005)
        blocker.execute("COMMIT")  # the report finishes while the migration pauses (1 s)
        run.join(60)
    finally:
        reader.stop.set()
        reader.join(10)
    elapsed = time.monotonic() - started
    assert outcome, "the migration did not succeed"
    assert at_version_1.query("SELECT version, dirty FROM schema_migrations") == [(2, False)]
    messages = retries()
    assert len(messages) == 2  # the third attempt got the lock
    assert (
        "(lock_timeout 100 ms)" in messages[0]
        and "with lock_timeout 342 ms (1 of 3)" in (messages[0])
    )
    assert (
        "(lock_timeout 342 ms)" in messages[1]
        and "with lock_timeout 1170 ms (2 of 3)" in (messages[1])
    )
    # the timing: two bounds and two pauses (0.5 s, 1 s) passed, far less than one 4 s bound
    assert 0.1 + 0.5 + 0.342 + 1.0 - 0.1 <= elapsed < 4.0 + MARGIN_S * 3
    worst = max(reader.latencies)
    with capsys.disabled():
        print(f"\nescalation: {elapsed:.2f} s in all, reader's worst wait {worst * 1000:.0f} ms")
    assert worst < 0.342 + MARGIN_S  # the second bound at most, never the 4000 ms maximum
