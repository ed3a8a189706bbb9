"""Black-box tests of ``thv-registry-api``: real subprocesses against a real PostgreSQL.

Each test runs ``python -m thv_registry`` from an unrelated directory with a scrubbed environment
and checks exit codes, output and the database itself. Nothing is mocked.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import thv_registry
from thv_registry.errors import ExitCode

if TYPE_CHECKING:
    from conftest import ServerInfo, TestDatabase

SMALL_SET = {
    "000001_a.up.sql": "CREATE TABLE a(id int);\n",
    "000001_a.down.sql": "DROP TABLE a;\n",
    "000002_b.up.sql": "CREATE TABLE b(id int);\n",
    "000002_b.down.sql": "DROP TABLE b;\n",
    "000003_c.up.sql": "CREATE TABLE c(id int);\n",
    "000003_c.down.sql": "DROP TABLE c;\n",
}
STATE_TABLES = {"schema_migrations", "schema_migrations_history"}


@dataclass
class Cli:
    """Runs the CLI as a user would: a subprocess, from ``cwd``, with ``env``."""

    env: dict[str, str]
    cwd: Path

    def __call__(
        self, *args: str | Path, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "thv_registry", *map(str, args)],
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture
def cli(cli_env: dict[str, str], tmp_path: Path) -> Cli:
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    return Cli(cli_env, workdir)


def write_set(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    return write_set(tmp_path / "migrations", SMALL_SET)


def version_of(database: TestDatabase) -> tuple[object, ...] | None:
    if "schema_migrations" not in database.tables():
        return None
    rows = database.query("SELECT version, dirty FROM schema_migrations")
    return rows[0] if rows else None


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: ExitCode) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.strip().count("\n") == 0, "one paragraph: " + result.stderr


# -- basics ----------------------------------------------------------------------------------------


def test_version_prints_the_version(cli: Cli) -> None:
    result = cli("version")
    assert result.returncode == 0
    assert result.stdout == f"thv-registry-api {thv_registry.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", thv_registry.__version__)


@pytest.mark.parametrize(
    "args",
    [["--help"], ["migrate", "--help"], ["migrate", "up", "--help"], ["migrate", "down", "-h"]],
)
def test_help_works_without_a_database(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage: thv-registry-api" in result.stdout
    if args[-2:-1] in (["up"], ["down"]):
        assert "--num-steps" in result.stdout and "--migrations-dir" in result.stdout


# -- up --------------------------------------------------------------------------------------------


def test_up_applies_the_embedded_set(cli: Cli, config_file: Path, database: TestDatabase) -> None:
    from thv_registry.migrations.engine.source import load_source

    migrations = load_source(None).migrations
    if not migrations:
        pytest.skip("database/migrations holds no migrations yet")
    result = cli("migrate", "up", "--config", config_file, "--yes")
    assert result.returncode == 0, result.stderr
    assert version_of(database) == (migrations[-1].version, False)
    assert f"Applied {migrations[0].version:06d} {migrations[0].name}" in result.stdout
    assert len(database.tables()) > len(STATE_TABLES)


def test_up_yes_applies_all(
    cli: Cli, config_file: Path, small_set: Path, database: TestDatabase
) -> None:
    result = cli("migrate", "up", "--config", config_file, "--migrations-dir", small_set, "--yes")
    assert result.returncode == 0, result.stderr
    assert version_of(database) == (3, False)
    assert database.tables() == {"a", "b", "c"} | STATE_TABLES
    lines = result.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines[:6]] == [  # a line as each starts and ends
        "Applying 000001 a ...",
        "Applied 000001 a",
        "Applying 000002 b ...",
        "Applied 000002 b",
        "Applying 000003 c ...",
        "Applied 000003 c",
    ]
    assert re.fullmatch(r"Applied 000001 a \(\d+\.\d{3} s\)", lines[1])
    assert lines[-1] == "Database is now at version 3 (c)."


def test_up_num_steps_then_nothing_pending(
    cli: Cli, config_file: Path, small_set: Path, database: TestDatabase
) -> None:
    common = ("--config", config_file, "--migrations-dir", small_set, "--yes")
    assert cli("migrate", "up", "-n", "1", *common).returncode == 0
    assert version_of(database) == (1, False)
    assert database.tables() == {"a"} | STATE_TABLES

    assert cli("migrate", "up", "--num-steps", "1", *common).returncode == 0
    assert version_of(database) == (2, False)

    assert cli("migrate", "up", *common).returncode == 0
    again = cli("migrate", "up", *common)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "No pending migrations; database is at version 3 (c).\n"


def test_env_vars_name_the_config_and_the_directory(
    cli: Cli, config_file: Path, small_set: Path, database: TestDatabase
) -> None:
    env = {"THV_REGISTRY_CONFIG": str(config_file), "THV_REGISTRY_MIGRATIONS_DIR": str(small_set)}
    result = cli("migrate", "up", "-y", env=env)
    assert result.returncode == 0, result.stderr
    assert version_of(database) == (3, False)


# -- down ------------------------------------------------------------------------------------------


def test_down_one_step_then_all_the_way(
    cli: Cli, config_file: Path, small_set: Path, database: TestDatabase
) -> None:
    common = ("--config", config_file, "--migrations-dir", small_set, "--yes")
    assert cli("migrate", "up", *common).returncode == 0

    one = cli("migrate", "down", "-n", "1", *common)
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines()[0].startswith("Backup written to ")  # before any revert
    assert one.stdout.splitlines()[2] == "Reverting 000003 c ..."
    assert one.stdout.splitlines()[3].startswith("Reverted 000003 c (")
    assert one.stdout.splitlines()[-1] == "Database is now at version 2 (b)."
    assert version_of(database) == (2, False)
    assert database.tables() == {"a", "b"} | STATE_TABLES

    rest = cli("migrate", "down", "--num-steps", "0", *common)
    assert rest.returncode == 0, rest.stderr
    assert [line.split(" (")[0] for line in rest.stdout.splitlines()[2:6]] == [
        "Reverting 000002 b ...",
        "Reverted 000002 b",
        "Reverting 000001 a ...",
        "Reverted 000001 a",
    ]
    assert rest.stdout.splitlines()[-1] == "Database now has no version (all migrations reverted)."
    assert version_of(database) is None
    assert database.tables() == STATE_TABLES

    nothing = cli("migrate", "down", "-n", "0", *common)
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout == "Nothing to revert; the database has no version.\n"


def test_down_without_num_steps_is_a_usage_error(
    cli: Cli, config_file: Path, database: TestDatabase
) -> None:
    result = cli("migrate", "down", "--config", config_file, "--yes")
    assert result.returncode == ExitCode.USAGE
    assert "Missing option '--num-steps'" in result.stderr
    assert "For safety" in result.stderr and "0 reverts all of them" in result.stderr
    assert database.tables() == set()


@pytest.mark.parametrize(
    "args",
    [
        ["up", "-n", "-1"],
        ["up", "--num-steps", "two"],
        ["down", "-n", "-2"],
        ["down", "--num-steps", "1.5"],
    ],
)
def test_bad_num_steps_is_a_usage_error(
    cli: Cli, config_file: Path, database: TestDatabase, args: list[str]
) -> None:
    result = cli("migrate", *args, "--config", config_file, "--yes")
    assert result.returncode == ExitCode.USAGE
    assert "Invalid value for '--num-steps' / '-n'" in result.stderr
    assert database.tables() == set()


def test_down_more_than_applied_is_refused(
    cli: Cli, config_file: Path, small_set: Path, database: TestDatabase
) -> None:
    common = ("--config", config_file, "--migrations-dir", small_set, "--yes")
    assert cli("migrate", "up", "-n", "2", *common).returncode == 0
    result = cli("migrate", "down", "-n", "5", *common)
    assert_clean_failure(result, ExitCode.REFUSED)
    assert "only 2 are applied" in result.stderr
    assert version_of(database) == (2, False)
    assert database.tables() == {"a", "b"} | STATE_TABLES


# -- failures: one paragraph, the right exit code, no traceback ------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "database:\n  host: localhost\n  prot: 5432\n  user: u\n  database: d\n",  # unknown key
        "database:\n  host: localhost\n  port: many\n  user: u\n  database: d\n",  # wrong type
        "database: [unclosed\n",  # not YAML
        None,  # no such file
    ],
)
def test_bad_config_file(cli: Cli, tmp_path: Path, text: str | None) -> None:
    path = tmp_path / "bad.yaml"
    if text is not None:
        path.write_text(text)
    result = cli("migrate", "up", "--config", path, "--yes")
    assert_clean_failure(result, ExitCode.CONFIG)
    assert str(path) in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server(cli: Cli, tmp_path: Path, database: TestDatabase) -> None:
    config = database.write_config(tmp_path / "c.yaml", host="127.0.0.1", port=_free_port())
    result = cli("migrate", "up", "--config", config, "--yes")
    assert_clean_failure(result, ExitCode.CONNECTION)
    assert "127.0.0.1" in result.stderr


def test_stray_file_in_migrations_dir(
    cli: Cli, config_file: Path, tmp_path: Path, database: TestDatabase
) -> None:
    broken = write_set(tmp_path / "broken", {**SMALL_SET, "notes.sql": "-- todo\n"})
    result = cli("migrate", "up", "--config", config_file, "--migrations-dir", broken, "-y")
    assert_clean_failure(result, ExitCode.SOURCE)
    assert "'notes.sql'" in result.stderr
    assert database.tables() == set()


def test_debug_shows_the_traceback_and_keeps_the_exit_code(
    cli: Cli, config_file: Path, tmp_path: Path
) -> None:
    broken = write_set(tmp_path / "broken", {"000001_a.up.sql": "SELECT 1;\n", "2_b.UP.sql": "x"})
    for args in (["--debug", "migrate", "up"], ["migrate", "up", "--debug"]):
        result = cli(*args, "--config", config_file, "--migrations-dir", broken, "-y")
        assert result.returncode == ExitCode.SOURCE
        assert "Traceback (most recent call last)" in result.stderr
        assert "Error: Invalid migration set" in result.stderr


def test_failing_migration_rolls_back_and_names_the_line(
    cli: Cli, config_file: Path, tmp_path: Path, database: TestDatabase
) -> None:
    files = {
        **SMALL_SET,
        "000002_b.up.sql": "CREATE TABLE b(id int);\nINSERT INTO nope VALUES (1);\n",
    }
    migrations = write_set(tmp_path / "failing", files)
    result = cli("migrate", "up", "--config", config_file, "--migrations-dir", migrations, "-y")
    assert result.returncode == ExitCode.MIGRATION_FAILED, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(r"000002_b\.up\.sql:2:\d+", result.stderr), result.stderr
    assert 'relation "nope" does not exist' in result.stderr
    assert result.stdout.startswith("Applying 000001 a ...\nApplied 000001 a (")
    assert result.stdout.endswith("Applying 000002 b ...\n")  # the step that failed
    assert version_of(database) == (1, False)
    assert database.tables() == {"a"} | STATE_TABLES


# -- JSON output -----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_output_is_parseable(cli: Cli, config_file: Path, small_set: Path, where: str) -> None:
    flag = ["--log-format", "json"]
    cmd = ["migrate", "up", "--config", str(config_file), "--migrations-dir", str(small_set), "-y"]
    result = cli(*(flag + cmd if where == "before" else cmd + flag))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["step", "step", "step", "done"]
    assert events[0]["direction"] == "up" and events[0]["version"] == 1
    assert events[0]["name"] == "a" and isinstance(events[0]["duration_s"], float)
    assert events[-1]["version"] == 3 and events[-1]["dirty"] is False

    again = cli(*(flag + cmd))
    assert json.loads(again.stdout) == {"event": "done", "version": 3, "dirty": False, "steps": 0}


def test_json_errors_are_json_records(cli: Cli, config_file: Path, tmp_path: Path) -> None:
    broken = write_set(tmp_path / "broken", {"000001_a.up.sql": "SELECT 1;\n", "x.sql": "x\n"})
    args: list[str | Path] = ["migrate", "up", "--config", config_file, "--migrations-dir", broken]
    result = cli("--log-format", "json", *args, "-y")
    assert result.returncode == ExitCode.SOURCE
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records[-1]["level"] == "error" and records[-1]["exit_code"] == ExitCode.SOURCE
    assert "'x.sql'" in records[-1]["message"]
    assert {"time", "logger"} <= records[-1].keys()


# -- secrets ---------------------------------------------------------------------------------------


def test_password_never_appears(
    cli: Cli, tmp_path: Path, small_set: Path, database: TestDatabase
) -> None:
    secret = "s3cr3t-pw"
    good = database.write_config(tmp_path / "good.yaml", password=secret)
    wrong_db = database.write_config(
        tmp_path / "wrong.yaml", password=secret, database="no_such_database_here"
    )
    runs = [
        cli("migrate", "up", "--config", good, "--migrations-dir", small_set, input="n\n"),
        cli("migrate", "up", "--config", good, "--migrations-dir", small_set, "-y"),
        cli("migrate", "down", "-n1", "--config", good, "--migrations-dir", small_set, input="no"),
        cli("migrate", "up", "--config", wrong_db, "--migrations-dir", small_set, "-y"),
        cli("--debug", "migrate", "up", "--config", wrong_db, "--migrations-dir", small_set, "-y"),
        cli("--log-format", "json", "migrate", "up", "--config", wrong_db, "-y"),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0] + [ExitCode.CONNECTION] * 3
    assert "no_such_database_here" in runs[3].stderr
    for run in runs:
        assert secret not in run.stdout + run.stderr


# -- the embedded default --------------------------------------------------------------------------


def test_no_config_uses_the_embedded_server(
    cli: Cli, pg_server: ServerInfo, small_set: Path, tmp_path: Path
) -> None:
    if pg_server.kind != "embedded":
        pytest.skip("needs the embedded test server")
    import psycopg
    from psycopg import sql

    from conftest import TEST_STATE_DIR
    from thv_registry.db.embedded import DEFAULT_DATABASE

    env = {"THV_REGISTRY_EMBEDDED_DIR": str(TEST_STATE_DIR / "pgdata")}  # the running test server
    no_db_block = tmp_path / "other.yaml"
    no_db_block.write_text("migrations:\n  lockRetries: 1\n")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(DEFAULT_DATABASE)
    )
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(drop)
    try:
        first = cli("migrate", "up", "--migrations-dir", small_set, "-y", env=env)
        assert first.returncode == 0, first.stderr
        assert "Using the embedded PostgreSQL" in first.stderr
        assert "pass --config or --database-url to use your own server" in first.stderr
        assert "not used" not in first.stderr  # no connection variable is set
        assert first.stdout.splitlines()[-1] == "Database is now at version 3 (c)."
        # issue 11, item 1: an explicit --config never falls back to the embedded server
        args: list[str | Path] = ["--config", no_db_block, "--migrations-dir", small_set, "-y"]
        second = cli("migrate", "down", "-n", "0", *args, env=env)
        assert second.returncode == ExitCode.CONFIG, second.stderr
        assert f"{no_db_block} has no database: block" in second.stderr
        assert "--database-url" in second.stderr and "embedded PostgreSQL" not in second.stderr
        with psycopg.connect(pg_server.conninfo(DEFAULT_DATABASE), autocommit=True) as conn:
            assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(3,)]
        # connection variables a user may expect to be read are named as ignored
        libpq = {**env, "DATABASE_URL": "postgresql://u:hunter2@db.example/x", "PGHOST": "db"}
        third = cli("migrate", "version", "--migrations-dir", small_set, env=libpq)
        assert third.returncode == 0, third.stderr
        assert third.stdout == "3\n"
        assert "Warning: DATABASE_URL, PGHOST are set but not used" in third.stderr
        assert '--database-url "$DATABASE_URL"' in third.stderr
        assert "hunter2" not in third.stderr
    finally:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
            conn.execute(drop)
