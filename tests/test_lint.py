"""``migrate lint``: offline checks of a migration set (parser, pairing, squawk's rules).

No database is involved: lint reads files only. squawk is the real binary from squawk-cli.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from thv_registry.errors import ExitCode, SourceError
from thv_registry.migrations.tools import lint as lint_module
from thv_registry.migrations.tools.lint import Finding, lint

REPO_MIGRATIONS = Path(__file__).resolve().parents[1] / "database" / "migrations"


def write_set(directory: Path, files: dict[str, str | bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return directory


def run_cli(*args: str | Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thv_registry", *map(str, args)],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def by_rule(findings: tuple[Finding, ...], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def test_clean_pair_has_no_errors(tmp_path: Path) -> None:
    d = write_set(
        tmp_path / "m",
        {
            "000001_a.up.sql": "CREATE TABLE a (id bigint PRIMARY KEY, name text);\n",
            "000001_a.down.sql": "DROP TABLE a;\n",
        },
    )
    report = lint(d)
    assert report.ok and report.files == 2
    assert report.squawk is not None
    assert [f for f in report.findings if f.rule.startswith("squawk")] == []


def test_syntax_error_is_an_error_with_file_line_column(tmp_path: Path) -> None:
    d = write_set(
        tmp_path / "m",
        {
            "000001_a.up.sql": "-- comment\nCREATE TABLE a (id int);\nCREATE TABLE b (id int,);\n",
            "000001_a.down.sql": "DROP TABLE a;\n",
        },
    )
    report = lint(d)
    (error,) = by_rule(report.findings, "syntax")
    assert error.level == "error"
    assert (error.file, error.line, error.column) == (str(d / "000001_a.up.sql"), 3, 24)
    assert "syntax error" in error.message
    assert not report.ok


def test_missing_down_is_an_error_and_gap_a_note(tmp_path: Path) -> None:
    d = write_set(
        tmp_path / "m",
        {
            "000001_a.up.sql": "CREATE TABLE a (id bigint);\n",
            "000001_a.down.sql": "DROP TABLE a;\n",
            "000004_d.up.sql": "CREATE TABLE d (id bigint);\n",
        },
    )
    report = lint(d, squawk=False)
    (missing,) = by_rule(report.findings, "missing-down")
    assert missing.level == "error" and missing.file == str(d / "000004_d.up.sql")
    assert "000004_d.down.sql" in (missing.help or "")
    (gap,) = by_rule(report.findings, "numbering-gap")
    assert gap.level == "info" and "from 1 to 4 (2-3 unused)" in gap.message


def test_timestamp_versions_have_no_gap_notes(tmp_path: Path) -> None:
    d = write_set(
        tmp_path / "m",
        {
            f"{v}_t{i}.{direction}.sql": "SELECT 1;\n"
            for i, v in enumerate((20240101120000, 20240301093000))
            for direction in ("up", "down")
        },
    )
    assert by_rule(lint(d, squawk=False).findings, "numbering-gap") == []


def test_source_problems_are_reported_and_the_sql_still_checked(tmp_path: Path) -> None:
    d = write_set(
        tmp_path / "m",
        {
            "000001_a.up.sql": "CREATE TABLE a (id bigint);\n",
            "000001_a.down.sql": "DROP TABLE a;\n",
            "000001_b.up.sql": "CREATE TABLE b (id bigint;\n",
            "000002_notes.sql": "stray",
            "notes.txt": "not a migration: skipped",
        },
    )
    report = lint(d, squawk=False)
    sources = by_rule(report.findings, "source")
    assert any("version 1 is used more than once" in f.message for f in sources)
    assert any("'000002_notes.sql' looks like a migration" in f.message for f in sources)
    assert not any("notes.txt" in f.message for f in report.findings)
    (syntax,) = by_rule(report.findings, "syntax")
    assert syntax.file == str(d / "000001_b.up.sql")


def test_undecodable_file_is_a_source_error(tmp_path: Path) -> None:
    d = write_set(
        tmp_path / "m",
        {"000001_a.up.sql": b"SELECT '\xff';\n", "000001_a.down.sql": "SELECT 1;\n"},
    )
    (error,) = by_rule(lint(d, squawk=False).findings, "source")
    assert "not valid UTF-8" in error.message and error.file == str(d / "000001_a.up.sql")


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        lint(tmp_path / "nowhere")


def test_squawk_findings_map_to_one_based_character_columns(tmp_path: Path) -> None:
    up = "-- é é\nSELECT 'ééé'; ALTER TABLE t ADD COLUMN x int;\n"
    d = write_set(tmp_path / "m", {"000001_a.up.sql": up, "000001_a.down.sql": "SELECT 1;\n"})
    report = lint(d)
    (bigint,) = by_rule(report.findings, "prefer-bigint-over-int")
    assert bigint.level == "warning"
    assert (bigint.line, bigint.column) == (2, up.splitlines()[1].index("int;") + 1)
    assert bigint.url == "https://squawkhq.com/docs/prefer-bigint-over-int"
    assert report.ok  # warnings do not fail


def test_non_transactional_statement_sharing_a_file_is_a_warning(tmp_path: Path) -> None:
    d = write_set(
        tmp_path / "m",
        {
            "000001_a.up.sql": (
                "CREATE TABLE a (id bigint);\nCREATE INDEX CONCURRENTLY i ON a (id);\n"
            ),
            "000001_a.down.sql": "DROP TABLE a;\n",
        },
    )
    (warning,) = by_rule(lint(d, squawk=False).findings, "own-file")
    assert (warning.line, warning.column) == (2, 1)
    assert "CREATE INDEX CONCURRENTLY" in warning.message


def test_squawk_absent_or_failing_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = write_set(
        tmp_path / "m", {"000001_a.up.sql": "SELECT 1;\n", "000001_a.down.sql": "SELECT 1;\n"}
    )
    failing = lint(d, pg_version="not-a-version")
    (failed,) = by_rule(failing.findings, "squawk-failed")
    assert failed.level == "warning" and "--pg-version" in failed.message and failing.ok

    monkeypatch.setattr(lint_module, "find_squawk", lambda: None)
    report = lint(d)
    (missing,) = by_rule(report.findings, "squawk-missing")
    assert missing.level == "warning" and report.ok and report.squawk is None


def test_project_migrations_have_no_errors() -> None:
    report = lint(REPO_MIGRATIONS)
    assert [f for f in report.findings if f.level == "error"] == []


def test_cli_text_output_and_exit_codes(tmp_path: Path, cli_env: dict[str, str]) -> None:
    d = write_set(
        tmp_path / "m",
        {
            "000001_a.up.sql": "ALTER TABLE t ADD COLUMN x int;\n",
            "000001_a.down.sql": "ALTER TABLE t DROP COLUMN x;\n",
        },
    )
    done = run_cli("migrate", "lint", "--migrations-dir", d, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # paths relative to the current directory (tmp_path) when below it
    assert "m/000001_a.up.sql:1:28: warning: [prefer-bigint-over-int] " in "\n".join(lines)
    assert lines[-1].startswith("2 files checked in m: 0 errors, ")

    env = {**cli_env, "THV_REGISTRY_MIGRATIONS_DIR": str(d)}
    strict = run_cli("migrate", "lint", "--strict", env=env, cwd=tmp_path)
    assert strict.returncode == ExitCode.SOURCE

    (d / "000001_a.down.sql").unlink()
    broken = run_cli("migrate", "lint", "--migrations-dir", d, env=cli_env, cwd=tmp_path)
    assert broken.returncode == ExitCode.SOURCE
    assert ": error: [missing-down] version 1 (a) has no down file" in broken.stdout
    assert "Traceback" not in broken.stderr


def test_cli_json_output(tmp_path: Path, cli_env: dict[str, str]) -> None:
    d = write_set(
        tmp_path / "m",
        {"000001_a.up.sql": "CREATE TABLE a (id int,);\n", "000001_a.down.sql": "DROP TABLE a;\n"},
    )
    done = run_cli(
        "migrate", "lint", "--migrations-dir", d, "-o", "json", env=cli_env, cwd=tmp_path
    )
    assert done.returncode == ExitCode.SOURCE
    report = json.loads(done.stdout)
    assert report["event"] == "lint" and report["ok"] is False and report["errors"] == 1
    (finding,) = [f for f in report["findings"] if f["rule"] == "syntax"]
    assert finding["line"] == 1 and finding["column"] == 24 and finding["level"] == "error"


def test_cli_missing_directory(tmp_path: Path, cli_env: dict[str, str]) -> None:
    done = run_cli("migrate", "lint", "--migrations-dir", tmp_path / "x", env=cli_env, cwd=tmp_path)
    assert done.returncode == ExitCode.SOURCE
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr
