"""benchmarks/api_bench.py --quick completes against a real serve and prints its table.

Tiny sizes, the Python load generators (wrk is never needed by the test suite), the test
server's PostgreSQL. No timing is asserted here: the table's shape and the run's correctness
(every version walked once, no failed request) are.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import ServerInfo

REPO = Path(__file__).resolve().parents[1]


def test_api_benchmark_quick_run_prints_the_table(tmp_path: Path, pg_server: ServerInfo) -> None:
    out = tmp_path / "results.md"
    out.write_text("# other results\n\nkept as they are\n")
    argv = [sys.executable, str(REPO / "benchmarks" / "api_bench.py"), "--quick"]
    argv += ["--client", "python", "--url", pg_server.conninfo(), "--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout
    assert "| measure " in table and "| floor " in table and "| ratio " in table
    for measure in (
        "list `limit=30`, 32 connections",
        "get latest, 32 connections",
        "list p99 at a steady 100/s",
        "get latest p99 at a steady 100/s",
        "full walk of 120 versions at `limit=100`",
        "first sync of the 40-server file",
        "no-change re-sync",
        "RSS of serve, serving",
        "RSS of serve, syncing",
    ):
        assert f"| {measure}" in table, measure
    assert "≥ 0.70× the combined floor" in table
    assert "each once, in order" in table  # the walk saw all 120 versions, in order
    assert "result synced" in table and "result unchanged" in table
    assert "| 0 errors" in table and not re.search(r"\b[1-9]\d* errors", table)
    assert "on this one machine" in table
    # the section replaced in place, the rest of the file kept
    text = out.read_text()
    assert text.startswith("# other results\n\nkept as they are\n")
    assert table.strip() in text
