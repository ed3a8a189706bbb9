"""lockinfo: statement -> table locks and rewrite, from the parse tree (no database needed)."""

from __future__ import annotations

import pytest

from thv_registry.migrations.engine import sqlfile
from thv_registry.migrations.engine.lockinfo import (
    LOCK_MODES,
    StatementLocks,
    TableLock,
    analyze,
    analyze_sql,
)

AX, SRX, SH, SUX = "ACCESS EXCLUSIVE", "SHARE ROW EXCLUSIVE", "SHARE", "SHARE UPDATE EXCLUSIVE"
RX, RS, AS, EX = "ROW EXCLUSIVE", "ROW SHARE", "ACCESS SHARE", "EXCLUSIVE"

# statement, expected locks as (mode, relation) in order, expected rewrites
CASES: list[tuple[str, list[tuple[str, str]], bool | None]] = [
    # CREATE TABLE: nothing on existing tables except what its foreign keys reference
    ("CREATE TABLE t (id bigint PRIMARY KEY)", [], False),
    (
        "CREATE TABLE t (a int REFERENCES p, b int, FOREIGN KEY (b) REFERENCES app.q (id))",
        [(SRX, "p"), (SRX, "app.q")],
        False,
    ),
    ("CREATE TABLE c PARTITION OF p FOR VALUES IN (1)", [(AX, "p")], False),
    ("CREATE TABLE c () INHERITS (p)", [(SUX, "p")], False),
    ("CREATE TABLE c (LIKE p INCLUDING ALL)", [(AS, "p")], False),
    ("DROP TABLE a, app.b", [(AX, "a"), (AX, "app.b")], False),
    # ALTER TABLE
    ("ALTER TABLE t ADD COLUMN x text", [(AX, "t")], False),
    ("ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT 0", [(AX, "t")], False),
    ("ALTER TABLE t ADD COLUMN x timestamptz DEFAULT now()", [(AX, "t")], False),
    ("ALTER TABLE t ADD COLUMN x jsonb DEFAULT '{}'::jsonb", [(AX, "t")], False),
    ("ALTER TABLE t ADD COLUMN x double precision DEFAULT random()", [(AX, "t")], True),
    ("ALTER TABLE t ADD COLUMN x timestamptz DEFAULT clock_timestamp()", [(AX, "t")], True),
    ("ALTER TABLE t ADD COLUMN x uuid DEFAULT gen_random_uuid()", [(AX, "t")], True),
    ("ALTER TABLE t ADD COLUMN x uuid DEFAULT pg_catalog.gen_random_uuid()", [(AX, "t")], True),
    ("ALTER TABLE t ADD COLUMN x int DEFAULT my_func()", [(AX, "t")], None),
    ("ALTER TABLE t ADD COLUMN x bigserial", [(AX, "t")], True),
    ("ALTER TABLE t ADD COLUMN x int GENERATED ALWAYS AS IDENTITY", [(AX, "t")], True),
    ("ALTER TABLE t ADD COLUMN x int GENERATED ALWAYS AS (a * 2) STORED", [(AX, "t")], True),
    ("ALTER TABLE t ADD COLUMN p_id int REFERENCES p (id)", [(AX, "t"), (SRX, "p")], False),
    ("ALTER TABLE t ALTER COLUMN a TYPE bigint", [(AX, "t")], None),
    ("ALTER TABLE t ALTER COLUMN a SET DATA TYPE varchar(200)", [(AX, "t")], None),
    ("ALTER TABLE t ALTER COLUMN a TYPE bigint USING a::bigint", [(AX, "t")], True),
    ("ALTER TABLE t ALTER COLUMN a SET NOT NULL", [(AX, "t")], False),
    ("ALTER TABLE t ALTER COLUMN a SET DEFAULT 1", [(AX, "t")], False),
    ("ALTER TABLE t DROP COLUMN a", [(AX, "t")], False),
    ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)", [(AX, "t")], False),
    ("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a)", [(AX, "t")], False),
    (
        "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES p",
        [(SRX, "t"), (SRX, "p")],
        False,
    ),
    (
        "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES p NOT VALID",
        [(SRX, "t"), (SRX, "p")],
        False,
    ),
    ("ALTER TABLE t VALIDATE CONSTRAINT f", [(SUX, "t")], False),
    ("ALTER TABLE t ALTER COLUMN a SET STATISTICS 500", [(SUX, "t")], False),
    ("ALTER TABLE t SET (fillfactor = 70, autovacuum_enabled = off)", [(SUX, "t")], False),
    ("ALTER TABLE t CLUSTER ON t_pkey", [(SUX, "t")], False),
    ("ALTER TABLE t DISABLE TRIGGER USER", [(SRX, "t")], False),
    # the strongest lock of the subcommands wins
    ("ALTER TABLE t ALTER COLUMN a SET STATISTICS 5, ADD COLUMN b int", [(AX, "t")], False),
    ("ALTER TABLE t VALIDATE CONSTRAINT f, ALTER a TYPE int USING 1", [(AX, "t")], True),
    ("ALTER TABLE t SET LOGGED", [(AX, "t")], True),
    ("ALTER TABLE t SET TABLESPACE fast", [(AX, "t")], True),
    ("ALTER TABLE p ATTACH PARTITION c FOR VALUES IN (1)", [(SUX, "p"), (AX, "c")], False),
    ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", [(SUX, "p"), (SUX, "c")], False),
    ("ALTER TABLE t RENAME TO u", [(AX, "t")], False),
    ("ALTER TABLE t RENAME COLUMN a TO b", [(AX, "t")], False),
    ("ALTER INDEX i RENAME TO j", [(SUX, "i")], False),
    ("ALTER TABLE t SET SCHEMA other", [(AX, "t")], False),
    # indexes and maintenance
    ("CREATE INDEX i ON app.t (a)", [(SH, "app.t")], False),
    ("CREATE UNIQUE INDEX CONCURRENTLY i ON t (a)", [(SUX, "t")], False),
    ("DROP INDEX i", [(AX, "i")], False),
    ("DROP INDEX CONCURRENTLY app.i", [(SUX, "app.i")], False),
    ("REINDEX TABLE t", [(SH, "t")], False),
    ("REINDEX INDEX CONCURRENTLY i", [(SUX, "i")], False),
    ("VACUUM FULL t", [(AX, "t")], True),
    ("VACUUM (FULL, ANALYZE) t", [(AX, "t")], True),
    ("VACUUM t", [(SUX, "t")], False),
    ("ANALYZE t", [(SUX, "t")], False),
    ("CLUSTER t USING t_pkey", [(AX, "t")], True),
    ("TRUNCATE a, b", [(AX, "a"), (AX, "b")], False),
    ("REFRESH MATERIALIZED VIEW m", [(AX, "m")], True),
    ("REFRESH MATERIALIZED VIEW CONCURRENTLY m", [(EX, "m")], True),
    # data
    ("INSERT INTO t (a) VALUES (1)", [(RX, "t")], False),
    ("INSERT INTO t SELECT * FROM s", [(RX, "t"), (AS, "s")], False),
    ("UPDATE t SET a = u.a FROM u WHERE t.id = u.id", [(RX, "t"), (AS, "u")], False),
    ("DELETE FROM t WHERE id IN (SELECT id FROM gone)", [(RX, "t"), (AS, "gone")], False),
    ("WITH c AS (SELECT 1) SELECT * FROM c, a", [(AS, "a")], False),
    ("SELECT * FROM a JOIN b USING (id) FOR UPDATE OF a", [(RS, "a"), (AS, "b")], False),
    ("SELECT 1", [], False),
    # other objects
    (
        "CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()",
        [(SRX, "t")],
        False,
    ),
    ("DROP TRIGGER tr ON app.t", [(AX, "app.t")], False),
    ("ALTER TYPE e ADD VALUE 'x'", [], False),
    ("CREATE TYPE e AS ENUM ('a', 'b')", [], False),
    ("CREATE TYPE pair AS (a int, b int)", [], False),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", [], False),
    ("CREATE VIEW v AS SELECT * FROM a JOIN app.b USING (id)", [(AS, "a"), (AS, "app.b")], False),
    ("CREATE MATERIALIZED VIEW m AS SELECT * FROM a", [(AS, "a")], False),
    ("COMMENT ON TABLE t IS 'x'", [(SUX, "t")], False),
    ("COMMENT ON COLUMN app.t.c IS 'x'", [(SUX, "app.t")], False),
    ("COMMENT ON TYPE e IS 'x'", [], False),
    ("GRANT SELECT ON t TO reader", [], False),
    ("LOCK TABLE a, b IN SHARE MODE", [(SH, "a"), (SH, "b")], False),
    ("LOCK TABLE a", [(AX, "a")], False),
    ("SET lock_timeout = '5s'", [], False),
    # names as written: quoted where needed
    ('DROP TABLE "Mixed Case", app."x""y"', [(AX, '"Mixed Case"'), (AX, 'app."x""y"')], False),
    # reserved words are quoted too (pglast's quoting), so a name can be pasted back into SQL
    (
        'DROP TABLE "user", app."order", "1st"',
        [(AX, '"user"'), (AX, 'app."order"'), (AX, '"1st"')],
        False,
    ),  # fmt: skip
]


