"""A small MCP Registry API v0.1 on loopback for the ``api`` source tests (the official registry's
shape: ``servers[]`` of ``{server, _meta}``, ``metadata.nextCursor`` / ``count``), with faults
to inject on a chosen page: a hang, an HTTP status, a truncated or an oversized body."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

OFFICIAL = "io.modelcontextprotocol.registry/official"


def response(server: dict[str, Any], status: str = "active", updated: str = "") -> dict[str, Any]:
    meta = {
        "status": status,
        "publishedAt": "2025-09-01T00:00:00Z",
        "updatedAt": updated or "2025-09-01T00:00:00Z",
        "isLatest": True,
    }
    return {"server": server, "_meta": {OFFICIAL: meta}}


@dataclass
class Upstream:
    """What the fake registry serves (``items``: ServerResponse objects) and how it misbehaves:
    ``fault`` on page ``fault_page`` of every walk (1-based; never on the limit=1 check)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    fault: str | None = None  #: "hang", "500", "truncate", "oversize", "redirect", or None
    fault_page: int = 1
    requests: list[str] = field(default_factory=list)
    port: int = 0
    #: items answered to ``updated_since`` requests (None: all items, as a full list)
    changes: list[dict[str, Any]] | None = None
    #: the most servers a page holds, whatever limit is asked (None: the limit asked)
    page_size: int | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def page_requests(self) -> list[str]:
        return [r for r in self.requests if "limit=1&" not in r and not r.endswith("limit=1")]


def _handler(up: Upstream, stop: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            up.requests.append(self.path)
            parts = urlsplit(self.path)
            if parts.path != "/v0.1/servers":
                return self._send(404, b'{"error": "not found"}')
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            limit = int(query.get("limit", "30"))
            limit = min(limit, up.page_size) if up.page_size else limit
            start = int(query.get("cursor", "0"))
            items = up.items if "updated_since" not in query or up.changes is None else up.changes
            chunk = items[start : start + limit]
            metadata: dict[str, Any] = {"count": len(chunk)}
            if start + limit < len(items):
                metadata["nextCursor"] = str(start + limit)
            body = json.dumps({"servers": chunk, "metadata": metadata}).encode()
            page = start // limit + 1  # every walk meets the fault on the same page
            if limit == 1 or up.fault is None or page != up.fault_page:
                return self._send(200, body)
            if up.fault == "redirect":  # to itself, for ever
                self.send_response(302)
                self.send_header("Location", self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if up.fault == "hang":
                stop.wait(30)
                return
            if up.fault == "500":
                return self._send(500, b'{"error": "boom"}')
            if up.fault == "truncate":  # says it is longer than it is, then hangs up
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if up.fault == "oversize":  # no Content-Length: the cap must count the bytes
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                piece = b" " * 65536
                for _ in range(64):  # 4 MiB of padding
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
                return
            raise AssertionError(f"unknown fault {up.fault}")

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def running_upstream(up: Upstream) -> Iterator[Upstream]:
    """Serve ``up`` on a free loopback port in a thread; always shut down."""
    stop = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(up, stop))
    httpd.daemon_threads = True
    up.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield up
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
        time.sleep(0)
