"""golang-migrate itself and this tool taking turns on one database and one set of files.

These run only where a golang-migrate v4 binary exists: ``THV_GOLANG_MIGRATE=/path/to/migrate``.
CI machines have none (the Go module proxy is unreachable from them); there,
test_golang_migrate_state.py checks the same contract against the states golang-migrate leaves and
its published lock key vectors. golang-migrate's CLI writes everything to stderr.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from conftest import REPO_ROOT, MigrateCli, TestDatabase, write_migrations
from test_golang_migrate_state import SET
from thv_registry.errors import ExitCode
from thv_registry.migrations.engine.lock import advisory_lock, current_schema, lock_key
from thv_registry.migrations.tools import snapshot
from waiting import sessions_waiting_on_lock, wait_until

GOLANG_MIGRATE = os.environ.get("THV_GOLANG_MIGRATE", "")
pytestmark = pytest.mark.skipif(
    not GOLANG_MIGRATE, reason="THV_GOLANG_MIGRATE (a golang-migrate v4 binary) is not set"
)

REGISTRY_MIGRATIONS = REPO_ROOT / "database" / "migrations"

GolangMigrate = Callable[..., subprocess.CompletedProcess[str]]


def golang_migrate_url(db: TestDatabase) -> str:
    """lib/pq's URL for the test database (a Unix socket directory goes in ``host=``)."""
    s = db.server
    if s.host.startswith("/"):
        return f"postgres://{s.user}@/{db.name}?host={quote(s.host)}&port={s.port}&sslmode=disable"
    return f"postgres://{s.user}@{s.host}:{s.port}/{db.name}?sslmode=disable"


def golang_migrate_argv(db: TestDatabase, directory: Path, *args: str) -> list[str]:
    return [GOLANG_MIGRATE, "-path", str(directory), "-database", golang_migrate_url(db), *args]


