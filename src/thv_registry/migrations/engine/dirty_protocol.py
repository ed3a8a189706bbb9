"""A step that cannot run in a transaction block: golang-migrate's dirty protocol.

Mark the version dirty (and open a history row), run the statements one by one, mark it clean
(and close the row). It runs with the server's default lock_timeout: a retry cannot undo its
partial work, and CREATE INDEX CONCURRENTLY must wait for older transactions. When it fails it
stays dirty, and the error carries the way out (``recovery``).
"""

from __future__ import annotations

from typing import Any

from thv_registry.db.connect import server_message
from thv_registry.errors import MigrationFailed
from thv_registry.migrations.engine.steps import StepRun, dirty_at, is_at

__all__ = ["DirtyProtocolStep"]


class DirtyProtocolStep(StepRun):
    def run(self) -> None:
        import psycopg

        try:
            self._run()
        except psycopg.OperationalError as exc:
            if not self.conn.broken:
                raise
            raise self._lost(exc) from exc

    def _run(self) -> None:
        import psycopg

        target = self.step.target_version
        self.phase = "marking"
        try:
            with self.conn.transaction():
                if not self.session.tables_ready:
                    self._ensure_tables()
                # the server's default lock_timeout (see docs/decisions.md, Running steps); the
                # configured statement_timeout, if any, for the session until the step is done
                self.store.set_version(target, dirty=True, prefix=self._session_settings())
                entry = self.store.start_history(self._entry())
        except psycopg.Error as exc:
            if self.conn.broken:
                raise
            raise self._state_failure(exc, "marking it dirty") from exc
        self.phase = "running"
        try:
            self._statements()
        except BaseException:
            self._roll_back()
            raise
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._roll_back()
            raise self._failed(
                f"Migration {self.step.migration.label} ({self.step.direction.value}) left a "
                f"transaction open (a BEGIN without COMMIT in {self.step.file.origin}); it was "
                f"rolled back. {self._outcome()}",
                phase="open_transaction",
            )
        self.phase = "finishing"
        try:
            with self.conn.transaction():
                reset = "RESET statement_timeout; " if self.session.statement_timeout_ms else ""
                self.store.set_version(target, dirty=False, prefix=reset)
                self.store.finish_history(entry)
        except psycopg.Error as exc:
            if self.conn.broken:
                raise
            raise self._state_failure(exc, "marking it clean") from exc

    def _session_settings(self) -> str:
        """RESET lock_timeout, and SET statement_timeout when one is configured (an int)."""
        limit = int(self.session.statement_timeout_ms)
        return "RESET lock_timeout; " + (f"SET statement_timeout = {limit}; " if limit else "")

    def _state_failure(self, exc: Any, doing: str) -> MigrationFailed:
        """A state update of the dirty protocol failed (its transaction was rolled back)."""
        if self.phase == "marking":
            outcome = f"None of its statements ran: the database {is_at(self.before, still=True)}."
        else:
            outcome = (
                "All of its statements ran, but the database is still marked "
                f"{dirty_at(self.step.target_version)}."
            )
        return self._failed(
            f"Migration {self.step.migration.label} ({self.step.direction.value}): {doing} in "
            f"{self.store.table} (schema {self.store.schema}) failed: {server_message(exc)}. "
            f"{outcome}",
            exc,
            phase=self.phase,
        )

    def _lost_outcome(self) -> str:
        if self.phase == "marking":
            return "None of the step's statements ran."
        if self.phase == "finishing":
            return (
                "All of the step's statements ran, but it was lost while marking the step clean, "
                f"so the database may still be marked {dirty_at(self.step.target_version)}."
            )
        return self._outcome()

    def _outcome(self) -> str:
        return (
            "This file runs outside a transaction, so statements before the failing one stay "
            f"applied and the database is marked {dirty_at(self.step.target_version)}."
        )
