"""The plan display (statements, locks, rewrites, transaction mode) and ``--dry-run``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from thv_registry.errors import ExitCode
from thv_registry.migrations.tools.explain import first_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import MigrateCli as Run
    from conftest import TestDatabase

SET = {
    "000001_source.up.sql": "CREATE TABLE source (id int PRIMARY KEY, name text);\n",
    "000001_source.down.sql": "DROP TABLE source;\n",
    "000002_add_claims.up.sql": (
        "-- claims travel with each source\n"
        "ALTER TABLE source ADD COLUMN claims jsonb;\n"
        "ALTER TABLE source\n    ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();\n"
    ),
    "000002_add_claims.down.sql": "ALTER TABLE source DROP COLUMN claims, DROP COLUMN token;\n",
    "000003_name_idx.up.sql": "CREATE INDEX CONCURRENTLY source_name_idx ON source (name);\n",
    "000003_name_idx.down.sql": "DROP INDEX CONCURRENTLY source_name_idx;\n",
}


@pytest.fixture
def run(migrate_cli: Callable[[dict[str, str]], Run]) -> Run:
    return migrate_cli(SET)


def test_first_line_collapses_and_truncates() -> None:
    assert first_line("ALTER TABLE t\n    ADD COLUMN x int") == "ALTER TABLE t ADD COLUMN x int"
    long = "CREATE TABLE t (" + ", ".join(f"c{i} int" for i in range(30)) + ")"
    cut = first_line(long)
    assert len(cut) <= 60 and cut.endswith(" ...") and cut.startswith("CREATE TABLE t (c0 int")


def test_dry_run_shows_statements_and_locks_and_changes_nothing(
    run: Run, database: TestDatabase
) -> None:
    result = run("up", "--dry-run")  # stdin is /dev/null: it must not ask
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "[y/N]" not in result.stderr
    assert lines[2] == "Migrations to apply (3):"
    assert lines[3] == "  up   000001 source   (transaction)"
    assert lines[4].split("   ")[-1] == "no lock on existing tables"
    assert lines[5] == "  up   000002 add_claims   (transaction)"
    claims = lines[6].strip()
    assert claims.startswith("ALTER TABLE source ADD COLUMN claims jsonb")
    assert claims.endswith("ACCESS EXCLUSIVE on source, rewrite: no")
    token = lines[7].strip()
    assert token.startswith("ALTER TABLE source ADD COLUMN token uuid NOT NULL DEFAU")
    assert "ACCESS EXCLUSIVE on source, rewrite: yes" in token
    assert lines[8] == "  up   000003 name_idx   (no transaction: dirty while it runs)"
    assert "SHARE UPDATE EXCLUSIVE on source" in lines[9]
    assert lines[-2:] == ["Resulting version: 3 (name_idx)", "Dry run: nothing was changed."]
    assert database.tables() == set(), "not even the state tables"


def test_dry_run_down_and_goto(run: Run, database: TestDatabase) -> None:
    assert run("up", "--yes").returncode == 0
    down = run("down", "-n", "2", "--dry-run")
    assert down.returncode == 0, down.stderr
    assert "  down 000003 name_idx   (no transaction: dirty while it runs)" in down.stdout
    assert "  down 000002 add_claims   (transaction)" in down.stdout
    assert "WARNING: Reverting drops" in down.stdout and "Dry run" in down.stdout
    goto = run("goto", "1", "--dry-run")
    assert goto.returncode == 0 and goto.stdout == down.stdout
    assert database.query("SELECT version FROM schema_migrations") == [(3,)]
    assert "claims" in {
        r[0]
        for r in database.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'source'"
        )
    }


def test_dry_run_json_plan(run: Run, database: TestDatabase) -> None:
    result = run("up", "-n", "2", "--dry-run", "--output", "json")
    assert result.returncode == 0, result.stderr
    (event,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert event["event"] == "plan" and event["dry_run"] is True
    assert (event["current_version"], event["final_version"], event["dirty"]) == (None, 2, False)
    assert event["accepted"] == []
    step = event["steps"][1]
    assert {k: step[k] for k in ("direction", "version", "name", "target_version")} == {
        "direction": "up", "version": 2, "name": "add_claims", "target_version": 2,
    }  # fmt: skip
    assert step["transactional"] is True and step["file"].endswith("000002_add_claims.up.sql")
    first = step["statements"][0]
    assert first["line"] == 2 and first["kind"] == "AlterTableStmt"
    assert first["text"] == "ALTER TABLE source ADD COLUMN claims jsonb"
    assert first["locks"] == [{"mode": "ACCESS EXCLUSIVE", "relation": "source"}]
    assert first["rewrites"] is False
    assert step["statements"][1]["rewrites"] is True
    # the global --log-format json selects the same output; nothing pending still gives a plan
    assert run("up", "--yes").returncode == 0
    empty = run("up", "--dry-run", "--log-format", "json")
    assert json.loads(empty.stdout)["steps"] == []
    assert database.query("SELECT count(*) FROM schema_migrations_history")[0][0] == 4


def test_plan_is_shown_before_the_question(run: Run, database: TestDatabase) -> None:
    result = run("up", "-n", "2")  # no answer: the plan is shown, then the prompt fails
    assert result.returncode == ExitCode.UNCONFIRMED
    assert "ACCESS EXCLUSIVE on source, rewrite: no" in result.stdout
    assert database.tables() == set()


def test_dry_run_reports_a_broken_file_and_refusals(run: Run, database: TestDatabase) -> None:
    (run.migrations / "000003_name_idx.up.sql").write_text("CREATE INDEX oops ON;\n")
    broken = run("up", "--dry-run")
    assert broken.returncode == ExitCode.SOURCE and "000003_name_idx.up.sql:1:" in broken.stderr
    refused = run("down", "-n", "1", "--dry-run")
    assert refused.returncode == ExitCode.REFUSED and "no version" in refused.stderr
    assert database.tables() == set()
