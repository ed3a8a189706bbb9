"""Where a step's time goes: ours against the in-session psql floor, measured, not estimated.

    python benchmarks/breakdown.py [--steps 1000] [--no-profile]

Starts a private PostgreSQL (PostgreSQL defaults, plus ``log_min_duration_statement = 0``: the
server logs every query with its duration), then for ours and for the psql floor (one session, one
transaction per file) runs ``up`` of N steps, a no-op ``up``, and the revert of all N, each as its
own process. Per step, with the no-op run (the fixed cost) taken out as in run.py:

  wall            (run - no-op) / N, start to exit of the process
  client CPU      user + system time of the process (wait4's rusage)
  server          the durations the server logged for the tool's queries (COMMIT includes the
                  WAL flush), and the queries (round trips) per step
  replay          ours' logged queries sent again, in order, by a bare psycopg loop on a fresh
                  database: the same server work and round trips with no engine around them

and, unless --no-profile, ours' ``up`` and no-op ``up`` once more under cProfile: the client's
Python time per step split by where it is spent. Prints a Markdown report.
"""

from __future__ import annotations

import argparse
import cProfile  # noqa: F401  (documents the dependency: the profile runs as python -m cProfile)
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import gen  # noqa: E402
from benchmarks.run import _table, compile_ours  # noqa: E402
from benchmarks.server import PrivateServer, find_bin_dir, start_private_server  # noqa: E402
from benchmarks.tools import Ours, PsqlFloor, Tool  # noqa: E402

LOG_PREFIX = "@@%d@@ "
RECORD = re.compile(r"^@@(?P<db>[^@]*)@@ LOG:  duration: (?P<ms>[\d.]+) ms  (?P<what>.*)$")
LOG_WAIT_S = 30  #: how long the server may take to write a run's last log line
TOP_FUNCTIONS = 15


@dataclass
class Run:
    wall: float
    cpu: float  #: user + system of the process
    server: list[tuple[float, str]]  #: (seconds, query text) the server logged, in order


@dataclass
class Measured:
    apply: Run
    noop: Run
    revert: Run


def run(cmd: list[str], env: dict[str, str], server: PrivateServer, dbname: str) -> Run:
    log = server.root / "log"
    start = log.stat().st_size
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, _logged(server, start, dbname))


def _logged(server: PrivateServer, start: int, dbname: str) -> list[tuple[float, str]]:
    """The queries logged for ``dbname`` after byte ``start``, once a marker query shows up."""
    import psycopg

    marker = f"breakdown marker {time.monotonic_ns()}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"SELECT '{marker}'".encode())
    log = server.root / "log"
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        with log.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
        if marker in text:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"the server log showed no marker within {LOG_WAIT_S} s")
        time.sleep(0.05)
    records: list[tuple[float, str]] = []
    ours = False  #: the last prefixed line was one of our records
    for line in text.splitlines():
        if line.startswith("@@"):
            m = RECORD.match(line)
            ours = bool(m and m["db"] == dbname)
            if m and ours:
                records.append((float(m["ms"]) / 1000, m["what"]))
        elif ours:  # a multi-line query's next line
            ms, what = records[-1]
            records[-1] = (ms, what + "\n" + line.removeprefix("\t"))
    return records


def fresh_db(server: PrivateServer, name: str) -> str:
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    return server.url(name)


def measure(tool: Tool, n: int, server: PrivateServer, work: Path) -> Measured:
    dbname = f"breakdown_{tool.key}"
    url = fresh_db(server, dbname)
    env = tool.env()
    apply = run(tool.up(n, url, work)[0], env, server, dbname)
    noop = run(tool.noop(n, url, work)[0], env, server, dbname)
    revert = run(tool.down_all(n, url, work)[0], env, server, dbname)
    return Measured(apply, noop, revert)


def replay(server: PrivateServer, ours: Measured) -> tuple[float, float]:
    """Ours' simple-protocol queries again, apply then revert, from one bare psycopg session:
    seconds for each. Parameterised queries (planning reads) are left out: they are fixed cost."""
    import psycopg

    url = fresh_db(server, "breakdown_replay")
    times = []
    with psycopg.connect(url, autocommit=True) as conn:
        for measured in (ours.apply, ours.revert):
            queries = [q.removeprefix("statement: ") for _, q in measured.server]
            queries = [q for q in queries if not q.startswith(("parse ", "bind ", "execute "))]
            t0 = time.perf_counter()
            for q in queries:
                conn.execute(q.encode(), prepare=False)
            times.append(time.perf_counter() - t0)
    return times[0], times[1]


#: cProfile's entries by where they run: (category, test on "file:function")
CATEGORIES: list[tuple[str, Callable[[str], bool]]] = [
    ("waiting for the server (psycopg's wait)", lambda s: "wait" in s and "psycopg" in s),
    (
        "parsing the files (libpg_query via pglast, sqlfile)",
        lambda s: "pglast" in s or "sqlfile" in s,
    ),
    ("hashing the files (sha256)", lambda s: "sha256" in s or "hashlib" in s),
    ("psycopg, client side (queries, results)", lambda s: "psycopg" in s),
    ("start-up: imports", lambda s: "importlib" in s or "<frozen" in s),
    ("logging and output", lambda s: "logging" in s or "click" in s),
    ("our engine and CLI (thv_registry)", lambda s: "thv_registry" in s),
]


