"""A private, throwaway PostgreSQL for one benchmark run: initdb in a temp dir, pg_ctl start/stop.

Prefers the system's newest PostgreSQL (``/usr/lib/postgresql/N/bin``), else the one the
``pgserver`` package ships. As root, the server runs as the ``postgres`` (or ``pgserver``) user,
since PostgreSQL refuses to run as root. Server settings are PostgreSQL's defaults (fsync and
synchronous_commit on), except listen_addresses/port/socket dir and max_connections.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PrivateServer", "find_bin_dir", "start_private_server"]


def find_bin_dir() -> Path:
    """The bin directory of the newest system PostgreSQL, else of the pgserver package."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for path in reversed(candidates):
        if (path / "postgres").exists() and (path / "initdb").exists():
            return path
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_user() -> str | None:
    """PostgreSQL will not run as root: the user to run it as (None: ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "-s", "/bin/sh", "pgbench"], check=True, capture_output=True)
    return "pgbench"


@dataclass
class PrivateServer:
    root: Path
    bin_dir: Path
    port: int
    user: str | None
    version: str
    host: str = "127.0.0.1"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def _pg(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), check=True, capture_output=True, text=True, user=self.user, cwd=self.root
        )

    def start(self, settings: dict[str, str]) -> None:
        self._pg(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        opts = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": "100",
            **settings,
        }
        with (self.data / "postgresql.auto.conf").open("a") as f:
            for key, value in opts.items():
                f.write(f"{key} = '{value}'\n")
        self._pg(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", "log", "-w", "start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def start_private_server(settings: dict[str, str] | None = None) -> PrivateServer:
    """initdb + start a server on a free 127.0.0.1 port; the caller must ``stop()`` it."""
    bin_dir = find_bin_dir()
    user = _run_user()
    root = Path(tempfile.mkdtemp(prefix="thv-bench-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    banner = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"\d+(\.\d+)+", banner)
    version = found.group(0) if found else banner.strip()
    server = PrivateServer(root, bin_dir, _free_port(), user, version)
    try:
        server.start(settings or {})
    except BaseException:
        server.stop()
        raise
    return server
