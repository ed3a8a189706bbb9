"""Which table locks a statement takes, and whether it rewrites a table: read from its parse tree.

A pure analysis of one statement's text with PostgreSQL's parser (pglast), following the
PostgreSQL documentation (chapter "Explicit Locking" and the ALTER TABLE page) and
``AlterTableGetLockLevel`` in ``tablecmds.c``. No catalog is consulted, so what depends on the
existing schema (a column's old type, triggers, dependent objects) is said in ``note``; where a
catalog lookup would settle it (is this constraint a foreign key? which tables do this table's
foreign keys reference?), ``questions`` says so, for a caller that is connected.

Relations are named as written: ``app.users`` when the statement qualifies the name, ``users``
when it does not (the caller may add "(search_path)"); identifiers that need quotes are quoted.
For ``DROP INDEX`` / ``REINDEX INDEX`` / ``ALTER INDEX`` the relation is the index (its table's
name is not in the text); ``note`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from thv_registry.migrations.engine.lockmodes import LOCK_MODES, rank
from thv_registry.migrations.engine.lockrules import (
    ALTER_NOTES,
    ALTER_SIMPLE,
    FOREIGN_KEYS_NOTE,
    NO_REWRITE_HINT,
    ON_TABLE,
    SERIAL_TYPES,
    SIMPLE,
    TABLE_LIKE,
    CatalogQuestion,
    dotted,
    is_true,
    is_volatile,
    kind_name,
    light_reloption,
    read_relations,
    rv,
    type_name,
)

if TYPE_CHECKING:
    from pglast import ast

    from thv_registry.migrations.engine.sqlfile import Statement

__all__ = [
    "LOCK_MODES", "TableLock", "StatementLocks", "CatalogQuestion", "analyze", "analyze_sql",
]  # fmt: skip

AS, RS, RX, SUX, SH, SRX, EX, AX = LOCK_MODES


@dataclass(frozen=True)
class TableLock:
    """One lock: ``mode`` is a name from :data:`LOCK_MODES`, ``relation`` as written in the SQL."""

    mode: str
    relation: str


@dataclass(frozen=True)
class StatementLocks:
    """The locks a statement takes (strongest per relation) and whether it rewrites a table.

    ``rewrites``: True, False, or None when it depends on what the text does not show.
    ``note``: what else to know (full-table scans, locks the text cannot show), or None; the
    same as ``notes`` joined with ``; ``.
    """

    locks: tuple[TableLock, ...]
    rewrites: bool | None
    note: str | None
    notes: tuple[str, ...] = ()
    questions: tuple[CatalogQuestion, ...] = ()


NOT_ANALYSED = StatementLocks((), None, "not analysed")


def analyze(statement: Statement) -> StatementLocks:
    """Analyse one statement of a parsed migration file."""
    return analyze_sql(statement.text)


def analyze_sql(text: str) -> StatementLocks:
    """Analyse the first statement of ``text``; unparsable or unknown SQL is "not analysed"."""
    from pglast.parser import ParseError, parse_sql

    try:
        raws = parse_sql(text)
    except ParseError:
        return NOT_ANALYSED
    if not raws or raws[0].stmt is None:
        return NOT_ANALYSED
    return _analyze_node(raws[0].stmt)


@dataclass
class _Result:
    """Accumulates locks (strongest per relation, first-seen order), rewrites and notes."""

    levels: dict[str, int] = field(default_factory=dict)
    rewrite_votes: list[bool | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    questions: list[CatalogQuestion] = field(default_factory=list)

    def lock(self, mode: str, relation: str | None) -> None:
        if relation:
            level = rank(mode)
            self.levels[relation] = max(level, self.levels.get(relation, -1))

    def reserve(self, relation: str) -> None:
        """List ``relation`` first, whatever the order its locks are found in."""
        self.levels.setdefault(relation, -1)

    def rewrite(self, value: bool | None) -> None:
        self.rewrite_votes.append(value)

    def note(self, text: str | None) -> None:
        if text and text not in self.notes:
            self.notes.append(text)

    def ask(self, kind: str, relation: str, name: str | None, note: str) -> None:
        """A conditional ``note`` that the catalog can settle."""
        self.note(note)
        self.questions.append(CatalogQuestion(kind, relation, name, note))

    def done(self) -> StatementLocks:
        votes = self.rewrite_votes
        rewrites = True if True in votes else (None if None in votes else False)  # [] -> False
        levels = self.levels.items()
        locks = tuple(TableLock(LOCK_MODES[lvl], rel) for rel, lvl in levels if lvl >= 0)
        notes = tuple(self.notes)
        return StatementLocks(
            locks, rewrites, "; ".join(notes) or None, notes, tuple(self.questions)
        )


def _analyze_node(node: ast.Node) -> StatementLocks:
    from pglast import ast

    r = _Result()
    kind = type(node).__name__
    if kind in SIMPLE:
        attr, mode, note = SIMPLE[kind]
        targets = getattr(node, attr) if attr else ()
        for rel in targets if isinstance(targets, tuple | list) else (targets,):
            r.lock(mode, rv(rel))
        r.note(note)
        return r.done()
    match node:
        case ast.CreateStmt():
            _create_table(r, node)
        case ast.CreateTableAsStmt() | ast.ViewStmt():
            for name in read_relations(node.query):
                r.lock(AS, name)
            if isinstance(node, ast.ViewStmt) and node.replace:
                r.lock(AX, rv(node.view))
                r.note("OR REPLACE takes ACCESS EXCLUSIVE on the view if it exists")
        case ast.AlterTableStmt():
            _alter_table(r, node)
        case ast.DropStmt():
            _drop(r, node)
        case ast.IndexStmt():
            r.lock(SUX if node.concurrent else SH, rv(node.relation))
            r.note(
                "builds the index by reading the whole table"
                + ("" if node.concurrent else "; writes to the table wait until it is built")
            )
        case ast.ReindexStmt():
            _reindex(r, node)
        case ast.VacuumStmt():
            _vacuum(r, node)
        case ast.ClusterStmt():
            r.lock(AX, rv(node.relation) if node.relation else None)
            r.rewrite(True if node.relation else None)
            if not node.relation:
                r.note("rewrites every table clustered before, one at a time (ACCESS EXCLUSIVE)")
        case ast.InsertStmt() | ast.UpdateStmt() | ast.DeleteStmt() | ast.MergeStmt():
            r.lock(RX, rv(node.relation))
            for name in read_relations(node, skip=node.relation):
                r.lock(AS, name)
            if not isinstance(node, ast.InsertStmt):
                r.note("changed rows stay row-locked until the transaction ends")
        case ast.SelectStmt():
            _select(r, node)
        case ast.RenameStmt():
            index = kind_name(node.renameType) == "OBJECT_INDEX"
            r.lock(SUX if index else AX, rv(node.relation) if node.relation else None)
            r.note("the relation shown is the index" if index else None)
            r.note(None if node.relation else "no table lock")
        case ast.AlterObjectSchemaStmt():
            r.lock(AX, rv(node.relation) if node.relation else None)
        case ast.RefreshMatViewStmt():
            r.lock(EX if node.concurrent else AX, rv(node.relation))
            r.rewrite(True)
            r.note("recomputes the materialized view's whole contents")
        case ast.CommentStmt():
            relation = _commented_relation(node)
            r.lock(SUX, relation)
            r.note(None if relation else "changes the catalog only; no table lock")
        case ast.LockStmt():
            for rel in node.relations or ():
                r.lock(LOCK_MODES[(node.mode or len(LOCK_MODES)) - 1], rv(rel))
            r.note("held until the transaction ends")
        case _:
            return NOT_ANALYSED
    return r.done()


# ---- statements ---------------------------------------------------------------------------------


def _create_table(r: _Result, node: ast.CreateStmt) -> None:
    from pglast import ast

    for parent in node.inhRelations or ():
        r.lock(AX if node.partbound is not None else SUX, rv(parent))
    if node.partbound is not None:
        r.note("PARTITION OF takes ACCESS EXCLUSIVE on the parent table")
    for element in node.tableElts or ():
        if isinstance(element, ast.TableLikeClause):
            r.lock(AS, rv(element.relation))
        constraints = element.constraints if isinstance(element, ast.ColumnDef) else (element,)
        for con in constraints or ():
            if isinstance(con, ast.Constraint) and con.pktable is not None:
                r.lock(SRX, rv(con.pktable))


def _drop(r: _Result, node: ast.DropStmt) -> None:
    kind = kind_name(node.removeType).removeprefix("OBJECT_")
    objects = [o for o in node.objects or () if isinstance(o, tuple | list)]
    if kind in TABLE_LIKE:
        mode = SUX if node.concurrent else AX
        for item in objects:
            r.lock(mode, dotted(item))
        if kind == "TABLE":
            for item in objects:
                r.ask("foreign_keys", dotted(item), None, FOREIGN_KEYS_NOTE)
        elif kind == "INDEX":
            r.note(
                "the lock is on the index's table (the relation shown is the index)"
                + ("" if node.concurrent else "; reads and writes of that table wait")
            )
    elif kind in ("TRIGGER", "RULE", "POLICY"):
        for item in objects:
            r.lock(AX, dotted(item[:-1]))
    else:
        cascade = kind_name(node.behavior) == "DROP_CASCADE"
        r.note("no table lock" + ("; CASCADE may drop dependent objects" if cascade else ""))


def _reindex(r: _Result, node: ast.ReindexStmt) -> None:
    kind = kind_name(node.kind).removeprefix("REINDEX_OBJECT_")
    concurrently = any(o.defname == "concurrently" and is_true(o.arg) for o in node.params or ())
    if kind == "TABLE":
        r.lock(SUX if concurrently else SH, rv(node.relation))
        if not concurrently:
            r.note("rebuilds every index; each is locked ACCESS EXCLUSIVE while it is rebuilt")
    elif kind == "INDEX":
        r.lock(SUX if concurrently else AX, rv(node.relation))
        r.note(
            "the relation shown is the index"
            + ("" if concurrently else "; its table is locked SHARE (writes wait)")
        )
    else:
        r.note("rebuilds the indexes of many tables, one table at a time")


def _vacuum(r: _Result, node: ast.VacuumStmt) -> None:
    full = bool(node.is_vacuumcmd) and any(
        o.defname == "full" and is_true(o.arg) for o in node.options or ()
    )
    for rel in node.rels or ():
        r.lock(AX if full else SUX, rv(rel.relation))
    r.rewrite(full)
    if not node.rels:
        r.note("processes every table of the database, one at a time")


def _select(r: _Result, node: ast.SelectStmt) -> None:
    names = read_relations(node)
    locked: set[str] | None = set()
    for clause in node.lockingClause or ():
        if not clause.lockedRels:
            locked = None  # FOR UPDATE without OF: every table read
            break
        assert locked is not None
        locked.update(rv(rel) for rel in clause.lockedRels)
    for name in names:
        r.lock(RS if locked is None or name in locked else AS, name)


def _commented_relation(node: ast.CommentStmt) -> str | None:
    names = node.object if isinstance(node.object, tuple | list) else ()
    kind = kind_name(node.objtype).removeprefix("OBJECT_")
    if kind in TABLE_LIKE:
        return dotted(names)
    return dotted(names[:-1]) if kind in ON_TABLE else None


# ---- ALTER TABLE --------------------------------------------------------------------------------


def _alter_table(r: _Result, node: ast.AlterTableStmt) -> None:
    """Each subcommand's lock and rewrite; the strongest lock of the subcommands is taken."""
    from pglast import ast

    table = rv(node.relation)
    r.reserve(table)
    if kind_name(node.objtype) == "OBJECT_INDEX":
        r.note("the relation shown is the index")
    for cmd in node.cmds or ():
        if not isinstance(cmd, ast.AlterTableCmd):
            continue
        kind, arg = kind_name(cmd.subtype).removeprefix("AT_"), cmd.def_
        lock, rewrite = ALTER_SIMPLE.get(kind, (AX, None))
        if kind == "DropConstraint" and cmd.name:
            r.ask("constraint", table, cmd.name, ALTER_NOTES[kind].format(col=cmd.name))
        elif kind in ALTER_NOTES:
            r.note(ALTER_NOTES[kind].format(col=cmd.name))
        if kind == "AddColumn" and isinstance(arg, ast.ColumnDef):
            rewrite = _add_column(r, arg)
        elif kind == "AlterColumnType" and isinstance(arg, ast.ColumnDef):
            rewrite = True if arg.raw_default is not None else None
            if rewrite is None:
                r.note(f"TYPE of {cmd.name} rewrites the table: {NO_REWRITE_HINT}")
            r.note(f"changing the type of {cmd.name} rebuilds the indexes that use it")
        elif kind == "AddConstraint" and isinstance(arg, ast.Constraint):
            lock, rewrite = _add_constraint(r, arg), False
        elif kind == "ValidateConstraint":
            lock, rewrite = SUX, False
        elif kind in ("SetRelOptions", "ResetRelOptions", "ReplaceRelOptions"):
            light = all(light_reloption(o) for o in arg or ())
            lock, rewrite = (SUX if light else AX), False
        elif kind in ("AttachPartition", "DetachPartition") and isinstance(arg, ast.PartitionCmd):
            lock = SUX if kind == "AttachPartition" or arg.concurrent else AX
            r.lock(AX if kind == "AttachPartition" else lock, rv(arg.name))
            rewrite = False
        elif kind in ("AddInherit", "DropInherit") and arg is not None:
            r.lock(SUX, rv(arg))
        elif kind not in ALTER_SIMPLE:
            r.note(f"subcommand {kind} not analysed; ACCESS EXCLUSIVE assumed")
        r.lock(lock, table)
        r.rewrite(rewrite)


