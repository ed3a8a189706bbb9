"""Helpers of the sync tests: a migrated database, an async pool, registry files, settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool

from conftest import TestDatabase
from thv_registry.config import (
    ConnectionParams,
    FileSourceSettings,
    Patterns,
    RegistrySettings,
    ServerSettings,
    Settings,
    SourceFilter,
    SourceSettings,
    SyncPolicy,
)
from thv_registry.migrations import Migrator, Source, Up

T = TypeVar("T")
SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"


def migrate(database: TestDatabase) -> None:
    s = database.server
    Migrator(
        ConnectionParams(s.host, s.port, s.user, database.name, "disable"), Source.embedded()
    ).apply(Up())


def server(name: str, version: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "$schema": SCHEMA,
        "name": name,
        "description": f"{name} server",
        "version": version,
        "packages": [
            {
                "registryType": "npm",
                "identifier": f"@x/{name.split('/')[-1]}",
                "version": version,
                "transport": {"type": "stdio"},
            },
        ],
    }
    doc.update(extra)
    return doc


def skill(namespace: str, name: str, version: str, **extra: Any) -> dict[str, Any]:
    package = {"registryType": "git", "url": "https://example.com/s.git", "ref": "main"}
    doc = {
        "namespace": namespace,
        "name": name,
        "description": f"{name} skill",
        "version": version,
        "packages": [package],
    }
    doc.update(extra)
    return doc


def write_registry(
    path: Path,
    servers: list[dict[str, Any]],
    skills: list[dict[str, Any]] | None = None,
    plugins: list[dict[str, Any]] | None = None,
) -> Path:
    data: dict[str, Any] = {"servers": servers}
    if skills is not None:
        data["skills"] = skills
    if plugins is not None:
        data["plugins"] = plugins
    doc = {"$schema": "x", "version": "1.0.0", "meta": {"last_updated": "2026-01-01T00:00:00Z"}}
    path.write_text(json.dumps({**doc, "data": data}, indent=1))
    return path


def settings(
    sources: dict[str, Path | str],
    registries: dict[str, tuple[str, ...]] | None = None,
    *,
    interval: timedelta = timedelta(minutes=5),
    poll: timedelta = timedelta(seconds=30),
    names: Patterns | None = None,
    tags: Patterns | None = None,
    claims: dict[str, Any] | None = None,
) -> Settings:
    """File sources (a path, or a URL when the value is a str starting with http)."""
    built = []
    for name, where in sources.items():
        file = (
            FileSourceSettings(url=where, timeout=timedelta(seconds=5))
            if isinstance(where, str) and where.startswith("http")
            else FileSourceSettings(path=str(where))
        )
        filt = SourceFilter(names=names, tags=tags) if names or tags else None
        built.append(
            SourceSettings(
                name=name,
                file=file,
                sync_policy=SyncPolicy(interval=interval),
                filter=filt,
                claims=claims or {},
            )
        )
    regs = registries if registries is not None else {"default": tuple(sources)}
    return Settings(
        sources=tuple(built),
        registries=tuple(RegistrySettings(name=n, sources=s) for n, s in regs.items()),
        server=ServerSettings(sync_poll_interval=poll),
    )


def with_pool(
    database: TestDatabase, body: Callable[[AsyncConnectionPool[Any]], Coroutine[Any, Any, T]]
) -> T:
    """Run ``body(pool)`` on a fresh event loop with an open async pool on ``database``."""

    async def main() -> T:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            database.conninfo, min_size=1, max_size=4, open=False
        )
        await pool.open()
        try:
            return await body(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
