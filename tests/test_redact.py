"""One password masker for every message: connection errors, pg_dump, other sessions' queries."""

from __future__ import annotations

import pytest

from thv_registry.migrations.engine.lock import shown_query
from thv_registry.redact import MASK, mask_password_literals, redact


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("password=s3cret host=h", ("s3cret",), f"password={MASK} host=h"),
        ("nothing to hide", ("s3cret",), "nothing to hide"),
        ("no secret given", (None, ""), "no secret given"),
        # as libpq quotes it in a conninfo string: backslash and quote escaped
        ("password='it\\'s' x", ("it's",), f"password='{MASK}' x"),
        ("a=one b=two", ("one", "two"), f"a={MASK} b={MASK}"),
        ("abcabc", ("abc", "abcabc"), MASK),  # the longest form first: no half-masked rest
    ],
)
def test_redact(text: str, secrets: tuple[str | None, ...], expected: str) -> None:
    assert redact(text, *secrets) == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ALTER ROLE app PASSWORD 'x'", f"ALTER ROLE app PASSWORD '{MASK}'"),
        (
            "create user u with password E'a\\'b' login",
            f"create user u with password '{MASK}' login",
        ),
        (
            "ALTER ROLE app PASSWORD 'it''s'; SELECT 'kept'",
            f"ALTER ROLE app PASSWORD '{MASK}'; SELECT 'kept'",
        ),
        # pg_stat_activity cut the query inside the literal: still masked
        ("ALTER ROLE app PASSWORD 'half-a-secr", f"ALTER ROLE app PASSWORD '{MASK}'"),
        ("ALTER ROLE app PASSWORD NULL", "ALTER ROLE app PASSWORD NULL"),
        # dollar quotes, with and without a tag, across lines, and cut short
        ("ALTER ROLE a PASSWORD $$x'y$$ LOGIN", f"ALTER ROLE a PASSWORD '{MASK}' LOGIN"),
        ("CREATE ROLE a PASSWORD $pw$s$$e\ncret$pw$;", f"CREATE ROLE a PASSWORD '{MASK}';"),
        ("CREATE ROLE a PASSWORD $pw$half-a-sec", f"CREATE ROLE a PASSWORD '{MASK}'"),
        (
            "create user u encrypted password 'x' valid until 'infinity'",
            f"create user u encrypted password '{MASK}' valid until 'infinity'",
        ),
        # not a role's password: a column named password keeps its value
        ("UPDATE users SET password = 'x'", "UPDATE users SET password = 'x'"),
    ],
)
def test_mask_password_literals(sql: str, expected: str) -> None:
    assert mask_password_literals(sql) == expected


def test_lock_messages_mask_with_the_same_helper() -> None:
    long = "ALTER ROLE app PASSWORD 'sup3r-secret-value' " + "x" * 300
    shown = shown_query(long, 80)
    assert "sup3r" not in shown and MASK in shown and len(shown) == 80
