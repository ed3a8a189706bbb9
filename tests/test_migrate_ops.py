"""redo, baseline, dump-schema, the backups kept, --lock-wait 0, the schema and timeouts of the
migrations block, and --wait-for-db: as users run them (subprocess, real PostgreSQL)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from conftest import THREE_TABLES, MigrateCli, TestDatabase, write_migrations
from thv_registry.errors import ExitCode
from thv_registry.migrations.tools.backup import prune_backups
from thv_registry.migrations.tools.schema_dump import clean_dump

Make = Callable[[dict[str, str]], MigrateCli]


def state(db: TestDatabase, schema: str = "public") -> list[tuple[object, ...]]:
    return db.query(f"SELECT version, dirty FROM {schema}.schema_migrations")


def history(db: TestDatabase, schema: str = "public") -> list[tuple[object, ...]]:
    return db.query(
        f"SELECT version, direction, resulting_version FROM {schema}.schema_migrations_history "
        "ORDER BY id"
    )


def run_sql(db: TestDatabase, statements: str) -> None:
    with db.connect() as conn:
        conn.execute(statements)


def with_migrations_block(config: Path, **block: object) -> Path:
    data = yaml.safe_load(config.read_text())
    data["migrations"] = block
    config.write_text(yaml.safe_dump(data))
    return config


# -- redo ------------------------------------------------------------------------------------------


def test_redo_reverts_and_reapplies_the_edited_last_migration_with_one_backup(
    migrate_cli: Make, database: TestDatabase, tmp_path: Path
) -> None:
    cli = migrate_cli(THREE_TABLES)
    assert cli("up", "--yes").returncode == 0
    # the author edits the last migration: redo runs the new file (its checksum is accepted)
    (cli.migrations / "000003_c.up.sql").write_text("CREATE TABLE c (id int, note text);\n")

    dry = cli("redo", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Migrations to revert and apply again (2):" in dry.stdout
    assert "A backup would be taken first (pg_dump -Fc) to " in dry.stdout
    assert "-before-redo-3.dump" in dry.stdout
    assert history(database)[-1][1] == "up"  # a dry run changed nothing

    said_y = cli("redo", input="y\n")  # a redo may lose data: only 'yes' confirms it
    assert said_y.returncode == 0
    assert "Type 'yes' to redo" in said_y.stderr
    assert "Only 'yes' confirms a redo" in said_y.stderr
    assert "note" not in str(database.query("SELECT attname FROM pg_attribute "
                                            "WHERE attrelid = 'c'::regclass"))  # fmt: skip

    done = cli("redo", input="yes\n")
    assert done.returncode == 0, done.stderr
    assert "Backup written to " in done.stdout
    assert "Reverted 000003 c" in done.stdout and "Applied 000003 c" in done.stdout
    backups = list((tmp_path / "backups").iterdir())
    assert len(backups) == 1 and backups[0].name.endswith("-before-redo-3.dump")
    assert state(database) == [(3, False)]
    assert history(database)[-2:] == [(3, "down", 2), (3, "up", 3)]
    columns = database.query("SELECT attname FROM pg_attribute WHERE attrelid = 'c'::regclass")
    assert ("note",) in columns
    # the new checksum was recorded: up has nothing to refuse
    assert cli("up", "--yes").returncode == 0


def test_redo_runs_under_one_hold_of_the_lock_and_refuses_with_nothing_applied(
    migrate_cli: Make, database: TestDatabase
) -> None:
    cli = migrate_cli(THREE_TABLES)
    empty = cli("redo", "--yes")
    assert empty.returncode == ExitCode.REFUSED
    assert "nothing to revert" in empty.stderr.lower()
    assert cli("up", "--yes", "-n", "1").returncode == 0
    # both steps of a redo in one JSON run: one plan, one done, the lock taken once
    done = cli("redo", "--yes", "--no-backup", "--output", "json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    steps = [(e["direction"], e["version"]) for e in events if e["event"] == "step"]
    assert steps == [("down", 1), ("up", 1)]
    assert events[-1]["event"] == "done" and events[-1]["version"] == 1
    assert state(database) == [(1, False)]


def test_the_library_verbs_return_results_and_raise_errors_with_fields(
    database: TestDatabase, tmp_path: Path
) -> None:
    from thv_registry.config import ConnectionParams
    from thv_registry.errors import NotEnoughApplied, UnknownVersion, VersionAlreadySet
    from thv_registry.migrations import Migrator, Source, Up

    s = database.server
    params = ConnectionParams(s.host, s.port, s.user, database.name, "disable")
    m = Migrator(params, Source.from_directory(write_migrations(tmp_path / "m", THREE_TABLES)))
    with pytest.raises(NotEnoughApplied) as none:
        m.redo()
    assert (none.value.requested, none.value.applied) == (1, 0)
    with pytest.raises(UnknownVersion) as unknown:
        m.baseline(9)
    assert (unknown.value.version, unknown.value.purpose) == (9, "baseline")
    run_sql(database, "CREATE TABLE a (id int)")
    baselined = m.baseline(1)
    assert baselined.version == 1 and baselined.previous.version is None
    with pytest.raises(VersionAlreadySet) as already:
        m.baseline(2)
    assert (already.value.version, already.value.dirty, already.value.requested) == (1, False, 2)
    m.apply(Up())
    redone = m.redo()
    steps = [(s.direction.value, s.migration.version) for s in redone.applied]
    assert steps == [("down", 3), ("up", 3)] and redone.final.version == 3


# -- baseline --------------------------------------------------------------------------------------


def test_baseline_adopts_an_existing_schema_and_up_continues_after_it(
    migrate_cli: Make, database: TestDatabase
) -> None:
    cli = migrate_cli(THREE_TABLES)
    run_sql(database, "CREATE TABLE a (id int); CREATE TABLE b (id int)")  # made by hand
    unknown = cli("baseline", "7", "--yes")
    assert unknown.returncode == ExitCode.REFUSED
    assert (
        "has no migration 7" in unknown.stderr and "Baseline one of the versions" in unknown.stderr
    )

    shown = cli("baseline", "2", input="n\n")
    assert shown.returncode == 0
    assert "Tables in schema public (2): a, b" in shown.stdout
    assert "Baseline records version 2" in shown.stdout
    assert "schema_migrations" not in database.tables()  # cancelled: nothing written

    done = cli("baseline", "2", input="y\n")
    assert done.returncode == 0, done.stderr
    assert "Database is now at version 2 (b), clean, recorded as a baseline" in done.stdout
    assert state(database) == [(2, False)]
    assert history(database) == [(2, "baseline", 2)]

    up = cli("up", "--yes")
    assert up.returncode == 0, up.stderr
    assert "Applied 000003 c" in up.stdout and "000001" not in up.stdout
    assert state(database) == [(3, False)]

    again = cli("baseline", "1", "--yes")
    assert again.returncode == ExitCode.REFUSED
    assert "already has a version (version 3" in again.stderr
    assert "force 1" in again.stderr
    assert state(database) == [(3, False)]


def test_baseline_after_everything_was_reverted_records_a_row(
    migrate_cli: Make, database: TestDatabase
) -> None:
    cli = migrate_cli(THREE_TABLES)
    assert cli("up", "--yes", "-n", "1").returncode == 0
    assert cli("down", "-n", "0", "--yes", "--no-backup").returncode == 0
    run_sql(database, "CREATE TABLE a (id int)")
    done = cli("baseline", "1", "--yes", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["baselined"] is True
    assert history(database)[-1] == (1, "baseline", 1)
    status = cli("status")
    assert status.returncode == ExitCode.PENDING  # 2 and 3 pending, 1 applied by the baseline


# -- dump-schema -----------------------------------------------------------------------------------


def test_dump_schema_prints_the_schema_without_noise_and_writes_after_up_and_down(
    migrate_cli: Make, database: TestDatabase, config_file: Path, tmp_path: Path
) -> None:
    files = dict(THREE_TABLES)
    files["000002_b.up.sql"] = (
        "CREATE TABLE b (id int PRIMARY KEY, a_note text);\nCOMMENT ON TABLE b IS 'bee';\n"
    )
    cli = migrate_cli(files)
    assert cli("up", "--yes", "-n", "2").returncode == 0
    out = subprocess.run(
        [sys.executable, "-m", "thv_registry", "migrate", "dump-schema", "--config",
         str(config_file)],
        env=cli.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("-- Schema public at migration version 2:")
    assert "CREATE TABLE public.a (" in text and "CREATE TABLE public.b (" in text
    assert "COMMENT ON TABLE public.b IS 'bee';" in text
    assert "ADD CONSTRAINT b_pkey PRIMARY KEY (id);" in text
    for noise in ("SET ", "set_config", "Dumped from", "Dumped by", "\\restrict", "OWNER TO"):
        assert noise not in text, noise
    assert "schema_migrations" not in text  # the state tables are not the migrations' schema
    assert "\n\n\n" not in text

    # migrations.dumpSchema: written after a run that changed something (relative: beside the
    # config), identical to the command's output, and rewritten after a down
    with_migrations_block(config_file, dumpSchema="db/schema.sql")
    written = config_file.parent / "db" / "schema.sql"
    up = cli("up", "--yes")
    assert up.returncode == 0, up.stderr
    assert f"Schema written to {written}" in up.stderr
    assert "CREATE TABLE public.c (" in written.read_text()
    assert written.read_text().startswith("-- Schema public at migration version 3:")
    down = cli("down", "-n", "1", "--yes", "--no-backup")
    assert down.returncode == 0, down.stderr
    assert "CREATE TABLE public.c (" not in written.read_text()
    assert written.read_text() == text  # the same schema as at version 2: a stable file

    to_file = tmp_path / "out" / "schema.sql"
    saved = cli("dump-schema", "--output", str(to_file))
    assert saved.returncode == 0, saved.stderr
    assert f"written to {to_file}" in saved.stderr and to_file.read_text() == text


def test_clean_dump_drops_what_changes_between_runs() -> None:
    raw = (
        "--\n-- PostgreSQL database dump\n--\n\n\\restrict AbC123\n\n"
        "-- Dumped from database version 17.6\n-- Dumped by pg_dump version 17.6\n\n"
        "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n"
        "\n\n\n--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\n"
        "CREATE TABLE public.t (\n    id integer\n);\n\n\n\\unrestrict AbC123\n"
        "--\n-- PostgreSQL database dump complete\n--\n"
    )
    assert clean_dump(raw) == (
        "--\n--\n\n--\n-- Name: t; Type: TABLE; Schema: public; Owner: -\n--\n\n"
        "CREATE TABLE public.t (\n    id integer\n);\n\n--\n--\n"
    )


# -- backups ---------------------------------------------------------------------------------------


def test_down_dry_run_says_where_the_backup_would_go(
    migrate_cli: Make, database: TestDatabase, tmp_path: Path
) -> None:
    cli = migrate_cli(THREE_TABLES)
    assert cli("up", "--yes").returncode == 0
    dry = cli("down", "-n", "2", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    where = tmp_path / "backups" / f"{database.name}-YYYYMMDDTHHMMSSZ-before-down-3-to-1.dump"
    assert f"A backup would be taken first (pg_dump -Fc) to {where}" in dry.stdout
    assert "the newest 10 backups" in dry.stdout
    assert (
        "No backup would be taken (--no-backup)."
        in cli("down", "-n", "1", "--dry-run", "--no-backup").stdout
    )
    as_json = cli("down", "-n", "1", "--dry-run", "--output", "json")
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    planned = [e for e in events if e["event"] == "backup_planned"]
    assert planned == [
        {
            "event": "backup_planned",
            "taken": True,
            "directory": str(tmp_path / "backups"),
            "file": str(where).replace("down-3-to-1", "down-3-to-2"),
            "keep": 10,
        }
    ]
    assert not (tmp_path / "backups").exists()  # nothing was written
    assert state(database) == [(3, False)]


def test_keep_backups_removes_the_oldest_of_that_database_only(
    migrate_cli: Make, database: TestDatabase, config_file: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    db = database.name
    old = [backups / f"{db}-2020010{i}T000000Z-before-down-3-to-2.dump" for i in range(1, 4)]
    other_db = backups / f"{db}_other-20200101T000000Z-before-down-1-to-none.dump"
    not_ours = backups / f"{db}-notes.txt"
    for path in (*old, other_db, not_ours):
        path.write_text("x")
    with_migrations_block(config_file, keepBackups=2)
    cli = migrate_cli(THREE_TABLES)
    assert cli("up", "--yes").returncode == 0
    done = cli("down", "-n", "1", "--yes")
    assert done.returncode == 0, done.stderr
    assert "Removed 2 older backup(s)" in done.stderr and "keepBackups" in done.stderr
    left = sorted(p.name for p in backups.iterdir())
    assert old[0].name not in left and old[1].name not in left and old[2].name in left
    assert other_db.name in left and not_ours.name in left
    assert len([n for n in left if n.startswith(f"{db}-2") and n.endswith(".dump")]) == 2
    # 0 keeps every backup
    assert prune_backups(backups, db, keep=0) == []


# -- lock wait 0, migrations.schema, statementTimeoutMs -----------------------------------------


def test_lock_wait_zero_tries_once(
    migrate_cli: Make, database: TestDatabase, cli_env: dict[str, str]
) -> None:
    from thv_registry.migrations.engine.lock import lock_key

    cli = migrate_cli(THREE_TABLES)
    key = lock_key("public", "schema_migrations", database.name)
    with database.connect(application_name="other migrator") as other:
        other.execute("SELECT pg_advisory_lock(%s)", (key,))
        started = time.monotonic()
        busy = cli("up", "--yes", "--lock-wait", "0")
        elapsed = time.monotonic() - started
    assert busy.returncode == ExitCode.LOCK_TIMEOUT, busy.stderr
    assert "did not release it at once (no wait asked)" in busy.stderr
    assert "other migrator" in busy.stderr
    assert elapsed < 10  # one try: no 15 s default wait
    assert cli("up", "--yes", "--lock-wait", "0").returncode == 0  # free: it takes it


def test_migrations_schema_keeps_objects_and_state_there(
    migrate_cli: Make, database: TestDatabase, config_file: Path
) -> None:
    with_migrations_block(config_file, schema="registry")
    cli = migrate_cli(THREE_TABLES)
    missing = cli("up", "--yes")
    assert missing.returncode == ExitCode.REFUSED, missing.stderr
    assert "The schema 'registry' that the migrations are configured to use does not exist" in (
        missing.stderr
    )
    assert "CREATE SCHEMA registry AUTHORIZATION" in missing.stderr

    run_sql(database, "CREATE SCHEMA registry")
    done = cli("up", "--yes")
    assert done.returncode == 0, done.stderr
    assert {"a", "b", "c", "schema_migrations", "schema_migrations_history"} <= database.tables(
        "registry"
    )
    assert database.tables("public") == set()
    assert state(database, "registry") == [(3, False)]
    assert cli("version").stdout.strip() == "3"
    # the lock key is golang-migrate's for search_path=registry: the schema is part of it
    from thv_registry.migrations.engine.lock import lock_key

    key = lock_key("registry", "schema_migrations", database.name)
    with database.connect(application_name="golang-migrate") as other:
        other.execute("SELECT pg_advisory_lock(%s)", (key,))
        busy = cli("down", "-n", "1", "--yes", "--no-backup", "--lock-wait", "0")
    assert busy.returncode == ExitCode.LOCK_TIMEOUT, busy.stderr
    dumped = cli("dump-schema")
    assert dumped.returncode == 0 and "CREATE TABLE registry.c (" in dumped.stdout
    verified = cli("verify")  # its scratch database gets the schema too
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_statement_timeout_bounds_each_statement_of_a_step(
    migrate_cli: Make, database: TestDatabase, config_file: Path
) -> None:
    slow = {
        "000001_slow.up.sql": "CREATE TABLE s (id int);\nSELECT pg_sleep(3);\n",
        "000001_slow.down.sql": "DROP TABLE s;\n",
        "000002_slow_index.up.sql": "SELECT pg_sleep(3);\n"
        "CREATE INDEX CONCURRENTLY si ON s (id);\n",
        "000002_slow_index.down.sql": "DROP INDEX si;\n",
    }
    with_migrations_block(config_file, statementTimeoutMs=300)
    cli = migrate_cli(slow)
    failed = cli("up", "--yes")
    assert failed.returncode == ExitCode.MIGRATION_FAILED, failed.stderr
    assert "canceling statement due to statement timeout" in failed.stderr
    assert "000001_slow.up.sql:2" in failed.stderr
    assert "schema_migrations" not in database.tables() or state(database) == []

    with_migrations_block(config_file, statementTimeoutMs=0)  # default: not set
    assert cli("up", "--yes", "-n", "1").returncode == 0
    with_migrations_block(config_file, statementTimeoutMs=300)
    dirty = cli("up", "--yes")  # outside a transaction too, and the session is left as it was
    assert dirty.returncode == ExitCode.MIGRATION_FAILED, dirty.stderr
    assert "statement timeout" in dirty.stderr and "000002_slow_index.up.sql:1" in dirty.stderr
    assert state(database) == [(2, True)]


# -- connectTimeout and --wait-for-db --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_wait_for_db_retries_until_the_server_answers(
    database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A TCP relay that starts listening after 2 s stands in for a database container starting."""
    port = _free_port()
    config = database.write_config(tmp_path / "c.yaml", host="127.0.0.1", port=port)
    server = database.server
    target: str | tuple[str, int] = (server.host, server.port)
    if server.host.startswith("/"):  # the embedded server: its Unix socket
        target = os.path.join(server.host, f".s.PGSQL.{server.port}")
    migrations = write_migrations(tmp_path / "m", THREE_TABLES)
    argv = [sys.executable, "-m", "thv_registry", "migrate", "up", "--yes", "--config",
            str(config), "--migrations-dir", str(migrations)]  # fmt: skip

    quick = subprocess.run(argv, env=cli_env, capture_output=True, text=True, timeout=60)
    assert quick.returncode == ExitCode.CONNECTION
    assert "nothing listens on 127.0.0.1" in quick.stderr and "--wait-for-db" in quick.stderr

    relay = _Relay(port, target, delay_s=2.0)
    relay.start()
    try:
        started = time.monotonic()
        done = subprocess.run(
            [*argv, "--wait-for-db", "30"], env=cli_env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        waited = time.monotonic() - started
    finally:
        relay.stop()
    assert done.returncode == 0, done.stderr
    assert f"Waiting up to 30 s for PostgreSQL at {database.server.user}@127.0.0.1:{port}" in (
        done.stderr
    )
    assert "connection refused" in done.stderr
    assert waited >= 1.5
    assert state(database) == [(3, False)]

    bounded = subprocess.run(
        [*argv, "--wait-for-db", "1.5"], env=cli_env, capture_output=True, text=True, timeout=60
    )
    assert bounded.returncode == ExitCode.CONNECTION
    assert "gave up after retrying for 1.5 s" in bounded.stderr
    assert "or wait longer with --wait-for-db SECONDS" in bounded.stderr


def test_a_server_starting_up_is_worth_waiting_for_and_a_wrong_password_is_not() -> None:
    from thv_registry.config import ConnectionParams
    from thv_registry.db.connect import WAITABLE, _explain

    params = ConnectionParams("db", 5432, "app", "registry", "disable")
    starting = _explain(params, "FATAL: the database system is starting up")
    assert starting[2] == "starting" and starting[2] in WAITABLE
    assert "is starting up" in starting[0]
    refused = _explain(params, 'FATAL: password authentication failed for user "app"')
    assert refused[2] == "auth_failed" and refused[2] not in WAITABLE


def test_connect_timeout_bounds_a_silent_server(
    database: TestDatabase, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A listener that never answers: libpq gives up after database.connectTimeout seconds."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        config = database.write_config(
            tmp_path / "c.yaml", host="127.0.0.1", port=port, connectTimeout=2
        )
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "thv_registry", "migrate", "version", "--config", str(config)],
            env=cli_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert done.returncode == ExitCode.CONNECTION, done.stderr
    assert "timeout expired" in done.stderr or "timed out" in done.stderr
    assert elapsed < 8  # 2 s, not libpq's default of forever or our former 10 s


class _Relay(threading.Thread):
    """Listens on ``port`` after ``delay_s`` and pipes each connection to ``target``."""

    def __init__(self, port: int, target: str | tuple[str, int], *, delay_s: float) -> None:
        super().__init__(daemon=True)
        self.port, self.target, self.delay_s = port, target, delay_s
        self.stopped = threading.Event()
        self.server: socket.socket | None = None

    def run(self) -> None:
        if self.stopped.wait(self.delay_s):
            return
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.server.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                client, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            if isinstance(self.target, str):
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(self.target)
            else:
                upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()
        self.join(5)
        if self.server is not None:
            self.server.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
