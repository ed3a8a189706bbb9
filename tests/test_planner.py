"""The planner as a pure function: case tables, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from thv_registry.cli.hints import describe
from thv_registry.errors import (
    DirtyDatabase,
    MissingDownFile,
    MissingFromSource,
    NotEnoughApplied,
    OutOfOrder,
    PlanRefused,
)
from thv_registry.migrations.engine.model import (
    Direction,
    Down,
    Goto,
    HistoryDirection,
    HistoryEntry,
    Migration,
    MigrationFile,
    Up,
    VersionState,
)
from thv_registry.migrations.engine.planner import applied_versions, plan

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def mig(version: int, *, down: bool = True) -> Migration:
    name = f"m{version}"
    up = MigrationFile(f"{version:06d}_{name}.up.sql", Path("/dev/null"))
    dn = MigrationFile(f"{version:06d}_{name}.down.sql", Path("/dev/null")) if down else None
    return Migration(version, name, up, dn)


def hist(
    version: int, direction: str, resulting: int | None, *, finished: bool = True
) -> HistoryEntry:
    return HistoryEntry(
        version,
        f"m{version}",
        HistoryDirection(direction),
        None,
        resulting,
        NOW,
        NOW if finished else None,
    )


SET = [mig(1), mig(2), mig(5), mig(10)]  # gaps are legal


def at(version: int | None, dirty: bool = False) -> VersionState:
    return VersionState(version, dirty)


def steps(p: object) -> list[tuple[int, str, int | None]]:
    return [(s.migration.version, s.direction.value, s.target_version) for s in p.steps]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("request_", "current", "expected"),
    [
        (Up(), at(None), [(1, "up", 1), (2, "up", 2), (5, "up", 5), (10, "up", 10)]),
        (Up(0), at(None), [(1, "up", 1), (2, "up", 2), (5, "up", 5), (10, "up", 10)]),
        (Up(2), at(None), [(1, "up", 1), (2, "up", 2)]),
        (Up(1), at(2), [(5, "up", 5)]),
        (Up(99), at(5), [(10, "up", 10)]),
        (Up(), at(10), []),
        (Down(1), at(10), [(10, "down", 5)]),
        (Down(2), at(5), [(5, "down", 2), (2, "down", 1)]),
        (Down(0), at(5), [(5, "down", 2), (2, "down", 1), (1, "down", None)]),
        (Down(0), at(None), []),
        (Goto(5), at(None), [(1, "up", 1), (2, "up", 2), (5, "up", 5)]),
        (Goto(2), at(10), [(10, "down", 5), (5, "down", 2)]),
        (Goto(0), at(2), [(2, "down", 1), (1, "down", None)]),
        (Goto(5), at(5), []),
    ],
)
def test_plans_without_history(
    request_: object, current: VersionState, expected: list[object]
) -> None:
    p = plan(request_, SET, current)  # type: ignore[arg-type]
    assert steps(p) == expected
    assert p.current == current


def test_down_more_than_applied_is_refused_before_anything() -> None:
    with pytest.raises(NotEnoughApplied, match="only 2 are applied") as err:
        plan(Down(3), SET, at(2))
    assert (err.value.requested, err.value.applied) == (3, 2)
    assert "--num-steps 2" in describe(err.value)


def test_down_with_nothing_applied_is_refused() -> None:
    with pytest.raises(NotEnoughApplied) as err:
        plan(Down(1), SET, at(None))
    assert "no version" in describe(err.value)


def test_dirty_refuses_every_request_with_force_commands() -> None:
    for request in (Up(), Down(1), Goto(1)):
        with pytest.raises(DirtyDatabase) as err:
            plan(request, SET, at(5, dirty=True))
        message = describe(err.value)
        assert "migrate force 5" in message and "migrate force 2" in message


def test_dirty_recovery_after_failed_down_names_both_versions() -> None:
    history = [
        hist(0, "baseline", None),
        hist(5, "up", 5),
        hist(10, "up", 10),
        hist(10, "down", 5, finished=False),
    ]
    with pytest.raises(DirtyDatabase) as err:
        plan(Up(), SET, at(5, dirty=True), history)
    message = describe(err.value)
    assert "reverting 10_m10" in message
    assert "migrate force 5" in message and "migrate force 10" in message


def test_dirty_at_no_version_uses_minus_one() -> None:
    with pytest.raises(DirtyDatabase) as err:
        plan(Up(), SET, at(None, dirty=True))
    assert "force -1" in describe(err.value)


def test_current_version_missing_from_source() -> None:
    with pytest.raises(MissingFromSource, match="version 7"):
        plan(Up(), SET, at(7))


def test_down_across_a_missing_down_file_is_refused_naming_it() -> None:
    migrations = [mig(1), mig(2, down=False), mig(3)]
    assert steps(plan(Down(1), migrations, at(3))) == [(3, "down", 2)]
    with pytest.raises(MissingDownFile, match="000002_m2"):
        plan(Down(2), migrations, at(3))
    # applying across it is fine
    assert steps(plan(Up(), migrations, at(None)))[1] == (2, "up", 2)


def test_out_of_order_file_is_refused_not_skipped() -> None:
    history = [hist(0, "baseline", None), hist(1, "up", 1), hist(5, "up", 5)]
    migrations = [mig(1), mig(3), mig(5), mig(6)]  # 3 was added after 5 ran
    with pytest.raises(OutOfOrder, match="000003_m3"):
        plan(Up(), migrations, at(5), history)


def test_versions_applied_by_golang_migrate_in_between_are_not_out_of_order() -> None:
    # our history ends at 2; golang-migrate then applied 5 and 10
    history = [hist(0, "baseline", None), hist(1, "up", 1), hist(2, "up", 2)]
    assert applied_versions({m.version: m for m in SET}, at(10), history) == {1, 2, 5, 10}
    assert steps(plan(Up(), SET, at(10), history)) == []
    assert steps(plan(Down(1), SET, at(10), history)) == [(10, "down", 5)]


def test_baseline_counts_versions_applied_before_our_history() -> None:
    history = [hist(5, "baseline", 5), hist(10, "up", 10)]
    assert applied_versions({m.version: m for m in SET}, at(10), history) == {1, 2, 5, 10}


def test_reverted_by_another_tool_is_not_applied() -> None:
    history = [hist(0, "baseline", None), hist(1, "up", 1), hist(2, "up", 2), hist(5, "up", 5)]
    assert applied_versions({m.version: m for m in SET}, at(1), history) == {1}


def test_goto_unknown_version_is_refused() -> None:
    with pytest.raises(PlanRefused, match="no migration 3"):
        plan(Goto(3), SET, at(None))


def test_plan_direction_and_final_version() -> None:
    p = plan(Down(2), SET, at(10))
    assert p.direction is Direction.DOWN
    assert p.final_version == 2
    assert plan(Up(), SET, at(10)).final_version == 10
