"""Ctrl-C and SIGTERM: stop where the command is, and say exactly where that leaves the database.

SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``), so both signals take the same path:
psycopg cancels the statement in progress, the step's transaction is rolled back (or, outside a
transaction, the version stays dirty), the migration lock goes with the session, and the root
group prints one paragraph from :data:`PROGRESS`: at the prompt nothing ran; during a step, which
step, and the version read back from the database (clean or dirty, with the way out); during
``verify``, only the scratch database was touched.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from thv_registry.cli.context import AppContext
    from thv_registry.migrations.engine.model import Step, StepEvent, VersionState

__all__ = ["Terminated", "Progress", "PROGRESS", "install_sigterm", "describe_interrupt"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where SIGINT raises ``KeyboardInterrupt`` (psycopg cancels on both)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def install_sigterm() -> None:
    """Handle SIGTERM as Ctrl-C is handled (the default would end the process in silence)."""
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def exit_code(exc: BaseException) -> int:
    """128 + the signal, as shells report it: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


@dataclass
class Progress:
    """Where the command is, for the message after an interrupt (one command per process)."""

    #: ``unknown`` (not a migrate command), ``starting`` (reading, planning, waiting: nothing
    #: written), ``prompt``, ``confirmed`` (about to
    #: run under the lock), ``backup``, ``step``, ``between`` (after a finished step),
    #: ``forcing``, ``verify``
    stage: str = "unknown"
    step: Step | None = None
    index: int = 0  #: 1-based position of ``step`` in the plan
    total: int = 0
    finished: int = 0  #: steps finished
    transactional: bool = True
    scratch: str | None = None  #: verify's scratch database

    def on_step(self, event: StepEvent) -> None:
        """Follow the runner's progress events."""
        self.step, self.index, self.total = event.step, event.index, event.total
        self.transactional = event.transactional
        if event.phase == "started":
            self.stage = "step"
        else:
            self.stage, self.finished = "between", self.finished + 1


PROGRESS = Progress()


def describe_interrupt(exc: BaseException, app: AppContext) -> str:
    """One paragraph: what was interrupted and where the database stands now."""
    what = "Terminated (SIGTERM)" if isinstance(exc, Terminated) else "Interrupted (Ctrl-C)"
    p = PROGRESS
    if p.stage == "unknown":
        return (
            f"{what}. Work that finished stays done; a migration step in progress was rolled "
            "back, or, if it ran outside a transaction, left the database dirty: check the "
            "version before running again."
        )
    if p.stage == "prompt":
        return f"{what} at the prompt: cancelled, nothing was changed."
    if p.stage == "starting":
        return f"{what} before anything ran: nothing was changed."
    if p.stage == "verify":
        scratch = f"the scratch database {p.scratch}" if p.scratch else "a scratch database"
        return (
            f"{what} during verify: only {scratch} was touched, never the configured "
            "database; verify drops it on the way out (if it is still there: DROP DATABASE "
            f"{p.scratch or '...'} WITH (FORCE);)."
        )
    if p.stage == "backup":
        return (
            f"{what} while the backup before the revert was being written: nothing was "
            "reverted, and the partial backup file was removed."
        )
    state, failure = _read_back(app)
    if state is None:
        now = (
            f"The version could not be read back ({failure}); run `thv-registry-api migrate "
            "version` with the same --config or --database-url to see it."
        )
    else:
        now = f"The database {_at(state)}."
    if p.stage in ("confirmed", "forcing"):
        doing = "before the first step started" if p.stage == "confirmed" else "while forcing"
        return f"{what} {doing}. {now}"
    if p.step is None:  # not reached: a step stage always has its step
        return f"{what}. {now}"
    label = f"{p.step.migration.version:06d} {p.step.migration.name} ({p.step.direction.value})"
    if p.stage == "between":
        return (
            f"{what} after step {label} finished ({p.finished} of {p.total} steps done; the "
            f"others did not start). {now}"
        )
    return f"{what} during step {label}, {p.index} of {p.total}. {now}{_step_outcome(state, app)}"


def _step_outcome(state: VersionState | None, app: AppContext) -> str:
    """What the read-back version says about the interrupted step (PROGRESS.step)."""
    p = PROGRESS
    step = p.step
    if state is None or step is None:
        return ""
    earlier = f" The {p.index - 1} step(s) before it stay done." if p.index > 1 else ""
    if state.dirty:
        from thv_registry.cli.hints import dirty_recovery
        from thv_registry.errors import StepRef

        migration = step.migration
        ref = StepRef(
            migration.version,
            migration.name,
            step.direction.value,
            _before(step, app),
            step.target_version,
            False,
        )
        return (
            " The step runs outside a transaction, so what it did before the interrupt stays "
            f"done.{earlier} {dirty_recovery(ref.recovery())}"
        )
    if state.version == step.target_version:
        return f" The step had completed before the interrupt took effect.{earlier}"
    return f" The step was rolled back.{earlier} Run the command again to go on."


def _before(step: Step, app: AppContext) -> int | None:
    """The version before ``step``: a down starts at its own version; an up at the migration
    below it in the set (the planner refuses anything out of order)."""
    from thv_registry.migrations.engine.model import Direction

    if step.direction is Direction.DOWN:
        return step.migration.version
    migrator = app.built_migrator
    below = [
        m.version
        for m in (migrator.source.migrations if migrator else ())
        if m.version < step.migration.version
    ]
    return max(below, default=None)


def _at(state: VersionState) -> str:
    where = "has no version" if state.version is None else f"is at version {state.version}"
    return f"{where}, {'DIRTY' if state.dirty else 'clean'}"


def _read_back(app: AppContext) -> tuple[VersionState | None, str]:
    """The version now, on a fresh connection (the interrupted one is gone)."""
    migrator = app.built_migrator
    if migrator is None:
        return None, "no database was opened"
    try:
        return migrator.version(), ""
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - only words a message
        return None, " ".join(str(exc).split()) or type(exc).__name__