@pytest.mark.parametrize(("sql", "locks", "rewrites"), CASES, ids=[c[0][:60] for c in CASES])
def test_locks_and_rewrites(sql: str, locks: list[tuple[str, str]], rewrites: bool | None) -> None:
    result = analyze_sql(sql)
    assert [(lock.mode, lock.relation) for lock in result.locks] == locks
    assert result.rewrites is rewrites
    assert all(lock.mode in LOCK_MODES for lock in result.locks)


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("ALTER TABLE t ALTER COLUMN a SET NOT NULL", "scans the whole table"),
        ("ALTER TABLE t ALTER COLUMN a TYPE text", "unless binary-compatible"),
        ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)", "every row"),
        ("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES p", "NOT VALID"),
        ("DROP INDEX i", "the relation shown is the index"),
        ("ALTER TYPE e ADD VALUE 'x'", "no table lock"),
        ("GRANT SELECT ON t TO r", "no table lock"),
    ],
)
def test_notes_explain(sql: str, words: str) -> None:
    assert words in (analyze_sql(sql).note or "")


@pytest.mark.parametrize(
    "sql", ["DO $$ BEGIN NULL; END $$", "ALTER SYSTEM SET work_mem = '1MB'", "this is not sql"]
)
def test_unknown_is_not_analysed(sql: str) -> None:
    assert analyze_sql(sql) == StatementLocks((), None, "not analysed")