def _add_column(r: _Result, column: ast.ColumnDef) -> bool | None:
    """Whether ADD COLUMN rewrites the table (PostgreSQL 11+: only a volatile default does)."""
    from pglast import ast

    name = column.colname
    rewrite: bool | None = False
    if column.typeName is not None and type_name(column.typeName) in SERIAL_TYPES:
        rewrite = True  # nextval() default: every row gets its own value
    for con in column.constraints or ():
        if not isinstance(con, ast.Constraint):
            continue
        contype = kind_name(con.contype).removeprefix("CONSTR_")
        if contype == "DEFAULT":
            volatile = is_volatile(con.raw_expr)
            if volatile is None:
                r.note(f"the default of {name} calls a function: a rewrite unless it is stable")
                rewrite = None if rewrite is False else rewrite
            elif volatile:
                rewrite = True
        elif contype in ("IDENTITY", "GENERATED"):
            rewrite = True
        elif contype == "FOREIGN":
            r.lock(SRX, rv(con.pktable))
            r.note(f"the foreign key on {name} takes SHARE ROW EXCLUSIVE on {rv(con.pktable)}")
        elif contype in ("PRIMARY", "UNIQUE"):
            r.note(f"the index on {name} is built by reading the whole table")
        elif contype == "CHECK":
            r.note(f"the CHECK on {name} is verified against every row")
    if rewrite:
        r.note(f"ADD COLUMN {name} rewrites the table (each row gets its own value)")
    return rewrite


def _add_constraint(r: _Result, con: ast.Constraint) -> str:
    contype = kind_name(con.contype).removeprefix("CONSTR_")
    if contype == "FOREIGN":
        r.lock(SRX, rv(con.pktable))
        if not con.skip_validation:
            r.note(
                "the new foreign key is checked against every row (add it NOT VALID, then "
                "VALIDATE CONSTRAINT, to avoid blocking writes meanwhile)"
            )
        return SRX
    if contype == "CHECK" and not con.skip_validation:
        r.note("the new CHECK is verified against every row (NOT VALID + VALIDATE avoids it)")
    elif contype in ("PRIMARY", "UNIQUE", "EXCLUSION"):
        if con.indexname:
            r.note(f"uses the existing index {con.indexname}")
        else:
            r.note("builds the constraint's index by reading the whole table")
    return AX
