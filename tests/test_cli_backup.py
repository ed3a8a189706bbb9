"""`down` and `goto` downwards take a pg_dump backup first (under the lock), unless --no-backup."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from conftest import TestDatabase

SET = {
    "000001_a.up.sql": "CREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (1), (2);\n",
    "000001_a.down.sql": "DROP TABLE a;\n",
    "000002_b.up.sql": "CREATE TABLE b (id int);\nINSERT INTO b VALUES (7);\n",
    "000002_b.down.sql": "DROP TABLE b;\n",
}


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thv_registry", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def setup(tmp_path: Path, database: TestDatabase) -> tuple[Path, Path]:
    migrations = tmp_path / "m"
    migrations.mkdir()
    for name, body in SET.items():
        (migrations / name).write_text(body)
    return migrations, database.write_config(tmp_path / "config.yaml")


def test_down_takes_a_restorable_backup(
    database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    migrations, config = setup(tmp_path, database)
    common = ("--config", str(config), "--migrations-dir", str(migrations))
    assert cli("migrate", "up", *common, "--yes", env=cli_env, cwd=tmp_path).returncode == 0
    r = cli("migrate", "down", *common, "-n", "1", "--yes", env=cli_env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Backup written to" in r.stdout and "To restore it:" in r.stdout
    dumps = list(Path(cli_env["THV_REGISTRY_BACKUP_DIR"]).glob("*-before-down-2-to-1.dump"))
    assert len(dumps) == 1 and dumps[0].stat().st_mode & 0o777 == 0o600
    assert "b" not in database.tables()
    restore = next(line for line in r.stdout.splitlines() if line.startswith("To restore it:"))
    done = subprocess.run(
        shlex.split(restore.removeprefix("To restore it:")), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert database.query("SELECT id FROM b") == [(7,)]
    assert database.query("SELECT version FROM schema_migrations") == [(2,)]


def test_no_backup_skips_it(
    database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    migrations, config = setup(tmp_path, database)
    common = ("--config", str(config), "--migrations-dir", str(migrations))
    assert cli("migrate", "up", *common, "--yes", env=cli_env, cwd=tmp_path).returncode == 0
    r = cli("migrate", "goto", "0", *common, "--yes", "--no-backup", env=cli_env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Backup" not in r.stdout
    assert not Path(cli_env["THV_REGISTRY_BACKUP_DIR"]).exists()


def test_unusable_pg_dump_refuses_the_revert(
    database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    migrations, config = setup(tmp_path, database)
    common = ("--config", str(config), "--migrations-dir", str(migrations))
    assert cli("migrate", "up", *common, "--yes", env=cli_env, cwd=tmp_path).returncode == 0
    env = {**cli_env, "THV_REGISTRY_PG_DUMP": str(tmp_path / "no-pg-dump")}
    r = cli("migrate", "down", *common, "-n", "2", "--yes", env=env, cwd=tmp_path)
    assert r.returncode == 8, r.stderr
    assert "--no-backup" in r.stderr and "Traceback" not in r.stderr
    assert database.query("SELECT version, dirty FROM schema_migrations") == [(2, False)]
