"""Issue 9, sections 2-3 and bugs 5.2-5.3: state the user's SQL cannot move, settings it cannot
bend, errors as data with the CLI's words, and golang-migrate's dirty flag told apart from ours.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import TestDatabase, write_migrations
from thv_registry.cli.hints import describe
from thv_registry.config import ConnectionParams
from thv_registry.errors import (
    DirtyRecovery,
    ExitCode,
    LockTimeout,
    MigrationFailed,
    TableLockTimeout,
)
from thv_registry.migrations import Migrator, Source, Up
from thv_registry.migrations.engine.lock import lock_key
from thv_registry.migrations.engine.model import (
    HistoryDirection,
    HistoryEntry,
    Migration,
    MigrationFile,
    VersionState,
)
from thv_registry.migrations.engine.planner import dirty_error

PG_DUMP_PREAMBLE = "SELECT pg_catalog.set_config('search_path', '', false);\n"

Run = Callable[..., subprocess.CompletedProcess[str]]


def migrator(db: TestDatabase, root: Path, **kwargs: object) -> Migrator:
    s = db.server
    params = ConnectionParams(
        host=s.host, port=s.port, user=s.user, dbname=db.name, sslmode="disable"
    )
    return Migrator(params, Source.from_directory(root), **kwargs)  # type: ignore[arg-type]


def state(db: TestDatabase) -> list[tuple[object, ...]]:
    return db.query("SELECT version, dirty FROM public.schema_migrations")


def cli(db_config: Path, migrations: Path, env: dict[str, str]) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "thv_registry", "migrate", *args]
            + ["--config", str(db_config), "--migrations-dir", str(migrations)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


# -- section 3: the state tables are qualified ---------------------------------------------------


def test_a_step_that_empties_search_path_applies_and_the_next_step_works(
    database: TestDatabase, tmp_path: Path, config_file: Path, cli_env: dict[str, str]
) -> None:
    """pg_dump's preamble used to make the state update fail (exit 1, internal error)."""
    files = {
        "000001_dump.up.sql": PG_DUMP_PREAMBLE + "CREATE TABLE public.t (id int);\n",
        "000001_dump.down.sql": PG_DUMP_PREAMBLE + "DROP TABLE public.t;\n",
        "000002_next.up.sql": "CREATE TABLE public.t2 (id int);\n",
        "000002_next.down.sql": "DROP TABLE public.t2;\n",
        "000003_idx.up.sql": "CREATE INDEX CONCURRENTLY t_id ON public.t (id);\n",
        "000003_idx.down.sql": "DROP INDEX CONCURRENTLY public.t_id;\n",
    }
    root = write_migrations(tmp_path / "m", files)
    # the migration lock is golang-migrate's key for the schema read before the first step
    key = lock_key("public", "schema_migrations", database.name)
    with database.connect() as other:
        other.execute("SELECT pg_advisory_lock(%s)", (key,))
        with pytest.raises(LockTimeout) as waited:
            migrator(database, root, lock_wait_s=0.2).apply(Up())
    assert waited.value.key == key

    run = cli(config_file, root, cli_env)
    up = run("up", "--yes")  # one session: steps 2 and 3 run after search_path was emptied
    assert up.returncode == 0, up.stderr
    assert state(database) == [(3, False)]
    assert {"t", "t2"} <= database.tables()
    history = database.query(
        "SELECT version, direction FROM public.schema_migrations_history ORDER BY id"
    )
    assert history == [(0, "baseline"), (1, "up"), (2, "up"), (3, "up")]
    down = run("down", "-n", "0", "--yes", "--no-backup")
    assert down.returncode == 0, down.stderr
    assert state(database) == []
    assert "t" not in database.tables()


