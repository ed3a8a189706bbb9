"""sqlfile: splitting with PostgreSQL's parser, transaction rules, exact (non-ASCII) positions."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING

import psycopg
import pytest

from thv_registry.errors import SourceError
from thv_registry.migrations.engine.sqlfile import SqlFile, decode, parse

if TYPE_CHECKING:
    from conftest import TestDatabase


def texts(sql: SqlFile) -> list[str]:
    return [s.text for s in sql.statements]


def check_spans(sql: SqlFile) -> None:
    """Every statement's text is the file's text at its offset, and line/column agree with it."""
    for s in sql.statements:
        assert sql.text[s.start : s.start + len(s.text)] == s.text
        before = sql.text[: s.start]
        assert s.line == before.count("\n") + 1
        assert s.column == len(before) - (before.rfind("\n") + 1) + 1


# ---- splitting -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n", "-- only a comment\n/* and ☕ another */\n"])
def test_empty_or_comment_only_file_has_no_statements(text: str) -> None:
    sql = parse(text, "x.sql")
    assert sql.statements == ()
    assert sql.runs_in_transaction


def test_statements_exclude_comments_whitespace_and_semicolons() -> None:
    text = (
        "-- header\n"
        "CREATE TABLE a (id int); -- trailing\n"
        "\n"
        "/* block\n comment */  INSERT INTO a VALUES (1) /* inside end */ ;\n"
        "SELECT 1 -- no semicolon at the end\n"
    )
    sql = parse(text, "x.sql")
    assert texts(sql) == ["CREATE TABLE a (id int)", "INSERT INTO a VALUES (1)", "SELECT 1"]
    assert [(s.line, s.column) for s in sql.statements] == [(2, 1), (5, 14), (6, 1)]
    assert [s.kind for s in sql.statements] == ["CreateStmt", "InsertStmt", "SelectStmt"]
    check_spans(sql)


def test_semicolons_inside_strings_identifiers_and_escapes() -> None:
    text = """SELECT 'a;b', "odd;name", E'it\\'s;', U&'\\0041;' AS "x;y";\nSELECT 2;"""
    sql = parse(text, "x.sql")
    assert len(sql.statements) == 2
    assert sql.statements[0].text.endswith('AS "x;y"')
    check_spans(sql)


def test_dollar_quoted_function_body_is_one_statement() -> None:
    text = (
        "CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
        "BEGIN\n  NEW.n := NEW.n + 1; -- ;\n  RAISE NOTICE 'x; $$ y';\n  RETURN NEW;\nEND;\n$fn$;\n"
        "SELECT $$;$$;\n"
    )
    sql = parse(text, "x.sql")
    assert [s.kind for s in sql.statements] == ["CreateFunctionStmt", "SelectStmt"]
    assert sql.statements[0].text.endswith("END;\n$fn$")
    assert sql.statements[1].text == "SELECT $$;$$"
    check_spans(sql)


def test_begin_atomic_body_is_one_statement_and_transactional() -> None:
    text = (
        "CREATE FUNCTION two() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n"
        "  SELECT 2;\nEND;\n"
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;\n"
    )
    sql = parse(text, "x.sql")
    assert len(sql.statements) == 2
    assert sql.statements[0].text.endswith("SELECT 2;\nEND")
    assert sql.statements[1].line == 6
    assert sql.runs_in_transaction
    check_spans(sql)


