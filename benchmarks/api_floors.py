"""The two floors of the API benchmark (``benchmarks/api_bench.py``).

- HTTP floor: the same uvicorn as ``serve`` (uvloop, httptools, one process, the same
  ``uvicorn.Config`` flags as ``thv_registry.api.server``) serving the same response bytes from
  memory, by path and query, through a bare ASGI function: no framework, no database. Run as
  ``python -m benchmarks.api_floors BODIES.json PORT`` (the benchmark starts and stops it).
- Database floor: :func:`db_floor`, the page's queries as the store sends them (the generated
  query functions and SQL of ``database/queries/servers.sql``; one read-only REPEATABLE READ
  transaction in pipeline mode, ``plan_cache_mode = force_generic_plan`` for the list, then the
  packages, remotes and icons of the page's versions in one round trip) on a bare async psycopg
  loop: ``concurrency`` tasks, each with its own connection, no pool, no HTTP, no response built.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["START", "db_floor", "serve_bodies"]


def _start() -> Any:
    from thv_registry.registry.cursor import ServerPosition

    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return ServerPosition("", b"", epoch, "", uuid.UUID(int=0))


START = _start()  #: the first page's position (the store's ``_START``)


def serve_bodies(bodies_file: Path, port: int) -> None:
    """Serve ``{path_with_query: body}`` from memory on 127.0.0.1:``port`` until SIGTERM."""
    import uvicorn
    import uvloop

    bodies = {
        k.encode("latin-1"): v.encode() for k, v in json.loads(bodies_file.read_text()).items()
    }
    not_found = b'{"error":"not found"}'

    async def app(scope: Any, receive: Any, send: Any) -> None:
        target = scope["raw_path"]
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        body = bodies.get(target)
        status = 200 if body is not None else 404
        body = body if body is not None else not_found
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(  # the flags of thv_registry.api.server._uvicorn
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=60,
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(uvicorn.Server(config).serve())


async def _connect(conninfo: str) -> Any:
    import msgspec
    import psycopg
    from psycopg import IsolationLevel
    from psycopg.types.json import set_json_loads

    conn = await psycopg.AsyncConnection.connect(conninfo, application_name="api-bench db floor")
    set_json_loads(msgspec.json.decode, conn)  # as the store does
    await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
    await conn.set_read_only(True)
    return conn


async def _children(conn: Any, ids: list[uuid.UUID]) -> None:
    import psycopg
    from psycopg.rows import tuple_row

    from thv_registry.queries.servers import (
        LIST_SERVER_ICONS,
        LIST_SERVER_PACKAGES,
        LIST_SERVER_REMOTES,
    )

    cursors = []
    for query in (LIST_SERVER_PACKAGES, LIST_SERVER_REMOTES, LIST_SERVER_ICONS):
        cur = psycopg.AsyncRawCursor(conn, row_factory=tuple_row)
        await cur.execute(query, (ids,))
        cursors.append(cur)
    for cur in cursors:
        await cur.fetchall()


async def list_page(conn: Any, registry: str, after: Any, limit: int) -> int:
    """One list page's queries (``after``: a ``ServerPosition``); the number of rows."""
    from thv_registry.queries.aio import servers as q

    async with conn.pipeline(), conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        rows = await q.list_servers(
            conn,
            registry_name=registry,
            cursor_name=after.name,
            cursor_sort_key=after.sort_key,
            cursor_published_at=after.published_at,
            cursor_version=after.version,
            cursor_entry_id=after.entry_id,
            by_search=False,
            search=None,
            by_time=False,
            updated_since=None,
            by_version=False,
            version=None,
            latest_only=False,
            include_deleted=False,
            page_size=limit + 1,
        )
        page = rows[:limit]
        await _children(conn, [r.version_id for r in page])
    return len(page)


async def get_latest(conn: Any, registry: str, name: str) -> int:
    """One get-latest's queries; 1 when the version was found."""
    from thv_registry.queries.aio import servers as q

    async with conn.pipeline(), conn.transaction():
        row = await q.get_server_version(
            conn, registry_name=registry, server_name=name, version=None
        )
        if row is None:
            return 0
        await _children(conn, [row.version_id])
    return 1


async def db_floor(
    conninfo: str,
    registry: str,
    kind: str,
    items: Sequence[Any],
    *,
    concurrency: int,
    seconds: float,
    limit: int = 30,
) -> tuple[int, float]:
    """Pages (``kind`` ``list``: ``items`` are positions) or get-latests (``get``: names) done by
    ``concurrency`` tasks for ``seconds``: (requests, elapsed seconds)."""
    conns = [await _connect(conninfo) for _ in range(concurrency)]
    done = [0]
    deadline = time.perf_counter() + seconds

    async def worker(k: int, conn: Any) -> None:
        i = k
        while time.perf_counter() < deadline:
            item = items[i % len(items)]
            if kind == "list":
                found = await list_page(conn, registry, item, limit)
            else:
                found = await get_latest(conn, registry, item)
            if not found:
                raise RuntimeError(f"the database floor found nothing for {item!r}")
            done[0] += 1
            i += concurrency

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(k, c) for k, c in enumerate(conns)))
    finally:
        for conn in conns:
            await conn.close()
    return done[0], time.perf_counter() - started


if __name__ == "__main__":
    serve_bodies(Path(sys.argv[1]), int(sys.argv[2]))
