"""Execute a plan step by step, with the transaction rule in one place.

A step whose SQL can run in a transaction block runs in ONE transaction together with its
``schema_migrations`` update and history row: if it fails, the database is exactly at the
previous version, clean. A file with statements that cannot run in a transaction block (CREATE
INDEX CONCURRENTLY, VACUUM, ...) or with its own BEGIN/COMMIT follows golang-migrate's dirty
protocol instead: mark dirty, run, mark clean. Every planned file is read and parsed before the
first step runs, so a broken file later in the plan stops the run before anything changed.

The two step protocols, lock_timeout retries and connection-loss reporting are in :mod:`.steps`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from thv_registry.migrations.engine import state
from thv_registry.migrations.engine.model import (
    HistoryDirection,
    Plan,
    RunResult,
    Step,
    StepEvent,
    VersionState,
)
from thv_registry.migrations.engine.steps import (
    PreparedStep,
    StepSession,
    prepare,
    run_step,
    server_message,
)

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]

__all__ = ["run", "prepare", "PreparedStep"]

log = logging.getLogger(__name__)

_server_message = server_message  # verify.py's name for it


def run(
    conn: Conn,
    plan: Plan,
    *,
    table: str,
    lock_timeout_ms: int,
    lock_retries: int,
    on_step: Callable[[StepEvent], None] | None = None,
) -> RunResult:
    """Run ``plan`` on ``conn`` (autocommit, migration lock held); return what was applied."""
    started = time.monotonic()
    prepared = [prepare(step) for step in plan.steps]
    session = StepSession(
        tables_ready=bool(prepared or plan.accepted) and state.tables_exist(conn, table),
        lock_timeout_ms=lock_timeout_ms,
    )
    if plan.accepted:
        if not session.tables_ready:  # an older history layout: upgraded before writing to it
            with conn.transaction():
                state.ensure_tables(conn, table, current=plan.current.version)
            session.tables_ready = True
        _record_accepted(conn, plan, table)
    applied: list[Step] = []
    version = plan.current.version
    for index, item in enumerate(prepared, 1):
        transactional = item.sql.runs_in_transaction
        event = StepEvent("started", item.step, index, len(prepared), transactional)
        if on_step:
            on_step(event)
        t0 = time.monotonic()
        run_step(conn, item, table, version, session, lock_retries)
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


def _record_accepted(conn: Conn, plan: Plan, table: str) -> None:
    """Record each changed file accepted with --accept-changed: its new checksum, logged loudly."""
    with conn.transaction():
        for change in plan.accepted:
            log.warning(
                "accepting the changed file %s (version %d, applied with sha256 %s, now %s) "
                "as requested with --accept-changed; the database is not changed",
                change.origin,
                change.version,
                change.recorded[:12],
                change.actual[:12],
            )
            state.record_history(
                conn,
                table,
                version=change.version,
                name=change.name,
                direction=HistoryDirection.ACCEPT,
                checksum=change.actual,
                resulting_version=plan.current.version,
            )
