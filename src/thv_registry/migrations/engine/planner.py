"""Turn (request, migrations, state, history) into an ordered plan, or refuse. Pure: no I/O.

golang-migrate stores only a high-water mark; our history knows which versions really ran, so a
file numbered below the current version that never ran is refused (golang-migrate skips it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from thv_registry.errors import (
    ChecksumMismatch,
    DirtyDatabase,
    DirtyRecovery,
    MissingDownFile,
    MissingFromSource,
    NotEnoughApplied,
    OutOfOrder,
    UnknownVersion,
)
from thv_registry.migrations.engine.model import (
    ChangedFile,
    Direction,
    Down,
    Goto,
    HistoryDirection,
    HistoryEntry,
    Migration,
    Plan,
    Redo,
    Request,
    Step,
    Up,
    VersionState,
    version_label,
)

__all__ = [
    "plan",
    "applied_versions",
    "applied_rows",
    "changed_files",
    "dirty_recovery",
    "dirty_error",
]

NIL_VERSION = -1  #: golang-migrate's "no version", as ``force -1`` takes it


def plan(
    request: Request,
    migrations: Sequence[Migration],
    current: VersionState,
    history: Sequence[HistoryEntry] = (),
    checksums: Mapping[int, str] | None = None,
) -> Plan:
    """Plan ``request``; raise a ``PlanRefused`` or ``DirtyDatabase`` when it must not run.

    :param checksums: sha256 of the up file of each applied version, as it is now (the caller
        reads only those files). With them, ``up`` and an upward ``goto`` refuse to continue
        while an applied file differs from the checksum in the history, unless its version is in
        the request's ``accept_changed``.
    """
    if current.dirty:
        raise dirty_error(current, migrations, history)
    by_version = {m.version: m for m in migrations}
    if current.version is not None and current.version not in by_version:
        raise MissingFromSource(
            f"The database is at version {current.version}, but the migration set has no "
            f"migration {current.version} (it has {_span(by_version)}). The database was "
            "probably migrated with a newer set of files; nothing was run.",
            version=current.version,
        )
    applied = applied_versions(by_version, current, history)
    accepted: tuple[ChangedFile, ...] = ()
    if isinstance(request, Up | Goto):
        strangers = sorted(request.accept_changed - set(by_version))
        if strangers:
            raise UnknownVersion(
                f"Cannot accept a changed file of version {strangers[0]}: the migration set has "
                f"no migration {strangers[0]} (it has {_span(by_version)}); nothing was run.",
                version=strangers[0],
                purpose="accept_changed",
            )
        upward = isinstance(request, Up) or request.version >= (current.version or 0)
        if upward and checksums is not None:
            accepted = _check_changed(
                request.accept_changed, by_version, applied, history, checksums
            )
    if isinstance(request, Up):
        steps = _up_steps(migrations, current, applied, request.n or None)
    elif isinstance(request, Down):
        steps = _down_steps(by_version, applied, request.n or None)
    elif isinstance(request, Redo):  # down 1, then up the same migration
        steps = _down_steps(by_version, applied, 1)
        steps.append(Step(steps[0].migration, Direction.UP, steps[0].migration.version))
    else:
        steps = _goto_steps(request, migrations, by_version, current, applied)
    return Plan(request, current, tuple(steps), accepted)


def applied_versions(
    known: Iterable[int], current: VersionState, history: Sequence[HistoryEntry]
) -> set[int]:
    """The ``known`` versions that are applied, replaying our history when there is one.

    Without a history (golang-migrate alone), every version up to the current one is applied.
    Steps run by another tool since our last row (the version moved without us) are taken as
    applied (up) or reverted (down) in that range. Unfinished and interrupted steps do not count.
    """
    known = sorted(known)
    upto = current.version or 0
    finished = [h for h in history if h.completed]
    if not finished:
        return {v for v in known if v <= upto}
    applied: set[int] = set()
    for h in finished:
        if h.direction in (HistoryDirection.BASELINE, HistoryDirection.FORCE):
            applied = {v for v in known if v <= (h.resulting_version or 0)}
        elif h.direction is HistoryDirection.UP:
            applied.add(h.version)
        elif h.direction is HistoryDirection.DOWN:
            applied.discard(h.version)
    last = finished[-1].resulting_version or 0
    if upto > last:
        applied |= {v for v in known if last < v <= upto}
    elif upto < last:
        applied = {v for v in applied if v <= upto}
    return applied


def applied_rows(history: Sequence[HistoryEntry]) -> dict[int, HistoryEntry]:
    """For each version our history saw applied and not reverted since: its completed up row."""
    rows: dict[int, HistoryEntry] = {}
    for h in history:
        if not h.completed:
            continue
        if h.direction is HistoryDirection.UP:
            rows[h.version] = h
        elif h.direction is HistoryDirection.DOWN:
            rows.pop(h.version, None)
        elif h.direction in (HistoryDirection.BASELINE, HistoryDirection.FORCE):
            floor = h.resulting_version or 0
            rows = {v: r for v, r in rows.items() if v <= floor}
    return rows


def recorded_checksums(history: Sequence[HistoryEntry]) -> dict[int, tuple[str, HistoryEntry]]:
    """The sha256 each applied version's up file had when applied (or accepted), with its row."""
    applied = applied_rows(history)
    sums = {v: (r.checksum, r) for v, r in applied.items() if r.checksum}
    for h in history:
        if h.direction is HistoryDirection.ACCEPT and h.checksum and h.version in applied:
            sums[h.version] = (h.checksum, h)
    return sums


