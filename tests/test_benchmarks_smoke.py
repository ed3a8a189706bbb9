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
    # the per-step costs (fixed cost taken out), ours and the psql floor's, and their targets
    assert "| apply per step " in proc.stdout and "| revert per step " in proc.stdout
    assert "apply cost per step, (S1(5) - S2) / 5, vs the psql floor's" in proc.stdout
    assert "revert cost per step, (S3(5) - S2) / 5, vs the psql floor's" in proc.stdout
    assert "| ≤ 1.10× " in proc.stdout and "no peer measured" in proc.stdout  # --only thv
    assert out.read_text() == proc.stdout
