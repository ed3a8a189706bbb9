"""Generated rows for every table of a schema, so that ``verify`` runs downs with data present.

The values come from the column types alone (numbers, text, uuids, timestamps, booleans, json,
enum labels, arrays); nullable columns are left NULL in odd rows and filled in even ones, columns
with a default get it, and foreign keys reuse a row of the referenced table (parents are filled
first). A row the table's constraints reject is tried again with other values a few times; a table
that still refuses is skipped and named, which is a note, not a failure: the point is to have rows
wherever rows can be had, so that a down that only breaks on real data is caught.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from thv_registry.migrations.tools.snapshot import STATE_TABLES

if TYPE_CHECKING:
    import psycopg

__all__ = ["FillResult", "fill"]

DEFAULT_ROWS = 2
_ATTEMPTS = ((0, False), (0, True), (1, False), (1, True), (2, False), (2, True))

_Q_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       d.adbin IS NOT NULL, a.attidentity::text, a.attgenerated::text,
       coalesce(b.typname, t.typname), coalesce(b.typcategory, t.typcategory)::text,
       coalesce(bel.typname, el.typname, ''), coalesce(bel.typcategory, el.typcategory, 'X')::text,
       CASE WHEN coalesce(b.typname, t.typname) IN ('varchar', 'bpchar')
            THEN greatest(coalesce(nullif(t.typtypmod, -1), a.atttypmod) - 4, 0) ELSE 0 END,
       coalesce(
         (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
           WHERE e.enumtypid = coalesce(bel.oid, el.oid, b.oid, t.oid)), '{}')
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
  LEFT JOIN pg_type el ON el.oid = t.typelem AND t.typcategory = 'A'
  LEFT JOIN pg_type bel ON bel.oid = b.typelem AND b.typcategory = 'A'
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = %(ns)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND a.attnum > 0 AND NOT a.attisdropped AND NOT c.relname = ANY(%(excluded)s)
 ORDER BY c.relname, a.attnum
"""

_Q_FOREIGN_KEYS = """
SELECT c.relname, p.relname,
       array(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
       array(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
               JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i)
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_class p ON p.oid = k.confrelid
 WHERE k.contype = 'f' AND c.relnamespace = %(ns)s AND p.relnamespace = %(ns)s
 ORDER BY c.relname, k.conname
"""


@dataclass(frozen=True)
class _Column:
    name: str
    type: str  #: format_type, used as the cast
    not_null: bool
    has_default: bool
    identity: str
    generated: str
    base: str  #: the type's (or its domain's base type's) name, e.g. int4, text, _text
    category: str  #: pg_type.typcategory of that base
    elem: str  #: element type name of an array
    elem_category: str
    max_len: int  #: for varchar(n) / char(n), else 0
    labels: tuple[str, ...]  #: enum labels (of the element type for an enum array)


@dataclass(frozen=True)
class _ForeignKey:
    parent: str
    columns: tuple[str, ...]
    parent_columns: tuple[str, ...]


@dataclass
class FillResult:
    """What ``fill`` did: rows added per table, and the tables that refused every row."""

    inserted: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  #: table -> the server's reason


def fill(
    conn: psycopg.Connection[Any],
    schema: str = "public",
    *,
    rows: int = DEFAULT_ROWS,
    exclude: tuple[str, ...] = STATE_TABLES,
) -> FillResult:
    """Insert ``rows`` new generated rows into every table of ``schema`` (autocommit ``conn``)."""
    ns = conn.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    result = FillResult()
    if ns is None:
        return result
    params = {"ns": ns[0], "excluded": list(exclude)}
    columns: dict[str, list[_Column]] = {}
    for table, *rest in conn.execute(_Q_COLUMNS, params).fetchall():
        rest[-1] = tuple(rest[-1])  # enum labels
        columns.setdefault(table, []).append(_Column(*rest))
    fks: dict[str, list[_ForeignKey]] = {}
    for table, parent, cols, parent_cols in conn.execute(_Q_FOREIGN_KEYS, params).fetchall():
        fks.setdefault(table, []).append(_ForeignKey(parent, tuple(cols), tuple(parent_cols)))
    for table in _parents_first(columns, fks):
        _fill_table(conn, schema, table, columns[table], fks.get(table, []), rows, result)
    return result


def _parents_first(
    columns: dict[str, list[_Column]], fks: dict[str, list[_ForeignKey]]
) -> list[str]:
    """Tables ordered so that referenced tables come before the tables that reference them."""
    order: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(table: str) -> None:
        if table in done or table in visiting:
            return  # a cycle: the nullable side gets NULL
        visiting.add(table)
        for fk in fks.get(table, []):
            if fk.parent in columns:
                visit(fk.parent)
        visiting.discard(table)
        done.add(table)
        order.append(table)

    for table in sorted(columns):
        visit(table)
    return order


