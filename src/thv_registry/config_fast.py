"""The CLI's configuration fast path: plainly valid files read without importing pydantic.

:func:`load_config_values` returns the same values as :func:`.config.load_config` (a test compares
them on valid files) as plain dataclasses. Anything unusual or invalid goes through
``load_config``, so pydantic still decides and words every error. Why: building the pydantic
models costs about 100 ms, more than half of a no-op ``migrate up``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from thv_registry.config import (
    DEFAULT_LOCK_RETRIES,
    DEFAULT_LOCK_TIMEOUT_MS,
    DEFAULT_LOCK_WAIT_S,
    MIGRATION_PASSWORD_ENV,
    PASSWORD_ENV,
    SSL_MODES,
    ConnectionParams,
    _database_missing,
    _pairs,
    _Problem,
    _structure,
    load_config,
    valid_host,
)

if TYPE_CHECKING:
    from thv_registry.config_models import Settings

__all__ = ["ConfigValues", "DatabaseValues", "MigrationValues", "load_config_values", "FIELD_KEYS"]


@dataclass(frozen=True)
class DatabaseValues:
    """The ``database:`` block's connection values (what the commands use)."""

    host: str
    port: int
    user: str
    database: str
    sslmode: str
    migration_user: str | None = None
    password: str | None = field(default=None, repr=False)
    migration_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MigrationValues:
    lock_wait_seconds: float = DEFAULT_LOCK_WAIT_S
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    lock_retries: int = DEFAULT_LOCK_RETRIES


@dataclass(frozen=True)
class ConfigValues:
    """A validated configuration as plain values: what :func:`load_config_values` returns."""

    database: DatabaseValues | None
    migrations: MigrationValues = MigrationValues()
    source_path: Path | None = None

    def migration_params(self) -> ConnectionParams:
        """Connect as ``migrationUser`` (default ``user``) with ``migrationPassword``."""
        db = self._database()
        user = db.migration_user or db.user
        return self._params(user, db.migration_password or db.password)

    def app_params(self) -> ConnectionParams:
        """Connect as the application ``user`` with ``password``."""
        return self._params(self._database().user, self._database().password)

    def _params(self, user: str, password: str | None) -> ConnectionParams:
        db = self._database()
        return ConnectionParams(db.host, db.port, user, db.database, db.sslmode, password)

    def _database(self) -> DatabaseValues:
        if self.database is None:
            raise _database_missing(self.source_path)
        return self.database

    @classmethod
    def from_settings(cls, settings: Settings) -> ConfigValues:
        db = settings.database
        m = settings.migrations
        values = None
        if db is not None:
            values = DatabaseValues(
                db.host,
                db.port,
                db.user,
                db.database,
                db.sslmode,
                db.migration_user,
                db.password.get_secret_value() if db.password is not None else None,
                db.migration_password.get_secret_value() if db.migration_password else None,
            )
        tuning = MigrationValues(m.lock_wait_seconds, m.lock_timeout_ms, m.lock_retries)
        return cls(values, tuning, settings.source_path)


def load_config_values(path: Path) -> ConfigValues:
    """:func:`load_config` as plain values, without pydantic when every value is plainly valid.

    The fast path accepts only what the models certainly accept, with the same result (a test
    compares them); any doubt (a problem, an unusual type or key) goes through :func:`load_config`.
    """
    path = Path(path).expanduser()
    data, blocks, problems = _structure(path)
    database = migrations = None
    if not problems:
        database = _fast_block("database", data, blocks.get("database"))
        migrations = _fast_block("migrations", data, blocks.get("migrations"))
    if database is None or migrations is None:
        return ConfigValues.from_settings(load_config(path))
    db = _fast_database(database[1]) if database[0] else None
    tuning = _fast_migrations(migrations[1]) if migrations[0] else MigrationValues()
    if (database[0] and db is None) or tuning is None:
        return ConfigValues.from_settings(load_config(path))
    if db is not None:
        password = os.environ.get(PASSWORD_ENV) or db.password
        migration_password = os.environ.get(MIGRATION_PASSWORD_ENV) or db.migration_password
        db = DatabaseValues(
            db.host, db.port, db.user, db.database, db.sslmode, db.migration_user,
            password, migration_password,
        )  # fmt: skip
    return ConfigValues(db, tuning, path)


# -- the fast path: plain valid values, no pydantic -----------------------------------------------

