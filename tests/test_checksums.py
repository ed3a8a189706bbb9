"""Checksums: an applied file edited afterwards stops `up`, unless explicitly accepted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import THREE_TABLES
from thv_registry.cli.hints import describe
from thv_registry.errors import ChecksumMismatch, ExitCode, PlanRefused
from thv_registry.migrations.engine.model import (
    Down,
    Goto,
    HistoryDirection,
    HistoryEntry,
    Migration,
    MigrationFile,
    Up,
    VersionState,
)
from thv_registry.migrations.engine.planner import plan

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import MigrateCli as Run
    from conftest import TestDatabase

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SET = THREE_TABLES


def mig(version: int) -> Migration:
    up = MigrationFile(f"m/{version:06d}_m{version}.up.sql", Path("/dev/null"))
    down = MigrationFile(f"m/{version:06d}_m{version}.down.sql", Path("/dev/null"))
    return Migration(version, f"m{version}", up, down)


def up_row(version: int, checksum: str) -> HistoryEntry:
    return HistoryEntry(version, f"m{version}", HistoryDirection.UP, checksum, version, NOW, NOW)


MIGRATIONS = [mig(1), mig(2), mig(3)]
HISTORY = [
    HistoryEntry(0, "", HistoryDirection.BASELINE, None, None, NOW, NOW),
    up_row(1, "s1"),
    up_row(2, "s2"),
]
AT_2 = VersionState(2, False)


# -- planner ---------------------------------------------------------------------------------------


def test_changed_file_refuses_up_and_goto_up_not_down() -> None:
    sums = {1: "s1", 2: "edited"}
    for request in (Up(), Up(1), Goto(3), Goto(2)):
        with pytest.raises(ChecksumMismatch) as err:
            plan(request, MIGRATIONS, AT_2, HISTORY, sums)
        assert "m/000002_m2.up.sql (version 2" in str(err.value)
        assert "--accept-changed 2" in describe(err.value)
        assert [c.version for c in err.value.changed] == [2]
    assert len(plan(Down(1), MIGRATIONS, AT_2, HISTORY, sums).steps) == 1
    assert len(plan(Goto(1), MIGRATIONS, AT_2, HISTORY, sums).steps) == 1


def test_accepting_lets_up_continue_and_carries_the_change() -> None:
    p = plan(Up(accept_changed=frozenset({2})), MIGRATIONS, AT_2, HISTORY, {1: "s1", 2: "new"})
    assert [s.migration.version for s in p.steps] == [3]
    assert [(c.version, c.recorded, c.actual) for c in p.accepted] == [(2, "s2", "new")]
    # an accept row makes the new checksum the recorded one
    accepted = [*HISTORY, HistoryEntry(2, "m2", HistoryDirection.ACCEPT, "new", 2, NOW, NOW)]
    assert plan(Up(), MIGRATIONS, AT_2, accepted, {1: "s1", 2: "new"}).accepted == ()


def test_no_history_row_is_unknown_not_changed() -> None:
    # golang-migrate applied 1 and 2: no checksums recorded, nothing to compare
    assert len(plan(Up(), MIGRATIONS, AT_2, (), {1: "x", 2: "y"}).steps) == 1
    baseline_only = [HistoryEntry(2, "", HistoryDirection.BASELINE, None, 2, NOW, NOW)]
    assert len(plan(Up(), MIGRATIONS, AT_2, baseline_only, {1: "x", 2: "y"}).steps) == 1


def test_reapplied_version_compares_with_its_latest_up() -> None:
    history = [
        *HISTORY,
        HistoryEntry(2, "m2", HistoryDirection.DOWN, "d2", 1, NOW, NOW),
        up_row(2, "s2-again"),
    ]
    assert plan(Up(), MIGRATIONS, AT_2, history, {1: "s1", 2: "s2-again"}).accepted == ()


def test_accepting_a_version_not_in_the_set_is_refused() -> None:
    with pytest.raises(PlanRefused) as err:
        plan(Up(accept_changed=frozenset({9})), MIGRATIONS, AT_2, HISTORY, {})
    assert "no migration 9" in str(err.value) and "--accept-changed" in describe(err.value)


# -- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def run(migrate_cli: Callable[[dict[str, str]], Run]) -> Run:
    return migrate_cli(SET)


def history(database: TestDatabase) -> list[tuple[object, ...]]:
    return database.query(
        "SELECT direction, version, checksum FROM schema_migrations_history ORDER BY id"
    )


def test_edited_file_is_refused_then_accepted(run: Run, database: TestDatabase) -> None:
    assert run("up", "-n", "2", "--yes").returncode == 0
    edited = run.migrations / "000002_b.up.sql"
    edited.write_text("CREATE TABLE b (id int, extra text);\n")
    before = history(database)

    refused = run("up", "--yes")
    assert refused.returncode == ExitCode.REFUSED
    assert str(edited) in refused.stderr and "version 2" in refused.stderr
    assert "--accept-changed 2" in refused.stderr and "Traceback" not in refused.stderr
    assert history(database) == before and "c" not in database.tables()
    status = run("status")
    assert status.returncode == ExitCode.REFUSED
    assert "000002   b     changed since applied" in status.stdout

    accepted = run("up", "--yes", "--accept-changed", "2")
    assert accepted.returncode == 0, accepted.stderr
    assert "warning: accepting the changed file" in accepted.stderr
    assert "Accepted the changed file" in accepted.stdout
    rows = history(database)
    assert rows[-2][:2] == ("accept", 2) and rows[-1][:2] == ("up", 3)
    import hashlib

    assert rows[-2][2] == hashlib.sha256(edited.read_bytes()).hexdigest()
    assert run("up", "--yes").returncode == 0
    assert run("status").returncode == 0


def test_accept_with_nothing_pending_records_only_the_checksum(
    run: Run, database: TestDatabase
) -> None:
    assert run("up", "--yes").returncode == 0
    (run.migrations / "000001_a.up.sql").write_text("-- explained\nCREATE TABLE a (id int);\n")
    assert run("up", "--yes").returncode == ExitCode.REFUSED
    dry = run("up", "--accept-changed", "1", "--dry-run", "-o", "json")
    assert dry.returncode == 0
    plan_event = json.loads(dry.stdout)
    assert plan_event["steps"] == [] and plan_event["accepted"][0]["version"] == 1
    assert history(database)[-1][0] == "up", "a dry run records nothing"
    result = run("up", "--accept-changed", "1", "--yes")
    assert result.returncode == 0, result.stderr
    assert history(database)[-1][:2] == ("accept", 1)
    assert run("status").returncode == 0
    unchanged = run("up", "--accept-changed", "2", "--yes")
    assert unchanged.returncode == 0 and "nothing to accept" in unchanged.stderr


def test_applied_by_another_tool_is_unknown(run: Run, database: TestDatabase) -> None:
    with database.connect() as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty bool NOT NULL)"
        )
        conn.execute("CREATE TABLE a (id int)")
        conn.execute("INSERT INTO schema_migrations VALUES (1, false)")
    (run.migrations / "000001_a.up.sql").write_text("CREATE TABLE a (id bigint);\n")
    status = run("status")
    assert "000001   a     applied outside this tool" in status.stdout
    assert status.returncode == ExitCode.PENDING
    assert run("up", "--yes").returncode == 0
    assert run("status").stdout.count("applied outside this tool") == 1
