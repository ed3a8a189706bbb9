"""Which database and which migration set a command uses (issue 11, items 1 to 3).

``--database-url`` (or ``THV_REGISTRY_DATABASE_URL``) beside a config's ``database:`` block, the
password in a URL never shown, and the notice naming the migration set when the current
directory's ``database/migrations`` is not the one read. Real subprocesses, a real server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import REPO_ROOT, THREE_TABLES, TestDatabase, write_migrations
from thv_registry.errors import ExitCode

SECRET = "s3cret-Pw!"


def url_of(database: TestDatabase, *, password: str | None = None, query: str = "") -> str:
    server = database.server
    user = server.user + (f":{quote(password, safe='')}" if password else "")
    host = quote(server.host, safe="")  # a socket directory is percent-encoded in a URL
    return f"postgresql://{user}@{host}:{server.port}/{database.name}{query}"


def run(
    *args: str | Path, env: dict[str, str], cwd: Path, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thv_registry", *map(str, args)],
        env=env,
        cwd=cwd,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "migrations", THREE_TABLES)


def version_of(database: TestDatabase) -> list[tuple[object, ...]]:
    return database.query("SELECT version, dirty FROM schema_migrations")


# -- --database-url --------------------------------------------------------------------------------


def test_database_url_migrates_the_database_it_names(
    database: TestDatabase, migrations: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    url = url_of(database, query="?sslmode=disable")
    up = run("migrate", "up", "-n", "2", "--yes", "--database-url", url,
             "--migrations-dir", migrations, env=cli_env, cwd=tmp_path)  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert "embedded" not in up.stderr
    assert version_of(database) == [(2, False)]
    # the environment variable does the same
    env = {**cli_env, "THV_REGISTRY_DATABASE_URL": url}
    status = run("migrate", "version", "--migrations-dir", migrations, env=env, cwd=tmp_path)
    assert (status.returncode, status.stdout) == (0, "2\n"), status.stderr


def test_url_beside_a_config_without_database_block(
    database: TestDatabase, migrations: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """The config's other blocks (lock tuning) still apply; the URL names the database."""
    config = tmp_path / "tuning.yaml"
    config.write_text("migrations:\n  lockRetries: 1\n")
    up = run("migrate", "up", "--yes", "--config", config, "--database-url", url_of(database),
             "--migrations-dir", migrations, env=cli_env, cwd=tmp_path)  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert version_of(database) == [(3, False)]


@pytest.mark.parametrize("via", ["flag", "env"])
def test_url_and_database_block_together_is_a_usage_error(
    database: TestDatabase, migrations: Path, tmp_path: Path, cli_env: dict[str, str], via: str
) -> None:
    config = database.write_config(tmp_path / "config.yaml")
    url = url_of(database, password=SECRET)
    args: list[str | Path] = ["migrate", "up", "--yes", "--config", config]
    args += ["--migrations-dir", migrations]
    env = dict(cli_env)
    if via == "flag":
        args += ["--database-url", url]
    else:
        env["THV_REGISTRY_DATABASE_URL"] = url
    result = run(*args, env=env, cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE, result.stderr
    named = "--database-url" if via == "flag" else "THV_REGISTRY_DATABASE_URL"
    assert f"Two databases were given: {named} and the database: block of {config}" in (
        result.stderr
    )
    assert SECRET not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert database.tables() == set()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql://app:{SECRET}@127.0.0.1:abc/db", "has port 'abc'"),
        (f"mysql://app:{SECRET}@db/x", "is not a PostgreSQL URL"),
        (f"postgresql://app:{SECRET}@db/x?sslmode=sometimes", "has sslmode=sometimes"),
        (f"postgresql://app:{SECRET}@db/x?nonsense=1", "cannot be parsed"),
        (f"postgresql://app:{SECRET}@db/x?connect_timeout=3", "sets connect_timeout"),
        (f"postgresql://app:{SECRET}@/x", "names no host"),
    ],
)
@pytest.mark.parametrize("debug", [False, True])
def test_a_bad_url_is_a_usage_error_with_the_password_masked(
    migrations: Path, tmp_path: Path, cli_env: dict[str, str], url: str, expected: str,
    debug: bool,
) -> None:  # fmt: skip
    args = ["--debug"] if debug else []
    result = run("migrate", "status", "--database-url", url, "--migrations-dir", migrations,
                 *args, env=cli_env, cwd=tmp_path)  # fmt: skip
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert expected in result.stderr
    assert SECRET not in result.stderr + result.stdout
    if not debug:
        assert "Traceback" not in result.stderr
        assert "app:********@" in result.stderr


