"""Retrying a database transaction that lost a conflict: serialization failures and deadlocks.

PostgreSQL aborts one of two transactions that deadlock (SQLSTATE 40P01) or that cannot be
serialized (40001); the aborted one did nothing and may simply run again. :func:`retrying`
runs the whole transaction again (the caller's ``body`` opens it) with a growing, jittered
pause, a few times; any other error, and the last conflict, goes to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from psycopg import errors

__all__ = ["RETRYABLE", "retrying", "ATTEMPTS"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the errors after which the same transaction may run again
RETRYABLE = (errors.SerializationFailure, errors.DeadlockDetected)
ATTEMPTS = 5  #: runs of a transaction at most
FIRST_PAUSE_S = 0.05  #: then 0.1, 0.2, 0.4 (each ±50%)


async def retrying(body: Callable[[], Awaitable[T]], what: str, *, attempts: int = ATTEMPTS) -> T:
    """``await body()``, again after a serialization failure or a deadlock (``what`` names the
    transaction in the log); at most ``attempts`` runs."""
    for attempt in range(1, attempts + 1):
        try:
            return await body()
        except RETRYABLE as e:
            if attempt == attempts:
                raise
            pause = FIRST_PAUSE_S * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            log.info(
                "%s: %s (SQLSTATE %s); running it again in %.2f s (attempt %d of %d)",
                what, e.diag.message_primary or type(e).__name__, e.sqlstate, pause,
                attempt + 1, attempts,
            )  # fmt: skip
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover
