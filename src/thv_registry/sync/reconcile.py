"""Start-up reconciliation: the config's sources and registries written in one transaction.

Config sources are upserted by name (kind, settings, filter, schedule, claims; an entry's
claims follow its source's), each config registry gets exactly its configured sources at
positions 0, 1, ... (list order is priority), and config registries and sources that are no
longer in the config are removed, the sources with their entries (single replica: the config
of this process is the truth). Sources and registries created through the API are left alone;
a config name that clashes with one is refused (:class:`ReconcileConflict`).

SQL here rather than in ``database/queries/``: the generated query functions are synchronous;
move these when ``task gen`` emits async ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from thv_registry.sync.settings import SourceSpec, SyncSettings
from thv_registry.sync.upstream import FilterSpec

__all__ = ["ReconcileConflict", "SourceInUse", "reconcile", "SYNCED_KINDS"]

#: the source kinds this edition syncs
SYNCED_KINDS = frozenset({"file"})


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


_UPSERT_SOURCE = """
INSERT INTO source (name, source_type, creation_type, source_config, filter_config, syncable,
                    sync_schedule, claims)
VALUES (%(name)s, %(kind)s, 'CONFIG', %(config)s, %(filter)s, %(syncable)s, %(schedule)s,
        %(claims)s)
ON CONFLICT (name) DO UPDATE SET
    source_type = EXCLUDED.source_type, source_config = EXCLUDED.source_config,
    filter_config = EXCLUDED.filter_config, syncable = EXCLUDED.syncable,
    sync_schedule = EXCLUDED.sync_schedule, claims = EXCLUDED.claims, updated_at = now()
WHERE source.creation_type = 'CONFIG'
  AND (source.source_type, source.source_config, source.filter_config, source.syncable,
       source.sync_schedule, source.claims)
      IS DISTINCT FROM
      (EXCLUDED.source_type, EXCLUDED.source_config, EXCLUDED.filter_config, EXCLUDED.syncable,
       EXCLUDED.sync_schedule, EXCLUDED.claims)
RETURNING id
"""
#: one reconciliation at a time: replicas starting together would otherwise re-link the same
#: registry concurrently (a key violation); an arbitrary constant distinct from the migration lock
RECONCILE_LOCK_KEY = 0x7468_7672_7263_6E31  # "thvrrcn1"
_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_SOURCE_ID = "SELECT id, creation_type::text FROM source WHERE name = %s"
_PROPAGATE_CLAIMS = """
UPDATE registry_entry e SET claims = s.claims, updated_at = now()
  FROM source s
 WHERE e.source_id = s.id AND s.id = %s AND e.claims IS DISTINCT FROM s.claims
"""
_UPSERT_REGISTRY = """
INSERT INTO registry (name, creation_type, claims) VALUES (%s, 'CONFIG', %s)
ON CONFLICT (name) DO UPDATE SET claims = EXCLUDED.claims, updated_at = now()
WHERE registry.creation_type = 'CONFIG' AND registry.claims IS DISTINCT FROM EXCLUDED.claims
RETURNING id
"""
_REGISTRY_ID = "SELECT id, creation_type::text FROM registry WHERE name = %s"
_UNLINK = "DELETE FROM registry_source WHERE registry_id = %(registry)s"
_LINK = """
INSERT INTO registry_source (registry_id, source_id, position)
SELECT %(registry)s, t.source_id, t.position - 1
  FROM unnest(%(sources)s::uuid[]) WITH ORDINALITY AS t(source_id, position)
"""
_DROP_REGISTRIES = """
DELETE FROM registry WHERE creation_type = 'CONFIG' AND NOT (name = ANY(%s::text[]))
"""
_STILL_USED = """
SELECT s.name, r.name FROM source s
  JOIN registry_source rs ON rs.source_id = s.id JOIN registry r ON r.id = rs.registry_id
 WHERE s.creation_type = 'CONFIG' AND NOT (s.name = ANY(%s::text[]))
 ORDER BY s.name, r.name LIMIT 1
"""
_DROP_SOURCES = """
DELETE FROM source WHERE creation_type = 'CONFIG' AND NOT (name = ANY(%s::text[]))
"""


def _claims(claims: Mapping[str, str | tuple[str, ...]]) -> Jsonb | None:
    if not claims:
        return None
    return Jsonb({k: list(v) if isinstance(v, tuple) else v for k, v in claims.items()})


def _filter(spec: FilterSpec | None) -> Jsonb | None:
    if spec is None:
        return None
    doc: dict[str, Any] = {}
    for part in ("names", "tags"):
        p = getattr(spec, part)
        if p is not None:
            doc[part] = {"include": list(p.include), "exclude": list(p.exclude)}
    return Jsonb(doc) if doc else None


def _config(source: SourceSpec) -> Jsonb | None:
    if source.file is None:
        return None
    f = source.file
    doc: dict[str, Any] = {k: v for k, v in (("path", f.path), ("url", f.url)) if v is not None}
    if f.data is not None:
        doc["data"] = f"<{len(f.data)} characters inline>"
    doc["timeout"] = f"{f.timeout.total_seconds():g}s"
    return Jsonb(doc)


async def reconcile(conn: AsyncConnection[Any], settings: SyncSettings) -> dict[str, uuid.UUID]:
    """Write the config's sources and registries in one transaction; return source ids."""
    ids: dict[str, uuid.UUID] = {}
    async with conn.transaction():
        await conn.execute(_LOCK, (RECONCILE_LOCK_KEY,))
        for source in settings.sources:
            schedule = source.sync_policy.interval if source.sync_policy else None
            params = {
                "name": source.name,
                "kind": source.kind,
                "config": _config(source),
                "filter": _filter(source.filter),
                "syncable": source.kind in SYNCED_KINDS and schedule is not None,
                "schedule": schedule,
                "claims": _claims(source.claims),
            }
            await conn.execute(_UPSERT_SOURCE, params)
            cur = await conn.execute(_SOURCE_ID, (source.name,))
            row = await cur.fetchone()
            assert row is not None
            if row[1] != "CONFIG":
                raise ReconcileConflict("source", source.name)
            ids[source.name] = row[0]
            await conn.execute(_PROPAGATE_CLAIMS, (row[0],))
        for registry in settings.registries:
            await conn.execute(_UPSERT_REGISTRY, (registry.name, _claims(registry.claims)))
            cur = await conn.execute(_REGISTRY_ID, (registry.name,))
            row = await cur.fetchone()
            assert row is not None
            if row[1] != "CONFIG":
                raise ReconcileConflict("registry", registry.name)
            link = {"registry": row[0], "sources": [ids[s] for s in registry.sources]}
            await conn.execute(_UNLINK, link)
            await conn.execute(_LINK, link)
        await conn.execute(_DROP_REGISTRIES, ([r.name for r in settings.registries],))
        cur = await conn.execute(_STILL_USED, (list(ids),))
        if used := await cur.fetchone():
            raise SourceInUse(used[0], used[1])
        await conn.execute(_DROP_SOURCES, (list(ids),))
    return ids
