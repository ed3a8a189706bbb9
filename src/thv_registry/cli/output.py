"""What the CLI shows: plans, progress, results and errors, as text or as JSON lines.

Results and progress go to stdout; notices, prompts and errors go to stderr. With
``--log-format json`` stdout carries one JSON object per line (``event``: ``plan``, ``step``,
``done``, ``cancelled``) and stderr carries JSON log records, so both can be parsed.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from thv_registry.cli import render
from thv_registry.cli.interrupt import PROGRESS
from thv_registry.cli.prompt import only_yes as _only_yes
from thv_registry.cli.prompt import read_answer as read_answer  # re-exported (migrate_ops)
from thv_registry.migrations.engine.model import (
    DatabaseView,
    Direction,
    Down,
    ForceResult,
    Goto,
    Plan,
    Redo,
    RunResult,
    Step,
    StepEvent,
    Up,
    VersionState,
)

if TYPE_CHECKING:
    from thv_registry.cli.progress import StepProgress
    from thv_registry.migrations.tools.backup import Backup
    from thv_registry.migrations.tools.explain import StepInfo
    from thv_registry.migrations.tools.status import Status

__all__ = ["Output", "configure_logging", "report_failure", "one_paragraph"]

DATA_LOSS_WARNING = (
    "Reverting drops the tables, columns and data these migrations created; the data cannot be "
    "recovered from the database."
)
_HANDLER_NAME = "thv-registry-cli"


class Output:
    """Renders engine results for a person (text) or a program (JSON lines)."""

    def __init__(self, *, json_mode: bool, debug: bool, names: Mapping[int, str] | None = None):
        self.json_mode = json_mode
        self.debug = debug
        self.names: Mapping[int, str] = names or {}
        #: colours: False with NO_COLOR; None lets click strip them when stdout is no terminal
        self.color: bool | None = False if os.environ.get("NO_COLOR") else None
        self._progress: StepProgress | None = None

    def notice(self, message: str) -> None:
        """Tell the user something about how the command runs (stderr)."""
        if self.json_mode:
            _echo_json_record("info", "thv_registry.cli", message)
        else:
            click.echo(message, err=True)

    def plan(
        self,
        plan: Plan,
        *,
        target: str,
        details: Sequence[StepInfo] = (),
        dry_run: bool = False,
        sql: bool = False,
    ) -> None:
        """The plan with each step's statements, locks and transaction mode; with ``sql``, the
        whole SQL of every step as a script instead (JSON carries both)."""
        from thv_registry.cli import plan_render

        if self.json_mode:
            self._json(**plan_render.plan_json(plan, details, target=target, dry_run=dry_run))
            return
        if sql:
            lines = plan_render.sql_lines(plan, details, target=target, names=self.names)
            click.echo("\n".join(lines))
            return
        width = _terminal_width()
        lines = plan_render.plan_lines(plan, details, target=target, names=self.names, width=width)
        if plan.direction is Direction.DOWN:
            lines.extend(plan_render.wrap(DATA_LOSS_WARNING, width, "  ", "WARNING: "))
        if dry_run:
            lines.append("Dry run: nothing was changed.")
        click.echo("\n".join(plan_render.paint(line) for line in lines), color=self.color)

    def status(
        self, status: Status, *, target: str, ignored: Sequence[str] = (), verbose: bool = False
    ) -> None:
        """The status table; ``ignored``: entries of the set skipped as not migrations (JSON
        always, text with ``verbose``)."""
        if self.json_mode:
            self._json(**render.status_json(status, target=target), ignored=list(ignored))
            return
        lines = render.status_lines(status, target=target, names=self.names)
        if verbose:
            skipped = ", ".join(ignored) if ignored else "nothing"
            lines.append(f"Ignored (not migration files): {skipped}.")
        click.echo("\n".join(lines))

    def version(self, state: VersionState) -> None:
        """One line: ``3``, ``3 (dirty)``, ``no version``."""
        if self.json_mode:
            self._json(event="version", version=state.version, dirty=state.dirty)
            return
        text = "no version" if state.version is None else str(state.version)
        click.echo(text + (" (dirty)" if state.dirty else ""))

    def force_view(self, view: DatabaseView, version: int | None, *, target: str) -> None:
        """What the database looks like now, before force asks."""
        if self.json_mode:
            self._json(**render.view_json(view, version, target=target))
        else:
            lines = render.view_lines(view, version, target=target, names=self.names)
            click.echo("\n".join(lines))

    def confirm_force(self, version: int | None) -> bool:
        shown = "clear the version" if version is None else f"set the database to version {version}"
        PROGRESS.stage = "prompt"
        answer = read_answer(
            f"{shown[0].upper()}{shown[1:]} without running anything? Type 'yes' to force: "
        )
        return _only_yes(answer, "a force")

    def forced(self, result: ForceResult) -> None:
        if self.json_mode:
            self._json(
                event="done",
                version=result.version,
                dirty=False,
                steps=0,
                forced=True,
                previous_version=result.previous.version,
                previous_dirty=result.previous.dirty,
                closed_steps=result.closed,
            )
            return
        was = render.version_text(result.previous, self.names)
        now = render.version_text(VersionState(result.version, False), self.names)
        closed = (
            f" {result.closed} unfinished step(s) in the history marked as never finished."
            if result.closed
            else ""
        )
        where = "now has no version" if result.version is None else f"is now at version {now}"
        was = "no version" if result.previous.version is None else f"version {was}"
        click.echo(f"Database {where}, clean (was {was}); no migration ran.{closed}")

    def confirm(self, plan: Plan) -> bool:
        """Ask before running ``plan``: ``up`` takes y/yes, ``down`` only ``yes``."""
        count = _count(len(plan.steps))
        PROGRESS.stage = "prompt"
        if not plan.steps:  # only --accept-changed checksums to record
            answer = read_answer("Record the accepted checksum(s) in the history? [y/N]: ")
            return answer.lower() in {"y", "yes"}
        if isinstance(plan.request, Redo):
            label = plan.steps[0].migration.label
            answer = read_answer(f"Revert {label} and apply it again? Type 'yes' to redo: ")
            return _only_yes(answer, "a redo")
        if plan.direction is Direction.DOWN:
            answer = read_answer(f"Revert {count}? Type 'yes' to revert: ")
            return _only_yes(answer, "a revert")
        answer = read_answer(f"Apply {count}? [y/N]: ")
        return answer.lower() in {"y", "yes"}

    def cancelled(self) -> None:
        if self.json_mode:
            self._json(event="cancelled")
        else:
            click.echo("Cancelled; nothing was changed.")

    def step(self, event: StepEvent) -> None:
        """The ``on_step`` callback: a line per finished step (and per started one with --debug)."""
        PROGRESS.on_step(event)
        if self.json_mode:
            if event.phase == "finished":
                self._json(event="step", **_step_json(event.step), duration_s=event.duration_s)
            return
        if self._progress is None:
            from thv_registry.cli.progress import StepProgress

            self._progress = StepProgress.for_stdout(color=self.color)
        self._progress(event)

    def stop_progress(self) -> None:
        """End a step's progress line (the run stopped inside a step: error or Ctrl-C)."""
        if self._progress is not None:
            self._progress.stop()

    def backup(self, backup: Backup) -> None:
        """Where the pre-revert backup is and how to restore it (stdout: it is a result)."""
        if self.json_mode:
            self._json(
                event="backup",
                path=str(backup.path),
                size_bytes=backup.size_bytes,
                pg_dump_version=backup.pg_dump_version,
                duration_s=backup.duration_s,
                restore_command=backup.restore_command,
            )
            return
        from thv_registry.migrations.tools.backup import backup_notice

        click.echo(backup_notice(backup))

    def nothing_to_do(self, plan: Plan) -> None:
        if self.json_mode:
            self._done(plan.current, steps=0)
        elif isinstance(plan.request, Down):
            click.echo(f"Nothing to revert; the database {self._at(plan.current)}.")
        elif isinstance(plan.request, Goto):
            click.echo(self._already_at(plan.current))
        else:
            click.echo(f"No pending migrations; database {self._at(plan.current)}.")

    def _already_at(self, state: VersionState) -> str:
        """``goto V`` at V: say so, and what lies beyond V (``goto`` is not ``up``)."""
        beyond = sum(1 for v in self.names if v > (state.version or 0))
        if state.version is None:
            where = "The database already has no version"
        else:
            where = f"Already at version {self._version(state)}"
        if not beyond:
            return f"{where}; nothing to do."
        pending = "1 migration is" if beyond == 1 else f"{beyond} migrations are"
        return f"{where}; {pending} pending beyond it (`migrate up` applies them)."

    def done(self, result: RunResult) -> None:
        accepted = [c.version for c in result.plan.accepted]
        request = result.plan.request
        asked = request.n if isinstance(request, Up) else None
        short = asked is not None and asked > len(result.applied)
        if self.json_mode:
            extra: dict[str, Any] = {"accepted": accepted} if accepted else {}
            if short:
                extra["requested_steps"] = asked
            self._done(
                result.final, steps=len(result.applied), duration_s=result.duration_s, **extra
            )
            return
        for change in result.plan.accepted:
            click.echo(f"Accepted the changed file {change.origin} (version {change.version}).")
        if short and result.applied:
            click.echo(
                f"Applied {len(result.applied)} of the {asked} steps requested (--num-steps): "
                "no more migrations were pending."
            )
        if not result.applied:
            click.echo(f"No migrations run; database {self._at(result.final)}.")
        elif result.final.version is None:
            click.echo("Database now has no version (all migrations reverted).")
        else:
            click.echo(f"Database is now at version {self._version(result.final)}.")

    # -- helpers ---------------------------------------------------------------------------------

    def _version(self, state: VersionState) -> str:
        """``3 (add_x)``, ``no version``; ``, dirty`` appended when it is."""
        return render.version_text(state, self.names)

    def _at(self, state: VersionState) -> str:
        if state.version is None:
            return "has no version" + (" (dirty)" if state.dirty else "")
        return f"is at version {self._version(state)}"

    def _done(self, state: VersionState, **extra: Any) -> None:
        self._json(event="done", version=state.version, dirty=state.dirty, **extra)

    def event(self, name: str, **fields: Any) -> None:
        """One JSON line ``{"event": name, ...}`` on stdout (JSON mode)."""
        self._json(event=name, **fields)

    def _json(self, **fields: Any) -> None:
        import json  # JSON output only: not on the text path

        click.echo(json.dumps(fields))