@pytest.fixture
def gm(database: TestDatabase) -> GolangMigrate:
    def run(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
        argv = golang_migrate_argv(database, directory, *args)
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    return run


def gm_version(gm: GolangMigrate, directory: Path) -> str:
    return gm(directory, "version").stderr.strip()


def ours(cli_env: dict[str, str], tmp_path: Path, config: Path, migrations: Path) -> MigrateCli:
    workdir = tmp_path / "elsewhere"
    workdir.mkdir(exist_ok=True)
    return MigrateCli(cli_env, workdir, config, migrations)


def test_registry_migrations_take_turns(
    database: TestDatabase,
    gm: GolangMigrate,
    cli_env: dict[str, str],
    tmp_path: Path,
    config_file: Path,
) -> None:
    """Our real migration set: each tool picks up where the other left off, both ways."""
    cli = ours(cli_env, tmp_path, config_file, REGISTRY_MIGRATIONS)
    latest = max(int(p.name[:6]) for p in REGISTRY_MIGRATIONS.glob("*.up.sql"))

    assert gm(REGISTRY_MIGRATIONS, "up", "3").returncode == 0
    assert cli("version").stdout.strip() == "3"
    done = cli("up", "--yes")
    assert done.returncode == 0, done.stderr
    assert f"Database is now at version {latest} " in done.stdout
    assert gm_version(gm, REGISTRY_MIGRATIONS) == str(latest)

    reverted = gm(REGISTRY_MIGRATIONS, "down", "1")
    assert reverted.returncode == 0, reverted.stderr
    assert cli("version").stdout.strip() == str(latest - 1)
    status = cli("status")
    assert status.returncode == ExitCode.PENDING, status.stdout + status.stderr
    assert cli("up", "--yes").returncode == 0

    down = cli("down", "--num-steps", "2", "--yes", "--no-backup")
    assert down.returncode == 0, down.stderr
    assert gm_version(gm, REGISTRY_MIGRATIONS) == str(latest - 2)
    assert gm(REGISTRY_MIGRATIONS, "up").returncode == 0
    assert gm_version(gm, REGISTRY_MIGRATIONS) == str(latest)
    status = cli("status")
    assert status.returncode == 0, status.stdout + status.stderr

    # the schema the two tools built in turns is the one this tool builds alone
    with database.connect() as conn:
        in_turns = snapshot.take(conn)
    assert cli("down", "--num-steps", "0", "--yes", "--no-backup").returncode == 0
    assert gm_version(gm, REGISTRY_MIGRATIONS) == "error: no migration"
    assert cli("up", "--yes").returncode == 0
    with database.connect() as conn:
        assert snapshot.diff(in_turns, snapshot.take(conn)) == []

    # and every file runs under golang-migrate alone, down and up (the Go server's runner)
    all_down = gm(REGISTRY_MIGRATIONS, "down", "-all")
    assert all_down.returncode == 0, all_down.stderr
    assert database.tables() == {"schema_migrations", "schema_migrations_history"}
    all_up = gm(REGISTRY_MIGRATIONS, "up")
    assert all_up.returncode == 0, all_up.stderr
    with database.connect() as conn:
        assert snapshot.diff(in_turns, snapshot.take(conn)) == []
    status = cli("status")
    assert status.returncode == 0, status.stdout + status.stderr


def test_golang_migrate_waits_for_our_lock(
    database: TestDatabase, gm: GolangMigrate, tmp_path: Path
) -> None:
    """The lock key matches for real: golang-migrate blocks while we hold it, then proceeds."""
    migrations = write_migrations(tmp_path / "m", SET)
    argv = golang_migrate_argv(database, migrations, "-lock-timeout", "60", "up")
    with database.connect() as conn:
        key = lock_key(current_schema(conn), "schema_migrations", database.name)
        with advisory_lock(conn, key, timeout_s=5):
            proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
            wait_until(
                lambda: sessions_waiting_on_lock(conn, database.name, lock="advisory"),
                60,
                "golang-migrate to wait for our advisory lock",
                alive=proc,
            )
            assert database.tables() == set()  # it locks before creating its table
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert database.tables() == {"a", "b", "c", "schema_migrations"}


def test_we_wait_for_golang_migrate_and_name_it(
    database: TestDatabase,
    gm: GolangMigrate,
    migrate_cli: Callable[[dict[str, str]], MigrateCli],
) -> None:
    files = dict(SET)
    files["000002_b.up.sql"] = "SELECT pg_sleep(4);\nCREATE TABLE b (id int PRIMARY KEY);\n"
    cli = migrate_cli(files)
    argv = golang_migrate_argv(database, cli.migrations, "up")
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(
            lambda: database.query(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(4)%%'"
            ),
            20,
            "golang-migrate to reach migration 2",
            alive=proc,
        )
        waited = cli("up", "--yes", "--lock-wait", "1")
        assert waited.returncode == ExitCode.LOCK_TIMEOUT, waited.stderr
        assert "pg_sleep(4)" in waited.stderr  # the holder's current query is named
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    after = cli("up", "--yes")
    assert after.returncode == 0, after.stderr
    assert "No pending migrations; database is at version 3" in after.stdout


def test_dirty_states_are_refused_by_the_other_tool(
    database: TestDatabase,
    gm: GolangMigrate,
    migrate_cli: Callable[[dict[str, str]], MigrateCli],
) -> None:
    files = dict(SET)
    files["000002_b.up.sql"] = (
        "CREATE TABLE b (id int PRIMARY KEY);\nINSERT INTO nope VALUES (1);\n"
    )
    cli = migrate_cli(files)
    failed = gm(cli.migrations, "up")
    assert failed.returncode == 1 and 'relation "nope" does not exist' in failed.stderr
    assert gm_version(gm, cli.migrations) == "2 (dirty)"

    refused = cli("up", "--yes")
    assert refused.returncode == ExitCode.DIRTY, refused.stderr
    assert "force" in refused.stderr
    forced = cli("force", "1", "--yes")
    assert forced.returncode == 0, forced.stderr
    assert gm_version(gm, cli.migrations) == "1"

    # ours leaves a failed non-transactional step dirty: golang-migrate refuses it too
    (cli.migrations / "000002_b.up.sql").write_text(
        "CREATE TABLE b (id int PRIMARY KEY);\nCREATE INDEX CONCURRENTLY b_x ON nope (x);\n"
    )
    ours_failed = cli("up", "--yes")
    assert ours_failed.returncode == ExitCode.MIGRATION_FAILED, ours_failed.stderr
    assert gm_version(gm, cli.migrations) == "2 (dirty)"
    blocked = gm(cli.migrations, "up")
    assert blocked.returncode == 1 and "Dirty database version 2" in blocked.stderr

    # golang-migrate's own recovery, then ours finishes
    assert gm(cli.migrations, "force", "2").returncode == 0
    (cli.migrations / "000002_b.up.sql").write_text("CREATE TABLE b (id int PRIMARY KEY);\n")
    finished = cli("up", "--yes")
    assert finished.returncode == 0, finished.stderr
    assert gm_version(gm, cli.migrations) == "3"
    with psycopg.connect(database.conninfo) as conn:
        assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchall() == [
            (3, False)
        ]
