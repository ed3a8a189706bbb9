"""Read latency during a sync (issue 12): read p99 while ``serve`` syncs a large source, against
the same serve idle. Target: p99 during a sync at most 2x the idle p99.

One ``serve`` (uvicorn, uvloop; the response cache off by default, so every read reaches the
database; the sync in its own process) with file sources on one fresh database: ``idle`` (N
servers x V versions, registry ``default``, synced at start-up and then left alone) and
``bench1`` .. ``benchR`` (registry ``other``, polled every second; each first holds one server).
The reads are list ``limit=30`` (20 pages in turn) and get-latest (200 servers in turn) of
registry ``default``, alternating, from ``api_load.open_loop`` at a fixed modest rate (latency
from each request's scheduled time).

R rounds (``--rounds``, default 3), each: idle reads; the first sync of ``bench{r}`` (its file
replaced by N x V servers of other names while the load runs); a changed re-sync of it (1% of
those servers changed, one new version each). Each phase pools its rounds' reads, so the noise
of a shared machine hits idle and syncs alike. A sync's window is its attempt in
``sync_attempt`` (started_at .. ended_at, PostgreSQL's clock on this machine); each latency is
classed by its scheduled time. ``--trace`` logs the slowest reads of each sync with what the
sync's backend ran then.

Run: ``python benchmarks/sync_read_bench.py [--servers N] [--rate R] [--rounds R] [--url URL]
[--out FILE] [--cache-bytes B] [--trace] [--quick]``; the table replaces its own section of
``results.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import api_load
from benchmarks.api_setup import Database, Serve, create_database, drop_database, find_database

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- sync-read-bench: begin (benchmarks/sync_read_bench.py replaces this section) -->"
END = "<!-- sync-read-bench: end -->"
TARGET = 2.0  #: p99 during a sync at most this many times the idle p99


def write_registry(path: Path, servers: int, versions: int, prefix: str, changed: int = 0) -> None:
    """``sync_bench.generate``'s document with server names under ``io.github.{prefix}``,
    written in a child process and then moved into place (a reader never sees half a file)."""
    code = (
        "import json; from benchmarks.sync_bench import generate; "
        f"text = json.dumps(generate({servers}, {versions}, {changed})); "
        f"open({str(path) + '.tmp'!r}, 'w').write(text.replace('io.github.bench', "
        f"'io.github.{prefix}'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def write_config(
    path: Path, database: dict[str, Any], idle: Path, others: Sequence[Path], cache: int
) -> Path:
    import yaml

    doc = {
        "database": database,
        "auth": {"mode": "anonymous"},
        "sources": [
            {"name": "idle", "file": {"path": str(idle)}, "syncPolicy": {"interval": "24h"}},
            *(
                {"name": f"bench{r}", "file": {"path": str(f)}, "syncPolicy": {"interval": "1s"}}
                for r, f in enumerate(others, 1)
            ),
        ],
        "registries": [
            {"name": "default", "sources": ["idle"]},
            {"name": "other", "sources": [f"bench{r}" for r in range(1, len(others) + 1)]},
        ],
        "server": {
            "address": "127.0.0.1:0",
            "internalAddress": "127.0.0.1:0",
            "syncPollInterval": "1s",
            "responseCache": {"maxBytes": cache},
        },
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Attempt:
    started: float  #: time.time() of its start
    ended: float
    result: str


def last_attempt(conninfo: str, source: str, since: float, result: str) -> Attempt | None:
    """The latest ended attempt of ``source`` with ``result`` started after ``since`` (the
    source is checked again right after a long sync: the latest attempt may be that check)."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT a.started_at, a.ended_at, a.result, a.message FROM sync_attempt a"
            " JOIN source s ON s.id = a.source_id WHERE s.name = %s AND a.ended_at IS NOT NULL"
            " AND a.started_at >= %s AND a.result IN (%s, 'failed')"
            " ORDER BY a.started_at DESC LIMIT 1",
            (source, datetime.datetime.fromtimestamp(since, datetime.UTC), result),
        ).fetchone()
    if row is None:
        return None
    if row[2] == "failed":
        raise RuntimeError(f"the sync of {source} failed: {row[3]}")
    if row[2] != result:
        return None
    return Attempt(row[0].timestamp(), row[1].timestamp(), row[2])


def wait_attempt(conninfo: str, source: str, since: float, result: str, timeout: float) -> Attempt:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = last_attempt(conninfo, source, since, result)
        if found is not None:
            return found
        time.sleep(0.2)
    raise RuntimeError(f"no {result} sync of {source} within {timeout:g} s")


