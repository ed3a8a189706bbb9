"""The MCP Registry API v0.1 per registry: ``/registry/{registryName}/v0.1/servers[...]``.

Three GET routes, as the official document has them: the servers list, a server's versions,
and one version (``latest`` allowed). A server name travels as one path segment, its ``/``
encoded as ``%2F``. Handlers parse (``api/params.py``), ask the store, and encode the store's
msgspec Structs in one call; the store's typed errors become 400/404 in ``api/errors.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thv_registry.api import params
from thv_registry.api.errors import JSON_TYPE

if TYPE_CHECKING:
    from thv_registry.api.cache import ResponseCache
    from thv_registry.registry.store import Store

__all__ = ["v01_routes", "json_response", "BASE"]

BASE = "/registry/{registry}/v0.1"
_ENCODER = msgspec.json.Encoder()


def json_response(payload: object) -> Response:
    """A 200 with ``payload`` (a msgspec Struct) encoded as JSON."""
    return Response(_ENCODER.encode(payload), media_type=JSON_TYPE)


def _include_deleted(query: params.Query, *, updated_since: object = None) -> bool:
    """``include_deleted``; when absent, true with ``updated_since`` (the official default)."""
    given = query.flag("include_deleted")
    return given if given is not None else updated_since is not None


def v01_routes(store: Store, cache: ResponseCache) -> list[Route]:
    """The consumer API's routes over ``store``, their 200s through ``cache``."""
    from thv_registry.registry.store import ServerQuery

    async def list_servers(request: Request) -> Response:
        registry = params.registry_name(request)
        query = params.query(request)
        updated_since = query.updated_since()
        server_query = ServerQuery(
            cursor=query.cursor(),
            limit=query.limit(),
            search=query.search(),
            updated_since=updated_since,
            version=query.version(),
            include_deleted=_include_deleted(query, updated_since=updated_since),
        )
        return await cache.respond(
            request,
            registry,
            ("servers", server_query),
            lambda: store.list_servers(registry, server_query),
        )

    async def list_versions(request: Request) -> Response:
        registry = params.registry_name(request)
        name = params.server_name(request)
        include_deleted = _include_deleted(params.query(request))
        return await cache.respond(
            request,
            registry,
            ("versions", name, include_deleted),
            lambda: store.list_versions(registry, name, include_deleted=include_deleted),
        )

    async def get_version(request: Request) -> Response:
        registry = params.registry_name(request)
        name = params.server_name(request)
        version = params.version_segment(request)
        params.query(request).flag("include_deleted")  # accepted (a direct GET shows any status)
        return await cache.respond(
            request,
            registry,
            ("version", name, version),
            lambda: store.get_version(registry, name, version),
        )

    return [
        Route(f"{BASE}/servers", list_servers, methods=["GET"]),
        Route(f"{BASE}/servers/{{server}}/versions", list_versions, methods=["GET"]),
        Route(f"{BASE}/servers/{{server}}/versions/{{version}}", get_version, methods=["GET"]),
    ]
