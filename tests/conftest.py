"""Shared fixtures: one real PostgreSQL server per test session, one fresh database per test.

The server is the embedded one (pgserver) unless ``THV_TEST_DATABASE_URL`` names another
(``postgresql://postgres@127.0.0.1:5432/postgres``). Nothing here mocks the database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
            return conn.execute(query, params).fetchall()

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
        port=int(info.get("port") or 5432),
        user=str(info.get("user", "postgres")),
        admin_db=str(info.get("dbname", "postgres")),
        kind="external",
    )


def _embedded_server() -> ServerInfo:
    from thv_registry.db.embedded import start_embedded

    # pytest-xdist workers start at once: pgserver creates the data directory with a check, then
    # mkdir(exist_ok=False), so one of two racing workers would fail; its initdb is locked.
    (TEST_STATE_DIR / "pgdata").mkdir(parents=True, exist_ok=True)
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


class MigrateCli:
    """``python -m thv_registry migrate ARGS --config C --migrations-dir M``, as a user runs it."""

    def __init__(self, env: dict[str, str], cwd: Path, config: Path, migrations: Path) -> None:
        self.env, self.cwd, self.migrations = env, cwd, migrations
        self.common = ["--config", str(config), "--migrations-dir", str(migrations)]

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "thv_registry", "migrate", *args, *self.common]

    def __call__(
        self, *args: str, input: str | None = None, stdin: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        if input is None and stdin is None:
            stdin = subprocess.DEVNULL  # never wait for a terminal that is not there
        return subprocess.run(
            self.argv(*args), env=self.env, cwd=self.cwd, input=input, stdin=stdin,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip


#: a small set: three tables, one per version, each with its down
THREE_TABLES = {
    "000001_a.up.sql": "CREATE TABLE a (id int);\n",
    "000001_a.down.sql": "DROP TABLE a;\n",
    "000002_b.up.sql": "CREATE TABLE b (id int);\n",
    "000002_b.down.sql": "DROP TABLE b;\n",
    "000003_c.up.sql": "CREATE TABLE c (id int);\n",
    "000003_c.down.sql": "DROP TABLE c;\n",
}


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture
def migrate_cli(
    cli_env: dict[str, str], tmp_path: Path, config_file: Path
) -> Callable[[dict[str, str]], MigrateCli]:
    """A factory: write the migration set, get a CLI runner for it, run from an unrelated dir."""

    def make(files: dict[str, str]) -> MigrateCli:
        workdir = tmp_path / "elsewhere"
        workdir.mkdir(exist_ok=True)
        return MigrateCli(
            cli_env, workdir, config_file, write_migrations(tmp_path / "migrations", files)
        )

    return make


def unindexed_foreign_keys(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Foreign keys in schema public without an index for the lookups their ON DELETE needs:
    one whose leading columns are the key's columns, or a unique one on a subset of them."""
    return conn.execute(
        """SELECT k.conrelid::regclass::text, k.conname FROM pg_constraint k
            WHERE k.contype = 'f' AND k.connamespace = 'public'::regnamespace
              AND NOT EXISTS (
                  SELECT 1 FROM pg_index i
                   WHERE i.indrelid = k.conrelid
                     AND ((i.indkey::int2[])[0:cardinality(k.conkey) - 1] = k.conkey
                          OR (i.indisunique AND i.indkey::int2[] <@ k.conkey)))"""
    ).fetchall()
