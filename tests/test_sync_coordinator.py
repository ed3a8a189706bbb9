"""The coordinator against a real PostgreSQL, in one process: leases, due times, back-off,
retries of serialization failures and deadlocks, and configuration mismatches between replicas
(several ``SyncService`` objects on one database are several replicas)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from psycopg_pool import AsyncConnectionPool

from conftest import TestDatabase
from sync_helpers import migrate, server, settings, wait_for, with_pool, write_registry
from thv_registry.config import Settings
from thv_registry.sync import SyncService, lease
from thv_registry.sync.errors import SyncError

A, B = "io.github.acme/alpha", "io.github.acme/beta"


@pytest.fixture
def db(database: TestDatabase) -> TestDatabase:
    migrate(database)
    return database


def tuned(conf: Settings, **server: Any) -> Settings:
    return msgspec.structs.replace(conf, server=msgspec.structs.replace(conf.server, **server))


def attempts(db: TestDatabase, source: str) -> list[tuple[Any, ...]]:
    """(replica, started_at, ended_at, result, message) of the source's attempts, in order."""
    return db.query(
        "SELECT a.replica, a.started_at, a.ended_at, a.result, a.message FROM sync_attempt a"
        " JOIN source s ON s.id = a.source_id WHERE s.name = %s ORDER BY a.id",
        (source,),
    )


def status_of(db: TestDatabase, source: str) -> dict[str, Any]:
    cols = ("sync_status", "attempt_count", "attempts_total", "server_count", "message",
            "started_at", "next_due_at", "lease_holder", "last_sync_hash")  # fmt: skip
    row = db.query(
        f"SELECT {', '.join('y.' + c for c in cols)} FROM registry_sync y"
        " JOIN source s ON s.id = y.source_id WHERE s.name = %s",
        (source,),
    )[0]
    return dict(zip(cols, row, strict=True))


def test_an_unchanged_source_never_holds_back_another(db: TestDatabase, tmp_path: Path) -> None:
    """The Go edition's head-of-line starvation: the oldest source unchanged, the others never
    synced again. Here each source is checked once per interval, changed or not."""
    one = write_registry(tmp_path / "1.json", [server(A, "1.0.0")])
    two = write_registry(tmp_path / "2.json", [server(B, "1.0.0")])
    conf = settings(
        {"first": one, "second": two}, interval=timedelta(seconds=1),
        poll=timedelta(milliseconds=100),
    )  # fmt: skip

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        service = SyncService(pool, conf)
        await service.reconcile()
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        await asyncio.sleep(4.2)
        stop.set()
        await asyncio.wait_for(task, 5)

    with_pool(db, body)
    for name in ("first", "second"):
        runs = attempts(db, name)
        assert [r[3] for r in runs][:1] == ["synced"] and 3 <= len(runs) <= 5, runs
        results = [r[3] for r in runs]
        assert set(results[1:-1]) == {"unchanged"}  # the stop may interrupt the last one
        assert results[-1] in ("unchanged", "interrupted"), results
        starts = [r[1] for r in runs]
        gaps = [(b - a).total_seconds() for a, b in zip(starts, starts[1:], strict=False)]
        # once per interval: never early; late by a poll and a busy machine's delay at most
        assert all(1.0 <= g < 2.0 for g in gaps), gaps
    assert db.query("SELECT count(*) FROM sync_replica") == [(0,)]  # forgotten when stopped


def test_failures_back_off_doubling_up_to_the_cap_and_keep_the_last_good_sync(
    db: TestDatabase, tmp_path: Path
) -> None:
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0"), server(B, "1.0.0")])
    conf = tuned(
        settings({"local": path}, interval=timedelta(seconds=10)),
        sync_backoff_max=timedelta(seconds=35),
    )
    waits: list[float] = []

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        service = SyncService(pool, conf)
        await service.reconcile()
        assert (await service.sync_now("local")).result == "synced"
        path.write_text("{broken")
        for _ in range(4):
            outcome = await service.sync_now("local")
            assert outcome.result == "failed"
            st = status_of(db, "local")
            waits.append((st["next_due_at"] - st["started_at"]).total_seconds())
        write_registry(path, [server(A, "1.0.0")])
        assert (await service.sync_now("local")).result == "synced"
        await service.close()

    with_pool(db, body)
    assert waits == [10.0, 20.0, 35.0, 35.0]  # the interval, doubled, capped by syncBackoffMax
    st = status_of(db, "local")
    assert (st["sync_status"], st["attempt_count"], st["attempts_total"]) == ("COMPLETED", 0, 6)
    assert (st["next_due_at"] - st["started_at"]).total_seconds() == 10.0
    runs = attempts(db, "local")
    assert [r[3] for r in runs] == ["synced", "failed", "failed", "failed", "failed", "synced"]
    assert "is not a valid upstream registry file" in runs[1][4]


