"""A step in one transaction with its state update, its own lock_timeout, and retries.

BEGIN carries ``SET LOCAL lock_timeout``, so every attempt has exactly its bound whatever an
earlier step set for the session (unless the file sets one for itself). The bounds escalate, as
GitLab's ``with_lock_retries`` does (:func:`lock_timeout_schedule`): the first attempt waits at
most ``FIRST_LOCK_TIMEOUT_MS``, each retry longer, the last one the configured maximum. While a
step waits for its lock every later query on the table queues behind it, so in the common case
(a short query in the way) other sessions wait a fraction of a second, not the maximum. A step
that cannot get a table lock within its bound is rolled back and retried after a pause (the pause
is when the queries queued behind it get through); the final failure names the sessions holding
the lock, found on the step's own connection once the rollback has taken our request out of the
queue (no extra connection). The server rolls back the open transaction of a session that ends,
so only a connection lost during COMMIT leaves something to check.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from thv_registry.db.connect import server_message
from thv_registry.errors import TableLockTimeout
from thv_registry.migrations.engine.steps import StepRun, is_at

__all__ = [
    "TransactionalStep",
    "RETRY_BACKOFF_S",
    "FIRST_LOCK_TIMEOUT_MS",
    "lock_timeout_schedule",
    "bounds_text",
]

log = logging.getLogger(__name__)

#: pauses between attempts of a step that hit lock_timeout (the last one repeats)
RETRY_BACKOFF_S = (0.5, 1.0, 2.0, 4.0)
#: lock_timeout of a step's first attempt (GitLab's with_lock_retries starts at 100 ms too)
FIRST_LOCK_TIMEOUT_MS = 100


def lock_timeout_schedule(max_ms: int, retries: int) -> tuple[int, ...]:
    """The lock_timeout of each of the ``retries + 1`` attempts, in ms.

    From ``FIRST_LOCK_TIMEOUT_MS`` growing by one factor per retry to ``max_ms`` at the last
    attempt (5000 ms, 3 retries: 100, 368, 1357, 5000), so the step is as patient in the end as
    the configured maximum. A maximum at or below the first bound is used for every attempt; 0
    (no limit) is one attempt's worth: it waits as long as it takes.
    """
    attempts = retries + 1
    if max_ms <= 0:
        return (0,) * attempts
    if retries == 0 or max_ms <= FIRST_LOCK_TIMEOUT_MS:
        return (max_ms,) * attempts
    factor = (max_ms / FIRST_LOCK_TIMEOUT_MS) ** (1 / retries)
    grown = (round(FIRST_LOCK_TIMEOUT_MS * factor**i) for i in range(retries))
    return (*grown, max_ms)


def bounds_text(bounds: tuple[int, ...]) -> str:
    """``200 ms`` (one bound), ``100, 368, 1357, 5000 ms`` (an escalation)."""
    if len(set(bounds)) == 1:
        return f"{bounds[0]} ms"
    return ", ".join(map(str, bounds)) + " ms"


class TransactionalStep(StepRun):
    bound_ms: int = 0  #: lock_timeout of the attempt in progress

    def run(self) -> None:
        import psycopg

        started = time.monotonic()
        retries = self.session.lock_retries
        bounds = lock_timeout_schedule(self.session.lock_timeout_ms, retries)
        for attempt, bound in enumerate(bounds):
            self.bound_ms = bound
            try:
                self._attempt()
                return
            except psycopg.errors.LockNotAvailable as exc:
                # rolled back: our lock request has left the queue, the blockers still hold theirs
                blockers = self._blockers()
                if attempt >= retries:
                    waited = time.monotonic() - started
                    raise self._lock_failure(exc, blockers, waited, bounds) from exc
                pause = RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)]
                log.warning(
                    "%s: a table is locked by another session (lock_timeout %d ms)%s; rolled "
                    "back, retrying in %.1f s with lock_timeout %d ms (%d of %d)",
                    self.step.migration.label,
                    bound,
                    f": {blockers[0].describe()}" if blockers else "",
                    pause,
                    bounds[attempt + 1],
                    attempt + 1,
                    retries,
                )
                time.sleep(pause)
            except psycopg.OperationalError as exc:
                if not self.conn.broken:
                    raise
                raise self._lost(exc) from exc

    def _attempt(self) -> None:
        """One transaction in N + 1 round trips for N statements.

        BEGIN (with the step's lock_timeout) travels with the first statement and COMMIT with
        the version update and history row. On any failure (or Ctrl-C) the transaction is rolled
        back before this returns.
        """
        self.blocked_at, self.phase = None, "running"
        # ints, so no quoting question; LOCAL: they end with the transaction
        begin = f"BEGIN; SET LOCAL lock_timeout = {int(self.bound_ms)};\n"
        if self.session.statement_timeout_ms > 0:
            begin += f"SET LOCAL statement_timeout = {int(self.session.statement_timeout_ms)};\n"
        try:
            # BEGIN alone when the state tables must be checked first, or nothing can carry it
            if not self.session.tables_ready or not self.item.sql.statements:
                self.conn.execute(begin)
                begin = ""
                if not self.session.tables_ready:
                    self._ensure_tables()
            self._statements(retry_locks=True, prefix=begin)
            self._record()
        except BaseException:
            self._roll_back()
            raise

    def _record(self) -> None:
        """The state update and COMMIT; if it fails, the step fails (and is rolled back)."""
        import psycopg

        self.phase = "committing"  # from here a lost connection may have committed
        try:
            self.store.record_step(self._entry(), commit=True)
        except psycopg.errors.LockNotAvailable:
            raise  # retried
        except psycopg.Error as exc:
            if self.conn.broken:
                raise  # lost (phase committing)
            raise self._failed(
                f"Migration {self.step.migration.label} ({self.step.direction.value}) ran, but "
                f"recording it in {self.store.table} and {self.store.history_table} (schema "
                f"{self.store.schema}) failed: {server_message(exc)}. {self._outcome()}",
                exc,
                phase="recording",
            ) from exc

    def _blockers(self) -> list[Any]:
        """Who holds the lock the failed attempt waited for (read on this connection)."""
        from psycopg import sql

        from thv_registry.migrations.engine import lock
        from thv_registry.migrations.engine.lockinfo import analyze
        from thv_registry.migrations.engine.lockmodes import strongest

        if self.blocked_at is None:  # the state-table update (DELETE + INSERT) waited
            name = sql.Identifier(self.store.schema or "public", self.store.table)
            wanted = {name.as_string(self.conn): "ROW EXCLUSIVE"}
        else:
            wanted = {}
            for held in analyze(self.blocked_at).locks:
                known = wanted.get(held.relation, held.mode)
                wanted[held.relation] = strongest(known, held.mode)
        older_than = self.bound_ms / 1000
        return lock.find_blockers(self.conn, wanted, older_than_s=older_than)

    def _outcome(self) -> str:
        if self.before is None:
            return "The step was rolled back: the database still has no version, as before."
        was = self.before
        return f"The step was rolled back: the database is still at version {was}, not dirty."

    def _lock_failure(
        self, exc: Any, blockers: list[Any], waited: float, bounds: tuple[int, ...]
    ) -> TableLockTimeout:
        from thv_registry.migrations.engine.lock import describe_blockers

        where = ""
        if self.blocked_at is not None:
            where = f" at {self.item.sql.location(self.blocked_at, None)}"
        attempts = len(bounds)
        return TableLockTimeout(
            f"Migration {self.step.migration.label} could not get a table lock{where} within "
            f"lock_timeout ({bounds_text(bounds)}) in {_attempts(attempts)} over {waited:.1f} "
            f"s: {server_message(exc)}. {describe_blockers(blockers)}. {self._outcome()}",
            lock_timeout_ms=bounds[-1],
            bounds_ms=bounds,
            attempts=attempts,
            blocker_pids=[b.pid for b in blockers if b.relation],
            sqlstate=exc.diag.sqlstate,
            location=where[4:] or None,
            step=self.ref,
            phase="statement" if self.blocked_at is not None else "recording",
        )

    def _lost_outcome(self) -> str:
        if self.phase == "committing":
            return (
                "It was lost while the step was being committed, so whether the step was "
                f"committed is unknown: the database {is_at(self.before)} or "
                f"{is_at(self.step.target_version).removeprefix('is ')}, clean either way."
            )
        rolled_back = "The server rolled the step back"
        return self._outcome().replace("The step was rolled back", rolled_back)


def _attempts(n: int) -> str:
    return "1 attempt" if n == 1 else f"{n} attempts"
