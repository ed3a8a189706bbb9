"""Error bodies, once: every failure the API answers is JSON ``{"error": "..."}``.

Handlers raise :class:`ApiError` (or let the store's typed errors escape); the exception handlers
registered by :func:`exception_handlers` turn them into responses. Unknown routes (404) and
methods (405, with ``Allow: GET, HEAD``) get the same JSON shape; anything unexpected is a 500
with a fixed message (the details go to the log, never to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["ApiError", "error_response", "exception_handlers", "JSON_TYPE", "ALLOW"]

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
ALLOW = "GET, HEAD"  #: every route of both listeners is read-only

_REASONS = {
    400: "bad request",
    404: "not found",
    405: "method not allowed",
    414: "URL too long",
    500: "internal server error",
    503: "service unavailable",
}


class ApiError(Exception):
    """A client-facing failure: the HTTP status and the sentence for ``{"error": ...}``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """``{"error": message}`` with ``status``."""
    body = msgspec.json.encode({"error": message})
    return Response(body, status_code=status, headers=dict(headers or {}), media_type=JSON_TYPE)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method) as JSON."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ALLOW
        method = request.method
        return error_response(405, f"method {method} not allowed; use GET or HEAD", headers)
    if exc.status_code == 404:
        return error_response(404, f"no such path: {request.url.path}", headers)
    return error_response(exc.status_code, _REASONS.get(exc.status_code, exc.detail), headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    status, message = describe_domain_error(exc)
    return error_response(status, message)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # uvicorn logs the traceback when Starlette re-raises after this answer: one line here
    log.error("internal error answering %s %s: %r", request.method, request.url.path, exc)
    return error_response(500, "internal server error")


def describe_domain_error(exc: Exception) -> tuple[int, str]:
    """The status and message for one of the store's typed errors (registry/errors.py)."""
    from thv_registry.registry import errors as e

    if isinstance(exc, e.InvalidCursor):
        return 400, str(exc)
    not_found = (e.RegistryNotFound, e.ServerNotFound, e.VersionNotFound, e.SkillNotFound)
    if isinstance(exc, not_found):
        return 404, str(exc)
    log.error("unexpected registry error: %r", exc)
    return 500, "internal server error"


def exception_handlers() -> dict[Any, Any]:
    """The handlers to give ``Starlette(exception_handlers=...)``."""
    from thv_registry.registry.errors import RegistryError

    return {
        ApiError: _api_error,
        HTTPException: _http_exception,
        RegistryError: _domain_error,
        Exception: _unexpected,
    }
