"""Shared fixtures: one real PostgreSQL server per test session, one fresh database per test.

The server is the embedded one (pgserver) unless ``THV_TEST_DATABASE_URL`` names another
(``postgresql://postgres@127.0.0.1:5432/postgres``). Nothing here mocks the database.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_STATE_DIR = REPO_ROOT / ".thv-test"


@dataclass(frozen=True)
class ServerInfo:
    """How to reach the test server as its superuser (no password: trust or pgpass)."""

    host: str
    port: int
    user: str
    admin_db: str
    kind: str  #: "embedded" or "external"

    def conninfo(self, dbname: str | None = None) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, user=self.user, dbname=dbname or self.admin_db
        )


@dataclass(frozen=True)
class TestDatabase:
    """A database created for one test and dropped after it."""

    __test__ = False

    server: ServerInfo
    name: str

    @property
    def conninfo(self) -> str:
        return self.server.conninfo(self.name)

    def connect(self, **kwargs: object) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.conninfo, autocommit=True, **kwargs)  # type: ignore[arg-type]

    def query(self, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self.connect() as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def tables(self, schema: str = "public") -> set[str]:
        rows = self.query("select tablename from pg_tables where schemaname = %s", (schema,))
        return {str(r[0]) for r in rows}

    def write_config(self, path: Path, **extra: object) -> Path:
        """Write a thv-registry YAML config pointing at this database; return its path."""
        import yaml

        db: dict[str, object] = {
            "host": self.server.host,
            "port": self.server.port,
            "user": self.server.user,
            "database": self.name,
            "sslmode": "disable",
        }
        db.update(extra)
        path.write_text(yaml.safe_dump({"database": db}, sort_keys=False))
        return path


def _external_server(url: str) -> ServerInfo:
    info = psycopg.conninfo.conninfo_to_dict(url)
    return ServerInfo(
        host=str(info.get("host", "127.0.0.1")),
        port=int(info.get("port", 5432)),
        user=str(info.get("user", "postgres")),
        admin_db=str(info.get("dbname", "postgres")),
        kind="external",
    )


def _embedded_server() -> ServerInfo:
    from thv_registry.embedded import start_embedded

    TEST_STATE_DIR.mkdir(exist_ok=True)
    server = start_embedded(TEST_STATE_DIR / "pgdata")
    # A throwaway test server need not survive a power cut: without fsync, the checkpoint that
    # every DROP DATABASE forces costs milliseconds instead of a second.
    with psycopg.connect(
        host=server.host, port=server.port, user=server.user, dbname="postgres", autocommit=True
    ) as conn:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            conn.execute(f"ALTER SYSTEM SET {setting} = off")
        conn.execute("SELECT pg_reload_conf()")
    return ServerInfo(
        host=server.host, port=server.port, user=server.user, admin_db="postgres", kind="embedded"
    )


@pytest.fixture(scope="session")
def pg_server() -> ServerInfo:
    url = os.environ.get("THV_TEST_DATABASE_URL")
    return _external_server(url) if url else _embedded_server()


@pytest.fixture
def database(pg_server: ServerInfo) -> Iterator[TestDatabase]:
    name = f"thv_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield TestDatabase(pg_server, name)
    finally:
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def config_file(database: TestDatabase, tmp_path: Path) -> Path:
    return database.write_config(tmp_path / "config.yaml")


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for CLI subprocesses: no inherited THV_* settings, a private home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("THV_REGISTRY_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    env["THV_REGISTRY_BACKUP_DIR"] = str(tmp_path / "backups")  # never the user's real one
    env.setdefault("PATH", os.path.dirname(sys.executable))
    return env
