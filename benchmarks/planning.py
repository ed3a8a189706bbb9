"""Planning N migrations without a database: discovery, name parsing, checksums, the plan.

The worst case for ``up``: every migration is applied, with its checksum in the history, so the
up file of each one is read and hashed to detect edits. Each file carries a padding comment
(``PAD`` bytes) so that holding every file's text at once would show in the memory figures.
Time is the best of a few runs; memory is a separate run under tracemalloc (which slows Python):
``retained`` is what the source and plan keep (names and paths: grows with N by nature),
``transient`` is the peak above it while planning (file contents: must stay flat in N).
"""

from __future__ import annotations

import gc
import hashlib
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["PlanningResult", "bench_planning", "write_files"]

PAD = 2048


@dataclass(frozen=True)
class PlanningResult:
    n: int
    seconds: float
    retained_bytes: int
    transient_bytes: int
    steps: int


def write_files(root: Path, n: int) -> dict[int, str]:
    """n pairs of files; returns the sha256 of each up file (what the history would record)."""
    root.mkdir(parents=True, exist_ok=True)
    pad = "-- " + "x" * (PAD - 4) + "\n"
    sums = {}
    for i in range(1, n + 1):
        up = f"{pad}CREATE TABLE bench_{i:06d} (id bigint PRIMARY KEY);\n".encode()
        (root / f"{i:06d}_step_{i}.up.sql").write_bytes(up)
        (root / f"{i:06d}_step_{i}.down.sql").write_text(f"DROP TABLE bench_{i:06d};\n")
        sums[i] = hashlib.sha256(up).hexdigest()
    return sums


def _history(sums: dict[int, str]) -> tuple[object, ...]:
    from thv_registry.migrations.engine.model import HistoryDirection, HistoryEntry

    now = datetime.now(UTC)
    rows = [HistoryEntry(0, "", HistoryDirection.BASELINE, None, None, now, now)]
    rows += [
        HistoryEntry(v, f"step_{v}", HistoryDirection.UP, s, v, now, now) for v, s in sums.items()
    ]
    return tuple(rows)


def _plan_once(root: Path, history: tuple[object, ...], n: int) -> tuple[object, object]:
    """What ``migrate up`` does before it touches the database for the steps."""
    from thv_registry.config import ConnectionParams
    from thv_registry.migrations.engine import planner
    from thv_registry.migrations.engine.migrator import Migrator
    from thv_registry.migrations.engine.model import Up, VersionState
    from thv_registry.migrations.engine.source import Source

    source = Source.from_directory(root)
    current = VersionState(n, False)
    migrator = Migrator(ConnectionParams("localhost", 5432, "u", "d", "disable"), source)
    checksums = migrator._checksums(current, history)  # type: ignore[arg-type]
    plan = planner.plan(Up(), source.migrations, current, history, checksums)  # type: ignore[arg-type]
    return source, plan


def bench_planning(root: Path, n: int, *, runs: int = 3) -> PlanningResult:
    sums = write_files(root, n)
    history = _history(sums)
    best = float("inf")
    steps = 0
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        _source, plan = _plan_once(root, history, n)
        best = min(best, time.perf_counter() - t0)
        steps = len(plan.steps)  # type: ignore[attr-defined]
        del _source, plan
    gc.collect()
    tracemalloc.start()
    kept = _plan_once(root, history, n)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return PlanningResult(n, best, retained, max(0, peak - retained), steps)