def changed_files(
    by_version: Mapping[int, Migration],
    applied: Iterable[int],
    history: Sequence[HistoryEntry],
    checksums: Mapping[int, str],
) -> list[ChangedFile]:
    """Applied versions whose up file now differs from the recorded sha256.

    A version without a recorded checksum (applied by another tool) is unknown, never changed.
    """
    recorded = recorded_checksums(history)
    changed = []
    for version in sorted(applied):
        migration, now = by_version.get(version), checksums.get(version)
        if migration is None or now is None or version not in recorded:
            continue
        was, row = recorded[version]
        if was != now:
            at = row.finished_at or row.started_at
            changed.append(ChangedFile(version, migration.name, migration.up.origin, was, now, at))
    return changed


def _check_changed(
    accept: frozenset[int],
    by_version: Mapping[int, Migration],
    applied: set[int],
    history: Sequence[HistoryEntry],
    checksums: Mapping[int, str],
) -> tuple[ChangedFile, ...]:
    changed = changed_files(by_version, applied, history, checksums)
    refused = [c for c in changed if c.version not in accept]
    if refused:
        one = len(refused) == 1
        listed = "; ".join(
            f"{c.origin} (version {c.version}: sha256 {c.recorded[:12]} when applied"
            f"{f' on {c.recorded_at:%Y-%m-%d %H:%M %Z}' if c.recorded_at else ''}, "
            f"{c.actual[:12]} now)"
            for c in refused
        )
        raise ChecksumMismatch(
            f"{'An applied migration file has' if one else 'Applied migration files have'} "
            f"changed since {'it was' if one else 'they were'} applied: {listed}. Editing an "
            "applied migration does not change the databases it already ran on; nothing was run.",
            changed=refused,
        )
    return tuple(c for c in changed if c.version in accept)


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
            versions=[m.version for m in behind],
            current=current.version or 0,
        )
    return [Step(m, Direction.UP, m.version) for m in pending[:n]]


