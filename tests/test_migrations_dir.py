"""The migrations directory as golang-migrate reads it: what is clearly not a migration is
skipped (and ``status --verbose`` lists it), a misnamed migration is an error (exit 4)."""

from __future__ import annotations

import json
from collections.abc import Callable

from conftest import THREE_TABLES, MigrateCli, TestDatabase
from thv_registry.errors import ExitCode


def test_non_migrations_are_ignored_and_listed_by_status_verbose(
    migrate_cli: Callable[[dict[str, str]], MigrateCli], database: TestDatabase
) -> None:
    cli = migrate_cli({**THREE_TABLES, "README.md": "# notes\n", ".gitkeep": ""})
    (cli.migrations / "drafts").mkdir()
    (cli.migrations / "drafts" / "000004_d.up.sql").write_text("CREATE TABLE d (id int);\n")
    up = cli("up", "--yes")
    assert up.returncode == 0, up.stderr
    assert database.tables() >= {"a", "b", "c"} and "d" not in database.tables()
    plain = cli("status")
    assert plain.returncode == 0, plain.stderr
    assert "Ignored" not in plain.stdout
    verbose = cli("status", "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    assert "Ignored (not migration files): README.md, drafts/." in verbose.stdout
    assert ".gitkeep" not in verbose.stdout
    as_json = json.loads(cli("status", "-o", "json").stdout)
    assert as_json["ignored"] == ["README.md", "drafts/"]


def test_misnamed_migration_is_an_error(
    migrate_cli: Callable[[dict[str, str]], MigrateCli], database: TestDatabase
) -> None:
    cli = migrate_cli({**THREE_TABLES, "000004_d.UP.sql": "CREATE TABLE d (id int);\n"})
    result = cli("up", "--yes")
    assert result.returncode == ExitCode.SOURCE, result.stderr
    assert "'000004_d.UP.sql' looks like a migration" in result.stderr
    assert "Traceback" not in result.stderr
    assert database.tables() == set()
