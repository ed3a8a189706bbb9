"""Turn (request, migrations, state, history) into an ordered plan, or refuse. Pure: no I/O.

golang-migrate stores only a high-water mark; our history knows which versions really ran, so a
file numbered below the current version that never ran is refused (golang-migrate skips it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import (
    DirtyDatabase,
    MissingDownFile,
    MissingFromSource,
    NotEnoughApplied,
    OutOfOrder,
    PlanRefused,
)
from .model import (
    Direction,
    Down,
    Goto,
    HistoryEntry,
    Migration,
    Plan,
    Request,
    Step,
    Up,
    VersionState,
)

__all__ = ["plan", "applied_versions", "dirty_recovery"]


def plan(
    request: Request,
    migrations: Sequence[Migration],
    current: VersionState,
    history: Sequence[HistoryEntry] = (),
) -> Plan:
    """Plan ``request``; raise a ``PlanRefused`` or ``DirtyDatabase`` when it must not run."""
    if current.dirty:
        raise dirty_error(current, migrations, history)
    by_version = {m.version: m for m in migrations}
    if current.version is not None and current.version not in by_version:
        raise MissingFromSource(
            f"The database is at version {current.version}, but the migration set has no "
            f"migration {current.version} (it has {_span(by_version)}). The database was "
            "probably migrated with a newer set of files; nothing was run.",
            hint="Run the release whose migrations include that version, or pass "
            "--migrations-dir with the right directory.",
        )
    applied = applied_versions(by_version, current, history)
    if isinstance(request, Up):
        steps = _up_steps(migrations, current, applied, request.n or None)
    elif isinstance(request, Down):
        steps = _down_steps(by_version, applied, request.n or None)
    else:
        steps = _goto_steps(request, migrations, by_version, current, applied)
    return Plan(request, current, tuple(steps))


def applied_versions(
    by_version: dict[int, Migration], current: VersionState, history: Sequence[HistoryEntry]
) -> set[int]:
    """The versions of the source that are applied, replaying our history when there is one.

    Without a history (golang-migrate alone), every version up to the current one is applied.
    Steps run by another tool since our last row (the version moved without us) are taken as
    applied (up) or reverted (down) in that range.
    """
    known = sorted(by_version)
    upto = current.version or 0
    finished = [h for h in history if h.finished_at is not None]
    if not finished:
        return {v for v in known if v <= upto}
    applied: set[int] = set()
    for h in finished:
        if h.direction in ("baseline", "force"):
            applied = {v for v in known if v <= (h.resulting_version or 0)}
        elif h.direction == "up":
            applied.add(h.version)
        elif h.direction == "down":
            applied.discard(h.version)
    last = finished[-1].resulting_version or 0
    if upto > last:
        applied |= {v for v in known if last < v <= upto}
    elif upto < last:
        applied = {v for v in applied if v <= upto}
    return applied


def _up_steps(
    migrations: Sequence[Migration], current: VersionState, applied: set[int], n: int | None
) -> list[Step]:
    pending = [m for m in migrations if m.version not in applied]
    behind = [m for m in pending if current.version is not None and m.version < current.version]
    if behind:
        raise OutOfOrder(
            f"{_labels(behind)} {'is' if len(behind) == 1 else 'are'} numbered below the "
            f"current version {current.version} but {'was' if len(behind) == 1 else 'were'} "
            "never applied (added after later migrations ran). golang-migrate would skip "
            f"{'it' if len(behind) == 1 else 'them'} silently; nothing was run.",
            hint="Renumber the file(s) above the current version (e.g. with the next free "
            "number) so they run in order, then run up again.",
        )
    return [Step(m, Direction.UP, m.version) for m in pending[:n]]


def _down_steps(by_version: dict[int, Migration], applied: set[int], n: int | None) -> list[Step]:
    order = sorted(applied, reverse=True)
    if n is not None and n > len(order):
        raise NotEnoughApplied(
            f"Cannot revert {n} migration(s): only {len(order)} "
            f"{'is' if len(order) == 1 else 'are'} applied; nothing was run.",
            hint=f"Use --num-steps {len(order)} (or 0) to revert all of them."
            if order
            else "The database has no version; there is nothing to revert.",
        )
    chosen = order[:n]
    steps: list[Step] = []
    for i, version in enumerate(chosen):
        migration = by_version[version]
        if migration.down is None:
            raise MissingDownFile(
                f"Cannot revert {migration.label}: it has no down file "
                f"({migration.up.origin.replace('.up.sql', '.down.sql')} is missing), so "
                "reverting across it would only move the version without undoing anything. "
                "Nothing was run.",
                hint="Write the down file (or stop above this version) and run again.",
            )
        target = order[i + 1] if i + 1 < len(order) else None
        steps.append(Step(migration, Direction.DOWN, target))
    return steps


def _goto_steps(
    request: Goto,
    migrations: Sequence[Migration],
    by_version: dict[int, Migration],
    current: VersionState,
    applied: set[int],
) -> list[Step]:
    target = request.version
    if target != 0 and target not in by_version:
        raise PlanRefused(
            f"There is no migration {target} to go to (the set has {_span(by_version)}).",
            hint="Pick one of the versions in the migration set, or 0 for no version.",
        )
    if target >= (current.version or 0):
        upto = [m for m in migrations if m.version <= target]
        return _up_steps(upto, current, applied, None)
    count = len([v for v in applied if v > target])
    return _down_steps(by_version, applied, count)


def dirty_recovery(
    current: VersionState, migrations: Sequence[Migration], history: Sequence[HistoryEntry]
) -> tuple[str, int | None, int | None]:
    """What failed while dirty: (description, version if finished by hand, if undone by hand)."""
    open_rows = [h for h in history if h.finished_at is None]
    last = open_rows[-1] if open_rows else None
    if last is not None and last.resulting_version == current.version:
        if last.direction == "down":
            return (f"reverting {last.version}_{last.name}", current.version, last.version)
        return (
            f"applying {last.version}_{last.name}",
            current.version,
            _prev(migrations, last.version),
        )
    if current.version is None:
        return ("a migration", None, None)
    return (f"migration {current.version}", current.version, _prev(migrations, current.version))


def dirty_error(
    current: VersionState, migrations: Sequence[Migration], history: Sequence[HistoryEntry]
) -> DirtyDatabase:
    what, done, undone = dirty_recovery(current, migrations, history)
    shown = "no version" if current.version is None else f"version {current.version}"
    return DirtyDatabase(
        f"The database is dirty at {shown}: {what} ran outside a transaction and failed or was "
        "interrupted, so part of it may be applied. Nothing was run.",
        version=-1 if current.version is None else current.version,
        hint="Inspect the schema, then either (1) finish the change by hand and run "
        f"`thv-registry-api migrate force {_force_arg(done)} --config FILE`, or (2) undo what it "
        "changed and run "
        f"`thv-registry-api migrate force {_force_arg(undone)} --config FILE`; then run the "
        "command again. (force only rewrites schema_migrations: "
        f"{_force_sql(done)}.)",
    )


def _force_arg(version: int | None) -> str:
    return "-1" if version is None else str(version)


def _force_sql(version: int | None) -> str:
    if version is None:
        return "TRUNCATE schema_migrations"
    return f"TRUNCATE schema_migrations; INSERT INTO schema_migrations VALUES ({version}, false)"


def _prev(migrations: Sequence[Migration], version: int) -> int | None:
    lower = [m.version for m in migrations if m.version < version]
    return max(lower) if lower else None


def _labels(migrations: Iterable[Migration]) -> str:
    return ", ".join(m.label for m in migrations)


def _span(by_version: dict[int, Migration]) -> str:
    if not by_version:
        return "no migrations"
    return f"versions {min(by_version)} to {max(by_version)}"