def _down_steps(by_version: dict[int, Migration], applied: set[int], n: int | None) -> list[Step]:
    order = sorted(applied, reverse=True)
    if n is not None and n > len(order):
        raise NotEnoughApplied(
            f"Cannot revert {n} migration(s): only {len(order)} "
            f"{'is' if len(order) == 1 else 'are'} applied; nothing was run.",
            requested=n,
            applied=len(order),
        )
    chosen = order[:n]
    steps: list[Step] = []
    for i, version in enumerate(chosen):
        migration = by_version[version]
        if migration.down is None:
            missing = migration.up.origin.replace(".up.sql", ".down.sql")
            raise MissingDownFile(
                f"Cannot revert {migration.label}: it has no down file ({missing} is missing), "
                "so reverting across it would only move the version without undoing anything. "
                "Nothing was run.",
                version=migration.version,
                file=missing,
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
        raise UnknownVersion(
            f"There is no migration {target} to go to (the set has {_span(by_version)}).",
            version=target,
            purpose="goto",
        )
    if target >= (current.version or 0):
        upto = [m for m in migrations if m.version <= target]
        return _up_steps(upto, current, applied, None)
    count = len([v for v in applied if v > target])
    return _down_steps(by_version, applied, count)


def dirty_recovery(
    current: VersionState, migrations: Sequence[Migration], history: Sequence[HistoryEntry]
) -> DirtyRecovery:
    """What left the version dirty, and the version to force when it is finished or undone.

    A failed up of N leaves the database dirty at N: finished by hand it is N, undone it is the
    version before N. A failed down of N (to M) leaves it dirty at M: finished by hand it is M,
    undone (N's objects restored) it is N again. Without an open history row of ours the flag
    was left by another tool (golang-migrate marks every step dirty while it runs).
    """
    open_rows = [h for h in history if h.is_open]
    last = open_rows[-1] if open_rows else None
    if last is not None and last.resulting_version == current.version:
        if last.direction is HistoryDirection.DOWN:
            return DirtyRecovery("down", last.version, last.name, current.version, last.version)
        prev = _prev(migrations, last.version)
        return DirtyRecovery("up", last.version, last.name, current.version, prev)
    if current.version is None:
        # golang-migrate marks (-1, dirty) only while reverting the first migration
        first = min(migrations, key=lambda m: m.version, default=None)
        if first is None:
            return DirtyRecovery(None, None, "", None, None, recorded=False)
        return DirtyRecovery("down", first.version, first.name, None, first.version, False)
    dirty_at = current.version
    names = {m.version: m.name for m in migrations}
    # our last finished row says where the other tool started: below, it went up to the dirty
    # version; above, it was reverting the migration above it. No history: unknown, as up.
    finished = [h for h in history if h.completed]
    started = finished[-1].resulting_version if finished else None
    if started is not None and started > dirty_at:
        above = min((v for v in names if v > dirty_at), default=started)
        return DirtyRecovery("down", above, names.get(above, ""), dirty_at, above, False)
    direction = "up" if finished else None
    prev = _prev(migrations, dirty_at)
    return DirtyRecovery(direction, dirty_at, names.get(dirty_at, ""), dirty_at, prev, False)


def dirty_error(
    current: VersionState, migrations: Sequence[Migration], history: Sequence[HistoryEntry]
) -> DirtyDatabase:
    """The refusal of a dirty database, with the way out as data (the CLI words the advice)."""
    recovery = dirty_recovery(current, migrations, history)
    shown = "no version" if current.version is None else f"version {current.version}"
    if recovery.version is None:
        what = "a migration"
    elif recovery.direction is None:
        what = f"migration {version_label(recovery.version, recovery.name)}"
    else:
        verb = "reverting" if recovery.direction == "down" else "applying"
        label = f"{recovery.version}_{recovery.name}" if recovery.recorded else None
        what = f"{verb} {label or version_label(recovery.version, recovery.name)}"
    if recovery.recorded:
        message = (
            f"The database is dirty at {shown}: {what} ran outside a transaction and failed or "
            "was interrupted, so part of it may be applied. Nothing was run."
        )
    else:
        message = (
            f"The database is dirty at {shown}, and this tool's history has no unfinished step: "
            "the flag was left by another tool. golang-migrate marks every step dirty before "
            f"running it, so {what} failed or was interrupted there (e.g. its session was ended "
            "with pg_terminate_backend). If that step ran in a transaction, the transaction was "
            "rolled back and none of it is applied; otherwise part of it may be. Nothing was run."
        )
    version = NIL_VERSION if current.version is None else current.version
    return DirtyDatabase(message, version=version, recovery=recovery)


def _prev(migrations: Sequence[Migration], version: int) -> int | None:
    lower = [m.version for m in migrations if m.version < version]
    return max(lower) if lower else None


def _labels(migrations: Iterable[Migration]) -> str:
    return ", ".join(m.label for m in migrations)


def _span(by_version: dict[int, Migration]) -> str:
    if not by_version:
        return "no migrations"
    return f"versions {min(by_version)} to {max(by_version)}"
