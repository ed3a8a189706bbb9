"""The first schema migration (database/migrations/000001_init.*.sql) against a real PostgreSQL.

The files are applied the way the engine applies a transactional step: the whole file as one
``execute`` inside one transaction. The down must return the catalog to exactly its prior state
(compared with a pg_catalog snapshot of schema ``public``), with or without rows present, and the
up must apply again afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pglast
import psycopg
import pytest
from pglast import ast
from psycopg.types.json import Jsonb

from conftest import REPO_ROOT, TestDatabase, unindexed_foreign_keys

MIGRATIONS = REPO_ROOT / "database" / "migrations"
UP = MIGRATIONS / "000001_init.up.sql"
DOWN = MIGRATIONS / "000001_init.down.sql"
UPSTREAM_SAMPLE = REPO_ROOT.parent / "shared" / "specs" / "upstream-registry.json"

EXPECTED_TABLES = {
    "source",
    "registry",
    "registry_source",
    "registry_sync",
    "registry_entry",
    "entry_version",
    "mcp_server",
    "mcp_server_package",
    "mcp_server_remote",
}

EXPECTED_ENUMS = {
    "source_type": ["git", "api", "file", "managed", "kubernetes"],
    "creation_type": ["API", "CONFIG"],
    "sync_status": ["IN_PROGRESS", "COMPLETED", "FAILED"],
    "entry_type": ["MCP"],
    "version_status": ["ACTIVE", "DEPRECATED", "DELETED"],
    "transport_type": ["stdio", "streamable-http", "sse"],
}

# Everything in schema public that a migration could create, alter or drop, plus the database's
# extensions. Each part is a sorted list of tuples, so two snapshots compare with ==.
SNAPSHOT_QUERIES: dict[str, str] = {
    "relations": """
        SELECT c.relname, c.relkind::text, c.relpersistence::text
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public'
    """,
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), '')
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
    """,
    "types": """
        SELECT t.typname, t.typtype::text
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'public'
    """,
    "enum_labels": """
        SELECT t.typname, e.enumsortorder::text, e.enumlabel
          FROM pg_enum e
          JOIN pg_type t ON t.oid = e.enumtypid
          JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'public'
    """,
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), p.prokind::text
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'
    """,
    "constraints": """
        SELECT coalesce(c.relname, ''), coalesce(t.typname, ''), k.conname, k.contype::text,
               pg_get_constraintdef(k.oid)
          FROM pg_constraint k
          JOIN pg_namespace n ON n.oid = k.connamespace
          LEFT JOIN pg_class c ON c.oid = k.conrelid
          LEFT JOIN pg_type t ON t.oid = k.contypid
         WHERE n.nspname = 'public'
    """,
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
    """,
    "triggers": """
        SELECT c.relname, g.tgname
          FROM pg_trigger g
          JOIN pg_class c ON c.oid = g.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND NOT g.tgisinternal
    """,
    "sequences": """
        SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'
    """,
    "extensions": "SELECT extname FROM pg_extension",
}


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        part: sorted(conn.execute(query).fetchall(), key=repr)
        for part, query in SNAPSHOT_QUERIES.items()
    }


def apply(conn: psycopg.Connection[Any], path: Path) -> None:
    """Run a migration file as the engine does a transactional step: one transaction."""
    with conn.transaction():
        conn.execute(path.read_text())


def create_state_table(conn: psycopg.Connection[Any]) -> None:
    """golang-migrate's state table: the down must leave it (and its row) alone."""
    conn.execute(
        "CREATE TABLE schema_migrations"
        " (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
    )
    conn.execute("INSERT INTO schema_migrations VALUES (1, false)")


def public_tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def first_upstream_server() -> dict[str, Any]:
    if UPSTREAM_SAMPLE.exists():
        data = json.loads(UPSTREAM_SAMPLE.read_text())
        server: dict[str, Any] = data["data"]["servers"][0]
        return server
    # The shared spec directory is outside the repository; keep the test self-contained.
    return {
        "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
        "name": "io.github.stacklok/adb-mysql-mcp-server",
        "description": "Official MCP server for AnalyticDB for MySQL of Alibaba Cloud",
        "title": "adb-mysql-mcp-server",
        "repository": {
            "url": "https://github.com/aliyun/alibabacloud-adb-mysql-mcp-server",
            "source": "github",
        },
        "version": "1.0.0",
        "packages": [
            {
                "registryType": "oci",
                "identifier": "ghcr.io/stacklok/dockyard/uvx/adb-mysql-mcp-server:1.0.0",
                "transport": {"type": "stdio"},
                "environmentVariables": [
                    {"name": "ADB_MYSQL_HOST", "isRequired": True},
                    {"name": "ADB_MYSQL_PASSWORD", "isRequired": True, "isSecret": True},
                ],
            }
        ],
        "_meta": {"io.modelcontextprotocol.registry/publisher-provided": {}},
    }


