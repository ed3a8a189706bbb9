"""Issue 5's benchmark: ours vs dbmate, yoyo, Alembic, sql-migrate and the psql floors, one run.

    python benchmarks/run.py [--steps 200,1000] [--races 8,16] [--quick] [--url URL] [--only ...]

Starts a private PostgreSQL in a temp dir (PostgreSQL defaults: fsync and synchronous_commit on;
``--url`` uses another server, where it creates and drops databases named ``thvbench_*``),
generates the migration set in each tool's format, and measures, each command as its own process:

  S1  apply all N steps to an empty database (for each --steps size)
  S2  ``up`` on the up-to-date database (the whole process; median of --s2-runs, interleaved);
      for the psql rows, a psql session that runs no file
  S3  revert all N (for each --steps size)
  S4  --races processes running ``up`` at once on an empty database: time, errors, final state

and from them each tool's cost per step, its fixed cost (S2) taken out, at the largest size N:
apply (S1(N) - S2) / N and revert (S3(N) - S2) / N,

plus planning without a database (discovery, names, checksums) for 1,000 and 10,000 files. Prints
the table and writes it to benchmarks/results.md (or --out).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import gen  # noqa: E402
from benchmarks.planning import PlanningResult, bench_planning  # noqa: E402
from benchmarks.tools import Tool, all_tools  # noqa: E402

HERE = Path(__file__).resolve().parent
DB_PREFIX = "thvbench_"
STEP_LIMIT = 1.10  #: apply and revert cost per step: × the in-session psql floor's
S2_LIMIT = 1.2  #: × the Python floor
PLAN_LIMIT_S = 1.0
COMMAND_TIMEOUT_S = 900  #: a command running longer is recorded as an error, not waited for
#: the peers: the per-step targets ask for no more than the best of them
PEERS = ("dbmate", "yoyo", "alembic", "sqlmigrate")
#: S2's floors: key -> (row name, the modules imported before connect; select 1)
PY_FLOORS = {
    "pyfloor": ("python floor", "psycopg"),
    "pylibfloor": ("python floor + the CLI's libraries", "psycopg, click, yaml, hashlib"),
}


@dataclass
class Cell:
    seconds: float | None = None
    text: str = ""  #: shown instead of / after the seconds (n/a, errors)
    errors: int = 0


@dataclass
class Results:
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    planning: list[PlanningResult] = field(default_factory=list)
    planning_big_pad: PlanningResult | None = None


class Bench:
    def __init__(self, args: argparse.Namespace, admin_url: str, work: Path) -> None:
        self.args = args
        self.admin_url = admin_url  #: .../postgres
        self.work = work
        self.results = Results()
        self.created: list[str] = []

    # -- databases -------------------------------------------------------------------------------

    def url(self, dbname: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + dbname

    def fresh_db(self, name: str) -> str:
        import psycopg

        dbname = DB_PREFIX + name
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{dbname}"')
        self.created.append(dbname)
        return self.url(dbname)

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for dbname in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    def count_tables(self, url: str) -> int:
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute(
                "select count(*) from pg_tables where tablename like 'bench\\_%'"
            ).fetchone()
            return int(row[0]) if row else 0

    # -- running ---------------------------------------------------------------------------------

    def run_cmds(self, tool: Tool, cmds: list[list[str]]) -> tuple[float, str | None]:
        """Run the commands one after another; (seconds, None) or (seconds, error text)."""
        t0 = time.perf_counter()
        for cmd in cmds:
            try:
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, env=tool.env(), timeout=COMMAND_TIMEOUT_S
                )
            except subprocess.TimeoutExpired:
                return time.perf_counter() - t0, f"{cmd[0]} ran over {COMMAND_TIMEOUT_S} s"
            if proc.returncode != 0:
                why = _error_line(proc.stderr or proc.stdout)
                return time.perf_counter() - t0, f"exit {proc.returncode}: {why}"
        return time.perf_counter() - t0, None

    def record(self, tool: Tool, scenario: str, seconds: float, error: str | None) -> None:
        if error:
            self.results.cells[tool.key, scenario] = Cell(seconds, "error", 1)
            self.results.notes.append(f"{tool.label}, {scenario}: {error}")
        else:
            self.results.cells[tool.key, scenario] = Cell(seconds)

    def s1(self, tools: list[Tool]) -> None:
        for n in self.args.steps:
            times: dict[str, list[float]] = {t.key: [] for t in tools}
            errors: dict[str, str] = {}
            for r in range(self.args.repeat):  # round robin: drift (disk, CPU) hits all alike
                for tool in tools:
                    if tool.key in errors:
                        continue
                    keep = r == self.args.repeat - 1  # S2 and S3 start from it
                    url = self.fresh_db(f"{tool.key}_{n}" if keep else f"{tool.key}_{n}_r{r}")
                    seconds, error = self.run_cmds(tool, tool.up(n, url, self.work))
                    times[tool.key].append(seconds)
                    if not error and self.count_tables(url) != n:
                        error = f"{self.count_tables(url)} of {n} tables after the run"
                    if error:
                        errors[tool.key] = error
            for tool in tools:
                self.record(
                    tool, f"S1/{n}", statistics.median(times[tool.key]), errors.get(tool.key)
                )
                self.progress(tool, f"S1/{n}")

    def s2(self, tools: list[Tool]) -> None:
        n0 = self.args.steps[0]
        floor_url = self.url(f"{DB_PREFIX}thv_{n0}")
        floor_cmds = {
            key: [
                sys.executable,
                "-c",
                f"import {mods}; psycopg.connect({floor_url!r}).execute('select 1')",
            ]
            for key, (_, mods) in PY_FLOORS.items()
        }
        # the psql rows keep no state: their S2 is a session that runs no file
        runnable = [t for t in tools if not self.failed(t, f"S1/{n0}")]
        samples: dict[str, list[float]] = {t.key: [] for t in runnable}
        samples |= {key: [] for key in floor_cmds}
        errors: dict[str, str] = {}
        for _ in range(self.args.s2_runs):  # interleaved, so drift hits every tool alike
            for tool in runnable:
                if tool.key in errors:
                    continue
                url = self.url(f"{DB_PREFIX}{tool.key}_{n0}")
                seconds, error = self.run_cmds(tool, tool.noop(n0, url, self.work))
                if error:
                    errors[tool.key] = error
                samples[tool.key].append(seconds)
            for key, cmd in floor_cmds.items():
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, timeout=COMMAND_TIMEOUT_S)
                samples[key].append(time.perf_counter() - t0)
        for tool in runnable:
            self.record(tool, "S2", statistics.median(samples[tool.key]), errors.get(tool.key))
        for key in floor_cmds:
            self.results.cells[key, "S2"] = Cell(statistics.median(samples[key]))
        self.progress(None, "S2")

    def s3(self, tools: list[Tool]) -> None:
        for n in self.args.steps:
            self._s3(tools, n)

    def _s3(self, tools: list[Tool], n: int) -> None:
        runnable = [t for t in tools if not self.failed(t, f"S1/{n}")]
        times: dict[str, list[float]] = {t.key: [] for t in runnable}
        errors: dict[str, str] = {}
        for r in range(self.args.repeat):  # round robin, as in S1
            for tool in runnable:
                if tool.key in errors:
                    continue
                url = self.url(f"{DB_PREFIX}{tool.key}_{n}")
                error = None
                if r:  # apply again (not timed) for the next revert
                    _, error = self.run_cmds(tool, tool.up(n, url, self.work))
                if not error:
                    seconds, error = self.run_cmds(tool, tool.down_all(n, url, self.work))
                    times[tool.key].append(seconds)
                if not error and self.count_tables(url):
                    error = f"{self.count_tables(url)} tables left after reverting all"
                if error:
                    errors[tool.key] = error
        for tool in runnable:
            seconds = statistics.median(times[tool.key]) if times[tool.key] else 0.0
            self.record(tool, f"S3/{n}", seconds, errors.get(tool.key))
            self.progress(tool, f"S3/{n}")

    def s4(self, tools: list[Tool]) -> None:
        n0 = self.args.steps[0]
        for racers in self.args.races:
            for tool in tools:
                if not tool.races:
                    continue
                url = self.fresh_db(f"{tool.key}_race{racers}")
                cmds = [tool.up(n0, url, self.work)[0] for _ in range(racers)]
                t0 = time.perf_counter()
                procs = [
                    subprocess.Popen(
                        c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tool.env()
                    )
                    for c in cmds
                ]
                try:
                    outs = [p.communicate(timeout=COMMAND_TIMEOUT_S) for p in procs]
                except subprocess.TimeoutExpired:
                    for p in procs:
                        p.kill()
                    outs = [p.communicate() for p in procs]
                seconds = time.perf_counter() - t0
                # some tools (sql-migrate) say why on stdout
                failed = [
                    (p.returncode, err or out) for p, (out, err) in zip(procs, outs, strict=True)
                ]
                failed = [(rc, text) for rc, text in failed if rc != 0]
                tables = self.count_tables(url)
                text = f"{len(failed)} errors"
                if tables != n0:
                    text += f", {tables}/{n0} tables"
                self.results.cells[tool.key, f"S4/{racers}"] = Cell(seconds, text, len(failed))
                if failed:
                    first = _error_line(failed[0][1].decode(errors="replace"))
                    self.results.notes.append(
                        f"{tool.label}, S4 with {racers}: {len(failed)} of {racers} processes "
                        f"failed, e.g. exit {failed[0][0]}: {first[:160]}"
                    )
                self.progress(tool, f"S4/{racers}")

    def planning(self) -> None:
        for n in self.args.plan_sizes:
            with tempfile.TemporaryDirectory(dir=self.work) as d:
                self.results.planning.append(bench_planning(Path(d), n))
        import benchmarks.planning as planning

        big = self.args.plan_sizes[-1]
        saved = planning.PAD
        planning.PAD = 16 * saved  # 8x bigger files: the memory must not follow
        try:
            with tempfile.TemporaryDirectory(dir=self.work) as d:
                self.results.planning_big_pad = bench_planning(Path(d), big, runs=1)
        finally:
            planning.PAD = saved
        self.progress(None, "planning")

    # -- helpers ---------------------------------------------------------------------------------

    def failed(self, tool: Tool, scenario: str) -> bool:
        cell = self.results.cells.get((tool.key, scenario))
        return cell is None or cell.text == "error"

    def progress(self, tool: Tool | None, scenario: str) -> None:
        if self.args.verbose:
            cell = self.results.cells.get((tool.key, scenario)) if tool else None
            shown = f"{cell.seconds:.3f} s {cell.text}" if cell and cell.seconds else ""
            print(f"  {scenario:<8} {tool.label if tool else ''} {shown}", file=sys.stderr)


# -- the table -------------------------------------------------------------------------------------


def _fmt(cell: Cell | None, floor: float | None) -> str:
    if cell is None:
        return "–"
    if cell.seconds is None:
        return cell.text
    text = f"{cell.seconds:.2f} s" if cell.seconds >= 0.995 else f"{cell.seconds * 1000:.0f} ms"
    if cell.text == "error":
        return f"error after {text}"
    if floor:
        text += f" ({cell.seconds / floor:.2f}×)"
    if cell.text:
        text += f", {cell.text}"
    return text


def render(bench: Bench, tools: list[Tool], header: list[str]) -> str:
    args, res = bench.args, bench.results
    n0, big = args.steps[0], args.steps[-1]
    scenarios = [f"S1/{n}" for n in args.steps] + ["S2"] + [f"S3/{n}" for n in args.steps]
    scenarios += [f"S4/{r}" for r in args.races]
    titles = {f"S1/{n}": f"S1 apply {n}" for n in args.steps}
    titles |= {f"S3/{n}": f"S3 revert {n}" for n in args.steps}
    titles |= {"S2": "S2 up, up to date"}
    titles |= {f"S4/{r}": f"S4 {r} racing ({n0})" for r in args.races}
    kinds = ("apply", "revert")

    def floor_of(scenario: str) -> float | None:
        key = "pyfloor" if scenario == "S2" else "psqltx"
        if scenario.startswith("S4"):
            scenario = f"S1/{n0}"
        return _seconds(res.cells.get((key, scenario)))

    rows = [["tool", *(titles[s] for s in scenarios), *(f"{k} per step" for k in kinds)]]
    for tool in tools:
        why = tool.unavailable()
        if why:
            rows.append([tool.label, f"n/a ({why})"] + [""] * (len(rows[0]) - 2))
            continue
        row = [tool.label]
        for s in scenarios:
            if not tool.races and s.startswith("S4"):
                row.append("–")
            elif not tool.races and s == "S2":  # psql: a session that runs no file
                row.append(_fmt(res.cells.get((tool.key, s)), None))
            else:
                row.append(_fmt(res.cells.get((tool.key, s)), floor_of(s)))
        for kind in kinds:
            cost = per_step(res, tool.key, kind, big)
            row.append(_fmt_step(cost, per_step(res, "psqltx", kind, big)))
        rows.append(row)
    for key, (name, mods) in PY_FLOORS.items():  # S2 only, against the plain Python floor
        pyrow = [f"{name}: import {mods}; connect; select 1"] + ["–"] * (len(rows[0]) - 1)
        pyrow[1 + scenarios.index("S2")] = _fmt(res.cells.get((key, "S2")), floor_of("S2"))
        rows.append(pyrow)

    lines = header + ["", *_table(rows), ""]
    lines.append(
        "Ratios: S1, S3 and S4 against the psql floor, one transaction per file (S4: of S1 at "
        f"{n0}); S2 against the plain Python floor. Per step, each tool's fixed cost (its own S2) "
        f"taken out: apply (S1({big}) - S2) / {big}, revert (S3({big}) - S2) / {big}, against "
        "the psql floor's (its S2: a psql session that runs no file)."
    )
    lines += ["", "Targets (ours):", "", *_table(targets(bench, tools, floor_of))]
    for tool in tools:
        if tool.note and not tool.unavailable():
            res.notes.append(tool.note)
    if res.notes:
        lines += ["", "Notes:", *(f"- {n}" for n in res.notes)]
    return "\n".join(lines) + "\n"


def per_step(res: Results, key: str, kind: str, n: int) -> float | None:
    """A tool's cost per step, its fixed cost taken out: (S1(n) - S2) / n, or S3's for revert."""
    whole = res.cells.get((key, f"{'S1' if kind == 'apply' else 'S3'}/{n}"))
    fixed = res.cells.get((key, "S2"))
    if not _measured(whole) or not _measured(fixed):
        return None
    assert whole is not None and whole.seconds is not None
    assert fixed is not None and fixed.seconds is not None
    return (whole.seconds - fixed.seconds) / n


def targets(
    bench: Bench, tools: list[Tool], floor_of: Callable[[str], float | None]
) -> list[list[str]]:
    args, res = bench.args, bench.results
    big = args.steps[-1]
    labels = {t.key: t.label for t in tools}
    rows = [["target", "ours", "floor", "ratio", "limit", "met"]]

    def row(
        title: str,
        ours: float | None,
        floor: float | None,
        floor_name: str,
        limit: float | None,
        unit: str,
    ) -> None:
        """Ours against a floor; no limit: informational."""
        shown = _unit(ours, unit) if ours is not None else "not measured"
        floor_text = f"{_unit(floor, unit)} ({floor_name})" if floor is not None else floor_name
        if ours is None or floor is None or floor <= 0:  # <= 0: sizes too small to tell
            verdict = "info" if limit is None else "not measured"
            rows.append([title, shown, floor_text, "–", _limit(limit), verdict])
            return
        ratio = ours / floor
        verdict = "info" if limit is None else _yes(ratio <= limit)
        rows.append([title, shown, floor_text, f"{ratio:.2f}×", _limit(limit), verdict])

    for kind, formula in (
        ("apply", f"(S1({big}) - S2) / {big}"),
        ("revert", f"(S3({big}) - S2) / {big}"),
    ):
        ours = per_step(res, "thv", kind, big)
        floor = per_step(res, "psqltx", kind, big)
        row(
            f"{kind} cost per step, {formula}, vs the psql floor's",
            ours,
            floor,
            "psql floor" if floor is not None else "psql floor not measured",
            STEP_LIMIT,
            "ms",
        )
        # a cost at or below zero is noise (sizes too small to tell steps from start-up)
        peers = {k: c for k in PEERS if (c := per_step(res, k, kind, big)) is not None and c > 0}
        best = min(peers, key=lambda k: peers[k]) if peers else None
        row(
            f"{kind} cost per step vs the best peer's",
            ours,
            peers[best] if best else None,
            labels[best] if best else "no peer measured",
            1.0,
            "ms",
        )
    s2 = _seconds(res.cells.get(("thv", "S2")))
    row(
        "S2 no-op `up` vs the plain Python floor", s2, floor_of("S2"), "python floor", S2_LIMIT, "s"
    )
    row(
        "S2 no-op `up` vs the Python floor with the CLI's libraries",
        s2,
        _seconds(res.cells.get(("pylibfloor", "S2"))),
        "python floor + libraries",
        None,
        "s",
    )
    for r in args.races:
        cell = res.cells.get(("thv", f"S4/{r}"))
        ok = cell is not None and cell.errors == 0 and "tables" not in cell.text
        rows.append(
            [f"S4 {r} racing: zero errors", cell.text if cell else "?", "–", "–", "0", _yes(ok)]
        )
    if res.planning:
        last = res.planning[-1]
        rows.append(
            [
                f"planning {last.n:,} files (discovery, names, checksums, plan)",
                f"{last.seconds:.3f} s",
                "–",
                "–",
                f"< {PLAN_LIMIT_S:g} s",
                _yes(last.seconds < PLAN_LIMIT_S),
            ]
        )
        per = [
            f"{p.n:,}: {(p.retained_bytes + p.transient_bytes) / p.n:,.0f} B/file"
            for p in res.planning
        ]
        pad = res.planning_big_pad
        flat = pad is not None and _peak(pad) - _peak(last) < 1_000_000
        grown = f"{(_peak(pad) - _peak(last)) / 1e6:+.2f} MB" if pad else "?"
        rows.append(
            [
                "planning memory flat (peak per file; files 16× bigger)",
                f"{'; '.join(per)}; 16× bigger files {grown}",
                "–",
                "–",
                "no file contents held",
                _yes(flat),
            ]
        )
    return rows


def _fmt_step(cost: float | None, floor: float | None) -> str:
    if cost is None:
        return "–"
    text = f"{cost * 1000:.2f} ms"
    return text + (f" ({cost / floor:.2f}×)" if floor and floor > 0 else "")


def _measured(cell: Cell | None) -> bool:
    return cell is not None and cell.seconds is not None and cell.text != "error"


def _unit(seconds: float, unit: str) -> str:
    if unit == "ms":
        return f"{seconds * 1000:.2f} ms"
    return f"{seconds:.2f} s" if seconds >= 0.995 else f"{seconds * 1000:.0f} ms"


def _limit(limit: float | None) -> str:
    return "–" if limit is None else f"≤ {limit:.2f}×"


def _error_line(text: str) -> str:
    """The line of a tool's output that says what failed (not a trailing link or blank)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() and "sqlalche.me" not in line]
    return (errors or lines or ["?"])[-1][:200]


