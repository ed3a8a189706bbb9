"""What a user sees of a run: progress lines, the plan (wrapped, coloured, lock notes settled
by the catalog), ``--sql``, and passwords masked in every one of them (issue 11, items 9-11)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import termios
import time
import uuid
from collections.abc import Callable

from conftest import MigrateCli, TestDatabase
from thv_registry.migrations.tools.explain import NEW_TABLE_NOTE
from thv_registry.redact import MASK

ESC = "\x1b["

PARENT_CHILD = {
    "000001_a.up.sql": "CREATE TABLE parent (id int PRIMARY KEY);\n"
    "CREATE TABLE child (id int, p int CONSTRAINT child_p_fk REFERENCES parent,\n"
    "                    CONSTRAINT child_ck CHECK (id > 0));\n",
    "000001_a.down.sql": "DROP TABLE child;\nDROP TABLE parent;\n",
}


def version_of(db: TestDatabase) -> list[tuple[object, ...]]:
    return (
        db.query("SELECT version, dirty FROM schema_migrations")
        if "schema_migrations" in (db.tables())
        else []
    )


# -- item 11: passwords --------------------------------------------------------------------------


def test_password_literals_are_masked_in_every_view(
    migrate_cli: Callable[[dict[str, str]], MigrateCli], database: TestDatabase
) -> None:
    name = f"thv_test_role_{uuid.uuid4().hex[:8]}"
    files = {
        "000001_role.up.sql": f"CREATE ROLE {name} LOGIN PASSWORD 'sup3r-secret-one';\n"
        f"ALTER ROLE {name} WITH PASSWORD $pw$sup3r-secret-two$pw$;\n",
        "000001_role.down.sql": f"DROP ROLE {name};\n",
    }
    cli = migrate_cli(files)
    try:
        runs = {
            "dry-run": cli("up", "--dry-run"),
            "sql": cli("up", "--sql"),
            "json": cli("up", "--dry-run", "-o", "json"),
            "prompt": cli("up", input="n\n"),
            "debug": cli("up", "--yes", "--debug"),
        }
        for what, run in runs.items():
            assert run.returncode == 0, (what, run.stderr)
            assert "sup3r" not in run.stdout + run.stderr, what
        assert f"CREATE ROLE {name} LOGIN PASSWORD '{MASK}'" in runs["dry-run"].stdout
        assert f"ALTER ROLE {name} WITH PASSWORD '{MASK}';" in runs["sql"].stdout
        (plan,) = [json.loads(line) for line in runs["json"].stdout.splitlines()]
        sql = [s["sql"] for s in plan["steps"][0]["statements"]]
        assert sql[0] == f"CREATE ROLE {name} LOGIN PASSWORD '{MASK}'"
        assert f"debug: {cli.migrations}/000001_role.up.sql: ALTER ROLE" in runs["debug"].stderr
        assert MASK in runs["debug"].stderr
        # the role was really created with the real password: the masking is only in the views
        rows = database.query("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s",
                              (name,))  # fmt: skip
        assert rows == [(True,)]
    finally:
        with database.connect() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {name}")


# -- item 10: --sql, lock notes, wrapping and colours --------------------------------------------


def test_sql_prints_every_planned_statement_and_changes_nothing(
    migrate_cli: Callable[[dict[str, str]], MigrateCli], database: TestDatabase
) -> None:
    files = {
        **PARENT_CHILD,
        "000002_idx.up.sql": "CREATE INDEX CONCURRENTLY child_id ON child (id);\n",
        "000002_idx.down.sql": "DROP INDEX CONCURRENTLY child_id;\n",
    }
    cli = migrate_cli(files)
    result = cli("up", "--sql")
    assert result.returncode == 0, result.stderr
    assert database.tables() == set()  # nothing ran, not even the state tables
    text = result.stdout
    assert (
        "-- 000001 a (up): " in text
        and "BEGIN;\nCREATE TABLE parent (id int PRIMARY KEY);\n" in text
    )
    assert "CONSTRAINT child_ck CHECK (id > 0));\nCOMMIT;" in text  # the whole statement
    assert "-- outside a transaction (golang-migrate's dirty protocol)" in text
    assert text.rstrip().endswith("CREATE INDEX CONCURRENTLY child_id ON child (id);")
    assert cli("up", "--yes").returncode == 0
    down = cli("down", "-n", "1", "--sql")
    assert down.returncode == 0 and "DROP INDEX CONCURRENTLY child_id;" in down.stdout
    assert "DROP TABLE" not in down.stdout


def test_lock_notes_are_settled_by_the_catalog(
    migrate_cli: Callable[[dict[str, str]], MigrateCli],
) -> None:
    files = {
        **PARENT_CHILD,
        "000002_b.up.sql": "CREATE TABLE fresh (id int, v text);\n"
        "CREATE INDEX fresh_v ON fresh (v);\n"
        "ALTER TABLE child DROP CONSTRAINT child_p_fk;\n"
        "ALTER TABLE child DROP CONSTRAINT child_ck;\n"
        "CREATE INDEX child_id ON child (id);\n",
        "000002_b.down.sql": "DROP TABLE fresh;\n",
        "000003_c.up.sql": "DROP TABLE child;\n",
        "000003_c.down.sql": "SELECT 1;\n",
    }
    cli = migrate_cli(files)
    assert cli("up", "-n", "1", "--yes").returncode == 0
    result = cli("up", "--dry-run")
    assert result.returncode == 0, result.stderr
    statements = [line for line in result.stdout.splitlines() if line.startswith(" " * 9)]

    def shown(fragment: str) -> str:
        (line,) = [line for line in statements if fragment in line]
        return line

    fresh_index = shown("CREATE INDEX fresh_v")
    assert NEW_TABLE_NOTE in fresh_index and "writes to the table wait" not in fresh_index
    fk = shown("DROP CONSTRAINT child_p_fk")
    assert "ACCESS EXCLUSIVE on parent" in fk and "child_p_fk is a foreign key" in fk
    assert "if child_p_fk is a foreign key" not in fk
    check = shown("DROP CONSTRAINT child_ck")
    assert "foreign key" not in check and "parent" not in check
    old_index = shown("CREATE INDEX child_id")
    assert "writes to the table wait until it is built" in old_index  # an existing table
    # DROP TABLE child, planned after step 2 drops its only foreign key: the catalog (as it is
    # now, before step 2) still shows it, so parent is named rather than "not visible"
    drop = shown("DROP TABLE child")
    assert "ACCESS EXCLUSIVE on parent" in drop and "not visible from the text" not in drop


def run_in_terminal(
    argv: list[str], env: dict[str, str], cwd: str, columns: int = 80
) -> tuple[int, str]:
    """Run ``argv`` with stdout on a pseudo-terminal of ``columns`` columns; (exit code, output)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    code = proc.wait(timeout=60)
    assert proc.stderr is not None
    errors = proc.stderr.read().decode()
    proc.stderr.close()
    return code, b"".join(chunks).decode() + errors


