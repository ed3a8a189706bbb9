"""Pure ASGI middleware: request context (id, access log, metrics, 414), ETag and 304.

``RequestContext`` is the outermost layer of both listeners: it sees every response, including
Starlette's own 500, so the access log and ``http_requests_total`` count everything. ``ETags``
sits inside the gzip layer, so the tag names the uncompressed representation (weak, as gzip
changes the bytes).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thv_registry.api.errors import JSON_TYPE
from thv_registry.api.metrics import Metrics
from thv_registry.api.params import MAX_URL

__all__ = ["RequestContext", "ETags", "etag_of", "GZIP_MINIMUM"]

access_log = logging.getLogger("thv_registry.access")

GZIP_MINIMUM = 1024  #: bytes; smaller bodies are sent as they are (api/app.py's gzip layer)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")  #: echoed ids: no header injection
_TOO_LONG = b'{"error":"URL too long: at most 8192 bytes of path and query"}'


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def route_label(scope: Scope) -> str:
    """The matched route's template (``/registry/{registry}/v0.1/servers``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContext:
    """Request id, one access line, metrics, ``nosniff``, and 414 for over-long URLs."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None, *, log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        sent = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and scope["method"] != "HEAD":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            raw = scope.get("raw_path") or scope["path"].encode()
            if len(raw) + len(scope.get("query_string", b"")) > MAX_URL:
                await _answer(send_wrapper, 414, _TOO_LONG)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - started
            self._record(scope, request_id, status, sent, seconds)

    def _record(
        self, scope: Scope, request_id: str, status: int, sent: int, seconds: float
    ) -> None:
        path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        if self.metrics is not None:
            self.metrics.observe_request(route_label(scope), scope["method"], status, seconds)
        if not self.log:
            return
        fields = {
            "method": scope["method"],
            "path": path,
            "status": status,
            "bytes": sent,
            "duration_ms": round(seconds * 1000, 3),
            "request_id": request_id,
        }
        access_log.info(
            "%s %s %d %dB %.1fms request_id=%s",
            scope["method"],
            path,
            status,
            sent,
            seconds * 1000,
            request_id,
            extra={"fields": fields},
        )


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", JSON_TYPE.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def etag_of(body: bytes) -> str:
    """The weak tag of a 200's uncompressed body."""
    return 'W/"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


class ETags:
    """A weak ``ETag`` on every 200 to GET/HEAD; ``If-None-Match`` (a list, or ``*``) -> 304.

    Responses are buffered (ours are small, complete JSON documents). Starlette hands HEAD
    responses the GET's body too (uvicorn drops it), so a HEAD's tag is the GET's. A response
    that carries its tag already (the response cache's, :func:`etag_of` of the same body) keeps
    it: the body is not hashed again.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                assert start is not None
                await self._finish(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, buffer)

    @staticmethod
    async def _finish(scope: Scope, start: Message, body: bytes, send: Send) -> None:
        given = [v for k, v in start.get("headers", []) if k.lower() == b"etag"]
        drop = (b"content-length", b"etag")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in drop]
        status = start["status"]
        if status == 200:
            tag = given[0].decode("latin-1") if given else etag_of(body)
            headers.append((b"etag", tag.encode()))
            wanted = _header(scope, b"if-none-match")
            if wanted is not None and _matches(wanted, tag):
                keep = {b"etag", b"vary", b"cache-control", b"x-request-id"}
                headers = [(k, v) for k, v in headers if k.lower() in keep]
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
        headers.append((b"content-length", b"%d" % len(body)))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _matches(header: str, tag: str) -> bool:
    """RFC 9110 weak comparison of ``tag`` against an ``If-None-Match`` value."""
    opaque = tag.removeprefix("W/")
    for item in header.split(","):
        item = item.strip()
        if item == "*" or item.removeprefix("W/") == opaque:
            return True
    return False
