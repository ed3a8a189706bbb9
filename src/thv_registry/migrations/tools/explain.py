"""What a plan will do, statement by statement: the locks each takes and whether it rewrites.

Reads and parses every planned file (as the runner will), so a broken file is reported before
anyone is asked to confirm. The lock analysis comes from :mod:`.lockinfo`.
"""

from __future__ import annotations

from dataclasses import dataclass

from thv_registry.migrations.engine.model import Plan, Step

__all__ = ["LockInfo", "StatementInfo", "StepInfo", "explain", "first_line"]

FIRST_LINE_MAX = 60


@dataclass(frozen=True)
class LockInfo:
    mode: str  #: e.g. ``ACCESS EXCLUSIVE``
    relation: str  #: e.g. ``public.source``


@dataclass(frozen=True)
class StatementInfo:
    text: str  #: the statement's first line, truncated
    line: int  #: 1-based line in the file
    kind: str  #: pglast node name, e.g. ``AlterTableStmt``
    locks: tuple[LockInfo, ...]
    rewrites: bool | None  #: rewrites the table (None: unknown)
    note: str | None = None


@dataclass(frozen=True)
class StepInfo:
    step: Step
    file: str
    transactional: bool
    statements: tuple[StatementInfo, ...]


def explain(plan: Plan) -> tuple[StepInfo, ...]:
    """Describe each step of ``plan``; raises ``SourceError`` for a file that does not parse."""
    from thv_registry.migrations.engine import runner

    infos = []
    for step in plan.steps:
        prepared = runner.prepare(step)
        statements = tuple(_statement(s) for s in prepared.sql.statements)
        infos.append(StepInfo(step, step.file.origin, prepared.sql.runs_in_transaction, statements))
    return tuple(infos)


def first_line(text: str, limit: int = FIRST_LINE_MAX) -> str:
    """The statement on one line (whitespace collapsed), cut to ``limit`` characters with ``...``.

    Collapsing rather than taking the literal first line keeps ``ALTER TABLE t\n  ADD ...``
    readable; a long ``CREATE TABLE`` still shows its head.
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 4].rstrip() + " ..."


def _statement(statement: object) -> StatementInfo:
    from thv_registry.migrations.engine import lockinfo, sqlfile

    assert isinstance(statement, sqlfile.Statement)
    analysis = lockinfo.analyze(statement)
    return StatementInfo(
        text=first_line(statement.text),
        line=statement.line,
        kind=statement.kind,
        locks=tuple(LockInfo(lock.mode, lock.relation) for lock in analysis.locks),
        rewrites=analysis.rewrites,
        note=analysis.note,
    )
