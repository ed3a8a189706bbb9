"""A database URL (``postgresql://user:password@host:port/dbname?sslmode=...``) -> ConnectionParams.

The URL is parsed by libpq's own parser (``psycopg.conninfo.conninfo_to_dict``), never by hand;
every message shows it with its password masked (:func:`thv_registry.redact.mask_url`).
"""

from __future__ import annotations

import getpass

from thv_registry.db.connect import ConnectionParams
from thv_registry.errors import UsageError
from thv_registry.redact import mask_url, redact

__all__ = ["params_from_url", "URL_SCHEMES", "URL_PARAMETERS", "URL_DEFAULT_SSLMODE"]

URL_SCHEMES = ("postgresql://", "postgres://")
#: the connection parameters a URL may carry (what ConnectionParams holds)
URL_PARAMETERS = ("host", "port", "user", "password", "dbname", "sslmode")
#: libpq's own default when the URL names no sslmode
URL_DEFAULT_SSLMODE = "prefer"


def params_from_url(url: str) -> ConnectionParams:
    """The connection a ``postgresql://`` URL names; a ``UsageError`` (password masked) if the
    URL is not one, libpq cannot parse it, or it names a parameter this tool does not pass on.

    Left out of the URL: port 5432, the operating-system user (as libpq), the database named
    like the user (as libpq), sslmode ``prefer`` (libpq's default). The host is required.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    shown = mask_url(url)
    if not url.lower().startswith(URL_SCHEMES):
        raise UsageError(
            f"The database URL {shown!r} is not a PostgreSQL URL: it must start with "
            "postgresql:// (or postgres://), e.g. postgresql://migrator@db.internal:5432/"
            "toolhive_registry?sslmode=require."
        )
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        why = redact(" ".join(str(exc).split()), _raw_password(url))
        raise UsageError(f"The database URL {shown!r} cannot be parsed: {why}.") from None
    password = info.get("password")
    unknown = sorted(set(info) - set(URL_PARAMETERS))
    if unknown:
        raise UsageError(
            f"The database URL {shown!r} sets {', '.join(unknown)}, which this tool does not "
            f"pass on (a URL may set: {', '.join(URL_PARAMETERS)}); nothing was run.",
            hint="Set other connection settings through libpq's environment variables "
            "(PGCONNECT_TIMEOUT, PGSSLROOTCERT, ...), which every connection reads.",
        )
    host = str(info.get("host") or "")
    if not host:
        raise UsageError(f"The database URL {shown!r} names no host: add one (@host:port).")
    port_text = str(info.get("port") or "5432")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UsageError(
            f"The database URL {shown!r} has port {port_text!r}: it must be one number from 1 "
            "to 65535."
        )
    sslmode = str(info.get("sslmode") or URL_DEFAULT_SSLMODE).lower()
    from thv_registry.config.database import SSL_MODES

    if sslmode not in SSL_MODES:
        raise UsageError(
            f"The database URL {shown!r} has sslmode={sslmode}: it must be one of "
            f"{', '.join(SSL_MODES)}."
        )
    user = str(info.get("user") or getpass.getuser())
    return ConnectionParams(
        host=host,
        port=int(port_text),
        user=user,
        dbname=str(info.get("dbname") or user),
        sslmode=sslmode,
        password=str(password) if password else None,
    )


def _raw_password(url: str) -> str | None:
    """The password as written in the URL (still percent-encoded), to mask it in messages."""
    masked = mask_url(url)
    if masked == url:
        return None
    # the first difference is where the password starts; it ends where the masked text resumes
    start = next(i for i, (a, b) in enumerate(zip(url, masked, strict=False)) if a != b)
    rest = masked[start:].removeprefix("********")
    end = len(url) - len(rest)
    return url[start:end] or None
