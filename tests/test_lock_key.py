"""golang-migrate's advisory lock id (its published test vectors); lock holders described."""

from __future__ import annotations

from thv_registry.migrations.engine.lock import (
    LockHolder,
    TableLockHolder,
    advisory_lock_id,
    lock_key,
    shown_query,
)


def test_golang_migrate_published_vectors() -> None:
    assert advisory_lock_id("database_name") == 1764327054
    assert advisory_lock_id("database_name", "schema_name_1") == 2453313553


def test_url_path_form_hashes_the_leading_slash() -> None:
    assert lock_key("public", "schema_migrations", "gmtest") == 3321785894
    assert advisory_lock_id("/gmtest", "public", "schema_migrations") == 3321785894


def test_key_fits_32_bits() -> None:
    for name in ("a", "toolhive_registry", "x" * 200):
        assert 0 <= lock_key("public", "schema_migrations", name) < 2**32


def test_holders_are_described_without_passwords_in_their_queries() -> None:
    """A lock holder's query goes into messages and logs: role passwords in it are masked."""
    query = "ALTER ROLE app WITH LOGIN\n   PASSWORD 's3cr''et; x' VALID UNTIL 'infinity'"
    holder = LockHolder(7, "migrate", "postgres", None, None, "active", query)
    text = holder.describe()
    assert "s3cr" not in text and "PASSWORD '********' VALID UNTIL 'infinity'" in text
    table_holder = TableLockHolder(
        8, "t", "ACCESS SHARE", "psql", "app", None, "active", 1.0, 1.0,
        "CREATE ROLE x ENCRYPTED PASSWORD E'a\\'b' LOGIN",
    )  # fmt: skip
    assert "a\\'b" not in table_holder.describe()
    assert "PASSWORD '********' LOGIN" in table_holder.describe()
    assert shown_query("SELECT   pg_sleep(4)\n", 10) == "SELECT ..."
