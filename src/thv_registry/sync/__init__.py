"""The sync: sources (file path, URL or inline data) into the database, one transaction each.

:class:`SyncService` is what ``serve`` uses: :meth:`~SyncService.reconcile` at start-up,
:meth:`~SyncService.run` as the poll loop, :meth:`~SyncService.sync_now` for one source.
A sync fetches the bytes (no database connection held), skips everything but the status when
their sha256 and the filter are those of the last good sync, else validates every entry
(:mod:`.upstream`) and writes the source in one transaction (:mod:`.writer`) together with its
status (:mod:`.status`). A failure keeps the old data, counts the attempt and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from thv_registry.queries.aio import sync as q
from thv_registry.sync import status, writer
from thv_registry.sync.coordinator import run_loop
from thv_registry.sync.errors import InvalidEntry, SyncError, UnknownSource
from thv_registry.sync.fetchers import Fetchers
from thv_registry.sync.file_source import Fetched
from thv_registry.sync.gcpause import gc_paused
from thv_registry.sync.reconcile import SYNCED_KINDS, ReconcileConflict, SourceInUse, reconcile
from thv_registry.sync.settings import SourceSpec, SyncSettings
from thv_registry.sync.upstream import DEFAULT_MAX_META_SIZE, filter_hash, parse

__all__ = [
    "SyncService",
    "SyncOutcome",
    "SyncError",
    "ReconcileConflict",
    "SourceInUse",
    "UnknownSource",
]

log = logging.getLogger(__name__)

#: results reported to ``on_sync`` and in :class:`SyncOutcome`
SYNCED, UNCHANGED, FAILED = "synced", "unchanged", "failed"


@dataclass(frozen=True)
class SyncOutcome:
    source: str
    result: str  #: "synced", "unchanged" or "failed"
    seconds: float
    message: str
    counts: status.Counts | None = None  #: what the source holds after a good sync
    changed: int = 0  #: versions written (new, changed, reactivated)
    deleted: int = 0  #: versions marked deleted


class SyncService:
    """Syncs the configured sources of kinds this edition supports (``file``, ``git``, ``api``;
    git caches go under ``cache_dir``, default :func:`.git_source.default_cache_dir`)."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        settings: SyncSettings,
        *,
        on_sync: Callable[[str, str, float], None] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.on_sync = on_sync
        self._fetchers = Fetchers(cache_dir)
        self._sources: dict[str, SourceSpec] = {
            s.name: s for s in settings.sources if s.kind in SYNCED_KINDS
        }
        self._ids: dict[str, uuid.UUID] = {}
        self._locks: dict[str, asyncio.Lock] = {n: asyncio.Lock() for n in self._sources}
        db = settings.database
        self._max_meta = db.max_meta_size if db is not None else DEFAULT_MAX_META_SIZE

    async def reconcile(self) -> None:
        """Write the config's sources and registries (one transaction)."""
        async with self.pool.connection() as conn:
            self._ids = await reconcile(conn, self.settings)

    async def run(self, stop: asyncio.Event) -> None:
        """Sync due sources every ``server.sync_poll_interval`` until ``stop`` is set."""
        names = sorted(n for n, s in self._sources.items() if s.sync_policy is not None)
        await run_loop(
            self.pool, names, self.settings.server.sync_poll_interval, self.sync_now, stop
        )

    async def sync_now(self, source: str) -> SyncOutcome:
        """Sync one source now; failures are recorded and returned, not raised."""
        spec = self._sources.get(source)
        if spec is None:
            raise UnknownSource(source)
        async with self._locks[source]:
            started = time.monotonic()
            try:
                outcome = await self._sync(spec, started)
            except SyncError as e:
                outcome = await self._failed(spec, started, e.message)
            except psycopg.Error as e:  # the database refused the write, or is away
                primary = e.diag.message_primary if e.diag else None
                outcome = await self._failed(spec, started, f"database error: {primary or e}")
            except asyncio.CancelledError:  # serve stops: say so, briefly, then stop
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self._interrupted(source)), 2)
                raise
        if self.on_sync is not None:
            self.on_sync(source, outcome.result, outcome.seconds)
        return outcome

    async def _source_id(self, name: str) -> uuid.UUID:
        if name not in self._ids:
            async with self.pool.connection() as conn, conn.transaction():
                row = await q.source_by_name(conn, name=name)
            if row is None:
                raise UnknownSource(name)
            self._ids[name] = row.id
        return self._ids[name]

    async def _sync(self, spec: SourceSpec, started: float) -> SyncOutcome:
        source_id = await self._source_id(spec.name)
        async with self.pool.connection() as conn:
            async with conn.transaction():
                await status.begin(conn, source_id)
            async with conn.transaction():
                before = await status.read_by_id(conn, source_id)
        fetched = await self._fetchers.fetch(spec)
        wanted_filter = filter_hash(spec.filter)
        if (
            before is not None
            and before.last_sync_hash == fetched.sha256
            and before.filter_hash == wanted_filter
        ):
            message = status.summary(before.counts) + "; unchanged since the last sync"
            async with self.pool.connection() as conn, conn.transaction():
                await status.complete(
                    conn,
                    source_id,
                    sha256=fetched.sha256,
                    filter_hash=wanted_filter,
                    counts=before.counts,
                    message=message,
                )
            self._fetchers.succeeded(spec, fetched)
            return SyncOutcome(
                spec.name, UNCHANGED, time.monotonic() - started, message, before.counts
            )
        with gc_paused():
            return await self._write(spec, source_id, fetched, wanted_filter, started)

    async def _write(
        self,
        spec: SourceSpec,
        source_id: uuid.UUID,
        fetched: Fetched,
        wanted_filter: str | None,
        started: float,
    ) -> SyncOutcome:
        try:
            data = await asyncio.to_thread(
                parse, spec.name, fetched.origin, fetched.data, spec.filter,
                max_meta_size=self._max_meta,
            )  # fmt: skip
        except InvalidEntry as e:  # where the source has it (an api source: page, position)
            raise self._fetchers.locate(fetched, e) from None
        claims = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.claims.items()}
        async with self.pool.connection() as conn, conn.transaction():
            await q.lock_source(conn, source_id=source_id)
            result = await writer.write(
                conn, source_id, data, claims=claims or None,
                removed=self._fetchers.removed(fetched),
            )  # fmt: skip
            counts = status.Counts(
                result.servers, result.skills, result.versions, data.plugins_skipped
            )
            message = status.summary(counts)
            await status.complete(
                conn,
                source_id,
                sha256=fetched.sha256,
                filter_hash=wanted_filter,
                counts=counts,
                message=message,
            )
        self._fetchers.succeeded(spec, fetched)
        return SyncOutcome(
            spec.name, SYNCED, time.monotonic() - started, message, counts,
            result.changed, result.deleted,
        )  # fmt: skip

    async def _interrupted(self, source: str) -> None:
        if source in self._ids:
            async with self.pool.connection() as conn, conn.transaction():
                await status.interrupted(conn, self._ids[source])

    async def _failed(self, spec: SourceSpec, started: float, message: str) -> SyncOutcome:
        log.warning("sync of source %s failed: %s", spec.name, message)
        try:
            source_id = await self._source_id(spec.name)
            async with self.pool.connection() as conn, conn.transaction():
                await status.fail(conn, source_id, message)
        except (psycopg.Error, SyncError) as e:
            log.warning("cannot record the failed sync of %s: %s", spec.name, e)
        return SyncOutcome(spec.name, FAILED, time.monotonic() - started, message)
