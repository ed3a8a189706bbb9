"""The registry's read side: what the API serves, read from PostgreSQL.

Every call reads one snapshot: a ``READ ONLY`` ``REPEATABLE READ`` transaction on a connection
of the async pool, so a page never mixes two syncs. A page costs a constant number of queries:
the page itself (its ``limit + 1`` rows tell whether there is a next page), then the packages,
remotes and icons of all its versions, one query each; the registry's existence is checked
only when a result is empty. Lists are ordered by name, then by version precedence, newest
first (:mod:`thv_registry.registry.semver`; non-semver versions below, by publication time);
cursors are keyset positions in that order (:mod:`thv_registry.registry.cursor`), so a cursor
whose row has gone since continues after it.

A server name found in several sources of a registry is served entirely from one of them: the
lowest position where it has a version that is not deleted, else the lowest position (so a name
that leaves the first source is served from the next); a cursor continues a name only from the
entry it came from, so a walk never mixes two sources for one name. Deleted versions are left
out of lists unless asked for; a direct GET of a version answers it whatever its status. The
latest version is the entry's latest pointer, which the sync writer sets with
:func:`thv_registry.registry.semver.latest_of`. Each snapshot can also read a registry's
generation (``registry/generation.py``'s ``probe``, for the API's response cache).
"""

from __future__ import annotations

import datetime
import uuid
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg
from psycopg import IsolationLevel, sql
from psycopg.rows import tuple_row
from psycopg.types.json import set_json_loads

from thv_registry.queries.aio import servers as q
from thv_registry.queries.aio import skills as sq
from thv_registry.queries.models import VersionStatus
from thv_registry.queries.servers import (
    LIST_SERVER_ICONS,
    LIST_SERVER_PACKAGES,
    LIST_SERVER_REMOTES,
    ListServerIconsRow,
    ListServerPackagesRow,
    ListServerRemotesRow,
)

from . import cursor
from .convert import Children, VersionRow, group, server_response, skill
from .cursor import ServerPosition, SkillPosition
from .errors import RegistryNotFound, ServerNotFound, SkillNotFound, VersionNotFound
from .generation import GENERATION, current_probe
from .models import (
    ListMetadata,
    ServerListResponse,
    ServerResponse,
    Skill,
    SkillListResponse,
    Status,
)

__all__ = ["LATEST", "SchemaHealth", "ServerQuery", "SkillQuery", "Store"]

#: The version name that asks for the latest version.
LATEST = "latest"
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
#: Where a listing starts: before every name (names are never empty).
_START = ServerPosition("", b"", _EPOCH, "", uuid.UUID(int=0))
_ALL_STATUSES: tuple[Status, ...] = ("active", "deprecated", "deleted")
_DB_STATUS: dict[Status, VersionStatus] = {
    "active": "ACTIVE",
    "deprecated": "DEPRECATED",
    "deleted": "DELETED",
}


@dataclass(frozen=True, slots=True)
class ServerQuery:
    """Parameters of ``GET .../servers`` (the API validates them; ``limit`` is 1..100)."""

    cursor: str | None = None
    limit: int = 30
    search: str | None = None
    updated_since: datetime.datetime | None = None
    version: str | None = None  #: ``"latest"`` or an exact version
    include_deleted: bool = False


@dataclass(frozen=True, slots=True)
class SkillQuery:
    """Parameters of ``GET .../x/dev.toolhive/skills`` (``limit`` is 1..100)."""

    cursor: str | None = None
    limit: int = 50
    search: str | None = None
    #: versions whose status is one of these; ``None``: every status but ``deleted``
    statuses: tuple[Status, ...] | None = None
    version: str | None = None  #: ``"latest"`` or an exact version


@dataclass(frozen=True, slots=True)
class SchemaHealth:
    """What ``/readiness`` needs: the database answered, at this schema version, clean or not."""

    version: int | None  #: ``None``: no migration applied (or no state table)
    dirty: bool


async def _generic_plans(conn: psycopg.AsyncConnection[Any]) -> None:
    """Let this transaction run prepared statements on their cached generic plan.

    PostgreSQL keeps re-planning the listing query for its parameters (about 1 ms each time)
    because it over-estimates the generic plan; the listing queries are written so that their
    generic plan reads about a page of rows (tests/test_registry_store.py checks it). Sent in
    the pipeline with BEGIN, so it costs no round trip.
    """
    await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")


