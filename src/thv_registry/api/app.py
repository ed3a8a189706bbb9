"""The two ASGI apps ``serve`` runs: the public API and the internal listener.

Layers of the public app, outermost first: :class:`RequestContext` (request id, access log,
metrics, ``nosniff``, 414), :class:`RawPathRouting`, CORS (only when origins are configured),
gzip (bodies over 1 KiB, when accepted), :class:`ETags`, then Starlette's router with the JSON
error handlers. Routing happens on the raw, still percent-encoded path: a server name's ``%2F``
stays inside its segment, and each handler decodes its segments strictly (``api/params.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote_from_bytes

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from thv_registry.api.errors import exception_handlers
from thv_registry.api.internal import ReadinessCheck, internal_routes
from thv_registry.api.metrics import Metrics
from thv_registry.api.middleware import GZIP_MINIMUM, ETags, RequestContext

if TYPE_CHECKING:
    from thv_registry.registry.store import Store

__all__ = ["public_app", "internal_app", "RawPathRouting"]

_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))  #: printable ASCII, '%' included


class RawPathRouting:
    """Route on ``raw_path``: ``scope["path"]`` becomes the percent-encoded path, ASCII only.

    Raw bytes outside printable ASCII (which HTTP forbids but some clients send) are
    percent-encoded, so the handlers' strict decoding sees exactly the bytes that arrived.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path")
            if raw is not None:
                scope["path"] = quote_from_bytes(raw, safe=_SAFE)
        await self.app(scope, receive, send)


def _starlette(routes: Sequence[BaseRoute], middleware: Sequence[Middleware] = ()) -> Starlette:
    app = Starlette(
        routes=list(routes), middleware=list(middleware), exception_handlers=exception_handlers()
    )
    app.router.redirect_slashes = False  # a trailing slash is another (unknown) path: 404
    return app


def public_app(
    store: Store,
    metrics: Metrics,
    *,
    cors_origins: Sequence[str] = (),
    cache_bytes: int = 0,
) -> ASGIApp:
    """The public listener: the consumer API, the ToolHive extensions, ``/openapi.json``.

    ``cache_bytes``: the bound of the response cache of the API's reads (0: none).
    """
    from thv_registry.api.cache import ResponseCache
    from thv_registry.api.extensions import extension_routes
    from thv_registry.api.openapi import openapi_route
    from thv_registry.api.v01 import v01_routes

    cache = ResponseCache(store, cache_bytes, metrics)
    routes: list[BaseRoute] = [
        *v01_routes(store, cache),
        *extension_routes(store, cache),
        openapi_route(),
    ]
    return _wrap(routes, metrics, cors_origins)


def _wrap(routes: Sequence[BaseRoute], metrics: Metrics, cors_origins: Sequence[str]) -> ASGIApp:
    middleware: list[Middleware] = []
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "HEAD"],
                allow_headers=["*"],
                expose_headers=["ETag", "X-Request-ID"],
                max_age=600,
            )
        )
    middleware.append(Middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM))
    middleware.append(Middleware(ETags))
    return RequestContext(RawPathRouting(_starlette(routes, middleware)), metrics)


def internal_app(readiness: ReadinessCheck, metrics: Metrics) -> ASGIApp:
    """The internal listener: ``/health``, ``/readiness``, ``/version``, ``/metrics``."""
    # probes and scrapes every few seconds: no access lines, no request metrics
    return RequestContext(_starlette(internal_routes(readiness, metrics)), None, log=False)
