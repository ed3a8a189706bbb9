"""``migrate create``: the next numbered pair, valid names only, never overwriting anything."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from thv_registry.errors import ExitCode, NoMigrationsDirectory, SourceError, UsageError
from thv_registry.migrations.tools import create as create_module
from thv_registry.migrations.tools.create import create_migration, next_version, validate_name
from thv_registry.migrations.tools.lint import lint


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


def touch(directory: Path, *names: str) -> None:
    for name in names:
        (directory / name).write_text("SELECT 1;\n")


def test_first_migration_in_an_empty_directory(tmp_path: Path) -> None:
    created = create_migration(tmp_path, "add_claims")
    assert created.version == 1
    assert created.up == tmp_path / "000001_add_claims.up.sql"
    assert created.down == tmp_path / "000001_add_claims.down.sql"
    up, down = created.up.read_text(), created.down.read_text()
    assert up.startswith("-- 000001_add_claims (up):")
    assert "one transaction" in up and "000001_add_claims.down.sql must undo exactly" in up
    assert down.startswith("-- 000001_add_claims (down): undo exactly what")
    report = lint(tmp_path, squawk=False)  # a fresh pair names a migration still to write:
    assert not report.ok  # lint flags both files (issue 11, item 4), and up refuses them
    assert {(f.rule, f.file) for f in report.findings} == {
        ("empty-file", str(created.up)), ("empty-file", str(created.down)),
    }  # fmt: skip


def test_next_version_is_max_plus_one(tmp_path: Path) -> None:
    touch(tmp_path, "000001_a.up.sql", "000001_a.down.sql", "000007_g.up.sql", "README.md")
    assert next_version(tmp_path) == 8
    assert create_migration(tmp_path, "h").up.name == "000008_h.up.sql"


def test_timestamp_versions_continue(tmp_path: Path) -> None:
    touch(tmp_path, "20240101120000_a.up.sql", "20240101120000_a.down.sql")
    assert create_migration(tmp_path, "b").up.name == "20240101120001_b.up.sql"


@pytest.mark.parametrize(
    ("name", "why", "suggestion"),
    [
        ("Add-Claims", "contains 'A'", "add_claims"),
        ("addClaims", "contains 'C'", "add_claims"),
        ("1st_table", "starts with '1'", "st_table"),
        ("_x", "starts with '_'", "x"),
        ("add claims", "contains ' '", "add_claims"),
        ("000009_add_claims.up.sql", "contains '.'", "add_claims"),
        ("a" * 61, "has 61 characters", "a" * 60),
        ("", "is empty", None),
        ("ü", "contains 'ü'", None),
    ],
)
def test_invalid_names_are_refused_with_the_rule_and_a_suggestion(
    name: str, why: str, suggestion: str | None
) -> None:
    with pytest.raises(UsageError) as info:
        validate_name(name)
    text = str(info.value)
    assert "lowercase letters, digits and underscores, starts with a letter" in text
    assert why in text
    assert (f"Try '{suggestion}'" if suggestion else "such as 'add_users'") in text


def test_valid_names() -> None:
    assert validate_name("add_claims_2") == "add_claims_2"
    assert validate_name("a" * 60) == "a" * 60


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NoMigrationsDirectory, match="does not exist") as info:
        create_migration(tmp_path / "nope", "x")
    assert not (tmp_path / "nope").exists()
    assert info.value.origin == str(tmp_path / "nope") and "--dir" not in str(info.value)


def test_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "x.sql").write_text("keep")
    with pytest.raises(SourceError, match="already exists"):
        create_module._write_new(tmp_path / "x.sql", "new")
    assert (tmp_path / "x.sql").read_text() == "keep"


def test_second_file_failing_removes_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = create_module._write_new

    def fail_on_down(path: Path, text: str) -> None:
        if path.name.endswith(".down.sql"):
            raise SourceError([f"cannot create {path}: disk full"], origin=str(tmp_path))
        real(path, text)

    monkeypatch.setattr(create_module, "_write_new", fail_on_down)
    with pytest.raises(SourceError, match="disk full"):
        create_migration(tmp_path, "x")
    assert list(tmp_path.iterdir()) == []


def test_cli_default_directory_is_relative_to_cwd(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "database" / "migrations").mkdir(parents=True)
    touch(tmp_path / "database" / "migrations", "000001_init.up.sql", "000001_init.down.sql")
    # without --migrations-dir, create refuses a directory that `up` would not read (issue 11,
    # item 3; tests/test_cli_database_choice.py): this one is named, relative to the cwd
    args = ("--migrations-dir", "database/migrations")
    done = run_cli("migrate", "create", "add_claims", *args, env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Created database/migrations/000002_add_claims.up.sql",
        "Created database/migrations/000002_add_claims.down.sql",
    ]
    assert (tmp_path / "database/migrations/000002_add_claims.down.sql").is_file()


def test_cli_dir_option_and_json(tmp_path: Path, cli_env: dict[str, str]) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    env = {**cli_env, "THV_REGISTRY_MIGRATIONS_DIR": str(tmp_path / "ignored")}
    done = run_cli("migrate", "create", "x", "--dir", target, "-o", "json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "event": "created",
        "version": 1,
        "name": "x",
        "up": str(target / "000001_x.up.sql"),
        "down": str(target / "000001_x.down.sql"),
    }


def test_cli_refusals(tmp_path: Path, cli_env: dict[str, str]) -> None:
    missing = run_cli("migrate", "create", "x", env=cli_env, cwd=tmp_path)
    assert missing.returncode == ExitCode.SOURCE
    assert str(tmp_path / "database" / "migrations") in missing.stderr
    assert "pass --migrations-dir DIR (THV_REGISTRY_MIGRATIONS_DIR)" in missing.stderr
    assert not (tmp_path / "database").exists()  # the default directory is never made up
    assert "Traceback" not in missing.stderr

    bad = run_cli("migrate", "create", "Add-Claims", "--dir", tmp_path, env=cli_env, cwd=tmp_path)
    assert bad.returncode == ExitCode.USAGE
    assert "Try 'add_claims'" in bad.stderr
    assert list(tmp_path.iterdir()) == []


def test_timestamp_format(tmp_path: Path) -> None:
    now = datetime(2026, 12, 5, 10, 15, 30, tzinfo=UTC)
    first = create_migration(tmp_path, "a", format="timestamp", now=now)
    assert first.up.name == "20261205101530_a.up.sql"
    # a second one in the same second (or a clock behind the files) still gets a higher version
    second = create_migration(tmp_path, "b", format="timestamp", now=now)
    assert second.version == 20261205101531
    # a sequential set switched to timestamps continues above it
    seq = tmp_path / "seq"
    seq.mkdir()
    touch(seq, "000001_a.up.sql", "000001_a.down.sql")
    assert next_version(seq, "timestamp", now=now) == 20261205101530
    assert next_version(seq) == 2


def test_create_directory_when_asked(tmp_path: Path) -> None:
    created = create_migration(tmp_path / "a" / "b", "x", create_directory=True)
    assert created.up == tmp_path / "a" / "b" / "000001_x.up.sql" and created.down.is_file()


def test_cli_format_timestamp_and_new_directory(tmp_path: Path, cli_env: dict[str, str]) -> None:
    before = int(datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
    done = run_cli(
        "migrate", "create", "add_x", "--format", "timestamp", "--migrations-dir", "new/dir",
        "-o", "json", env=cli_env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    after = int(datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
    assert before <= created["version"] <= after
    assert created["up"] == f"new/dir/{created['version']}_add_x.up.sql"
    assert (tmp_path / created["down"]).is_file()
    # --dir is the same option; the env var names the directory too
    env = {**cli_env, "THV_REGISTRY_MIGRATIONS_DIR": str(tmp_path / "from_env")}
    seq = run_cli("migrate", "create", "add_y", env=env, cwd=tmp_path)
    assert seq.returncode == 0, seq.stderr
    assert (tmp_path / "from_env" / "000001_add_y.up.sql").is_file()
    help_text = run_cli("migrate", "create", "--help", env=cli_env, cwd=tmp_path).stdout
    assert "--migrations-dir, --dir" in help_text and "timestamp" in help_text
    bad = run_cli("migrate", "create", "x", "--format", "unix", env=cli_env, cwd=tmp_path)
    assert bad.returncode == ExitCode.USAGE and "'unix' is not one of" in bad.stderr
