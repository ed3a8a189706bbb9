"""``migrate lint`` as shipped: quiet on the project's own set (``--strict`` passes), squawk's
timeout rules off because the runner sets the timeouts, ``.squawk.toml``'s ``excluded_paths``
honoured, and paths shown relative to the current directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from thv_registry.migrations.tools.lint import OFF_BY_DEFAULT, find_squawk, lint

needs_squawk = pytest.mark.skipif(find_squawk() is None, reason="squawk-cli is not installed")


def run_lint(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thv_registry", "migrate", "lint", *args],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@needs_squawk
def test_the_shipped_set_passes_lint_strict(cli_env: dict[str, str]) -> None:
    """CI gate: a new migration answers every squawk rule (fixed, or a squawk-ignore comment)."""
    result = run_lint("--strict", cwd=REPO_ROOT, env=cli_env)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.splitlines()[-1]
    assert ": 0 errors, 0 warnings" in summary and "squawk rules checked" in summary
    assert "excluded from them by database/migrations/.squawk.toml" in summary
    assert not any(line.startswith("/") for line in result.stdout.splitlines())


@needs_squawk
def test_timeout_rules_are_off_unless_included(tmp_path: Path, cli_env: dict[str, str]) -> None:
    m = tmp_path / "m"
    m.mkdir()
    (m / "000001_a.up.sql").write_text("ALTER TABLE t ADD COLUMN c bigint;\n")
    (m / "000001_a.down.sql").write_text("ALTER TABLE t DROP COLUMN c;\n")
    report = lint(m)
    assert not {f.rule for f in report.findings} & OFF_BY_DEFAULT
    assert report.off_rules == tuple(sorted(OFF_BY_DEFAULT))
    included = lint(m, include=["require-lock-timeout"])
    assert "require-lock-timeout" in {f.rule for f in included.findings}
    assert "require-statement-timeout" not in {f.rule for f in included.findings}
    # from the parent directory, given an absolute path: findings show m/..., not /tmp/...
    shown = run_lint(
        "--migrations-dir", str(m), "--include", "require-statement-timeout",
        cwd=tmp_path, env=cli_env,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    first = shown.stdout.splitlines()[0]
    assert first.startswith("m/000001_a.up.sql:1:1: warning: [require-statement-timeout]"), first
    assert "(require-lock-timeout off: the tool sets them)" in shown.stdout
    as_json = json.loads(
        run_lint("--migrations-dir", str(m), "-o", "json", cwd=tmp_path, env=cli_env).stdout
    )
    assert as_json["off_rules"] == sorted(OFF_BY_DEFAULT) and as_json["warnings"] == 0


@needs_squawk
def test_squawk_config_excluded_paths_apply(tmp_path: Path, cli_env: dict[str, str]) -> None:
    m = tmp_path / "m"
    m.mkdir()
    (m / "000001_a.up.sql").write_text("CREATE TABLE a (id int);\n")  # prefer-bigint-over-int
    (m / "000001_a.down.sql").write_text("DROP TABLE a;\n")
    (m / "000002_b.up.sql").write_text("CREATE TABLE b (id int);\n")
    (m / "000002_b.down.sql").write_text("DROP TABLE b;\n")
    assert {f.file for f in lint(m).findings if f.level == "warning"} == {
        str(m / "000001_a.up.sql"),
        str(m / "000002_b.up.sql"),
    }
    (tmp_path / ".squawk.toml").write_text('excluded_paths = ["000001_*"]\n')  # found above m
    report = lint(m)
    assert report.excluded == (str(m / "000001_a.up.sql"),)
    assert report.squawk_config == str(tmp_path / ".squawk.toml")
    assert {f.file for f in report.findings if f.level == "warning"} == {str(m / "000002_b.up.sql")}
    strict = run_lint("--strict", "--migrations-dir", "m", cwd=tmp_path, env=cli_env)
    assert strict.returncode == 4  # the other file still has its finding
    assert "1 file excluded from them by .squawk.toml" in strict.stdout


def test_lint_help_says_why_the_timeout_rules_are_off(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    text = " ".join(run_lint("--help", cwd=tmp_path, env=cli_env).stdout.split())
    assert "require-lock-timeout and require-statement-timeout are off by default" in text
    assert "this tool sets those itself on every step" in text
    assert "--include RULE" in text
