"""Every state golang-migrate can leave in schema_migrations, read and handled with its semantics,
and its advisory lock key (so the two tools exclude each other on one database).

golang-migrate's postgres driver: no table or no row is no version; (v, false) is version v;
(v, true) is dirty at v (a migration to v failed); (-1, true) is dirty at no version (reverting
the first migration failed). SetVersion truncates and inserts one row unless clean at no version.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import TestDatabase, write_migrations
from thv_registry.config import ConnectionParams
from thv_registry.errors import ExitCode, LockTimeout
from thv_registry.migrations import Migrator, Plan, Source, Up
from thv_registry.migrations.engine.lock import advisory_lock_id, lock_key

SET = {
    "000001_a.up.sql": "CREATE TABLE a (id int PRIMARY KEY);\n",
    "000001_a.down.sql": "DROP TABLE a;\n",
    "000002_b.up.sql": "CREATE TABLE b (id int PRIMARY KEY);\n",
    "000002_b.down.sql": "DROP TABLE b;\n",
    "000003_c.up.sql": "CREATE TABLE c (id int PRIMARY KEY);\n",
    "000003_c.down.sql": "DROP TABLE c;\n",
}
GOLANG_MIGRATE_TABLE = (
    "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
)

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "m", SET)


@pytest.fixture
def run(config_file: Path, migrations: Path, cli_env: dict[str, str]) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "thv_registry", "migrate", *args]
            + ["--config", str(config_file), "--migrations-dir", str(migrations)],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def leave(db: TestDatabase, row: tuple[int, bool] | None, *, table: bool = True) -> None:
    """Put the database in a state golang-migrate leaves (its tables for versions <= v too)."""
    if not table:
        return
    with db.connect() as conn:
        conn.execute(GOLANG_MIGRATE_TABLE)
        if row is not None:
            conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", row)
            for v, t in ((1, "a"), (2, "b"), (3, "c")):
                if v <= row[0]:
                    conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY)")


def rows(db: TestDatabase) -> list[tuple[object, ...]]:
    return db.query("SELECT version, dirty FROM schema_migrations")


@pytest.mark.parametrize(
    ("row", "table", "shown", "applied"),
    [
        (None, False, "no version", [1, 2, 3]),  # table missing
        (None, True, "no version", [1, 2, 3]),  # table empty
        ((2, False), True, "2", [3]),
        ((3, False), True, "3", []),
        (
            (-1, False),
            True,
            "no version",
            [1, 2, 3],
        ),  # never written by golang-migrate; read as nil
    ],
    ids=["missing", "empty", "v2-clean", "v3-clean", "nil-clean"],
)
def test_clean_states_are_read_and_migrated_from(
    database: TestDatabase,
    run: Run,
    row: tuple[int, bool] | None,
    table: bool,
    shown: str,
    applied: list[int],
) -> None:
    leave(database, row, table=table)
    version = run("version")
    assert (version.returncode, version.stdout) == (0, f"{shown}\n"), version.stderr
    up = run("up", "--yes")
    assert up.returncode == 0, up.stderr
    assert [line.split()[1] for line in up.stdout.splitlines() if line.startswith("Applied")] == [
        f"{v:06d}" for v in applied
    ]
    assert rows(database) == [(3, False)]  # golang-migrate's layout: one row, clean
    assert {"a", "b", "c"} <= database.tables()
    down = run("down", "-n", "0", "--yes", "--no-backup")
    assert down.returncode == 0, down.stderr
    assert rows(database) == []  # clean at no version: golang-migrate's SetVersion(-1, false)


@pytest.mark.parametrize(
    ("row", "shown", "forces"),
    [
        ((2, True), "2 (dirty)", ("migrate force 2", "migrate force 1")),
        ((-1, True), "no version (dirty)", ("migrate force -1", "migrate force 1")),
    ],
    ids=["v2-dirty", "nil-dirty"],
)
def test_dirty_states_refuse_with_the_recovery_and_change_nothing(
    database: TestDatabase, run: Run, row: tuple[int, bool], shown: str, forces: tuple[str, ...]
) -> None:
    leave(database, row)
    before = database.tables()
    assert run("version").stdout == f"{shown}\n"
    assert run("status").returncode == ExitCode.DIRTY
    for args in (
        ("up", "--yes"),
        ("down", "-n", "1", "--yes", "--no-backup"),
        ("goto", "3", "--yes"),
    ):
        refused = run(*args)
        assert refused.returncode == ExitCode.DIRTY, refused.stderr
        assert "Traceback" not in refused.stderr
        assert all(f in refused.stderr for f in forces), refused.stderr
    if row[0] == -1:
        err = run("up", "--yes").stderr
        assert "dirty at no version" in err and "reverting 000001_a" in err
    assert rows(database) == [row]  # byte for byte: no row changed, no table added
    assert database.tables() == before

    target = "1" if row[0] == -1 else "2"  # recovery: the schema is at `target`
    if row[0] == -1:
        with database.connect() as conn:
            conn.execute("CREATE TABLE a (id int PRIMARY KEY)")  # "restore what it dropped"
    forced = run("force", target, "--yes")
    assert forced.returncode == 0, forced.stderr
    assert rows(database) == [(int(target), False)]
    assert run("up", "--yes").returncode == 0
    assert rows(database) == [(3, False)]


def test_lock_key_vectors() -> None:
    assert advisory_lock_id("database_name") == 1764327054  # golang-migrate's published values
    assert advisory_lock_id("database_name", "schema_name_1") == 2453313553
    assert lock_key("public", "schema_migrations", "gmtest") == 3321785894  # URL path: /gmtest


def params(db: TestDatabase) -> ConnectionParams:
    s = db.server
    return ConnectionParams(s.host, s.port, s.user, db.name, "disable")


def test_we_hold_golang_migrates_lock_and_wait_for_it(
    database: TestDatabase, migrations: Path
) -> None:
    """The key in pg_locks is golang-migrate's; a session holding that key keeps us out."""
    key = advisory_lock_id("/" + database.name, "public", "schema_migrations")
    seen: list[tuple[object, ...]] = []

    def look(plan: Plan) -> None:
        seen.extend(
            database.query(
                "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                "AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
                (database.name,),
            )
        )

    m = Migrator(params(database), Source.from_directory(migrations), lock_wait_s=0.3)
    m.apply(Up(1), before_run=look)
    assert seen == [(key,)]

    with database.connect(application_name="golang-migrate") as go:
        go.execute("SELECT pg_advisory_lock(%s)", (key,))  # what golang-migrate's Lock() does
        with pytest.raises(LockTimeout) as err:
            m.apply(Up())
        assert f"pid {go.info.backend_pid} (golang-migrate" in str(err.value)
        assert rows(database) == [(1, False)]  # nothing ran while the other tool held the lock
        go.execute("SELECT pg_advisory_unlock(%s)", (key,))
        assert len(m.apply(Up()).applied) == 2
    assert rows(database) == [(3, False)]
