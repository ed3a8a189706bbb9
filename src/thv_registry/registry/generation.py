"""Generations: what tells two snapshots apart for the API's response cache.

The rule (migration 000011): every transaction that changes what the API serves moves a
counter in the same transaction, so two snapshots that see the same counters serve the same
bytes. The sync writer moves its source's ``source.data_version`` when it writes rows
(:func:`bump_source`); reconciliation, which writes sources, registries, their order and
claims, and deletes sources, moves ``catalog_version`` (:func:`bump_catalog`). A registry's
generation is the catalog version with the data versions of its sources, one text value
(:data:`GENERATION`). :data:`SERVED_TABLES` are the tables the store reads; a write to one of
them belongs in a transaction that bumps (tests/test_api_cache_rule.py checks the code for it).
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

__all__ = [
    "GENERATION",
    "SERVED_TABLES",
    "GenerationProbe",
    "bump_catalog",
    "bump_source",
    "current_probe",
    "probe",
]

#: The tables whose rows the store's queries read (registry/store.py, queries/{servers,skills}).
SERVED_TABLES = frozenset(
    {
        "registry",
        "registry_source",
        "source",
        "registry_entry",
        "entry_version",
        "latest_entry_version",
        "mcp_server",
        "mcp_server_package",
        "mcp_server_remote",
        "mcp_server_icon",
        "skill",
        "skill_oci_package",
        "skill_git_package",
    }
)

#: A registry's generation (``%s``: its name): ``catalog:source=version,...``, sources by id.
#: An unknown registry gets ``catalog:`` (nothing is cached for it: its reads answer 404).
GENERATION = """
SELECT (SELECT version FROM catalog_version)::text || ':' || coalesce(
    string_agg(s.id::text || '=' || s.data_version::text, ',' ORDER BY s.id), '')
FROM registry r
JOIN registry_source rs ON rs.registry_id = r.id
JOIN source s ON s.id = rs.source_id
WHERE r.name = %s
"""

_BUMP_SOURCE = "UPDATE source SET data_version = data_version + 1 WHERE id = %s"
_BUMP_CATALOG = "UPDATE catalog_version SET version = version + 1"


async def bump_source(conn: AsyncConnection[Any], source_id: uuid.UUID) -> None:
    """Move ``source_id``'s data version; inside the transaction that writes its rows."""
    await conn.execute(_BUMP_SOURCE, (source_id,))


async def bump_catalog(conn: AsyncConnection[Any]) -> None:
    """Move the catalog version; inside the transaction that writes sources or registries."""
    await conn.execute(_BUMP_CATALOG)


@dataclass(slots=True)
class GenerationProbe:
    """Asks the store's snapshots in this task for ``registry``'s generation (``value``)."""

    registry: str
    value: str | None = None


_PROBE: contextvars.ContextVar[GenerationProbe | None] = contextvars.ContextVar(
    "thv_registry_generation_probe", default=None
)


@contextmanager
def probe(registry: str) -> Iterator[GenerationProbe]:
    """While open, each snapshot the store reads in this task also reads ``registry``'s
    generation in the same snapshot (the probe holds the last one read)."""
    asked = GenerationProbe(registry)
    token = _PROBE.set(asked)
    try:
        yield asked
    finally:
        _PROBE.reset(token)


def current_probe() -> GenerationProbe | None:
    """The probe open in this task, if any (the store's snapshot asks)."""
    return _PROBE.get()
