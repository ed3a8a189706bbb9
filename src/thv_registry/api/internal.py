"""The internal listener (no auth): ``/health``, ``/readiness``, ``/version``, ``/metrics``.

Readiness asks the database each time (a short pool checkout): the schema must be at the version
this build migrates to, and clean. A failed check is a 503 with the reason, and the next check
that passes is a 200 again, without a restart.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thv_registry.api.errors import JSON_TYPE
from thv_registry.api.metrics import CONTENT_TYPE_LATEST, Metrics

__all__ = ["ReadinessCheck", "internal_routes", "build_info"]

#: returns None when ready, else the reason (one sentence)
ReadinessCheck = Callable[[], Awaitable[str | None]]


def _json(payload: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(payload), status_code=status, media_type=JSON_TYPE)


def build_info() -> dict[str, str]:
    """The Go edition's ``/version`` keys, with ``python_version`` for ``go_version``."""
    from thv_registry import __version__

    return {
        "version": __version__,
        "commit": _BUILD.commit,
        "build_date": _BUILD.build_date,
        "python_version": platform.python_version(),
        "platform": f"{sys.platform}/{platform.machine().lower() or 'unknown'}",
    }


@dataclass(frozen=True)
class _Build:
    commit: str = "unknown"  #: set by packaging pipelines that stamp the build (none yet)
    build_date: str = "unknown"


_BUILD = _Build()


def internal_routes(readiness: ReadinessCheck, metrics: Metrics) -> list[Route]:
    """The internal listener's routes (GET, so HEAD too)."""

    async def health(request: Request) -> Response:
        return _json({"status": "healthy"})

    async def ready(request: Request) -> Response:
        reason = await readiness()
        if reason is None:
            return _json({"status": "ready"})
        return _json({"status": "not ready", "reason": reason}, status=503)

    async def version(request: Request) -> Response:
        return _json(build_info())

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/health", health, methods=["GET"]),
        Route("/readiness", ready, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
