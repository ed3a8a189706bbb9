"""prime-db against a private PostgreSQL that asks every role but postgres for a SCRAM password.

Roles are cluster-wide, so these tests use a server of their own (not the shared test server):
each test gets a database owned by a fresh migration user, and every role but postgres is
dropped afterwards. Passwords are checked by logging in with them, never by reading them back.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from thv_registry.cli.hints import describe
from thv_registry.config import ConnectionParams
from thv_registry.db.prime import APP_ROLE, plan, prime
from thv_registry.errors import ExitCode, PermissionDenied, PrimeDenied, UsageError

MIGRATOR_PASSWORD = "m1gr@tor-pw"
NASTY_PASSWORD = "p'; DROP ROLE postgres; --\\ \"ü:ñ€ ﬁ"  # quotes, ;, backslash, :, unicode
NASTY_USERS = ['app"; DROP ROLE postgres; --', "ünï'cødé;user", "Mixed Case"]


@dataclass(frozen=True)
class Cluster:
    """A private server: trust for postgres on its socket, scram-sha-256 for everyone else."""

    socket_dir: str
    port: int
    log: Path

    def params(self, user: str, dbname: str, password: str | None = None) -> ConnectionParams:
        return ConnectionParams(self.socket_dir, self.port, user, dbname, "disable", password)

    def connect(
        self, user: str = "postgres", dbname: str = "postgres", password: str | None = None
    ) -> psycopg.Connection[tuple[Any, ...]]:
        kwargs: dict[str, Any] = dict(self.params(user, dbname, password).connect_kwargs())
        return psycopg.connect(autocommit=True, **kwargs)

    def query(self, query: str, *params: Any, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        with self.connect(dbname=dbname) as conn:
            return conn.execute(query, params).fetchall()

    def roles(self) -> set[str]:
        rows = self.query("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_'")
        return {r[0] for r in rows} - {"postgres"}


@dataclass(frozen=True)
class Scene:
    """One test's database in the private cluster, owned by its migration user."""

    cluster: Cluster
    database: str
    migrator: str

    def config(self, path: Path, **extra: object) -> Path:
        db: dict[str, object] = {
            "host": self.cluster.socket_dir,
            "port": self.cluster.port,
            "user": "app",
            "migrationUser": self.migrator,
            "migrationPassword": MIGRATOR_PASSWORD,
            "database": self.database,
            "sslmode": "disable",
        }
        db.update(extra)
        db = {k: v for k, v in db.items() if v is not None}
        path.write_text(yaml.safe_dump({"database": db}, sort_keys=False, allow_unicode=True))
        return path

    def migration_params(self) -> ConnectionParams:
        return self.cluster.params(self.migrator, self.database, MIGRATOR_PASSWORD)

    def login(self, user: str, password: str | None) -> psycopg.Connection[tuple[Any, ...]]:
        return self.cluster.connect(user, self.database, password)

    def can_login(self, user: str, password: str) -> bool:
        try:
            with self.login(user, password) as conn:
                return conn.execute("SELECT current_user").fetchone() == (user,)
        except psycopg.OperationalError:
            return False


def start_cluster() -> Iterator[Cluster]:
    """Start a private pgserver instance with password authentication; stop and delete it after."""
    from pgserver.postgres_server import get_server

    base = Path(tempfile.mkdtemp(prefix="thv-prime-"))
    server = get_server(base / "pgdata", cleanup_mode="delete")
    try:
        info = server.get_postmaster_info()
        (base / "pgdata" / "pg_hba.conf").write_text(
            "local all postgres trust\nlocal all all scram-sha-256\n"
        )
        cluster = Cluster(str(info.socket_dir), int(info.port or 5432), base / "pgdata" / "log")
        with cluster.connect() as conn:
            conn.execute("SELECT pg_reload_conf()")
        yield cluster
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    yield from start_cluster()


@contextmanager
def new_scene(cluster: Cluster, *, createrole: bool = True) -> Iterator[Scene]:
    """A database owned by a fresh migration user; afterwards, it and every role are dropped."""
    suffix = uuid.uuid4().hex[:8]
    scene = Scene(cluster, f"thv_prime_{suffix}", f"migrator_{suffix}")
    with cluster.connect() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                sql.Identifier(scene.migrator),
                sql.SQL("CREATEROLE" if createrole else "NOCREATEROLE"),
                sql.Literal(MIGRATOR_PASSWORD),
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(scene.database), sql.Identifier(scene.migrator)
            )
        )
    try:
        yield scene
    finally:
        with cluster.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(scene.database)
                )
            )
            # Members before the roles they belong to; the migration user, who granted the
            # memberships, last.
            members_first = conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres'"
                " ORDER BY rolname = %s, rolcanlogin DESC",
                (scene.migrator,),
            ).fetchall()
            for (name,) in members_first:
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def scene(cluster: Cluster) -> Iterator[Scene]:
    with new_scene(cluster) as made:
        yield made


