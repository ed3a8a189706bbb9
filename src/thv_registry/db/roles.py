"""The names and passwords prime-db accepts: checked before anything reaches the server.

``role_name_problem`` is also the check of the config's ``database.appRole``. Imports nothing
heavy.
"""

from __future__ import annotations

import re

from thv_registry.errors import UsageError

__all__ = ["role_name_problem", "check_role", "check_username", "check_password"]

_MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: longer names are truncated by the server
_RESERVED = {"public", "none"}  # refused by CREATE ROLE even when quoted, like pg_*
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def role_name_problem(role: str) -> str | None:
    """Why ``role`` is not usable as the application's group role (None: it is).

    An identifier PostgreSQL takes without quotes in any case (letters, digits, ``_``, ``$``,
    not starting with a digit), at most 63 bytes, not reserved.
    """
    if not _IDENTIFIER.match(role):
        return "must be an identifier: letters, digits, '_' and '$', starting with a letter or '_'"
    if len(role.encode()) > _MAX_NAME_BYTES:
        return f"is longer than {_MAX_NAME_BYTES} bytes, which PostgreSQL would truncate"
    if role.lower().startswith("pg_") or role.lower() in _RESERVED:
        return "is reserved by PostgreSQL (names starting with pg_, public, none)"
    return None


def check_role(role: str) -> None:
    problem = role_name_problem(role)
    if problem:
        raise UsageError(f"The group role name {role!r} {problem}.", hint="Choose another name.")


def check_username(username: str, role: str) -> None:
    problem = None
    if not username:
        problem = "is empty"
    elif "\0" in username:
        problem = "contains a NUL character, which PostgreSQL names cannot hold"
    elif len(username.encode()) > _MAX_NAME_BYTES:
        problem = f"is longer than {_MAX_NAME_BYTES} bytes, which PostgreSQL would truncate"
    elif username.startswith("pg_") or username.lower() in _RESERVED:
        problem = "is reserved by PostgreSQL (names starting with pg_, public, none)"
    elif username == role:
        problem = f"is the group role itself; the user is made a member of {role}"
    if problem:
        raise UsageError(
            f"The user name {username!r} {problem}.",
            hint="Pass another USERNAME, or set database.user in the configuration.",
        )


def check_password(password: str) -> None:
    if not password:
        raise UsageError(
            "The password is empty; an application user needs one.",
            hint="Give the password on standard input (one line) or at the prompt.",
        )
    if "\0" in password:
        raise UsageError(
            "The password contains a NUL character, which PostgreSQL cannot store.",
            hint="Choose another password.",
        )
