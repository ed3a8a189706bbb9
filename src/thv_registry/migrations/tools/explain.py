"""What a plan will do, statement by statement: the locks each takes and whether it rewrites.

Reads and parses every planned file (as the runner will), so a broken file is reported before
anyone is asked to confirm. The lock analysis comes from :mod:`.lockinfo`; what the text cannot
tell (is a dropped constraint a foreign key? which tables does a dropped table reference?) is
asked of the catalog when a :class:`Catalog` is given. Statements on a table created earlier in
the same transactional step get no lock notes: no other session can see that table yet.
Password literals (``CREATE ROLE ... PASSWORD '...'``) are masked in every text kept here, so no
view of a plan (text, ``--sql``, JSON) can show one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from thv_registry.migrations.engine.model import Plan, Step

if TYPE_CHECKING:
    from types import TracebackType

    import psycopg

    from thv_registry.migrations.engine.lockinfo import CatalogQuestion
    from thv_registry.migrations.engine.sqlfile import Statement

__all__ = [
    "LockInfo", "StatementInfo", "StepInfo", "Catalog", "DatabaseCatalog", "explain",
    "first_line", "NEW_TABLE_NOTE",
]  # fmt: skip

FIRST_LINE_MAX = 60
NEW_TABLE_NOTE = "on a table created earlier in this step: no other session sees it before COMMIT"
ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"


@dataclass(frozen=True)
class LockInfo:
    mode: str  #: e.g. ``ACCESS EXCLUSIVE``
    relation: str  #: e.g. ``public.source``


@dataclass(frozen=True)
class StatementInfo:
    text: str  #: the statement on one line, truncated (password literals masked)
    line: int  #: 1-based line in the file
    kind: str  #: pglast node name, e.g. ``AlterTableStmt``
    locks: tuple[LockInfo, ...]
    rewrites: bool | None  #: rewrites the table (None: unknown)
    note: str | None = None
    sql: str = ""  #: the whole statement as sent, without ``;`` (password literals masked)


@dataclass(frozen=True)
class StepInfo:
    step: Step
    file: str
    transactional: bool
    statements: tuple[StatementInfo, ...]


class Catalog(Protocol):
    """The catalog lookups that settle what a statement's text leaves open."""

    def constraint(self, relation: str, name: str) -> tuple[str, str | None] | None:
        """(contype, referenced table or None) of constraint ``name`` on ``relation``; None when
        there is no such constraint (or table)."""

    def referenced_tables(self, relation: str) -> tuple[str, ...] | None:
        """The other tables the foreign keys of ``relation`` reference; None: no such table."""


class DatabaseCatalog:
    """A :class:`Catalog` on a read-only connection, opened on the first question only.

    ``connect`` makes the connection (the migrator's database and search_path); use as a
    context manager so it is closed.
    """

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]]) -> None:
        self._connect = connect
        self._conn: psycopg.Connection[Any] | None = None

    def __enter__(self) -> DatabaseCatalog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            self._conn.close()

    def _query(self, query: str, params: tuple[str, ...]) -> list[tuple[Any, ...]]:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn.execute(query, params).fetchall()

    def constraint(self, relation: str, name: str) -> tuple[str, str | None] | None:
        rows = self._query(
            """SELECT c.contype::text, nullif(c.confrelid, 0)::regclass::text
                 FROM pg_constraint c
                WHERE c.conrelid = to_regclass(%s) AND c.conname = %s""",
            (relation, name),
        )
        return (str(rows[0][0]), rows[0][1]) if rows else None

    def referenced_tables(self, relation: str) -> tuple[str, ...] | None:
        rows = self._query(
            """SELECT to_regclass(%s) IS NOT NULL,
                      ARRAY(SELECT DISTINCT c.confrelid::regclass::text FROM pg_constraint c
                             WHERE c.conrelid = to_regclass(%s) AND c.contype = 'f'
                               AND c.confrelid <> c.conrelid ORDER BY 1)""",
            (relation, relation),
        )
        return tuple(rows[0][1]) if rows and rows[0][0] else None


