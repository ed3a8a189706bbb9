"""Rows of the generated queries -> the wire models (ServerResponse, Skill).

JSON columns hold the wire JSON of the models (camelCase, as the sync writer stores it), so
they convert back with ``msgspec.convert``; the other columns map field by field. Timestamps
come out in UTC.
"""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar, cast

import msgspec

from thv_registry.queries.servers import (
    ListServerIconsRow,
    ListServerPackagesRow,
    ListServerRemotesRow,
)
from thv_registry.queries.skills import (
    ListSkillGitPackagesRow,
    ListSkillOciPackagesRow,
    ListSkillsRow,
)

from .models import (
    SCHEMA_URL,
    Icon,
    OfficialMeta,
    Package,
    RemoteTransport,
    Repository,
    ResponseMeta,
    ServerDetail,
    ServerResponse,
    Skill,
    SkillIcon,
    SkillPackage,
    SkillRepository,
    Status,
)

__all__ = ["Children", "VersionRow", "group", "server_response", "skill", "status"]

_REMOTE: Any = RemoteTransport  # a union: msgspec.convert accepts it, mypy's type[T] does not


class VersionRow(Protocol):
    """The columns every server-version query returns (ListServers, GetServerVersion, ...)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def version_id(self) -> uuid.UUID: ...
    @property
    def title(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def status_message(self) -> str | None: ...
    @property
    def status_changed_at(self) -> datetime.datetime | None: ...
    @property
    def published_at(self) -> datetime.datetime: ...
    @property
    def updated_at(self) -> datetime.datetime: ...
    @property
    def is_latest(self) -> bool: ...
    @property
    def website(self) -> str | None: ...
    @property
    def schema_url(self) -> str | None: ...
    @property
    def repository_url(self) -> str | None: ...
    @property
    def repository_type(self) -> str | None: ...
    @property
    def repository_id(self) -> str | None: ...
    @property
    def repository_subfolder(self) -> str | None: ...
    @property
    def server_meta(self) -> Any | None: ...


class _Child(Protocol):
    @property
    def position(self) -> int: ...


C = TypeVar("C", bound=_Child)


def group(rows: Iterable[C], key: str) -> dict[uuid.UUID, list[C]]:
    """Child rows by their parent version id (column ``key``), each list in row order."""
    out: dict[uuid.UUID, list[C]] = defaultdict(list)
    for row in rows:
        out[getattr(row, key)].append(row)
    return out


class Children:
    """The packages, remotes and icons of a page's versions, by version id."""

    def __init__(
        self,
        packages: Sequence[ListServerPackagesRow] = (),
        remotes: Sequence[ListServerRemotesRow] = (),
        icons: Sequence[ListServerIconsRow] = (),
    ) -> None:
        self.packages = group(packages, "server_id")
        self.remotes = group(remotes, "server_id")
        self.icons = group(icons, "server_id")


def status(db_status: str) -> Status:
    """The API's spelling of a stored status (``ACTIVE`` -> ``active``)."""
    return cast(Status, db_status.lower())


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value.astimezone(datetime.UTC)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _package(p: ListServerPackagesRow) -> Package:
    transport = _drop_none({"type": p.transport, "url": p.transport_url})
    if p.transport_headers is not None:
        transport["headers"] = p.transport_headers
    data = _drop_none(
        {
            "registryType": p.registry_type,
            "registryBaseUrl": p.pkg_registry_url,
            "identifier": p.pkg_identifier,
            "version": p.pkg_version,
            "fileSha256": p.sha256_hash,
            "runtimeHint": p.runtime_hint,
            "transport": transport,
            "runtimeArguments": p.runtime_arguments,
            "packageArguments": p.package_arguments,
            "environmentVariables": p.env_vars,
        }
    )
    return msgspec.convert(data, Package)


def _remote(r: ListServerRemotesRow) -> Any:
    data = _drop_none(
        {
            "type": r.transport,
            "url": r.transport_url,
            "headers": r.transport_headers,
            "variables": r.transport_variables,
        }
    )
    return msgspec.convert(data, _REMOTE)


def _icon(i: ListServerIconsRow) -> Icon:
    return Icon(
        src=i.source_uri,
        mime_type=cast(Any, i.mime_type),
        sizes=list(i.sizes) if i.sizes is not None else None,
        theme=cast(Any, i.theme.lower()) if i.theme else None,
    )


def server_response(row: VersionRow, children: Children) -> ServerResponse:
    """One ServerResponse: the version's ServerDetail and its official ``_meta``."""
    vid = row.version_id
    packages = children.packages.get(vid)
    remotes = children.remotes.get(vid)
    icons = children.icons.get(vid)
    repository = None
    if row.repository_url is not None:
        repository = Repository(
            url=row.repository_url,
            source=row.repository_type or "",
            id=row.repository_id,
            subfolder=row.repository_subfolder,
        )
    detail = ServerDetail(
        schema=row.schema_url or SCHEMA_URL,
        name=row.name,
        description=row.description or "",
        title=row.title,
        version=row.version,
        website_url=row.website,
        repository=repository,
        icons=[_icon(i) for i in icons] if icons else None,
        packages=[_package(p) for p in packages] if packages else None,
        remotes=[_remote(r) for r in remotes] if remotes else None,
        meta=row.server_meta or None,
    )
    official = OfficialMeta(
        status=status(row.status),
        status_message=row.status_message,
        status_changed_at=_utc(row.status_changed_at) if row.status_changed_at else None,
        published_at=_utc(row.published_at),
        updated_at=_utc(row.updated_at),
        is_latest=row.is_latest,
    )
    return ServerResponse(server=detail, meta=ResponseMeta(official=official))


def skill(
    row: ListSkillsRow,
    oci: Sequence[ListSkillOciPackagesRow],
    git: Sequence[ListSkillGitPackagesRow],
) -> Skill:
    """One Skill (OCI packages first, then git ones, each in stored order)."""
    packages = [
        SkillPackage(
            registry_type="oci", identifier=p.identifier, digest=p.digest, media_type=p.media_type
        )
        for p in oci
    ] + [
        SkillPackage(
            registry_type="git", url=p.url, ref=p.ref, commit=p.commit_sha, subfolder=p.subfolder
        )
        for p in git
    ]
    name = row.name.removeprefix(f"{row.namespace}/")
    return Skill(
        namespace=row.namespace,
        name=name,
        description=row.description or "",
        version=row.version,
        status=status(row.status),
        title=row.title,
        license=row.license,
        compatibility=row.compatibility,
        allowed_tools=list(row.allowed_tools) if row.allowed_tools is not None else None,
        metadata=row.metadata,
        meta=row.extension_meta,
        repository=msgspec.convert(row.repository, SkillRepository) if row.repository else None,
        icons=msgspec.convert(row.icons, list[SkillIcon]) if row.icons else None,
        packages=packages or None,
    )
