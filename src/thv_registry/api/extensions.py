"""ToolHive extensions: ``/registry/{registryName}/v0.1/x/dev.toolhive/skills[...]``.

The Go edition's routes (reference section 2.3) with its gaps fixed: a bad cursor is 400, the
``status`` filter is honoured (an unknown status is 400), ``version=latest`` keeps one version
per skill, and a skill's versions page like any list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thv_registry.api import params
from thv_registry.api.errors import ApiError
from thv_registry.api.v01 import BASE

if TYPE_CHECKING:
    from thv_registry.api.cache import ResponseCache
    from thv_registry.registry.models import Status
    from thv_registry.registry.store import SkillQuery, Store

__all__ = ["extension_routes", "SKILLS"]

SKILLS = f"{BASE}/x/dev.toolhive/skills"
SKILLS_DEFAULT_LIMIT = 50  #: the Go edition's
_STATUSES: tuple[Status, ...] = ("active", "deprecated", "deleted")
_MAX_PART = 200  #: a namespace or name segment


def _status(query: params.Query) -> Status | None:
    raw = query.text("status", 32)
    if raw is None or raw == "":
        return None
    for status in _STATUSES:
        if raw.strip().lower() == status:
            return status
    raise ApiError(400, f"invalid status {raw!r}: must be one of {', '.join(_STATUSES)}")


def _skill_query(query: params.Query) -> SkillQuery:
    from thv_registry.registry.store import SkillQuery

    status = _status(query)
    return SkillQuery(
        cursor=query.cursor(),
        limit=query.limit(SKILLS_DEFAULT_LIMIT, clamp=False),
        search=query.search(),
        statuses=(status,) if status else None,
        version=query.version(),
    )


def _ids(request: Request) -> tuple[str, str, str]:
    registry = params.registry_name(request)
    namespace = params.path_param(request, "namespace", "skill namespace", _MAX_PART)
    name = params.path_param(request, "name", "skill name", _MAX_PART)
    return registry, namespace, name


def extension_routes(store: Store, cache: ResponseCache) -> list[Route]:
    """The skills routes over ``store``, their 200s through ``cache``."""

    async def list_skills(request: Request) -> Response:
        registry = params.registry_name(request)
        query = _skill_query(params.query(request))
        return await cache.respond(
            request, registry, ("skills", query), lambda: store.list_skills(registry, query)
        )

    async def get_latest(request: Request) -> Response:
        registry, namespace, name = _ids(request)
        params.query(request)  # a repeated or undecodable parameter is still a 400
        return await cache.respond(
            request,
            registry,
            ("skill", namespace, name, "latest"),
            lambda: store.get_skill(registry, namespace, name, "latest"),
        )

    async def list_versions(request: Request) -> Response:
        registry, namespace, name = _ids(request)
        params.query(request)
        return await cache.respond(
            request,
            registry,
            ("skill-versions", namespace, name),
            lambda: store.list_skill_versions(registry, namespace, name),
        )

    async def get_version(request: Request) -> Response:
        registry, namespace, name = _ids(request)
        version = params.version_segment(request)
        params.query(request)
        return await cache.respond(
            request,
            registry,
            ("skill", namespace, name, version),
            lambda: store.get_skill(registry, namespace, name, version),
        )

    one = f"{SKILLS}/{{namespace}}/{{name}}"
    return [
        Route(SKILLS, list_skills, methods=["GET"]),
        Route(one, get_latest, methods=["GET"]),
        Route(f"{one}/versions", list_versions, methods=["GET"]),
        Route(f"{one}/versions/{{version}}", get_version, methods=["GET"]),
    ]