def explain(plan: Plan, catalog: Catalog | None = None) -> tuple[StepInfo, ...]:
    """Describe each step of ``plan``; raises ``SourceError`` for a file that does not parse.

    :param catalog: settles the conditional lock notes (foreign keys) from the database.
    """
    from thv_registry.migrations.engine import runner

    infos = []
    for step in plan.steps:
        prepared = runner.prepare(step)
        transactional = prepared.sql.runs_in_transaction
        created: set[str] = set()
        statements = []
        for statement in prepared.sql.statements:
            statements.append(_statement(statement, catalog, created if transactional else None))
            if statement.kind in ("CreateStmt", "CreateTableAsStmt"):
                created.update(_created_names(statement))
        infos.append(StepInfo(step, step.file.origin, transactional, tuple(statements)))
    return tuple(infos)


def first_line(text: str, limit: int = FIRST_LINE_MAX) -> str:
    """The statement on one line (whitespace collapsed), cut to ``limit`` characters with ``...``.

    Collapsing rather than taking the literal first line keeps ``ALTER TABLE t\\n  ADD ...``
    readable; a long ``CREATE TABLE`` still shows its head.
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 4].rstrip() + " ..."


def _statement(
    statement: Statement, catalog: Catalog | None, created: set[str] | None
) -> StatementInfo:
    from thv_registry.migrations.engine import lockinfo
    from thv_registry.redact import mask_password_literals

    analysis = lockinfo.analyze(statement)
    locks = [LockInfo(lock.mode, lock.relation) for lock in analysis.locks]
    notes = list(analysis.notes)
    if catalog is not None:
        for question in analysis.questions:
            _settle(question, catalog, locks, notes)
    if created and locks and all(_bare(lock.relation) in created for lock in locks):
        notes = [NEW_TABLE_NOTE]  # scans and waits of an invisible, empty table do not matter
    shown = mask_password_literals(statement.text)  # before cutting: a cut literal is masked too
    return StatementInfo(
        text=first_line(shown),
        line=statement.line,
        kind=statement.kind,
        locks=tuple(locks),
        rewrites=analysis.rewrites,
        note="; ".join(notes) or None,
        sql=shown,
    )


def _settle(
    question: CatalogQuestion, catalog: Catalog, locks: list[LockInfo], notes: list[str]
) -> None:
    """Replace a conditional note by what the catalog says (a table it does not know: kept)."""
    if question.kind == "constraint" and question.name:
        found = catalog.constraint(question.relation, question.name)
        if found is None:
            return
        contype, referenced = found
        resolved = None
        if contype == "f" and referenced:
            _add_lock(locks, referenced)
            resolved = f"{question.name} is a foreign key: {referenced} is locked too"
    elif question.kind == "foreign_keys":
        tables = catalog.referenced_tables(question.relation)
        if tables is None:
            return
        for table in tables:
            _add_lock(locks, table)
        resolved = None
    else:
        return
    index = notes.index(question.note) if question.note in notes else None
    if index is not None:
        if resolved:
            notes[index] = resolved
        else:
            del notes[index]


def _add_lock(locks: list[LockInfo], relation: str) -> None:
    """ACCESS EXCLUSIVE on ``relation``: the strongest mode, so it replaces any other."""
    locks[:] = [lock for lock in locks if lock.relation != relation]
    locks.append(LockInfo(ACCESS_EXCLUSIVE, relation))


def _created_names(statement: Statement) -> set[str]:
    """The table a CREATE TABLE (AS) statement creates, as written and unqualified."""
    from pglast.parser import ParseError, parse_sql

    try:
        raws = parse_sql(statement.text)
    except ParseError:
        return set()
    node = raws[0].stmt if raws else None
    relation = getattr(node, "relation", None)
    if relation is None:  # CREATE TABLE AS keeps it in ``into``
        relation = getattr(getattr(node, "into", None), "rel", None)
    if relation is None:
        return set()
    from thv_registry.migrations.engine.lockrules import rv

    return {_bare(rv(relation))}


def _bare(relation: str) -> str:
    """The last part of a (possibly qualified) name: ``public.t`` and ``t`` are one table here."""
    return relation.rsplit(".", 1)[-1]
