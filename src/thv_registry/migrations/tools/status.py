"""``migrate status``: one row per migration, computed purely from state, history and source.

The outlook predicts ``migrate up``: it is literally what the planner says about ``Up()`` on the
same inputs (up to date, pending, refused with a reason, or dirty), so ``status`` can gate CI
without ever disagreeing with ``up``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from thv_registry.errors import DirtyDatabase, PlanRefused, ThvError
from thv_registry.migrations.engine import planner
from thv_registry.migrations.engine.model import (
    HistoryDirection,
    HistoryEntry,
    Migration,
    Up,
    VersionState,
)

if TYPE_CHECKING:
    from thv_registry.migrations.engine.migrator import Migrator

__all__ = ["MigrationState", "Outlook", "StatusRow", "Status", "compute_status", "read_status"]

#: history rows that name a migration run (its name survives a file removed from the set)
_STEPS = (HistoryDirection.UP, HistoryDirection.DOWN)


class MigrationState(StrEnum):
    """The state of one migration. Values are stable: they appear in the JSON output."""

    APPLIED = "applied"
    PENDING = "pending"
    CHANGED = "changed"  #: applied, but the file's sha256 differs from the one in the history
    #: applied without a history row of ours (another tool, or set by force): no checksum;
    #: :attr:`StatusRow.origin` says which
    UNKNOWN = "unknown"
    MISSING = "missing"  #: applied, but no file in the migration set
    OUT_OF_ORDER = "out_of_order"  #: below the current version and never applied
    DIRTY = "dirty"  #: the step that failed or was interrupted (dirty protocol)


class Outlook(StrEnum):
    """What ``migrate up`` would do now."""

    UP_TO_DATE = "up_to_date"
    PENDING = "pending"
    REFUSED = "refused"  #: up would refuse (changed file, out of order, missing from the source)
    DIRTY = "dirty"


@dataclass(frozen=True)
class StatusRow:
    version: int
    name: str
    state: MigrationState
    file: str | None  #: the up file as shown to users; None when missing from the source
    applied_at: datetime | None = None
    applied_by: str | None = None
    duration_ms: float | None = None
    checksum: str | None = None  #: sha256 recorded in the history (applied, changed)
    file_checksum: str | None = None  #: sha256 of the file now (applied versions only)
    #: how an ``unknown`` version came to be applied: ``outside`` (by another tool such as
    #: golang-migrate, or before this tool kept a history) or ``force`` (recorded by a force,
    #: never run by this tool); None for the other states
    origin: str | None = None


@dataclass(frozen=True)
class Status:
    current: VersionState
    rows: tuple[StatusRow, ...]
    outlook: Outlook
    problem: str | None = None  #: why up would refuse (or the dirty-state message)
    #: the refusal itself, with its fields (the CLI words the advice from them)
    refusal: ThvError | None = None

    @property
    def pending(self) -> tuple[StatusRow, ...]:
        return tuple(r for r in self.rows if r.state is MigrationState.PENDING)

    def count(self, state: MigrationState) -> int:
        return sum(1 for r in self.rows if r.state is state)


def read_status(migrator: Migrator) -> Status:
    """The status of ``migrator``'s set against its database now (read-only)."""
    current, history, checksums = migrator.read_state()
    return compute_status(migrator.source.migrations, current, history, checksums)


def compute_status(
    migrations: Sequence[Migration],
    current: VersionState,
    history: Sequence[HistoryEntry],
    checksums: Mapping[int, str],
) -> Status:
    """One row per version in the source or applied in the database, ordered by version.

    :param checksums: sha256 of the up file of each applied version now (as for the planner).
    """
    by_version = {m.version: m for m in migrations}
    seen = {h.version for h in history if h.direction is HistoryDirection.UP}
    if current.version is not None:
        seen.add(current.version)
    applied = planner.applied_versions(set(by_version) | seen, current, history)
    rows_by_up = planner.applied_rows(history)
    recorded = planner.recorded_checksums(history)
    dirty_version = _dirty_version(current, history)
    names = {h.version: h.name for h in history if h.direction in _STEPS}
    rows = []
    for version in sorted(set(by_version) | applied):
        migration = by_version.get(version)
        up = rows_by_up.get(version) if version in applied else None
        was = recorded.get(version, (None, None))[0] if version in applied else None
        now = checksums.get(version) if version in applied else None
        state = _state(version, migration, applied, current, was, now)
        if version == dirty_version:
            state = MigrationState.DIRTY
        rows.append(
            StatusRow(
                version=version,
                name=migration.name if migration else names.get(version, ""),
                state=state,
                file=migration.up.origin if migration else None,
                applied_at=(up.finished_at or up.started_at) if up else None,
                applied_by=up.db_user if up else None,
                duration_ms=up.duration_ms if up else None,
                checksum=was,
                file_checksum=now,
                origin=_origin(version, history) if state is MigrationState.UNKNOWN else None,
            )
        )
    outlook, refusal = _outlook(migrations, current, history, checksums)
    problem = refusal.message if refusal is not None else None
    return Status(current, tuple(rows), outlook, problem, refusal)


def _state(
    version: int,
    migration: Migration | None,
    applied: set[int],
    current: VersionState,
    recorded: str | None,
    now: str | None,
) -> MigrationState:
    if version in applied:
        if migration is None:
            return MigrationState.MISSING
        if recorded is None:
            return MigrationState.UNKNOWN
        return MigrationState.APPLIED if now in (None, recorded) else MigrationState.CHANGED
    if current.version is not None and version < current.version:
        return MigrationState.OUT_OF_ORDER
    return MigrationState.PENDING


def _origin(version: int, history: Sequence[HistoryEntry]) -> str:
    """How an applied ``version`` without a checksum got there: ``force`` when a force first
    recorded it as applied (and nothing ran it since), else ``outside``."""
    state: str | None = None  #: None: not applied; "ours", "outside", "force"
    for h in history:
        if not h.completed:
            continue
        if h.direction in (HistoryDirection.BASELINE, HistoryDirection.FORCE):
            if version > (h.resulting_version or 0):
                state = None
            elif state is None:
                state = "force" if h.direction is HistoryDirection.FORCE else "outside"
        elif h.version == version and h.direction in _STEPS:
            state = "ours" if h.direction is HistoryDirection.UP else None
    return "force" if state == "force" else "outside"


def _dirty_version(current: VersionState, history: Sequence[HistoryEntry]) -> int | None:
    """The version of the step that left the database dirty (a failed down: the one reverted)."""
    if not current.dirty:
        return None
    open_rows = [h for h in history if h.is_open and h.resulting_version == current.version]
    return open_rows[-1].version if open_rows else current.version


def _outlook(
    migrations: Sequence[Migration],
    current: VersionState,
    history: Sequence[HistoryEntry],
    checksums: Mapping[int, str],
) -> tuple[Outlook, ThvError | None]:
    try:
        plan = planner.plan(Up(), migrations, current, history, checksums)
    except DirtyDatabase as exc:
        return Outlook.DIRTY, exc
    except PlanRefused as exc:
        return Outlook.REFUSED, exc
    return (Outlook.PENDING if plan.steps else Outlook.UP_TO_DATE), None