def _fill_table(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    cols: list[_Column],
    fks: list[_ForeignKey],
    rows: int,
    result: FillResult,
) -> None:
    import psycopg
    from psycopg import sql

    target = sql.Identifier(schema, table)
    count_row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()
    existing = int(count_row[0]) if count_row else 0
    for i in range(rows):
        n = existing + i + 1
        error: psycopg.Error | None = None
        for shift, filled in _ATTEMPTS if n % 2 else _ATTEMPTS[1::2] + _ATTEMPTS[0::2]:
            try:
                with conn.transaction():
                    values = _row(conn, schema, cols, fks, n, shift, filled)
                    conn.execute(_insert(target, values), [v for _, v in values.values()])
            except psycopg.Error as exc:
                error = exc
                continue
            error = None
            break
        if error is not None:
            result.skipped[table] = _reason(error)
            return
        result.inserted[table] = result.inserted.get(table, 0) + 1


def _insert(target: Any, values: dict[str, tuple[str, str]]) -> Any:
    from psycopg import sql

    if not values:
        return sql.SQL("INSERT INTO {} DEFAULT VALUES").format(target)
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        target,
        sql.SQL(", ").join(sql.Identifier(c) for c in values),
        # the type names come from format_type(), i.e. from the catalog, already quoted
        sql.SQL(", ").join(sql.SQL("%s::" + t) for t, _ in values.values()),
    )


def _row(
    conn: psycopg.Connection[Any],
    schema: str,
    cols: list[_Column],
    fks: list[_ForeignKey],
    n: int,
    shift: int,
    filled: bool,
) -> dict[str, tuple[str, str]]:
    """Column -> (cast type, text value) for row ``n``; omitted columns get their default."""
    from psycopg import sql

    by_name = {c.name: c for c in cols}
    values: dict[str, tuple[str, str]] = {}
    for fk in fks:
        if any(c in values for c in fk.columns):
            continue
        parent = sql.Identifier(schema, fk.parent)
        picked = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(c)) for c in fk.parent_columns
        )
        found = conn.execute(
            sql.SQL(
                "SELECT {} FROM {} WHERE {} ORDER BY ctid "
                "OFFSET (%s - 1) %% greatest((SELECT count(*) FROM {}), 1) LIMIT 1"
            ).format(
                picked,
                parent,
                sql.SQL(" AND ").join(
                    sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.parent_columns
                ),
                parent,
            ),
            (n + shift,),
        ).fetchone()
        if found is not None:
            for column, value in zip(fk.columns, found, strict=True):
                values[column] = (by_name[column].type, str(value))
    for col in cols:
        if col.name in values or col.identity == "a" or col.generated:
            continue
        if col.has_default or (not col.not_null and not filled):
            continue
        value = _value(col, n, shift)
        if value is not None:
            values[col.name] = (col.type, value)
    return values


def _value(col: _Column, n: int, shift: int) -> str | None:
    if col.category == "A":
        elem = _scalar(col.elem, col.elem_category, col.labels, col.name, n, shift, 0)
        if elem is None:
            return None
        return '{"' + elem.replace("\\", "\\\\").replace('"', '\\"') + '"}'
    return _scalar(col.base, col.category, col.labels, col.name, n, shift, col.max_len)


def _scalar(
    base: str, category: str, labels: tuple[str, ...], name: str, n: int, shift: int, max_len: int
) -> str | None:
    if labels:
        return labels[(n - 1 + shift) % len(labels)]
    simple = {
        "uuid": str(uuid.uuid4()),
        "json": ("{}", "[]", '"x"')[shift % 3],
        "jsonb": ("{}", "[]", '"x"')[shift % 3],
        "bool": "true" if (n + shift) % 2 else "false",
        "date": f"2024-01-{(n - 1) % 28 + 1:02d}",
        "timestamp": f"2024-01-{(n - 1) % 28 + 1:02d} 12:00:00",
        "timestamptz": f"2024-01-{(n - 1) % 28 + 1:02d} 12:00:00+00",
        "time": "12:00:00",
        "timetz": "12:00:00+00",
        "interval": f"{n + shift} minutes",
        "bytea": "\\x00" + f"{n % 256:02x}",
        "inet": f"10.0.{n // 250 % 250}.{n % 250 + 1}",
        "cidr": f"10.{n % 250}.0.0/16",
        "macaddr": f"08:00:2b:00:00:{n % 256:02x}",
        "tsvector": f"word{n}",
        "xml": "<x/>",
        "point": f"({n},{shift})",
    }
    if base in simple:
        return simple[base]
    if category == "N":
        return str(n + 10 * shift)
    if category == "S":
        text = f"{name}-{n}" + (f"-{shift}" if shift else "")
        return text if not max_len or len(text) <= max_len else str(n)[-max_len:]
    if category == "V":
        return "1"
    if category == "R":
        return "empty"
    return None


def _reason(exc: Any) -> str:
    diag = exc.diag
    primary = diag.message_primary or str(exc).strip().splitlines()[0]
    return f"{primary} (SQLSTATE {diag.sqlstate})" if diag.sqlstate else primary
