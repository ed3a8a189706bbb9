"""Messages that say what happened (issue 11, items 4, 5 and 7): real subprocesses, real server.

A migration still holding only ``create``'s template is refused; a migration user that cannot
write the state tables gets exit 7 and the GRANT before anything ran (no backup either); and
the wordings users met: ``--num-steps abc``, ``up -n 99``, ``force -1``, a failed first step.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from psycopg import sql

from conftest import THREE_TABLES, MigrateCli, TestDatabase
from thv_registry.errors import ExitCode


@pytest.fixture
def migrate(migrate_cli: Callable[[dict[str, str]], MigrateCli]) -> MigrateCli:
    return migrate_cli(THREE_TABLES)


def version(database: TestDatabase) -> list[tuple[object, ...]]:
    return database.query("SELECT version, dirty FROM schema_migrations")


def authoring(migrate: MigrateCli, *args: str) -> subprocess.CompletedProcess[str]:
    """``create`` and ``lint`` take no database: the same set, without --config."""
    return subprocess.run(
        [sys.executable, "-m", "thv_registry", "migrate", *args,
         "--migrations-dir", str(migrate.migrations)],
        env=migrate.env, cwd=migrate.cwd, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


# -- item 4: a template is not a migration ---------------------------------------------------------


def test_a_migration_left_as_created_is_refused_by_up_and_flagged_by_lint(
    migrate: MigrateCli, database: TestDatabase
) -> None:
    made = authoring(migrate, "create", "add_d")
    assert made.returncode == 0, made.stderr
    up_file = f"{migrate.migrations}/000004_add_d.up.sql"
    for args in (("up", "--yes"), ("up",), ("up", "--dry-run")):  # before any prompt, too
        refused = migrate(*args)
        assert refused.returncode == ExitCode.SOURCE, refused.stderr
        assert f"{up_file} still holds only the template `create` wrote" in refused.stderr
        assert "nothing was run" in refused.stderr and "Traceback" not in refused.stderr
        assert database.tables() == set()  # not even the state tables
    lint = authoring(migrate, "lint", "--no-squawk")
    assert lint.returncode == ExitCode.SOURCE
    assert "000004_add_d.up.sql: error: [empty-file]" in lint.stdout
    assert "000004_add_d.down.sql: error: [empty-file]" in lint.stdout
    # once written, it runs
    (migrate.migrations / "000004_add_d.up.sql").write_text("CREATE TABLE d (id int);\n")
    assert migrate("up", "--yes").returncode == 0
    assert version(database) == [(4, False)]
    # the down file is still the template: reverting it is refused as well, nothing reverted
    down = migrate("down", "-n", "1", "--yes", "--no-backup")
    assert down.returncode == ExitCode.SOURCE, down.stderr
    assert "000004_add_d.down.sql still holds only the template" in down.stderr
    assert version(database) == [(4, False)] and "d" in database.tables()


def test_a_deliberately_empty_down_runs_as_a_no_op_step(
    migrate: MigrateCli, database: TestDatabase
) -> None:
    """Comments without the template's mark (an enum value cannot be dropped) are a no-op step,
    as golang-migrate runs an empty file; lint has nothing to say about such a down."""
    (migrate.migrations / "000004_kind.up.sql").write_text("CREATE TYPE kind AS ENUM ('a');\n")
    (migrate.migrations / "000004_kind.down.sql").write_text(
        "-- The type stays: later versions may use it.\n"
    )
    assert migrate("up", "--yes").returncode == 0
    down = migrate("down", "-n", "1", "--yes", "--no-backup")
    assert down.returncode == 0, down.stderr
    assert version(database) == [(3, False)]
    lint = authoring(migrate, "lint", "--no-squawk")
    assert "000004_kind.down.sql" not in lint.stdout


# -- item 5: state-table privileges, before anything (and before the backup) ----------------------


@pytest.fixture
def limited_role(database: TestDatabase) -> Iterator[str]:
    """A login role that owns nothing but what the test gives it."""
    role = f"thv_limited_{uuid.uuid4().hex[:8]}"
    with database.connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        yield role
    finally:
        with database.connect() as conn:
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(
                sql.Identifier(role)))  # fmt: skip
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_state_tables_not_writable_is_exit_7_with_the_grant_before_the_backup(
    migrate: MigrateCli,
    database: TestDatabase,
    limited_role: str,
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    assert migrate("up", "-n", "2", "--yes").returncode == 0  # as the server's superuser
    role = sql.Identifier(limited_role)
    with database.connect() as conn:  # the role owns the tables its migrations change ...
        for table in ("a", "b"):
            conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(table), role))
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(role))
        # ... and may read the state tables, not write them (prime-db's application role)
        conn.execute(
            sql.SQL("GRANT SELECT ON schema_migrations, schema_migrations_history TO {}").format(
                role
            )
        )
    config = database.write_config(tmp_path / "limited.yaml", user=limited_role)
    as_role = MigrateCli(cli_env, migrate.cwd, config, migrate.migrations)
    backups = Path(cli_env["THV_REGISTRY_BACKUP_DIR"])
    for args in (("down", "-n", "1", "--yes"), ("up", "--yes"), ("force", "1", "--yes")):
        refused = as_role(*args)
        assert refused.returncode == ExitCode.PERMISSION, refused.stderr
        err = refused.stderr
        assert f"The migration user '{limited_role}' cannot write the migration state tables" in err
        assert "Nothing was run." in err and "Traceback" not in err
        assert f"GRANT INSERT, DELETE ON public.schema_migrations TO {limited_role};" in err
        assert f"GRANT INSERT, UPDATE ON public.schema_migrations_history TO {limited_role};" in (
            err
        )
        assert not backups.exists() or not list(backups.iterdir()), "no backup before refusing"
        assert version(database) == [(2, False)]
        assert {"a", "b"} <= database.tables() and "c" not in database.tables()
    with database.connect() as conn:  # the grant the message gives is enough
        conn.execute(sql.SQL("GRANT INSERT, DELETE ON schema_migrations TO {}").format(role))
        conn.execute(
            sql.SQL("GRANT INSERT, UPDATE ON schema_migrations_history TO {}").format(role)
        )
    done = as_role("down", "-n", "1", "--yes", "--no-backup")
    assert done.returncode == 0, done.stderr
    assert version(database) == [(1, False)]


def test_debug_does_not_ask_to_run_with_debug() -> None:
    import psycopg

    from thv_registry.cli import describe_failure

    error = psycopg.errors.InsufficientPrivilege("permission denied for table x")
    assert "Run again with --debug" in describe_failure(error)[1]
    assert "--debug" not in describe_failure(error, debug=True)[1]
    bug = describe_failure(RuntimeError("boom"), debug=True)[1]
    assert "--debug" not in bug and "traceback above" in bug


# -- item 7: wordings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("up", "--num-steps", "abc"), "'abc' is not a whole number: N applies the next N"),
        (("down", "-n", "x1"), "'x1' is not a whole number: N reverts the last N"),
        (("down", "-n", "-3"), "-3 is out of range (at least 0): N reverts the last N"),
        (("goto", "three"), "'three' is not a whole number: V is a version of the set"),
        (("force", "-2"), "-2 is out of range (at least -1): V is a version of the set"),
    ],
)
def test_bad_numbers_say_what_is_expected(
    migrate: MigrateCli, args: tuple[str, ...], expected: str
) -> None:
    result = migrate(*args)
    assert result.returncode == ExitCode.USAGE
    assert expected in result.stderr and "integer range" not in result.stderr


def test_up_with_more_steps_than_pending_says_how_many_ran(
    migrate: MigrateCli, database: TestDatabase
) -> None:
    assert migrate("up", "-n", "2", "--yes").returncode == 0
    result = migrate("up", "-n", "99", "--yes")
    assert result.returncode == 0, result.stderr
    assert "Applied 1 of the 99 steps requested (--num-steps): no more migrations were " in (
        result.stdout
    )
    assert version(database) == [(3, False)]
    assert migrate("down", "-n", "1", "--yes", "--no-backup").returncode == 0
    as_json = migrate("up", "-n", "5", "--yes", "-o", "json")
    done = json.loads(as_json.stdout.splitlines()[-1])
    assert (done["event"], done["steps"], done["requested_steps"]) == ("done", 1, 5)
    exact = migrate("up", "-n", "1", "--yes")  # nothing pending: the usual words, no notice
    assert "steps requested" not in exact.stdout


def test_no_version_reads_naturally(migrate: MigrateCli, database: TestDatabase) -> None:
    assert migrate("up", "-n", "1", "--yes").returncode == 0
    forced = migrate("force", "-1", "--yes")
    assert forced.returncode == 0, forced.stderr
    assert (
        forced.stdout
        == "Database now has no version, clean (was version 1 (a)); no migration ran.\n"
    )
    shown = migrate("force", "-1", input="no\n")
    assert "Clear the version without running anything? Type 'yes' to force:" in shown.stderr
    assert "Force clears the version (no version)" in shown.stdout
    assert "version no version" not in shown.stdout + shown.stderr
    y = migrate("force", "1", input="y\n")  # 'y' does not confirm a force, and says so
    assert "Only 'yes' confirms a force; 'y' is not enough." in y.stderr
    assert version(database) == []


def test_a_failed_first_step_says_the_database_still_has_no_version(
    migrate_cli: Callable[[dict[str, str]], MigrateCli], database: TestDatabase
) -> None:
    migrate = migrate_cli({**THREE_TABLES, "000001_a.up.sql": "CREATE TABLE a (id nosuchtype);\n"})
    failed = migrate("up", "--yes")
    assert failed.returncode == ExitCode.MIGRATION_FAILED
    assert "The step was rolled back: the database still has no version, as before." in (
        failed.stderr
    )
    assert "at no version" not in failed.stderr and database.tables() == set()
