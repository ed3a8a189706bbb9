"""The parts of the configuration the sync reads, as protocols.

``thv_registry.config``'s frozen Structs (SourceSettings, RegistrySettings, ServerSettings,
Settings) have these attributes; the protocols keep the sync independent of how the config
package builds them (and let tests pass small stand-ins).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Protocol

from thv_registry.sync.api_source import ApiSpec
from thv_registry.sync.file_source import FileSpec
from thv_registry.sync.git_source import GitSpec
from thv_registry.sync.upstream import FilterSpec

__all__ = ["SourceSpec", "RegistrySpec", "SyncSettings", "PolicySpec", "ServerSpec"]


class PolicySpec(Protocol):
    @property
    def interval(self) -> timedelta: ...


class SourceSpec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def file(self) -> FileSpec | None: ...
    @property
    def git(self) -> GitSpec | None: ...
    @property
    def api(self) -> ApiSpec | None: ...
    @property
    def sync_policy(self) -> PolicySpec | None: ...
    @property
    def filter(self) -> FilterSpec | None: ...
    @property
    def claims(self) -> Mapping[str, str | tuple[str, ...]]: ...


class RegistrySpec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def sources(self) -> tuple[str, ...]: ...
    @property
    def claims(self) -> Mapping[str, str | tuple[str, ...]]: ...


class ServerSpec(Protocol):
    @property
    def sync_poll_interval(self) -> timedelta: ...
    @property
    def sync_lease(self) -> timedelta: ...
    @property
    def sync_backoff_max(self) -> timedelta: ...


class DatabaseSpec(Protocol):
    @property
    def max_meta_size(self) -> int: ...
    @property
    def max_open_conns(self) -> int | None: ...
    @property
    def conn_max_lifetime(self) -> timedelta | None: ...


class SyncSettings(Protocol):
    @property
    def sources(self) -> tuple[SourceSpec, ...]: ...
    @property
    def registries(self) -> tuple[RegistrySpec, ...]: ...
    @property
    def server(self) -> ServerSpec: ...
    @property
    def database(self) -> DatabaseSpec | None: ...
