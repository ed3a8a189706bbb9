"""The embedded migration set after 000001_init, through the engine, against a real PostgreSQL.

Each migration is applied, filled with rows that use what it added, reverted (rows present) and
applied again, one version at a time, as `migrate verify` does: every down must restore the
catalog snapshot exactly, and every up must produce the same schema the second time. The data
patterns are checked by their results: the backfills, the USING conversion both ways, the enum
value that is added and removed again, and the index built outside a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import TestDatabase, unindexed_foreign_keys
from test_init_migration import insert_sample
from thv_registry.config import ConnectionParams
from thv_registry.errors import MigrationFailed
from thv_registry.migrations import Down, Migrator, Source, Up
from thv_registry.migrations.engine import sqlfile
from thv_registry.migrations.tools.snapshot import Snapshot, diff, take

Conn = psycopg.Connection[Any]

EXPECTED = [
    (1, "init"),
    (2, "claims"),
    (3, "sync_schedule_interval"),
    (4, "latest_entry_version"),
    (5, "mcp_server_icons"),
    (6, "skills"),
    (7, "sync_counters"),
    (8, "registry_entry_claims_idx"),
    (9, "sync_writer"),
    (10, "sync_leases"),
    (11, "data_versions"),
]
SOURCE = Source.embedded()
LATEST = SOURCE.migrations[-1].version
SKILL_NAME = "io.github.stacklok/pdf-processor"


def migrator(database: TestDatabase) -> Migrator:
    server = database.server
    params = ConnectionParams(server.host, server.port, server.user, database.name, "disable")
    return Migrator(params, SOURCE)


@pytest.fixture
def conn(database: TestDatabase) -> Iterator[Conn]:
    with database.connect() as connection:
        yield connection


def one(conn: Conn, query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0] if len(row) == 1 else row


def enum_labels(conn: Conn, name: str) -> list[str]:
    rows = conn.execute(
        "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
        " WHERE t.typname = %s AND t.typnamespace = 'public'::regnamespace"
        " ORDER BY e.enumsortorder",
        (name,),
    ).fetchall()
    return [r[0] for r in rows]


def assert_same(before: Snapshot, after: Snapshot, what: str) -> None:
    differences = [str(d) for d in diff(before, after)]
    assert differences == [], f"{what}: {differences}"


# -- rows for each version: idempotent, so they run again after a down and up ----------------------


def fill_1(conn: Conn) -> None:
    """The 000001 sample, an older and a DELETED newer version of its server, a second source."""
    if one(conn, "SELECT count(*) FROM source") == 0:
        insert_sample(conn)
    entry = one(conn, "SELECT id FROM registry_entry WHERE entry_type = 'MCP'")
    conn.execute(
        """INSERT INTO entry_version (entry_id, version, status, published_at)
           VALUES (%s, '0.9.0', 'ACTIVE', now() - interval '2 days'),
                  (%s, '2.0.0-rc1', 'DELETED', now() + interval '1 day')
           ON CONFLICT DO NOTHING""",
        (entry, entry),
    )
    conn.execute(  # text before 000003, an interval after it: the literal reads as either
        "INSERT INTO source (name, source_type, sync_schedule) VALUES ('hourly', 'api', '1h')"
        " ON CONFLICT (name) DO NOTHING"
    )


def fill_2(conn: Conn) -> None:
    conn.execute("""UPDATE source SET claims = '{"org": "stacklok"}'""")
    conn.execute("""UPDATE registry SET claims = '{"org": "stacklok"}'""")
    conn.execute("""UPDATE registry_entry SET claims = '{"org": "stacklok", "team": "mcp"}'""")


def fill_5(conn: Conn) -> None:
    conn.execute(
        """INSERT INTO mcp_server_icon (server_id, position, source_uri, mime_type, sizes, theme)
           SELECT version_id, 0, 'https://example.com/icon.png', 'image/png', '{48x48}', 'DARK'
             FROM mcp_server
           ON CONFLICT DO NOTHING"""
    )


def fill_6(conn: Conn) -> None:
    """A SKILL entry (usable now that 000006 has committed) with one OCI and one git package."""
    if one(conn, "SELECT count(*) FROM registry_entry WHERE entry_type = 'SKILL'"):
        return
    with conn.transaction():
        source = one(conn, "SELECT id FROM source WHERE name = 'upstream-file'")
        entry = one(
            conn,
            "INSERT INTO registry_entry (source_id, entry_type, name)"
            " VALUES (%s, 'SKILL', %s) RETURNING id",
            source,
            SKILL_NAME,
        )
        version = one(
            conn,
            "INSERT INTO entry_version (entry_id, version, description)"
            " VALUES (%s, '1.2.0', 'Fill in PDF forms') RETURNING id",
            entry,
        )
        conn.execute(
            """INSERT INTO skill (version_id, namespace, license, allowed_tools, repository,
                                  metadata)
               VALUES (%s, 'io.github.stacklok', 'Apache-2.0', '{Read,Bash}', %s, %s)""",
            (
                version,
                Jsonb({"url": "https://github.com/stacklok/skills", "source": "github"}),
                Jsonb({"category": "documents"}),
            ),
        )
        conn.execute(
            "INSERT INTO skill_oci_package (skill_id, position, identifier, digest)"
            " VALUES (%s, 0, 'ghcr.io/stacklok/skills/pdf-processor:1.2.0', %s)",
            (version, "sha256:" + "0f" * 32),
        )
        conn.execute(
            "INSERT INTO skill_git_package (skill_id, position, url, ref, commit_sha, subfolder)"
            " VALUES (%s, 0, 'https://github.com/stacklok/skills.git', 'v1.2.0', %s, 'pdf')",
            (version, "a1" * 20),
        )
        conn.execute(
            "INSERT INTO latest_entry_version (entry_id, version) VALUES (%s, '1.2.0')", (entry,)
        )


def fill_10(conn: Conn) -> None:
    """A status row without a phase ('hourly', never attempted), a lease, an attempt and a
    replica heartbeat."""
    if one(conn, "SELECT to_regclass('sync_replica') IS NULL"):
        return  # filled before 000010 ran
    with conn.transaction():
        conn.execute(
            "INSERT INTO registry_sync (source_id) SELECT id FROM source WHERE name = 'hourly'"
            " ON CONFLICT (source_id) DO NOTHING"
        )
        conn.execute(
            "UPDATE registry_sync SET lease_holder = 'host:1:abc', lease_expires_at = now(),"
            " attempts_total = 3 WHERE sync_status IS NOT NULL"
        )
        conn.execute(
            "INSERT INTO sync_attempt (source_id, replica, started_at, result)"
            " SELECT source_id, 'host:1:abc', now(), 'synced' FROM registry_sync"
            " WHERE sync_status IS NOT NULL"
        )
        conn.execute(
            "INSERT INTO sync_replica (replica, config_fingerprint, sources, expires_at)"
            " VALUES ('host:1:abc', repeat('a', 64), '{upstream-file}', now())"
            " ON CONFLICT (replica) DO NOTHING"
        )


FILLS: dict[int, Callable[[Conn], None]] = {
    1: fill_1, 2: fill_2, 5: fill_5, 6: fill_6, 10: fill_10,
}  # fmt: skip


def check_up(conn: Conn, version: int) -> None:
    """What the up of ``version`` did to the rows that were there before it."""
    if version == 3:
        rows = conn.execute(
            "SELECT name, sync_schedule FROM source WHERE sync_schedule IS NOT NULL ORDER BY name"
        ).fetchall()
        assert [(n, s.total_seconds()) for n, s in rows] == [
            ("hourly", 3600.0),
            ("upstream-file", 1800.0),
        ]
    elif version == 4:  # backfill: the newest published version that is not DELETED
        assert conn.execute("SELECT version FROM latest_entry_version").fetchall() == [("1.0.0",)]
    elif version == 6:
        assert enum_labels(conn, "entry_type") == ["MCP", "SKILL"]
    elif version == 7:  # backfill from the entries of each source
        counts = conn.execute(
            "SELECT s.name, y.server_count, y.skill_count FROM registry_sync y"
            " JOIN source s ON s.id = y.source_id"
        ).fetchall()
        assert counts == [("upstream-file", 1, 1)]
    elif version == 8:
        valid = one(
            conn,
            "SELECT indisvalid FROM pg_index"
            " WHERE indexrelid = 'registry_entry_claims_idx'::regclass",
        )
        assert valid is True
    elif version == 10:  # existing status rows keep their phase, no lease, no attempts yet
        rows = conn.execute(
            "SELECT sync_status::text, lease_holder, next_due_at, attempts_total FROM registry_sync"
        ).fetchall()
        assert rows == [("COMPLETED", None, None, 0)]
    elif version == 11:  # every source starts at data version 0; one catalog version row
        assert conn.execute("SELECT DISTINCT data_version FROM source").fetchall() == [(0,)]
        assert conn.execute("SELECT id, version FROM catalog_version").fetchall() == [(True, 0)]
    elif version == 9:  # every source syncs all its rows once more, filling the new columns
        assert conn.execute("SELECT last_sync_hash, message, version_count FROM registry_sync")
        assert one(conn, "SELECT count(*) FROM registry_sync WHERE last_sync_hash IS NOT NULL") == 0


def check_down(conn: Conn, version: int) -> None:
    """What the down of ``version`` did to the rows (the schema is compared separately)."""
    if version == 10:  # the never-attempted row goes (the first attempt made rows before)
        rows = conn.execute(
            "SELECT s.name, y.sync_status::text FROM registry_sync y"
            " JOIN source s ON s.id = y.source_id"
        ).fetchall()
        assert rows == [("upstream-file", "COMPLETED")]
    if version == 3:  # back to Go durations, which 000003's up reads again
        rows = conn.execute(
            "SELECT name, sync_schedule FROM source WHERE sync_schedule IS NOT NULL ORDER BY name"
        ).fetchall()
        assert rows == [("hourly", "3600s"), ("upstream-file", "1800s")]
    elif version == 6:  # the SKILL entry is gone, and so is the value
        assert enum_labels(conn, "entry_type") == ["MCP"]
        assert conn.execute("SELECT entry_type::text, name FROM registry_entry").fetchall() == [
            ("MCP", "io.github.stacklok/adb-mysql-mcp-server")
        ]


# -- the files -------------------------------------------------------------------------------------


def test_the_set_is_complete_and_every_migration_has_a_down() -> None:
    assert [(m.version, m.name) for m in SOURCE.migrations] == EXPECTED
    for m in SOURCE.migrations:
        assert m.down is not None, m.label
        for direction, file in (("up", m.up), ("down", m.down)):
            text = file.read_bytes().decode()
            assert text.startswith(f"-- {m.label} ({direction}): "), file.origin


def test_only_the_concurrent_index_runs_outside_a_transaction() -> None:
    outside = set()
    for m in SOURCE.migrations:
        assert m.down is not None
        for file in (m.up, m.down):
            parsed = sqlfile.parse(file.read_bytes().decode(), file.origin)
            if not parsed.runs_in_transaction:
                outside.add(file.origin.rsplit("/", 1)[-1])
                assert all(s.non_transactional for s in parsed.statements), file.origin
    assert outside == {
        "000008_registry_entry_claims_idx.up.sql",
        "000008_registry_entry_claims_idx.down.sql",
    }


# -- against the server ----------------------------------------------------------------------------


def test_each_step_goes_up_down_and_up_again_with_rows(database: TestDatabase, conn: Conn) -> None:
    m = migrator(database)
    for migration in SOURCE.migrations:
        version = migration.version
        before = take(conn)
        m.apply(Up(1))
        after = take(conn)
        assert diff(before, after), f"{migration.label} changed nothing"
        check_up(conn, version)
        if fill := FILLS.get(version):
            fill(conn)

        result = m.apply(Down(1))
        assert [s.migration.version for s in result.applied] == [version]
        assert_same(before, take(conn), f"after {migration.label} down")
        check_down(conn, version)

        m.apply(Up(1))
        assert_same(after, take(conn), f"after {migration.label} up again")
        check_up(conn, version)
        if fill:
            fill(conn)
    assert m.version().version == LATEST and not m.version().dirty


def test_all_the_way_down_with_rows_and_up_again(database: TestDatabase, conn: Conn) -> None:
    m = migrator(database)
    empty = take(conn)
    m.apply(Up(7))
    for fill in FILLS.values():
        fill(conn)
    m.apply(Up())
    full = take(conn)
    assert len(m.apply(Down(0)).applied) == LATEST
    assert_same(empty, take(conn), "after all downs")
    assert database.tables() == {"schema_migrations", "schema_migrations_history"}
    m.apply(Up())
    assert_same(full, take(conn), "after all ups again")


def test_the_concurrent_index_step_runs_outside_a_transaction(
    database: TestDatabase, conn: Conn
) -> None:
    """CREATE/DROP INDEX CONCURRENTLY fail at once inside a transaction block: that both steps
    succeed shows the engine ran them outside one, and left the version clean afterwards."""
    m = migrator(database)
    m.apply(Up(7))
    m.apply(Up(1))
    assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchall() == [(8, False)]
    check_up(conn, 8)
    m.apply(Down(1))
    assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchall() == [(7, False)]
    assert one(conn, "SELECT to_regclass('registry_entry_claims_idx') IS NULL") is True


def test_final_schema_indexes_every_foreign_key(database: TestDatabase, conn: Conn) -> None:
    migrator(database).apply(Up())
    assert unindexed_foreign_keys(conn) == []
    assert enum_labels(conn, "entry_type") == ["MCP", "SKILL"]
    assert enum_labels(conn, "icon_theme") == ["LIGHT", "DARK"]


def test_constraints_of_the_added_tables(database: TestDatabase, conn: Conn) -> None:
    migrator(database).apply(Up())
    fill_1(conn)
    fill_6(conn)
    errors = psycopg.errors
    entry = one(conn, "SELECT id FROM registry_entry WHERE entry_type = 'MCP'")
    skill = one(conn, "SELECT version_id FROM skill")
    conn.execute(
        "INSERT INTO latest_entry_version (entry_id, version) VALUES (%s, '1.0.0')", (entry,)
    )
    bad = [
        # The latest pointer must name a version of its own entry.
        (
            errors.ForeignKeyViolation,
            "UPDATE latest_entry_version SET version = '1.2.0' WHERE entry_id = %s",
            (entry,),
        ),
        (errors.CheckViolation, "UPDATE source SET claims = '[1]'", ()),
        (errors.CheckViolation, "UPDATE source SET sync_schedule = interval '-1 hour'", ()),
        (errors.CheckViolation, "UPDATE registry_sync SET skill_count = -1", ()),
        (
            errors.CheckViolation,
            "INSERT INTO skill_oci_package (skill_id, position, identifier, digest)"
            " VALUES (%s, 1, 'ghcr.io/x:1', 'md5:abc')",
            (skill,),
        ),
        (
            errors.UniqueViolation,
            "INSERT INTO skill_git_package (skill_id, position, url) VALUES (%s, 0, 'https://x')",
            (skill,),
        ),
    ]
    for exc, query, params in bad:
        with pytest.raises(exc), conn.transaction():
            conn.execute(query, params)
    # Deleting the skill's version removes its packages and its latest pointer.
    conn.execute("DELETE FROM entry_version WHERE id = %s", (skill,))
    for table in ("skill", "skill_oci_package", "skill_git_package"):
        assert one(conn, f"SELECT count(*) FROM {table}") == 0
    assert one(conn, "SELECT count(*) FROM latest_entry_version") == 1


def test_a_failing_conversion_stops_the_type_change_and_rolls_it_back(
    database: TestDatabase, conn: Conn
) -> None:
    """'0s' is a valid Go duration, but a zero interval is not a schedule."""
    m = migrator(database)
    m.apply(Up(2))
    conn.execute("INSERT INTO source (name, source_type, sync_schedule) VALUES ('z', 'git', '0s')")
    before = take(conn)
    with pytest.raises(MigrationFailed) as info:
        m.apply(Up())
    text = str(info.value)
    assert "000003_sync_schedule_interval.up.sql:" in text
    assert 'check constraint "source_sync_schedule_check"' in text, text
    assert m.version().version == 2 and not m.version().dirty
    assert_same(before, take(conn), "after the failed type change")
