"""The plan as people and programs see it: text lines (wrapped, coloured), an SQL script, JSON.

Pure formatting: :class:`.output.Output` decides the width (the terminal's, or none when the
output is not a terminal) and whether colours survive (click strips them when the stream is
not a terminal; ``NO_COLOR`` turns them off). Every text here comes from
:mod:`thv_registry.migrations.tools.explain`, where password literals are already masked.
The JSON shape is documented in docs/json-output.md: add fields, never rename or remove them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from thv_registry.cli.render import step_label, version_text
from thv_registry.migrations.engine.model import ChangedFile, Direction, Plan, Redo, VersionState

if TYPE_CHECKING:
    from thv_registry.migrations.tools.explain import StatementInfo, StepInfo

__all__ = ["plan_lines", "plan_json", "sql_lines", "paint"]

STATEMENT_INDENT = " " * 9
DETAIL_INDENT = " " * 13
LABEL_WIDTH = 19  #: "Resulting version: "


def plan_lines(
    plan: Plan,
    details: Sequence[StepInfo],
    *,
    target: str,
    names: Mapping[int, str],
    width: int | None = None,
) -> list[str]:
    """The plan as shown before a confirmation and by --dry-run; wrapped to ``width`` if given."""
    verb = "revert" if plan.direction is Direction.DOWN else "apply"
    if isinstance(plan.request, Redo):
        verb = "revert and apply again"
    lines = [
        _label("Database:", target, width),
        _label("Current version:", version_text(plan.current, names), width),
    ]
    for change in plan.accepted:
        text = (
            f"{change.origin} (version {change.version}; sha256 {change.recorded[:12]} when "
            f"applied, {change.actual[:12]} now)"
        )
        lines.append(_label("Accepting changed:", text, width))
    if plan.steps:
        lines.append(f"Migrations to {verb} ({len(plan.steps)}):")
    column = max((len(s.text) for d in details for s in d.statements), default=0)
    by_step = {id(d.step): d for d in details}
    for step in plan.steps:
        info = by_step.get(id(step))
        if info is None:
            lines.append(f"  {step.direction.value:<4} {step_label(step)}")
            continue
        mode = "transaction" if info.transactional else "no transaction: dirty while it runs"
        lines.append(f"  {step.direction.value:<4} {step_label(step)}   ({mode})")
        if not info.statements:
            lines.append(f"{STATEMENT_INDENT}(no statements)")
        for statement in info.statements:
            lines.extend(_statement_lines(statement, column, width))
    final = VersionState(plan.final_version, False)
    lines.append(_label("Resulting version:", version_text(final, names), width))
    return lines


def wrap(text: str, width: int | None, indent: str = "", first: str = "") -> list[str]:
    """``text`` wrapped to ``width`` (None: one line), with ``first`` before its first line."""
    if width is None or len(first) + len(text) <= width:
        return [first + text]
    wrapped = click.wrap_text(
        text,
        max(width, len(indent) + 20),
        initial_indent=first,
        subsequent_indent=indent,
        preserve_paragraphs=False,
    )
    return wrapped.splitlines()


def _label(label: str, text: str, width: int | None) -> str:
    return "\n".join(wrap(text, width, " " * LABEL_WIDTH, f"{label:<{LABEL_WIDTH - 1}} "))


def _statement_lines(statement: StatementInfo, column: int, width: int | None) -> list[str]:
    """One line (statement, then its locks) when it fits; else the locks below, wrapped."""
    locks = _locks_text(statement)
    line = f"{STATEMENT_INDENT}{statement.text:<{column}}   {locks}"
    if width is None or len(line) <= width:
        return [line]
    below = wrap(locks, width, DETAIL_INDENT, DETAIL_INDENT)
    return [f"{STATEMENT_INDENT}{statement.text}", *below]


def _locks_text(statement: StatementInfo) -> str:
    rewrite = {True: "yes", False: "no", None: "unknown"}[statement.rewrites]
    if statement.locks:
        locks = "; ".join(f"{lock.mode} on {lock.relation}" for lock in statement.locks)
        text = f"{locks}, rewrite: {rewrite}"
    else:
        text = "no lock on existing tables"
        if statement.rewrites is not False:
            text += f", rewrite: {rewrite}"
    return text + (f" - {statement.note}" if statement.note else "")


#: what stands out on a terminal: (text, click.style arguments)
_HIGHLIGHTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("ACCESS EXCLUSIVE", {"fg": "red"}),
    ("rewrite: yes", {"fg": "red"}),
    ("WARNING:", {"fg": "red", "bold": True}),
    ("no transaction: dirty while it runs", {"fg": "yellow"}),
)
_LABELS = ("Database:", "Current version:", "Accepting changed:", "Resulting version:")


def paint(line: str) -> str:
    """``line`` with colours (ANSI; click.echo strips them where they do not belong)."""
    for label in _LABELS:
        if line.startswith(label):
            line = click.style(label, bold=True) + line[len(label) :]
    if line.startswith("  up   "):
        line = "  " + click.style("up", fg="green", bold=True) + line[4:]
    elif line.startswith("  down "):
        line = "  " + click.style("down", fg="yellow", bold=True) + line[6:]
    elif line.startswith("Migrations to "):
        line = click.style(line, bold=True)
    for text, style in _HIGHLIGHTS:
        if text in line:
            line = line.replace(text, click.style(text, **style))
    return line


# -- --sql ---------------------------------------------------------------------------------------


def sql_lines(
    plan: Plan, details: Sequence[StepInfo], *, target: str, names: Mapping[int, str]
) -> list[str]:
    """Every planned statement as a script, with how each step runs (Alembic's offline mode).

    The ``schema_migrations`` and history updates are the tool's own: they are described in
    comments, not shown as SQL.
    """
    final = VersionState(plan.final_version, False)
    lines = [
        f"-- Database: {target}",
        f"-- Current version: {version_text(plan.current, names)}; resulting version: "
        f"{version_text(final, names)}. Nothing was changed: this is the SQL a run would send.",
    ]
    by_step = {id(d.step): d for d in details}
    for step in plan.steps:
        info = by_step.get(id(step))
        if info is None:
            continue
        shown = "no version" if step.target_version is None else f"version {step.target_version}"
        lines.append("")
        lines.append(f"-- {step_label(step)} ({step.direction.value}): {info.file}")
        if info.transactional:
            lines.append(f"-- one transaction, with schema_migrations set to {shown}, clean")
            lines.append("BEGIN;")
        else:
            lines.append(
                "-- outside a transaction (golang-migrate's dirty protocol): schema_migrations "
                f"is marked dirty first and set to {shown}, clean, after the last statement"
            )
        for statement in info.statements:
            lines.append(f"{statement.sql};")
        if info.transactional:
            lines.append("COMMIT;")
    return lines


# -- JSON ----------------------------------------------------------------------------------------


def plan_json(
    plan: Plan, details: Sequence[StepInfo], *, target: str, dry_run: bool
) -> dict[str, Any]:
    by_step = {id(d.step): d for d in details}
    steps = []
    for step in plan.steps:
        item: dict[str, Any] = {
            "direction": step.direction.value,
            "version": step.migration.version,
            "name": step.migration.name,
            "target_version": step.target_version,
        }
        info = by_step.get(id(step))
        if info is not None:
            item["file"] = info.file
            item["transactional"] = info.transactional
            item["statements"] = [
                {
                    "line": s.line,
                    "text": s.text,
                    "kind": s.kind,
                    "locks": [{"mode": lock.mode, "relation": lock.relation} for lock in s.locks],
                    "rewrites": s.rewrites,
                    "note": s.note,
                    "sql": s.sql,
                }
                for s in info.statements
            ]
        steps.append(item)
    return {
        "event": "plan",
        "dry_run": dry_run,
        "database": target,
        "current_version": plan.current.version,
        "dirty": plan.current.dirty,
        "final_version": plan.final_version,
        "steps": steps,
        "accepted": [_changed_json(c) for c in plan.accepted],
    }


def _changed_json(change: ChangedFile) -> dict[str, Any]:
    return {
        "version": change.version,
        "name": change.name,
        "file": change.origin,
        "recorded_checksum": change.recorded,
        "checksum": change.actual,
    }
