"""benchmarks/run.py --quick completes and prints its table. No timing is asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_quick_run_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--only", "thv"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| tool " in proc.stdout and "thv-registry-api" in proc.stdout
    assert "psql floor: one transaction per file" in proc.stdout
    assert "Targets (ours):" in proc.stdout
    assert out.read_text() == proc.stdout
