"""Execute a plan step by step, with the transaction rule in one place.

A step whose SQL can run in a transaction block runs in ONE transaction together with its
``schema_migrations`` update and history row: if it fails, the database is exactly at the
previous version, clean. A file with statements that cannot run in a transaction block (CREATE
INDEX CONCURRENTLY, VACUUM, ...) or with its own BEGIN/COMMIT follows golang-migrate's dirty
protocol instead: mark dirty, run, mark clean. Every planned file is read and parsed before the
first step runs, so a broken file later in the plan stops the run before anything changed.

The two step protocols are :mod:`.transactional` and :mod:`.dirty_protocol`; what both share,
including how a failure is reported, is in :mod:`.steps`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from thv_registry.migrations.engine.dirty_protocol import DirtyProtocolStep
from thv_registry.migrations.engine.model import (
    HistoryDirection,
    Plan,
    RunResult,
    Step,
    StepEvent,
    VersionState,
)
from thv_registry.migrations.engine.steps import PreparedStep, StepSession, prepare
from thv_registry.migrations.engine.transactional import TransactionalStep

if TYPE_CHECKING:
    from thv_registry.migrations.engine.state import StateStore

__all__ = ["run", "prepare", "PreparedStep"]

log = logging.getLogger(__name__)


def run(
    store: StateStore,
    plan: Plan,
    *,
    lock_timeout_ms: int,
    lock_retries: int,
    statement_timeout_ms: int = 0,
    on_step: Callable[[StepEvent], None] | None = None,
) -> RunResult:
    """Run ``plan`` on the store's connection (autocommit, migration lock held)."""
    started = time.monotonic()
    prepared = [prepare(step) for step in plan.steps]
    session = StepSession(
        store,
        tables_ready=bool(prepared or plan.accepted) and store.tables_exist(),
        lock_timeout_ms=lock_timeout_ms,
        lock_retries=lock_retries,
        statement_timeout_ms=statement_timeout_ms,
    )
    if plan.accepted:
        if not session.tables_ready:  # an older history layout: upgraded before writing to it
            with store.conn.transaction():
                store.ensure_tables(current=plan.current.version)
            session.tables_ready = True
        _record_accepted(store, plan)
    applied: list[Step] = []
    version = plan.current.version
    for index, item in enumerate(prepared, 1):
        transactional = item.sql.runs_in_transaction
        event = StepEvent("started", item.step, index, len(prepared), transactional)
        if on_step:
            on_step(event)
        t0 = time.monotonic()
        run_step(item, version, session)
        version = item.step.target_version
        applied.append(item.step)
        if on_step:
            on_step(
                StepEvent(
                    "finished",
                    item.step,
                    index,
                    len(prepared),
                    transactional,
                    time.monotonic() - t0,
                )
            )
    return RunResult(plan, tuple(applied), VersionState(version, False), time.monotonic() - started)


def _record_accepted(store: StateStore, plan: Plan) -> None:
    """Record each changed file accepted by the request: its new checksum, logged loudly."""
    with store.conn.transaction():
        for change in plan.accepted:
            log.warning(
                "accepting the changed file %s (version %d, applied with sha256 %s, now %s) "
                "as requested; the database is not changed",
                change.origin,
                change.version,
                change.recorded[:12],
                change.actual[:12],
            )
            store.record_history(
                (
                    change.version,
                    change.name,
                    HistoryDirection.ACCEPT,
                    change.actual,
                    plan.current.version,
                )
            )


def run_step(item: PreparedStep, before: int | None, session: StepSession) -> None:
    """Run one prepared step with the protocol its SQL allows; raise a ``ThvError`` on failure."""
    protocol = TransactionalStep if item.sql.runs_in_transaction else DirtyProtocolStep
    protocol(item, before, session).run()
    session.tables_ready = True
