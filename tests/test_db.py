"""db.connect against real servers: the shared test server (trust) and a private one that asks
for passwords over a Unix socket and TCP (scram-sha-256). No mocks."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from thv_registry.cli.hints import describe
from thv_registry.config import ConnectionParams
from thv_registry.db.connect import connect, one_line
from thv_registry.errors import ConnectionFailed, ExitCode

if TYPE_CHECKING:
    from conftest import ServerInfo, TestDatabase

PW_USER = "thv_pw_user"
PW_DB = "thv_pw_db"
PASSWORD = "S3cret-Pw_9x'q\\z"  # a quote and a backslash: conninfo escaping must not leak it


@dataclass(frozen=True)
class PasswordServer:
    """A private server: trust for postgres on the socket, scram-sha-256 for everyone else."""

    socket_dir: str
    port: int  #: the TCP port on 127.0.0.1, also the socket's port

    def params(self, **changes: object) -> ConnectionParams:
        values: dict[str, object] = dict(
            host=self.socket_dir, port=self.port, user=PW_USER, dbname=PW_DB, sslmode="disable"
        )
        values.update(changes)
        return ConnectionParams(**values)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pw_server(pg_server: ServerInfo) -> Iterator[PasswordServer]:
    import pgserver
    from pgserver.postgres_server import get_server

    pg_ctl = pgserver.pg_ctl  # type: ignore[attr-defined]  # generated at import time
    base = Path(tempfile.mkdtemp(prefix="thv-pw-"))
    pgdata = base / "pgdata"
    server = get_server(pgdata, cleanup_mode="delete")
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    with psycopg.connect(
        host=socket_dir, port=info.port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(PW_USER), sql.Literal(PASSWORD)
            )
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PW_DB)))
    (pgdata / "pg_hba.conf").write_text(
        "local all postgres trust\n"
        "local all all scram-sha-256\n"
        f"host {PW_DB} all 127.0.0.1/32 scram-sha-256\n"
    )
    # pgserver starts without TCP; restart the same cluster listening on 127.0.0.1 too.
    port = _free_port()
    run_as = {"user": server.system_user}
    pg_ctl(["-w", "stop"], pgdata=pgdata, **run_as)
    options = ["-o", "-h 127.0.0.1", "-o", f"-p {port}", "-o", f"-k {socket_dir}"]
    pg_ctl(
        ["-w", *options, "-l", str(pgdata / "log"), "start"], pgdata=pgdata, timeout=30, **run_as
    )
    try:
        yield PasswordServer(socket_dir, port)
    finally:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, **run_as)
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def no_pgpass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No PGPASSWORD, and PGPASSFILE pointing at a file that does not exist yet."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    passfile = tmp_path / "pgpass"
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    return passfile


def _params(server: ServerInfo, **changes: object) -> ConnectionParams:
    values: dict[str, object] = dict(
        host=server.host, port=server.port, user=server.user, dbname=server.admin_db,
        sslmode="disable",
    )  # fmt: skip
    values.update(changes)
    return ConnectionParams(**values)  # type: ignore[arg-type]


def _fail(params: ConnectionParams) -> ConnectionFailed:
    with pytest.raises(ConnectionFailed) as info:
        connect(params, application_name="thv-test", connect_timeout=5)
    err = info.value
    assert err.exit_code == ExitCode.CONNECTION
    assert "\n" not in str(err)
    return err


# -- success ---------------------------------------------------------------------------------------


def test_connect_opens_an_autocommit_connection_with_application_name(
    database: TestDatabase,
) -> None:
    params = _params(database.server, dbname=database.name)
    with connect(params, application_name="thv-test app") as conn:
        assert conn.autocommit
        row = conn.execute("select current_database(), current_setting('application_name')")
        assert row.fetchone() == (database.name, "thv-test app")


def test_password_connects(pw_server: PasswordServer) -> None:
    for host in (pw_server.socket_dir, "127.0.0.1"):
        with connect(pw_server.params(host=host, password=PASSWORD), application_name="t") as c:
            assert c.execute("select current_user").fetchone() == (PW_USER,)


def test_pgpass_is_used_when_no_password_is_given(
    pw_server: PasswordServer, no_pgpass: Path
) -> None:
    escaped = PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    no_pgpass.write_text(f"*:*:*:{PW_USER}:{escaped}\n")
    no_pgpass.chmod(0o600)
    with connect(pw_server.params(host="127.0.0.1"), application_name="t") as conn:
        assert conn.execute("select current_user").fetchone() == (PW_USER,)


# -- unreachable -----------------------------------------------------------------------------------


def test_nothing_listens_on_tcp_port() -> None:
    port = _free_port()
    err = _fail(ConnectionParams("127.0.0.1", port, "app", "registry", "disable", "pw-secret"))
    assert f"nothing listens on 127.0.0.1:{port} (connection refused)" in err.message
    assert "app@127.0.0.1:" in err.message
    assert "database.host and database.port" in str(err)
    assert "pw-secret" not in str(err)


def test_host_name_cannot_be_resolved() -> None:
    err = _fail(ConnectionParams("no-such-host.invalid", 5432, "app", "registry", "disable"))
    assert "host name 'no-such-host.invalid' cannot be resolved" in err.message
    assert "database.host" in str(err)


def test_no_server_on_unix_socket(tmp_path: Path) -> None:
    err = _fail(ConnectionParams(str(tmp_path), 5432, "app", "registry", "disable"))
    assert f"nothing listens on the Unix socket {tmp_path}/.s.PGSQL.5432" in err.message
    assert "socket directory" in str(err)


def test_unix_socket_directory_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    err = _fail(ConnectionParams(str(missing), 5432, "app", "registry", "disable"))
    assert f"the Unix-socket directory {missing} does not exist" in err.message


# -- the server answers and refuses ----------------------------------------------------------------


def test_database_does_not_exist(pg_server: ServerInfo) -> None:
    err = _fail(_params(pg_server, dbname="thv_no_such_db"))
    assert "Database 'thv_no_such_db' does not exist" in err.message
    assert f"{pg_server.host}:{pg_server.port}" in err.message
    assert "createdb -h" in str(err) and "thv_no_such_db" in (err.hint or "")


def test_role_does_not_exist(pg_server: ServerInfo) -> None:
    err = _fail(_params(pg_server, user="thv_no_such_role"))
    assert "Role 'thv_no_such_role' does not exist" in err.message
    assert "database.migrationUser" in str(err)
    assert (err.reason, err.user) == ("role_missing", "thv_no_such_role")
    assert "prime-db" not in str(err), "the library names no command"
    assert "(thv-registry-api prime-db, or ask your DBA)" in describe(err)  # the CLI does


def test_embedded_server_version_is_the_servers_own(pg_server: ServerInfo) -> None:
    if pg_server.kind != "embedded":
        pytest.skip("needs the embedded test server")
    from conftest import TEST_STATE_DIR
    from thv_registry.db.embedded import start_embedded

    server = start_embedded(TEST_STATE_DIR / "pgdata")
    with connect(_params(pg_server), application_name="t") as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None and server.version == row[0].split()[0]


@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_wrong_password(pw_server: PasswordServer, tcp: bool) -> None:
    wrong = "Wr0ng-Pa55word'\\"
    host = "127.0.0.1" if tcp else pw_server.socket_dir
    err = _fail(pw_server.params(host=host, password=wrong))
    text = str(err)
    assert f"Authentication failed for user '{PW_USER}'" in text
    assert "password authentication failed" in text
    assert "THV_REGISTRY_DATABASE_MIGRATIONPASSWORD" in text and "~/.pgpass" in text
    assert wrong not in text and PASSWORD not in text


def test_password_equal_to_user_name_is_still_redacted(pw_server: PasswordServer) -> None:
    err = _fail(pw_server.params(password=PW_USER))
    assert PW_USER not in str(err)
    assert "Authentication failed" in err.message


def test_no_password_supplied(pw_server: PasswordServer, no_pgpass: Path) -> None:
    err = _fail(pw_server.params(host="127.0.0.1"))
    assert "asks for a password and none was given" in err.message
    assert "~/.pgpass" in str(err) and "THV_REGISTRY_DATABASE_PASSWORD" in str(err)


def test_pg_hba_has_no_entry(pw_server: PasswordServer) -> None:
    err = _fail(pw_server.params(host="127.0.0.1", dbname="postgres", password=PASSWORD))
    assert "does not accept this connection" in err.message
    assert "pg_hba.conf" in str(err)
    assert PASSWORD not in str(err)


def test_server_without_ssl(pw_server: PasswordServer) -> None:
    err = _fail(pw_server.params(host="127.0.0.1", sslmode="require", password=PASSWORD))
    assert "does not support SSL, but sslmode is require" in err.message
    assert "sslmode: disable" in str(err)


# -- helpers ---------------------------------------------------------------------------------------


def test_one_line_collapses_a_server_message() -> None:
    raw = (
        'connection to server on socket "/tmp/.s.PGSQL.1" failed: No such file or directory\n'
        "\tIs the server running locally and accepting connections on that socket?\n"
    )
    assert one_line(raw) == (
        'connection to server on socket "/tmp/.s.PGSQL.1" failed: No such file or directory; '
        "Is the server running locally and accepting connections on that socket?"
    )
    assert one_line('FATAL:  role "x" does not exist\n') == 'FATAL: role "x" does not exist'


def test_errors_are_not_psycopg_errors() -> None:
    port = _free_port()
    with pytest.raises(ConnectionFailed) as info:
        connect(ConnectionParams("127.0.0.1", port, "a", "b", "disable"), application_name="t")
    assert not isinstance(info.value, psycopg.Error)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)


def test_connect_with_a_loaded_config(config_file: Path, database: TestDatabase) -> None:
    from thv_registry.config import load_config

    params = load_config(config_file).migration_params()
    with connect(params, application_name="t") as conn:
        assert conn.execute("select current_database()").fetchone() == (database.name,)


def test_embedded_server_that_cannot_start_says_why_and_the_cli_offers_config(
    tmp_path: Path,
) -> None:
    from thv_registry.db.embedded import start_embedded

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConnectionFailed) as info:
        start_embedded(blocker / "pgdata")
    err = info.value
    assert err.reason == "embedded_start" and str(blocker / "pgdata") in err.message
    assert "THV_REGISTRY_EMBEDDED_DIR" in str(err) and "--config" not in str(err)
    assert describe(err).endswith("or pass --config with a database: block to use your own server.")