def test_on_a_terminal_the_plan_wraps_and_has_colours(
    migrate_cli: Callable[[dict[str, str]], MigrateCli],
) -> None:
    files = {
        **PARENT_CHILD,
        "000002_b.up.sql": "ALTER TABLE child ADD COLUMN created_at timestamptz "
        "NOT NULL DEFAULT clock_timestamp();\n",
        "000002_b.down.sql": "ALTER TABLE child DROP COLUMN created_at;\n",
    }
    cli = migrate_cli(files)
    assert cli("up", "-n", "1", "--yes").returncode == 0
    env = {k: v for k, v in cli.env.items() if k != "NO_COLOR"}
    code, shown = run_in_terminal(cli.argv("up", "--dry-run"), env, str(cli.cwd), columns=72)
    assert code == 0, shown
    assert ESC in shown  # colours
    assert f"{ESC}31mACCESS EXCLUSIVE" in shown
    plain = [_strip(line) for line in shown.replace("\r\n", "\n").splitlines()]
    assert all(len(line) <= 72 for line in plain), plain
    assert any(line.startswith(" " * 13) and "rewrite" in line for line in plain)  # wrapped
    code, no_color = run_in_terminal(
        cli.argv("up", "--dry-run"), {**env, "NO_COLOR": "1"}, str(cli.cwd), columns=72
    )
    assert code == 0 and ESC not in no_color
    piped = cli("up", "--dry-run")  # not a terminal: no colours, one line per statement
    assert ESC not in piped.stdout
    assert any(len(line) > 100 for line in piped.stdout.splitlines())


def _strip(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


# -- item 9: progress ----------------------------------------------------------------------------


def test_progress_lines_when_piped_and_json_unchanged(
    migrate_cli: Callable[[dict[str, str]], MigrateCli],
) -> None:
    cli = migrate_cli(PARENT_CHILD)
    result = cli("up", "--yes")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Applying 000001 a ..." and lines[1].startswith("Applied 000001 a (")
    back = cli("down", "-n", "1", "--yes", "--no-backup", "-o", "json")
    events = [json.loads(line)["event"] for line in back.stdout.splitlines()]
    assert events == ["step", "done"]  # JSON: one event per finished step, as before


def test_terminal_shows_elapsed_time_for_a_slow_step(
    migrate_cli: Callable[[dict[str, str]], MigrateCli], database: TestDatabase
) -> None:
    files = {
        "000001_fast.up.sql": "CREATE TABLE fast (id int);\n",
        "000001_fast.down.sql": "DROP TABLE fast;\n",
        "000002_slow.up.sql": "SELECT pg_sleep(1.8);\n",
        "000002_slow.down.sql": "SELECT 1;\n",
    }
    cli = migrate_cli(files)
    code, shown = run_in_terminal(cli.argv("up", "--yes"), cli.env, str(cli.cwd))
    assert code == 0, shown
    lines = [_strip(line.split("\r")[-1]) for line in shown.replace("\r\n", "\n").splitlines()]
    assert lines[0] == "Applying 000001 fast ..."  # under a second: no indicator
    assert lines[1].startswith("Applied 000001 fast (")
    redrawn = shown.replace("\r\n", "\n").replace("\r", "\n").splitlines()  # in place
    assert any(_strip(line).rstrip() == "Applying 000002 slow ... 1 s" for line in redrawn)
    assert "Applied 000002 slow (1." in shown
    assert version_of(database) == [(2, False)]
