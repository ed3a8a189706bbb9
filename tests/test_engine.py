"""The engine through its library API (Migrator), against a real PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from conftest import TestDatabase
from thv_registry.cli.hints import describe
from thv_registry.config import ConnectionParams
from thv_registry.errors import (
    DirtyDatabase,
    LockTimeout,
    MigrationFailed,
    PermissionDenied,
    SourceError,
    StateChanged,
)
from thv_registry.migrations import Down, Migrator, Source, Up, VersionState
from thv_registry.migrations.engine.lock import lock_key


def params(db: TestDatabase, user: str | None = None) -> ConnectionParams:
    s = db.server
    return ConnectionParams(
        host=s.host, port=s.port, user=user or s.user, dbname=db.name, sslmode="disable"
    )


def write_set(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (root / name).write_text(body)
    return root


THREE = {
    "000001_a.up.sql": "CREATE TABLE a (id int PRIMARY KEY);\n",
    "000001_a.down.sql": "DROP TABLE a;\n",
    "000002_b.up.sql": "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1), (2);\n",
    "000002_b.down.sql": "DROP TABLE b;\n",
    "000003_c.up.sql": "CREATE TABLE c (id int);\n",
    "000003_c.down.sql": "DROP TABLE c;\n",
}


def migrator(db: TestDatabase, root: Path, **kwargs: object) -> Migrator:
    return Migrator(params(db), Source.from_directory(root), **kwargs)  # type: ignore[arg-type]


def version(db: TestDatabase) -> list[tuple[object, ...]]:
    return db.query("SELECT version, dirty FROM schema_migrations")


def test_up_all_then_down_all(database: TestDatabase, tmp_path: Path) -> None:
    m = migrator(database, write_set(tmp_path / "m", THREE))
    result = m.apply(Up())
    assert [s.migration.version for s in result.applied] == [1, 2, 3]
    assert result.final == VersionState(3, False)
    assert version(database) == [(3, False)]
    assert {"a", "b", "c"} <= database.tables()
    rows = database.query(
        "SELECT version, direction, length(checksum), db_user, finished_at IS NOT NULL "
        "FROM schema_migrations_history ORDER BY id"
    )
    assert rows[0][:2] == (0, "baseline")
    assert [r[:3] for r in rows[1:]] == [(1, "up", 64), (2, "up", 64), (3, "up", 64)]
    assert all(r[3] == database.server.user and r[4] for r in rows[1:])

    result = m.apply(Down(0))
    assert [s.migration.version for s in result.applied] == [3, 2, 1]
    assert version(database) == []  # golang-migrate: no row means no version
    assert database.tables() == {"schema_migrations", "schema_migrations_history"}


def test_schema_migrations_has_golang_migrate_layout(
    database: TestDatabase, tmp_path: Path
) -> None:
    migrator(database, write_set(tmp_path / "m", THREE)).apply(Up(1))
    cols = database.query(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = 'schema_migrations' ORDER BY ordinal_position"
    )
    assert cols == [("version", "bigint", "NO"), ("dirty", "boolean", "NO")]
    pk = database.query(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'schema_migrations'::regclass "
        "AND i.indisprimary"
    )
    assert pk == [("version",)]


def test_plan_is_read_only(database: TestDatabase, tmp_path: Path) -> None:
    plan = migrator(database, write_set(tmp_path / "m", THREE)).plan(Up())
    assert len(plan.steps) == 3
    assert database.tables() == set()


def test_failed_step_rolls_back_to_previous_version(database: TestDatabase, tmp_path: Path) -> None:
    files = dict(THREE)
    files["000002_b.up.sql"] = (
        "-- b: a table, then a mistake\nCREATE TABLE b (id int);\n"
        "INSERT INTO b\n  SELECT id FROM no_such_table;\n"
    )
    m = migrator(database, write_set(tmp_path / "m", files))
    with pytest.raises(MigrationFailed) as err:
        m.apply(Up())
    message = str(err.value)
    assert "000002_b.up.sql:4:18" in message
    assert 'relation "no_such_table" does not exist' in message
    assert "still at version 1, not dirty" in message
    assert err.value.sqlstate == "42P01"
    assert version(database) == [(1, False)]
    assert "b" not in database.tables()


def test_first_statement_error_is_located(database: TestDatabase, tmp_path: Path) -> None:
    """A step's BEGIN travels with its first statement: the error position still maps right.

    (A file without statements is refused before anything runs: see test_cli_messages.py.)
    """
    files = dict(THREE)
    files["000002_b.up.sql"] = "-- nothing to change in this version\nSELECT 1;\n"
    files["000003_c.up.sql"] = (
        "-- c ☕\n  SELECT id\n    FROM no_such_table;\nCREATE TABLE c (id int);\n"
    )
    m = migrator(database, write_set(tmp_path / "m", files))
    with pytest.raises(MigrationFailed) as err:
        m.apply(Up())
    assert "000003_c.up.sql:3:10" in str(err.value)
    assert version(database) == [(2, False)]
    applied = database.query(
        "SELECT version FROM schema_migrations_history WHERE direction = 'up' ORDER BY id"
    )
    assert applied == [(1,), (2,)]
    assert "c" not in database.tables()


def test_failure_in_first_step_leaves_empty_database_untouched(
    database: TestDatabase, tmp_path: Path
) -> None:
    root = write_set(tmp_path / "m", {"000001_a.up.sql": "CREATE TABLE a (id int);\nSELECT 1/0;\n"})
    with pytest.raises(MigrationFailed, match="division by zero"):
        migrator(database, root).apply(Up())
    assert database.tables() == set()


def test_broken_later_file_stops_before_anything_runs(
    database: TestDatabase, tmp_path: Path
) -> None:
    root = write_set(tmp_path / "m", THREE)
    (root / "000003_c.up.sql").write_bytes(b"CREATE TABLE c (name text DEFAULT '\xff');\n")
    with pytest.raises(SourceError, match="000003_c.up.sql"):
        migrator(database, root).apply(Up())
    assert database.tables() == set()


def test_non_transactional_step_uses_dirty_protocol(database: TestDatabase, tmp_path: Path) -> None:
    files = dict(THREE)
    files["000003_c.up.sql"] = "CREATE INDEX CONCURRENTLY b_id_idx ON b (id);\n"
    files["000003_c.down.sql"] = "DROP INDEX CONCURRENTLY b_id_idx;\n"
    m = migrator(database, write_set(tmp_path / "m", files))
    events: list[tuple[str, int, bool]] = []
    m.apply(
        Up(), on_step=lambda e: events.append((e.phase, e.step.migration.version, e.transactional))
    )
    assert ("finished", 3, False) in events and ("finished", 2, True) in events
    assert version(database) == [(3, False)]
    m.apply(Down(1))
    assert version(database) == [(2, False)]


def test_failed_non_transactional_step_stays_dirty_and_blocks(
    database: TestDatabase, tmp_path: Path
) -> None:
    files = dict(THREE)
    files["000003_c.up.sql"] = (
        "CREATE TABLE c (id int);\nCREATE INDEX CONCURRENTLY c_idx ON missing (id);\n"
    )
    m = migrator(database, write_set(tmp_path / "m", files))
    with pytest.raises(MigrationFailed) as err:
        m.apply(Up())
    assert "000003_c.up.sql:2:" in str(err.value)
    assert "marked dirty at version 3" in str(err.value)
    assert version(database) == [(3, True)]
    assert "c" in database.tables()  # the statement before the failure stays: not transactional
    with pytest.raises(DirtyDatabase) as dirty:
        m.apply(Up())
    recovery = dirty.value.recovery
    assert recovery is not None and (recovery.if_finished, recovery.if_undone) == (3, 2)
    assert "migrate force 3" in describe(dirty.value) and "migrate force 2" in describe(dirty.value)


def test_explicit_transaction_in_file(database: TestDatabase, tmp_path: Path) -> None:
    root = write_set(
        tmp_path / "m",
        {
            "000001_a.up.sql": "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n",
            "000001_a.down.sql": "DROP TABLE a;\n",
        },
    )
    migrator(database, root).apply(Up())
    assert version(database) == [(1, False)]


def test_lock_timeout_names_the_holder(database: TestDatabase, tmp_path: Path) -> None:
    key = lock_key("public", "schema_migrations", database.name)
    with database.connect(application_name="other-migrator") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        pid = holder.info.backend_pid
        with pytest.raises(LockTimeout) as err:
            migrator(database, write_set(tmp_path / "m", THREE), lock_wait_s=0.3).apply(Up())
    message = str(err.value)
    assert f"pid {pid}" in message and "other-migrator" in message
    assert database.tables() == set()


def test_table_lock_timeout_retries_then_fails_without_queueing(
    database: TestDatabase, tmp_path: Path
) -> None:
    root = write_set(
        tmp_path / "m",
        {
            **{k: v for k, v in THREE.items() if k.startswith("000001")},
            "000002_b.up.sql": "ALTER TABLE a ADD COLUMN x int;\n",
            "000002_b.down.sql": "ALTER TABLE a DROP COLUMN x;\n",
        },
    )
    m = migrator(database, root, lock_timeout_ms=100, lock_retries=1)
    m.apply(Up(1))
    with database.connect() as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT * FROM a")  # holds ACCESS SHARE until the transaction ends
        with pytest.raises(MigrationFailed, match="lock_timeout"):
            m.apply(Up())
        reader.execute("ROLLBACK")
    assert version(database) == [(1, False)]
    m.apply(Up())
    assert version(database) == [(2, False)]


def test_confirmed_plan_refused_when_state_moved(database: TestDatabase, tmp_path: Path) -> None:
    m = migrator(database, write_set(tmp_path / "m", THREE))
    plan = m.plan(Up())
    m.apply(Up(1))  # somebody else, meanwhile
    with pytest.raises(StateChanged):
        m.apply(Up(), confirmed=plan)
    assert version(database) == [(1, False)]


def test_concurrent_runners_apply_each_step_once(database: TestDatabase, tmp_path: Path) -> None:
    root = write_set(tmp_path / "m", THREE)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(len(migrator(database, root).apply(Up()).applied))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not [t for t in threads if t.is_alive()], "a runner still runs after 60 s"
    assert not errors
    assert sorted(results) == [0, 0, 0, 3]
    assert database.query(
        "SELECT count(*) FROM schema_migrations_history WHERE direction = 'up'"
    ) == [(3,)]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], [(1, "up", 1), (2, "up", 2), (3, "up", 3)]),
        ([(1, False)], [(2, "up", 2), (3, "up", 3)]),
        ([(3, False)], []),
    ],
)
def test_golang_migrate_state_is_read(
    database: TestDatabase, tmp_path: Path, rows: list[tuple[int, bool]], expected: list[object]
) -> None:
    with database.connect() as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, "
            "dirty boolean NOT NULL)"
        )
        for row in rows:
            conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", row)
    plan = migrator(database, write_set(tmp_path / "m", THREE)).plan(Up())
    assert [
        (s.migration.version, s.direction.value, s.target_version) for s in plan.steps
    ] == expected


@pytest.mark.parametrize("row", [(2, True), (-1, True)])
def test_golang_migrate_dirty_states_refuse(
    database: TestDatabase, tmp_path: Path, row: tuple[int, bool]
) -> None:
    with database.connect() as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, "
            "dirty boolean NOT NULL)"
        )
        conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", row)
    with pytest.raises(DirtyDatabase):
        migrator(database, write_set(tmp_path / "m", THREE)).apply(Up())
    assert database.query("SELECT version, dirty FROM schema_migrations") == [row]


def test_golang_migrate_applied_versions_get_a_baseline(
    database: TestDatabase, tmp_path: Path
) -> None:
    with database.connect() as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, "
            "dirty boolean NOT NULL)"
        )
        conn.execute("CREATE TABLE a (id int PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES (1, false)")
    m = migrator(database, write_set(tmp_path / "m", THREE))
    m.apply(Up())
    assert database.query(
        "SELECT direction, resulting_version FROM schema_migrations_history ORDER BY id LIMIT 1"
    ) == [("baseline", 1)]
    assert len(m.apply(Down(0)).applied) == 3


def test_permission_denied_names_the_user(database: TestDatabase, tmp_path: Path) -> None:
    if database.server.kind != "embedded":
        pytest.skip("needs trust authentication for a freshly created role")
    role = f"weak_{database.name[-8:]}"
    with database.connect() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        m = Migrator(
            params(database, user=role), Source.from_directory(write_set(tmp_path / "m", THREE))
        )
        with pytest.raises(PermissionDenied) as err:
            m.apply(Up())
        assert err.value.user == role and err.value.needed_for == "state_tables"
        assert role in describe(err.value) and "CREATE" in describe(err.value)
        assert database.tables() == set()
    finally:
        with psycopg.connect(database.server.conninfo(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


OLD_HISTORY = """
CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
INSERT INTO schema_migrations VALUES (1, false);
CREATE TABLE a (id int PRIMARY KEY);
CREATE TABLE schema_migrations_history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version bigint NOT NULL,
    name text NOT NULL,
    direction text NOT NULL CHECK (direction IN ('up', 'down', 'force', 'baseline')),
    checksum text,
    resulting_version bigint,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    duration_ms double precision,
    db_user text NOT NULL DEFAULT current_user,
    tool_version text
);
INSERT INTO schema_migrations_history (version, name, direction, resulting_version, finished_at)
    VALUES (0, '', 'baseline', NULL, now()), (1, 'a', 'up', 1, now());
"""


def test_history_written_by_an_earlier_release_is_read_then_upgraded(
    database: TestDatabase, tmp_path: Path
) -> None:
    """The first layout had no `interrupted` column and no 'accept' direction."""
    with database.connect() as conn:
        conn.execute(OLD_HISTORY)
    root = write_set(tmp_path / "m", THREE)
    m = migrator(database, root)
    assert [s.migration.version for s in m.plan(Up()).steps] == [2, 3]  # read-only: no upgrade
    assert "interrupted" not in str(
        database.query(
            "SELECT array_agg(attname) FROM pg_attribute WHERE attrelid = "
            "'schema_migrations_history'::regclass"
        )
    )
    m.apply(Up(1))
    (root / "000002_b.up.sql").write_text(THREE["000002_b.up.sql"] + "-- edited after apply\n")
    m.apply(Up(accept_changed=frozenset({2})))
    assert version(database) == [(3, False)]
    assert database.query(
        "SELECT direction, interrupted FROM schema_migrations_history ORDER BY id"
    ) == [("baseline", False), ("up", False), ("up", False), ("accept", False), ("up", False)]
