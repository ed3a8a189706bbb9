"""golang-migrate's advisory lock id, with its published test vectors."""

from __future__ import annotations

from thv_registry.migrations.lock import advisory_lock_id, lock_key


def test_golang_migrate_published_vectors() -> None:
    assert advisory_lock_id("database_name") == 1764327054
    assert advisory_lock_id("database_name", "schema_name_1") == 2453313553


def test_url_path_form_hashes_the_leading_slash() -> None:
    assert lock_key("public", "schema_migrations", "gmtest") == 3321785894
    assert advisory_lock_id("/gmtest", "public", "schema_migrations") == 3321785894


def test_key_fits_32_bits() -> None:
    for name in ("a", "toolhive_registry", "x" * 200):
        assert 0 <= lock_key("public", "schema_migrations", name) < 2**32
