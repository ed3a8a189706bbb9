"""Faults during a run: kill -9, a terminated backend, Ctrl-C. The database is never left between
versions: it is at some version k, clean (or dirty only in a non-transactional step, with the
recovery spelled out), and the next `up` finishes.

The trial machinery is ``scripts/kill_trials.py`` (which runs 200 of them); here 20 in CI.
"""

from __future__ import annotations

import importlib.util
import random
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import REPO_ROOT, TestDatabase
from thv_registry.config import ConnectionParams
from thv_registry.errors import ExitCode
from thv_registry.migrations.engine.migrator import APPLICATION_NAME
from waiting import wait_until


def _load_script() -> ModuleType:
    path = REPO_ROOT / "scripts" / "kill_trials.py"
    spec = importlib.util.spec_from_file_location("kill_trials", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_trials"] = module
    spec.loader.exec_module(module)
    return module


kt = _load_script()


def params(db: TestDatabase) -> ConnectionParams:
    s = db.server
    return ConnectionParams(s.host, s.port, s.user, db.name, "disable")


@pytest.fixture
def harness(database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]) -> Any:
    return kt.Harness(params(database), tmp_path, cli_env)


def start_up(h: Any, *extra: str) -> subprocess.Popen[str]:
    return h.start_up(*extra)  # type: ignore[no-any-return]


def wait_for(h: Any, query: str, proc: subprocess.Popen[str]) -> list[int]:
    """The migrator's backends once one of them runs a query containing ``query``."""
    wait_until(lambda: h._backends(query=query), 60, f"the migrator to run {query}", alive=proc)
    return list(h._backends())


def state(db: TestDatabase) -> list[tuple[object, ...]]:
    return db.query("SELECT version, dirty FROM schema_migrations")


@pytest.mark.slow
def test_kill_9_at_random_moments(harness: Any) -> None:
    seed = random.randrange(2**32)
    outcomes = kt.run_trials(harness, 20, "kill", seed)
    report = f"seed {seed}:\n{kt.summary(outcomes)}"
    assert not [p for o in outcomes for p in o.problems], report
    assert len(outcomes) == 20


def test_terminated_backend_mid_step_rolls_back(harness: Any, database: TestDatabase) -> None:
    harness.reset()
    proc = start_up(harness)
    with database.connect() as conn:
        for pid in wait_for(harness, f"pg_sleep({kt.SLEEP_S})", proc):
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.CONNECTION, err
    assert "Traceback" not in err
    assert "The connection to the database was lost during migration 000002_b (up)" in err
    assert "000002_b.up.sql:2:1" in err and "SQLSTATE 57P01" in err
    assert "still at version 1, not dirty" in err
    assert state(database) == [(1, False)]
    assert {"x", "y"}.isdisjoint(database.tables())
    done = harness.cli("up", "--yes")
    assert done.returncode == 0, done.stderr
    assert state(database) == [(4, False)]


def test_terminated_backend_in_non_transactional_step_is_dirty_with_recovery(
    harness: Any, database: TestDatabase
) -> None:
    harness.reset()
    proc = start_up(harness)
    with database.connect() as conn:
        for pid in wait_for(harness, "pg_sleep(0.1)", proc):  # after the index, in step 3
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.CONNECTION, err
    assert "Traceback" not in err
    assert "marked dirty at version 3" in err
    assert "migrate force 3" in err and "migrate force 2" in err
    assert state(database) == [(3, True)]
    refused = harness.cli("up", "--yes")
    assert refused.returncode == ExitCode.DIRTY
    assert harness.cli("force", "3", "--yes").returncode == 0  # the index was built
    assert harness.cli("up", "--yes").returncode == 0
    assert state(database) == [(4, False)]


def test_ctrl_c_mid_step_rolls_back_and_exits_130(harness: Any, database: TestDatabase) -> None:
    harness.reset()
    proc = start_up(harness)
    wait_for(harness, f"pg_sleep({kt.SLEEP_S})", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Interrupted" in err
    assert state(database) == [(1, False)]
    assert {"x", "y"}.isdisjoint(database.tables())
    harness._wait_backends_gone()  # the advisory lock went with the session
    assert harness.cli("up", "--yes", "--lock-wait", "1").returncode == 0
    assert state(database) == [(4, False)]


def test_killed_migrator_statement_is_cancelled_not_left_running(
    harness: Any, database: TestDatabase
) -> None:
    """client_connection_check_interval: the server notices the dead client and stops the step."""
    if database.query("SHOW server_version_num")[0][0] < "140000":  # type: ignore[operator]
        pytest.skip("client_connection_check_interval needs PostgreSQL 14")
    slow = harness.migrations / "000002_b.up.sql"
    slow.write_text(slow.read_text().replace(f"pg_sleep({kt.SLEEP_S})", "pg_sleep(60)"))
    harness.reset()
    proc = start_up(harness)
    wait_for(harness, "pg_sleep(60)", proc)
    proc.kill()
    proc.communicate(timeout=60)
    harness._wait_backends_gone()  # raises after 30 s: far less than the 60 s statement
    assert state(database) == [(1, False)]


def test_connection_lost_while_waiting_for_the_lock(harness: Any, database: TestDatabase) -> None:
    from thv_registry.migrations.engine.lock import lock_key

    harness.reset()
    with database.connect() as holder:
        holder.execute(
            "SELECT pg_advisory_lock(%s)", (lock_key("public", "schema_migrations", database.name),)
        )
        proc = start_up(harness, "--lock-wait", "60")
        with database.connect() as conn:
            waiting = wait_until(
                lambda: conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                    "AND query LIKE 'SELECT pg_try_advisory_lock%%'",
                    (APPLICATION_NAME,),
                ).fetchall(),
                60,
                "the migrator to poll for the advisory lock",
                alive=proc,
            )
            conn.execute("SELECT pg_terminate_backend(%s)", waiting[0])
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.CONNECTION, err
    assert "Traceback" not in err
    assert "was lost before any migration step started" in err and "Nothing was changed" in err
    assert database.tables() == set()
