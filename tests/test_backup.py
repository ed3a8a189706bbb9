"""Backups before a revert: real pg_dump against the real test server, a real restore. No mocks.

The server is the embedded PostgreSQL 16 or, with THV_TEST_DATABASE_URL, the system's (e.g. 15):
either way the chosen pg_dump must be able to dump it, and the printed command must restore it.
"""

from __future__ import annotations

import re
import shlex
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from thv_registry.cli.hints import describe
from thv_registry.config import ConnectionParams
from thv_registry.errors import BackupFailed, BackupUnavailable, ConnectionFailed, ExitCode
from thv_registry.migrations.engine.model import (
    Direction,
    Down,
    Migration,
    MigrationFile,
    Plan,
    Step,
    VersionState,
)
from thv_registry.migrations.tools.backup import (
    BACKUP_DIR_ENV,
    PG_DUMP_ENV,
    Backup,
    backup_label,
    backup_notice,
    default_backup_dir,
    find_pg_dump,
    pg_dump_command,
    restore_command,
    take_backup,
)

if TYPE_CHECKING:
    from conftest import TestDatabase

PASSWORD = "Pw-n0t-$hown'\\x"


def _params(db: TestDatabase, **changes: object) -> ConnectionParams:
    values: dict[str, object] = dict(
        host=db.server.host,
        port=db.server.port,
        user=db.server.user,
        dbname=db.name,
        sslmode="disable",
    )
    values.update(changes)
    return ConnectionParams(**values)  # type: ignore[arg-type]


def _server_major(db: TestDatabase) -> int:
    with db.connect() as conn:
        return conn.info.server_version // 10000


def _fill(db: TestDatabase) -> None:
    with db.connect() as conn:
        conn.execute("create table items (id int primary key, name text not null)")
        conn.execute("insert into items select g, 'item ' || g from generate_series(1, 500) g")


# ---- taking and restoring ----------------------------------------------------------------------