def test_failed_attempts_keep_counts_and_say_what_failed(db: TestDatabase, tmp_path: Path) -> None:
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0"), server(B, "1.0.0")])
    conf = settings({"local": path})

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        service = SyncService(pool, conf)
        await service.reconcile()
        await service.sync_now("local")
        path.unlink()
        await service.sync_now("local")
        await service.close()

    with_pool(db, body)
    st = status_of(db, "local")
    assert (st["sync_status"], st["attempt_count"], st["server_count"]) == ("FAILED", 1, 2)
    assert st["message"] == f"cannot read {path}: no such file"
    assert st["last_sync_hash"] is not None and st["lease_holder"] is None


def test_a_dead_replicas_lease_expires_and_another_takes_the_source_over(
    db: TestDatabase, tmp_path: Path
) -> None:
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])
    conf = settings(
        {"local": path}, interval=timedelta(seconds=30), poll=timedelta(milliseconds=100)
    )

    async def body(pool: AsyncConnectionPool[Any]) -> float:
        service = SyncService(pool, conf)
        await service.reconcile()
        dead = await lease.claim_due(pool, ["local"], "dead:1:x", timedelta(seconds=1.5))
        assert dead is not None  # claimed, then never renewed: its replica "died"
        busy = await service.sync_now("local")
        assert (busy.result, busy.message) == ("busy", "replica dead:1:x syncs it now")
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        loop = asyncio.get_running_loop()
        began = loop.time()

        async def taken_over() -> bool:
            return bool(status_of(db, "local")["sync_status"] == "COMPLETED")

        await wait_for(taken_over, timeout=5)
        took = loop.time() - began
        stop.set()
        await asyncio.wait_for(task, 5)
        return took

    took = with_pool(db, body)
    assert 1.0 < took < 2.5  # after the lease, not before
    runs = attempts(db, "local")
    assert [(r[0], r[3]) for r in runs][0] == ("dead:1:x", "lost")
    assert runs[1][3] == "synced" and runs[1][0] != "dead:1:x"
    assert db.query("SELECT count(*) FROM registry_entry") == [(1,)]


def test_a_lease_taken_over_stops_the_write_and_the_renewal_notices(
    db: TestDatabase, tmp_path: Path
) -> None:
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])
    conf = settings({"local": path})

    async def body(pool: AsyncConnectionPool[Any]) -> list[str | None]:
        service = SyncService(pool, conf)
        await service.reconcile()
        claimed = await lease.claim_due(pool, ["local"], "me", timedelta(seconds=30))
        assert claimed is not None
        held, _ = claimed
        async with pool.connection() as conn:
            await conn.execute("UPDATE registry_sync SET lease_holder = 'thief'")
        with pytest.raises(lease.LeaseLost) as caught:
            async with pool.connection() as conn, conn.transaction():
                await lease.hold(conn, held, "local")
        assert caught.value.holder == "thief" and isinstance(caught.value, SyncError)
        lost: list[str | None] = []
        async with lease.renewing(pool, held, timedelta(seconds=0.3), lost.append):
            await wait_for(lambda: asyncio.sleep(0, bool(lost)), timeout=3)
        await service.close()
        return lost

    assert with_pool(db, body) == ["thief"]