@dataclass
class Phase:
    label: str
    timeline: list[tuple[float, str, float]]  #: (scheduled wall time, path, latency ms)
    seconds: float  #: the window's length
    errors: int = 0
    overloaded: bool = False

    rounds: list[float] = field(default_factory=list)  #: each round's p99 of all reads, ms

    def add(self, other: Phase) -> None:
        """Pool another round's reads into this phase."""
        self.timeline += other.timeline
        self.seconds += other.seconds
        self.errors += other.errors
        self.overloaded = self.overloaded or other.overloaded
        self.rounds.append(api_load.percentile(other.latencies("all"), 0.99))

    def latencies(self, kind: str) -> list[float]:
        want = {"list": "/servers?", "get": "/versions/latest", "all": ""}[kind]
        return [ms for _, path, ms in self.timeline if want in path]


class SyncTrace:
    """Every 20 ms, what the sync process's backend runs (``pg_stat_activity``): to tell which
    step of a sync the slow reads overlapped (``--trace``)."""

    def __init__(self, conninfo: str) -> None:
        import threading

        self.samples: list[tuple[float, str]] = []
        self._conninfo = conninfo
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            while not self._stop.wait(0.02):
                rows = conn.execute(
                    "SELECT state, left(regexp_replace(query, '\\s+', ' ', 'g'), 60)"
                    " FROM pg_stat_activity WHERE application_name = 'thv-registry-api sync'"
                    " AND state <> 'idle' AND datname = current_database()"
                ).fetchall()
                what = "; ".join(f"{st}: {q}" for st, q in rows) or "(no statement)"
                self.samples.append((time.time(), what))

    def at(self, when: float) -> str:
        import bisect

        i = bisect.bisect_right([t for t, _ in self.samples], when) - 1
        return self.samples[i][1] if i >= 0 else "(before the trace)"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


async def _during(
    base: str,
    paths: Sequence[str],
    rate: float,
    conninfo: str,
    swap: tuple[Path, Path],
    timeout: float,
    source: str,
) -> tuple[Phase, Attempt]:
    """The load runs; after 1 s the file of ``source`` is replaced; the load stops 0.5 s after the
    sync ended; the requests scheduled inside the sync's window are the phase."""
    stop = asyncio.Event()
    timeline: list[tuple[float, str, float]] = []
    load = asyncio.create_task(
        api_load.open_loop(base, paths, rate=rate, seconds=timeout, stop=stop, timeline=timeline)
    )
    await asyncio.sleep(1.0)
    since = time.time()
    os.replace(*swap)
    try:
        attempt = await asyncio.to_thread(
            wait_attempt, conninfo, source, since - 0.5, "synced", timeout
        )
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        result = await load
    inside = [t for t in timeline if attempt.started <= t[0] <= attempt.ended]
    phase = Phase("", inside, attempt.ended - attempt.started, result.errors, result.overloaded)
    return phase, attempt


