"""Two users end to end: the migration user owns the schema, the application user only uses it.

On a private server that asks every role but postgres for a SCRAM password (see test_prime_db):
`migrate up` connects as database.migrationUser, prime-db creates the application user, and the
application user (database.user) reads and writes the tables but cannot drop or alter them.
Passwords come from one pgpass file with a line per user, or from the configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from test_prime_db import MIGRATOR_PASSWORD, Cluster, Scene, cli, new_scene, start_cluster
from thv_registry.config import load_config
from thv_registry.db.connect import connect
from thv_registry.db.prime import APP_ROLE, prime
from thv_registry.errors import ConnectionFailed
from thv_registry.migrations import Down, Migrator, Source, Up

APP_PASSWORD = "äpp:pw\\with;'quotes"  # ':' and '\' must be escaped in pgpass
LATEST = Source.embedded().migrations[-1].version


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from start_cluster()


@pytest.fixture
def scene(cluster: Cluster) -> Iterator[Scene]:
    with new_scene(cluster) as made:
        yield made


def pgpass_line(database: str, user: str, password: str) -> str:
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:{database}:{user}:{escaped}\n"


@pytest.fixture
def pgpass(scene: Scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pgpass file with two lines (migration user, application user), used by libpq here too."""
    path = tmp_path / "pgpass"
    path.write_text(
        pgpass_line(scene.database, scene.migrator, MIGRATOR_PASSWORD)
        + pgpass_line(scene.database, "app", APP_PASSWORD)
    )
    path.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(path))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    return path


def app_can_use_every_table(conn: psycopg.Connection[Any]) -> None:
    """Write and read rows in tables of each migration, as the application does."""
    assert conn.execute("SELECT current_user").fetchone() == ("app",)
    with conn.transaction():
        source = conn.execute(
            "INSERT INTO source (name, source_type, claims) VALUES ('s', 'git', '{}') RETURNING id"
        ).fetchone()
        assert source is not None
        conn.execute("INSERT INTO registry_sync (source_id) VALUES (%s)", source)
        entry = conn.execute(
            "INSERT INTO registry_entry (source_id, entry_type, name)"
            " VALUES (%s, 'SKILL', 'io.github.x/skill') RETURNING id",
            source,
        ).fetchone()
        assert entry is not None
        version = conn.execute(
            "INSERT INTO entry_version (entry_id, version) VALUES (%s, '1.0.0') RETURNING id", entry
        ).fetchone()
        assert version is not None
        conn.execute(
            "INSERT INTO skill (version_id, namespace) VALUES (%s, 'io.github.x')", version
        )
        conn.execute(
            "INSERT INTO latest_entry_version (entry_id, version) VALUES (%s, '1.0.0')", entry
        )
    conn.execute("UPDATE registry_sync SET skill_count = 1, sync_status = 'COMPLETED'")
    assert conn.execute(
        "SELECT s.name, y.skill_count FROM source s JOIN registry_sync y ON y.source_id = s.id"
    ).fetchall() == [("s", 1)]
    assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchall() == [
        (LATEST, False)
    ]
    conn.execute("DELETE FROM source")
    assert conn.execute("SELECT count(*) FROM skill").fetchone() == (0,)


def app_cannot_change_the_schema(conn: psycopg.Connection[Any]) -> None:
    refused = {
        "DROP TABLE source": "must be owner of table source",
        "ALTER TABLE source ADD COLUMN x int": "must be owner of table source",
        "TRUNCATE registry_entry": "permission denied for table registry_entry",
        "CREATE TABLE mine (id int)": "permission denied for schema public",
        "DROP TYPE entry_type": "must be owner of type entry_type",
        "DELETE FROM schema_migrations": "permission denied for table schema_migrations",
        "INSERT INTO schema_migrations_history (version, name, direction) VALUES (1, 'x', 'up')": (
            "permission denied for table schema_migrations_history"
        ),
    }
    for statement, message in refused.items():
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=message):
            conn.execute(statement)


def test_migrator_migrates_and_the_app_user_reads_and_writes_but_cannot_drop(
    scene: Scene, pgpass: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    config = scene.config(tmp_path / "config.yaml", migrationPassword=None)  # pgpass only
    env = {**cli_env, "PGPASSFILE": str(pgpass)}
    env.pop("PGPASSWORD", None)

    up = cli(env, "migrate", "up", "--config", config, "--yes")
    assert up.returncode == 0, up.stderr
    primed = cli(env, "prime-db", "--config", config, input=APP_PASSWORD + "\n")
    assert primed.returncode == 0, primed.stderr
    assert f"Role {APP_ROLE}: created." in primed.stdout

    owners = scene.cluster.query(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'",
        dbname=scene.database,
    )
    assert owners == [(scene.migrator,)]

    settings = load_config(config)
    assert settings.app_params().password is None  # libpq takes it from the pgpass line
    with connect(settings.app_params(), application_name="thv-test app") as conn:
        app_can_use_every_table(conn)
        app_cannot_change_the_schema(conn)

    # Tables a later migration creates (here: reverted and applied again) are granted too.
    migrator = Migrator(settings.migration_params(), Source.embedded())
    migrator.apply(Down(3))
    migrator.apply(Up())
    with connect(settings.app_params(), application_name="thv-test app") as conn:
        app_can_use_every_table(conn)


def test_prime_db_before_the_first_migration(scene: Scene, pgpass: Path, tmp_path: Path) -> None:
    """Default privileges cover every table the migration user creates after prime-db."""
    settings = load_config(scene.config(tmp_path / "config.yaml", migrationPassword=None))
    prime(settings.migration_params(), "app", APP_PASSWORD)
    Migrator(settings.migration_params(), Source.embedded()).apply(Up())
    with connect(settings.app_params(), application_name="thv-test app") as conn:
        app_can_use_every_table(conn)
        app_cannot_change_the_schema(conn)


def test_passwords_from_the_configuration(scene: Scene, tmp_path: Path) -> None:
    """migrationPassword for migrate, password for the application; no pgpass at all."""
    config = scene.config(tmp_path / "config.yaml", password=APP_PASSWORD)
    settings = load_config(config)
    prime(settings.migration_params(), "app", APP_PASSWORD)
    Migrator(settings.migration_params(), Source.embedded()).apply(Up())
    with connect(settings.app_params(), application_name="thv-test app") as conn:
        app_can_use_every_table(conn)


def test_the_app_line_of_pgpass_is_not_used_for_the_migration_user(
    scene: Scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pgpass"
    path.write_text(pgpass_line(scene.database, "app", APP_PASSWORD))
    path.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(path))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    settings = load_config(scene.config(tmp_path / "config.yaml", migrationPassword=None))
    with pytest.raises(ConnectionFailed) as info:
        Migrator(settings.migration_params(), Source.embedded()).version()
    assert f"user {scene.migrator!r}" in str(info.value)
    assert APP_PASSWORD not in str(info.value)
