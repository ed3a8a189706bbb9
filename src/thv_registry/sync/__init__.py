"""The sync: sources (file, git, upstream API) into the database, one transaction each.

:class:`SyncService` is what ``serve`` uses: :meth:`~SyncService.reconcile` at start-up,
:meth:`~SyncService.run` as the poll loop (:mod:`.coordinator`) and the replica's heartbeat
(:mod:`.replicas`), :meth:`~SyncService.sync_now` for one source. Each sync runs under a lease
(:mod:`.lease`), claimed in a short transaction and renewed while the sync runs, so replicas
sharing the database sync each due source once. A sync fetches the bytes (no database
connection held), records only a check when their sha256 and the filter are those of the last
good sync, else validates every entry (:mod:`.upstream`) and writes the source in one
transaction (:mod:`.writer`) together with its status (:mod:`.status`), retried after a
serialization failure or a deadlock (:mod:`.retry`). A failure keeps the old data, counts the
attempt, backs off and says why.
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
from thv_registry.sync import replicas, status, writer
from thv_registry.sync.coordinator import every, run_loop
from thv_registry.sync.errors import InvalidEntry, SyncError, UnknownSource
from thv_registry.sync.fetchers import Fetchers
from thv_registry.sync.file_source import Fetched
from thv_registry.sync.gcpause import gc_paused
from thv_registry.sync.gilshare import short_switches
from thv_registry.sync.lease import (
    Lease,
    LeaseLost,
    claim,
    claim_due,
    end_attempt,
    hold,
    holder_of,
    renewing,
)
from thv_registry.sync.reconcile import (
    SYNCED_KINDS,
    ReconcileConflict,
    SourceInUse,
    reconcile,
)
from thv_registry.sync.retry import retrying
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

#: results reported to ``on_sync`` and in :class:`SyncOutcome`; BUSY: another replica holds
#: the source (nothing was done), LOST: its lease was taken over (nothing recorded)
SYNCED, UNCHANGED, FAILED, BUSY, LOST = "synced", "unchanged", "failed", "busy", "lost"


@dataclass(frozen=True)
class SyncOutcome:
    source: str
    result: str  #: SYNCED, UNCHANGED, FAILED, BUSY or LOST
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
        on_mismatch: Callable[[bool], None] | None = None,
        cache_dir: Path | None = None,
        holder: str | None = None,
        deletions_held: bool = False,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.on_sync = on_sync
        self.on_mismatch = on_mismatch  #: told on every heartbeat whether configs differ
        #: this replica's name (lease holder); the sync process of ``serve`` takes its parent's
        self.holder = holder or replicas.replica_id()
        self.fingerprint = replicas.fingerprint(settings)
        server = settings.server
        self._poll, self._lease = server.sync_poll_interval, server.sync_lease
        self._backoff_max = server.sync_backoff_max
        #: reconcile left sources another config names (given: a reconcile made elsewhere)
        self._deletions_held = deletions_held
        self._fetchers = Fetchers(cache_dir)
        self._sources: dict[str, SourceSpec] = {
            s.name: s for s in settings.sources if s.kind in SYNCED_KINDS
        }
        self._ids: dict[str, uuid.UUID] = {}
        self._locks: dict[str, asyncio.Lock] = {n: asyncio.Lock() for n in self._sources}
        db = settings.database
        self._max_meta = db.max_meta_size if db is not None else DEFAULT_MAX_META_SIZE

    async def reconcile(self) -> None:
        """Announce this replica, then write the config's sources and registries (one
        transaction; deletions only while every live replica runs this configuration)."""
        async with self.pool.connection() as conn:
            async with conn.transaction():
                await self._heartbeat(conn)
            done = await reconcile(conn, self.settings, fingerprint=self.fingerprint)
        self._ids = done.ids
        self._deletions_held = bool(done.held)
        self._report(list(done.held))

    @property
    def deletions_held(self) -> bool:
        """The last reconcile kept sources or registries that another replica's config names."""
        return self._deletions_held

    async def run(self, stop: asyncio.Event) -> None:
        """Sync due sources every ``server.sync_poll_interval`` until ``stop`` is set; beat
        the replica's heartbeat meanwhile; forget the replica at the end."""
        names = sorted(n for n, s in self._sources.items() if s.sync_policy is not None)

        async def claim_next() -> tuple[Lease, str] | None:
            return await claim_due(self.pool, names, self.holder, self._lease) if names else None

        async def sync_claimed(claimed: tuple[Lease, str]) -> None:
            lease, name = claimed
            async with self._locks[name]:
                await self._run(self._sources[name], lease)

        try:
            await asyncio.gather(
                run_loop(claim_next, sync_claimed, self._poll, stop),
                every(self._poll, self._beat, stop),
            )
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.close()), 2)

    async def close(self) -> None:
        """Forget this replica (it stops): its configuration no longer counts."""
        async with self.pool.connection() as conn, conn.transaction():
            await replicas.forget(conn, self.holder)

    async def sync_now(self, source: str) -> SyncOutcome:
        """Sync one source now (due or not); failures are recorded and returned, not raised.
        Another replica holding the source: result BUSY, nothing done."""
        spec = self._sources.get(source)
        if spec is None:
            raise UnknownSource(source)
        source_id = await self._source_id(source)
        async with self._locks[source]:  # a lease this replica holds now is a stale one
            claimed = await claim(self.pool, source_id, self.holder, self._lease)
            if claimed is None:
                holder = await holder_of(self.pool, source_id)
                message = f"replica {holder or '(another)'} syncs it now"
                return SyncOutcome(source, BUSY, 0.0, message)
            return await self._run(spec, claimed)

    async def _run(self, spec: SourceSpec, lease: Lease) -> SyncOutcome:
        """Sync a claimed source (its local lock held), renewing its lease meanwhile; record
        how it ended."""
        started = time.monotonic()
        body = asyncio.create_task(self._sync(spec, lease, started))
        lost: list[str | None] = []

        def on_lost(holder: str | None) -> None:
            lost.append(holder)
            body.cancel()

        try:
            async with renewing(self.pool, lease, self._lease, on_lost):
                try:
                    outcome = await body
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if not lost or (current is not None and current.cancelling()):
                        raise
                    raise LeaseLost(spec.name, lost[0]) from None
        except LeaseLost as e:
            log.warning("sync of source %s abandoned: %s", spec.name, e.message)
            outcome = SyncOutcome(spec.name, LOST, time.monotonic() - started, e.message)
        except SyncError as e:
            outcome = await self._failed(spec, lease, started, e.message)
        except psycopg.Error as e:  # the database refused the write, or is away
            primary = e.diag.message_primary if e.diag else None
            message = f"database error: {primary or e}"
            outcome = await self._failed(spec, lease, started, message)
        except asyncio.CancelledError:  # serve stops: say so, briefly, then stop
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._interrupted(lease)), 2)
            raise
        if self.on_sync is not None:
            self.on_sync(spec.name, outcome.result, outcome.seconds)
        return outcome

    async def _heartbeat(self, conn: psycopg.AsyncConnection[Any]) -> None:
        names = [s.name for s in self.settings.sources]
        await replicas.heartbeat(
            conn, self.holder, self.fingerprint, names, replicas.ttl(self._poll)
        )

    async def _beat(self) -> None:
        """The heartbeat of each poll: say the mismatch if there is one; once every live
        replica agrees, make the deletions the start-up reconciliation held back."""
        try:
            async with self.pool.connection() as conn:
                async with conn.transaction():
                    await self._heartbeat(conn)
                    others = replicas.others(await replicas.live(conn), self.fingerprint)
                if self._deletions_held and not others:  # reconcile again, deletions too
                    done = await reconcile(conn, self.settings, fingerprint=self.fingerprint)
                    others = list(done.held)
                    self._deletions_held = bool(others)
                    if not others:
                        log.info("sync: every replica runs this configuration now; sources and"
                                 " registries it no longer names were removed")  # fmt: skip
            self._report(others)
        except Exception as e:  # the database may be restarting: the next beat tries again
            log.warning("sync: heartbeat failed: %s", e)

    def _report(self, others: list[replicas.Replica]) -> None:
        if others:
            shown = ", ".join(f"{r.replica} ({r.fingerprint[:12]})" for r in others)
            log.warning(
                "configuration mismatch: replicas %s run other sources/registries than this"
                " one (%s); replicas on one database must share one configuration. Serving goes"
                " on; no configured source or registry is deleted until they agree.",
                shown, self.fingerprint[:12],
            )  # fmt: skip
        if self.on_mismatch is not None:
            self.on_mismatch(bool(others))

    async def _source_id(self, name: str) -> uuid.UUID:
        if name not in self._ids:
            async with self.pool.connection() as conn, conn.transaction():
                row = await q.source_by_name(conn, name=name)
            if row is None:
                raise UnknownSource(name)
            self._ids[name] = row.id
        return self._ids[name]

    async def _sync(self, spec: SourceSpec, lease: Lease, started: float) -> SyncOutcome:
        source_id = lease.source_id
        async with self.pool.connection() as conn, conn.transaction():
            before = await status.read_by_id(conn, source_id)
        fetched = await self._fetchers.fetch(spec)
        wanted_filter = filter_hash(spec.filter)
        if (
            before is not None
            and before.last_sync_hash == fetched.sha256
            and before.filter_hash == wanted_filter
        ):
            message = status.summary(before.counts) + "; unchanged since the last sync"
            counts = before.counts

            async def checked() -> None:
                async with self.pool.connection() as conn, conn.transaction():
                    if not await status.complete(
                        conn, lease, sha256=fetched.sha256, filter_hash=wanted_filter,
                        counts=counts, message=message,
                    ):  # fmt: skip
                        raise LeaseLost(spec.name, None)
                    await end_attempt(conn, lease, UNCHANGED, message)

            await retrying(checked, f"recording the check of source {spec.name}")
            self._fetchers.succeeded(spec, fetched)
            return SyncOutcome(
                spec.name, UNCHANGED, time.monotonic() - started, message, before.counts
            )
        with gc_paused():
            return await self._write(spec, lease, fetched, wanted_filter, started)

    async def _write(
        self,
        spec: SourceSpec,
        lease: Lease,
        fetched: Fetched,
        wanted_filter: str | None,
        started: float,
    ) -> SyncOutcome:
        try:
            with short_switches():  # the loop gets the GIL back quickly: reads stay fast
                data = await asyncio.to_thread(
                    parse, spec.name, fetched.origin, fetched.data, spec.filter,
                    max_meta_size=self._max_meta,
                )  # fmt: skip
        except InvalidEntry as e:  # where the source has it (an api source: page, position)
            raise self._fetchers.locate(fetched, e) from None
        claims = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.claims.items()}

        async def write() -> tuple[writer.WriteResult, status.Counts, str]:
            async with self.pool.connection() as conn, conn.transaction():
                await hold(conn, lease, spec.name)  # the status row, locked until the commit
                await q.lock_source(conn, source_id=lease.source_id)
                result = await writer.write(
                    conn, lease.source_id, data, claims=claims or None,
                    removed=self._fetchers.removed(fetched),
                )  # fmt: skip
                counts = status.Counts(
                    result.servers, result.skills, result.versions, data.plugins_skipped
                )
                message = status.summary(counts)
                await status.complete(
                    conn, lease, sha256=fetched.sha256, filter_hash=wanted_filter,
                    counts=counts, message=message,
                )  # fmt: skip
                await end_attempt(conn, lease, SYNCED, message)
            return result, counts, message

        result, counts, message = await retrying(write, f"writing source {spec.name}")
        self._fetchers.succeeded(spec, fetched)
        return SyncOutcome(
            spec.name, SYNCED, time.monotonic() - started, message, counts,
            result.changed, result.deleted,
        )  # fmt: skip

    async def _interrupted(self, lease: Lease) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            if await status.interrupted(conn, lease):
                await end_attempt(conn, lease, "interrupted", status.INTERRUPTED)

    async def _failed(
        self, spec: SourceSpec, lease: Lease, started: float, message: str
    ) -> SyncOutcome:
        log.warning("sync of source %s failed: %s", spec.name, message)

        async def record() -> None:
            async with self.pool.connection() as conn, conn.transaction():
                if await status.fail(conn, lease, message, self._backoff_max):
                    await end_attempt(conn, lease, FAILED, message)

        try:
            await retrying(record, f"recording the failed sync of {spec.name}")
        except psycopg.Error as e:
            log.warning("cannot record the failed sync of %s: %s", spec.name, e)
        return SyncOutcome(spec.name, FAILED, time.monotonic() - started, message)
