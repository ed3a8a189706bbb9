"""The tests' waiting helper: it returns the awaited value, and a failure names what was awaited."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from conftest import TestDatabase
from waiting import sessions_waiting_on_lock, wait_until


def test_returns_the_first_truthy_value() -> None:
    calls: list[int] = []

    def third_time() -> list[int]:
        calls.append(1)
        return calls if len(calls) == 3 else []

    assert wait_until(third_time, 5, "the third call", interval=0.001) == [1, 1, 1]


def test_timeout_names_what_was_awaited() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0.2 s waiting for the moon"):
        wait_until(lambda: False, 0.2, "the moon")
    assert 0.2 <= time.monotonic() - started < 5


def test_an_ended_process_fails_at_once_with_its_output() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.exit('gave up early')"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"exited with 1 before the row: 'gave up early"):
        wait_until(lambda: False, 60, "the row", alive=proc)
    assert time.monotonic() - started < 30


def test_an_ended_thread_fails_at_once() -> None:
    thread = threading.Thread(target=lambda: None, name="worker")
    thread.start()
    thread.join(10)
    with pytest.raises(AssertionError, match="the thread worker ended before the retry"):
        wait_until(lambda: False, 60, "the retry", alive=thread)


def test_sees_a_session_blocked_on_an_advisory_lock(database: TestDatabase) -> None:
    with database.connect() as holder, database.connect() as watcher:
        holder.execute("SELECT pg_advisory_lock(42)")
        assert sessions_waiting_on_lock(watcher, database.name) == []
        waiter = subprocess.Popen(
            [sys.executable, "-c", "import psycopg, sys; psycopg.connect(sys.argv[1])"
             ".execute('SELECT pg_advisory_lock(42)')", database.conninfo],
        )  # fmt: skip
        try:
            pids = wait_until(
                lambda: sessions_waiting_on_lock(watcher, database.name, lock="advisory"),
                30,
                "the second session to wait for the advisory lock",
                alive=waiter,
            )
            assert len(pids) == 1
            assert sessions_waiting_on_lock(watcher, database.name, lock="relation") == []
        finally:
            holder.execute("SELECT pg_advisory_unlock(42)")
            assert waiter.wait(timeout=30) == 0
