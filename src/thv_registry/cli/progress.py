"""Progress of a migration run: a line when each step starts, its time when it ends.

On a terminal, a step still running after a second gets an elapsed-time indicator on its
``Applying ...`` line (``Applying 000003 add_index ... 4 s``: click's progress bar without a bar,
since the length of a step is unknown), redrawn from a background thread while the step's
statement runs. Elsewhere (a pipe, a log
file, CI) each step is two plain lines, ``Applying 000003 add_index ...`` and
``Applied 000003 add_index (0.012 s)``, so a log shows which step a stalled run is in.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from thv_registry.cli.render import step_label
from thv_registry.migrations.engine.model import Direction, StepEvent

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

__all__ = ["StepProgress", "INDICATOR_AFTER_S"]

INDICATOR_AFTER_S = 1.0  #: a step shorter than this gets no indicator
_REDRAW_S = 0.2


class StepProgress:
    """Shows ``StepEvent``s as text; ``terminal`` chooses the indicator over plain lines."""

    def __init__(self, *, terminal: bool, color: bool | None = None) -> None:
        self.terminal = terminal
        self.color = color
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: ProgressBar[Any] | None = None

    @classmethod
    def for_stdout(cls, color: bool | None = None) -> StepProgress:
        stream = sys.stdout
        return cls(terminal=stream is not None and stream.isatty(), color=color)

    def __call__(self, event: StepEvent) -> None:
        if event.phase == "started":
            self.started(event)
        else:
            self.finished(event)

    def started(self, event: StepEvent) -> None:
        verb = "Applying" if event.step.direction is Direction.UP else "Reverting"
        line = f"{verb} {step_label(event.step)} ..."
        if not self.terminal:
            click.echo(line)
            return
        click.echo(line, nl=False)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._indicate, args=(line, time.monotonic()), daemon=True
        )
        self._thread.start()

    def finished(self, event: StepEvent) -> None:
        self.stop()
        verb = "Applied" if event.step.direction is Direction.UP else "Reverted"
        click.echo(f"{verb} {step_label(event.step)} ({event.duration_s or 0.0:.3f} s)")

    def stop(self) -> None:
        """End the indicator (and the terminal line) of a step, if one is shown; idempotent."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._bar is not None:
            self._bar.render_finish()  # shows the cursor again, ends the line
            self._bar = None
        else:
            click.echo()  # end the "Applying ..." line

    def _indicate(self, label: str, started: float) -> None:
        """From a second on, redraw ``label 3 s`` until the step ends."""
        if self._stop.wait(INDICATOR_AFTER_S):
            return
        bar: ProgressBar[Any] = click.progressbar(
            itertools.count(),  # no length: nothing to measure but the time
            label=label,
            bar_template="%(label)s %(info)s",
            show_eta=False,
            color=self.color,
            item_show_func=lambda _: f"{time.monotonic() - started:.0f} s",
        )
        self._bar = bar
        while True:
            bar.update(1)  # redraws the line in place
            if self._stop.wait(_REDRAW_S):
                return
