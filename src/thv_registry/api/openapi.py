"""``/openapi.json``: exactly the operations the public port answers, as OpenAPI 3.1.

Built from the official MCP Registry document shipped in this package
(``mcp-registry-openapi.yaml``, unchanged): its GET operations, mounted under
``/registry/{registryName}``, each also documenting the 400 and 404 this server answers; then
the ToolHive extensions (skills). Operations the server does not serve (publish, status
changes, deletes) are left out, and so are schemas only they use.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib.resources import files
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thv_registry.api.errors import JSON_TYPE

__all__ = ["openapi_document", "openapi_route", "PREFIX"]

PREFIX = "/registry/{registryName}"
_OFFICIAL = "mcp-registry-openapi.yaml"
_UNUSED_SCHEMAS = ("StatusUpdateRequest", "AllVersionsStatusResponse")
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON_TYPE: {"schema": _ERROR_REF}}}


_REGISTRY_PARAM = {
    "name": "registryName",
    "in": "path",
    "required": True,
    "description": "Name of a registry of this server (as configured), e.g. default",
    "schema": {"type": "string", "minLength": 1, "maxLength": 63},
}


def _path_param(name: str, description: str, max_length: int = 255) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": max_length},
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def _skills_paths() -> dict[str, Any]:
    ns = _path_param("namespace", "Skill namespace (e.g. io.github.example)")
    name = _path_param("name", "Skill name")
    version = _path_param("version", "Version, or latest")
    ok_one = {"description": "A skill", "content": {JSON_TYPE: {"schema": _skill_ref()}}}
    ok_list = {"description": "A page of skills", "content": {JSON_TYPE: {"schema": {
        "$ref": "#/components/schemas/SkillListResponse"}}}}  # fmt: skip
    errors = {"400": _error("Invalid parameter"), "404": _error("Registry or skill not found")}

    def op(op_id: str, summary: str, params: list[Any], ok: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"tags": ["skills"], "operationId": op_id, "summary": summary,
                        "parameters": [_REGISTRY_PARAM, *params],
                        "responses": {"200": ok, **errors}}}  # fmt: skip

    listing = [
        _query("cursor", "Opaque cursor from metadata.nextCursor", {"type": "string"}),
        _query("limit", "Page size, 1 to 100 (default 50)",
               {"type": "integer", "minimum": 1, "maximum": 100}),
        _query("search", "Case-insensitive substring of name, title or description",
               {"type": "string", "maxLength": 256}),
        _query("status", "Only skills with this status",
               {"type": "string", "enum": ["active", "deprecated", "deleted"]}),
        _query("version", "latest: one version per skill", {"type": "string"}),
    ]  # fmt: skip
    base = f"{PREFIX}/v0.1/x/dev.toolhive/skills"
    return {
        base: op("listSkills", "List skills", listing, ok_list),
        f"{base}/{{namespace}}/{{name}}": op("getSkill", "Get a skill's latest version",
                                             [ns, name], ok_one),
        f"{base}/{{namespace}}/{{name}}/versions": op("listSkillVersions",
                                                      "List a skill's versions", [ns, name],
                                                      ok_list),
        f"{base}/{{namespace}}/{{name}}/versions/{{version}}": op(
            "getSkillVersion", "Get one version of a skill", [ns, name, version], ok_one),
    }  # fmt: skip


def _skill_ref() -> dict[str, str]:
    return {"$ref": "#/components/schemas/Skill"}


_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What went wrong"}},
}


def _model_schemas() -> dict[str, Any]:
    """JSON Schemas of the skills wire models, from the msgspec Structs themselves."""
    import msgspec

    from thv_registry.registry.models import Skill, SkillListResponse

    _, components = msgspec.json.schema_components(
        [Skill, SkillListResponse], ref_template="#/components/schemas/{name}"
    )
    return components


@cache
def openapi_document() -> dict[str, Any]:
    """The document served at ``/openapi.json`` (built once per process)."""
    import yaml

    from thv_registry import __version__

    official = yaml.safe_load(files(__package__).joinpath(_OFFICIAL).read_text("utf-8"))
    doc: dict[str, Any] = {
        "openapi": official["openapi"],
        "jsonSchemaDialect": official.get("jsonSchemaDialect"),
        "info": {
            **official["info"],
            "title": "ToolHive Registry API",
            "version": __version__,
            "description": "The MCP Registry API v0.1 per registry "
            f"(official document {official['info']['version']}), and ToolHive extensions.",
        },
        "tags": [t for t in official.get("tags", []) if t["name"] != "publish"]
        + [{"name": "skills", "description": "ToolHive extension: agent skills"}],
        "paths": {},
    }
    for path, item in official["paths"].items():
        if "get" not in item:
            continue
        get = copy.deepcopy(item["get"])
        get["parameters"] = [_REGISTRY_PARAM, *get.get("parameters", [])]
        get.pop("security", None)
        responses = get.setdefault("responses", {})
        responses.setdefault("400", _error("Invalid parameter"))
        responses.setdefault("404", _error("Registry, server or version not found"))
        doc["paths"][PREFIX + path] = {"get": get}
    doc["paths"].update(_skills_paths())
    schemas = {
        k: v for k, v in official["components"]["schemas"].items() if k not in _UNUSED_SCHEMAS
    }
    doc["components"] = {"schemas": {**schemas, **_model_schemas(), "Error": _ERROR_SCHEMA}}
    return doc


def openapi_route() -> Route:
    async def endpoint(request: Request) -> Response:
        import msgspec

        return Response(msgspec.json.encode(openapi_document()), media_type=JSON_TYPE)

    return Route("/openapi.json", endpoint, methods=["GET"])
