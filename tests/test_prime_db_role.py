"""prime-db's group role: --role NAME / database.appRole, and a warning when the role already
holds privileges in another database of the server (roles are cluster-wide)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import ServerInfo, TestDatabase
from thv_registry.errors import ExitCode


def prime_db(
    *args: str, env: dict[str, str], cwd: Path, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thv_registry", "prime-db", *args],
        env=env, cwd=cwd, input=input, stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def names(pg_server: ServerInfo, database: TestDatabase) -> Iterator[dict[str, str]]:
    """Role and database names of this test only; all dropped afterwards (roles are
    cluster-wide: their privileges in this test's two databases go first)."""
    tag = uuid.uuid4().hex[:8]
    made = {k: f"thv_test_{k}_{tag}" for k in ("role", "role2", "app_a", "app_b", "db_b")}
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(made["db_b"])))
    yield made
    roles = [made[k] for k in ("role", "role2", "app_a", "app_b")]
    existing = [r for r in roles if _role_exists(pg_server, r)]
    if existing:
        for name in (database.name, made["db_b"]):
            with psycopg.connect(pg_server.conninfo(name), autocommit=True) as conn:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, existing))))  # fmt: skip
    with psycopg.connect(pg_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(made["db_b"])))  # fmt: skip
        for role in existing:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _role_exists(server: ServerInfo, role: str) -> bool:
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone())


def test_role_option_and_warning_for_a_role_used_elsewhere(
    database: TestDatabase,
    pg_server: ServerInfo,
    names: dict[str, str],
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    config_a = database.write_config(tmp_path / "a.yaml")
    config_b = TestDatabase(pg_server, names["db_b"]).write_config(tmp_path / "b.yaml")
    first = prime_db(names["app_a"], "--config", str(config_a), "--role", names["role"],
                     env=cli_env, cwd=tmp_path, input="pw-a\n")  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert f"Role {names['role']}: created." in first.stdout
    assert "Warning: role" not in first.stderr  # used nowhere else yet
    assert _role_exists(pg_server, names["role"])

    # the same role for a second database of the server: said, with how to avoid it
    again = prime_db(names["app_b"], "--config", str(config_b), "--role", names["role"],
                     "--dry-run", env=cli_env, cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    warning = " ".join(again.stderr.split())
    assert f"role {names['role']} already holds privileges in other databases" in warning
    assert f"({database.name})" in warning and "--role NAME" in warning
    assert "database.appRole" in warning
    as_json = prime_db(names["app_b"], "--config", str(config_b), "--role", names["role"],
                       "--dry-run", "--log-format", "json", env=cli_env, cwd=tmp_path)  # fmt: skip
    plan = json.loads(as_json.stdout)
    assert plan["role"] == names["role"] and plan["role_in_other_databases"] == [database.name]

    # database.appRole in the config: its own role, no warning
    config_b2 = TestDatabase(pg_server, names["db_b"]).write_config(
        tmp_path / "b2.yaml", appRole=names["role2"]
    )
    own = prime_db(names["app_b"], "--config", str(config_b2), env=cli_env, cwd=tmp_path,
                   input="pw-b\n")  # fmt: skip
    assert own.returncode == 0, own.stderr
    assert f"Role {names['role2']}: created." in own.stdout and "Warning: role" not in own.stderr
    with psycopg.connect(pg_server.conninfo(names["db_b"]), autocommit=True) as conn:
        member = conn.execute(
            """SELECT pg_has_role(%s, %s, 'MEMBER'),
                      EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a
                               WHERE d.datname = current_database()
                                 AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %s))""",
            (names["app_b"], names["role2"], names["role"]),
        ).fetchone()
    assert member == (True, False)  # app_b in role2; the first role got nothing here


def test_bad_role_names(database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]) -> None:
    config = database.write_config(tmp_path / "c.yaml", appRole="app-role")
    bad_config = prime_db("x", "--config", str(config), "--dry-run", env=cli_env, cwd=tmp_path)
    assert bad_config.returncode == ExitCode.CONFIG, bad_config.stderr
    assert "database.appRole" in bad_config.stderr and "must be an identifier" in bad_config.stderr
    assert "c.yaml" in bad_config.stderr and "Traceback" not in bad_config.stderr
    good = database.write_config(tmp_path / "g.yaml")
    bad_flag = prime_db("x", "--config", str(good), "--role", "pg_mine", "--dry-run",
                        env=cli_env, cwd=tmp_path)  # fmt: skip
    assert bad_flag.returncode == ExitCode.USAGE, bad_flag.stderr
    assert "'pg_mine' is reserved by PostgreSQL" in bad_flag.stderr
