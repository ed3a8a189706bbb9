"""Running ``thv-registry-api serve`` in tests: a real process on loopback ports, always stopped.

``ServeProcess`` starts ``python -m thv_registry serve --config ...`` with its output in files
(never a pipe that could fill up), waits for the internal ``/readiness`` and for the first sync,
and stops the process (SIGTERM, then SIGKILL) whatever the test did.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from waiting import wait_until

SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
UPSTREAM_SCHEMA = (
    "https://raw.githubusercontent.com/stacklok/toolhive-core/main/registry/types/data/"
    "upstream-registry.schema.json"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_json(name: str, version: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "$schema": SCHEMA,
        "name": name,
        "description": f"{name} test server, version {version}",
        "version": version,
        "packages": [
            {
                "registryType": "oci",
                "identifier": f"ghcr.io/example/{name.split('/')[-1]}:{version}",
                "transport": {"type": "stdio"},
            }
        ],
    }
    doc.update(extra)
    return doc


def skill_json(namespace: str, name: str, version: str, status: str = "active") -> dict[str, Any]:
    return {
        "namespace": namespace,
        "name": name,
        "title": f"{name} title",
        "description": f"{name} test skill, version {version}",
        "version": version,
        "status": status,
        "packages": [
            {"registryType": "git", "url": f"https://example.com/{name}.git", "ref": "main"}
        ],
    }


def write_registry(
    path: Path, servers: Sequence[dict[str, Any]], skills: Sequence[dict[str, Any]] = ()
) -> Path:
    """An upstream registry file (the format of a ``file`` source) holding ``servers``."""
    data: dict[str, Any] = {"servers": list(servers)}
    if skills:
        data["skills"] = list(skills)
    doc = {
        "$schema": UPSTREAM_SCHEMA,
        "version": "1.0.0",
        "meta": {"last_updated": "2025-11-26T00:27:46Z"},
        "data": data,
    }
    path.write_text(json.dumps(doc, indent=1))
    return path


def serve_config(
    path: Path,
    conn: dict[str, Any],
    registry_file: Path,
    *,
    server: dict[str, Any] | None = None,
) -> Path:
    """A serve config: the test database, one file source, registry ``default``; both
    listeners on a port the system picks (``ServeProcess`` reads them from the output)."""
    doc: dict[str, Any] = {
        "database": {**conn, "sslmode": "disable"},
        "auth": {"mode": "anonymous"},
        "sources": [
            {
                "name": "local",
                "file": {"path": str(registry_file)},
                "syncPolicy": {"interval": "1m"},
            }
        ],
        "registries": [{"name": "default", "sources": ["local"]}],
        "server": {
            "address": "127.0.0.1:0",
            "internalAddress": "127.0.0.1:0",
            "syncPollInterval": "2s",  # a failed first sync is retried soon
            **(server or {}),
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


SERVING = re.compile(
    r"Serving the registry API on (\S+):(\d+) and the internal endpoints on (\S+):(\d+)"
)


class ServeProcess:
    """One ``serve`` process; ``base`` and ``internal`` are its two listeners' URLs, known once
    it has said where it listens (:meth:`wait_started`)."""

    def __init__(
        self,
        config: Path | None,
        env: dict[str, str],
        workdir: Path,
        *,
        extra: Sequence[str] = (),
        global_args: Sequence[str] = (),
    ) -> None:
        self.ports: tuple[int, int] | None = None
        tag = uuid.uuid4().hex[:8]
        self.stdout_path = workdir / f"serve-{tag}.out"
        self.stderr_path = workdir / f"serve-{tag}.err"
        argv = [sys.executable, "-m", "thv_registry", *global_args, "serve"]
        argv += [*(["--config", str(config)] if config is not None else []), *extra]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

    @property
    def public_port(self) -> int:
        assert self.ports is not None, "wait_started() first"
        return self.ports[0]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def internal(self) -> str:
        assert self.ports is not None, "wait_started() first"
        return f"http://127.0.0.1:{self.ports[1]}"

    def wait_started(self, timeout: float = 60) -> None:
        def started() -> re.Match[str] | None:
            return SERVING.search(self.stderr)

        match = wait_until(started, timeout, "serve saying where it listens", alive=self.proc)
        assert match is not None  # wait_until returns a true value
        self.ports = (int(match.group(2)), int(match.group(4)))

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def readiness(self) -> httpx.Response | None:
        try:
            return httpx.get(f"{self.internal}/readiness", timeout=2)
        except httpx.TransportError:
            return None

    def wait_ready(self, timeout: float = 60) -> None:
        if self.ports is None:
            self.wait_started(timeout)

        def ready() -> bool:
            response = self.readiness()
            return response is not None and response.status_code == 200

        wait_until(ready, timeout, "serve's /readiness answering 200", alive=self.proc)

    def wait_synced(self, registry: str = "default", timeout: float = 30) -> None:
        def synced() -> bool:
            response = httpx.get(f"{self.base}/registry/{registry}/v0.1/servers", timeout=5)
            return response.status_code == 200 and response.json()["metadata"]["count"] > 0

        wait_until(synced, timeout, "the first sync's servers being listed", alive=self.proc)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 45) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Stop the process, whatever state it is in (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)

    def describe(self) -> str:
        return f"exit {self.proc.poll()}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


@contextmanager
def running(
    config: Path,
    env: dict[str, str],
    workdir: Path,
    *,
    synced: bool = True,
    **kwargs: Any,
) -> Iterator[ServeProcess]:
    """A ready ``serve`` process (and, with ``synced``, its first sync done); stopped after."""
    process = ServeProcess(config, env, workdir, **kwargs)
    try:
        try:
            process.wait_ready()
            if synced:
                process.wait_synced()
        except AssertionError as exc:  # say what the server said
            raise AssertionError(f"{exc}\n{process.describe()}") from exc
        yield process
    finally:
        process.stop()


def wait_port_closed(port: int, timeout: float = 10) -> None:
    def closed() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) != 0

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not closed():
        time.sleep(0.05)