def insert_sample(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """A source, a registry using it at position 0, its sync state, and one MCP server version
    (the upstream sample's first server) with a package and a remote."""
    server = first_upstream_server()
    package = server["packages"][0]
    ids: dict[str, Any] = {}
    with conn.transaction():
        ids["source"] = conn.execute(
            """INSERT INTO source (name, source_type, source_config, filter_config, sync_schedule)
               VALUES ('upstream-file', 'file', %s, %s, '30m') RETURNING id""",
            (
                Jsonb({"path": "examples/upstream-registry.json"}),
                Jsonb({"names": {"include": ["io.github.stacklok/*"]}}),
            ),
        ).fetchone()[0]  # type: ignore[index]
        ids["registry"] = conn.execute(
            "INSERT INTO registry (name) VALUES ('default') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO registry_source (registry_id, source_id, position) VALUES (%s, %s, 0)",
            (ids["registry"], ids["source"]),
        )
        conn.execute(
            """INSERT INTO registry_sync (source_id, sync_status, started_at, ended_at,
                                          last_success_at, attempt_count, last_sync_hash)
               VALUES (%s, 'COMPLETED', now(), now(), now(), 1, %s)""",
            (ids["source"], "sha256:" + "ab" * 32),
        )
        ids["entry"] = conn.execute(
            "INSERT INTO registry_entry (source_id, name) VALUES (%s, %s) RETURNING id",
            (ids["source"], server["name"]),
        ).fetchone()[0]  # type: ignore[index]
        ids["version"] = conn.execute(
            """INSERT INTO entry_version (entry_id, version, title, description)
               VALUES (%s, %s, %s, %s) RETURNING id""",
            (ids["entry"], server["version"], server.get("title"), server["description"]),
        ).fetchone()[0]  # type: ignore[index]
        repo = server.get("repository") or {}
        conn.execute(
            """INSERT INTO mcp_server (version_id, website, schema_url, repository_url,
                                       repository_type, repository_id, repository_subfolder,
                                       server_meta)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                ids["version"],
                server.get("websiteUrl"),
                server.get("$schema"),
                repo.get("url"),
                repo.get("source"),
                repo.get("id"),
                repo.get("subfolder"),
                Jsonb(server.get("_meta")),
            ),
        )
        transport = package["transport"]
        conn.execute(
            """INSERT INTO mcp_server_package (server_id, position, registry_type,
                                               pkg_identifier, pkg_version, runtime_hint,
                                               runtime_arguments, package_arguments, env_vars,
                                               transport, transport_url, transport_headers)
               VALUES (%s, 0, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                ids["version"],
                package["registryType"],
                package["identifier"],
                package.get("version"),
                package.get("runtimeHint"),
                Jsonb(package.get("runtimeArguments", [])),
                Jsonb(package.get("packageArguments", [])),
                Jsonb(package.get("environmentVariables", [])),
                transport["type"],
                transport.get("url"),
                Jsonb(transport.get("headers", [])),
            ),
        )
        conn.execute(
            """INSERT INTO mcp_server_remote (server_id, position, transport, transport_url,
                                              transport_headers, transport_variables)
               VALUES (%s, 0, 'streamable-http', 'https://{region}.mcp.example.com/mcp', %s, %s)""",
            (
                ids["version"],
                Jsonb([{"name": "Authorization", "isSecret": True, "isRequired": True}]),
                Jsonb({"region": {"default": "eu", "choices": ["eu", "us"]}}),
            ),
        )
    return ids


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
        for t in sorted(EXPECTED_TABLES)
    }


@pytest.fixture
def conn(database: TestDatabase) -> Any:
    with database.connect() as connection:
        yield connection


# ---------------------------------------------------------------------------------------------
# The files themselves


def test_files_are_transactional_and_documented() -> None:
    for path in (UP, DOWN):
        text = path.read_text()
        assert text.startswith("-- 000001_init ("), f"{path.name} lacks its header comment"
        for raw in pglast.parse_sql(text):
            stmt = raw.stmt
            name = type(stmt).__name__
            assert name != "TransactionStmt", f"{path.name}: own BEGIN/COMMIT"
            assert not getattr(stmt, "concurrent", False), f"{path.name}: CONCURRENTLY"
            assert name in {"CreateEnumStmt", "CreateStmt", "IndexStmt", "DropStmt"}, name