def test_non_ascii_before_statements_keeps_character_offsets() -> None:
    text = (
        "-- café ☕ naïve 🐘\n"
        "CREATE TABLE \"tâble\" (v text DEFAULT 'naïve; ☕');\n"
        "/* ünï */ INSERT INTO \"tâble\" VALUES ('🐘🐘');\n"
        "  SELECT 'ok';"
    )
    sql = parse(text, "x.sql")
    assert texts(sql) == [
        "CREATE TABLE \"tâble\" (v text DEFAULT 'naïve; ☕')",
        "INSERT INTO \"tâble\" VALUES ('🐘🐘')",
        "SELECT 'ok'",
    ]
    assert [(s.line, s.column) for s in sql.statements] == [(2, 1), (3, 11), (4, 3)]
    check_spans(sql)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a stand-in that maps both tags to $q$ would split this in two
        ("SELECT $é$ $ü$; SELECT $ü$ $é$;", ["SELECT $é$ $ü$; SELECT $ü$ $é$"]),
        ("SELECT $q$ $é$; $q$; SELECT 'ü'", ["SELECT $q$ $é$; $q$", "SELECT 'ü'"]),
        ("SELECT seéuence FROM t; SELECT uniéue", ["SELECT seéuence FROM t", "SELECT uniéue"]),
        ("CREATE TABLE café (crème text);", ["CREATE TABLE café (crème text)"]),
    ],
)
def test_non_ascii_in_tags_and_identifiers(text: str, expected: list[str]) -> None:
    sql = parse(text, "x.sql")
    assert texts(sql) == expected
    check_spans(sql)


def test_large_non_ascii_file_parses_in_linear_time() -> None:
    """pglast's own byte-to-character mapping is quadratic: 4000 rows took about 4 s with it."""
    rows = ",\n".join(f"({i}, 'José Müller', 'Zürich 🐘')" for i in range(4000))
    text = "-- données ☕\n" + f"INSERT INTO people VALUES\n{rows};\nSELECT 'fin';\n"
    began = time.perf_counter()
    sql = parse(text, "seed.sql")
    assert time.perf_counter() - began < 2.0
    assert [s.line for s in sql.statements] == [2, 4003]
    assert sql.statements[0].text.endswith("'Zürich 🐘')")
    check_spans(sql)


def test_crlf_line_endings() -> None:
    sql = parse("SELECT 1;\r\n\r\n  SELECT 2;\r\n", "x.sql")
    assert [(s.line, s.column, s.text) for s in sql.statements] == [
        (1, 1, "SELECT 1"),
        (3, 3, "SELECT 2"),
    ]


# ---- errors ----------------------------------------------------------------------------------


def test_syntax_error_names_file_line_and_column_after_non_ascii() -> None:
    text = "-- ☕☕ café\nSELECT 'naïve';\n  CREATE TABLE t (a int);\n  SELEC x;\n"
    with pytest.raises(SourceError) as info:
        parse(text, "db/000001_init.up.sql")
    assert info.value.problems == ['db/000001_init.up.sql:4:3: syntax error at or near "SELEC"']
    assert "db/000001_init.up.sql:4:3" in str(info.value)


def test_syntax_error_at_end_of_input_points_at_the_end() -> None:
    with pytest.raises(SourceError) as info:
        parse("SELECT 'é';\nSELECT 1 +", "x.sql")
    assert info.value.problems == ["x.sql:2:11: syntax error at end of input"]


def test_unterminated_string_is_located() -> None:
    with pytest.raises(SourceError) as info:
        parse("SELECT 1;\nSELECT 'é", "x.sql")
    assert info.value.problems[0].startswith("x.sql:2:8: unterminated quoted string")


def test_nul_character_is_refused_not_silently_truncated() -> None:
    with pytest.raises(SourceError) as info:
        parse("SELECT 1;\n\x00DROP TABLE t;", "x.sql")
    assert info.value.problems == ["x.sql:2:1: the file contains a NUL character"]


def test_decode_strips_bom() -> None:
    data = "\ufeffSELECT 'é';".encode()
    assert data.startswith(b"\xef\xbb\xbf")
    assert decode(data, "x.sql") == "SELECT 'é';"
    assert decode(b"", "x.sql") == ""


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_decode_rejects_non_utf8_naming_byte_and_line(bom: bytes) -> None:
    data = bom + "SELECT 'é';\n-- ".encode() + "café".encode("latin-1")
    offset = data.index(b"\xe9", len(bom) + 10)
    with pytest.raises(SourceError) as info:
        decode(data, "m/1_a.up.sql")
    (problem,) = info.value.problems
    assert problem.startswith("m/1_a.up.sql is not valid UTF-8")
    assert f"byte 0xe9 at byte offset {offset} (line 2)" in problem
    assert "UTF-8" in (info.value.hint or "")


