"""Races: many `migrate up --yes` at once, and a `down` racing `up`s. The advisory lock
serialises them; each re-plans from the state it finds under the lock, so nothing runs twice
and nobody fails (with --yes there is no confirmed plan to be invalidated).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TestDatabase
from waiting import wait_until

STEPS = 30


def write_set(root: Path, n: int = STEPS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for v in range(1, n + 1):
        (root / f"{v:06d}_t{v}.up.sql").write_text(
            f"CREATE TABLE t{v} (id int PRIMARY KEY);\nINSERT INTO t{v} VALUES ({v});\n"
        )
        (root / f"{v:06d}_t{v}.down.sql").write_text(f"DROP TABLE t{v};\n")
    return root


def start(env: dict[str, str], config: Path, migrations: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "thv_registry", "migrate", *args]
        + ["--config", str(config), "--migrations-dir", str(migrations), "--lock-wait", "120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append((p.returncode, out, err))
    return results


def history(db: TestDatabase) -> list[tuple[int, str, int | None]]:
    rows = db.query(
        "SELECT version, direction, resulting_version FROM schema_migrations_history "
        "WHERE direction IN ('up', 'down') AND finished_at IS NOT NULL ORDER BY id"
    )
    return [(int(v), str(d), None if r is None else int(r)) for v, d, r in rows]  # type: ignore[call-overload]


def replay(rows: list[tuple[int, str, int | None]], start: set[int]) -> set[int]:
    """The applied versions after the history's steps, checking each made sense when it ran."""
    applied = set(start)
    for version, direction, resulting in rows:
        if direction == "up":
            assert version not in applied, f"{version} applied twice"
            assert all(v < version for v in applied), f"{version} applied out of order"
            applied.add(version)
        else:
            assert version == max(applied), f"{version} reverted while not the highest"
            applied.remove(version)
        assert resulting == (max(applied) if applied else None)
    return applied


@pytest.mark.slow
def test_sixteen_simultaneous_ups_apply_each_step_once(
    database: TestDatabase, config_file: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    migrations = write_set(tmp_path / "m")
    procs = [start(cli_env, config_file, migrations, "up", "--yes") for _ in range(16)]
    results = finish(procs)
    assert [r[0] for r in results] == [0] * 16, [r[2] for r in results if r[0]]
    assert not any("Traceback" in r[2] for r in results)
    rows = history(database)
    assert [v for v, d, _ in rows] == list(range(1, STEPS + 1))  # each exactly once, in order
    assert replay(rows, set()) == set(range(1, STEPS + 1))
    assert database.query("SELECT version, dirty FROM schema_migrations") == [(STEPS, False)]
    assert {f"t{v}" for v in range(1, STEPS + 1)} <= database.tables()
    # one process did the work; the others found nothing left under the lock
    workers = [r for r in results if "Applied 000001" in r[1]]
    assert len(workers) == 1, [r[1] for r in results]


@pytest.mark.slow
def test_down_racing_ups_is_serialised(
    database: TestDatabase, config_file: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    migrations = write_set(tmp_path / "m")
    first = start(cli_env, config_file, migrations, "up", "--yes", "-n", "25")
    assert finish([first])[0][0] == 0
    before = len(history(database))
    procs = [start(cli_env, config_file, migrations, "down", "-n", "5", "--yes", "--no-backup")]
    procs += [start(cli_env, config_file, migrations, "up", "--yes") for _ in range(3)]
    results = finish(procs)
    # with --yes every runner re-plans under the lock: none fails, whatever the order
    assert [r[0] for r in results] == [0, 0, 0, 0], [r[2] for r in results]
    rows = history(database)
    applied = replay(rows, set())
    new = rows[before:]
    assert [d for _, d, _ in new].count("down") == 5  # the down ran once, 5 steps
    assert [v for v, d, _ in new if d == "down"] in (
        [25, 24, 23, 22, 21],  # down first (then the ups re-applied 21..30)
        [30, 29, 28, 27, 26],  # an up first (25 -> 30), then the down
    )
    final = max(applied)
    assert final in (25, 30)
    assert database.query("SELECT version, dirty FROM schema_migrations") == [(final, False)]
    tables = {t for t in database.tables() if t.startswith("t")}
    assert tables == {f"t{v}" for v in range(1, final + 1)}


def test_a_dirty_version_while_a_step_runs_is_waited_for_not_refused(
    database: TestDatabase, config_file: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A non-transactional step is dirty while it runs (golang-migrate marks every step so): a
    second runner, or `status`, seeing that dirty flag waits for the lock holder instead of
    reporting a failed migration that needs `force`."""
    root = write_set(tmp_path / "m", 3)
    (root / "000002_t2.up.sql").write_text(
        "CREATE TABLE t2 (id int PRIMARY KEY);\nSELECT pg_sleep(3);\n"
        "CREATE INDEX CONCURRENTLY t2_id ON t2 (id);\n"
    )
    first = start(cli_env, config_file, root, "up", "--yes")
    wait_until(
        lambda: database.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3)'"),
        60,
        "the first runner to reach step 2's pg_sleep",
        alive=first,
    )
    assert database.query("SELECT version, dirty FROM schema_migrations") == [(2, True)]
    impatient = subprocess.run(
        [sys.executable, "-m", "thv_registry", "migrate", "status", "--lock-wait", "0.5"]
        + ["--config", str(config_file), "--migrations-dir", str(root)],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert impatient.returncode == 10, impatient.stdout + impatient.stderr  # LOCK_TIMEOUT
    assert "running: SELECT pg_sleep(3)" in impatient.stderr
    second = start(cli_env, config_file, root, "up", "--yes")
    (rc1, _, err1), (rc2, out2, err2) = finish([first, second])
    assert rc1 == 0, err1
    assert rc2 == 0, err2
    assert "No pending migrations; database is at version 3" in out2