def test_what_the_catalog_can_settle_is_asked() -> None:
    drop = analyze_sql("ALTER TABLE child DROP CONSTRAINT child_fk")
    (question,) = drop.questions
    assert (question.kind, question.relation, question.name) == ("constraint", "child", "child_fk")
    assert drop.notes == (question.note,) and drop.note == question.note
    tables = analyze_sql("DROP TABLE a, app.b")
    assert [(q.kind, q.relation) for q in tables.questions] == [
        ("foreign_keys", "a"),
        ("foreign_keys", "app.b"),
    ]
    assert len(tables.notes) == 1  # one note for both, one question each


@pytest.mark.parametrize(
    "sql", ["CREATE ROLE r LOGIN PASSWORD 'x'", "ALTER ROLE r PASSWORD NULL", "DROP ROLE r"]
)
def test_role_statements_take_no_table_lock(sql: str) -> None:
    assert analyze_sql(sql) == StatementLocks((), False, None)


def test_analyze_takes_parsed_statements() -> None:
    text = (
        "-- a migration\nCREATE TABLE b (id int REFERENCES a);\n"
        "CREATE INDEX CONCURRENTLY b_id ON b (id);\n"
    )
    parsed = sqlfile.parse(text, "x.up.sql")
    results = [analyze(s) for s in parsed.statements]
    assert results[0].locks == (TableLock("SHARE ROW EXCLUSIVE", "a"),)
    assert results[1].locks == (TableLock("SHARE UPDATE EXCLUSIVE", "b"),)


def test_project_init_migration_locks_no_existing_table_but_referenced_ones() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "database/migrations/000001_init.up.sql"
    parsed = sqlfile.parse(path.read_text(), str(path))
    for statement in parsed.statements:
        result = analyze(statement)
        assert result.note != "not analysed", statement.text
        assert result.rewrites is False
        assert {lock.mode for lock in result.locks} <= {SRX, SH}


def test_one_source_of_truth_for_lock_modes() -> None:
    from thv_registry.migrations.engine import lock, lockmodes

    assert LOCK_MODES is lockmodes.LOCK_MODES
    assert vars(lock)["conflicts"] is lockmodes.conflicts
    ax, ash = lockmodes.LOCK_MODES[-1], lockmodes.LOCK_MODES[0]
    assert all(lockmodes.conflicts(ax, held) for held in LOCK_MODES)
    assert [m for m in LOCK_MODES if lockmodes.conflicts(ash, m)] == [ax]
    assert not lockmodes.conflicts("ROW EXCLUSIVE", "ROW EXCLUSIVE")  # writers share a table
    assert lockmodes.conflicts("SHARE UPDATE EXCLUSIVE", "SHARE UPDATE EXCLUSIVE")
    for mode in LOCK_MODES:  # the table is symmetric, as PostgreSQL's is
        for other in LOCK_MODES:
            assert lockmodes.conflicts(mode, other) == lockmodes.conflicts(other, mode)
    assert lockmodes.from_server("ShareRowExclusiveLock") == "SHARE ROW EXCLUSIVE"
    assert lockmodes.from_server("SIReadLock") == "SIReadLock"
    assert not lockmodes.conflicts(ax, "SIReadLock")
    assert lockmodes.strongest("ROW SHARE", "SHARE") == "SHARE"