# ---- transactions ----------------------------------------------------------------------------


def test_explicit_transaction_control_disables_the_wrapping_transaction() -> None:
    sql = parse("BEGIN;\nCREATE TABLE t (a int);\nSAVEPOINT s;\nCOMMIT;\n", "x.sql")
    assert [s.transaction_control for s in sql.statements] == [True, False, True, True]
    assert not any(s.non_transactional for s in sql.statements)
    assert not sql.runs_in_transaction
    for text in ("START TRANSACTION", "END", "ROLLBACK", "RELEASE s", "COMMIT PREPARED 'x'"):
        assert parse(text, "x.sql").statements[0].transaction_control, text


def test_plain_file_runs_in_transaction() -> None:
    sql = parse("CREATE TABLE t (a int);\nCREATE INDEX ON t (a);\nANALYZE t;", "x.sql")
    assert sql.runs_in_transaction


# (sql, refused in a transaction block, the server can check it here)
CASES: list[tuple[str, bool, bool]] = [
    ("CREATE INDEX CONCURRENTLY i1 ON t (a)", True, True),
    ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i1 ON t (a)", True, True),
    ("CREATE INDEX i1 ON t (a)", False, True),
    ("DROP INDEX CONCURRENTLY t_a", True, True),
    ("DROP INDEX t_a", False, True),
    ("REINDEX INDEX CONCURRENTLY t_a", True, True),
    ("REINDEX (CONCURRENTLY) TABLE t", True, True),
    ("REINDEX (CONCURRENTLY false) TABLE t", False, True),
    ("REINDEX TABLE t", False, True),
    ("REINDEX SCHEMA public", True, True),
    ("REINDEX DATABASE {db}", True, True),  # the name is optional only from PostgreSQL 16
    ("VACUUM", True, True),
    ("VACUUM t", True, True),
    ("VACUUM (ANALYZE) t", True, True),
    ("ANALYZE t", False, True),
    ("ANALYZE", False, True),
    ("CREATE DATABASE thv_never_created", True, True),
    ("DROP DATABASE IF EXISTS thv_never_created", True, True),
    ("ALTER DATABASE CURRENT SET TABLESPACE pg_default", True, False),
    ("ALTER DATABASE {db} SET TABLESPACE pg_default", True, True),
    ("ALTER DATABASE {db} SET work_mem = '1MB'", False, True),
    ("CREATE TABLESPACE ts LOCATION '/nonexistent'", True, True),
    ("DROP TABLESPACE IF EXISTS ts", True, True),
    ("ALTER SYSTEM SET work_mem = '4MB'", True, True),
    ("CREATE SUBSCRIPTION s CONNECTION 'host=/nx' PUBLICATION pub", True, True),
    ("CREATE SUBSCRIPTION s CONNECTION '' PUBLICATION pub WITH (connect = false)", False, True),
    ("CREATE SUBSCRIPTION s CONNECTION '' PUBLICATION pub WITH (create_slot = off)", False, False),
    ("DROP SUBSCRIPTION sub", True, True),
    ("ALTER SUBSCRIPTION sub REFRESH PUBLICATION", True, False),
    ("ALTER SUBSCRIPTION sub SET PUBLICATION pub", True, False),
    ("ALTER SUBSCRIPTION sub SET PUBLICATION pub WITH (refresh = false)", False, True),
    ("ALTER SUBSCRIPTION sub SET (failover = true)", True, False),
    ("ALTER SUBSCRIPTION sub DISABLE", False, True),
    ("CLUSTER", True, True),
    ("CLUSTER t USING t_a", False, True),
    ("DISCARD ALL", True, True),
    ("DISCARD PLANS", False, True),
    ("ALTER TYPE mood ADD VALUE 'meh'", False, True),
    ("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY", True, True),
    ("ALTER TABLE p DETACH PARTITION p1", False, True),
    ("DO $$BEGIN FOR i IN 1..2 LOOP IF i > 1 THEN COMMIT; END IF; END LOOP; END$$", True, True),
    ("DO LANGUAGE plpgsql $$BEGIN ROLLBACK; END$$", True, True),
    ("DO $$BEGIN PERFORM 1; END$$", False, True),
    ("DO $$BEGIN PERFORM 1; END$$ LANGUAGE sql", False, False),
    ("CREATE PROCEDURE pr() LANGUAGE plpgsql AS $$BEGIN COMMIT; END$$", False, True),
]