class Store:
    """Async reads of the registry over a ``psycopg_pool.AsyncConnectionPool``."""

    def __init__(self, pool: Any, *, migrations_table: str = "schema_migrations") -> None:
        self._pool = pool
        self._migrations_table = migrations_table
        self._tuned: weakref.WeakSet[psycopg.AsyncConnection[Any]] = weakref.WeakSet()

    @asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A read-only repeatable-read transaction; the connection's settings are restored.

        It runs in pipeline mode: BEGIN travels with the first query, COMMIT with the end of the
        block, and queries sent together (:meth:`_children`) share one round trip.
        """
        async with self._pool.connection() as conn:
            if conn not in self._tuned:  # JSON columns decode with msgspec (same values, faster)
                set_json_loads(msgspec.json.decode, conn)
                self._tuned.add(conn)
            isolation, read_only = conn.isolation_level, conn.read_only
            await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
            await conn.set_read_only(True)
            try:
                async with conn.pipeline(), conn.transaction():
                    probe = current_probe()
                    asked = await conn.execute(GENERATION, (probe.registry,)) if probe else None
                    yield conn
                    if probe is not None and asked is not None:  # the same snapshot's generation
                        row = await asked.fetchone()
                        probe.value = str(row[0]) if row else None
            finally:
                if not conn.closed:
                    await conn.set_isolation_level(isolation)
                    await conn.set_read_only(read_only)

    # --- generations (the API's response cache, registry/generation.py) ---------------------

    async def generation(self, registry: str) -> str:
        """``registry``'s generation now: one statement, one round trip."""
        async with self._pool.connection() as conn:
            autocommit = conn.autocommit
            await conn.set_autocommit(True)
            try:
                row = await (await conn.execute(GENERATION, (registry,))).fetchone()
            finally:
                if not conn.closed:
                    await conn.set_autocommit(autocommit)
        return str(row[0]) if row else ""

    # --- servers ------------------------------------------------------------------------------

    async def list_servers(self, registry: str, query: ServerQuery) -> ServerListResponse:
        """One page of server versions (``InvalidCursor``, ``RegistryNotFound``)."""
        after = cursor.decode(query.cursor, ServerPosition) if query.cursor else _START
        latest_only = query.version == LATEST
        async with self._snapshot() as conn:
            await _generic_plans(conn)
            rows = await q.list_servers(
                conn,
                registry_name=registry,
                cursor_name=after.name,
                cursor_sort_key=after.sort_key,
                cursor_published_at=after.published_at,
                cursor_version=after.version,
                cursor_entry_id=after.entry_id,
                by_search=query.search is not None,
                search=query.search,
                by_time=query.updated_since is not None,
                updated_since=query.updated_since,
                by_version=query.version is not None and not latest_only,
                version=None if latest_only else query.version,
                latest_only=latest_only,
                include_deleted=query.include_deleted,
                page_size=query.limit + 1,
            )
            if not rows:
                await self._require_registry(conn, registry)
            page = rows[: query.limit]
            children = await self._children(conn, page)
        next_cursor = None
        if len(rows) > query.limit:
            last = page[-1]
            position = ServerPosition(
                last.name,
                last.sort_key or b"\x00",
                last.published_at,
                last.version,
                last.entry_id or _START.entry_id,  # never None on a page row
            )
            next_cursor = cursor.encode(position)
        servers = [server_response(row, children) for row in page]
        return ServerListResponse(
            servers=servers, metadata=ListMetadata(next_cursor=next_cursor, count=len(servers))
        )

    async def list_versions(
        self, registry: str, name: str, *, include_deleted: bool = False
    ) -> ServerListResponse:
        """Every version of one server, newest first (``RegistryNotFound``, ``ServerNotFound``).

        A server whose versions are all deleted answers an empty list unless
        ``include_deleted``.
        """
        async with self._snapshot() as conn:
            rows = await q.list_server_versions(
                conn, registry_name=registry, server_name=name, include_deleted=include_deleted
            )
            if not rows:
                await self._require_server(conn, registry, name)
            children = await self._children(conn, rows)
        servers = [server_response(row, children) for row in rows]
        return ServerListResponse(servers=servers, metadata=ListMetadata(count=len(servers)))

    async def get_version(self, registry: str, name: str, version: str) -> ServerResponse:
        """One version (``"latest"`` allowed), whatever its status.

        Raises ``RegistryNotFound``, ``ServerNotFound`` or ``VersionNotFound``.
        """
        async with self._snapshot() as conn:
            row = await q.get_server_version(
                conn,
                registry_name=registry,
                server_name=name,
                version=None if version == LATEST else version,
            )
            if row is None:
                await self._require_server(conn, registry, name)
                raise VersionNotFound(registry, name, version)
            children = await self._children(conn, [row])
        return server_response(row, children)

    async def _children(self, conn: Any, rows: Sequence[VersionRow]) -> Children:
        if not rows:
            return Children()
        ids = [row.version_id for row in rows]
        # the generated queries' SQL and rows, all three sent before any result is read
        cursors = []
        for query in (LIST_SERVER_PACKAGES, LIST_SERVER_REMOTES, LIST_SERVER_ICONS):
            cur = psycopg.AsyncRawCursor(conn, row_factory=tuple_row)
            await cur.execute(query, (ids,))
            cursors.append(cur)
        packages, remotes, icons = [await cur.fetchall() for cur in cursors]
        return Children(
            [ListServerPackagesRow(*r) for r in packages],
            [ListServerRemotesRow(*r) for r in remotes],
            [ListServerIconsRow(*r) for r in icons],
        )

    async def _require_registry(self, conn: Any, registry: str) -> None:
        if await q.get_registry_id(conn, registry_name=registry) is None:
            raise RegistryNotFound(registry)

    async def _require_server(self, conn: Any, registry: str, name: str) -> None:
        if not await q.server_is_served(conn, registry_name=registry, server_name=name):
            await self._require_registry(conn, registry)
            raise ServerNotFound(registry, name)

    # --- skills -------------------------------------------------------------------------------

    async def list_skills(self, registry: str, query: SkillQuery) -> SkillListResponse:
        """One page of skill versions (``InvalidCursor``, ``RegistryNotFound``)."""
        after = cursor.decode(query.cursor, SkillPosition) if query.cursor else None
        skills, more = await self._skills(
            registry,
            after=after,
            limit=query.limit,
            search=query.search,
            statuses=query.statuses,
            version=query.version,
        )
        next_cursor = None
        if more:
            last = more
            next_cursor = cursor.encode(
                SkillPosition(
                    last.name,
                    last.sort_key or b"\x00",
                    last.published_at,
                    last.version,
                    last.entry_id,
                )
            )
        return SkillListResponse(
            skills=skills, metadata=ListMetadata(next_cursor=next_cursor, count=len(skills))
        )

    async def list_skill_versions(
        self, registry: str, namespace: str, name: str
    ) -> SkillListResponse:
        """Every version of one skill but deleted ones, newest first (``SkillNotFound``)."""
        skills, _ = await self._skills(registry, name=f"{namespace}/{name}")
        if not skills:
            raise SkillNotFound(registry, namespace, name)
        return SkillListResponse(skills=skills, metadata=ListMetadata(count=len(skills)))

    async def get_skill(
        self, registry: str, namespace: str, name: str, version: str = LATEST
    ) -> Skill:
        """One version of a skill (``"latest"`` by default), whatever its status."""
        skills, _ = await self._skills(
            registry, name=f"{namespace}/{name}", limit=1, statuses=_ALL_STATUSES, version=version
        )
        if not skills:
            raise SkillNotFound(registry, namespace, name, None if version == LATEST else version)
        return skills[0]

    async def _skills(
        self,
        registry: str,
        *,
        after: SkillPosition | None = None,
        limit: int | None = None,
        search: str | None = None,
        statuses: tuple[Status, ...] | None = None,
        version: str | None = None,
        name: str | None = None,
    ) -> tuple[list[Skill], Any]:
        """The skills of one page, and the last row served when there is a next page."""
        latest_only = version == LATEST
        async with self._snapshot() as conn:
            await _generic_plans(conn)
            rows = await sq.list_skills(
                conn,
                registry_name=registry,
                by_name=name is not None,
                name=name,
                cursor_name=after.name if after else "",
                cursor_sort_key=after.sort_key if after else b"",
                cursor_published_at=after.published_at if after else _EPOCH,
                cursor_version=after.version if after else "",
                cursor_entry_id=after.entry_id if after else _START.entry_id,
                by_search=search is not None,
                search=search,
                by_status=statuses is not None,
                statuses=[_DB_STATUS[s] for s in statuses or ()],
                by_version=version is not None and not latest_only,
                version=None if latest_only else version,
                latest_only=latest_only,
                page_size=(limit + 1) if limit else 2**31 - 1,
            )
            if not rows:
                await self._require_registry(conn, registry)
            page = rows[:limit] if limit else rows
            oci: dict[Any, list[Any]] = {}
            git: dict[Any, list[Any]] = {}
            if page:
                ids = [row.version_id for row in page]
                oci = group(await sq.list_skill_oci_packages(conn, version_ids=ids), "skill_id")
                git = group(await sq.list_skill_git_packages(conn, version_ids=ids), "skill_id")
        skills = [skill(r, oci.get(r.version_id, ()), git.get(r.version_id, ())) for r in page]
        more = page[-1] if limit and len(rows) > limit else None
        return skills, more

    # --- health -------------------------------------------------------------------------------

    async def health(self) -> SchemaHealth:
        """The schema's version and dirty flag (raises psycopg errors when the database fails)."""
        query = sql.SQL("SELECT version, dirty FROM {} LIMIT 1").format(
            sql.Identifier(self._migrations_table)
        )
        async with self._pool.connection() as conn, conn.transaction():
            exists = await (
                await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self._migrations_table,))
            ).fetchone()
            if not exists or not exists[0]:
                return SchemaHealth(version=None, dirty=False)
            row = await (await conn.execute(query)).fetchone()
        if row is None:
            return SchemaHealth(version=None, dirty=False)
        return SchemaHealth(version=int(row[0]), dirty=bool(row[1]))
