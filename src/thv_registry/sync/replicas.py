"""Replicas on one database: heartbeats, the configuration fingerprint, and mismatches.

Replicas of one deployment share one configuration. Each running replica records a heartbeat
in ``sync_replica`` with the fingerprint of its ``sources:`` and ``registries:`` blocks (the
sha256 of their canonical JSON) and the names of its sources. Live replicas (heartbeat not
expired) with different fingerprints are a *mismatch*: each of them reports it on every poll
(a warning in the log, the ``registry_config_mismatch`` gauge, a line in ``sources``), and no
replica deletes a configured source or registry that is missing from its own configuration
while the mismatch lasts (:mod:`.reconcile`): serving goes on, nothing is destroyed.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

import msgspec
from psycopg import AsyncConnection

from thv_registry.queries.aio import coordinator as q
from thv_registry.sync.settings import SyncSettings

__all__ = [
    "Replica",
    "fingerprint",
    "replica_id",
    "heartbeat",
    "forget",
    "live",
    "others",
    "ttl",
]


@dataclass(frozen=True)
class Replica:
    replica: str  #: host:pid:random (also its lease holder name)
    fingerprint: str
    sources: tuple[str, ...]
    started_at: datetime.datetime
    heartbeat_at: datetime.datetime


def replica_id() -> str:
    """A name for this process among the replicas: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _plain(value: Any) -> Any:
    try:
        return msgspec.to_builtins(value)
    except TypeError:  # a stand-in that is not a msgspec Struct
        return repr(value)


def fingerprint(settings: SyncSettings) -> str:
    """The sha256 of the sources and registries blocks as canonical JSON."""
    doc = {
        "sources": [_plain(s) for s in settings.sources],
        "registries": [_plain(r) for r in settings.registries],
    }
    return hashlib.sha256(msgspec.json.encode(doc, order="sorted")).hexdigest()


def ttl(poll: datetime.timedelta) -> datetime.timedelta:
    """How long a heartbeat keeps a replica live: three polls, at least 10 s."""
    return max(poll * 3, datetime.timedelta(seconds=10))


async def heartbeat(
    conn: AsyncConnection[Any],
    replica: str,
    fingerprint: str,
    sources: list[str],
    lasts: datetime.timedelta,
) -> None:
    """Record that ``replica`` is alive for ``lasts`` more; forget expired replicas."""
    await q.prune_replicas(conn)
    await q.heartbeat(conn, replica=replica, fingerprint=fingerprint, sources=sources, ttl=lasts)


async def forget(conn: AsyncConnection[Any], replica: str) -> None:
    await q.forget_replica(conn, replica=replica)


async def live(conn: AsyncConnection[Any]) -> list[Replica]:
    """The live replicas, oldest first."""
    return [
        Replica(r.replica, r.config_fingerprint, tuple(r.sources), r.started_at, r.heartbeat_at)
        for r in await q.live_replicas(conn)
    ]


def others(replicas: list[Replica], fingerprint: str) -> list[Replica]:
    """The replicas among ``replicas`` whose configuration differs from ``fingerprint``."""
    return [r for r in replicas if r.fingerprint != fingerprint]