def test_backup_is_a_private_nonempty_file(database: TestDatabase, tmp_path: Path) -> None:
    _fill(database)
    directory = tmp_path / "new" / "backups"
    b = take_backup(_params(database), directory=directory, label="down-3-to-1")

    assert b.path.parent == directory and b.path.is_file()
    assert re.fullmatch(rf"{database.name}-\d{{8}}T\d{{6}}Z-before-down-3-to-1\.dump", b.path.name)
    assert b.size_bytes == b.path.stat().st_size > 0
    assert b.path.read_bytes()[:5] == b"PGDMP"  # the custom format's magic
    assert stat.S_IMODE(b.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert int(b.pg_dump_version.split(".")[0]) >= _server_major(database)
    assert b.duration_s >= 0
    assert str(b.path) in b.restore_command


def test_two_backups_in_one_second_get_two_files(database: TestDatabase, tmp_path: Path) -> None:
    first = take_backup(_params(database), directory=tmp_path, label="x")
    second = take_backup(_params(database), directory=tmp_path, label="x")
    assert first.path != second.path and first.path.exists() and second.path.exists()


def test_round_trip_restore_command_brings_the_rows_back(
    database: TestDatabase, tmp_path: Path
) -> None:
    _fill(database)
    b = take_backup(_params(database), directory=tmp_path, label="down-1-to-none")
    with database.connect() as conn:
        conn.execute("drop table items")  # what a down migration does
    assert "items" not in database.tables()

    argv = shlex.split(b.restore_command)
    assert Path(argv[0]).parent == b.pg_dump.parent  # the pg_restore next to the pg_dump
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr

    assert database.query("select count(*), max(name) from items") == [(500, "item 99")]


# ---- failures ------------------------------------------------------------------------------------


@pytest.fixture
def reader_without_rights(database: TestDatabase) -> Iterator[str]:
    """A role with a password that may connect but may not read the table ``items``."""
    role = f"thv_backup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database.server.conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(PASSWORD)
            )
        )
    try:
        yield role
    finally:
        with psycopg.connect(database.server.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_pg_dump_failure_is_backup_failed_and_leaves_no_file(
    database: TestDatabase, tmp_path: Path, reader_without_rights: str
) -> None:
    _fill(database)
    params = _params(database, user=reader_without_rights, password=PASSWORD)
    with pytest.raises(BackupFailed) as info:
        take_backup(params, directory=tmp_path, label="down-1-to-none")

    text = describe(info.value)  # as the CLI prints it
    assert "permission denied" in text and "items" in text
    assert "--no-backup" in text and "Nothing was reverted" in text
    assert PASSWORD not in text
    assert "--no-backup" not in str(info.value), "the library's own text names no flag"
    assert info.value.directory == str(tmp_path) and info.value.pg_dump
    assert info.value.exit_code == ExitCode.REFUSED
    assert list(tmp_path.iterdir()) == []  # the partial file is gone


def test_unknown_database_fails_before_any_file(database: TestDatabase, tmp_path: Path) -> None:
    params = _params(database, dbname=database.name + "_missing", password=PASSWORD)
    with pytest.raises(ConnectionFailed) as info:
        take_backup(params, directory=tmp_path / "b", label="down-1-to-none")
    assert "does not exist" in str(info.value) and PASSWORD not in str(info.value)
    assert not (tmp_path / "b").exists()


# ---- finding pg_dump -----------------------------------------------------------------------------


def test_find_pg_dump_picks_a_version_able_to_dump_the_server(database: TestDatabase) -> None:
    major = _server_major(database)
    path, version = find_pg_dump(major)
    assert path.is_file() and int(version.split(".")[0]) >= major
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    assert version in out


def test_find_pg_dump_prefers_the_closest_version() -> None:
    _, oldest = find_pg_dump(0)
    _, for_16 = find_pg_dump(16)  # the embedded pgserver always offers 16
    assert int(oldest.split(".")[0]) <= int(for_16.split(".")[0])
    assert for_16.startswith("16")


def test_explicit_pg_dump_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    path, version = find_pg_dump(16)
    monkeypatch.setenv(PG_DUMP_ENV, str(path))
    assert find_pg_dump(0) == (path, version)  # not the oldest one: the one named


def test_explicit_pg_dump_missing_is_refused_not_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(PG_DUMP_ENV, str(tmp_path / "no-such-pg_dump"))
    with pytest.raises(BackupUnavailable) as info:
        find_pg_dump(15)
    text = describe(info.value)
    assert f"{PG_DUMP_ENV} names {tmp_path / 'no-such-pg_dump'}" in text
    assert "no such file" in text and "--no-backup" in text
    assert "unset it to let thv-registry-api search" in text
    assert info.value.explicit == str(tmp_path / "no-such-pg_dump")
    assert info.value.server_major == 15 and "--no-backup" not in str(info.value)
    assert info.value.exit_code == ExitCode.REFUSED


def test_explicit_pg_dump_too_old_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    path, version = find_pg_dump(16)
    monkeypatch.setenv(PG_DUMP_ENV, str(path))
    with pytest.raises(BackupUnavailable, match=f"it is pg_dump {re.escape(version)}, older"):
        find_pg_dump(99)


def test_no_usable_pg_dump_says_what_was_found_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(PG_DUMP_ENV, raising=False)
    with pytest.raises(BackupUnavailable) as info:
        find_pg_dump(99)
    text = describe(info.value)
    assert info.value.explicit is None and "--no-backup" not in str(info.value)
    assert "the server is PostgreSQL 99" in text
    assert "/pginstall/bin/pg_dump (pg_dump 16." in text  # the embedded one, too old
    assert "install pg_dump 99 (e.g. apt-get install postgresql-client-99)" in text.lower()
    assert "pass --no-backup to revert without a backup" in text
    assert info.value.exit_code == ExitCode.REFUSED


# ---- pure parts ----------------------------------------------------------------------------------


def test_password_goes_to_the_environment_never_the_argv() -> None:
    params = ConnectionParams("db.example.com", 5433, "alice", "reg", "require", PASSWORD)
    argv, env = pg_dump_command(Path("/opt/pg/bin/pg_dump"), params, Path("/b/x.dump"))
    assert argv == [
        "/opt/pg/bin/pg_dump",
        "--format=custom",
        "--no-password",
        "--file",
        "/b/x.dump",
    ]
    assert not any(PASSWORD in a or "alice" in a or "db.example.com" in a for a in argv)
    assert env["PGPASSWORD"] == PASSWORD
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"]) == ("db.example.com", "5433", "alice")
    assert (env["PGDATABASE"], env["PGSSLMODE"]) == ("reg", "require")

    assert env["PGCONNECT_TIMEOUT"] == "10"  # database.connectTimeout's default

    quick = ConnectionParams("h", 1, "u", "d", "disable", connect_timeout=3)
    _, env = pg_dump_command(Path("pg_dump"), quick, Path())
    assert "PGPASSWORD" not in env  # unset: libpq may still read ~/.pgpass
    assert env["PGCONNECT_TIMEOUT"] == "3"


def test_restore_command_forms_carry_no_password() -> None:
    restore = Path("/opt/pg/bin/pg_restore")
    dump = Path("/home/a b/x.dump")
    tcp = ConnectionParams("db.example.com", 5433, "al ice", "reg/1", "require", PASSWORD)
    assert restore_command(restore, tcp, dump) == (
        "/opt/pg/bin/pg_restore --clean --if-exists --no-owner -d "
        "'postgresql://al%20ice@db.example.com:5433/reg%2F1?sslmode=require' '/home/a b/x.dump'"
    )
    v6 = ConnectionParams("::1", 5432, "u", "d", "prefer", PASSWORD)
    assert "'postgresql://u@[::1]:5432/d'" in restore_command(restore, v6, dump)
    sock = ConnectionParams("/run/postgresql", 5432, "postgres", "reg", "disable", PASSWORD)
    assert restore_command(restore, sock, dump) == (
        "/opt/pg/bin/pg_restore --clean --if-exists --no-owner -h /run/postgresql -p 5432 "
        "-U postgres -d reg '/home/a b/x.dump'"
    )
    for params in (tcp, v6, sock):
        assert PASSWORD not in restore_command(restore, params, dump)


def test_backup_notice_and_label() -> None:
    b = Backup(
        path=Path("/b/reg-20250101T000000Z-before-down-3-to-1.dump"),
        size_bytes=1_234_567,
        pg_dump=Path("/usr/lib/postgresql/16/bin/pg_dump"),
        pg_dump_version="16.2",
        duration_s=0.312,
        restore_command="pg_restore --clean --if-exists --no-owner -d reg /b/x.dump",
    )
    assert backup_notice(b) == (
        "Backup written to /b/reg-20250101T000000Z-before-down-3-to-1.dump "
        "(1.2 MB, pg_dump 16.2, 0.3 s).\n"
        "To restore it: pg_restore --clean --if-exists --no-owner -d reg /b/x.dump"
    )
    assert "(812 bytes," in backup_notice(Backup(**{**b.__dict__, "size_bytes": 812}))

    f = MigrationFile("x", Path("x"))

    def step(version: int, target: int | None) -> Step:
        return Step(Migration(version, "m", f, f), Direction.DOWN, target)

    partly = Plan(Down(2), VersionState(3, False), (step(3, 2), step(2, 1)))
    assert backup_label(partly) == "down-3-to-1"
    everything = Plan(Down(0), VersionState(1, False), (step(1, None),))
    assert backup_label(everything) == "down-1-to-none"


def test_default_backup_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(BACKUP_DIR_ENV, str(tmp_path / "mine"))
    assert default_backup_dir() == tmp_path / "mine"
    monkeypatch.delenv(BACKUP_DIR_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_backup_dir() == tmp_path / "data" / "thv-registry" / "backups"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_backup_dir() == Path.home() / ".local/share/thv-registry/backups"
