"""The server's async connection pool (``psycopg_pool``), as the application user.

Sizing follows the Go edition's keys: ``maxOpenConns`` is the most connections open at once
(default ``max(4, cpus)``, like pgxpool), ``maxIdleConns`` the connections kept open while idle
(pgxpool's MinConns), ``connMaxLifetime`` how long one connection lives before it is replaced.
``serve``'s sync process has a pool of its own besides (``thv-registry-api sync`` in
``pg_stat_activity``; at most 3 connections, see :mod:`thv_registry.sync.process`).
The first connection is opened with :func:`thv_registry.db.connect.connect`, so a wrong host or
password fails at start-up with the same explanation the migration commands give.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from thv_registry.config import ConnectionParams

__all__ = ["PoolSizing", "open_pool", "APPLICATION_NAME"]

APPLICATION_NAME = "thv-registry-api serve"
_LIFETIME_DEFAULT_S = 3600.0  #: psycopg_pool's own default


@dataclass(frozen=True)
class PoolSizing:
    """How many connections, and for how long."""

    max_size: int
    min_size: int
    max_lifetime_s: float

    @classmethod
    def from_settings(
        cls,
        max_open_conns: int | None,
        max_idle_conns: int | None,
        conn_max_lifetime: timedelta | None,
    ) -> PoolSizing:
        """The Go edition's meaning of the three ``database:`` keys (0 or unset: default)."""
        max_size = max_open_conns or max(4, os.cpu_count() or 1)
        min_size = min(max_idle_conns or 1, max_size)
        lifetime = conn_max_lifetime.total_seconds() if conn_max_lifetime else 0.0
        return cls(max_size, min_size, lifetime if lifetime > 0 else _LIFETIME_DEFAULT_S)


async def open_pool(
    params: ConnectionParams,
    sizing: PoolSizing,
    *,
    timeout_s: float = 30.0,
    application_name: str = APPLICATION_NAME,
) -> AsyncConnectionPool[Any]:
    """Check that ``params`` can connect, then open the pool with its first connections (named
    ``application_name`` in ``pg_stat_activity``)."""
    from psycopg_pool import AsyncConnectionPool

    from thv_registry.db.connect import connect

    def probe() -> None:
        connect(params, application_name=application_name).close()

    await asyncio.to_thread(probe)  # raises ConnectionFailed with the usual explanation
    kwargs: dict[str, Any] = dict(params.connect_kwargs())
    kwargs["application_name"] = application_name
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        "",
        kwargs=kwargs,
        min_size=sizing.min_size,
        max_size=sizing.max_size,
        max_lifetime=sizing.max_lifetime_s,
        timeout=timeout_s,
        name="thv-registry",
        open=False,
    )
    await pool.open(wait=True, timeout=timeout_s)
    return pool
