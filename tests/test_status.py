"""``migrate status`` and ``migrate version``: the pure computation, then the CLI end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import THREE_TABLES, write_migrations
from thv_registry.cli.hints import describe
from thv_registry.errors import ExitCode
from thv_registry.migrations.engine.model import (
    HistoryDirection,
    HistoryEntry,
    Migration,
    MigrationFile,
    Up,
    VersionState,
)
from thv_registry.migrations.tools.status import MigrationState, Outlook, compute_status

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import MigrateCli as Run
    from conftest import TestDatabase

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SET = THREE_TABLES


def mig(version: int) -> Migration:
    up = MigrationFile(f"{version:06d}_m{version}.up.sql", Path("/dev/null"))
    return Migration(version, f"m{version}", up, None)


def hist(version: int, direction: str, resulting: int | None, checksum: str | None = None,
         *, finished: bool = True) -> HistoryEntry:  # fmt: skip
    return HistoryEntry(
        version, f"m{version}", HistoryDirection(direction), checksum, resulting, NOW,
        NOW if finished else None,
        5.0, "app", "t",
    )  # fmt: skip


def states(status: object) -> dict[int, str]:
    return {r.version: r.state.value for r in status.rows}  # type: ignore[attr-defined]


# -- pure ------------------------------------------------------------------------------------------


def test_every_state_in_one_status() -> None:
    history = [
        hist(0, "baseline", 1),  # 1 applied before our history: unknown
        hist(2, "up", 2, "s2"),
        hist(4, "up", 4, "s4"),  # 3 never ran: out of order once 4 ran
        hist(5, "up", 5, "s5"),  # 5's file is gone: missing
    ]
    migrations = [mig(1), mig(2), mig(3), mig(4), mig(6)]
    status = compute_status(
        migrations, VersionState(5, False), history, {1: "x", 2: "s2", 4: "changed"}
    )
    assert states(status) == {
        1: "unknown",
        2: "applied",
        3: "out_of_order",
        4: "changed",
        5: "missing",
        6: "pending",
    }
    assert status.outlook is Outlook.REFUSED and status.problem
    row2 = status.rows[1]
    assert (row2.applied_at, row2.applied_by, row2.duration_ms) == (NOW, "app", 5.0)
    assert status.rows[3].checksum == "s4" and status.rows[3].file_checksum == "changed"


def test_pending_and_up_to_date() -> None:
    history = [hist(0, "baseline", None), hist(1, "up", 1, "s1")]
    pending = compute_status([mig(1), mig(2)], VersionState(1, False), history, {1: "s1"})
    assert pending.outlook is Outlook.PENDING and len(pending.pending) == 1
    done = compute_status([mig(1)], VersionState(1, False), history, {1: "s1"})
    assert done.outlook is Outlook.UP_TO_DATE and states(done) == {1: "applied"}


def test_dirty_row_is_the_failed_step() -> None:
    history = [hist(0, "baseline", None), hist(1, "up", 1, "s1"), hist(2, "up", 2, finished=False)]
    up = compute_status([mig(1), mig(2)], VersionState(2, True), history, {})
    assert states(up)[2] == "dirty" and up.outlook is Outlook.DIRTY
    assert up.refusal is not None and up.problem == up.refusal.message
    assert "force 2" in describe(up.refusal) and "force 1" in describe(up.refusal)
    # a failed down of 2 leaves the database dirty at 1; the half-reverted step is 2
    history = [hist(0, "baseline", None), hist(1, "up", 1), hist(2, "up", 2),
               hist(2, "down", 1, finished=False)]  # fmt: skip
    down = compute_status([mig(1), mig(2)], VersionState(1, True), history, {})
    assert states(down) == {1: "unknown", 2: "dirty"}


def test_golang_migrate_only_is_unknown_not_changed() -> None:
    status = compute_status([mig(1), mig(2)], VersionState(1, False), (), {})
    assert states(status) == {1: "unknown", 2: "pending"}
    assert status.count(MigrationState.UNKNOWN) == 1


def test_unknown_says_how_the_version_came_to_be_applied() -> None:
    """golang-migrate (or anything before our history) is 'outside'; a force is 'force'."""
    outside = compute_status([mig(1), mig(2)], VersionState(2, False), (), {})
    assert [(r.state.value, r.origin) for r in outside.rows] == [
        ("unknown", "outside"), ("unknown", "outside"),
    ]  # fmt: skip
    history = [
        hist(0, "baseline", 1),  # 1 was there before our history: outside
        hist(2, "up", 2, "s2"),
        hist(3, "force", 3),  # 3 was recorded by a force, never run
    ]
    forced = compute_status([mig(1), mig(2), mig(3)], VersionState(3, False), history, {2: "s2"})
    assert [(r.state.value, r.origin) for r in forced.rows] == [
        ("unknown", "outside"), ("applied", None), ("unknown", "force"),
    ]  # fmt: skip


# -- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def run(migrate_cli: Callable[[dict[str, str]], Run]) -> Run:
    return migrate_cli(SET)


def test_status_text_and_exit_codes(run: Run, database: TestDatabase) -> None:
    fresh = run("status")
    assert fresh.returncode == ExitCode.PENDING, fresh.stderr
    assert fresh.stdout.splitlines()[1] == "Current version:   no version"
    assert "3 pending migrations: `migrate up` applies them." in fresh.stdout
    assert database.tables() == set(), "status writes nothing"

    assert run("up", "-n", "2", "--yes").returncode == 0
    result = run("status")
    assert result.returncode == ExitCode.PENDING
    lines = result.stdout.splitlines()
    assert lines[3].split() == ["VERSION", "NAME", "STATE", "APPLIED", "AT", "BY", "DURATION"]
    assert lines[4].split()[:3] == ["000001", "a", "applied"]
    assert lines[4].split()[5:7] == ["UTC", database.server.user]
    assert lines[6].split() == ["000003", "c", "pending"]

    assert run("up", "--yes").returncode == 0
    done = run("status")
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "Up to date."


def test_out_of_order_file_is_reported_never_skipped(run: Run, database: TestDatabase) -> None:
    late = run.migrations / "000002_b.up.sql"
    aside = run.migrations.parent / late.name
    late.rename(aside)
    (run.migrations / "000002_b.down.sql").unlink()
    assert run("up", "--yes").returncode == 0  # applies 1 and 3
    aside.rename(late)  # 2 is added after 3 ran
    result = run("status")
    assert result.returncode == ExitCode.REFUSED
    assert "000002   b     out of order" in result.stdout
    assert "would refuse" in result.stdout and "000002_b" in result.stdout
    up = run("up", "--yes")
    assert up.returncode == ExitCode.REFUSED and "000002_b" in up.stderr
    assert "b" not in database.tables()


def test_status_json_and_version(run: Run, database: TestDatabase) -> None:
    assert run("version").stdout == "no version\n"
    assert run("up", "-n", "1", "--yes").returncode == 0
    version = run("version")
    assert (version.returncode, version.stdout) == (0, "1\n")
    assert json.loads(run("version", "--output", "json").stdout) == {
        "event": "version", "version": 1, "dirty": False,
    }  # fmt: skip
    status = json.loads(run("status", "-o", "json").stdout)
    assert status["event"] == "status" and status["outlook"] == "pending"
    assert (status["version"], status["dirty"], status["pending"]) == (1, False, 2)
    first = status["migrations"][0]
    assert set(first) == {
        "version", "name", "state", "file", "applied_at", "applied_by", "duration_ms",
        "checksum", "file_checksum", "origin",
    }  # fmt: skip
    assert first["state"] == "applied" and first["applied_at"].endswith("+00:00")
    assert first["checksum"] == first["file_checksum"] and len(first["checksum"]) == 64
    assert [m["state"] for m in status["migrations"]] == ["applied", "pending", "pending"]
    with database.connect() as conn:
        conn.execute("UPDATE schema_migrations SET dirty = true")
    assert run("version").stdout == "1 (dirty)\n"
    dirty = run("status", "--log-format", "json")
    assert dirty.returncode == ExitCode.DIRTY
    assert json.loads(dirty.stdout)["outlook"] == "dirty"


def test_every_state_end_to_end_with_a_missing_file(run: Run, database: TestDatabase) -> None:
    """Issue 9, bug 5.1: a file missing from the set crashed status with ``KeyError: 3``."""
    with database.connect() as conn:  # golang-migrate applied 1 before this tool ran: unknown
        conn.execute("CREATE TABLE a (id int)")
        conn.execute("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean "
                     "NOT NULL)")  # fmt: skip
        conn.execute("INSERT INTO schema_migrations VALUES (1, false)")
    m = run.migrations
    (m / "000005_e.up.sql").write_text("CREATE TABLE e (id int);\n")
    (m / "000005_e.down.sql").write_text("DROP TABLE e;\n")
    assert run("up", "--yes").returncode == 0  # 2, 3, 5
    (m / "000002_b.up.sql").write_text("CREATE TABLE b (id bigint);\n")  # changed
    for name in ("000003_c.up.sql", "000003_c.down.sql"):  # missing
        (m / name).unlink()
    for v, name in ((4, "d"), (6, "f")):  # 4 out of order, 6 pending
        (m / f"{v:06d}_{name}.up.sql").write_text(f"CREATE TABLE {name} (id int);\n")
        (m / f"{v:06d}_{name}.down.sql").write_text(f"DROP TABLE {name};\n")
    expected = {1: "unknown", 2: "changed", 3: "missing", 4: "out_of_order", 5: "applied",
                6: "pending"}  # fmt: skip

    text = run("status")
    assert text.returncode == ExitCode.REFUSED, text.stderr
    rows = {int(line.split()[0]): line for line in text.stdout.splitlines() if line[:6].isdigit()}
    assert set(rows) == set(expected)
    words = {"out_of_order": "out of order", "unknown": "applied outside this tool"}
    for version, state in expected.items():
        assert words.get(state, state) in rows[version], rows[version]
    assert rows[3].split()[1] == "c", "a missing file's name comes from the history"
    assert "would refuse" in text.stdout

    out = run("status", "--output", "json")
    assert out.returncode == ExitCode.REFUSED, out.stderr
    status = json.loads(out.stdout)
    assert {r["version"]: r["state"] for r in status["migrations"]} == expected
    assert status["outlook"] == "refused" and status["problem"]
    assert (status["version"], status["dirty"], status["pending"]) == (5, False, 1)
    by_version = {r["version"]: r for r in status["migrations"]}
    assert by_version[3]["file"] is None and by_version[3]["name"] == "c"
    assert by_version[2]["checksum"] != by_version[2]["file_checksum"]
    assert by_version[1]["checksum"] is None
    up = run("up", "--yes")  # the same crash hit up: now it refuses, naming what is wrong
    assert up.returncode == ExitCode.REFUSED and "internal error" not in up.stderr, up.stderr


def test_forced_versions_say_so(run: Run) -> None:
    """Issue 11, item 8: a version set by force is not "unknown (no history row)"."""
    assert run("up", "-n", "1", "--yes").returncode == 0
    assert run("force", "3", "--yes").returncode == 0
    text = run("status")
    assert text.returncode == 0, text.stderr
    rows = {int(line.split()[0]): line for line in text.stdout.splitlines() if line[:6].isdigit()}
    assert "set by force" in rows[2] and "set by force" in rows[3]
    assert "applied" in rows[1] and "no history row" not in text.stdout
    status = json.loads(run("status", "-o", "json").stdout)
    assert [(r["state"], r["origin"]) for r in status["migrations"]] == [
        ("applied", None), ("unknown", "force"), ("unknown", "force"),
    ]  # fmt: skip


def test_history_directions_are_an_enum(database: TestDatabase, tmp_path: Path) -> None:
    """Issue 9, bug 5.4: history directions were bare strings beside the ``Direction`` enum."""
    from thv_registry.config import ConnectionParams
    from thv_registry.migrations.engine.migrator import Migrator
    from thv_registry.migrations.engine.model import Down, HistoryDirection
    from thv_registry.migrations.engine.source import Source

    s = database.server
    params = ConnectionParams(s.host, s.port, s.user, database.name, "disable")
    source = Source.from_directory(write_migrations(tmp_path / "m", SET))
    migrator = Migrator(params, source)
    migrator.apply(Up(2))
    migrator.apply(Down(1))
    migrator.force(2)
    _, history, _ = migrator.read_state()
    assert [h.direction for h in history] == [
        HistoryDirection.BASELINE, HistoryDirection.UP, HistoryDirection.UP,
        HistoryDirection.DOWN, HistoryDirection.FORCE,
    ]  # fmt: skip
    assert all(type(h.direction) is HistoryDirection for h in history)
    assert hist(1, "accept", 1).direction is HistoryDirection.ACCEPT
    with pytest.raises(ValueError, match="'sideways' is not a valid HistoryDirection"):
        hist(1, "sideways", 1)