def test_the_url_password_never_shows_in_a_connection_failure(
    migrations: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    url = f"postgresql://app:{quote(SECRET, safe='')}@127.0.0.1:1/registry?sslmode=disable"
    for extra in ([], ["--debug"], ["--log-format", "json"]):
        result = run("migrate", "up", "--yes", "--database-url", url,
                     "--migrations-dir", migrations, *extra, env=cli_env, cwd=tmp_path)  # fmt: skip
        assert result.returncode == ExitCode.CONNECTION, result.stderr
        assert "app@127.0.0.1:1/registry" in result.stderr
        assert SECRET not in result.stderr + result.stdout
        assert quote(SECRET, safe="") not in result.stderr + result.stdout


def test_help_never_shows_the_url_from_the_environment(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "THV_REGISTRY_DATABASE_URL": f"postgresql://app:{SECRET}@db/x"}
    for command in ("up", "down", "goto", "status", "version", "force", "verify"):
        shown = run("migrate", command, "--help", env=env, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "--database-url URL" in shown.stdout and SECRET not in shown.stdout
    prime = run("prime-db", "--help", env=env, cwd=tmp_path)
    assert "--database-url URL" in prime.stdout and SECRET not in prime.stdout


def test_prime_db_with_a_url_needs_the_username(
    database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    result = run("prime-db", "--database-url", url_of(database), env=cli_env, cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "prime-db with --database-url needs USERNAME" in result.stderr
    dry = run("prime-db", "some_app", "--dry-run", "--database-url", url_of(database),
              env=cli_env, cwd=tmp_path)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "some_app" in dry.stdout and database.name in dry.stdout


# -- the migration set read ------------------------------------------------------------------------


def test_commands_name_the_set_they_read_when_cwd_has_another(
    database: TestDatabase, migrations: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A checkout-like directory whose database/migrations is not the set read is named."""
    checkout = tmp_path / "checkout"
    write_migrations(checkout / "database" / "migrations", THREE_TABLES)
    config = database.write_config(tmp_path / "config.yaml")
    embedded = run("migrate", "status", "--config", config, env=cli_env, cwd=checkout)
    assert embedded.returncode == ExitCode.PENDING, embedded.stderr
    assert "Reading the migrations installed with the package (" in embedded.stderr
    assert "not ./database/migrations" in embedded.stderr
    chosen = run("migrate", "version", "--config", config, "--migrations-dir", migrations,
                 env=cli_env, cwd=checkout)  # fmt: skip
    assert chosen.returncode == 0, chosen.stderr
    assert f"Reading the migrations in {migrations} (--migrations-dir)" in chosen.stderr
    # the set in the current directory itself, or no such directory here: nothing to say
    same = run("migrate", "version", "--config", config, "--migrations-dir",
               "database/migrations", env=cli_env, cwd=checkout)  # fmt: skip
    assert same.returncode == 0 and "Reading" not in same.stderr, same.stderr
    elsewhere = run("migrate", "version", "--config", config, env=cli_env, cwd=tmp_path)
    assert elsewhere.returncode == 0 and "Reading" not in elsewhere.stderr, elsewhere.stderr
    in_repo = run("migrate", "version", "--config", config, env=cli_env, cwd=REPO_ROOT)
    assert in_repo.returncode == 0 and "Reading" not in in_repo.stderr, in_repo.stderr


def test_create_refuses_a_directory_up_would_not_read(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    checkout = tmp_path / "checkout"
    local = write_migrations(checkout / "database" / "migrations", THREE_TABLES)
    refused = run("migrate", "create", "add_x", env=cli_env, cwd=checkout)
    assert refused.returncode == ExitCode.USAGE, refused.stderr
    assert "Not creating files in ./database/migrations" in refused.stderr
    assert "--migrations-dir database/migrations" in refused.stderr
    assert "pip install -e ." in refused.stderr
    assert sorted(p.name for p in local.iterdir()) == sorted(THREE_TABLES)
    explicit = run("migrate", "create", "add_x", "--migrations-dir", "database/migrations",
                   env=cli_env, cwd=checkout)  # fmt: skip
    assert explicit.returncode == 0, explicit.stderr
    assert (local / "000004_add_x.up.sql").is_file()
