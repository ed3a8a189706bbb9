"""``migrate verify``: up, down, up on a scratch database, against a real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import ServerInfo, TestDatabase
from thv_registry.cli.hints import describe
from thv_registry.config import ConnectionParams
from thv_registry.errors import PermissionDenied
from thv_registry.migrations.engine.source import Source, load_source
from thv_registry.migrations.tools.verify import VerifyReport, new_scratch_name, verify

INIT_UP = """
CREATE TYPE source_type AS ENUM ('git', 'api');
CREATE TABLE servers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE CHECK (btrim(name) <> ''),
    kind source_type NOT NULL,
    tags text,
    note text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE packages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    server_id uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    position int NOT NULL CHECK (position >= 0),
    meta jsonb,
    UNIQUE (server_id, position)
);
"""
INIT = ("init", INIT_UP, "DROP TABLE packages;\nDROP TABLE servers;\nDROP TYPE source_type;\n")


def write_set(root: Path, *migrations: tuple[str, str, str | None]) -> Path:
    """Write NNNNNN_name.up.sql / .down.sql files (down None: no down file)."""
    root.mkdir(parents=True, exist_ok=True)
    for version, (name, up, down) in enumerate(migrations, 1):
        (root / f"{version:06d}_{name}.up.sql").write_text(up)
        if down is not None:
            (root / f"{version:06d}_{name}.down.sql").write_text(down)
    return root


def params_for(database: TestDatabase, user: str | None = None) -> ConnectionParams:
    server = database.server
    return ConnectionParams(server.host, server.port, user or server.user, database.name, "disable")


def run_verify(database: TestDatabase, root: Path, **kwargs: object) -> VerifyReport:
    return verify(params_for(database), Source.from_directory(root), **kwargs)  # type: ignore[arg-type]


def findings(report: VerifyReport) -> list[str]:
    return [f.message for m in report.migrations for f in m.findings]


def scratch_exists(server: ServerInfo, name: str) -> bool:
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        return bool(row.fetchone()[0])  # type: ignore[index]


def test_the_projects_own_migrations_pass(database: TestDatabase) -> None:
    name = new_scratch_name()
    report = verify(params_for(database), load_source(None), scratch_name=name)
    assert findings(report) == []
    assert report.ok and report.with_data and report.dropped
    assert all(m.rows for m in report.migrations), "every migration ran its down with rows"
    assert not scratch_exists(database.server, name)
    assert database.tables() == set(), "the configured database itself is left alone"


def test_a_down_that_keeps_an_index_is_reported_by_name(
    database: TestDatabase, tmp_path: Path
) -> None:
    root = write_set(
        tmp_path / "m",
        INIT,
        # IF NOT EXISTS lets the re-up pass, so only the down comparison sees it
        (
            "name_idx",
            "CREATE INDEX IF NOT EXISTS servers_name_idx ON servers (name);",
            "SELECT 1;",
        ),
    )
    report = run_verify(database, root)
    assert [m.status for m in report.migrations] == ["ok", "failed"]
    assert findings(report) == ["down of 000002 leaves index servers_name_idx on servers"]


def test_forgotten_enum_value_column_and_type_change_are_reported_precisely(
    database: TestDatabase, tmp_path: Path
) -> None:
    root = write_set(
        tmp_path / "m",
        INIT,
        ("kinds", "ALTER TYPE source_type ADD VALUE 'file';", "-- enum values stay\n"),
        ("claims", "ALTER TABLE servers ADD COLUMN claims jsonb;", "SELECT 1;"),
        (
            "tags_array",
            "ALTER TABLE servers ALTER COLUMN tags TYPE text[] USING ARRAY[tags];",
            "SELECT 1;",
        ),
    )
    report = run_verify(database, root, with_data=False)
    by_version = {m.migration.version: [f.message for f in m.findings] for m in report.migrations}
    assert by_version[2][0] == "down of 000002 leaves enum value 'file' of type source_type"
    assert by_version[3][0] == "down of 000003 leaves column servers.claims (jsonb)"
    assert by_version[4] == [
        "down of 000004 leaves column servers.tags type changed from text to text[]"
    ]
    # The re-ups of 000002 and 000003 fail on what their downs left; the chain is rebuilt on a
    # fresh scratch database and the next migrations are still verified.
    assert any(m.startswith("re-applying 000003 after its down fails:") for m in by_version[3])
    assert [m.status for m in report.migrations] == ["ok", "failed", "failed", "failed"]


DROP_NOT_NULL = (
    "note_optional",
    "ALTER TABLE servers ALTER COLUMN note DROP NOT NULL;",
    "ALTER TABLE servers ALTER COLUMN note SET NOT NULL;",
)


def test_a_down_that_fails_only_with_rows_is_caught_with_data(
    database: TestDatabase, tmp_path: Path
) -> None:
    root = write_set(tmp_path / "m", INIT, DROP_NOT_NULL)
    without = run_verify(database, root, with_data=False)
    assert without.ok, findings(without)
    with_rows = run_verify(database, root)
    [message] = findings(with_rows)
    assert message.startswith('down of 000002 fails with rows present: ERROR: column "note"')
    assert "contains null values" in message and "(SQLSTATE 23502)" in message
    assert "000002_note_optional.down.sql:1:1" in message
    assert with_rows.migrations[1].rows == (("packages", 2), ("servers", 2))


def test_an_up_that_fails_on_generated_rows_is_a_note(
    database: TestDatabase, tmp_path: Path
) -> None:
    root = write_set(
        tmp_path / "m",
        INIT,
        (
            "tags_interval",
            "ALTER TABLE servers ALTER COLUMN tags TYPE interval USING tags::interval;",
            "ALTER TABLE servers ALTER COLUMN tags TYPE text;",
        ),
    )
    report = run_verify(database, root)
    assert report.ok, findings(report)
    [note] = report.migrations[1].notes
    assert note.startswith("up of 000002 fails on the generated rows (ERROR: invalid input")


def test_missing_down_file_is_a_warning_and_non_transactional_steps_work(
    database: TestDatabase, tmp_path: Path
) -> None:
    root = write_set(
        tmp_path / "m",
        INIT,
        (
            "concurrent_idx",
            "CREATE INDEX CONCURRENTLY servers_created_idx ON servers (created_at);",
            "DROP INDEX CONCURRENTLY servers_created_idx;",
        ),
        ("seed", "INSERT INTO servers (name, kind, note) VALUES ('x', 'git', 'n');", None),
    )
    report = run_verify(database, root)
    assert [m.status for m in report.migrations] == ["ok", "ok", "warning"]
    assert findings(report) == ["000003 has no down file, so it cannot be reverted or verified"]
    assert not report.ok


def test_the_scratch_database_is_dropped_on_failure(database: TestDatabase, tmp_path: Path) -> None:
    root = write_set(tmp_path / "m", INIT, DROP_NOT_NULL)
    name = new_scratch_name()

    def explode(_: object) -> None:
        assert scratch_exists(database.server, name)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_verify(database, root, scratch_name=name, on_migration=explode)
    assert not scratch_exists(database.server, name)


def test_no_createdb_privilege_is_refused_and_nothing_is_left(
    database: TestDatabase, tmp_path: Path
) -> None:
    if database.server.kind != "embedded":
        pytest.skip("needs a server that trusts a new role without a password")
    role = f"thv_nocreatedb_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database.server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB").format(sql.Identifier(role)))
    name = new_scratch_name()
    try:
        with pytest.raises(PermissionDenied) as caught:
            verify(
                params_for(database, role),
                Source.from_directory(write_set(tmp_path / "m", INIT)),
                scratch_name=name,
            )
        assert "CREATEDB" in str(caught.value) and role in str(caught.value)
        assert caught.value.needed_for == "scratch_database" and caught.value.user == role
        assert "--config" not in str(caught.value)  # the library names no flag; the CLI does:
        assert "(or without --config, on the embedded PostgreSQL)" in describe(caught.value)
        assert not scratch_exists(database.server, name)
    finally:
        with psycopg.connect(database.server.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_scratch_database_that_cannot_be_dropped_is_reported(
    database: TestDatabase, tmp_path: Path
) -> None:
    """Issue 9, bug 5.4: ``VerifyReport.dropped`` was always True."""
    if database.server.kind != "embedded":
        pytest.skip("needs a server that trusts a new role without a password")
    role = f"thv_createdb_{uuid.uuid4().hex[:8]}"
    admin = database.server.conninfo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role)))
    name = new_scratch_name()

    def take_it_away(_: object) -> None:  # the owner changes: the role may no longer drop it
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(name), sql.Identifier(database.server.user)
                )
            )

    try:
        report = verify(
            params_for(database, role),
            Source.from_directory(write_set(tmp_path / "m", INIT)),
            scratch_name=name,
            on_migration=take_it_away,
        )
        assert report.ok and not report.dropped
        assert report.drop_error and "must be owner" in report.drop_error
        assert scratch_exists(database.server, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def cli(
    config: Path, root: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "thv_registry", "migrate", "verify", "--config", str(config),
         "--migrations-dir", str(root), *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_cli_passes_and_fails_with_exit_codes(
    database: TestDatabase, config_file: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    good = write_set(tmp_path / "good", INIT, DROP_NOT_NULL)
    ok = cli(config_file, good, cli_env, "--no-data")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert lines[0].startswith("Verifying 2 migrations on a scratch database thv_verify_")
    assert lines[0].endswith("without data (--no-data)")
    assert " ".join(lines[1].split()) == "000001 init ok (up, down, up: schema identical)"
    assert lines[-1].endswith("All 2 migrations passed verification.")

    bad = write_set(tmp_path / "bad", INIT, DROP_NOT_NULL)
    failed = cli(config_file, bad, cli_env)
    assert failed.returncode == 11, failed.stderr
    assert "000002 note_optional  FAILED: down of 000002 fails with rows present" in failed.stdout
    assert "1 of 2 migrations failed verification." in failed.stdout

    as_json = cli(config_file, bad, cli_env, "--output", "json")
    assert as_json.returncode == 11
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False and doc["dropped"] is True
    assert [m["status"] for m in doc["migrations"]] == ["ok", "failed"]
    assert doc["migrations"][0]["rows"] == {"packages": 2, "servers": 2}


def test_an_up_that_fails_stops_the_chain(database: TestDatabase, tmp_path: Path) -> None:
    root = write_set(
        tmp_path / "m",
        INIT,
        ("broken", "ALTER TABLE no_such_table ADD COLUMN x int;", "SELECT 1;"),
        ("later", "SELECT 1;", "SELECT 1;"),
    )
    report = run_verify(database, root)
    assert [m.status for m in report.migrations] == ["ok", "failed", "not verified"]
    [message] = findings(report)
    assert message.startswith('up of 000002 fails: ERROR: relation "no_such_table" does not exist')
    assert report.migrations[2].notes[0].startswith("not run: the up of 000002 failed")
