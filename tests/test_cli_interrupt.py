"""Ctrl-C and SIGTERM during a run (issue 11, item 6): which step, and where the database is.

Real subprocesses against a real PostgreSQL; the signal is sent once the step's statement is
seen running in ``pg_stat_activity``, and every wait is bounded.
"""

from __future__ import annotations

import signal
import subprocess
from typing import TYPE_CHECKING

import pytest

from waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import MigrateCli, TestDatabase

SLEEP = "SELECT pg_sleep(30)"
SLOW_SECOND = {
    "000001_a.up.sql": "CREATE TABLE a (id int);\n",
    "000001_a.down.sql": "DROP TABLE a;\n",
    "000002_b.up.sql": f"CREATE TABLE b (id int);\n{SLEEP};\n",
    "000002_b.down.sql": "DROP TABLE b;\n",
    "000003_c.up.sql": "CREATE TABLE c (id int);\n",
    "000003_c.down.sql": "DROP TABLE c;\n",
}
#: step 2 runs outside a transaction (CREATE INDEX CONCURRENTLY), so it is marked dirty first
SLOW_DIRTY = {
    **SLOW_SECOND,
    "000002_b.up.sql": f"CREATE INDEX CONCURRENTLY a_id ON a (id);\n{SLEEP};\n",
    "000002_b.down.sql": "DROP INDEX CONCURRENTLY a_id;\n",
}


def start(migrate: MigrateCli, *args: str) -> subprocess.Popen[str]:
    """Start ``migrate *args`` with Ctrl-C behaving as in a terminal (see test_cli_prompt)."""
    return subprocess.Popen(
        migrate.argv(*args),
        env=migrate.env,
        cwd=migrate.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def sleeping(database: TestDatabase, datname_like: str | None = None) -> bool:
    rows = database.query(
        "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
        "AND datname LIKE %s AND pid <> pg_backend_pid()",
        ("%pg_sleep(30)%", datname_like or database.name),
    )
    return bool(rows)


def interrupt(
    proc: subprocess.Popen[str], database: TestDatabase, signum: int, datname: str | None = None
) -> tuple[str, str]:
    try:
        wait_until(lambda: sleeping(database, datname), 30, "the slow statement", alive=proc)
        proc.send_signal(signum)
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)


def version(database: TestDatabase) -> list[tuple[object, ...]]:
    return database.query("SELECT version, dirty FROM schema_migrations")


@pytest.mark.parametrize(
    ("signum", "said"),
    [(signal.SIGINT, "Interrupted (Ctrl-C)"), (signal.SIGTERM, "Terminated (SIGTERM)")],
)
def test_interrupted_transactional_step_is_named_and_rolled_back(
    migrate_cli: Callable[[dict[str, str]], MigrateCli],
    database: TestDatabase,
    signum: int,
    said: str,
) -> None:
    migrate = migrate_cli(SLOW_SECOND)
    out, err = interrupt(start(migrate, "up", "--yes"), database, signum)
    assert "Applied 000001 a" in out
    assert err.startswith("\n"), err  # the ^C line is ended first
    assert f"Error: {said} during step 000002 b (up), 2 of 3." in err
    assert "The database is at version 1, clean. The step was rolled back." in err
    assert "The 1 step(s) before it stay done." in err
    assert "Traceback" not in err
    assert version(database) == [(1, False)]
    assert "b" not in database.tables()
    (migrate.migrations / "000002_b.up.sql").write_text("CREATE TABLE b (id int);\n")
    again = migrate("up", "--yes", "--lock-wait", "5")  # the lock went with the session
    assert again.returncode == 0, again.stderr


def test_sigterm_in_a_step_outside_a_transaction_says_dirty_and_the_way_out(
    migrate_cli: Callable[[dict[str, str]], MigrateCli], database: TestDatabase
) -> None:
    migrate = migrate_cli(SLOW_DIRTY)
    proc = start(migrate, "up", "--yes")
    _out, err = interrupt(proc, database, signal.SIGTERM)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Terminated (SIGTERM) during step 000002 b (up), 2 of 3." in err
    assert "The database is at version 2, DIRTY." in err
    assert "runs outside a transaction" in err
    assert "migrate force 2" in err and "migrate force 1" in err
    assert version(database) == [(2, True)]


def test_ctrl_c_exit_code_and_message_before_the_first_step(
    migrate_cli: Callable[[dict[str, str]], MigrateCli], database: TestDatabase
) -> None:
    """Waiting for the migration lock: nothing ran, and the message says the version."""
    from thv_registry.migrations.engine.lock import lock_key

    migrate = migrate_cli(SLOW_SECOND)
    key = lock_key("public", "schema_migrations", database.name)
    with database.connect() as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        proc = start(migrate, "up", "--yes", "--lock-wait", "60")
        try:
            wait_until(
                lambda: database.query(
                    "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_try_advisory%%' "
                    "AND datname = %s",
                    (database.name,),
                ),
                30,
                "the migrator polling for the lock",
                alive=proc,
            )
            proc.send_signal(signal.SIGINT)
            _out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted (Ctrl-C) before the first step started." in err
    assert "The database has no version, clean." in err
    assert database.tables() == set()


def test_interrupted_verify_touched_only_the_scratch_database(
    migrate_cli: Callable[[dict[str, str]], MigrateCli], database: TestDatabase
) -> None:
    migrate = migrate_cli(SLOW_SECOND)
    proc = start(migrate, "verify", "--no-data")
    _out, err = interrupt(proc, database, signal.SIGINT, "thv_verify_%")
    assert proc.returncode == 130, err
    assert "Interrupted (Ctrl-C) during verify: only the scratch database thv_verify_" in err
    assert "never the configured database" in err
    assert database.tables() == set()  # the configured database was never touched
    scratch = [w for w in err.split() if w.startswith("thv_verify_")][0].rstrip(".,;")
    assert not database.query("SELECT 1 FROM pg_database WHERE datname = %s", (scratch,))
