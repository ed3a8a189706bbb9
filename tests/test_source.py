"""Discovery and validation of migration sets (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from thv_registry.errors import ExitCode, SourceError
from thv_registry.migrations import Source, load_source


def make(root: Path, *names: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_text("SELECT 1;\n")
    return root


def test_pairs_in_version_order_with_gaps(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        "20240102_b.up.sql",
        "20240102_b.down.sql",
        "1_a.up.sql",
        "1_a.down.sql",
        ".gitkeep",
    )
    source = Source.from_directory(root)
    assert [(m.version, m.name) for m in source.migrations] == [(1, "a"), (20240102, "b")]
    assert source.migrations[0].up.origin == f"{root}/1_a.up.sql"
    assert source.migrations[0].down is not None


def test_up_without_down_is_allowed(tmp_path: Path) -> None:
    source = Source.from_directory(make(tmp_path, "000001_a.up.sql"))
    assert source.migrations[0].down is None


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        "000001_a.up.sql",
        "000001_a.down.sql",
        "1_again.up.sql",  # duplicate version 1
        "000002_b.down.sql",  # down without up
        "000003_c.up.sql",
        "000003_other.down.sql",  # names do not match
        "000005_e.sql",  # no direction
        "000004-d.up.sql",  # malformed name
        "000000_zero.up.sql",  # version 0
    )
    with pytest.raises(SourceError) as err:
        Source.from_directory(root)
    problems = err.value.problems
    assert len(problems) == 6, problems
    text = str(err.value)
    for fragment in (
        "version 1 is used more than once",
        "000002_b.down.sql' has no matching up",
        "share version 3 but not the description",
        "'000005_e.sql' looks like a migration but its name does not match",
        "'000004-d.up.sql' looks like a migration",
        "version 0",
    ):
        assert fragment in text
    assert err.value.exit_code == ExitCode.SOURCE


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist") as err:
        Source.from_directory(tmp_path / "nope")
    # the library carries the fact; the CLI words the advice (no flag names below cli/)
    assert err.value.missing_directory == str(tmp_path / "nope")
    assert "--migrations-dir" not in str(err.value)
    from thv_registry.cli.hints import describe

    assert "Pass --migrations-dir (or THV_REGISTRY_MIGRATIONS_DIR)" in describe(err.value)


def test_embedded_set_has_the_init_pair() -> None:
    source = load_source(None)
    first = source.migrations[0]
    assert (first.version, first.name) == (1, "init")
    assert first.down is not None
    assert b"CREATE TABLE" in first.up.read_bytes()


def test_embedded_equals_repository_directory() -> None:
    repo = Path(__file__).resolve().parents[1] / "database" / "migrations"
    embedded = [(m.version, m.name, m.up.read_bytes()) for m in load_source(None).migrations]
    on_disk = [(m.version, m.name, m.up.read_bytes()) for m in load_source(repo).migrations]
    assert embedded == on_disk


@pytest.mark.parametrize(
    "name",
    [
        "3_x.UP.sql",
        "000003_x.sql",
        "000003_x.UP.sql",
        "000003_x.up.sql.bak",
        "x.sql",
        "000003_x.Down.SQL",
        "42_x.up.txt",
    ],
)
def test_misnamed_migrations_are_errors(tmp_path: Path, name: str) -> None:
    with pytest.raises(SourceError, match="looks like a migration") as err:
        Source.from_directory(make(tmp_path, "000001_a.up.sql", name))
    assert f"'{name}'" in str(err.value) and err.value.exit_code == ExitCode.SOURCE


def test_what_is_clearly_not_a_migration_is_ignored_and_listed(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        "000001_a.up.sql",
        "000001_a.down.sql",
        "README.md",
        "Makefile",
        ".gitkeep",
        ".squawk.toml",
    )
    (root / "docs").mkdir()
    (root / "docs" / "000002_b.up.sql").write_text("SELECT 1;\n")  # not read: golang-migrate's rule
    source = Source.from_directory(root)
    assert [m.version for m in source.migrations] == [1]
    assert source.ignored == ("Makefile", "README.md", "docs/")  # dotfiles are not worth a line
    # golang-migrate's numbering without padding is a valid name
    assert [
        m.version for m in Source.from_directory(make(tmp_path / "p", "3_x.up.sql")).migrations
    ] == [3]