def test_a_failed_state_update_inside_a_step_is_a_failed_step(
    database: TestDatabase, tmp_path: Path, config_file: Path, cli_env: dict[str, str]
) -> None:
    """A step that renames the history table: the step's version update fails in its own
    transaction, so the step is rolled back (exit 11), never exit 1 "internal error"."""
    files = {
        "000001_a.up.sql": "CREATE TABLE a (id int);\n",
        "000001_a.down.sql": "DROP TABLE a;\n",
        "000002_tidy.up.sql": (
            "CREATE TABLE b (id int);\n"
            "ALTER TABLE schema_migrations_history RENAME TO old_history;\n"
        ),
        "000002_tidy.down.sql": "DROP TABLE b;\n",
    }
    root = write_migrations(tmp_path / "m", files)
    run = cli(config_file, root, cli_env)
    failed = run("up", "--yes")
    assert failed.returncode == ExitCode.MIGRATION_FAILED, failed.stderr
    assert "Traceback" not in failed.stderr and "internal" not in failed.stderr
    assert "000002_tidy (up) ran, but recording it in schema_migrations" in failed.stderr
    assert "schema_migrations_history" in failed.stderr and "42P01" in failed.stderr
    assert "still at version 1, not dirty" in failed.stderr
    assert "must leave schema_migrations and its history table in place" in failed.stderr
    assert state(database) == [(1, False)]
    assert "b" not in database.tables() and "schema_migrations_history" in database.tables()

    with pytest.raises(MigrationFailed) as err:
        migrator(database, root).apply(Up())
    assert (err.value.phase, err.value.sqlstate) == ("recording", "42P01")
    assert err.value.step is not None and (err.value.step.version, err.value.step.before) == (2, 1)
    assert err.value.recovery is None  # transactional: nothing to recover


def test_a_failed_state_update_after_a_non_transactional_step_says_force_it(
    database: TestDatabase, tmp_path: Path
) -> None:
    files = {
        "000001_a.up.sql": "CREATE TABLE a (id int);\n",
        "000001_a.down.sql": "DROP TABLE a;\n",
        "000002_idx.up.sql": (
            "ALTER TABLE schema_migrations_history RENAME TO old_history;\n"
            "CREATE INDEX CONCURRENTLY a_id ON a (id);\n"
        ),
        "000002_idx.down.sql": "DROP INDEX CONCURRENTLY a_id;\n",
    }
    with pytest.raises(MigrationFailed) as err:
        migrator(database, write_migrations(tmp_path / "m", files)).apply(Up())
    assert err.value.phase == "finishing"
    assert "All of its statements ran, but the database is still marked dirty at version 2" in (
        err.value.message
    )
    assert "run `thv-registry-api migrate force 2 --config FILE` to mark it clean" in describe(
        err.value
    )
    assert state(database) == [(2, True)]


# -- section 3: each step has exactly the configured lock_timeout -------------------------------


@pytest.mark.slow
def test_a_step_that_sets_lock_timeout_does_not_change_the_next_steps_bound(
    database: TestDatabase, tmp_path: Path
) -> None:
    files = {
        "000001_own.up.sql": "SET lock_timeout = '3s';\nCREATE TABLE a (id int);\n",
        "000001_own.down.sql": "DROP TABLE a;\n",
        "000002_alter.up.sql": "ALTER TABLE held ADD COLUMN x int;\n",
        "000002_alter.down.sql": "ALTER TABLE held DROP COLUMN x;\n",
    }
    root = write_migrations(tmp_path / "m", files)
    with database.connect() as conn:
        conn.execute("CREATE TABLE held (id int)")
    with database.connect() as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT * FROM held")  # ACCESS SHARE until the end of the transaction
        m = migrator(database, root, lock_timeout_ms=200, lock_retries=0)
        started = time.monotonic()
        with pytest.raises(TableLockTimeout) as err:
            m.apply(Up())
        waited = time.monotonic() - started
        blocker.execute("ROLLBACK")
    assert waited < 1.5, f"step 2 waited {waited:.2f} s: step 1's SET lock_timeout leaked"
    assert "within lock_timeout (200 ms) in 1 attempt" in err.value.message
    assert (err.value.lock_timeout_ms, err.value.attempts) == (200, 1)
    assert err.value.blocker_pids and "pg_terminate_backend(" in describe(err.value)
    assert state(database) == [(1, False)]


# -- bug 5.2: golang-migrate holding the lock, and the dirty flag it leaves ----------------------


def test_lock_wait_message_warns_that_ending_golang_migrate_leaves_it_dirty(
    database: TestDatabase, tmp_path: Path, config_file: Path, cli_env: dict[str, str]
) -> None:
    root = write_migrations(tmp_path / "m", {"000001_a.up.sql": "CREATE TABLE a (id int);\n"})
    run = cli(config_file, root, cli_env)
    key = lock_key("public", "schema_migrations", database.name)
    with database.connect() as gm:
        gm.execute("SELECT pg_advisory_lock(%s)", (key,))  # lib/pq: no application_name
        waited = run("up", "--yes", "--lock-wait", "0.3")
    assert waited.returncode == ExitCode.LOCK_TIMEOUT, waited.stderr
    assert "looks like golang-migrate, which marks each step dirty" in waited.stderr
    assert "ending it leaves the version dirty" in waited.stderr
    assert "pg_terminate_backend(" in waited.stderr

    with database.connect(application_name="thv-registry-api migrate") as ours:
        ours.execute("SELECT pg_advisory_lock(%s)", (key,))
        waited = run("up", "--yes", "--lock-wait", "0.3")
    assert waited.returncode == ExitCode.LOCK_TIMEOUT, waited.stderr
    assert "golang-migrate" not in waited.stderr
    assert "its transactional step is rolled back." in waited.stderr


