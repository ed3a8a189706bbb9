"""``migrate goto`` and ``migrate force``, end to end through the CLI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from thv_registry.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import MigrateCli as Run
    from conftest import TestDatabase

SET = {
    "000001_a.up.sql": "CREATE TABLE a (id int);\n",
    "000001_a.down.sql": "DROP TABLE a;\n",
    "000002_b.up.sql": "CREATE TABLE b (id int);\n",
    "000002_b.down.sql": "DROP TABLE b;\n",
    # not transactional: runs with the dirty protocol; the second statement fails
    "000003_c.up.sql": "CREATE TABLE c (id int);\nCREATE INDEX CONCURRENTLY c_idx ON nope (id);\n",
    "000003_c.down.sql": "DROP TABLE c;\n",
    "000004_d.up.sql": "CREATE TABLE d (id int);\n",
    "000004_d.down.sql": "DROP TABLE d;\n",
}
FIXED_3 = "CREATE TABLE c (id int);\nCREATE INDEX CONCURRENTLY c_idx ON c (id);\n"


@pytest.fixture
def run(migrate_cli: Callable[[dict[str, str]], Run]) -> Run:
    return migrate_cli(SET)


def execute(database: TestDatabase, statement: str) -> None:
    with database.connect() as conn:
        conn.execute(statement.encode())


def version(database: TestDatabase) -> list[tuple[object, ...]]:
    return database.query("SELECT version, dirty FROM schema_migrations")


def history(database: TestDatabase) -> list[tuple[object, ...]]:
    return database.query(
        "SELECT direction, version, resulting_version, finished_at IS NOT NULL, interrupted "
        "FROM schema_migrations_history ORDER BY id"
    )


# -- goto ------------------------------------------------------------------------------------------


def test_goto_up_then_down_asks_for_yes(run: Run, database: TestDatabase) -> None:
    up = run("goto", "2", input="y\n")
    assert up.returncode == 0, up.stderr
    assert "[y/N]" in up.stderr and version(database) == [(2, False)]
    down = run("goto", "1", input="y\n")
    assert down.returncode == 0 and "Type 'yes' to revert" in down.stderr
    assert "WARNING" in down.stdout and "Cancelled" in down.stdout
    assert "Only 'yes' confirms a revert; 'y' is not enough." in down.stderr  # not silent
    assert version(database) == [(2, False)], "'y' is not enough going down"
    at = run("goto", "2", "--yes")  # issue 11, item 7: not "No pending migrations"
    assert at.stdout == (
        "Already at version 2 (b); 2 migrations are pending beyond it (`migrate up` applies "
        "them).\n"
    )
    assert run("goto", "1", input="yes\n").returncode == 0
    assert version(database) == [(1, False)]
    assert run("goto", "-1", "--yes").returncode == 0
    assert version(database) == [] and "a" not in database.tables()
    again = run("goto", "0", "--yes")
    assert again.returncode == 0
    assert again.stdout == (
        "The database already has no version; 4 migrations are pending beyond it (`migrate up` "
        "applies them).\n"
    )


def test_goto_unknown_version_is_refused(run: Run, database: TestDatabase) -> None:
    result = run("goto", "7", "--yes")
    assert result.returncode == ExitCode.REFUSED and "no migration 7" in result.stderr
    assert database.tables() == set()


# -- force -----------------------------------------------------------------------------------------


def test_failed_step_then_force_previous_lets_up_resume(run: Run, database: TestDatabase) -> None:
    failed = run("up", "--yes")
    assert failed.returncode == ExitCode.MIGRATION_FAILED
    assert version(database) == [(3, True)] and "c" in database.tables()
    assert "`thv-registry-api migrate force 3 --config FILE`" in failed.stderr
    assert "`thv-registry-api migrate force 2 --config FILE`" in failed.stderr
    dirty = run("up", "--yes")
    assert dirty.returncode == ExitCode.DIRTY
    assert "finish the change by hand and run `thv-registry-api migrate force 3" in dirty.stderr
    assert "undo what it changed by hand and run `thv-registry-api migrate force 2" in dirty.stderr
    assert run("version").stdout == "3 (dirty)\n"

    # undo by hand, fix the file, record the version it is back at
    execute(database, "DROP TABLE c")
    (run.migrations / "000003_c.up.sql").write_text(FIXED_3)
    shown = run("force", "2", input="yes\n")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "Current version:   3 (c), dirty" in out
    assert "NOT FINISHED" in out and "000003_c" in out
    assert "Tables in schema public (4): a, b, schema_migrations, schema_migrations_history" in out
    assert "Type 'yes' to force" in shown.stderr
    assert "Database is now at version 2 (b), clean (was version 3 (c), dirty)" in out
    assert version(database) == [(2, False)]
    rows = history(database)
    assert ("up", 3, 3, True, True) in rows, "the failed step is closed as interrupted"
    assert rows[-1] == ("force", 2, 2, True, False)

    resumed = run("up", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    assert "Applied 000003 c" in resumed.stdout and "Applied 000004 d" in resumed.stdout
    assert version(database) == [(4, False)]
    assert run("status").returncode == 0


def test_force_the_failed_version_after_finishing_by_hand(run: Run, database: TestDatabase) -> None:
    assert run("up", "--yes").returncode == ExitCode.MIGRATION_FAILED
    execute(database, "CREATE INDEX c_idx ON c (id)")
    forced = run("force", "3", "--yes", "--output", "json")
    assert forced.returncode == 0, forced.stderr
    event = json.loads(forced.stdout)
    assert event == {
        "event": "done", "version": 3, "dirty": False, "steps": 0, "forced": True,
        "previous_version": 3, "previous_dirty": True, "closed_steps": 1,
    }  # fmt: skip
    status = run("status")
    assert "000003   c     set by force" in status.stdout  # finished by hand
    assert run("up", "--yes").returncode == 0
    assert version(database) == [(4, False)]


def test_force_minus_one_and_refusals(run: Run, database: TestDatabase) -> None:
    assert run("goto", "2", "--yes").returncode == 0
    eof = run("force", "-1")
    assert eof.returncode == ExitCode.UNCONFIRMED and version(database) == [(2, False)]
    no = run("force", "-1", input="y\n")
    assert no.returncode == 0 and "Cancelled" in no.stdout and version(database) == [(2, False)]
    unknown = run("force", "9", "--yes")
    assert unknown.returncode == ExitCode.REFUSED and "no migration 9" in unknown.stderr
    zero = run("force", "0", "--yes")
    assert zero.returncode == ExitCode.REFUSED and "-1 for no version" in zero.stderr
    assert run("force", "-1", "--yes").returncode == 0
    assert version(database) == [] and {"a", "b"} <= database.tables()
    assert history(database)[-1] == ("force", 0, None, True, False)
    assert run("version").stdout == "no version\n"


def test_force_on_a_golang_migrate_database_creates_the_history(
    run: Run, database: TestDatabase
) -> None:
    with database.connect() as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty bool NOT NULL)"
        )
        conn.execute("INSERT INTO schema_migrations VALUES (2, true)")
    result = run("force", "1", "--yes")
    assert result.returncode == 0, result.stderr
    assert version(database) == [(1, False)]
    assert [r[0] for r in history(database)] == ["baseline", "force"]


def test_failed_down_names_the_target_and_the_reverted_version(
    run: Run, database: TestDatabase
) -> None:
    (run.migrations / "000003_c.up.sql").write_text(FIXED_3)
    (run.migrations / "000003_c.down.sql").write_text(
        "DROP INDEX CONCURRENTLY c_idx;\nDROP TABLE nope;\n"
    )
    assert run("up", "-n", "3", "--yes").returncode == 0
    failed = run("down", "-n", "1", "--yes")
    assert failed.returncode == ExitCode.MIGRATION_FAILED
    assert version(database) == [(2, True)]
    assert "finish the revert by hand and run `thv-registry-api migrate force 2" in failed.stderr
    assert "restore what it already dropped by hand and run `thv-registry-api migrate force 3" in (
        failed.stderr
    )
    dirty = run("up", "--yes")
    assert dirty.returncode == ExitCode.DIRTY and "reverting 3_c" in dirty.stderr
    assert "migrate force 2" in dirty.stderr and "migrate force 3" in dirty.stderr
    assert "000003   c     dirty" in run("status").stdout
    execute(database, "DROP TABLE c")
    assert run("force", "2", "--yes").returncode == 0
    assert run("up", "--yes").returncode == 0 and version(database) == [(4, False)]
