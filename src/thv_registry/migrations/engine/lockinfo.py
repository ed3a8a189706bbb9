"""Which table locks a statement takes, and whether it rewrites a table: read from its parse tree.

A pure analysis of one statement's text with PostgreSQL's parser (pglast), following the
PostgreSQL documentation (chapter "Explicit Locking" and the ALTER TABLE page) and
``AlterTableGetLockLevel`` in ``tablecmds.c``. No catalog is consulted, so what depends on the
existing schema (a column's old type, triggers, dependent objects) is said in ``note``.

Relations are named as written: ``app.users`` when the statement qualifies the name, ``users``
when it does not (the caller may add "(search_path)"); identifiers that need quotes are quoted.
For ``DROP INDEX`` / ``REINDEX INDEX`` / ``ALTER INDEX`` the relation is the index (its table's
name is not in the text); ``note`` says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from thv_registry.migrations.engine.lockmodes import LOCK_MODES, rank

if TYPE_CHECKING:
    from pglast import ast

    from thv_registry.migrations.engine.sqlfile import Statement

__all__ = ["LOCK_MODES", "TableLock", "StatementLocks", "analyze", "analyze_sql"]

AS, RS, RX, SUX, SH, SRX, EX, AX = LOCK_MODES

# fmt: off
#: Functions whose result changes per row: a default calling one rewrites the table.
_VOLATILE = frozenset({
    "random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
    "uuidv4", "uuidv7", "clock_timestamp", "timeofday", "nextval", "setval", "txid_current",
    "random_normal",
})
#: Stable or immutable functions often used in defaults: evaluated once, no rewrite.
_NOT_VOLATILE = frozenset({
    "now", "statement_timestamp", "transaction_timestamp", "current_setting", "current_database",
    "lower", "upper", "jsonb_build_object", "json_build_object", "jsonb_build_array",
    "json_build_array", "to_jsonb", "to_json", "make_interval", "make_date", "make_timestamp",
    "make_timestamptz", "date_trunc", "length", "concat", "array_fill",
})
_SERIAL_TYPES = frozenset({"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"})
#: Storage parameters that ALTER TABLE SET (...) changes under SHARE UPDATE EXCLUSIVE.
_LIGHT_RELOPTIONS = frozenset({
    "fillfactor", "parallel_workers", "toast_tuple_target", "vacuum_index_cleanup",
    "vacuum_truncate", "log_autovacuum_min_duration",
})
#: ALTER TABLE subcommands (``AlterTableType`` names, without ``AT_``) that need nothing but a
#: lock mode and whether they rewrite, after ``AlterTableGetLockLevel`` in tablecmds.c.
_ALTER_SIMPLE: dict[str, tuple[str, bool]] = {
    **dict.fromkeys((
        "SetStatistics", "SetOptions", "ResetOptions", "ClusterOn", "DropCluster",
        "DetachPartitionFinalize",
    ), ("SHARE UPDATE EXCLUSIVE", False)),
    **dict.fromkeys((
        "EnableTrig", "EnableAlwaysTrig", "EnableReplicaTrig", "DisableTrig", "EnableTrigAll",
        "DisableTrigAll", "EnableTrigUser", "DisableTrigUser",
    ), ("SHARE ROW EXCLUSIVE", False)),
    **dict.fromkeys((
        "SetLogged", "SetUnLogged", "SetAccessMethod", "SetExpression", "SetTableSpace",
    ), ("ACCESS EXCLUSIVE", True)),
    **dict.fromkeys((
        "ColumnDefault", "CookedColumnDefault", "DropNotNull", "DropExpression", "SetStorage",
        "SetCompression", "DropColumn", "AlterConstraint", "AddIndexConstraint", "ChangeOwner",
        "AlterColumnGenericOptions", "GenericOptions", "EnableRule", "EnableAlwaysRule",
        "EnableReplicaRule", "DisableRule", "AddOf", "DropOf", "ReplicaIdentity",
        "EnableRowSecurity", "DisableRowSecurity", "ForceRowSecurity", "NoForceRowSecurity",
        "AddIdentity", "SetIdentity", "DropIdentity", "SetNotNull", "DropConstraint",
        "AddInherit", "DropInherit",
    ), ("ACCESS EXCLUSIVE", False)),
}
_ALTER_NOTES = {
    "SetNotNull": "SET NOT NULL on {col} scans the whole table (no rewrite; skipped when a valid "
                  "CHECK ({col} IS NOT NULL) constraint exists)",
    "DropConstraint": "if {col} is a foreign key, the table it references is locked too",
    "SetTableSpace": "SET TABLESPACE copies the table's files to the new tablespace",
    "AttachPartition": "ATTACH PARTITION scans the partition unless a CHECK constraint proves "
                       "the bound",
    "ValidateConstraint": "VALIDATE CONSTRAINT {col} scans the table while reads and writes go "
                          "on (a foreign key also takes ROW SHARE on the table it references)",
}
#: Statements that lock the relation(s) in one attribute (or none) with one mode, no rewrite.
_SIMPLE: dict[str, tuple[str | None, str, str | None]] = {
    "CreateTrigStmt": ("relation", "SHARE ROW EXCLUSIVE", None),
    "RuleStmt": ("relation", "ACCESS EXCLUSIVE", None),
    "CreatePolicyStmt": ("table", "ACCESS EXCLUSIVE", None),
    "AlterPolicyStmt": ("table", "ACCESS EXCLUSIVE", None),
    "AlterSeqStmt": ("sequence", "SHARE ROW EXCLUSIVE", None),
    "TruncateStmt": ("relations", "ACCESS EXCLUSIVE",
                     "removes every row (new empty storage, no row-by-row work)"),
    "GrantStmt": (None, "", "changes the catalog only; no table lock"),
    "AlterEnumStmt": (None, "", "no table lock; a value added by ADD VALUE cannot be used until "
                                "the transaction that added it has committed"),
    **dict.fromkeys((
        "CreateEnumStmt", "CompositeTypeStmt", "CreateRangeStmt", "DefineStmt",
        "CreateFunctionStmt", "CreateDomainStmt", "CreateSeqStmt", "CreateSchemaStmt",
        "CreateExtensionStmt", "VariableSetStmt", "TransactionStmt",
    ), (None, "", None)),
}
_TABLE_LIKE = frozenset({"TABLE", "VIEW", "MATVIEW", "SEQUENCE", "FOREIGN_TABLE", "INDEX"})
_ON_TABLE = frozenset({"COLUMN", "TABCONSTRAINT", "TRIGGER", "POLICY", "RULE"})
# fmt: on
_NO_REWRITE_HINT = "yes (unless binary-compatible, e.g. varchar widening)"


@dataclass(frozen=True)
class TableLock:
    """One lock: ``mode`` is a name from :data:`LOCK_MODES`, ``relation`` as written in the SQL."""

    mode: str
    relation: str


@dataclass(frozen=True)
class StatementLocks:
    """The locks a statement takes (strongest per relation) and whether it rewrites a table.

    ``rewrites``: True, False, or None when it depends on what the text does not show.
    ``note``: what else to know (full-table scans, locks the text cannot show), or None.
    """

    locks: tuple[TableLock, ...]
    rewrites: bool | None
    note: str | None


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

    def done(self) -> StatementLocks:
        votes = self.rewrite_votes
        rewrites = True if True in votes else (None if None in votes else False)  # [] -> False
        levels = self.levels.items()
        locks = tuple(TableLock(LOCK_MODES[lvl], rel) for rel, lvl in levels if lvl >= 0)
        return StatementLocks(locks, rewrites, "; ".join(self.notes) or None)


def _analyze_node(node: ast.Node) -> StatementLocks:
    from pglast import ast

    r = _Result()
    kind = type(node).__name__
    if kind in _SIMPLE:
        attr, mode, note = _SIMPLE[kind]
        targets = getattr(node, attr) if attr else ()
        for rel in targets if isinstance(targets, tuple | list) else (targets,):
            r.lock(mode, _rv(rel))
        r.note(note)
        return r.done()
    match node:
        case ast.CreateStmt():
            _create_table(r, node)
        case ast.CreateTableAsStmt() | ast.ViewStmt():
            for name in _read_relations(node.query):
                r.lock(AS, name)
            if isinstance(node, ast.ViewStmt) and node.replace:
                r.lock(AX, _rv(node.view))
                r.note("OR REPLACE takes ACCESS EXCLUSIVE on the view if it exists")
        case ast.AlterTableStmt():
            _alter_table(r, node)
        case ast.DropStmt():
            _drop(r, node)
        case ast.IndexStmt():
            r.lock(SUX if node.concurrent else SH, _rv(node.relation))
            r.note(
                "builds the index by reading the whole table"
                + ("" if node.concurrent else "; writes to the table wait until it is built")
            )
        case ast.ReindexStmt():
            _reindex(r, node)
        case ast.VacuumStmt():
            _vacuum(r, node)
        case ast.ClusterStmt():
            r.lock(AX, _rv(node.relation) if node.relation else None)
            r.rewrite(True if node.relation else None)
            if not node.relation:
                r.note("rewrites every table clustered before, one at a time (ACCESS EXCLUSIVE)")
        case ast.InsertStmt() | ast.UpdateStmt() | ast.DeleteStmt() | ast.MergeStmt():
            r.lock(RX, _rv(node.relation))
            for name in _read_relations(node, skip=node.relation):
                r.lock(AS, name)
            if not isinstance(node, ast.InsertStmt):
                r.note("changed rows stay row-locked until the transaction ends")
        case ast.SelectStmt():
            _select(r, node)
        case ast.RenameStmt():
            index = _kind(node.renameType) == "OBJECT_INDEX"
            r.lock(SUX if index else AX, _rv(node.relation) if node.relation else None)
            r.note("the relation shown is the index" if index else None)
            r.note(None if node.relation else "no table lock")
        case ast.AlterObjectSchemaStmt():
            r.lock(AX, _rv(node.relation) if node.relation else None)
        case ast.RefreshMatViewStmt():
            r.lock(EX if node.concurrent else AX, _rv(node.relation))
            r.rewrite(True)
            r.note("recomputes the materialized view's whole contents")
        case ast.CommentStmt():
            relation = _commented_relation(node)
            r.lock(SUX, relation)
            r.note(None if relation else "changes the catalog only; no table lock")
        case ast.LockStmt():
            for rel in node.relations or ():
                r.lock(LOCK_MODES[(node.mode or len(LOCK_MODES)) - 1], _rv(rel))
            r.note("held until the transaction ends")
        case _:
            return NOT_ANALYSED
    return r.done()


# ---- statements ---------------------------------------------------------------------------------


def _create_table(r: _Result, node: ast.CreateStmt) -> None:
    from pglast import ast

    for parent in node.inhRelations or ():
        r.lock(AX if node.partbound is not None else SUX, _rv(parent))
    if node.partbound is not None:
        r.note("PARTITION OF takes ACCESS EXCLUSIVE on the parent table")
    for element in node.tableElts or ():
        if isinstance(element, ast.TableLikeClause):
            r.lock(AS, _rv(element.relation))
        constraints = element.constraints if isinstance(element, ast.ColumnDef) else (element,)
        for con in constraints or ():
            if isinstance(con, ast.Constraint) and con.pktable is not None:
                r.lock(SRX, _rv(con.pktable))


def _drop(r: _Result, node: ast.DropStmt) -> None:
    kind = _kind(node.removeType).removeprefix("OBJECT_")
    objects = [o for o in node.objects or () if isinstance(o, tuple | list)]
    if kind in _TABLE_LIKE:
        mode = SUX if node.concurrent else AX
        for item in objects:
            r.lock(mode, _dotted(item))
        if kind == "TABLE":
            r.note(
                "also takes ACCESS EXCLUSIVE on the tables its foreign keys reference "
                "(not visible from the text)"
            )
        elif kind == "INDEX":
            r.note(
                "the lock is on the index's table (the relation shown is the index)"
                + ("" if node.concurrent else "; reads and writes of that table wait")
            )
    elif kind in ("TRIGGER", "RULE", "POLICY"):
        for item in objects:
            r.lock(AX, _dotted(item[:-1]))
    else:
        cascade = _kind(node.behavior) == "DROP_CASCADE"
        r.note("no table lock" + ("; CASCADE may drop dependent objects" if cascade else ""))


def _reindex(r: _Result, node: ast.ReindexStmt) -> None:
    kind = _kind(node.kind).removeprefix("REINDEX_OBJECT_")
    concurrently = any(o.defname == "concurrently" and _true(o.arg) for o in node.params or ())
    if kind == "TABLE":
        r.lock(SUX if concurrently else SH, _rv(node.relation))
        if not concurrently:
            r.note("rebuilds every index; each is locked ACCESS EXCLUSIVE while it is rebuilt")
    elif kind == "INDEX":
        r.lock(SUX if concurrently else AX, _rv(node.relation))
        r.note(
            "the relation shown is the index"
            + ("" if concurrently else "; its table is locked SHARE (writes wait)")
        )
    else:
        r.note("rebuilds the indexes of many tables, one table at a time")


def _vacuum(r: _Result, node: ast.VacuumStmt) -> None:
    full = bool(node.is_vacuumcmd) and any(
        o.defname == "full" and _true(o.arg) for o in node.options or ()
    )
    for rel in node.rels or ():
        r.lock(AX if full else SUX, _rv(rel.relation))
    r.rewrite(full)
    if not node.rels:
        r.note("processes every table of the database, one at a time")


def _select(r: _Result, node: ast.SelectStmt) -> None:
    names = _read_relations(node)
    locked: set[str] | None = set()
    for clause in node.lockingClause or ():
        if not clause.lockedRels:
            locked = None  # FOR UPDATE without OF: every table read
            break
        assert locked is not None
        locked.update(_rv(rel) for rel in clause.lockedRels)
    for name in names:
        r.lock(RS if locked is None or name in locked else AS, name)


def _commented_relation(node: ast.CommentStmt) -> str | None:
    names = node.object if isinstance(node.object, tuple | list) else ()
    kind = _kind(node.objtype).removeprefix("OBJECT_")
    if kind in _TABLE_LIKE:
        return _dotted(names)
    return _dotted(names[:-1]) if kind in _ON_TABLE else None


# ---- ALTER TABLE --------------------------------------------------------------------------------


def _alter_table(r: _Result, node: ast.AlterTableStmt) -> None:
    """Each subcommand's lock and rewrite; the strongest lock of the subcommands is taken."""
    from pglast import ast

    table = _rv(node.relation)
    r.reserve(table)
    if _kind(node.objtype) == "OBJECT_INDEX":
        r.note("the relation shown is the index")
    for cmd in node.cmds or ():
        if not isinstance(cmd, ast.AlterTableCmd):
            continue
        kind, arg = _kind(cmd.subtype).removeprefix("AT_"), cmd.def_
        lock, rewrite = _ALTER_SIMPLE.get(kind, (AX, None))
        if kind in _ALTER_NOTES:
            r.note(_ALTER_NOTES[kind].format(col=cmd.name))
        if kind == "AddColumn" and isinstance(arg, ast.ColumnDef):
            rewrite = _add_column(r, arg)
        elif kind == "AlterColumnType" and isinstance(arg, ast.ColumnDef):
            rewrite = True if arg.raw_default is not None else None
            if rewrite is None:
                r.note(f"TYPE of {cmd.name} rewrites the table: {_NO_REWRITE_HINT}")
            r.note(f"changing the type of {cmd.name} rebuilds the indexes that use it")
        elif kind == "AddConstraint" and isinstance(arg, ast.Constraint):
            lock, rewrite = _add_constraint(r, arg), False
        elif kind == "ValidateConstraint":
            lock, rewrite = SUX, False
        elif kind in ("SetRelOptions", "ResetRelOptions", "ReplaceRelOptions"):
            light = all(_light_reloption(o) for o in arg or ())
            lock, rewrite = (SUX if light else AX), False
        elif kind in ("AttachPartition", "DetachPartition") and isinstance(arg, ast.PartitionCmd):
            lock = SUX if kind == "AttachPartition" or arg.concurrent else AX
            r.lock(AX if kind == "AttachPartition" else lock, _rv(arg.name))
            rewrite = False
        elif kind in ("AddInherit", "DropInherit") and arg is not None:
            r.lock(SUX, _rv(arg))
        elif kind not in _ALTER_SIMPLE:
            r.note(f"subcommand {kind} not analysed; ACCESS EXCLUSIVE assumed")
        r.lock(lock, table)
        r.rewrite(rewrite)