def _created_and_dropped() -> tuple[set[tuple[str, str]], list[tuple[str, str]]]:
    created: set[tuple[str, str]] = set()
    for raw in pglast.parse_sql(UP.read_text()):
        stmt = raw.stmt
        if isinstance(stmt, ast.CreateStmt) and stmt.relation is not None:
            created.add(("table", str(stmt.relation.relname)))
        elif isinstance(stmt, ast.CreateEnumStmt) and stmt.typeName is not None:
            created.add(("type", str(stmt.typeName[-1].sval)))
    dropped: list[tuple[str, str]] = []
    for raw in pglast.parse_sql(DOWN.read_text()):
        stmt = raw.stmt
        assert isinstance(stmt, ast.DropStmt)
        assert stmt.removeType is not None and stmt.behavior is not None and stmt.objects
        kind = {"OBJECT_TABLE": "table", "OBJECT_TYPE": "type"}[stmt.removeType.name]
        assert stmt.behavior.name == "DROP_RESTRICT", "the down must not CASCADE"
        for obj in stmt.objects:
            # DROP TABLE names are lists of String; DROP TYPE names are TypeName nodes.
            names = obj.names if isinstance(obj, ast.TypeName) else obj
            assert names
            dropped.append((kind, str(names[-1].sval)))
    return created, dropped


def test_down_drops_exactly_what_up_creates() -> None:
    created, dropped = _created_and_dropped()
    assert len(dropped) == len(set(dropped))
    assert set(dropped) == created
    assert {n for k, n in created if k == "table"} == EXPECTED_TABLES
    assert {n for k, n in created if k == "type"} == set(EXPECTED_ENUMS)


# ---------------------------------------------------------------------------------------------
# Against the server


def test_up_creates_tables_and_types(conn: psycopg.Connection[Any]) -> None:
    apply(conn, UP)
    assert public_tables(conn) == EXPECTED_TABLES
    rows = conn.execute(
        """SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
             FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
             JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname = 'public' GROUP BY t.typname"""
    ).fetchall()
    assert dict(rows) == EXPECTED_ENUMS
    # No extension was needed or created; gen_random_uuid() is built in.
    assert conn.execute(
        "SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql'"
    ).fetchone() == (0,)
    # Every created_at/updated_at is timestamptz NOT NULL DEFAULT now().
    bad = conn.execute(
        """SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = 'public' AND column_name IN ('created_at', 'updated_at')
              AND NOT (data_type = 'timestamp with time zone' AND is_nullable = 'NO'
                       AND column_default = 'now()')"""
    ).fetchall()
    assert bad == []
    # Every foreign key has an index for the lookups its ON DELETE needs: one whose leading
    # columns are the key's columns, or a unique one on a subset of them.
    assert unindexed_foreign_keys(conn) == []


def test_up_down_up_restores_the_catalog_exactly(conn: psycopg.Connection[Any]) -> None:
    create_state_table(conn)
    before = snapshot(conn)

    apply(conn, UP)
    after_up = snapshot(conn)
    assert after_up != before
    ids = insert_sample(conn)
    assert set(row_counts(conn).values()) == {1}
    detail = conn.execute(
        """SELECT e.name, v.version, v.status::text, s.repository_type,
                  p.transport::text, p.env_vars -> 0 ->> 'name', r.transport::text,
                  rs.position
             FROM registry_source rs
             JOIN registry_entry e ON e.source_id = rs.source_id
             JOIN entry_version v ON v.entry_id = e.id
             JOIN mcp_server s ON s.version_id = v.id
             JOIN mcp_server_package p ON p.server_id = s.version_id
             JOIN mcp_server_remote r ON r.server_id = s.version_id
            WHERE rs.registry_id = %s""",
        (ids["registry"],),
    ).fetchall()
    assert detail == [
        (
            "io.github.stacklok/adb-mysql-mcp-server",
            "1.0.0",
            "ACTIVE",
            "github",
            "stdio",
            "ADB_MYSQL_HOST",
            "streamable-http",
            0,
        )
    ]

    apply(conn, DOWN)  # with rows present
    assert snapshot(conn) == before
    assert public_tables(conn) == {"schema_migrations"}
    assert conn.execute("SELECT version, dirty FROM schema_migrations").fetchall() == [(1, False)]

    apply(conn, UP)
    assert snapshot(conn) == after_up
    assert set(row_counts(conn).values()) == {0}
    insert_sample(conn)

    apply(conn, DOWN)
    assert snapshot(conn) == before


def test_down_on_an_empty_schema_restores_the_catalog(conn: psycopg.Connection[Any]) -> None:
    before = snapshot(conn)
    apply(conn, UP)
    apply(conn, DOWN)
    assert snapshot(conn) == before


def test_a_failing_up_leaves_nothing_behind(conn: psycopg.Connection[Any]) -> None:
    """Applied twice, the second up fails on its first statement and rolls back entirely."""
    apply(conn, UP)
    after_up = snapshot(conn)
    with pytest.raises(psycopg.errors.DuplicateObject):
        apply(conn, UP)
    assert snapshot(conn) == after_up


# ---------------------------------------------------------------------------------------------
# Constraints doing their job


