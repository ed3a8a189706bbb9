"""PostgreSQL types (as sqlc names them) to Python annotations that psycopg 3 loads and dumps."""

from __future__ import annotations

from dataclasses import dataclass

from .request import CodegenError, Column

__all__ = ["PyType", "python_type", "snake_case", "pascal_case"]

# Base type name -> (annotation, module to import or "").
_SCALARS: dict[str, tuple[str, str]] = {
    "text": ("str", ""),
    "varchar": ("str", ""),
    "character varying": ("str", ""),
    "bpchar": ("str", ""),
    "char": ("str", ""),
    "citext": ("str", ""),
    "name": ("str", ""),
    "bool": ("bool", ""),
    "boolean": ("bool", ""),
    "int2": ("int", ""),
    "int4": ("int", ""),
    "int8": ("int", ""),
    "smallint": ("int", ""),
    "integer": ("int", ""),
    "bigint": ("int", ""),
    "serial": ("int", ""),
    "bigserial": ("int", ""),
    "float4": ("float", ""),
    "float8": ("float", ""),
    "real": ("float", ""),
    "double precision": ("float", ""),
    "numeric": ("decimal.Decimal", "decimal"),
    "decimal": ("decimal.Decimal", "decimal"),
    "uuid": ("uuid.UUID", "uuid"),
    "timestamptz": ("datetime.datetime", "datetime"),
    "timestamp": ("datetime.datetime", "datetime"),
    "date": ("datetime.date", "datetime"),
    "time": ("datetime.time", "datetime"),
    "interval": ("datetime.timedelta", "datetime"),
    "json": ("Any", ""),
    "jsonb": ("Any", ""),
    "bytea": ("bytes", ""),
    "inet": ("str", ""),
    "cidr": ("str", ""),
}
_JSON = {"json", "jsonb"}


@dataclass(frozen=True)
class PyType:
    annotation: str  #: e.g. ``list[str] | None``
    module: str  #: stdlib module the annotation needs ("" if none)
    enum: str  #: name of the models.py alias it uses ("" if none)
    json: bool  #: a json/jsonb value: parameters are wrapped in psycopg's Jsonb


def _base_name(column: Column) -> str:
    name = column.type_name
    if name.startswith("pg_catalog."):
        name = name.removeprefix("pg_catalog.")
    if column.is_array and name.startswith("_"):
        name = name[1:]
    return name


def python_type(column: Column, enums: dict[str, str], where: str) -> PyType:
    """The annotation of a column or parameter; enums map a PostgreSQL enum to its alias."""
    base = _base_name(column)
    enum = ""
    if base in enums:
        annotation, module, enum = enums[base], "", enums[base]
    elif base in _SCALARS:
        annotation, module = _SCALARS[base]
    else:
        what = "the parameter" if column.name else "a column"
        raise CodegenError(
            f"{where}: {what} {column.name!r} has the type {base or 'unknown'!r}, which "
            "thv_registry.codegen cannot map to Python",
            hint="Cast it in the query (for example sqlc.arg('x')::text or expr::bigint), or add "
            "the type to thv_registry/codegen/pytypes.py.",
        )
    if column.is_array:
        annotation = f"list[{annotation}]"
    if not column.not_null:
        annotation = f"{annotation} | None"
    return PyType(annotation, module, enum, json=base in _JSON and not column.is_array)


def snake_case(name: str) -> str:
    """``ListServerVersions`` -> ``list_server_versions``.

    A run of capitals is one word: ``UpsertMCPServer`` -> ``upsert_mcp_server``.
    """
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch.isupper() and i > 0:
            prev, nxt = name[i - 1], name[i + 1] if i + 1 < len(name) else ""
            if prev.islower() or prev.isdigit() or (prev.isupper() and nxt.islower()):
                out.append("_")
        out.append(ch.lower())
    return "".join(out)


def pascal_case(name: str) -> str:
    """``version_status`` -> ``VersionStatus``."""
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))
