"""Configuration: the YAML file (the Go server's format plus our blocks) -> typed Settings.

``load_config(path)`` reads the whole file: ``sources``, ``registries``, ``auth``, ``database``,
``telemetry`` and ``audit`` as the Go server does, plus ours (``migrations``, ``server``). Keys
match case-insensitively (as viper folds them); durations use Go's syntax (``5m``, ``1h30m``).
Blocks are validated when present; migration commands need only ``database`` (and
``migrations``), serve checks the rest with :meth:`Settings.check_serve`. Every problem becomes
one ConfigError naming file, key path and line; never a password.
"""

from __future__ import annotations

from thv_registry.config.base import Problem
from thv_registry.config.database import (
    MIGRATION_PASSWORD_ENV,
    PASSWORD_ENV,
    SSL_MODES,
    DatabaseSettings,
    MigrationSettings,
    valid_host,
)
from thv_registry.config.durations import format_duration, parse_duration
from thv_registry.config.loader import load_config
from thv_registry.config.server import (
    INSECURE_URL_ENV,
    AuditSettings,
    AuthSettings,
    AuthzSettings,
    CorsSettings,
    MetricsSettings,
    OAuthProvider,
    OAuthSettings,
    Roles,
    ServerSettings,
    TelemetrySettings,
    TracingSettings,
)
from thv_registry.config.settings import Settings
from thv_registry.config.sources import (
    SOURCE_KINDS,
    ApiSourceSettings,
    FileSourceSettings,
    GitAuthSettings,
    GitSourceSettings,
    KubernetesSourceSettings,
    ManagedSourceSettings,
    Patterns,
    RegistrySettings,
    SourceFilter,
    SourceKind,
    SourceSettings,
    SyncPolicy,
)
from thv_registry.db.connect import ConnectionParams  # what migration_params() returns
from thv_registry.errors import ConfigError

__all__ = [
    "load_config",
    "Settings",
    "ConfigError",
    "ConnectionParams",
    "Problem",
    "DatabaseSettings",
    "MigrationSettings",
    "SourceSettings",
    "SourceKind",
    "SOURCE_KINDS",
    "FileSourceSettings",
    "GitSourceSettings",
    "GitAuthSettings",
    "ApiSourceSettings",
    "ManagedSourceSettings",
    "KubernetesSourceSettings",
    "SyncPolicy",
    "SourceFilter",
    "Patterns",
    "RegistrySettings",
    "AuthSettings",
    "OAuthSettings",
    "OAuthProvider",
    "AuthzSettings",
    "Roles",
    "TelemetrySettings",
    "TracingSettings",
    "MetricsSettings",
    "AuditSettings",
    "ServerSettings",
    "CorsSettings",
    "parse_duration",
    "format_duration",
    "valid_host",
    "SSL_MODES",
    "PASSWORD_ENV",
    "MIGRATION_PASSWORD_ENV",
    "INSECURE_URL_ENV",
]
