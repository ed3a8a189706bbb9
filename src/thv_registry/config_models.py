"""The configuration's pydantic models: the schema of record for validation and error reports.

Imported lazily (pydantic costs ~100 ms to import): :mod:`thv_registry.config` re-exports these
names, and its fast path reads a plain, valid file without them (see ``config.load_cli_config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator

from thv_registry.config import (
    DEFAULT_LOCK_RETRIES,
    DEFAULT_LOCK_TIMEOUT_MS,
    DEFAULT_LOCK_WAIT_S,
    MIGRATION_PASSWORD_ENV,
    SSL_MODES,
    ConnectionParams,
    _database_missing,
    valid_host,
)

__all__ = ["DatabaseSettings", "MigrationSettings", "Settings"]

_MODEL = ConfigDict(strict=True, extra="forbid", populate_by_name=True, frozen=True)


class DatabaseSettings(BaseModel):
    """The ``database:`` block, as the Go server reads it (plus the two password keys)."""

    model_config = _MODEL

    host: str
    port: int = Field(default=5432, ge=1, le=65535)
    user: str = Field(min_length=1)
    migration_user: str | None = Field(default=None, validation_alias="migrationUser")
    password: SecretStr | None = None
    migration_password: SecretStr | None = Field(default=None, validation_alias="migrationPassword")
    database: str = Field(min_length=1)
    sslmode: str = Field(default="require", validation_alias=AliasChoices("sslmode", "sslMode"))
    # The Go server's pool and API settings: accepted so its files load; for `serve`.
    max_open_conns: int | None = Field(default=None, validation_alias="maxOpenConns", ge=0)
    max_idle_conns: int | None = Field(default=None, validation_alias="maxIdleConns", ge=0)
    conn_max_lifetime: str | None = Field(default=None, validation_alias="connMaxLifetime")
    max_meta_size: int | None = Field(default=None, validation_alias="maxMetaSize", gt=0)
    dynamic_auth: Any = Field(default=None, validation_alias="dynamicAuth")

    @field_validator("migration_user", "password", "migration_password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("sslmode", mode="before")
    @classmethod
    def _sslmode(cls, value: Any) -> Any:
        if value is None or value == "":
            return "require"
        if isinstance(value, str):
            if value.lower() not in SSL_MODES:
                raise ValueError(f"must be one of {', '.join(SSL_MODES)}; got {value!r}")
            return value.lower()
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        problem = valid_host(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("dynamic_auth")
    @classmethod
    def _no_dynamic_auth(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError(
                "(AWS RDS IAM authentication) is not supported by this tool; remove it and give "
                f"the password with database.migrationPassword, {MIGRATION_PASSWORD_ENV} or "
                "~/.pgpass"
            )
        return value


class MigrationSettings(BaseModel):
    """The optional ``migrations:`` block: lock tuning for the migration runner."""

    model_config = _MODEL

    lock_wait_seconds: float = Field(
        default=DEFAULT_LOCK_WAIT_S, validation_alias="lockWaitSeconds", gt=0, le=86400,
        allow_inf_nan=False,
    )  # fmt: skip
    lock_timeout_ms: int = Field(
        default=DEFAULT_LOCK_TIMEOUT_MS, validation_alias="lockTimeoutMs", ge=0, le=2**31 - 1
    )
    lock_retries: int = Field(
        default=DEFAULT_LOCK_RETRIES, validation_alias="lockRetries", ge=0, le=100
    )


class Settings(BaseModel):
    """A loaded configuration: the database block (None: embedded default) and tuning."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database: DatabaseSettings | None = None
    migrations: MigrationSettings = Field(default_factory=lambda: MigrationSettings())
    source_path: Path | None = None  #: the file it came from (not a YAML key)

    def migration_params(self) -> ConnectionParams:
        """Connect as ``migrationUser`` (default ``user``) with ``migrationPassword``."""
        db = self._database()
        return self._params(db.migration_user or db.user, db.migration_password or db.password)

    def app_params(self) -> ConnectionParams:
        """Connect as the application ``user`` with ``password``."""
        db = self._database()
        return self._params(db.user, db.password)

    def _params(self, user: str, password: SecretStr | None) -> ConnectionParams:
        db = self._database()
        secret = password.get_secret_value() if password is not None else None
        return ConnectionParams(db.host, db.port, user, db.database, db.sslmode, secret)

    def _database(self) -> DatabaseSettings:
        if self.database is None:
            raise _database_missing(self.source_path)
        return self.database