def _add_column(r: _Result, column: ast.ColumnDef) -> bool | None:
    """Whether ADD COLUMN rewrites the table (PostgreSQL 11+: only a volatile default does)."""
    from pglast import ast

    name = column.colname
    rewrite: bool | None = False
    if column.typeName is not None and _type_name(column.typeName) in _SERIAL_TYPES:
        rewrite = True  # nextval() default: every row gets its own value
    for con in column.constraints or ():
        if not isinstance(con, ast.Constraint):
            continue
        contype = _kind(con.contype).removeprefix("CONSTR_")
        if contype == "DEFAULT":
            volatile = _volatile(con.raw_expr)
            if volatile is None:
                r.note(f"the default of {name} calls a function: a rewrite unless it is stable")
                rewrite = None if rewrite is False else rewrite
            elif volatile:
                rewrite = True
        elif contype in ("IDENTITY", "GENERATED"):
            rewrite = True
        elif contype == "FOREIGN":
            r.lock(SRX, _rv(con.pktable))
            r.note(f"the foreign key on {name} takes SHARE ROW EXCLUSIVE on {_rv(con.pktable)}")
        elif contype in ("PRIMARY", "UNIQUE"):
            r.note(f"the index on {name} is built by reading the whole table")
        elif contype == "CHECK":
            r.note(f"the CHECK on {name} is verified against every row")
    if rewrite:
        r.note(f"ADD COLUMN {name} rewrites the table (each row gets its own value)")
    return rewrite


