"""Start-up reconciliation: the config's sources and registries written in one transaction.

Config sources are upserted by name (kind, settings, filter, schedule, claims; an entry's
claims follow its source's), each config registry gets exactly its configured sources at
positions 0, 1, ... (list order is priority), and every syncable source gets its status row.
Config registries and sources that are no longer in the config are removed, the sources with
their entries, only when every live replica runs the same configuration (:mod:`.replicas`):
while another live replica's fingerprint differs, nothing is deleted (:attr:`Reconciled.held`
names those replicas); the sync reconciles again once they agree. Sources and
registries created through the API are left alone; a config name that clashes with one is
refused (:class:`ReconcileConflict`).

The SQL is in ``database/queries/sync.sql`` (LockReconcile to DropConfigSources), called through
the generated coroutines of ``queries.aio.sync``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

from thv_registry.queries.aio import coordinator as cq
from thv_registry.queries.aio import sync as q
from thv_registry.redact import mask_url
from thv_registry.registry.generation import bump_catalog
from thv_registry.sync import replicas
from thv_registry.sync.settings import SourceSpec, SyncSettings
from thv_registry.sync.upstream import FilterSpec

__all__ = [
    "ReconcileConflict",
    "SourceInUse",
    "Reconciled",
    "reconcile",
    "SYNCED_KINDS",
]

#: the source kinds this edition syncs
SYNCED_KINDS = frozenset({"file", "git", "api"})


class ReconcileConflict(Exception):
    """A config source or registry clashes with one created through the API."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(
            f"the config's {kind} {name!r} has the name of a {kind} created through the API"
        )
        self.kind = kind
        self.name = name


class SourceInUse(Exception):
    """A config source left the config but a registry created through the API still uses it."""

    def __init__(self, source: str, registry: str) -> None:
        super().__init__(
            f"the source {source!r} is no longer in the config, but the registry {registry!r}"
            " (created through the API) still uses it"
        )
        self.source = source
        self.registry = registry


#: one reconciliation at a time: replicas starting together would otherwise re-link the same
#: registry concurrently (a key violation); an arbitrary constant distinct from the migration lock
RECONCILE_LOCK_KEY = 0x7468_7672_7263_6E31  # "thvrrcn1"


def _claims(claims: Mapping[str, str | tuple[str, ...]]) -> dict[str, Any] | None:
    if not claims:
        return None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in claims.items()}


def _filter(spec: FilterSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    doc: dict[str, Any] = {}
    for part in ("names", "tags"):
        p = getattr(spec, part)
        if p is not None:
            doc[part] = {"include": list(p.include), "exclude": list(p.exclude)}
    return doc or None


def _config(source: SourceSpec) -> dict[str, Any] | None:
    if source.git is not None:
        g = source.git
        ref = {k: v for k, v in (("branch", g.branch), ("tag", g.tag), ("commit", g.commit)) if v}
        return {"repository": mask_url(g.repository), **ref, "path": g.path}
    if source.api is not None:
        return {"endpoint": mask_url(source.api.endpoint)}
    if source.file is None:
        return None
    f = source.file
    doc: dict[str, Any] = {k: v for k, v in (("path", f.path), ("url", f.url)) if v is not None}
    if f.data is not None:
        doc["data"] = f"<{len(f.data)} characters inline>"
    doc["timeout"] = f"{f.timeout.total_seconds():g}s"
    return doc


@dataclass(frozen=True)
class Reconciled:
    ids: dict[str, uuid.UUID]  #: the config's sources by name
    #: live replicas with another configuration: nothing missing from ours was deleted
    held: tuple[replicas.Replica, ...] = field(default=())


async def reconcile(
    conn: AsyncConnection[Any], settings: SyncSettings, *, fingerprint: str | None = None
) -> Reconciled:
    """Write the config's sources and registries in one transaction; deletions only when no
    live replica's configuration differs from ``fingerprint`` (None: this one's)."""
    fingerprint = fingerprint or replicas.fingerprint(settings)
    ids: dict[str, uuid.UUID] = {}
    async with conn.transaction():
        await q.lock_reconcile(conn, lock_key=RECONCILE_LOCK_KEY)
        for source in settings.sources:
            schedule = source.sync_policy.interval if source.sync_policy else None
            await q.upsert_config_source(
                conn,
                name=source.name,
                source_type=source.kind,  # type: ignore[arg-type]
                source_config=_config(source),
                filter_config=_filter(source.filter),
                syncable=source.kind in SYNCED_KINDS and schedule is not None,
                sync_schedule=schedule,
                claims=_claims(source.claims),
            )
            row = await q.source_by_name(conn, name=source.name)
            assert row is not None
            if row.creation_type != "CONFIG":
                raise ReconcileConflict("source", source.name)
            ids[source.name] = row.id
            await q.propagate_source_claims(conn, source_id=row.id)
        for registry in settings.registries:
            await q.upsert_config_registry(
                conn, name=registry.name, claims=_claims(registry.claims)
            )
            found = await q.registry_by_name(conn, name=registry.name)
            assert found is not None
            if found.creation_type != "CONFIG":
                raise ReconcileConflict("registry", registry.name)
            await q.unlink_registry(conn, registry_id=found.id)
            await q.link_registry_sources(
                conn, registry_id=found.id, source_ids=[ids[s] for s in registry.sources]
            )
        await cq.ensure_sync_rows(conn)
        held = await _drop(conn, settings, fingerprint)
        await bump_catalog(conn)  # sources, registries, order, claims: the API's caches move
    return Reconciled(ids, held)


async def _drop(
    conn: AsyncConnection[Any], settings: SyncSettings, fingerprint: str
) -> tuple[replicas.Replica, ...]:
    """Remove config registries and sources missing from ``settings`` unless a live replica
    runs another configuration (then return those replicas and remove nothing)."""
    held = tuple(replicas.others(await replicas.live(conn), fingerprint))
    if held:
        return held
    keep = [s.name for s in settings.sources]
    await q.drop_config_registries(conn, keep_names=[r.name for r in settings.registries])
    if used := await q.source_still_used(conn, keep_names=keep):
        raise SourceInUse(used.source_name, used.registry_name)
    await q.drop_config_sources(conn, keep_names=keep)
    return ()