def _terminal_width() -> int | None:
    """The terminal's width when stdout is one (plans wrap to it); None: do not wrap."""
    stream = sys.stdout
    if stream is None or not stream.isatty():
        return None
    import shutil

    return shutil.get_terminal_size().columns


def report_failure(
    exc: BaseException, message: str, *, exit_code: int, json_mode: bool, debug: bool
) -> None:
    """Print a failure once, on stderr; with ``debug`` the traceback comes first."""
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if json_mode:
        _echo_json_record("error", "thv_registry.cli", message, exit_code=exit_code)
    else:
        click.echo(f"Error: {message}", err=True)


def one_paragraph(text: str) -> str:
    """Join a multi-line message (the server's detail and hint lines) into one paragraph."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


# -- logging -------------------------------------------------------------------------------------


class _MaskPasswords(logging.Filter):
    """Mask ``PASSWORD '...'`` literals in every record (``--debug`` echoes migration SQL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "assword" in message or "ASSWORD" in message:
            from thv_registry.redact import mask_password_literals

            record.msg, record.args = mask_password_literals(message), None
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = _record(record.levelname.lower(), record.name, record.getMessage())
        fields["time"] = datetime.fromtimestamp(record.created, UTC).isoformat()
        fields.update(getattr(record, "fields", {}))  # structured extras (the access log's keys)
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        import json

        return json.dumps(fields)


def configure_logging(*, debug: bool, json_mode: bool) -> None:
    """Log to stderr: ours at INFO (DEBUG with --debug), everyone else's at WARNING (DEBUG)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(_JsonFormatter() if json_mode else _TextFormatter())
    handler.addFilter(_MaskPasswords())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    logging.getLogger("thv_registry").setLevel(logging.DEBUG if debug else logging.INFO)


def _record(level: str, logger: str, message: str, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"time": now, "level": level, "logger": logger, "message": message, **extra}


def _echo_json_record(level: str, logger: str, message: str, **extra: Any) -> None:
    import json

    click.echo(json.dumps(_record(level, logger, message, **extra)), err=True)


def _step_json(step: Step) -> dict[str, Any]:
    return {
        "direction": step.direction.value,
        "version": step.migration.version,
        "name": step.migration.name,
    }


def _count(n: int) -> str:
    return f"{n} migration" + ("" if n == 1 else "s")
