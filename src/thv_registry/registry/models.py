"""The wire shapes of the registry API as msgspec Structs.

They mirror the schemas of the official MCP Registry OpenAPI document (``ServerDetail``, the
server.json of a version, with its packages, transports, remotes, icons and repository;
``ServerResponse`` and ``ServerList``) field for field, plus the ToolHive skills extension
(``/x/dev.toolhive/skills``, the shapes the Go edition serves). Python attributes are
snake_case; on the wire they are camelCase, ``$schema`` and ``_meta`` keep their exact names.

Decoding is strict: required fields, types, enums, lengths and patterns of the document are
checked, so ``msgspec.convert(entry, ServerDetail)`` (or ``msgspec.json.decode(data,
type=ServerDetail)``) validates one upstream server.json entry and raises
``msgspec.ValidationError`` with the JSON path of the first bad field. Unknown keys are ignored,
as the document allows them. Optional fields default to ``None`` and are omitted when encoding,
so what a publisher wrote comes back as written; a whole response encodes with one
``msgspec.json.encode`` call.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, field

__all__ = [
    "OFFICIAL_META_KEY",
    "PUBLISHER_META_KEY",
    "SCHEMA_URL",
    "Argument",
    "Icon",
    "Input",
    "InputWithVariables",
    "KeyValueInput",
    "ListMetadata",
    "LocalTransport",
    "NamedArgument",
    "OfficialMeta",
    "Package",
    "PositionalArgument",
    "RemoteTransport",
    "Repository",
    "ResponseMeta",
    "ServerDetail",
    "ServerListResponse",
    "ServerResponse",
    "Skill",
    "SkillIcon",
    "SkillListResponse",
    "SkillPackage",
    "SkillRepository",
    "SseRemote",
    "SseTransport",
    "Status",
    "StdioTransport",
    "StreamableHttpRemote",
    "StreamableHttpTransport",
]

#: ``_meta`` key of the registry-managed metadata of a version (ServerResponse._meta).
OFFICIAL_META_KEY = "io.modelcontextprotocol.registry/official"
#: ``_meta`` key of the publisher's own metadata (ServerDetail._meta).
PUBLISHER_META_KEY = "io.modelcontextprotocol.registry/publisher-provided"
#: The server.json schema this edition serves (the Go edition's constant).
SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"

#: Lifecycle status of a version, as the API spells it (the database stores it upper-case).
Status = Literal["active", "deprecated", "deleted"]

_URL_TEMPLATE = r"^(https?://[^\s]+|\{[a-zA-Z_][a-zA-Z0-9_]*\}[^\s]*)$"
_NAME = r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$"
_NonEmpty = Annotated[str, Meta(min_length=1)]
_UrlTemplate = Annotated[str, Meta(pattern=_URL_TEMPLATE)]
#: Version strings that are ranges, not versions (the document rejects them), or reserved.
_RANGE_PREFIXES = ("^", "~", ">", "<", "=", "!")


class _Wire(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    """Base of every wire shape: camelCase keys, ``None``/defaults omitted, keyword-only."""


# --- ServerDetail and its parts ---------------------------------------------------------------


class Repository(_Wire, kw_only=True):
    url: _NonEmpty
    source: str
    id: str | None = None
    subfolder: str | None = None


class Input(_Wire, kw_only=True):
    description: str | None = None
    is_required: bool | None = None
    format: Literal["string", "number", "boolean", "filepath"] | None = None
    value: str | None = None
    is_secret: bool | None = None
    default: str | None = None
    placeholder: str | None = None
    choices: list[str] | None = None


class InputWithVariables(Input, kw_only=True):
    variables: dict[str, Input] | None = None


class KeyValueInput(InputWithVariables, kw_only=True):
    """A header or environment variable."""

    name: str


class PositionalArgument(InputWithVariables, tag_field="type", tag="positional", kw_only=True):
    value_hint: str | None = None
    is_repeated: bool | None = None

    def __post_init__(self) -> None:
        if self.value_hint is None and self.value is None:
            raise ValueError("a positional argument needs `valueHint` or `value`")


class NamedArgument(InputWithVariables, tag_field="type", tag="named", kw_only=True):
    name: str
    is_repeated: bool | None = None


Argument = PositionalArgument | NamedArgument


class StdioTransport(_Wire, tag_field="type", tag="stdio", kw_only=True):
    pass


class StreamableHttpTransport(_Wire, tag_field="type", tag="streamable-http", kw_only=True):
    url: _UrlTemplate
    headers: list[KeyValueInput] | None = None


class SseTransport(_Wire, tag_field="type", tag="sse", kw_only=True):
    url: _UrlTemplate
    headers: list[KeyValueInput] | None = None


LocalTransport = StdioTransport | StreamableHttpTransport | SseTransport


class StreamableHttpRemote(StreamableHttpTransport, kw_only=True):
    """A remote over streamable HTTP; ``variables`` fill the URL template's ``{names}``."""

    variables: dict[str, Input] | None = None


class SseRemote(SseTransport, kw_only=True):
    """A remote over server-sent events; ``variables`` fill the URL template's ``{names}``."""

    variables: dict[str, Input] | None = None


RemoteTransport = StreamableHttpRemote | SseRemote