def run(db: Database, opts: argparse.Namespace, work: Path, log: Any) -> str:
    import psycopg

    from benchmarks.api_bench import get_paths, list_pages, server_name

    name, block = create_database(db.admin)
    conninfo = psycopg.conninfo.make_conninfo(db.admin, dbname=name)
    n, v = opts.servers, opts.versions
    idle_file = work / "idle.json"
    others = [work / f"other{r}.json" for r in range(1, opts.rounds + 1)]
    write_registry(idle_file, n, v, "bench")
    os.replace(f"{idle_file}.tmp", idle_file)
    for r, other in enumerate(others, 1):
        write_registry(other, 1, v, f"other{r}")
        os.replace(f"{other}.tmp", other)
    config = write_config(work / "config.yaml", block, idle_file, others, opts.cache_bytes)
    labels = (
        "idle",
        f"first sync of {n:,} other servers",
        "changed re-sync (1% of them changed, +1 version each)",
    )
    phases = [Phase(label, [], 0.0) for label in labels]
    started = time.time()
    serve = Serve(config, work, "read")
    try:
        serve.wait_started()
        wait_attempt(conninfo, "idle", started - 5, "synced", 600)
        log("idle source synced")
        list_p, _, _ = list_pages(serve.base, opts.pages)
        names = [server_name(i) for i in range(0, n, max(1, n // 200))]
        get_p, _ = get_paths(serve.base, names[:200])
        paths = [p for i, get in enumerate(get_p) for p in (list_p[i % len(list_p)], get)]
        asyncio.run(api_load.open_loop(serve.base, paths, rate=opts.rate, seconds=opts.warm))
        for r, other in enumerate(others, 1):  # rounds: idle, first sync, changed re-sync
            timeline: list[tuple[float, str, float]] = []
            idle = asyncio.run(
                api_load.open_loop(
                    serve.base, paths, rate=opts.rate, seconds=opts.idle, timeline=timeline
                )
            )
            phases[0].add(Phase("", timeline, idle.seconds, idle.errors, idle.overloaded))
            log(f"round {r}: idle p99 {idle.p99_ms:.1f} ms")
            for phase, changed in ((phases[1], 0), (phases[2], 100)):
                write_registry(other, n, v, f"other{r}", changed)
                swap = (Path(f"{other}.tmp"), other)
                serve.rss.reset()
                trace = SyncTrace(conninfo) if opts.trace else None
                during, attempt = asyncio.run(
                    _during(serve.base, paths, opts.rate, conninfo, swap, opts.timeout,
                            f"bench{r}")
                )  # fmt: skip
                phase.add(during)
                if trace is not None:
                    trace.stop()
                    _log_slow(log, during, attempt, trace)
                log(f"round {r}: {phase.label}: {during.seconds:.2f} s, p99 "
                    f"{api_load.percentile(during.latencies('all'), 0.99):.1f} ms, "
                    f"RSS peak {serve.rss.peak_kb / 1024:.0f} MB")  # fmt: skip
    finally:
        serve.stop()
        drop_database(db.admin, name)
    return render(phases, opts, db)


def _log_slow(log: Any, phase: Phase, attempt: Attempt, trace: SyncTrace) -> None:
    """The slowest 2% of the reads of a sync and what the sync's backend ran at their time."""
    slow = sorted(phase.timeline, key=lambda x: -x[2])[: max(5, len(phase.timeline) // 50)]
    for t, path, ms in sorted(slow):
        log(f"  slow read at +{t - attempt.started:.2f} s, {ms:.0f} ms ({path[-40:]}):"
            f" sync backend: {trace.at(t)}")  # fmt: skip


def render(phases: list[Phase], opts: argparse.Namespace, db: Database) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    head = [
        f"## Read latency during a sync ({stamp})",
        "",
        f"One `serve` (response cache {'off' if not opts.cache_bytes else f'{opts.cache_bytes} B'}"
        f"), file sources on one fresh database ({db.which}): reads of registry `default` "
        f"({opts.servers:,} servers x {opts.versions}) while the same serve syncs another "
        f"{opts.servers:,}-server source. {opts.rounds} rounds, each: {opts.idle:g} s idle, the "
        "first sync of a source of its own, a changed re-sync of it; each phase pools its "
        "rounds' reads (drift hits idle and syncs alike). Reads: list `limit=30` "
        f"({opts.pages} pages) and "
        f"get-latest (200 servers) alternating, open loop at {opts.rate:g} requests/s, latency "
        "from each request's scheduled time; during a sync: the requests scheduled inside its "
        f"attempt (`sync_attempt`). 2 cores shared by everything; load average {load:.1f} at the "
        "end.",
        "",
        "| phase | seconds | read | requests | p50 | p99 | max | p99 / idle p99 | met (≤ 2×) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    idle = phases[0]
    base = {k: api_load.percentile(idle.latencies(k), 0.99) for k in ("list", "get", "all")}
    for phase in phases:
        for kind in ("list", "get", "all"):
            values = phase.latencies(kind)
            if not values:
                continue
            p50, p99 = api_load.percentile(values, 0.5), api_load.percentile(values, 0.99)
            ratio = p99 / base[kind] if phase is not idle else 1.0
            met = "–" if phase is idle else ("yes" if ratio <= TARGET else "NO")
            note = " (overloaded)" if phase.overloaded else ""
            head.append(
                f"| {phase.label}{note} | {phase.seconds:.1f} | {kind} | {len(values)} | "
                f"{p50:.1f} ms | {p99:.1f} ms | {max(values):.1f} ms | {ratio:.2f}× | {met} |"
            )
    errors = sum(p.errors for p in phases)
    head += [""]
    head += [
        f"- {p.label}: p99 of all reads by round: " + ", ".join(f"{ms:.1f} ms" for ms in p.rounds)
        for p in phases
    ]
    head += ["", f"{errors} errors (non-2xx or failed requests) over all phases."]
    return "\n".join(head) + "\n"


def record(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (or append one); the rest is kept."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{section}{END}\n"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        text = before + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + block
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--idle", type=float, default=8.0, help="seconds of idle reads a round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (idle, first, re-sync)")
    parser.add_argument("--warm", type=float, default=3.0)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120.0, help="longest sync waited for")
    parser.add_argument("--cache-bytes", type=int, default=0, help="responseCache.maxBytes")
    parser.add_argument("--url", help="PostgreSQL admin URL (default: local, else private)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.md")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--trace", action="store_true", help="log what the sync ran at slow reads")
    opts = parser.parse_args()
    if opts.quick:
        opts.servers, opts.rate, opts.idle, opts.warm, opts.pages = 60, 40.0, 2.0, 0.5, 2
        opts.rounds = 1

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    db = find_database(opts.url)
    try:
        with tempfile.TemporaryDirectory() as work:
            section = run(db, opts, Path(work), log)
    finally:
        db.stop()
    print(section, end="")
    record(opts.out, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
