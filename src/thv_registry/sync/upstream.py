"""Parse and validate an upstream registry file; apply the source's name and tag filter.

The format is ToolHive's upstream registry document (``$schema``, ``version``, ``meta``,
``data.servers[]`` of server.json objects, ``data.skills[]``; ``data.plugins[]`` is counted and
skipped until plugins are served). Every entry is decoded into the registry's wire models
(:mod:`thv_registry.registry.models`, strict: required fields, types, enums, lengths and
patterns) and then checked for what the models cannot see: the Go edition's name rules, a
server name and version given twice, a package or remote given twice (the database keys them),
and the size of ``_meta``. The first bad entry fails the whole parse with
:class:`~thv_registry.sync.errors.InvalidEntry` (its list, index, name, field and reason).

Each kept entry carries the sha256 of its canonical JSON (sorted keys), which the writer stores
to tell changed versions from unchanged ones.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Protocol

import msgspec

from thv_registry.registry.models import PUBLISHER_META_KEY, ServerDetail, Skill
from thv_registry.sync.errors import InvalidEntry, InvalidRegistryFile

__all__ = [
    "FilterSpec",
    "ServerEntry",
    "SkillEntry",
    "UpstreamData",
    "filter_hash",
    "parse",
    "DEFAULT_MAX_META_SIZE",
]

DEFAULT_MAX_META_SIZE = 262144  #: database.maxMetaSize's default (256 KiB)
_NAMESPACE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$")
_LOCAL_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?$")
#: the official document's ``format: uri`` (RFC 3986 absolute URI: ASCII, valid %-escapes)
_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*"
)
_NOT_URI = (
    "expected an absolute URI such as https://example.com/path (spaces and other characters "
    "outside ASCII letters, digits and -._~:/?#[]@!$&'()*+,;= percent-encoded)"
)


class PatternSpec(Protocol):
    @property
    def include(self) -> tuple[str, ...]: ...
    @property
    def exclude(self) -> tuple[str, ...]: ...


class FilterSpec(Protocol):
    """A source's ``filter:`` block (config's SourceFilter has these attributes)."""

    @property
    def names(self) -> PatternSpec | None: ...
    @property
    def tags(self) -> PatternSpec | None: ...


@dataclass(frozen=True, slots=True)
class ServerEntry:
    """A validated server version. Only its raw JSON is kept (a slice of the file's buffer):
    :meth:`decode` builds the model again when the writer needs it, so a large file is never
    held as objects all at once."""

    index: int  #: position in data.servers[]
    name: str
    version: str
    raw: msgspec.Raw
    content_sha256: str
    tags: tuple[str, ...]

    def decode(self) -> ServerDetail:
        return msgspec.json.decode(self.raw, type=ServerDetail)


@dataclass(frozen=True, slots=True)
class SkillEntry:
    index: int  #: position in data.skills[]
    name: str  #: the entry name, ``namespace/name``
    version: str
    status: str  #: ACTIVE, DEPRECATED or DELETED, as the database spells it
    raw: msgspec.Raw
    content_sha256: str

    def decode(self) -> Skill:
        return msgspec.json.decode(self.raw, type=Skill)


@dataclass(frozen=True)
class UpstreamData:
    servers: list[ServerEntry]
    skills: list[SkillEntry]
    plugins_skipped: int  #: data.plugins[] entries, not served by this edition yet
    filtered_out: int  #: entries the source's filter left out


class _Data(msgspec.Struct):
    servers: list[msgspec.Raw] = []
    skills: list[msgspec.Raw] = []
    plugins: list[msgspec.Raw] = []


class _Envelope(msgspec.Struct):
    data: _Data


def parse(
    source: str,
    origin: str,
    data: bytes,
    filter: FilterSpec | None = None,
    *,
    max_meta_size: int = DEFAULT_MAX_META_SIZE,
) -> UpstreamData:
    """Validate every entry of ``data`` and return the ones the filter keeps."""
    try:
        envelope = msgspec.json.decode(data, type=_Envelope)
    except msgspec.ValidationError as e:
        reason, field = _reason(e)
        raise InvalidRegistryFile(
            source, origin, f"{reason}, at {field}" if field else reason
        ) from None
    except msgspec.DecodeError as e:
        raise InvalidRegistryFile(source, origin, f"not JSON ({e})") from None
    names = filter.names if filter is not None else None
    tags = filter.tags if filter is not None else None
    servers: list[ServerEntry] = []
    skills: list[SkillEntry] = []
    seen: dict[tuple[str, str], int] = {}
    dropped = 0
    for index, raw in enumerate(envelope.data.servers):
        server = _server(source, index, raw, max_meta_size)
        key = (server.name, server.version)
        if key in seen:
            raise _bad(
                source,
                "servers",
                index,
                key[0],
                "version",
                f"version {key[1]} of this server is also data.servers[{seen[key]}]",
            )
        seen[key] = index
        if _keep(server.name, server.tags, names, tags):
            servers.append(server)
        else:
            dropped += 1
    seen.clear()
    for index, raw in enumerate(envelope.data.skills):
        skill = _skill(source, index, raw, max_meta_size)
        key = (skill.name, skill.version)
        if key in seen:
            raise _bad(
                source,
                "skills",
                index,
                key[0],
                "version",
                f"version {key[1]} of this skill is also data.skills[{seen[key]}]",
            )
        seen[key] = index
        if _keep(skill.name, (), names, tags):
            skills.append(skill)
        else:
            dropped += 1
    return UpstreamData(servers, skills, len(envelope.data.plugins), dropped)


def filter_hash(filter: FilterSpec | None) -> str | None:
    """A sha256 of the filter's patterns (``None`` without a filter): a changed filter means a
    new sync even when the file's bytes are the same."""
    if filter is None or (filter.names is None and filter.tags is None):
        return None
    doc = {
        part: None if spec is None else [list(spec.include), list(spec.exclude)]
        for part, spec in (("names", filter.names), ("tags", filter.tags))
    }
    return hashlib.sha256(msgspec.json.encode(doc, order="sorted")).hexdigest()


# -- one entry -------------------------------------------------------------------------------


def _server(source: str, index: int, raw: msgspec.Raw, max_meta_size: int) -> ServerEntry:
    try:
        detail = msgspec.json.decode(raw, type=ServerDetail)
    except msgspec.ValidationError as e:
        reason, field = _reason(e)
        raise _bad(source, "servers", index, _name_of(raw), field, reason) from None
    name = detail.name

    def bad(field: str, reason: str) -> InvalidEntry:
        return _bad(source, "servers", index, name, field, reason)

    namespace, _, local = name.partition("/")
    if not _NAMESPACE.match(namespace) or not _LOCAL_NAME.match(local):
        raise bad(
            "name",
            "a server name is namespace/name: letters, digits, '.', '-' (and "
            "'_' after the slash), starting and ending with a letter or digit",
        )
    for field, uri in _uris(detail):
        if not _URI.fullmatch(uri):
            raise bad(field, _NOT_URI)
    packages: dict[tuple[str, str, str], int] = {}
    for i, p in enumerate(detail.packages or ()):
        key = (p.registry_type, p.identifier, _transport(p.transport))
        if key in packages:
            raise bad(
                f"packages[{i}]",
                f"the same package as packages[{packages[key]}] "
                "(registryType, identifier and transport)",
            )
        packages[key] = i
    remotes: dict[tuple[str, str], int] = {}
    for i, r in enumerate(detail.remotes or ()):
        rkey = (_transport(r), r.url)
        if rkey in remotes:
            raise bad(
                f"remotes[{i}]", f"the same remote as remotes[{remotes[rkey]}] (type and url)"
            )
        remotes[rkey] = i
    _check_meta(detail.meta, max_meta_size, bad)
    canonical = msgspec.json.encode(detail, order="sorted")
    sha = hashlib.sha256(canonical).hexdigest()
    return ServerEntry(index, name, detail.version, raw, sha, _tags(detail.meta))


def _uris(detail: ServerDetail) -> Iterable[tuple[str, str]]:
    """The fields the official document declares ``format: uri``, with their values."""
    if detail.schema is not None:
        yield "$schema", detail.schema
    if detail.website_url is not None:
        yield "websiteUrl", detail.website_url
    if detail.repository is not None:
        yield "repository.url", detail.repository.url
    for i, icon in enumerate(detail.icons or ()):
        yield f"icons[{i}].src", icon.src
    for i, package in enumerate(detail.packages or ()):
        if package.registry_base_url is not None:
            yield f"packages[{i}].registryBaseUrl", package.registry_base_url


def _skill(source: str, index: int, raw: msgspec.Raw, max_meta_size: int) -> SkillEntry:
    try:
        skill = msgspec.json.decode(raw, type=Skill)
    except msgspec.ValidationError as e:
        reason, field = _reason(e)
        raw_name = _name_of(raw, "namespace")
        raise _bad(source, "skills", index, raw_name, field, reason) from None
    name = f"{skill.namespace}/{skill.name}"

    def bad(field: str, reason: str) -> InvalidEntry:
        return _bad(source, "skills", index, name, field, reason)

    if not _NAMESPACE.match(skill.namespace):
        raise bad(
            "namespace",
            "a namespace is reverse-DNS: letters, digits, '.' and '-', "
            "starting and ending with a letter or digit",
        )
    if not _LOCAL_NAME.match(skill.name):
        raise bad(
            "name",
            "a skill name is letters, digits, '.', '_' and '-', starting and "
            "ending with a letter or digit",
        )
    if len(name) > 200:
        raise bad("name", "namespace/name is longer than 200 characters")
    _check_meta(skill.meta, max_meta_size, bad)
    canonical = msgspec.json.encode(skill, order="sorted")
    sha = hashlib.sha256(canonical).hexdigest()
    status = (skill.status or "active").upper()
    return SkillEntry(index, name, skill.version, status, raw, sha)


def _check_meta(meta: dict[str, Any] | None, limit: int, bad: Any) -> None:
    if meta is not None and len(size := msgspec.json.encode(meta)) > limit:
        raise bad("_meta", f"{len(size)} bytes, over the {limit}-byte limit (database.maxMetaSize)")


def _transport(t: Any) -> str:
    return str(type(t).__struct_config__.tag)


def _tags(meta: dict[str, Any] | None) -> tuple[str, ...]:
    """ToolHive's tags: ``_meta[publisher-provided][namespace][identifier].tags``."""
    found: list[str] = []
    provided = (meta or {}).get(PUBLISHER_META_KEY)
    if isinstance(provided, dict):
        for per_namespace in provided.values():
            if isinstance(per_namespace, dict):
                for extension in per_namespace.values():
                    if isinstance(extension, dict) and isinstance(extension.get("tags"), list):
                        found.extend(t for t in extension["tags"] if isinstance(t, str))
    return tuple(found)


def _keep(
    name: str, tags: Iterable[str], names: PatternSpec | None, tag_spec: PatternSpec | None
) -> bool:
    """The Go edition's rules: exclude wins; with includes, one must match; globs throughout
    (``*`` also matches ``/``)."""
    if names is not None:
        if any(fnmatchcase(name, p) for p in names.exclude):
            return False
        if names.include and not any(fnmatchcase(name, p) for p in names.include):
            return False
    if tag_spec is not None:
        tags = tuple(tags)
        if any(fnmatchcase(t, p) for t in tags for p in tag_spec.exclude):
            return False
        if tag_spec.include and not any(fnmatchcase(t, p) for t in tags for p in tag_spec.include):
            return False
    return True


# -- error details ---------------------------------------------------------------------------


def _bad(
    source: str, kind: str, index: int, name: str | None, field: str, reason: str
) -> InvalidEntry:
    return InvalidEntry(source, kind, index, name, field, reason)


def _reason(e: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's "Expected `str`, got `int` - at `$.packages[0].identifier`" as (reason, field)."""
    text = str(e)
    reason, sep, where = text.rpartition(" - at `")
    if not sep:
        return text, ""
    return reason, where.rstrip("`").removeprefix("$").removeprefix(".")


def _name_of(raw: msgspec.Raw, namespace_key: str | None = None) -> str | None:
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    if namespace_key and isinstance(obj.get(namespace_key), str):
        return f"{obj[namespace_key]}/{obj['name']}"
    return str(obj["name"])