# cannot run inside a transaction block; invalid transaction termination (DO ... COMMIT)
REFUSALS = ("25001", "2D000")


@pytest.mark.parametrize(("text", "refused", "_server"), CASES)
def test_non_transactional_statements(text: str, refused: bool, _server: bool) -> None:
    sql = parse(text.format(db="d"), "x.sql")
    (statement,) = sql.statements
    assert statement.non_transactional is refused
    assert not statement.transaction_control
    assert sql.runs_in_transaction is not refused


def test_classification_matches_the_server(database: TestDatabase) -> None:
    """Run each case inside a transaction block: the server refuses exactly the flagged ones."""
    with database.connect() as conn:
        if conn.execute("SELECT current_setting('is_superuser')").fetchone() != ("on",):
            pytest.skip("needs a superuser (subscriptions, ALTER SYSTEM)")
        conn.execute(
            "CREATE TABLE t (a int); CREATE INDEX t_a ON t (a); CREATE TYPE mood AS ENUM ('ok');"
            "CREATE TABLE p (a int) PARTITION BY RANGE (a);"
            "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);"
            "CREATE PUBLICATION pub FOR TABLE t;"
            "CREATE SUBSCRIPTION sub CONNECTION 'host=/nonexistent' PUBLICATION pub"
            " WITH (connect = false)"
        )
        wrong = []
        for text, refused, server in CASES:
            if not server:
                continue
            query = text.format(db=database.name)
            conn.execute("BEGIN")
            try:
                conn.execute(query)
                outcome = None
            except psycopg.Error as exc:
                outcome = exc.sqlstate
            finally:
                conn.execute("ROLLBACK")
            if (outcome in REFUSALS) is not refused or outcome not in (None, *REFUSALS):
                wrong.append((query, outcome))
        conn.execute("ALTER SUBSCRIPTION sub SET (slot_name = NONE); DROP SUBSCRIPTION sub")
    assert wrong == []


# ---- positions -------------------------------------------------------------------------------


def test_server_error_position_maps_to_file_line_and_column(database: TestDatabase) -> None:
    text = (
        "-- Ünïcode comment ☕ before everything 🐘\n"
        'CREATE TABLE "naïve" (\n'
        "    id int, note text DEFAULT 'café; ☕'\n"
        ");\n"
        "/* ☕ */ SELECT 'ünï;cöde' AS a,\n"
        "       id\n"
        "  FROM no_such_table;\n"
        "SELECT 'ä', 'ö',\n"
        '       nope FROM "naïve";\n'
    )
    sql = parse(text, "db/000002_x.up.sql")
    assert len(sql.statements) == 3
    seen = []
    with database.connect() as conn:
        for statement in sql.statements:
            try:
                conn.execute(statement.text)
            except psycopg.Error as exc:
                position = exc.diag.statement_position
                assert position is not None
                seen.append(sql.location(statement, int(position)))
    assert seen == ["db/000002_x.up.sql:7:8", "db/000002_x.up.sql:9:8"]


def test_location_without_position_is_the_statement_start() -> None:
    sql = parse("-- é\n\n   SELECT 1;", "a.sql")
    (statement,) = sql.statements
    assert sql.location(statement, None) == "a.sql:3:4"
    assert sql.location(statement, 1) == "a.sql:3:4"
    assert sql.location(statement, 8) == "a.sql:3:11"
    assert sql.location(statement, 99) == "a.sql:3:11"  # clamped to the statement


def test_importing_sqlfile_does_not_import_pglast() -> None:
    code = "import sys, thv_registry.migrations.engine.sqlfile; print('pglast' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