def _add_constraint(r: _Result, con: ast.Constraint) -> str:
    contype = _kind(con.contype).removeprefix("CONSTR_")
    if contype == "FOREIGN":
        r.lock(SRX, _rv(con.pktable))
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


# ---- helpers ------------------------------------------------------------------------------------


def _volatile(expr: Any) -> bool | None:
    """Whether a default expression is volatile: True, False, or None when unknown."""
    from pglast import ast

    result: bool | None = False
    for item in _walk(expr):
        if isinstance(item, ast.FuncCall):
            name = _dotted(item.funcname or ()).rsplit(".", 1)[-1].strip('"').lower()
            if name in _VOLATILE:
                return True
            if name not in _NOT_VOLATILE:
                result = None
    return result


def _read_relations(node: Any, skip: Any = None) -> list[str]:
    """Every table a query reads (its RangeVars), minus CTE names and ``skip``."""
    from pglast import ast

    ctes = {
        c.ctename for item in _walk(node) if isinstance(item, ast.WithClause)
        for c in item.ctes or () if isinstance(c, ast.CommonTableExpr)
    }  # fmt: skip
    names: list[str] = []
    for item in _walk(node):
        if not isinstance(item, ast.RangeVar) or item is skip:
            continue
        if item.schemaname is None and item.relname in ctes:
            continue
        name = _rv(item)
        if name not in names:
            names.append(name)
    return names


