"""``sources:`` (where registry data comes from) and ``registries:`` (named views over sources)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from thv_registry.config.base import (
    DNS_LABEL,
    Claims,
    Model,
    Problem,
    at_most_one,
    http_url_problem,
    name_problem,
    positive,
)

__all__ = [
    "SourceKind",
    "SOURCE_KINDS",
    "SYNCED_KINDS",
    "SourceSettings",
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
]

SourceKind = Literal["file", "git", "api", "managed", "kubernetes"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("file", "git", "api", "managed", "kubernetes")
SYNCED_KINDS = frozenset({"file", "git", "api"})  #: kinds that need syncPolicy.interval
_TEXTS = Meta(description="a list of text")
_MAX_API_TIMEOUT = timedelta(minutes=5)
_MAX_GIT_TIMEOUT = timedelta(minutes=30)
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # SHA-1 or SHA-256


class FileSourceSettings(Model, frozen=True):
    """``file:``: a local path, an http(s) URL, or inline JSON (exactly one)."""

    path: str | None = None
    url: str | None = None
    data: str | None = None  #: inline JSON (sources created through the API)
    timeout: timedelta = timedelta(seconds=30)  #: for ``url``

    def problems(self) -> Iterable[Problem]:
        given = [k for k in ("path", "url", "data") if getattr(self, k) is not None]
        found: list[Problem] = []
        if not given:
            found.append(((), "needs one of path, url or data"))
        found += at_most_one(self, {"path": "path", "url": "url", "data": "data"}, "give one")
        if self.url is not None and (why := http_url_problem(self.url)):
            found.append((("url",), why))
        return found + positive(self.timeout, "timeout")


class GitAuthSettings(Model, frozen=True):
    username: str | None = None
    password_file: str | None = None  #: an absolute path; the file holds the password

    def problems(self) -> Iterable[Problem]:
        if self.password_file is not None and not self.password_file.startswith("/"):
            return [(("passwordFile",), f"must be an absolute path; got {self.password_file!r}")]
        return []


class GitSourceSettings(Model, frozen=True):
    """``git:``: a repository, at most one of branch, tag or commit, and the file's path."""

    repository: Annotated[str, Meta(min_length=1, description="a repository URL")]
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    path: str | None = None  #: the registry file inside the repository
    auth: GitAuthSettings | None = None
    timeout: timedelta = timedelta(minutes=2)  #: for each git command (fetch, read)

    def problems(self) -> Iterable[Problem]:
        keys = {"branch": "branch", "tag": "tag", "commit": "commit"}
        found = at_most_one(self, keys, "choose one of branch, tag or commit")
        if self.path is None or not self.path.strip("/"):
            found.append(((), "needs path: the registry file inside the repository"))
        elif self.path.startswith("/") or ".." in self.path.split("/"):
            found.append((("path",), f"must be relative to the repository root; got {self.path!r}"))
        if self.commit is not None and not _COMMIT.match(self.commit):
            found.append(
                (("commit",), f"must be a full commit hash (40 hex digits); got {self.commit!r}")
            )
        if self.auth is not None and (self.auth.username is None) != (
            self.auth.password_file is None
        ):
            found.append((("auth",), "needs both username and passwordFile"))
        return found + positive(self.timeout, "timeout", _MAX_GIT_TIMEOUT)


class ApiSourceSettings(Model, frozen=True):
    """``api:``: another registry's MCP Registry API v0.1."""

    endpoint: Annotated[str, Meta(description="an http or https URL")]
    timeout: timedelta = timedelta(seconds=10)  #: per request, 0 < timeout <= 5m
    max_pages: Annotated[int, Meta(ge=1, description="a whole number, 1 or more")] = 1000
    max_servers: Annotated[int, Meta(ge=1, description="a whole number, 1 or more")] = 100_000
    max_response_bytes: Annotated[
        int, Meta(ge=1024, description="a whole number of bytes, 1024 or more")
    ] = 100 * 1024 * 1024
    #: when set, syncs in between fetch only what changed (``updated_since``) and a full fetch
    #: runs at this interval; absent: every sync fetches everything
    full_resync_interval: timedelta | None = None

    def problems(self) -> Iterable[Problem]:
        found: list[Problem] = []
        if why := http_url_problem(self.endpoint):
            found.append((("endpoint",), why))
        found += positive(self.full_resync_interval, "fullResyncInterval")
        return found + positive(self.timeout, "timeout", _MAX_API_TIMEOUT)


class ManagedSourceSettings(Model, frozen=True):
    """``managed: {}``: entries written only through the admin API (at most one such source)."""


class KubernetesSourceSettings(Model, frozen=True):
    """``kubernetes:``: MCPServer resources of these namespaces (none: the watched one)."""

    namespaces: Annotated[tuple[str, ...], _TEXTS] = ()


class SyncPolicy(Model, frozen=True):
    interval: timedelta  #: how often to fetch the source

    def problems(self) -> Iterable[Problem]:
        return positive(self.interval, "interval")


class Patterns(Model, frozen=True):
    """Glob patterns: an entry is kept when it matches an include (or there are none) and no
    exclude."""

    include: Annotated[tuple[str, ...], _TEXTS] = ()
    exclude: Annotated[tuple[str, ...], _TEXTS] = ()


class SourceFilter(Model, frozen=True):
    names: Patterns | None = None
    tags: Patterns | None = None


class SourceSettings(Model, frozen=True):
    """One entry of ``sources:``: a name, exactly one source type, and how to sync it."""

    name: Annotated[
        str,
        Meta(
            pattern=DNS_LABEL,
            description="a DNS label (lowercase letters, digits and '-', at most 63, starting "
            "and ending with a letter or digit)",
        ),
    ]
    file: FileSourceSettings | None = None
    git: GitSourceSettings | None = None
    api: ApiSourceSettings | None = None
    managed: ManagedSourceSettings | None = None
    kubernetes: KubernetesSourceSettings | None = None
    sync_policy: SyncPolicy | None = None  #: required for file, git and api
    filter: SourceFilter | None = None
    claims: Claims = msgspec.field(default_factory=dict)

    @property
    def kind(self) -> SourceKind:
        """Which source type this is (the one type key given)."""
        for kind in SOURCE_KINDS:
            if getattr(self, kind) is not None:
                return kind
        raise ValueError(f"source {self.name!r} has no type")  # the loader never returns one

    def problems(self) -> Iterable[Problem]:
        kinds = [k for k in SOURCE_KINDS if getattr(self, k) is not None]
        if not kinds:
            return [((), f"needs one source type: one of {', '.join(SOURCE_KINDS)}")]
        if len(kinds) > 1:
            return [((kinds[1],), f"cannot be given with {kinds[0]}: a source has one type")]
        if kinds[0] in SYNCED_KINDS and self.sync_policy is None:
            return [
                (
                    (),
                    f"has no syncPolicy.interval, which a {kinds[0]} source needs; add "
                    "syncPolicy: {interval: 30m}",
                )
            ]
        return []


class RegistrySettings(Model, frozen=True):
    """One entry of ``registries:``: a name over sources in priority order (first wins)."""

    name: Annotated[str, Meta(min_length=1, description="a registry name (a path segment)")]
    sources: Annotated[
        tuple[str, ...], Meta(min_length=1, description="a list of source names (one or more)")
    ]
    claims: Claims = msgspec.field(default_factory=dict)

    def problems(self) -> Iterable[Problem]:
        if why := name_problem(self.name):
            return [(("name",), why)]
        return []
