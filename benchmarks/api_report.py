"""The table of the API benchmark, and its section in ``benchmarks/results.md``.

The section sits between two markers, so a new run replaces the previous API section and leaves
the rest of the file (the migration benchmark's table) as it is.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.api_load import OVERLOAD_BACKLOG_S, LoadResult

__all__ = ["Row", "latency_note", "median", "render", "record", "BEGIN", "END"]

BEGIN = "<!-- api-bench: begin (benchmarks/api_bench.py replaces this section) -->"
END = "<!-- api-bench: end -->"


@dataclass
class Row:
    measure: str
    measured: str
    floor: str
    ratio: str
    target: str
    met: bool
    note: str = ""

    @classmethod
    def throughput(cls, measure: str, ours: Any, http: float, db: float) -> Row:
        """Requests/s against the combined floor ``1 / (1/http + 1/db)``; target ≥ 0.7×."""
        combined = 1 / (1 / http + 1 / db)
        ratio = ours.rps / combined
        errors = f"{ours.errors} errors" if ours.errors else "0 errors"
        if ours.cpu_ms:
            errors += "; CPU per request: " + ", ".join(
                f"{k} {v:.2f} ms" for k, v in ours.cpu_ms.items()
            )
        return cls(
            measure,
            f"{ours.rps:,.0f} req/s",
            f"{combined:,.0f} req/s (HTTP {http:,.0f}, DB {db:,.0f})",
            f"{ratio:.2f}×",
            "≥ 0.70× the combined floor",
            ratio >= 0.7 and ours.errors == 0,
            f"{errors}; p50 {ours.p50_ms:.1f} ms, p99 {ours.p99_ms:.1f} ms"
            if ours.p99_ms is not None
            else errors,
        )

    @classmethod
    def ceiling(cls, measure: str, value: float | None, limit: float, unit: str, note: str) -> Row:
        """A value under a fixed limit (no floor)."""
        shown = "–" if value is None else f"{value:,.1f} {unit}"
        if unit == "s" and value is not None and value < 10:
            shown = f"{value:.2f} s"
        met = value is not None and value < limit
        return cls(measure, shown, "–", "–", f"< {limit:g} {unit}", met, note)


def render(
    rows: Sequence[Row], started: datetime.datetime, servers: int, versions: int, setting: str
) -> str:
    head = ["measure", "measured", "floor", "ratio", "target", "met", "notes"]
    cells = [
        [r.measure, r.measured, r.floor, r.ratio, r.target, "yes" if r.met else "NO", r.note]
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [head, *cells]) for i in range(len(head))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    table = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    table += [line(c) for c in cells]
    when = started.strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"## thv-registry API benchmark ({when})",
            "",
            f"{servers:,} servers × {versions} versions ({servers * versions:,} versions, each "
            "with two packages, a remote and an icon), loaded by `thv-registry-api serve` from "
            "a file source. " + setting,
            "",
            *table,
            "",
            "Combined floor = 1 / (1/HTTP + 1/DB): HTTP = the same uvicorn serving the same "
            "bytes from memory; DB = the same queries on a bare async psycopg loop, one "
            "connection per client (`benchmarks/api_floors.py`).",
        ]
    )


def record(path: Path, section: str) -> None:
    """Replace the API section of ``path`` (or append one)."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{section}\n{END}\n"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        text = before + block + after
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + block
    path.write_text(text)


T = TypeVar("T")


def latency_note(result: LoadResult) -> str:
    note = f"p50 {result.p50_ms:.1f} ms, max {result.max_ms:.1f} ms, {result.errors} errors"
    if result.overloaded:
        note = (
            f"OVERLOADED: stopped after {result.seconds:.1f} s with "
            f"{OVERLOAD_BACKLOG_S:g} s of requests unanswered (the server answers "
            f"fewer than the rate; figures are lower bounds); " + note
        )
    return note


def median(values: list[T], key: Callable[[T], float]) -> T:
    """The median element (the upper one of an even count)."""
    return sorted(values, key=key)[len(values) // 2]
