"""``auth:``, ``telemetry:`` and ``audit:`` (the Go server's) and ``server:`` (ours)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from thv_registry.config.base import Claims, Model, Problem, http_url_problem, is_loopback, positive

__all__ = [
    "INSECURE_URL_ENV",
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
    "ResponseCacheSettings",
]

INSECURE_URL_ENV = "THV_REGISTRY_INSECURE_URL"  #: true: http issuers are accepted anywhere
_TEXT = Meta(min_length=1, description="text")
_TEXTS = Meta(description="a list of text")
_CLAIM_MAPS = Meta(description="a list of claim maps ({claim: value})")
_MIB = 1024 * 1024


class OAuthProvider(Model, frozen=True):
    """One OAuth/OIDC provider: tokens are checked against its issuer and audience."""

    name: Annotated[str, _TEXT]
    issuer_url: Annotated[str, Meta(min_length=1, description="an https URL")]
    audience: Annotated[str, Meta(min_length=1, description="the expected audience (text)")]
    jwks_url: str | None = None  #: skips OIDC discovery when given
    client_id: str | None = None
    client_secret_file: str | None = None
    ca_cert_path: str | None = None
    auth_token_file: str | None = None
    introspection_url: str | None = None  #: RFC 7662, for opaque tokens
    allow_private_ip: bool = msgspec.field(default=False, name="allowPrivateIP")

    def problems(self) -> Iterable[Problem]:
        found: list[Problem] = []
        for attr, key in (("issuer_url", "issuerUrl"), ("jwks_url", "jwksUrl")):
            url = getattr(self, attr)
            if url is None:
                continue
            if why := http_url_problem(url):
                found.append(((key,), why))
            elif not url.lower().startswith("https:") and not _insecure_ok(url):
                found.append(
                    (
                        (key,),
                        f"must use https unless its host is loopback (or {INSECURE_URL_ENV}=true "
                        f"is set); got {url[:80]!r}",
                    )
                )
        if self.introspection_url is not None and (why := http_url_problem(self.introspection_url)):
            found.append((("introspectionUrl",), why))
        return found


class OAuthSettings(Model, frozen=True):
    resource_url: str | None = None  #: this server's URL (RFC 9728); required in oauth mode
    realm: Annotated[str, _TEXT] = "mcp-registry"
    scopes_supported: Annotated[tuple[str, ...], _TEXTS] = (
        "mcp-registry:read",
        "mcp-registry:write",
    )
    providers: tuple[OAuthProvider, ...] = ()


class Roles(Model, frozen=True):
    """Who may do what: each role is a list of claim maps; a caller matching one has it."""

    super_admin: Annotated[tuple[Claims, ...], _CLAIM_MAPS] = ()
    manage_sources: Annotated[tuple[Claims, ...], _CLAIM_MAPS] = ()
    manage_registries: Annotated[tuple[Claims, ...], _CLAIM_MAPS] = ()
    manage_entries: Annotated[tuple[Claims, ...], _CLAIM_MAPS] = ()


class AuthzSettings(Model, frozen=True):
    roles: Roles = msgspec.field(default_factory=Roles)


class AuthSettings(Model, frozen=True):
    """``auth:``: anonymous, or oauth (the Go server's default) with at least one provider."""

    mode: Annotated[Literal["anonymous", "oauth"], Meta(description="anonymous or oauth")] = "oauth"
    public_paths: Annotated[tuple[str, ...], Meta(description="a list of paths (/...)")] = ()
    oauth: OAuthSettings | None = None
    authz: AuthzSettings | None = None  #: None: per-entry claim filtering is off

    def problems(self) -> Iterable[Problem]:
        found: list[Problem] = [
            (("publicPaths", i), f"must start with /; got {p!r}")
            for i, p in enumerate(self.public_paths)
            if not p.startswith("/")
        ]
        if self.mode != "oauth":
            return found
        if self.oauth is None:
            return [*found, ((), "has mode oauth but no oauth: block; add oauth: with resourceUrl "
                             "and providers, or set mode: anonymous")]  # fmt: skip
        if not self.oauth.resource_url:
            found.append((("oauth",), "has no resourceUrl, which mode oauth needs (this "
                                       "server's public URL)"))  # fmt: skip
        elif why := http_url_problem(self.oauth.resource_url):
            found.append((("oauth", "resourceUrl"), why))
        if not self.oauth.providers:
            found.append((("oauth",), "has no providers; mode oauth needs at least one, each "
                                      "with name, issuerUrl and audience"))  # fmt: skip
        return found


class TracingSettings(Model, frozen=True):
    enabled: bool = False
    sampling: Annotated[float, Meta(ge=0, le=1, description="a ratio from 0 to 1")] = 0.05


class MetricsSettings(Model, frozen=True):
    enabled: bool = False


class TelemetrySettings(Model, frozen=True):
    """``telemetry:``: OpenTelemetry export over OTLP/HTTP."""

    enabled: bool = False
    service_name: Annotated[str, _TEXT] = "thv-registry-api"
    service_version: str | None = None
    endpoint: Annotated[str, _TEXT] = "localhost:4318"
    insecure: bool = False
    tracing: TracingSettings = msgspec.field(default_factory=TracingSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)


class AuditSettings(Model, frozen=True):
    """``audit:``: structured audit events (stdout, or ``logFile``)."""

    enabled: bool = False
    log_file: str | None = None  #: its directory must exist
    event_types: Annotated[tuple[str, ...], _TEXTS] = ()  #: only these (none: all)
    exclude_event_types: Annotated[tuple[str, ...], _TEXTS] = ()
    include_request_data: bool = False
    max_data_size: Annotated[
        int, Meta(gt=0, le=_MIB, description="a number of bytes from 1 to 1048576 (1 MiB)")
    ] = 1024

    def problems(self) -> Iterable[Problem]:
        if self.log_file is not None and not Path(self.log_file).expanduser().parent.is_dir():
            return [(("logFile",), f"is in a directory that does not exist: {self.log_file!r}")]
        return []


class CorsSettings(Model, frozen=True):
    allow_origins: Annotated[tuple[str, ...], Meta(description="a list of origins")] = ()


class ResponseCacheSettings(Model, frozen=True):
    """``server.responseCache``: the consumer API's cache of encoded bodies, per process."""

    #: 32 MiB keeps serve well under 150 MB resident with the cache full (benchmarks/README.md)
    max_bytes: Annotated[int, Meta(description="a number of bytes (0: no cache)")] = 32 * _MIB

    def problems(self) -> Iterable[Problem]:
        if self.max_bytes < 0:
            why = f"must be 0 (no cache) or a positive number of bytes, not {self.max_bytes}"
            return [(("maxBytes",), why)]
        return []


class ServerSettings(Model, frozen=True):
    """``server:`` (ours): listeners and the timings of serve and its sync coordinator."""

    address: Annotated[str, Meta(description="an address such as :8080 or 127.0.0.1:8080")] = (
        ":8080"
    )
    internal_address: Annotated[
        str, Meta(description="an address such as :8081 or 127.0.0.1:8081")
    ] = ":8081"
    shutdown_timeout: timedelta = timedelta(seconds=30)  #: drain time on SIGTERM
    sync_poll_interval: timedelta = timedelta(seconds=30)  #: how often a replica looks for work
    sync_lease: timedelta = timedelta(minutes=2)  #: how long a claimed sync is held
    sync_backoff_max: timedelta = timedelta(minutes=5)  #: longest wait after failures
    cors: CorsSettings = msgspec.field(default_factory=CorsSettings)
    response_cache: ResponseCacheSettings = msgspec.field(default_factory=ResponseCacheSettings)

    def problems(self) -> Iterable[Problem]:
        found: list[Problem] = []
        for key in ("address", "internalAddress"):
            value = getattr(self, "address" if key == "address" else "internal_address")
            if why := address_problem(value):
                found.append(((key,), why))
        for attr, key in (
            ("shutdown_timeout", "shutdownTimeout"),
            ("sync_poll_interval", "syncPollInterval"),
            ("sync_lease", "syncLease"),
            ("sync_backoff_max", "syncBackoffMax"),
        ):
            found += positive(getattr(self, attr), key)
        return found


def address_problem(value: str) -> str | None:
    """Why ``value`` is not ``[host]:port`` (None: it is)."""
    host, sep, port = value.rpartition(":")
    wrong = f"must be host:port or :port (such as :8080 or 127.0.0.1:8080); got {value!r}"
    if not sep or not port.isdigit() or int(port) > 65535:
        return wrong
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return wrong
    elif ":" in host or any(c.isspace() for c in host):
        return wrong
    return None


def _insecure_ok(url: str) -> bool:
    flag = os.environ.get(INSECURE_URL_ENV, "").strip().lower()
    return flag in ("1", "t", "true") or is_loopback(url)  # as Go's strconv.ParseBool
