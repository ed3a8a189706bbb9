"""The embedded PostgreSQL (pgserver): the default without a configuration, and the tests' server.

The server runs from a per-user data directory and keeps running after the command exits, so the
next run reuses it (start-up is then a socket check). It listens on a Unix socket only.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from thv_registry.errors import ConnectionFailed

__all__ = ["EmbeddedServer", "default_data_dir", "start_embedded", "DEFAULT_DATABASE"]

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "toolhive_registry"
DATA_DIR_ENV = "THV_REGISTRY_EMBEDDED_DIR"


@dataclass(frozen=True)
class EmbeddedServer:
    data_dir: Path
    host: str  #: the socket directory (libpq treats a host starting with / as one)
    port: int
    user: str
    version: str  #: e.g. "16.2"
    bin_dir: Path  #: where its postgres, pg_dump and psql live


def default_data_dir() -> Path:
    """``$THV_REGISTRY_EMBEDDED_DIR``, else ``$XDG_DATA_HOME/thv-registry/pgdata`` (per user)."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "thv-registry" / "pgdata"


def start_embedded(data_dir: Path | None = None, *, database: str | None = None) -> EmbeddedServer:
    """Start (or find running) the embedded server; create ``database`` in it if missing."""
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir()))
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        import pgserver  # heavy: imported only when the embedded server is really used

        server = pgserver.get_server(data_dir, cleanup_mode=None)  # type: ignore[attr-defined]
    except Exception as exc:  # pgserver raises plain exceptions of several kinds
        raise ConnectionFailed(
            f"Could not start the embedded PostgreSQL in {data_dir}: {exc}.",
            hint=f"Check that the directory is writable (or set {DATA_DIR_ENV} to another one).",
            reason="embedded_start",
        ) from exc

    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    port = int(info.port or 5432)
    bin_dir = Path(pgserver.__file__).parent / "pginstall" / "bin"
    version = _prepare(socket_dir, port, database)
    return EmbeddedServer(data_dir, socket_dir, port, "postgres", version, bin_dir)


def _runtime_dir() -> Path:
    path = Path("/tmp") / f"thv-registry-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _prepare(host: str, port: int, database: str | None) -> str:
    """Create ``database`` if it is missing; the server's version as it reports it (``16.2``)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=host, port=port, user="postgres", dbname="postgres", autocommit=True
    ) as c:
        if (
            database
            and c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            is None
        ):
            log.info("creating database %s in the embedded server", database)
            c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        # sent by the server at start-up: no query needed
        return c.info.parameter_status("server_version") or _dotted(c.info.server_version)


def _dotted(version_num: int) -> str:
    """``160002`` (``server_version_num``) -> ``16.2``."""
    return f"{version_num // 10000}.{version_num % 10000}"
