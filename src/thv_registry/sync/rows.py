"""Rows for the writer's one COPY: every changed version, decoded once, as rows of one
staging table ``stage`` whose ``kind`` says which target table a row is for.

A row is ``(kind, version_id, entry_id, version, position, sort_key, arr, t1 .. t12)``.
``version_id`` is known before the write (the stored one, or a new uuid4), so detail rows need
no join to find their version; the text columns ``t1..t12`` carry each kind's fields in the
order :mod:`thv_registry.sync.writer` reads them (cast there to jsonb or an enum), ``arr`` a
text array (icon sizes, allowed tools). Rows are made while COPY sends them, one entry decoded
at a time, so a first sync of a large file never holds its rows or its models all at once.
JSON columns hold the wire JSON of the registry models (camelCase), which the store decodes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import msgspec

from thv_registry.registry.semver import version_sort_key
from thv_registry.sync.upstream import ServerEntry, SkillEntry

__all__ = ["Changed", "COLUMNS", "TEXTS", "stage_rows"]

Row = tuple[Any, ...]
TEXTS = 12  #: t1 .. t12
COLUMNS = (
    "kind text, version_id uuid, entry_id uuid, version text, position integer, sort_key bytea,"
    " arr text[], " + ", ".join(f"t{i} text" for i in range(1, TEXTS + 1))
)
_encode = msgspec.json.Encoder().encode


class Changed:
    """The versions to (re)write: servers and skills, each with its entry id."""

    def __init__(self) -> None:
        #: (version id, entry id, entry)
        self.servers: list[tuple[uuid.UUID, uuid.UUID, ServerEntry]] = []
        self.skills: list[tuple[uuid.UUID, uuid.UUID, SkillEntry]] = []

    def __len__(self) -> int:
        return len(self.servers) + len(self.skills)


def _json(value: Any) -> str | None:
    return None if value is None else _encode(value).decode()


def _tag(struct: Any) -> str:
    return str(type(struct).__struct_config__.tag)


def _row(
    kind: str,
    ids: tuple[uuid.UUID, uuid.UUID],
    version: str,
    texts: tuple[Any, ...],
    position: int | None = None,
    sort_key: bytes | None = None,
    arr: list[str] | None = None,
) -> Row:
    pad = (None,) * (TEXTS - len(texts))
    return (kind, *ids, version, position, sort_key, arr, *texts, *pad)


def stage_rows(changes: Changed) -> Iterator[Row]:
    """Every staging row of the changed versions."""
    for vid, eid, entry in changes.servers:
        ids = (vid, eid)
        d = entry.decode()
        v = d.version
        key = version_sort_key(v)
        yield _row(
            "version",
            ids,
            v,
            (d.title, d.description, "ACTIVE", entry.content_sha256),
            sort_key=key,
        )
        repo = d.repository
        yield _row(
            "mcp_server",
            ids,
            v,
            (
                d.website_url,
                d.schema,
                repo.url if repo else None,
                repo.source if repo else None,
                repo.id if repo else None,
                repo.subfolder if repo else None,
                _json(d.meta),
            ),
        )
        for position, p in enumerate(d.packages or ()):
            t = p.transport
            yield _row(
                "package",
                ids,
                v,
                (
                    p.registry_type,
                    p.registry_base_url,
                    p.identifier,
                    p.version,
                    p.file_sha256,
                    p.runtime_hint,
                    _json(p.runtime_arguments),
                    _json(p.package_arguments),
                    _json(p.environment_variables),
                    _tag(t),
                    getattr(t, "url", None),
                    _json(getattr(t, "headers", None)),
                ),
                position,
            )
        for position, r in enumerate(d.remotes or ()):
            yield _row(
                "remote", ids, v, (_tag(r), r.url, _json(r.headers), _json(r.variables)), position
            )
        for position, i in enumerate(d.icons or ()):
            theme = i.theme.upper() if i.theme else None
            yield _row("icon", ids, v, (i.src, i.mime_type, theme), position, arr=i.sizes)
    for vid, eid, k in changes.skills:
        ids = (vid, eid)
        s = k.decode()
        v = s.version
        key = version_sort_key(v)
        yield _row(
            "version", ids, v, (s.title, s.description, k.status, k.content_sha256), sort_key=key
        )
        yield _row(
            "skill",
            ids,
            v,
            (
                s.namespace,
                s.license,
                s.compatibility,
                _json(s.repository),
                _json(s.icons),
                _json(s.metadata),
                _json(s.meta),
            ),
            arr=s.allowed_tools,
        )
        oci = git = 0
        for sp in s.packages or ():
            if sp.registry_type == "oci":
                yield _row("skill_oci", ids, v, (sp.identifier, sp.digest, sp.media_type), oci)
                oci += 1
            else:
                yield _row("skill_git", ids, v, (sp.url, sp.ref, sp.commit, sp.subfolder), git)
                git += 1