def cli(
    env: dict[str, str], *args: str | Path, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thv_registry", *map(str, args)],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )


def create_table(scene: Scene, name: str = "things") -> None:
    """A table owned by the migration user (as a migration would create it)."""
    with scene.login(scene.migrator, MIGRATOR_PASSWORD) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (id bigint GENERATED ALWAYS AS IDENTITY, note text)").format(
                sql.Identifier(name)
            )
        )


# -- the CLI ---------------------------------------------------------------------------------------


def test_dry_run_prints_the_sql_with_the_password_masked(
    scene: Scene, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    config = scene.config(tmp_path / "config.yaml")
    result = cli(cli_env, "prime-db", "--config", config, "--dry-run", input="secret-pw\n")
    assert result.returncode == 0, result.stderr
    m, db = scene.migrator, scene.database
    assert result.stdout.splitlines() == [
        f"-- prime-db dry run on {m}@{scene.cluster.socket_dir}:{scene.cluster.port}/{db} "
        "(schema public): nothing was changed.",
        f"-- Role {APP_ROLE} is missing; user app is missing.",
        "-- The password is masked: '********' stands for its SCRAM-SHA-256 hash.",
        "BEGIN;",
        f'CREATE ROLE "{APP_ROLE}" NOLOGIN;',
        """CREATE ROLE "app" LOGIN PASSWORD '********';""",
        f'GRANT "{APP_ROLE}" TO "app";',
        f'GRANT CONNECT ON DATABASE "{db}" TO "{APP_ROLE}";',
        f'GRANT USAGE ON SCHEMA "public" TO "{APP_ROLE}";',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "public" TO "{APP_ROLE}";',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "public" TO "{APP_ROLE}";',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{m}" IN SCHEMA "public" GRANT SELECT, INSERT, '
        f'UPDATE, DELETE ON TABLES TO "{APP_ROLE}";',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE "{m}" IN SCHEMA "public" GRANT USAGE, SELECT ON '
        f'SEQUENCES TO "{APP_ROLE}";',
        "COMMIT;",
    ]
    assert "secret-pw" not in result.stdout + result.stderr
    assert scene.cluster.roles() == {scene.migrator}


def test_creates_the_role_and_the_user_then_rerunning_changes_nothing(
    scene: Scene, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    create_table(scene)
    config = scene.config(tmp_path / "config.yaml")
    first = cli(cli_env, "prime-db", "--config", config, input=NASTY_PASSWORD + "\n")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[1:4] == [
        f"Role {APP_ROLE}: created.",
        "User app: created with the password given.",
        f"Membership: app is now a member of {APP_ROLE}.",
    ]
    assert first.stderr == ""
    assert NASTY_PASSWORD not in first.stdout
    assert scene.cluster.query(
        "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole FROM pg_roles"
        " WHERE rolname IN ('app', %s) ORDER BY 1",
        APP_ROLE,
    ) == [("app", True, False, False), (APP_ROLE, False, False, False)]
    assert scene.can_login("app", NASTY_PASSWORD)
    with scene.login("app", NASTY_PASSWORD) as conn:
        conn.execute("INSERT INTO things (note) VALUES ('hello')")
        assert conn.execute("SELECT note FROM things").fetchall() == [("hello",)]

    before = privileges(scene)
    again = cli(cli_env, "prime-db", "--config", config, input="another-password\n")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1:4] == [
        f"Role {APP_ROLE}: exists.",
        "User app: exists; password left unchanged (pass --update-password to change it).",
        f"Membership: app was already a member of {APP_ROLE}.",
    ]
    assert privileges(scene) == before
    assert scene.can_login("app", NASTY_PASSWORD)
    assert not scene.can_login("app", "another-password")


def test_update_password_changes_an_existing_users_password(
    scene: Scene, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    config = scene.config(tmp_path / "config.yaml")
    assert cli(cli_env, "prime-db", "--config", config, input="first-pw\n").returncode == 0
    dry = cli(cli_env, "prime-db", "--config", config, "--update-password", "--dry-run")
    assert """ALTER ROLE "app" PASSWORD '********';""" in dry.stdout.splitlines()
    result = cli(cli_env, "prime-db", "--config", config, "--update-password", input="second-pw\n")
    assert result.returncode == 0, result.stderr
    assert "User app: exists; password updated." in result.stdout
    assert scene.can_login("app", "second-pw")
    assert not scene.can_login("app", "first-pw")


def test_username_argument_overrides_the_config(
    scene: Scene, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    config = scene.config(tmp_path / "config.yaml")
    name = NASTY_USERS[1]
    result = cli(cli_env, "prime-db", name, "--config", config, input="pw-for-ünï\n")
    assert result.returncode == 0, result.stderr
    assert f"User {name}: created with the password given." in result.stdout
    assert scene.can_login(name, "pw-for-ünï")
    assert "app" not in scene.cluster.roles()


@pytest.mark.parametrize(
    ("stdin", "message", "code"),
    [  # no answer at all is exit 5, as a confirmation that cannot be read; an empty one is bad
        ("", "standard input is closed or empty and is not a terminal", ExitCode.UNCONFIRMED),
        ("\n", "The password is empty", ExitCode.USAGE),
    ],
    ids=["eof", "empty-line"],
)
def test_a_missing_password_is_refused(
    scene: Scene, tmp_path: Path, cli_env: dict[str, str], stdin: str, message: str, code: int
) -> None:
    config = scene.config(tmp_path / "config.yaml")
    result = cli(cli_env, "prime-db", "--config", config, input=stdin)
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert scene.cluster.roles() == {scene.migrator}


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("pg_app", "is reserved by PostgreSQL"),
        ("a" * 64, "is longer than 63 bytes"),
        (APP_ROLE, "is the group role itself"),
        ("MIGRATOR", "is the migration user itself"),
    ],
)
def test_bad_user_names_are_refused(
    scene: Scene, tmp_path: Path, cli_env: dict[str, str], username: str, message: str
) -> None:
    config = scene.config(tmp_path / "config.yaml")
    name = scene.migrator if username == "MIGRATOR" else username
    result = cli(cli_env, "prime-db", name, "--config", config, input="pw\n")
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert scene.cluster.roles() == {scene.migrator}


def test_config_is_required(cli_env: dict[str, str]) -> None:
    result = cli(cli_env, "prime-db", "app", input="pw\n")
    assert result.returncode == ExitCode.USAGE
    assert "prime-db needs --config FILE" in result.stderr


def test_a_migration_user_without_createrole_is_refused(
    cluster: Cluster, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    with new_scene(cluster, createrole=False) as scene:
        config = scene.config(tmp_path / "config.yaml")
        result = cli(cli_env, "prime-db", "--config", config, input="pw\n")
        assert result.returncode == ExitCode.PERMISSION, result.stderr
        text = result.stderr
        assert f"The migration user '{scene.migrator}'" in text
        assert "needs the CREATEROLE privilege" in text
        assert f'ALTER ROLE "{scene.migrator}" CREATEROLE' in text
        assert "the statements of `thv-registry-api prime-db --dry-run` themselves" in text
        assert cluster.roles() == {scene.migrator}


def test_the_prompt_on_a_terminal_hides_the_password_and_asks_twice(
    scene: Scene, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    config = scene.config(tmp_path / "config.yaml")
    argv = [sys.executable, "-m", "thv_registry", "prime-db", "--config", str(config)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        os.execve(sys.executable, argv, cli_env)
    try:
        seen = _read_until(fd, b"Password for the new user app: ")
        os.write(fd, b"tty-secret\n")
        seen += _read_until(fd, b"Repeat for confirmation: ")
        os.write(fd, b"tty-secret\n")
        seen += _read_until(fd, b"User app: created")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"tty-secret" not in seen  # not echoed
    assert scene.can_login("app", "tty-secret")


def _read_until(fd: int, marker: bytes, timeout: float = 30.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"timed out waiting for {marker!r}; got {data!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            chunk = b""
        if not chunk:
            raise AssertionError(f"ended before {marker!r}; got {data!r}")
        data += chunk
    return data


# -- the library -----------------------------------------------------------------------------------


@pytest.mark.parametrize("username", NASTY_USERS)
def test_names_and_passwords_cannot_inject_sql(scene: Scene, username: str) -> None:
    params = scene.migration_params()
    shown = plan(params, username)
    assert all(NASTY_PASSWORD not in s.sql for s in shown.statements)
    result = prime(params, username, NASTY_PASSWORD)
    assert result.plan.statements == shown.statements
    assert username in scene.cluster.roles()  # exactly that name, quotes and all
    assert scene.cluster.query("SELECT 1 FROM pg_roles WHERE rolname = 'postgres'") == [(1,)]
    assert scene.can_login(username, NASTY_PASSWORD)
    assert not scene.can_login(username, NASTY_PASSWORD + "x")


def test_the_password_reaches_the_server_only_as_a_scram_hash(
    scene: Scene, cluster: Cluster
) -> None:
    marker = "Cl3ar-T3xt-Marker-" + uuid.uuid4().hex[:6]
    with cluster.connect() as conn:
        conn.execute("ALTER SYSTEM SET log_statement = 'all'")
        conn.execute("SELECT pg_reload_conf()")
    try:
        start = cluster.log.stat().st_size
        prime(scene.migration_params(), "app", marker)
        logged = cluster.log.read_bytes()[start:].decode(errors="replace")
    finally:
        with cluster.connect() as conn:
            conn.execute("ALTER SYSTEM RESET log_statement")
            conn.execute("SELECT pg_reload_conf()")
    assert 'CREATE ROLE "app" LOGIN PASSWORD \'SCRAM-SHA-256$' in logged
    assert marker not in logged
    assert scene.can_login("app", marker)


def test_later_tables_are_granted_by_default(scene: Scene) -> None:
    prime(scene.migration_params(), "app", "pw-1")
    create_table(scene, "created_later")
    with scene.login("app", "pw-1") as conn:
        conn.execute("INSERT INTO created_later (note) VALUES ('x')")
        conn.execute("UPDATE created_later SET note = 'y'")
        assert conn.execute("SELECT note FROM created_later").fetchall() == [("y",)]
        conn.execute("DELETE FROM created_later")


def test_library_errors_are_typed(scene: Scene) -> None:
    params = scene.migration_params()
    with pytest.raises(UsageError, match="A password is needed to create the role"):
        prime(params, "app", None)
    with pytest.raises(UsageError, match="NUL character"):
        prime(params, "app", "a\0b")
    assert scene.cluster.roles() == {scene.migrator}


def test_granting_a_role_created_by_someone_else_needs_its_admin_option(
    scene: Scene, cluster: Cluster
) -> None:
    with cluster.connect() as conn:  # a superuser made the role; the migrator may not grant it
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(APP_ROLE)))
    with pytest.raises(PermissionDenied) as info:
        prime(scene.migration_params(), "app", "pw")
    text = str(info.value)
    assert f"could not make app a member of {APP_ROLE}" in text
    assert isinstance(info.value, PrimeDenied) and info.value.grant is None
    assert info.value.user == scene.migrator and "--dry-run" not in text  # data, not CLI advice
    assert "`thv-registry-api prime-db --dry-run` themselves" in describe(info.value)
    assert f"needs the admin option on role '{APP_ROLE}'" in text
    assert "Nothing was changed" in text
    assert scene.cluster.roles() == {scene.migrator, APP_ROLE}


def privileges(scene: Scene) -> list[tuple[Any, ...]]:
    return scene.cluster.query(
        """SELECT 'table', relname, relacl::text FROM pg_class
            WHERE relnamespace = 'public'::regnamespace
           UNION ALL SELECT 'default', defaclobjtype::text, defaclacl::text FROM pg_default_acl
           UNION ALL SELECT 'database', datname, datacl::text FROM pg_database
            WHERE datname = current_database()
           UNION ALL SELECT 'member', roleid::regrole::text, member::regrole::text
             FROM pg_auth_members WHERE roleid = %s::regrole
            ORDER BY 1, 2""",
        APP_ROLE,
        dbname=scene.database,
    )


def test_database_url_instead_of_a_config(
    scene: Scene, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Issue 11, item 2: prime-db takes --database-url; its password is never shown."""
    from urllib.parse import quote

    def url(password: str) -> str:
        host = quote(scene.cluster.socket_dir, safe="")
        return (
            f"postgresql://{quote(scene.migrator, safe='')}:{quote(password, safe='')}@{host}:"
            f"{scene.cluster.port}/{scene.database}?sslmode=disable"
        )

    wrong = cli(cli_env, "prime-db", "app", "--database-url", url("not-the-Pw-42"), input="x\n")
    assert wrong.returncode == ExitCode.CONNECTION, wrong.stderr
    assert "not-the-Pw-42" not in wrong.stdout + wrong.stderr
    done = cli(cli_env, "prime-db", "app", "--database-url", url(MIGRATOR_PASSWORD),
               input="app-pw\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert MIGRATOR_PASSWORD not in done.stdout + done.stderr
    assert "User app: created with the password given." in done.stdout
    assert scene.can_login("app", "app-pw")
