"""The confirmation prompt of ``migrate up`` / ``migrate down``, answered through stdin.

Real subprocesses against a real PostgreSQL: what is shown, which answers run, and that a missing
answer fails at once (never hangs) and leaves the database as it was.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

from thv_registry.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import MigrateCli as Migrate
    from conftest import TestDatabase

SMALL_SET = {
    "000001_a.up.sql": "CREATE TABLE a(id int);\n",
    "000001_a.down.sql": "DROP TABLE a;\n",
    "000002_b.up.sql": "CREATE TABLE b(id int);\n",
    "000002_b.down.sql": "DROP TABLE b;\n",
}
DATA_LOSS = (
    "Reverting drops the tables, columns and data these migrations created; the data cannot be "
    "recovered from the database."
)


@pytest.fixture
def migrate(migrate_cli: Callable[[dict[str, str]], Migrate]) -> Migrate:
    return migrate_cli(SMALL_SET)


def version_of(database: TestDatabase) -> tuple[object, ...] | None:
    if "schema_migrations" not in database.tables():
        return None
    rows = database.query("SELECT version, dirty FROM schema_migrations")
    return rows[0] if rows else None


def target(database: TestDatabase) -> str:
    server = database.server
    return f"{server.user}@{server.host}:{server.port}/{database.name}"


# -- up --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["y\n", "yes\n", "  YES \n", "Y"])
def test_up_applies_after_yes(migrate: Migrate, database: TestDatabase, answer: str) -> None:
    result = migrate("up", input=answer)
    assert result.returncode == 0, result.stderr
    assert "Apply 2 migrations? [y/N]: " in result.stderr
    assert "Applied 000002 b (" in result.stdout
    assert version_of(database) == (2, False)


@pytest.mark.parametrize("answer", ["n\n", "\n", "yess\n", "no thanks\n"])
def test_up_other_answers_cancel(migrate: Migrate, database: TestDatabase, answer: str) -> None:
    result = migrate("up", input=answer)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "Cancelled; nothing was changed."
    assert database.tables() == set()  # not even the state tables


def test_up_shows_the_plan(migrate: Migrate, database: TestDatabase) -> None:
    assert migrate("up", "-n", "1", "--yes").returncode == 0
    result = migrate("up", input="n\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Database:          {target(database)}",
        "Current version:   1 (a)",
        "Migrations to apply (1):",
        "  up   000002 b   (transaction)",
        "         CREATE TABLE b(id int)   no lock on existing tables",
        "Resulting version: 2 (b)",
        "Cancelled; nothing was changed.",
    ]
    assert "WARNING" not in result.stdout
    assert version_of(database) == (1, False)


def test_up_with_nothing_pending_does_not_ask(migrate: Migrate, database: TestDatabase) -> None:
    assert migrate("up", "--yes").returncode == 0
    result = migrate("up", stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No pending migrations; database is at version 2 (b).\n"
    assert "[y/N]" not in result.stderr


# -- down ------------------------------------------------------------------------------------------


def test_down_shows_the_plan_and_the_data_loss_warning(
    migrate: Migrate, database: TestDatabase
) -> None:
    assert migrate("up", "--yes").returncode == 0
    result = migrate("down", "-n", "0", input="y\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    statements = [line for line in lines if line.startswith("         ")]  # lock notes may vary
    assert statements[0].startswith("         DROP TABLE b   ACCESS EXCLUSIVE on b, rewrite: no")
    assert [line for line in lines if line not in statements] == [
        f"Database:          {target(database)}",
        "Current version:   2 (b)",
        "Migrations to revert (2):",
        "  down 000002 b   (transaction)",
        "  down 000001 a   (transaction)",
        "Resulting version: no version",
        f"WARNING: {DATA_LOSS}",
        "Cancelled; nothing was changed.",
    ]
    assert "Type 'yes' to revert" in result.stderr
    assert version_of(database) == (2, False)  # 'y' is not enough for down


def test_down_reverts_after_typing_yes(migrate: Migrate, database: TestDatabase) -> None:
    assert migrate("up", "--yes").returncode == 0
    result = migrate("down", "--num-steps", "1", input="yes\n")
    assert result.returncode == 0, result.stderr
    assert "Reverted 000002 b (" in result.stdout
    assert result.stdout.splitlines()[-1] == "Database is now at version 1 (a)."
    assert version_of(database) == (1, False)
    assert "b" not in database.tables()


# -- no answer -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["up"], ["down", "-n", "1"]])
def test_eof_is_unconfirmed(migrate: Migrate, database: TestDatabase, command: list[str]) -> None:
    if command[0] == "down":
        assert migrate("up", "--yes").returncode == 0
    before = version_of(database), database.tables()
    started = time.monotonic()
    result = migrate(*command, stdin=subprocess.DEVNULL)
    assert time.monotonic() - started < 30
    assert result.returncode == ExitCode.UNCONFIRMED, result.stderr
    assert "no answer could be read" in result.stderr
    assert "--yes" in result.stderr and "Traceback" not in result.stderr
    assert (version_of(database), database.tables()) == before


def test_closed_stdin_is_unconfirmed(migrate: Migrate, database: TestDatabase) -> None:
    argv = ["sh", "-c", 'exec "$@" <&-', "sh", *migrate.argv("up")]
    result = subprocess.run(
        argv, env=migrate.env, cwd=migrate.cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == ExitCode.UNCONFIRMED, result.stderr
    assert "--yes" in result.stderr and "Traceback" not in result.stderr
    assert database.tables() == set()


# -- the state moves while a person reads the plan -------------------------------------------------


def _read_until(stream: int, marker: bytes, timeout: float = 30.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {marker!r} in {seen!r}"
        ready, _, _ = select.select([stream], [], [], remaining)
        if ready:
            chunk = os.read(stream, 4096)
            assert chunk, f"stream closed before {marker!r}: {seen!r}"
            seen += chunk
    return seen


def _start_at_prompt(migrate: Migrate, *args: str) -> subprocess.Popen[bytes]:
    """Start ``migrate *args`` with a pipe for stdin; return once it asks its question."""
    proc = subprocess.Popen(
        migrate.argv(*args),
        env=migrate.env,
        cwd=migrate.cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Ctrl-C as in a terminal: a shell without job control starts background commands
        # (e.g. `.ci/run &`) with SIGINT ignored, and every child would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    try:
        _read_until(proc.stderr.fileno(), b"[y/N]: ")
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc


def test_plan_changed_meanwhile_is_refused(migrate: Migrate, database: TestDatabase) -> None:
    with _start_at_prompt(migrate, "up") as proc:
        assert proc.stdin is not None
        assert migrate("up", "-n", "1", "--yes").returncode == 0  # someone else ran meanwhile
        proc.stdin.write(b"y\n")
        proc.stdin.flush()
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.REFUSED, stderr
    assert b"changed while the plan was being confirmed" in stderr
    assert b"Applied" not in stdout
    assert version_of(database) == (1, False)


@pytest.mark.parametrize(
    ("signum", "said"),
    [(signal.SIGINT, b"Interrupted (Ctrl-C)"), (signal.SIGTERM, b"Terminated (SIGTERM)")],
)
def test_ctrl_c_at_the_prompt(
    migrate: Migrate, database: TestDatabase, signum: int, said: bytes
) -> None:
    with _start_at_prompt(migrate, "up") as proc:
        proc.send_signal(signum)
        proc.wait(timeout=60)  # stdin stays open: only the interrupt can end the prompt
        _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    # after the prompt (read already), its line (and a terminal's ^C) is ended first
    assert stderr == b"\nError: " + said + b" at the prompt: cancelled, nothing was changed.\n"
    assert b"Traceback" not in stderr
    assert database.tables() == set()
