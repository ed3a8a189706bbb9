"""Keep passwords out of everything shown or logged: one mask, one place.

Used for connection errors, pg_dump's messages, other sessions' queries in lock messages, the
masked statements of ``prime-db --dry-run``, and the migration SQL shown by the plan, ``--sql``,
the JSON output and ``--debug`` logs. Imports nothing heavy.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact", "mask_password_literals", "mask_url"]

#: what stands for a password wherever one would have been shown
MASK = "********"

#: a string literal after a PASSWORD keyword (CREATE/ALTER ROLE/USER ... PASSWORD '...'), also
#: E'...', literals with doubled quotes or backslash escapes, and dollar quotes ($$...$$,
#: $tag$...$tag$). A regular expression, not the parser: the text may be cut short
#: (pg_stat_activity truncates queries, a plan shows a first line) and must still be masked.
_PASSWORD_LITERAL = re.compile(
    r"(?is)\b(PASSWORD\s+)(?:E?'(?:[^'\\]|''|\\.)*'?|\$([A-Za-z_]\w*|)\$.*?(?:\$\2\$|\Z))"
)

#: the password of a URL's user info (``scheme://user:PASSWORD@host``): as libpq reads a URI,
#: the user info ends at the first ``@`` before any ``/``, and the password starts after its ``:``
_URL_PASSWORD = re.compile(r"(?i)^([a-z][a-z0-9+.-]*://[^@/:]*:)[^@/]*(?=@)")
#: a ``password=`` query parameter of a URL
_URL_PASSWORD_PARAM = re.compile(r"(?i)([?&]password=)[^&#]*")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every secret masked: as given, and as quoted in a libpq conninfo string."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.add(secret)
            forms.add(secret.replace("\\", "\\\\").replace("'", "\\'"))
    for form in sorted(forms, key=len, reverse=True):  # longest first: no half-masked leftovers
        text = text.replace(form, MASK)
    return text


def mask_password_literals(sql: str) -> str:
    """``sql`` with the literal after each PASSWORD keyword replaced by ``'********'``."""
    return _PASSWORD_LITERAL.sub(rf"\1'{MASK}'", sql)


def mask_url(url: str) -> str:
    """``url`` with its password masked: in the user info and in a ``password=`` parameter.

    For showing a connection URL the user gave (``postgresql://app:********@db/registry``); it
    only masks, it does not parse the URL for connecting (libpq does that).
    """
    return _URL_PASSWORD_PARAM.sub(rf"\1{MASK}", _URL_PASSWORD.sub(rf"\1{MASK}", url))