def _fails(conn: psycopg.Connection[Any], exc: type[Exception], query: str, *params: Any) -> None:
    with pytest.raises(exc), conn.transaction():
        conn.execute(query, params)


def test_constraints(conn: psycopg.Connection[Any]) -> None:
    apply(conn, UP)
    ids = insert_sample(conn)
    errors = psycopg.errors

    # Names are unique; a second managed source is refused.
    _fails(
        conn,
        errors.UniqueViolation,
        "INSERT INTO source (name, source_type) VALUES ('upstream-file', 'git')",
    )
    conn.execute(
        "INSERT INTO source (name, source_type, syncable) VALUES ('managed', 'managed', false)"
    )
    _fails(
        conn,
        errors.UniqueViolation,
        "INSERT INTO source (name, source_type, syncable) VALUES ('managed-2', 'managed', false)",
    )
    _fails(
        conn,
        errors.InvalidTextRepresentation,
        "INSERT INTO source (name, source_type) VALUES ('x', 'ftp')",
    )
    _fails(
        conn, errors.CheckViolation, "INSERT INTO source (name, source_type) VALUES ('  ', 'git')"
    )

    # Positions are unique per registry, but a reordering statement may pass through duplicates.
    other = conn.execute(
        "INSERT INTO source (name, source_type) VALUES ('git-src', 'git') RETURNING id"
    ).fetchone()[0]  # type: ignore[index]
    _fails(
        conn,
        errors.UniqueViolation,
        "INSERT INTO registry_source (registry_id, source_id, position) VALUES (%s, %s, 0)",
        ids["registry"],
        other,
    )
    _fails(
        conn,
        errors.CheckViolation,
        "INSERT INTO registry_source (registry_id, source_id, position) VALUES (%s, %s, -1)",
        ids["registry"],
        other,
    )
    conn.execute(
        "INSERT INTO registry_source (registry_id, source_id, position) VALUES (%s, %s, 1)",
        (ids["registry"], other),
    )
    conn.execute(
        "UPDATE registry_source SET position = 1 - position WHERE registry_id = %s",
        (ids["registry"],),
    )
    order = conn.execute(
        "SELECT source_id FROM registry_source WHERE registry_id = %s ORDER BY position",
        (ids["registry"],),
    ).fetchall()
    assert order == [(other,), (ids["source"],)]

    # One row per (entry, version); remotes are never stdio; stdio packages have no URL.
    _fails(
        conn,
        errors.UniqueViolation,
        "INSERT INTO entry_version (entry_id, version) VALUES (%s, '1.0.0')",
        ids["entry"],
    )
    _fails(
        conn,
        errors.CheckViolation,
        "INSERT INTO mcp_server_remote (server_id, position, transport, transport_url)"
        " VALUES (%s, 1, 'stdio', 'https://x.example.com')",
        ids["version"],
    )
    _fails(
        conn,
        errors.CheckViolation,
        "INSERT INTO mcp_server_package (server_id, position, registry_type, pkg_identifier,"
        " transport, transport_url) VALUES (%s, 1, 'npm', 'pkg', 'stdio', 'http://x')",
        ids["version"],
    )
    _fails(
        conn,
        errors.CheckViolation,
        "INSERT INTO mcp_server_package (server_id, position, registry_type, pkg_identifier,"
        " transport, env_vars) VALUES (%s, 1, 'npm', 'pkg', 'stdio', '{\"A\": 1}')",
        ids["version"],
    )

    # Only the kinds the schema knows (000006_skills adds SKILL).
    _fails(
        conn,
        errors.InvalidTextRepresentation,
        "INSERT INTO registry_entry (source_id, entry_type, name) VALUES (%s, 'SKILL', 'x')",
        ids["source"],
    )
    for schedule in (" ", "daily", "30", "1d", "-5m"):  # a Go duration in h, m, s, ms or us
        _fails(
            conn,
            errors.CheckViolation,
            "INSERT INTO source (name, source_type, sync_schedule) VALUES ('y', 'git', %s)",
            schedule,
        )

    # A source used by a registry cannot be deleted; deleting the registry releases it, and
    # deleting the source then removes everything that came from it.
    _fails(conn, errors.ForeignKeyViolation, "DELETE FROM source WHERE id = %s", ids["source"])
    conn.execute("DELETE FROM registry WHERE id = %s", (ids["registry"],))
    assert conn.execute("SELECT count(*) FROM registry_source").fetchone() == (0,)
    conn.execute("DELETE FROM source WHERE id = %s", (ids["source"],))
    counts = row_counts(conn)
    assert counts["source"] == 2  # 'managed' and 'git-src' remain
    assert {t: n for t, n in counts.items() if t != "source"} == {
        t: 0 for t in EXPECTED_TABLES - {"source"}
    }
