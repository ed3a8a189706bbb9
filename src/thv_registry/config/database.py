"""The ``database:`` block (the Go server's keys) and our ``migrations:`` block (lock tuning)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import Meta

from thv_registry.config.base import Model, Secret
from thv_registry.migrations.engine.migrator import (
    DEFAULT_LOCK_RETRIES,
    DEFAULT_LOCK_TIMEOUT_MS,
    DEFAULT_LOCK_WAIT_S,
    DEFAULT_STATEMENT_TIMEOUT_MS,
)

__all__ = [
    "DatabaseSettings",
    "MigrationSettings",
    "SSL_MODES",
    "PASSWORD_ENV",
    "MIGRATION_PASSWORD_ENV",
    "DEFAULT_MAX_META_SIZE",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_KEEP_BACKUPS",
    "valid_host",
]

PASSWORD_ENV = "THV_REGISTRY_DATABASE_PASSWORD"
MIGRATION_PASSWORD_ENV = "THV_REGISTRY_DATABASE_MIGRATIONPASSWORD"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_MAX_META_SIZE = 262144  #: the Go server's cap on a publisher's _meta (256 KiB)
DEFAULT_CONNECT_TIMEOUT_S = 10  #: libpq's connect_timeout for every connection
DEFAULT_KEEP_BACKUPS = 10  #: pre-revert backups kept per database (0: all)
#: a schema name usable in search_path as it is: a plain, lower-case SQL identifier
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?$")
_ROLE = Meta(min_length=1, description="a role name")
_PASSWORD = Meta(description="a password", extra=Secret)
_COUNT = Meta(ge=0, le=2**31 - 1, description="a whole number, 0 or more")


class DatabaseSettings(Model, frozen=True, kw_only=True):
    """The ``database:`` block, as the Go server reads it (plus the two password keys).

    Empty optional text (``password: ""``) means unset; ``sslmode`` is lower-cased.
    """

    host: Annotated[str, Meta(description="a host name, an IP address or a Unix-socket directory")]
    port: Annotated[int, Meta(ge=1, le=65535, description="an integer from 1 to 65535")] = 5432
    user: Annotated[str, _ROLE]
    migration_user: Annotated[str, _ROLE] | None = None  #: default: ``user``
    password: Annotated[str, _PASSWORD] | None = None  #: None: libpq reads ~/.pgpass
    migration_password: Annotated[str, _PASSWORD] | None = None  #: default: ``password``
    database: Annotated[str, Meta(min_length=1, description="a database name")]
    sslmode: Annotated[str, Meta(description="one of " + ", ".join(SSL_MODES))] = "require"
    #: the group role prime-db grants the schema to (None: toolhive_registry_server); roles are
    #: cluster-wide, so each database of a server should have its own
    app_role: Annotated[str, Meta(description="a role name (an identifier)")] | None = None
    #: seconds libpq waits for the server to answer a connection attempt (``connect_timeout``)
    connect_timeout: Annotated[
        int, Meta(ge=1, le=3600, description="a whole number of seconds from 1 to 3600")
    ] = DEFAULT_CONNECT_TIMEOUT_S
    # The Go server's pool and API settings (serve).
    max_open_conns: Annotated[int, _COUNT] | None = None  #: pool size; None/0: the default
    max_idle_conns: Annotated[int, _COUNT] | None = None  #: connections kept open (min size)
    conn_max_lifetime: timedelta | None = None  #: None: connections live as long as they work
    max_meta_size: Annotated[
        int, Meta(gt=0, le=2**31 - 1, description="a number of bytes greater than 0")
    ] = DEFAULT_MAX_META_SIZE
    #: AWS RDS IAM authentication: refused with an explanation (see :meth:`problems`).
    dynamic_auth: Any = None

    def __post_init__(self) -> None:
        if self.sslmode.lower() != self.sslmode:
            msgspec.structs.force_setattr(self, "sslmode", self.sslmode.lower())

    def __repr__(self) -> str:  # never the passwords
        shown = {k: v for k, v in msgspec.structs.asdict(self).items() if "password" not in k}
        return f"DatabaseSettings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    field_checks: ClassVar[Mapping[str, Callable[[Any], str | None]]] = {
        "host": lambda v: valid_host(v),
        "sslmode": lambda v: None if v.lower() in SSL_MODES else (
            f"must be one of {', '.join(SSL_MODES)}; got {v!r}"
        ),
        "conn_max_lifetime": lambda v: "must not be negative" if v < timedelta(0) else None,
        "app_role": lambda v: _role_problem(v),
        "dynamic_auth": lambda v: None if v is None else (
            "(AWS RDS IAM authentication) is not supported by this tool; remove it and give the "
            f"password with database.migrationPassword, {MIGRATION_PASSWORD_ENV} or ~/.pgpass"
        ),
    }  # fmt: skip


class MigrationSettings(Model, frozen=True):
    """The optional ``migrations:`` block: lock tuning, timeouts, the schema, files written."""

    lock_wait_seconds: Annotated[
        float,
        Meta(ge=0, le=86400, description="a number of seconds from 0 (do not wait) to 86400"),
    ] = DEFAULT_LOCK_WAIT_S
    lock_timeout_ms: Annotated[
        int,
        Meta(
            ge=0, le=2**31 - 1, description="a whole number of milliseconds, 0 (no timeout) or more"
        ),
    ] = DEFAULT_LOCK_TIMEOUT_MS
    lock_retries: Annotated[int, Meta(ge=0, le=100, description="a whole number from 0 to 100")] = (
        DEFAULT_LOCK_RETRIES
    )
    #: statement_timeout of the statements of each step (0: not set, the server's applies)
    statement_timeout_ms: Annotated[
        int,
        Meta(ge=0, le=2**31 - 1, description="a whole number of milliseconds, 0 (not set) or more"),
    ] = DEFAULT_STATEMENT_TIMEOUT_MS
    #: the schema of the migrated objects and the state tables (the session's search_path);
    #: None: the server's search_path (normally public)
    schema: Annotated[str, Meta(description="a schema name")] | None = None
    #: write the schema (migrate dump-schema) to this file after every up/down that ran;
    #: a relative path is taken from the configuration file's directory
    dump_schema: Annotated[str, Meta(min_length=1, description="a file path")] | None = None
    #: pre-revert backups of a database kept in the backup directory (0: keep all)
    keep_backups: Annotated[int, _COUNT] = DEFAULT_KEEP_BACKUPS

    field_checks: ClassVar[Mapping[str, Callable[[Any], str | None]]] = {
        "schema": lambda v: None if _SCHEMA.match(v) else (
            "must be a plain lower-case schema name (letters a-z, digits and _, not starting "
            f"with a digit, at most 63 characters); got {v!r}"
        ),
    }  # fmt: skip


def _role_problem(value: str) -> str | None:
    from thv_registry.db.roles import role_name_problem  # imports nothing heavy

    problem = role_name_problem(value)
    return f"{problem}; got {value!r}" if problem else None


def valid_host(value: str) -> str | None:
    """Why ``value`` is not a usable ``database.host`` (None: it is)."""
    if not value:
        return "must not be empty"
    for part in value.split(","):  # libpq accepts a comma-separated list of hosts
        if part.startswith("/") or _HOSTNAME.match(part) or _is_ip(part):
            continue
        return (
            f"must be a host name, an IP address or an absolute Unix-socket directory "
            f"(starting with /); got {value!r}"
        )
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
