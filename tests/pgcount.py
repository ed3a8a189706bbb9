"""A TCP proxy in front of the test PostgreSQL that counts the statements its clients run.

``serve`` is pointed at the proxy (``database.host``/``port``); every frontend message passes
through unchanged, and each ``Execute`` (extended protocol) or ``Query`` (simple protocol)
message is counted, so a test sees how many statements an HTTP request cost, with no help from
the code under test and no server-side logging.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Any

__all__ = ["CountingProxy"]

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102


class CountingProxy:
    """Listens on 127.0.0.1 (``port``) and forwards to PostgreSQL at ``host``/``upstream_port``
    (a Unix socket directory when ``host`` starts with ``/``)."""

    def __init__(self, host: str, upstream_port: int) -> None:
        self._upstream = (host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._statements = 0
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="pgcount-accept").start()

    @property
    def statements(self) -> int:
        with self._lock:
            return self._statements

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.close()

    def _connect_upstream(self) -> socket.socket:
        host, port = self._upstream
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(f"{host}/.s.PGSQL.{port}")
            return sock
        return socket.create_connection((host, port))

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = self._connect_upstream()
            self._sockets += [client, upstream]
            threading.Thread(target=self._frontend, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def _frontend(self, client: socket.socket, upstream: socket.socket) -> None:
        """Forward the client's bytes, counting Execute and Query messages on the way."""
        buffer = b""
        startup = True  # untyped messages (SSLRequest, StartupMessage) until the startup
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                upstream.sendall(data)
                buffer += data
                buffer, startup = self._scan(buffer, startup)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _scan(self, buffer: bytes, startup: bool) -> tuple[bytes, bool]:
        while True:
            if startup:
                if len(buffer) < 8:
                    return buffer, startup
                length, code = struct.unpack("!ii", buffer[:8])
                if len(buffer) < length:
                    return buffer, startup
                buffer = buffer[length:]
                if code not in (_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST):
                    startup = False  # the StartupMessage: typed messages follow
                continue
            if len(buffer) < 5:
                return buffer, startup
            kind = buffer[:1]
            (length,) = struct.unpack("!i", buffer[1:5])
            if len(buffer) < 1 + length:
                return buffer, startup
            buffer = buffer[1 + length :]
            if kind in (b"E", b"Q"):
                with self._lock:
                    self._statements += 1

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
