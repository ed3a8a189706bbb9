"""Questions on stderr, answers from stdin: never a hang, never a silent cancel."""

from __future__ import annotations

import sys

import click

from thv_registry.errors import Cancelled

__all__ = ["read_answer", "only_yes"]


def only_yes(answer: str, what: str) -> bool:
    """True for ``yes``; a bare ``y`` is refused with a word, so the cancel is not silent."""
    if answer.lower() == "yes":
        return True
    if answer.lower() == "y":
        click.echo(f"Only 'yes' confirms {what}; 'y' is not enough.", err=True)
    return False


def read_answer(question: str) -> str:
    """Prompt on stderr and read one line from stdin; no answer at all raises ``Cancelled``.

    Reads a line rather than using a terminal-only prompt, so answers can be piped in; end of
    input or a closed stdin fails at once instead of waiting for input that cannot come.
    """
    click.echo(question, nl=False, err=True)
    line = ""
    stream = sys.stdin
    if stream is not None and not stream.closed:
        try:
            line = stream.readline()
        except (OSError, ValueError):  # bad descriptor, undecodable bytes
            line = ""
    if not line or not stream.isatty():
        click.echo(err=True)  # a terminal echoes the user's Enter; piped input does not
    if not line:
        raise Cancelled(
            "Confirmation is required but no answer could be read (standard input is closed or "
            "at its end); nothing was changed.",
            hint="Pass --yes to confirm in non-interactive runs (CI jobs, containers, scripts).",
        )
    return line.strip()