def _seconds(cell: Cell | None) -> float | None:
    return cell.seconds if cell else None


def _peak(p: PlanningResult | None) -> int:
    return 0 if p is None else p.retained_bytes + p.transient_bytes


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return out


# -- main ------------------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=_ints, default=[200, 1000], help="S1 sizes; S2-S4 use the first")
    p.add_argument("--races", type=_ints, default=[8, 16], help="S4 process counts")
    p.add_argument("--s2-runs", type=int, default=7, help="S2 repetitions (median)")
    p.add_argument("--repeat", type=int, default=1, help="S1/S3 repetitions (median)")
    p.add_argument("--plan-sizes", type=_ints, default=[1000, 10000])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    p.add_argument("--url", help="use this server (a database URL with CREATE DATABASE rights)")
    p.add_argument("--only", type=lambda s: s.split(","), help="tool keys, e.g. thv,psqltx")
    p.add_argument("--out", type=Path, default=HERE / "results.md")
    p.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.races, args.s2_runs = [5], [2], 2
        args.plan_sizes = [100, 500]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = None
    if args.url:
        admin_url, version, settings = args.url, _server_version(args.url), "as configured"
    else:
        from benchmarks.server import start_private_server

        server = start_private_server()
        admin_url, version = server.url(), server.version
        settings = "PostgreSQL defaults (fsync on, synchronous_commit on), TCP 127.0.0.1"
    work = Path(tempfile.mkdtemp(prefix="thv-bench-"))
    os.chmod(work, 0o755)
    try:
        from benchmarks.server import find_bin_dir

        psql = find_bin_dir() / "psql"
        tools = all_tools(psql)
        if args.only:
            tools = [t for t in tools if t.key in args.only or t.key == "psqltx"]
        ready = [t for t in tools if not t.unavailable()]
        compile_ours()
        golang = {n: gen.write_golang(work / f"golang-{n}", n) for n in args.steps}
        for tool in ready:
            for n in args.steps:
                tool.prepare(work, n, golang[n])
        for tool in ready:  # warm-up: byte-compile, page in (not measured)
            subprocess.run(tool.warmup(), capture_output=True)
        bench = Bench(args, admin_url, work)
        try:
            bench.s1(ready)
            bench.s2(ready)
            bench.s3(ready)
            bench.s4(ready)
            bench.planning()
        finally:
            bench.drop_all()
        header = [
            f"# thv-registry migration benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"PostgreSQL {version} ({'private, in a temp dir' if server else admin_url}; "
            f"{settings}); {os.cpu_count()} cores; Python {platform.python_version()}; "
            f"S2: median of {args.s2_runs}; S1/S3: median of {args.repeat}, the tools taking "
            "turns in each round so that drift hits them alike. Every command is its own "
            "process, timed from start to exit; our package and the installed packages "
            "byte-compiled first, as pip does when it installs them.",
        ]
        text = render(bench, tools, header)
    finally:
        if server is not None:
            server.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print(text, end="")
    record(args.out, text)
    return 0


def record(path: Path, text: str) -> None:
    """Write the migration benchmark's table to ``path``, keeping the other benchmarks' marked
    sections (``<!-- NAME: begin ... -->`` .. ``<!-- NAME: end -->``: the API benchmark's,
    the sync read benchmark's, ...) as they are."""
    import re

    old = path.read_text() if path.exists() else ""
    for found in re.finditer(r"<!-- ([\w-]+): begin.*?-->.*?<!-- \1: end -->", old, re.S):
        text += "\n" + found.group(0) + "\n"
    path.write_text(text)


def compile_ours() -> None:
    """Byte-compile our package and the environment's installed packages, as pip does when it
    installs a wheel. A shell with PYTHONDONTWRITEBYTECODE, and an environment installed with it,
    has no .pyc files: every process (ours, the Python floors, yoyo, Alembic) would compile each
    module it imports, about 130 for psycopg, click, PyYAML and pglast alone."""
    import sysconfig

    import thv_registry

    for where in (Path(thv_registry.__file__).parent, Path(sysconfig.get_paths()["purelib"])):
        # not check=True: a package may ship a file that does not compile (tests, templates)
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-j", "0", str(where)],
            capture_output=True,
            timeout=COMMAND_TIMEOUT_S,
        )


def _server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("show server_version").fetchone()
        return str(row[0]) if row else "?"


if __name__ == "__main__":
    sys.exit(main())