#: Each field's key spellings, as the models' aliases give them (a test checks they agree).
FIELD_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "database": {
        "host": ("host",),
        "port": ("port",),
        "user": ("user",),
        "migration_user": ("migrationUser",),
        "password": ("password",),
        "migration_password": ("migrationPassword",),
        "database": ("database",),
        "sslmode": ("sslmode", "sslMode"),
        "max_open_conns": ("maxOpenConns",),
        "max_idle_conns": ("maxIdleConns",),
        "conn_max_lifetime": ("connMaxLifetime",),
        "max_meta_size": ("maxMetaSize",),
        "dynamic_auth": ("dynamicAuth",),
    },
    "migrations": {
        "lock_wait_seconds": ("lockWaitSeconds",),
        "lock_timeout_ms": ("lockTimeoutMs",),
        "lock_retries": ("lockRetries",),
    },
}
_FIELD_BY_KEY = {
    block: {k.lower(): f for f, keys in fields.items() for k in keys}
    for block, fields in FIELD_KEYS.items()
}


def _fast_block(
    block: str, data: dict[Any, Any], found: tuple[str, yaml.Node, yaml.Node] | None
) -> tuple[bool, dict[str, Any]] | None:
    """(present, inputs by field name), or None when only the full path can judge the block."""
    if found is None:
        return (False, {})
    name, _knode, vnode = found
    value = data.get(name)
    if value is None and block == "migrations":
        return (False, {})
    if not isinstance(value, dict) or not isinstance(vnode, yaml.MappingNode):
        return None
    problems: list[_Problem] = []
    pairs = _pairs(vnode, f"{name}.", problems)
    inputs: dict[str, Any] = {}
    for key in pairs:
        field_name = _FIELD_BY_KEY[block].get(key.lower())
        if problems or field_name is None or field_name in inputs:
            return None
        inputs[field_name] = value.get(key)
    return (True, inputs)


def _text(value: Any, *, required: bool = False) -> str | None | bool:
    """A plain text value (None when unset and allowed); False when the models must judge it."""
    if value is None or value == "":
        return False if required else None
    return value if type(value) is str else False


def _whole(value: Any, low: int, high: int, *, optional: bool = True) -> int | None | bool:
    if value is None:
        return None if optional else False
    return value if type(value) is int and low <= value <= high else False


def _fast_database(inputs: dict[str, Any]) -> DatabaseValues | None:
    host, user, database = (
        _text(inputs.get("host"), required=True),
        _text(inputs.get("user"), required=True),
        _text(inputs.get("database"), required=True),
    )
    port = _whole(inputs.get("port", 5432), 1, 65535, optional=False)
    migration_user = _text(inputs.get("migration_user"))
    password = _text(inputs.get("password"))
    migration_password = _text(inputs.get("migration_password"))
    sslmode = inputs.get("sslmode") or "require"
    checks = [
        _whole(inputs.get("max_open_conns"), 0, 2**63 - 1),
        _whole(inputs.get("max_idle_conns"), 0, 2**63 - 1),
        _whole(inputs.get("max_meta_size"), 1, 2**63 - 1),
        _text(inputs.get("conn_max_lifetime")),
        None if inputs.get("dynamic_auth") is None else False,
    ]
    values = (host, user, database, port, migration_user, password, migration_password)
    if any(v is False for v in (*values, *checks)):
        return None
    if type(sslmode) is not str or sslmode.lower() not in SSL_MODES:
        return None
    if not isinstance(host, str) or valid_host(host) is not None:
        return None
    assert isinstance(user, str) and isinstance(database, str) and isinstance(port, int)
    return DatabaseValues(
        host,
        port,
        user,
        database,
        sslmode.lower(),
        migration_user if isinstance(migration_user, str) else None,
        password if isinstance(password, str) else None,
        migration_password if isinstance(migration_password, str) else None,
    )


def _fast_migrations(inputs: dict[str, Any]) -> MigrationValues | None:
    wait = inputs.get("lock_wait_seconds", DEFAULT_LOCK_WAIT_S)
    timeout = _whole(inputs.get("lock_timeout_ms", DEFAULT_LOCK_TIMEOUT_MS), 0, 2**31 - 1)
    retries = _whole(inputs.get("lock_retries", DEFAULT_LOCK_RETRIES), 0, 100)
    if type(wait) not in (int, float) or not 0 < wait <= 86400:  # NaN fails the comparison
        return None
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        return None
    if not isinstance(retries, int) or isinstance(retries, bool):
        return None
    return MigrationValues(float(wait), timeout, retries)
