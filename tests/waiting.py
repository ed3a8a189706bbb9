"""Waiting in tests: every wait has a deadline, and a timeout says what was awaited.

A test that waits for another process or session polls the condition itself (a row in
pg_stat_activity, a log record) instead of sleeping a fixed time, and gives up with a message
naming the condition rather than hanging until pytest-timeout ends the whole test.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    *,
    alive: subprocess.Popen[Any] | threading.Thread | None = None,
    interval: float = 0.01,
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    :param what: the awaited condition, for the failure ("golang-migrate waiting for the lock").
    :param alive: a process or thread the condition depends on: fail as soon as it has ended
        (with the process's exit code and output) instead of waiting out the timeout.
    :raises AssertionError: after ``timeout`` seconds, or when ``alive`` ended first.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if isinstance(alive, subprocess.Popen) and alive.poll() is not None:
            out, err = alive.communicate()
            raise AssertionError(
                f"the process exited with {alive.returncode} before {what}: {err or out!r}"
            )
        if isinstance(alive, threading.Thread) and not alive.is_alive():
            raise AssertionError(f"the thread {alive.name} ended before {what}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def sessions_waiting_on_lock(
    conn: psycopg.Connection[Any], dbname: str, *, lock: str = "", application_name: str = ""
) -> list[int]:
    """Backends of ``dbname`` blocked on a heavyweight lock (pg_stat_activity's
    ``wait_event_type = 'Lock'``), optionally only one kind (``lock``: ``advisory``,
    ``relation``, ...) or one ``application_name``."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
        "AND (%s = '' OR wait_event = %s) AND (%s = '' OR application_name = %s)",
        (dbname, lock, lock, application_name, application_name),
    ).fetchall()
    return [int(r[0]) for r in rows]