def test_serialization_failures_and_deadlocks_are_retried(
    db: TestDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The write transaction is run again after 40001 and 40P01 (raised here by a trigger the
    first two times, as PostgreSQL raises them under contention); the sync succeeds."""
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])
    with db.connect() as conn:
        conn.execute("CREATE SEQUENCE conflicts")  # not rolled back with the transaction
        conn.execute(
            "CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$ DECLARE k int;"
            " BEGIN k := nextval('conflicts');"
            " IF k = 1 THEN RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001'; END IF;"
            " IF k = 2 THEN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END IF;"
            " RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER conflict BEFORE INSERT ON mcp_server EXECUTE FUNCTION conflict()"
        )
    caplog.set_level("INFO", logger="thv_registry.sync.retry")

    async def body(pool: AsyncConnectionPool[Any]) -> str:
        service = SyncService(pool, settings({"local": path}))
        await service.reconcile()
        outcome = await service.sync_now("local")
        await service.close()
        return outcome.result

    assert with_pool(db, body) == "synced"
    assert db.query("SELECT last_value FROM conflicts") == [(3,)]  # the third run committed
    st = status_of(db, "local")
    assert (st["sync_status"], st["attempts_total"], st["server_count"]) == ("COMPLETED", 1, 1)
    retried = [r.getMessage() for r in caplog.records if "running it again" in r.getMessage()]
    assert len(retried) == 2 and "40001" in retried[0] and "40P01" in retried[1]


def test_replicas_with_other_configs_delete_nothing_until_they_agree(
    db: TestDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rolling out a config without "old": while a replica with the old config lives, the new
    one keeps "old" (and says so on every beat, with the gauge's callback); once the old
    replica is gone, the next beat removes it."""
    one = write_registry(tmp_path / "1.json", [server(A, "1.0.0")])
    two = write_registry(tmp_path / "2.json", [server(B, "1.0.0")])
    both = settings({"keep": one, "old": two}, {"default": ("keep", "old")})
    new = settings({"keep": one}, {"default": ("keep",)}, poll=timedelta(milliseconds=100))
    seen: list[bool] = []

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        older = SyncService(pool, both)
        await older.reconcile()
        await older.sync_now("old")
        newer = SyncService(pool, new, on_mismatch=seen.append)
        await newer.reconcile()
        assert seen == [True]
        assert sorted(str(r[0]) for r in db.query("SELECT name FROM source")) == ["keep", "old"]
        again = SyncService(pool, both, on_mismatch=seen.append)  # same config as older
        await again.reconcile()
        assert seen == [True, True]  # newer still differs
        stop = asyncio.Event()
        task = asyncio.create_task(newer.run(stop))
        await asyncio.sleep(0.5)
        assert db.query("SELECT count(*) FROM source WHERE name = 'old'") == [(1,)]
        await older.close()
        await again.close()

        async def dropped() -> bool:
            return db.query("SELECT count(*) FROM source WHERE name = 'old'") == [(0,)]

        await wait_for(dropped, timeout=3)
        stop.set()
        await asyncio.wait_for(task, 5)

    with_pool(db, body)
    assert seen[-1] is False and seen.count(True) >= 3
    warnings = [
        r.getMessage() for r in caplog.records if "configuration mismatch" in r.getMessage()
    ]
    assert len(warnings) >= 3  # at start-up and on every beat while it lasted
    assert "must share one configuration" in warnings[0]
    assert db.query("SELECT count(*) FROM registry_entry") == [(1,)]


def test_replicas_with_one_config_reconcile_deletions_at_once(
    db: TestDatabase, tmp_path: Path
) -> None:
    one = write_registry(tmp_path / "1.json", [server(A, "1.0.0")])
    conf = settings({"keep": one})
    with db.connect() as conn:
        conn.execute("INSERT INTO source (name, source_type) VALUES ('gone', 'file')")
    seen: list[bool] = []

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        first = SyncService(pool, conf, on_mismatch=seen.append)
        second = SyncService(pool, conf, on_mismatch=seen.append)
        await first.reconcile()
        await second.reconcile()
        await first.close()
        await second.close()

    with_pool(db, body)
    assert seen == [False, False]
    assert db.query("SELECT name FROM source") == [("keep",)]


def test_a_lease_lost_during_the_fetch_cancels_the_sync_and_records_nothing(
    db: TestDatabase, tmp_path: Path
) -> None:
    """The fetch of a slow URL outlives this replica's hold on the lease (another replica has
    it now): the renewal notices, the sync is abandoned (LOST), the status stays the thief's."""
    import http.server
    import threading

    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])
    body_bytes = path.read_bytes()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(3)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body_bytes)))
            self.end_headers()
            self.wfile.write(body_bytes)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/r.json"
    conf = tuned(settings({"local": url}), sync_lease=timedelta(milliseconds=600))

    async def body(pool: AsyncConnectionPool[Any]) -> tuple[Any, float]:
        service = SyncService(pool, conf)
        await service.reconcile()
        loop = asyncio.get_running_loop()
        began = loop.time()
        task = asyncio.create_task(service.sync_now("local"))
        await asyncio.sleep(0.3)
        async with pool.connection() as conn:
            await conn.execute("UPDATE registry_sync SET lease_holder = 'thief'")
        outcome = await asyncio.wait_for(task, 5)
        await service.close()
        return outcome, loop.time() - began

    try:
        outcome, took = with_pool(db, body)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert outcome.result == "lost" and "lost to replica thief" in outcome.message
    assert took < 1.5  # the renewal (every 0.2 s) noticed; the 3 s fetch was not awaited
    st = status_of(db, "local")
    assert (st["sync_status"], st["lease_holder"], st["attempt_count"]) == (
        "IN_PROGRESS", "thief", 0,
    )  # fmt: skip


def test_a_shortened_interval_applies_at_once(db: TestDatabase, tmp_path: Path) -> None:
    path = write_registry(tmp_path / "r.json", [server(A, "1.0.0")])
    hourly = settings({"local": path}, interval=timedelta(hours=1))
    often = settings(
        {"local": path}, interval=timedelta(seconds=1), poll=timedelta(milliseconds=100)
    )

    async def body(pool: AsyncConnectionPool[Any]) -> None:
        first = SyncService(pool, hourly)
        await first.reconcile()
        await first.sync_now("local")
        await first.close()
        second = SyncService(pool, often)
        await second.reconcile()
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop))

        async def checked() -> bool:
            return len(attempts(db, "local")) >= 3

        await wait_for(checked, timeout=5)
        stop.set()
        await asyncio.wait_for(task, 5)

    with_pool(db, body)
    runs = attempts(db, "local")
    assert [r[3] for r in runs][:2] == ["synced", "unchanged"]  # not an hour later
    assert (runs[2][1] - runs[1][1]).total_seconds() < 2.0
