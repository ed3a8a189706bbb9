"""``Migrator``: the library entry point. Plans, then applies under the lock; never prints.

The CLI confirms between :meth:`Migrator.plan` and :meth:`Migrator.apply`, so the prompt shows
exactly what will run. ``apply`` re-reads the state once the lock is held and plans again; when a
confirmed plan is passed and the state moved meanwhile, it refuses (``StateChanged``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import StateChanged
from .model import Plan, Request, RunResult, StepEvent, VersionState

if TYPE_CHECKING:
    import psycopg

    from ..config import ConnectionParams
    from .source import Source

__all__ = ["Migrator", "DEFAULT_LOCK_WAIT_S", "DEFAULT_LOCK_TIMEOUT_MS", "DEFAULT_LOCK_RETRIES"]

log = logging.getLogger(__name__)

DEFAULT_LOCK_WAIT_S = 15.0  #: how long to wait for the advisory lock (golang-migrate's default)
DEFAULT_LOCK_TIMEOUT_MS = 5000  #: PostgreSQL lock_timeout inside transactional steps
DEFAULT_LOCK_RETRIES = 3  #: extra attempts of a step that hit lock_timeout
APPLICATION_NAME = "thv-registry-api migrate"


class Migrator:
    """Run migrations from ``source`` against the database ``params`` describe."""

    def __init__(
        self,
        params: ConnectionParams,
        source: Source,
        *,
        lock_wait_s: float = DEFAULT_LOCK_WAIT_S,
        lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
        lock_retries: int = DEFAULT_LOCK_RETRIES,
        application_name: str = APPLICATION_NAME,
        migrations_table: str = "schema_migrations",
    ) -> None:
        self.params = params
        self.source = source
        self.lock_wait_s = lock_wait_s
        self.lock_timeout_ms = lock_timeout_ms
        self.lock_retries = lock_retries
        self.application_name = application_name
        self.migrations_table = migrations_table

    # -- read-only -------------------------------------------------------------------------------

    def version(self) -> VersionState:
        """The version and dirty flag now (no lock, no writes)."""
        from . import state

        with self._connect() as conn:
            return state.read_version(conn, self.migrations_table)

    def plan(self, request: Request) -> Plan:
        """Plan ``request`` from the current state without taking the lock or writing anything."""
        with self._connect() as conn:
            return self._plan(conn, request)

    # -- writing ---------------------------------------------------------------------------------

    def apply(
        self,
        request: Request,
        *,
        confirmed: Plan | None = None,
        on_step: Callable[[StepEvent], None] | None = None,
    ) -> RunResult:
        """Take the lock, plan ``request`` again from the state seen under it, and run the plan.

        :param confirmed: the plan a person approved; if the state changed so that the new plan
            differs, raise ``StateChanged`` instead of running something nobody confirmed.
        """
        from . import runner

        with self._connect() as conn, self._locked(conn):
            plan = self._plan(conn, request)
            if confirmed is not None and not _same_steps(plan, confirmed):
                raise StateChanged(
                    "The database changed while the plan was being confirmed: it was at "
                    f"{_v(confirmed.current.version)} and is now at {_v(plan.current.version)}"
                    f"{' (dirty)' if plan.current.dirty else ''}; nothing was run.",
                    hint="Run the command again to see the new plan.",
                )
            return runner.run(
                conn,
                plan,
                table=self.migrations_table,
                lock_timeout_ms=self.lock_timeout_ms,
                lock_retries=self.lock_retries,
                on_step=on_step,
            )

    # -- internals -------------------------------------------------------------------------------

    def _plan(self, conn: psycopg.Connection[tuple[object, ...]], request: Request) -> Plan:
        from . import planner, state

        current = state.read_version(conn, self.migrations_table)
        history = state.read_history(conn, self.migrations_table)
        return planner.plan(request, self.source.migrations, current, history)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        from ..db import connect

        return connect(self.params, application_name=self.application_name)

    @contextmanager
    def _locked(self, conn: psycopg.Connection[tuple[object, ...]]) -> Iterator[None]:
        from . import lock

        key = lock.lock_key(lock.current_schema(conn), self.migrations_table, self.params.dbname)
        with lock.advisory_lock(conn, key, timeout_s=self.lock_wait_s):
            yield


def _same_steps(a: Plan, b: Plan) -> bool:
    def key(p: Plan) -> list[tuple[int, str, int | None]]:
        return [(s.migration.version, s.direction.value, s.target_version) for s in p.steps]

    return a.current == b.current and key(a) == key(b)


def _v(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"
