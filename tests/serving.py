"""Running ``thv-registry-api serve`` in tests: a real process on loopback ports, always stopped.

``ServeProcess`` starts ``python -m thv_registry serve --config ...`` with its output in files
(never a pipe that could fill up), waits for the internal ``/readiness`` and for the first sync,
and stops the process (SIGTERM, then SIGKILL) whatever the test did.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
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
    public_port: int,
    internal_port: int,
    server: dict[str, Any] | None = None,
) -> Path:
    """A serve config: the test database, one file source, registry ``default``."""
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
            "address": f"127.0.0.1:{public_port}",
            "internalAddress": f"127.0.0.1:{internal_port}",
            **(server or {}),
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class ServeProcess:
    """One ``serve`` process; ``base`` and ``internal`` are its two listeners' URLs."""

    def __init__(
        self,
        config: Path,
        env: dict[str, str],
        workdir: Path,
        *,
        public_port: int,
        internal_port: int,
        extra: Sequence[str] = (),
        global_args: Sequence[str] = (),
    ) -> None:
        self.base = f"http://127.0.0.1:{public_port}"
        self.internal = f"http://127.0.0.1:{internal_port}"
        self.stdout_path = workdir / f"serve-{public_port}.out"
        self.stderr_path = workdir / f"serve-{public_port}.err"
        argv = [sys.executable, "-m", "thv_registry", *global_args, "serve"]
        argv += ["--config", str(config), *extra]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )

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
    public_port: int,
    internal_port: int,
    synced: bool = True,
    **kwargs: Any,
) -> Iterator[ServeProcess]:
    """A ready ``serve`` process (and, with ``synced``, its first sync done); stopped after."""
    process = ServeProcess(
        config, env, workdir, public_port=public_port, internal_port=internal_port, **kwargs
    )
    try:
        process.wait_ready()
        if synced:
            process.wait_synced()
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
