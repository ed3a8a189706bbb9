"""Pure formatting of engine results: text lines for people, dicts for the JSON output.

Plans are in :mod:`.plan_render`.

The JSON shapes are documented in docs/json-output.md and are stable: add fields, never rename
or remove them. :class:`.output.Output` decides where each goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from thv_registry.migrations.engine.model import (
    DatabaseView,
    HistoryDirection,
    HistoryEntry,
    Step,
    VersionState,
    version_label,
)

if TYPE_CHECKING:
    from thv_registry.migrations.tools.status import Status, StatusRow

__all__ = [
    "version_text",
    "step_label",
    "status_lines",
    "status_json",
    "view_lines",
    "view_json",
    "history_json",
    "timestamp",
]

STATE_TEXT = {
    "applied": "applied",
    "pending": "pending",
    "changed": "changed since applied",
    "unknown": "applied outside this tool",
    "missing": "applied, missing from source",
    "out_of_order": "out of order",
    "dirty": "dirty",
}


def version_text(state: VersionState, names: Mapping[int, str] | None = None) -> str:
    """``3 (add_x)``, ``no version``; ``, dirty`` appended when it is."""
    if state.version is None:
        text = "no version"
    else:
        name = (names or {}).get(state.version)
        text = f"{state.version}" + (f" ({name})" if name else "")
    return text + (", dirty" if state.dirty else "")


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC for JSON."""
    return value.astimezone(UTC).isoformat() if value else None


def _when(value: datetime | None) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if value else ""


def _duration(ms: float | None) -> str:
    if ms is None:
        return ""
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


# -- plans ---------------------------------------------------------------------------------------


def step_label(step: Step) -> str:
    return f"{step.migration.version:06d} {step.migration.name}"


# -- status --------------------------------------------------------------------------------------


def status_lines(status: Status, *, target: str, names: Mapping[int, str]) -> list[str]:
    header = ("VERSION", "NAME", "STATE", "APPLIED AT", "BY", "DURATION")
    table = [header] + [_row_cells(r) for r in status.rows]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
    lines = [
        f"Database:          {target}",
        f"Current version:   {version_text(status.current, names)}",
        "",
    ]
    if not status.rows:
        lines.append("(no migrations in the set and none applied)")
    for cells in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    lines.append("")
    lines.append(_summary(status))
    return lines


def _row_cells(row: StatusRow) -> tuple[str, ...]:
    return (
        f"{row.version:06d}",
        row.name,
        _state_text(row),
        _when(row.applied_at),
        row.applied_by or "",
        _duration(row.duration_ms),
    )


def _state_text(row: StatusRow) -> str:
    if row.origin == "force":
        return "set by force"
    return STATE_TEXT.get(row.state.value, row.state.value)


def _summary(status: Status) -> str:
    pending = len(status.pending)
    if status.outlook.value == "up_to_date":
        return "Up to date."
    if status.outlook.value == "pending":
        what = "1 pending migration" if pending == 1 else f"{pending} pending migrations"
        return f"{what}: `migrate up` applies {'it' if pending == 1 else 'them'}."
    if status.outlook.value == "dirty":
        return _problem(status) or ""
    return f"`migrate up` would refuse: {_problem(status)}"


def _problem(status: Status) -> str | None:
    """Why ``up`` would refuse, with what to do (worded here from the refusal's fields)."""
    if status.refusal is None:
        return status.problem
    from thv_registry.cli.hints import describe

    return describe(status.refusal)


def status_json(status: Status, *, target: str) -> dict[str, Any]:
    return {
        "event": "status",
        "database": target,
        "version": status.current.version,
        "dirty": status.current.dirty,
        "outlook": status.outlook.value,
        "problem": _problem(status),
        "pending": len(status.pending),
        "migrations": [
            {
                "version": r.version,
                "name": r.name,
                "state": r.state.value,
                "file": r.file,
                "applied_at": timestamp(r.applied_at),
                "applied_by": r.applied_by,
                "duration_ms": r.duration_ms,
                "checksum": r.checksum,
                "file_checksum": r.file_checksum,
                "origin": r.origin,
            }
            for r in status.rows
        ],
    }


# -- force ---------------------------------------------------------------------------------------


def view_lines(
    view: DatabaseView, target_version: int | None, *, target: str, names: Mapping[int, str]
) -> list[str]:
    lines = [
        f"Database:          {target}",
        f"Current version:   {version_text(view.current, names)}",
        f"Recent history ({len(view.history)} most recent, oldest first):",
    ]
    rows = [_history_cells(h) for h in view.history]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(6)]
    for cells in rows:
        lines.append(
            "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        )
    if not rows:
        lines.append("  (no history rows)")
    tables = ", ".join(view.tables) if view.tables else "(none)"
    lines.append(f"Tables in schema {view.schema} ({len(view.tables)}): {tables}")
    if target_version is None:
        what, match = "Force clears the version (no version)", "having no migration applied"
    else:
        shown = version_text(VersionState(target_version, False), names)
        what, match = f"Force sets the version to {shown}, clean,", "that version"
    lines.append(
        f"{what} without running any migration: only schema_migrations changes (and the force "
        f"is recorded in the history). The schema must already match {match}."
    )
    return lines


#: history rows about one migration (force and baseline rows only move the version)
_NAMED = (HistoryDirection.UP, HistoryDirection.DOWN, HistoryDirection.ACCEPT)


def _history_cells(h: HistoryEntry) -> tuple[str, ...]:
    label = version_label(h.version, h.name) if h.direction in _NAMED else ""
    result = "no version" if h.resulting_version is None else str(h.resulting_version)
    if h.is_open:
        outcome = "NOT FINISHED (failed or interrupted)"
    elif h.interrupted:
        outcome = "never finished (closed by force)"
    else:
        outcome = _duration(h.duration_ms) or "done"
    by = f"by {h.db_user}" if h.db_user else ""
    return (_when(h.started_at), h.direction.value, label, f"-> {result}", by, outcome)


def history_json(h: HistoryEntry) -> dict[str, Any]:
    return {
        "version": h.version,
        "name": h.name,
        "direction": h.direction.value,
        "resulting_version": h.resulting_version,
        "checksum": h.checksum,
        "started_at": timestamp(h.started_at),
        "finished_at": timestamp(h.finished_at),
        "duration_ms": h.duration_ms,
        "db_user": h.db_user,
        "interrupted": h.interrupted,
    }


def view_json(view: DatabaseView, target_version: int | None, *, target: str) -> dict[str, Any]:
    return {
        "event": "force_plan",
        "database": target,
        "current_version": view.current.version,
        "dirty": view.current.dirty,
        "target_version": target_version,
        "schema": view.schema,
        "tables": list(view.tables),
        "history": [history_json(h) for h in view.history],
    }
