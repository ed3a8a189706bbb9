"""benchmarks/sync_read_bench.py --quick completes against a real serve and prints its table.

Tiny sizes, the test server's PostgreSQL. No timing is asserted: the table's shape, that reads
fell inside both syncs' windows, that no request failed, and that the section is replaced in
place with the rest of the file kept.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ServerInfo

REPO = Path(__file__).resolve().parents[1]


def test_sync_read_benchmark_quick_run_prints_the_table(
    tmp_path: Path, pg_server: ServerInfo
) -> None:
    out = tmp_path / "results.md"
    out.write_text("# other results\n\nkept as they are\n")
    argv = [sys.executable, str(REPO / "benchmarks" / "sync_read_bench.py"), "--quick"]
    argv += ["--url", pg_server.conninfo(), "--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout
    assert "| phase | seconds | read | requests | p50 | p99 | max | p99 / idle p99 |" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and " ms |" in line]
    phases = {line.split(" | ")[0].lstrip("| ") for line in rows}
    assert phases >= {"idle", "first sync of 60 other servers"}, phases
    assert any(p.startswith("changed re-sync") for p in phases), phases
    idle_all = next(r for r in rows if r.startswith("| idle |") and " | all | " in r)
    assert int(idle_all.split(" | ")[3]) >= 40  # 2 s at 40/s, every request answered
    assert "\n0 errors (non-2xx or failed requests)" in table
    text = out.read_text()
    assert text.startswith("# other results\n\nkept as they are\n")
    assert table.strip() in text
    # a later run replaces the section instead of appending another
    sys.path.insert(0, str(REPO))
    from benchmarks.sync_read_bench import record

    record(out, "## a later run\n")
    text = out.read_text()
    assert text.count("<!-- sync-read-bench: begin") == 1 and "## a later run" in text
    assert text.startswith("# other results\n\nkept as they are\n") and table not in text
