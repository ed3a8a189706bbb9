"""Module-scoped fixtures for the API tests: one seeded database and one serve process per module.

Starting ``serve`` (interpreter, migrations, first sync) takes seconds, so the API tests of one
module share a process; each module gets its own database, dropped afterwards.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from serving import (
    ServeProcess,
    running,
    serve_config,
    server_json,
    skill_json,
    write_registry,
)

#: (name, versions): names with dots and dashes, versions out of text order, a pre-release
SERVERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("io.github.example/alpha", ("1.9.0", "1.10.0", "2.0.0-rc.1")),
    ("io.github.example/beta-server", ("0.1.0",)),
    ("com.example/gamma", ("3.0.0", "3.1.0")),
    ("com.example/under_score", ("1.0.0",)),
)


def seed_servers() -> list[dict[str, Any]]:
    docs = []
    for name, versions in SERVERS:
        for version in versions:
            docs.append(server_json(name, version, title=f"{name.split('/')[1]} title"))
    return docs


def seed_skills() -> list[dict[str, Any]]:
    return [
        skill_json("io.example", "writer", "1.0.0"),
        skill_json("io.example", "writer", "1.1.0"),
        skill_json("io.example", "old-tool", "0.9.0", status="deprecated"),
    ]


def make_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THV_REGISTRY_")}
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", HOME=str(home))
    env.setdefault("PATH", os.path.dirname(sys.executable))
    return env


class Seeded:
    """A database created for a module, with a connection dict for serve configs."""

    def __init__(self, pg_server: Any) -> None:
        self.server = pg_server
        self.name = f"thv_api_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    @property
    def conn(self) -> dict[str, Any]:
        return {
            "host": self.server.host,
            "port": self.server.port,
            "user": self.server.user,
            "database": self.name,
        }

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.server.conninfo(self.name), autocommit=True)

    def drop(self) -> None:
        with psycopg.connect(self.server.conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )


#: what a module's ``api`` fixture yields
Served = tuple[ServeProcess, "Seeded"]


def start_module_server(
    pg_server: Any,
    tmp: Path,
    *,
    server: dict[str, Any] | None = None,
    global_args: tuple[str, ...] = (),
) -> Iterator[tuple[ServeProcess, Seeded]]:
    seeded = Seeded(pg_server)
    try:
        registry = write_registry(tmp / "registry.json", seed_servers(), seed_skills())
        config = serve_config(tmp / "config.yaml", seeded.conn, registry, server=server)
        with running(config, make_env(tmp), tmp, global_args=global_args) as process:
            yield process, seeded
    finally:
        seeded.drop()
