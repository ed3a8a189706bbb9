"""Schema snapshots from the catalogs and their differences, against a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import psycopg

from conftest import TestDatabase
from thv_registry.migrations.tools.snapshot import Snapshot, diff, take

BASE = """
CREATE TYPE source_type AS ENUM ('git', 'api');
CREATE DOMAIN short_text AS varchar(20) CHECK (VALUE <> '');
CREATE TABLE servers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    kind source_type NOT NULL DEFAULT 'git',
    tags text,
    label short_text,
    CONSTRAINT servers_name_check CHECK (name <> '')
);
CREATE TABLE packages (
    id serial PRIMARY KEY,
    server_id bigint NOT NULL REFERENCES servers (id) ON DELETE CASCADE
);
CREATE SEQUENCE ticket_seq START 100 INCREMENT 5;
CREATE VIEW server_names AS SELECT name FROM servers;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER servers_touch BEFORE UPDATE ON servers FOR EACH ROW EXECUTE FUNCTION touch();
COMMENT ON TABLE servers IS 'MCP servers';
-- the state tables are left out of every snapshot
CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
CREATE TABLE schema_migrations_history (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
"""


def snap(conn: psycopg.Connection[Any], statements: str = "") -> Snapshot:
    if statements:
        conn.execute(statements)
    return take(conn)


def messages(before: Snapshot, after: Snapshot) -> list[str]:
    return [d.message for d in diff(before, after)]


def test_snapshot_is_stable_and_reads_every_kind(database: TestDatabase) -> None:
    with database.connect() as conn:
        first = snap(conn, BASE)
        assert first == take(conn)
        kinds = {o.kind for o in first.objects}
        expected = {"table", "column", "constraint", "type", "enum value", "sequence", "view"}
        assert expected | {"function", "trigger", "comment", "grant", "schema"} <= kinds
        keys = {o.key for o in first.objects}
        assert not any("schema_migrations" in k for k in keys), "state tables are excluded"
        assert first.get("column", "servers.id") is not None
        assert dict(first.get("sequence", "ticket_seq").props)["increment"] == "5"  # type: ignore[union-attr]
        assert first.get("enum value", "source_type.api") is not None


def test_index_left_behind_is_named(database: TestDatabase) -> None:
    with database.connect() as conn:
        before = snap(conn, BASE)
        after = snap(conn, "CREATE INDEX servers_name_idx ON servers (name)")
        assert messages(before, after) == ["index servers_name_idx on servers is left behind"]
        assert messages(after, before) == ["index servers_name_idx on servers is missing"]


def test_column_type_and_nullability_changes(database: TestDatabase) -> None:
    with database.connect() as conn:
        before = snap(conn, BASE)
        after = snap(
            conn,
            "ALTER TABLE servers ALTER COLUMN tags TYPE text[] USING ARRAY[tags];"
            "ALTER TABLE servers ALTER COLUMN name DROP NOT NULL;"
            "ALTER TABLE servers ALTER COLUMN kind SET DEFAULT 'api'",
        )
        assert messages(before, after) == [
            "column servers.kind default changed from 'git'::source_type to 'api'::source_type",
            "column servers.name nullability changed from NOT NULL to nullable",
            "column servers.tags type changed from text to text[]",
        ]


def test_enum_values_and_their_order(database: TestDatabase) -> None:
    with database.connect() as conn:
        before = snap(conn, BASE)
        added = snap(conn, "ALTER TYPE source_type ADD VALUE 'file' BEFORE 'api'")
        assert messages(before, added) == ["enum value 'file' of type source_type is left behind"]
        assert messages(added, before) == ["enum value 'file' of type source_type is missing"]
        conn.execute("CREATE TYPE reordered AS ENUM ('api', 'git')")
        mixed = take(conn)
        conn.execute("DROP TYPE reordered; CREATE TYPE reordered AS ENUM ('git', 'api')")
        assert messages(mixed, take(conn)) == [
            "enum type reordered value order changed from 'api', 'git' to 'git', 'api'"
        ]


def test_a_missing_table_is_one_difference(database: TestDatabase) -> None:
    with database.connect() as conn:
        before = snap(conn, BASE)
        after = snap(conn, "DROP TABLE packages")
        # columns, keys, the sequence it owns and its grants go with it: not listed one by one
        assert messages(before, after) == ["table packages is missing"]


def test_constraints_views_functions_triggers_sequences(database: TestDatabase) -> None:
    with database.connect() as conn:
        before = snap(conn, BASE)
        after = snap(
            conn,
            """
            ALTER TABLE servers DROP CONSTRAINT servers_name_check,
                ADD CONSTRAINT servers_name_check CHECK (length(name) > 1);
            CREATE OR REPLACE VIEW server_names AS SELECT name FROM servers WHERE id > 0;
            CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
                AS $$ BEGIN NEW.name := lower(NEW.name); RETURN NEW; END $$;
            ALTER TABLE servers DISABLE TRIGGER servers_touch;
            ALTER SEQUENCE ticket_seq INCREMENT 1;
            COMMENT ON TABLE servers IS NULL;
            """,
        )
        got = messages(before, after)
        # PostgreSQL 15 qualifies column names in view definitions (servers.name), 16 does not
        view = got.pop(2)
        assert view.startswith("view server_names definition changed from SELECT ")
        assert view.endswith("id > 0;")
        assert got == [
            "check constraint servers_name_check on table servers definition changed from "
            "CHECK ((name <> ''::text)) to CHECK ((length(name) > 1))",
            "sequence ticket_seq increment changed from 5 to 1",
            "function touch() definition changed (body or attributes differ)",
            "trigger servers_touch on servers enabled changed from enabled to disabled",
            "comment on table servers is missing",
        ]


def test_grants_compare_by_effect(database: TestDatabase) -> None:
    with database.connect() as conn:
        before = snap(conn, BASE + "CREATE ROLE snapshot_reader_role_x;")
        try:
            granted = snap(conn, "GRANT SELECT ON servers TO snapshot_reader_role_x")
            assert messages(before, granted) == [
                "grant on table servers to snapshot_reader_role_x is left behind"
            ]
            # GRANT then REVOKE leaves an explicit ACL equal to the default: no difference
            revoked = snap(conn, "REVOKE SELECT ON servers FROM snapshot_reader_role_x")
            assert messages(before, revoked) == []
        finally:
            conn.execute("DROP OWNED BY snapshot_reader_role_x")
            conn.execute("DROP ROLE snapshot_reader_role_x")


def test_schemas_and_extensions_are_database_wide(database: TestDatabase) -> None:
    with database.connect() as conn:
        before = snap(conn)
        after = snap(conn, "CREATE SCHEMA audit; CREATE TABLE audit.log (id int)")
        assert messages(before, after) == ["schema audit is left behind"]
        assert take(conn, "audit").get("table", "log") is not None
        assert take(conn, "no_such_schema").objects == ()


def test_column_order_change_is_reported_when_the_columns_are_the_same(
    database: TestDatabase,
) -> None:
    with database.connect() as conn:
        before = snap(conn, BASE)
        after = snap(conn, "ALTER TABLE servers DROP COLUMN tags, ADD COLUMN tags text")
        assert messages(before, after) == [
            "table servers column order changed from id, name, kind, tags, label to "
            "id, name, kind, label, tags"
        ]
