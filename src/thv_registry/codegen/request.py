"""The parts of sqlc's codegen request (its ``gen.json`` output) that the generator reads.

sqlc writes the request it would hand a plugin (``plugin.GenerateRequest``) as JSON: the catalog
built from the migrations, and every query with its SQL text (``$1..$n`` placeholders), result
columns and parameters. This module turns that JSON into small frozen records and rejects what
the generator does not support, naming the query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ExitCode, ThvError

__all__ = ["CodegenError", "Column", "Enum", "Param", "Query", "Request", "parse_request"]

SUPPORTED_COMMANDS = (":one", ":many", ":exec", ":execrows")


class CodegenError(ThvError):
    """The codegen request or a query in it cannot be turned into Python."""

    exit_code = ExitCode.SOURCE


@dataclass(frozen=True)
class Column:
    """A result column or a parameter: its name and PostgreSQL type as sqlc inferred them."""

    name: str
    type_schema: str
    type_name: str
    not_null: bool
    is_array: bool
    array_dims: int


@dataclass(frozen=True)
class Param:
    number: int
    column: Column


@dataclass(frozen=True)
class Query:
    name: str  #: CamelCase, from ``-- name: Name :cmd``
    cmd: str  #: ``:one``, ``:many``, ``:exec`` or ``:execrows``
    text: str  #: SQL with ``$n`` placeholders
    filename: str  #: the query file's base name
    comments: tuple[str, ...]
    columns: tuple[Column, ...]
    params: tuple[Param, ...]

    @property
    def where(self) -> str:
        return f"{self.filename} (query {self.name} {self.cmd})"


@dataclass(frozen=True)
class Enum:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Request:
    queries: tuple[Query, ...]
    enums: tuple[Enum, ...]  #: enum types of the default schema
    query_paths: tuple[str, ...]  #: ``queries`` of sqlc.yaml, relative to its directory


def _column(data: Mapping[str, Any], where: str) -> Column:
    if data.get("embed_table"):
        raise CodegenError(
            f"{where}: sqlc.embed() is not supported by thv_registry.codegen",
            hint="List the columns you need instead.",
        )
    typ = data.get("type") or {}
    return Column(
        name=str(data.get("name", "")),
        type_schema=str(typ.get("schema", "")),
        type_name=str(typ.get("name", "")),
        not_null=bool(data.get("not_null", False)),
        is_array=bool(data.get("is_array", False)),
        array_dims=int(data.get("array_dims", 0) or 0),
    )


def _query(data: Mapping[str, Any]) -> Query:
    name = str(data["name"])
    cmd = str(data["cmd"])
    filename = str(data.get("filename", ""))
    where = f"{filename} (query {name} {cmd})"
    if cmd not in SUPPORTED_COMMANDS:
        raise CodegenError(
            f"{where}: the command {cmd} is not supported by thv_registry.codegen",
            hint=f"Use one of {', '.join(SUPPORTED_COMMANDS)}.",
        )
    params = tuple(
        sorted(
            (Param(int(p["number"]), _column(p["column"], where)) for p in data.get("params", [])),
            key=lambda p: p.number,
        )
    )
    if [p.number for p in params] != list(range(1, len(params) + 1)):
        raise CodegenError(
            f"{where}: parameters are not numbered $1..${len(params)}",
            hint="Use sqlc.arg()/sqlc.narg() or $n placeholders without gaps.",
        )
    return Query(
        name=name,
        cmd=cmd,
        text=str(data["text"]).strip(),
        filename=filename,
        comments=tuple(str(c) for c in data.get("comments", [])),
        columns=tuple(_column(c, where) for c in data.get("columns", [])),
        params=params,
    )


def _enums(catalog: Mapping[str, Any]) -> tuple[Enum, ...]:
    default = catalog.get("default_schema", "public")
    enums: list[Enum] = []
    for schema in catalog.get("schemas", []):
        if schema.get("name") != default:
            continue
        for enum in schema.get("enums", []):
            enums.append(Enum(str(enum["name"]), tuple(str(v) for v in enum.get("vals", []))))
    return tuple(enums)


def parse_request(data: Mapping[str, Any]) -> Request:
    """Read sqlc's codegen request (the parsed JSON of ``codegen_request.json``)."""
    try:
        settings = data.get("settings", {})
        paths: Sequence[Any] = settings.get("queries", [])
        return Request(
            queries=tuple(_query(q) for q in data["queries"]),
            enums=_enums(data.get("catalog", {})),
            query_paths=tuple(str(p) for p in paths),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CodegenError(
            f"the codegen request is not sqlc's JSON output: missing or bad field {exc}",
            hint="Generate it with `sqlc generate` and the gen.json output of sqlc.yaml.",
        ) from exc