def _walk(node: Any) -> Iterator[Any]:
    """Every node below ``node`` (included), depth first."""
    from pglast import ast

    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, ast.Node):
            yield item
            pending.extend(getattr(item, slot) for slot in reversed(list(item)))
        elif isinstance(item, tuple | list):
            pending.extend(reversed(item))


def _light_reloption(option: Any) -> bool:
    name = str(getattr(option, "defname", ""))
    if getattr(option, "defnamespace", None) == "toast":
        return name.startswith("autovacuum_") or name in _LIGHT_RELOPTIONS
    return name.startswith("autovacuum_") or name in _LIGHT_RELOPTIONS


def _true(arg: Any) -> bool:
    """A boolean option's value the way ``defGetBoolean`` reads it (no value means true)."""
    if arg is None:
        return True
    value = getattr(arg, "boolval", None)
    if value is None:
        value = getattr(arg, "ival", None)
    if value is None:
        value = str(getattr(arg, "sval", "true")).lower() not in ("false", "off", "0", "no")
    return bool(value)


def _kind(value: Any) -> str:
    """An enum member's name (``AT_AddColumn``, ``OBJECT_TABLE``); '' for None."""
    return str(getattr(value, "name", ""))


def _type_name(type_name: ast.TypeName) -> str:
    names = type_name.names or ()
    return str(getattr(names[-1], "sval", "")).lower() if names else ""


def _rv(rangevar: Any) -> str:
    """A RangeVar as written: ``schema.name`` or ``name``, quoted where needed."""
    parts = [rangevar.catalogname, rangevar.schemaname, rangevar.relname]
    return ".".join(_name(p) for p in parts if p)


def _dotted(names: Iterable[Any]) -> str:
    return ".".join(_name(str(getattr(n, "sval", n))) for n in names)


def _name(identifier: str) -> str:
    """Double quotes where PostgreSQL needs them (case, other characters, reserved words)."""
    from pglast.stream import maybe_double_quote_name

    return str(maybe_double_quote_name(identifier))