class Package(_Wire, kw_only=True):
    registry_type: _NonEmpty
    registry_base_url: str | None = None
    identifier: _NonEmpty
    version: _NonEmpty | None = None
    file_sha256: Annotated[str, Meta(pattern=r"^[a-f0-9]{64}$")] | None = None
    runtime_hint: str | None = None
    transport: LocalTransport
    runtime_arguments: list[Argument] | None = None
    package_arguments: list[Argument] | None = None
    environment_variables: list[KeyValueInput] | None = None

    def __post_init__(self) -> None:
        if self.version == "latest":
            raise ValueError("a package version must be a specific version, not `latest`")


class Icon(_Wire, kw_only=True):
    src: Annotated[str, Meta(min_length=1, max_length=255)]
    mime_type: (
        Literal["image/png", "image/jpeg", "image/jpg", "image/svg+xml", "image/webp"] | None
    ) = None
    sizes: list[Annotated[str, Meta(pattern=r"^(\d+x\d+|any)$")]] | None = None
    theme: Literal["light", "dark"] | None = None


class ServerDetail(_Wire, kw_only=True):
    """server.json: one version of an MCP server as its publisher describes it."""

    schema: str | None = field(default=None, name="$schema")
    name: Annotated[str, Meta(min_length=3, max_length=200, pattern=_NAME)]
    description: Annotated[str, Meta(min_length=1, max_length=100)]
    title: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    version: Annotated[str, Meta(min_length=1, max_length=255)]
    website_url: str | None = None
    repository: Repository | None = None
    icons: list[Icon] | None = None
    packages: list[Package] | None = None
    remotes: list[RemoteTransport] | None = None
    meta: dict[str, Any] | None = field(default=None, name="_meta")

    def __post_init__(self) -> None:
        check_version_text(self.version)
        if self.meta is not None and not isinstance(self.meta.get(PUBLISHER_META_KEY, {}), dict):
            raise ValueError(f"`_meta.{PUBLISHER_META_KEY}` must be an object")


def check_version_text(version: str) -> None:
    """Refuse what the official document refuses as a version: ranges, wildcards, ``latest``.

    ``latest`` is reserved because ``.../versions/latest`` names the latest version.
    """
    if version == "latest":
        raise ValueError("`latest` is reserved and cannot be a version")
    if version != version.strip():
        raise ValueError("a version cannot start or end with white space")
    parts = version.split(".")
    if (
        version.startswith(_RANGE_PREFIXES)
        or "||" in version
        or " - " in version
        or any(p in ("x", "X", "*") for p in parts)
    ):
        raise ValueError(f"`{version}` is a version range; give one specific version")


# --- responses --------------------------------------------------------------------------------


class OfficialMeta(_Wire, kw_only=True, forbid_unknown_fields=True):
    """``_meta["io.modelcontextprotocol.registry/official"]``: registry-managed metadata."""

    status: Status
    status_message: Annotated[str, Meta(max_length=500)] | None = None
    status_changed_at: datetime.datetime | None = None
    published_at: datetime.datetime
    updated_at: datetime.datetime
    is_latest: bool


class ResponseMeta(_Wire, kw_only=True):
    official: OfficialMeta | None = field(default=None, name=OFFICIAL_META_KEY)


class ServerResponse(_Wire, kw_only=True):
    server: ServerDetail
    meta: ResponseMeta | None = field(default=None, name="_meta")


class ListMetadata(_Wire, kw_only=True):
    """Page metadata: ``nextCursor`` only when there is a next page."""

    next_cursor: str | None = None
    count: int


class ServerListResponse(_Wire, kw_only=True):
    servers: list[ServerResponse]
    metadata: ListMetadata


# --- skills (ToolHive extension /x/dev.toolhive/skills) ----------------------------------------


class SkillRepository(_Wire, kw_only=True):
    url: str | None = None
    type: str | None = None


class SkillIcon(_Wire, kw_only=True):
    src: _NonEmpty
    size: str | None = None
    type: str | None = None
    label: str | None = None


class SkillPackage(_Wire, kw_only=True):
    """One distribution of a skill version: an OCI artifact or a git checkout."""

    registry_type: Literal["oci", "git"]
    identifier: str | None = None  # oci
    digest: Annotated[str, Meta(pattern=r"^sha256:[a-f0-9]{64}$")] | None = None  # oci
    media_type: str | None = None  # oci
    url: str | None = None  # git
    ref: str | None = None  # git
    commit: Annotated[str, Meta(pattern=r"^[a-f0-9]{40}([a-f0-9]{24})?$")] | None = None  # git
    subfolder: str | None = None  # git

    def __post_init__(self) -> None:
        if self.registry_type == "oci" and not self.identifier:
            raise ValueError("an oci package needs `identifier`")
        if self.registry_type == "git" and not self.url:
            raise ValueError("a git package needs `url`")


class Skill(_Wire, kw_only=True):
    """One version of an Agent Skill (toolhive-core ``registry/types.Skill``)."""

    namespace: _NonEmpty
    name: _NonEmpty
    description: str
    version: Annotated[str, Meta(min_length=1, max_length=255)]
    status: Status | None = None
    title: str | None = None
    license: str | None = None
    compatibility: str | None = None
    allowed_tools: list[str] | None = None
    metadata: dict[str, Any] | None = None
    meta: dict[str, Any] | None = field(default=None, name="_meta")
    repository: SkillRepository | None = None
    icons: list[SkillIcon] | None = None
    packages: list[SkillPackage] | None = None

    def __post_init__(self) -> None:
        check_version_text(self.version)


class SkillListResponse(_Wire, kw_only=True):
    skills: list[Skill]
    metadata: ListMetadata