@pytest.mark.parametrize("with_history", [False, True], ids=["golang-migrate-only", "ours-too"])
def test_dirty_left_by_another_tool_is_not_called_non_transactional(
    database: TestDatabase,
    tmp_path: Path,
    config_file: Path,
    cli_env: dict[str, str],
    with_history: bool,
) -> None:
    files = {
        "000001_a.up.sql": "CREATE TABLE a (id int);\n",
        "000001_a.down.sql": "DROP TABLE a;\n",
        "000002_b.up.sql": "CREATE TABLE b (id int);\n",
        "000002_b.down.sql": "DROP TABLE b;\n",
    }
    root = write_migrations(tmp_path / "m", files)
    run = cli(config_file, root, cli_env)
    if with_history:  # we applied 1; golang-migrate then failed (or was ended) on 2
        assert run("up", "-n", "1", "--yes").returncode == 0
    else:
        with database.connect() as conn:
            conn.execute(
                "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty bool NOT NULL)"
            )
            conn.execute("CREATE TABLE a (id int)")
    with database.connect() as conn:  # golang-migrate's SetVersion(2, dirty) before step 2
        conn.execute("DELETE FROM schema_migrations")
        conn.execute("INSERT INTO schema_migrations VALUES (2, true)")
    for args in (("up", "--yes"), ("status",)):
        refused = run(*args)
        assert refused.returncode == ExitCode.DIRTY, refused.stderr
        text = refused.stderr + refused.stdout
        assert "ran outside a transaction" not in text
        assert "the flag was left by another tool" in text
        assert "golang-migrate marks every step dirty" in text
        assert "the transaction was rolled back and none of it is applied" in text
        assert "`thv-registry-api migrate force 2 --config FILE`" in text
        assert "`thv-registry-api migrate force 1 --config FILE`" in text
    assert state(database) == [(2, True)]


def test_dirty_left_by_golang_migrate_reverting_is_read_from_our_last_row() -> None:
    """Our history ended at 2 and golang-migrate left 1 dirty: it was reverting 2 (to 1)."""
    now = datetime.now(UTC)
    history = [
        HistoryEntry(0, "", HistoryDirection.BASELINE, None, None, now, now),
        HistoryEntry(1, "a", HistoryDirection.UP, "s1", 1, now, now),
        HistoryEntry(2, "b", HistoryDirection.UP, "s2", 2, now, now),
    ]
    migrations = [
        Migration(v, n, MigrationFile(f"m/{v:06d}_{n}.up.sql", Path("x")), None)
        for v, n in ((1, "a"), (2, "b"), (3, "c"))
    ]
    err = dirty_error(VersionState(1, True), migrations, history)
    assert err.recovery == DirtyRecovery("down", 2, "b", 1, 2, recorded=False)
    text = describe(err)
    assert "reverting 000002_b failed or was interrupted there" in text
    assert "finish the revert by hand and run `thv-registry-api migrate force 1" in text
    assert "restore what it already dropped by hand and run `thv-registry-api migrate force 2" in (
        text
    )
    assert "needs nothing undone by hand: choose (2)" in text
    # going up from our last row's version: applying the dirty version
    up = dirty_error(VersionState(3, True), migrations, history)
    assert up.recovery == DirtyRecovery("up", 3, "c", 3, 2, recorded=False)


# -- bug 5.3: force takes only the lock options that apply to it ---------------------------------


def test_force_rejects_lock_timeout_and_lock_retries(
    database: TestDatabase, tmp_path: Path, config_file: Path, cli_env: dict[str, str]
) -> None:
    root = write_migrations(tmp_path / "m", {"000001_a.up.sql": "CREATE TABLE a (id int);\n"})
    run = cli(config_file, root, cli_env)
    for flag in ("--lock-timeout", "--lock-retries"):
        bad = run("force", "1", "--yes", flag, "1")
        assert bad.returncode == ExitCode.USAGE, bad.stderr
        assert f"{flag} does not apply to `migrate force`" in bad.stderr
    assert database.tables() == set()  # nothing ran, not even the state tables
    forced = run("force", "1", "--yes", "--lock-wait", "1")
    assert forced.returncode == 0, forced.stderr
    assert state(database) == [(1, False)]
