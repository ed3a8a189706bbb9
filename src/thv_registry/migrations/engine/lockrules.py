"""The rules :mod:`.lockinfo` applies, and the parse-tree readers it uses.

Tables after the PostgreSQL documentation (chapter "Explicit Locking", the ALTER TABLE page) and
``AlterTableGetLockLevel`` in ``tablecmds.c``: which lock mode a statement or an ALTER TABLE
subcommand takes, whether it rewrites the table, and what else to know. The readers walk pglast
nodes (names as written, quoted by pglast where PostgreSQL needs quotes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pglast import ast

__all__ = [
    "CatalogQuestion", "FOREIGN_KEYS_NOTE", "ALTER_NOTES", "ALTER_SIMPLE", "NO_REWRITE_HINT",
    "ON_TABLE", "SERIAL_TYPES", "SIMPLE",
    "TABLE_LIKE", "dotted", "is_true", "is_volatile", "kind_name", "light_reloption", "quoted",
    "read_relations", "rv", "type_name", "walk",
]  # fmt: skip

# fmt: off
#: Functions whose result changes per row: a default calling one rewrites the table.
VOLATILE = frozenset({
    "random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
    "uuidv4", "uuidv7", "clock_timestamp", "timeofday", "nextval", "setval", "txid_current",
    "random_normal",
})
#: Stable or immutable functions often used in defaults: evaluated once, no rewrite.
NOT_VOLATILE = frozenset({
    "now", "statement_timestamp", "transaction_timestamp", "current_setting", "current_database",
    "lower", "upper", "jsonb_build_object", "json_build_object", "jsonb_build_array",
    "json_build_array", "to_jsonb", "to_json", "make_interval", "make_date", "make_timestamp",
    "make_timestamptz", "date_trunc", "length", "concat", "array_fill",
})
SERIAL_TYPES = frozenset({"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"})
#: Storage parameters that ALTER TABLE SET (...) changes under SHARE UPDATE EXCLUSIVE.
LIGHT_RELOPTIONS = frozenset({
    "fillfactor", "parallel_workers", "toast_tuple_target", "vacuum_index_cleanup",
    "vacuum_truncate", "log_autovacuum_min_duration",
})
#: ALTER TABLE subcommands (``AlterTableType`` names, without ``AT_``) that need nothing but a
#: lock mode and whether they rewrite, after ``AlterTableGetLockLevel`` in tablecmds.c.
ALTER_SIMPLE: dict[str, tuple[str, bool]] = {
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
ALTER_NOTES = {
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
SIMPLE: dict[str, tuple[str | None, str, str | None]] = {
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
        "CreateExtensionStmt", "VariableSetStmt", "TransactionStmt", "CreateRoleStmt",
        "AlterRoleStmt", "DropRoleStmt", "GrantRoleStmt",
    ), (None, "", None)),
}
TABLE_LIKE = frozenset({"TABLE", "VIEW", "MATVIEW", "SEQUENCE", "FOREIGN_TABLE", "INDEX"})
ON_TABLE = frozenset({"COLUMN", "TABCONSTRAINT", "TRIGGER", "POLICY", "RULE"})
# fmt: on
NO_REWRITE_HINT = "yes (unless binary-compatible, e.g. varchar widening)"
FOREIGN_KEYS_NOTE = (
    "also takes ACCESS EXCLUSIVE on the tables its foreign keys reference (not visible from the "
    "text)"
)


@dataclass(frozen=True)
class CatalogQuestion:
    """What the text cannot tell and the catalog can, with the note that stands for it meanwhile.

    ``kind``: ``constraint`` (is ``name`` on ``relation`` a foreign key, and to which table?) or
    ``foreign_keys`` (which tables do the foreign keys of ``relation`` reference?).
    """

    kind: str
    relation: str
    name: str | None
    note: str  #: the conditional note, one of ``StatementLocks.notes``


def is_volatile(expr: Any) -> bool | None:
    """Whether a default expression is volatile: True, False, or None when unknown."""
    from pglast import ast

    result: bool | None = False
    for item in walk(expr):
        if isinstance(item, ast.FuncCall):
            name = dotted(item.funcname or ()).rsplit(".", 1)[-1].strip('"').lower()
            if name in VOLATILE:
                return True
            if name not in NOT_VOLATILE:
                result = None
    return result


def read_relations(node: Any, skip: Any = None) -> list[str]:
    """Every table a query reads (its RangeVars), minus CTE names and ``skip``."""
    from pglast import ast

    ctes = {
        c.ctename for item in walk(node) if isinstance(item, ast.WithClause)
        for c in item.ctes or () if isinstance(c, ast.CommonTableExpr)
    }  # fmt: skip
    names: list[str] = []
    for item in walk(node):
        if not isinstance(item, ast.RangeVar) or item is skip:
            continue
        if item.schemaname is None and item.relname in ctes:
            continue
        name = rv(item)
        if name not in names:
            names.append(name)
    return names


def walk(node: Any) -> Iterator[Any]:
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


def light_reloption(option: Any) -> bool:
    """A storage parameter (of the table or its ``toast.``) set under SHARE UPDATE EXCLUSIVE."""
    name = str(getattr(option, "defname", ""))
    return name.startswith("autovacuum_") or name in LIGHT_RELOPTIONS


def is_true(arg: Any) -> bool:
    """A boolean option's value the way ``defGetBoolean`` reads it (no value means true)."""
    if arg is None:
        return True
    value = getattr(arg, "boolval", None)
    if value is None:
        value = getattr(arg, "ival", None)
    if value is None:
        value = str(getattr(arg, "sval", "true")).lower() not in ("false", "off", "0", "no")
    return bool(value)


def kind_name(value: Any) -> str:
    """An enum member's name (``AT_AddColumn``, ``OBJECT_TABLE``); '' for None."""
    return str(getattr(value, "name", ""))


def type_name(node: ast.TypeName) -> str:
    """The type's last name, lowercased: ``pg_catalog.int4`` -> ``int4``."""
    names = node.names or ()
    return str(getattr(names[-1], "sval", "")).lower() if names else ""


def rv(rangevar: Any) -> str:
    """A RangeVar as written: ``schema.name`` or ``name``, quoted where needed."""
    parts = [rangevar.catalogname, rangevar.schemaname, rangevar.relname]
    return ".".join(quoted(p) for p in parts if p)


def dotted(names: Iterable[Any]) -> str:
    """A qualified name from its parts (``String`` nodes or text), quoted where needed."""
    return ".".join(quoted(str(getattr(n, "sval", n))) for n in names)


def quoted(identifier: str) -> str:
    """Double quotes where PostgreSQL needs them (case, other characters, reserved words)."""
    from pglast.stream import maybe_double_quote_name

    return str(maybe_double_quote_name(identifier))
