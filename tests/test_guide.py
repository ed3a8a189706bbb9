"""The migration guide's commands, run exactly as the guide writes them.

The guide (docs/database-migrations.md) uses ``./bin/thv-registry-api ... --config config.yaml``
from a directory holding config.yaml; ``bin/thv-registry-api`` runs the installed package.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, TestDatabase
from thv_registry.migrations import load_source

LATEST = load_source(None).migrations[-1].version


@pytest.fixture
def workdir(database: TestDatabase, tmp_path: Path) -> Path:
    database.write_config(tmp_path / "config.yaml")
    (tmp_path / "bin").symlink_to(REPO_ROOT / "bin")
    return tmp_path


def guide(
    command: str, cwd: Path, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**env, "VIRTUAL_ENV": sys.prefix}
    return subprocess.run(
        shlex.split(command),
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def version(db: TestDatabase) -> list[tuple[object, ...]]:
    return db.query("SELECT version, dirty FROM schema_migrations")


def test_guide_migrate_up_commands(
    workdir: Path, database: TestDatabase, cli_env: dict[str, str]
) -> None:
    r = guide("./bin/thv-registry-api migrate up --config config.yaml --yes", workdir, cli_env)
    assert r.returncode == 0, r.stderr
    assert version(database) == [(LATEST, False)]
    r = guide(
        "./bin/thv-registry-api migrate down --config config.yaml --num-steps 0 --yes",
        workdir,
        cli_env,
    )
    assert r.returncode == 0, r.stderr
    assert version(database) == []


def test_guide_num_steps_and_interactive(
    workdir: Path, database: TestDatabase, cli_env: dict[str, str]
) -> None:
    r = guide(
        "./bin/thv-registry-api migrate up --config config.yaml", workdir, cli_env, stdin="yes\n"
    )
    assert r.returncode == 0, r.stderr
    assert "Database:" in r.stdout
    assert version(database) == [(LATEST, False)]
    r = guide(
        "./bin/thv-registry-api migrate down --config config.yaml --num-steps 1",
        workdir,
        cli_env,
        stdin="yes\n",
    )
    assert r.returncode == 0, r.stderr
    assert "WARNING" in r.stdout
    assert version(database) != [(LATEST, False)]
    r = guide(
        "./bin/thv-registry-api migrate up --config config.yaml --num-steps 1 --yes",
        workdir,
        cli_env,
    )
    assert r.returncode == 0, r.stderr
    assert version(database) == [(LATEST, False)]
    r = guide(
        "./bin/thv-registry-api migrate down --config config.yaml --num-steps 1 --yes",
        workdir,
        cli_env,
    )
    assert r.returncode == 0, r.stderr
    assert version(database) != [(LATEST, False)]


def test_guide_down_requires_num_steps(workdir: Path, cli_env: dict[str, str]) -> None:
    r = guide("./bin/thv-registry-api migrate down --config config.yaml --yes", workdir, cli_env)
    assert r.returncode == 2
    assert "--num-steps" in r.stderr and "0" in r.stderr
    assert "Traceback" not in r.stderr


def test_guide_example_migration_typo_is_reported_precisely(
    workdir: Path, database: TestDatabase, cli_env: dict[str, str]
) -> None:
    """The seed guide's example says TIMESTAMPZ; the server's complaint must point at it."""
    migrations = workdir / "migrations"
    migrations.mkdir()
    (migrations / "000002_add_user_table.up.sql").write_text(
        "CREATE TABLE users (\n"
        "    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),\n"
        "    email TEXT NOT NULL UNIQUE,\n"
        "    created_at TIMESTAMPZ DEFAULT NOW()\n"
        ");\n"
    )
    (migrations / "000002_add_user_table.down.sql").write_text("DROP TABLE IF EXISTS users;\n")
    r = guide(
        "./bin/thv-registry-api migrate up --config config.yaml --yes --migrations-dir migrations",
        workdir,
        cli_env,
    )
    assert r.returncode == 11, r.stderr
    assert "000002_add_user_table.up.sql:4:16" in r.stderr
    assert 'type "timestampz" does not exist' in r.stderr
    assert database.tables() == set()
    assert os.path.exists(migrations / "000002_add_user_table.up.sql")


def test_guide_redo_baseline_and_dump_schema(
    workdir: Path, database: TestDatabase, cli_env: dict[str, str]
) -> None:
    r = guide("./bin/thv-registry-api migrate up --config config.yaml --yes", workdir, cli_env)
    assert r.returncode == 0, r.stderr
    r = guide("./bin/thv-registry-api migrate redo --config config.yaml --yes", workdir, cli_env)
    assert r.returncode == 0, r.stderr
    assert "Backup written to " in r.stdout
    assert version(database) == [(LATEST, False)]

    r = guide(
        "./bin/thv-registry-api migrate dump-schema --config config.yaml --output schema.sql",
        workdir,
        cli_env,
    )
    assert r.returncode == 0, r.stderr
    schema = (workdir / "schema.sql").read_text()
    assert schema.startswith(f"-- Schema public at migration version {LATEST}:")
    assert "CREATE TABLE public.registry_entry (" in schema

    # a database whose schema exists without a version: baseline adopts it
    with database.connect() as conn:
        conn.execute("DELETE FROM schema_migrations")
        conn.execute("DROP TABLE schema_migrations_history")
    r = guide(
        "./bin/thv-registry-api migrate baseline 3 --config config.yaml --yes", workdir, cli_env
    )
    assert r.returncode == 0, r.stderr
    assert version(database) == [(3, False)]