def profile(
    tool: Ours, n: int, server: PrivateServer, work: Path
) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per step by category, and by function: cProfile's own time of ``up`` minus a
    no-op ``up``'s."""
    dbname = "breakdown_profile"
    url = fresh_db(server, dbname)
    totals: dict[str, dict[str, float]] = {}
    funcs: dict[str, dict[str, float]] = {}
    for kind, cmd in (("apply", tool.up(n, url, work)[0]), ("noop", tool.noop(n, url, work)[0])):
        out = work / f"{kind}.prof"
        args = cmd[cmd.index("migrate") :]
        prof = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "thv_registry", *args]
        run(prof, tool.env(), server, dbname)
        stats = pstats.Stats(str(out))
        by: dict[str, float] = {}
        funcs[kind] = {}
        for (file, _, func), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            where = f"{file}:{func}"
            name = next((c for c, test in CATEGORIES if test(where)), "other Python")
            by[name] = by.get(name, 0.0) + tottime
            short = f"{Path(file).name}:{func}" if file != "~" else func
            funcs[kind][short] = funcs[kind].get(short, 0.0) + tottime
        totals[kind] = by
    names = [c for c, _ in CATEGORIES] + ["other Python"]
    cats = {c: (totals["apply"].get(c, 0.0) - totals["noop"].get(c, 0.0)) / n for c in names}
    per_func = {f: (s - funcs["noop"].get(f, 0.0)) / n for f, s in funcs["apply"].items()}
    return cats, per_func


def per_step(m: Measured, n: int, kind: str) -> dict[str, float]:
    whole = m.apply if kind == "apply" else m.revert
    server = sum(s for s, _ in whole.server) - sum(s for s, _ in m.noop.server)
    return {
        "wall": (whole.wall - m.noop.wall) / n,
        "cpu": (whole.cpu - m.noop.cpu) / n,
        "server": server / n,
        "queries": (len(whole.server) - len(m.noop.server)) / n,
    }


def report(n: int, ours: Measured, floor: Measured, replays: tuple[float, float],
           prof: tuple[dict[str, float], dict[str, float]] | None) -> str:  # fmt: skip
    lines = [f"Per step, N = {n}, the no-op run taken out (ms unless said):", ""]
    rows = [["", "ours apply", "psql apply", "ours revert", "psql revert"]]
    cells = {
        (who, kind): per_step(m, n, kind)
        for who, m in (("ours", ours), ("psql", floor))
        for kind in ("apply", "revert")
    }
    order = [("ours", "apply"), ("psql", "apply"), ("ours", "revert"), ("psql", "revert")]

    def ms(x: float) -> str:
        return f"{x * 1000:.3f}"

    rows.append(["wall (start to exit)", *(ms(cells[k]["wall"]) for k in order)])
    rows.append(["client CPU (user + system)", *(ms(cells[k]["cpu"]) for k in order)])
    rows.append(["server: logged query durations", *(ms(cells[k]["server"]) for k in order)])
    rows.append(["queries (round trips) per step", *(f"{cells[k]['queries']:.2f}" for k in order)])
    rest = [cells[k]["wall"] - cells[k]["cpu"] - cells[k]["server"] for k in order]
    rows.append(["rest: wire, scheduling, client waits", *(ms(r) for r in rest)])
    rows.append(
        ["replay of ours' queries, bare psycopg", ms(replays[0] / n), "", ms(replays[1] / n), ""]
    )
    lines += _table(rows)
    if prof:
        cats, per_func = prof
        lines += ["", "Ours `up` under cProfile (which slows Python code), own time per step:", ""]
        total = sum(cats.values())
        prows = [["where", "ms per step", "share"]]
        for name, sec in sorted(cats.items(), key=lambda kv: -kv[1]):
            prows.append([name, ms(sec), f"{sec / total:.0%}" if total > 0 else "–"])
        lines += _table(prows)
        lines += ["", "The functions with the most own time per step (same run):", ""]
        frows = [["function", "ms per step"]]
        for name, sec in sorted(per_func.items(), key=lambda kv: -kv[1])[:TOP_FUNCTIONS]:
            frows.append([f"`{name}`", ms(sec)])
        lines += _table(frows)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--no-profile", action="store_true")
    args = p.parse_args(argv)
    n = args.steps
    server = start_private_server(
        {"log_min_duration_statement": "0", "log_line_prefix": LOG_PREFIX}
    )
    work = Path(tempfile.mkdtemp(prefix="thv-breakdown-"))
    os.chmod(work, 0o755)
    try:
        compile_ours()
        golang = gen.write_golang(work / "golang", n)
        ours, floor = Ours(), PsqlFloor(find_bin_dir() / "psql", per_file=True)
        for tool in (ours, floor):
            tool.prepare(work, n, golang)
            subprocess.run(tool.warmup(), capture_output=True, timeout=120)
        measured_ours = measure(ours, n, server, work)
        measured_floor = measure(floor, n, server, work)
        replays = replay(server, measured_ours)
        prof = None if args.no_profile else profile(ours, n, server, work)
        text = report(n, measured_ours, measured_floor, replays, prof)
    finally:
        server.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
