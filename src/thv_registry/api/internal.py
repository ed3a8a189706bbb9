"""The internal listener (no auth): ``/health``, ``/readiness``, ``/version``, ``/metrics``.

Readiness asks the database each time (``Store.health``, at most 2 s): the schema must be at
the version this build migrates to, and clean. A failed check is a 503 with the reason, and the
next check that passes is a 200 again, without a restart.
"""

from __future__ import annotations

import asyncio
import platform
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from thv_registry.api.errors import JSON_TYPE
from thv_registry.api.metrics import CONTENT_TYPE_LATEST, Metrics

if TYPE_CHECKING:
    from thv_registry.registry.store import Store

__all__ = ["ReadinessCheck", "internal_routes", "build_info", "store_readiness"]

#: returns None when ready, else the reason (one sentence)
ReadinessCheck = Callable[[], Awaitable[str | None]]
READINESS_TIMEOUT_S = 2.0  #: a probe waits this long for the database


def store_readiness(store: Store, expected_version: int | None) -> ReadinessCheck:
    """Ready when the database answers and the schema is at ``expected_version`` and clean."""

    async def check() -> str | None:
        import psycopg

        try:
            health = await asyncio.wait_for(store.health(), READINESS_TIMEOUT_S)
        except TimeoutError:
            return f"the database did not answer within {READINESS_TIMEOUT_S:g} s"
        except (psycopg.Error, OSError) as exc:
            text = str(exc).strip()
            return f"the database did not answer: {text.splitlines()[0] if text else exc!r}"
        if health.version is None:
            return "the schema has no version (no migration applied)"
        if health.dirty:
            return f"the schema is dirty at version {health.version} (a migration failed or runs)"
        if expected_version is not None and health.version != expected_version:
            relation = "newer than" if health.version > expected_version else "behind"
            return (
                f"the schema is at version {health.version}, {relation} this build's "
                f"{expected_version}"
            )
        return None

    return check


def _json(payload: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(payload), status_code=status, media_type=JSON_TYPE)


def build_info() -> dict[str, str]:
    """The Go edition's ``/version`` keys, with ``python_version`` for ``go_version``."""
    from thv_registry import __version__
    from thv_registry.buildinfo import build_stamp

    stamp = build_stamp()  # stamped into the wheel at build time, or git in a checkout
    return {
        "version": __version__,
        "commit": stamp.commit,
        "build_date": stamp.build_date,
        "python_version": platform.python_version(),
        "platform": f"{sys.platform}/{platform.machine().lower() or 'unknown'}",
    }


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
