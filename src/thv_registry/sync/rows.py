"""Rows for the writer's COPY: one validated entry (server or skill version) as column tuples.

Each ``*_rows`` function returns the tuples of one staging table (column order as in
:mod:`thv_registry.sync.writer`'s ``STAGES``), keyed by ``(entry_id, version)``. JSON columns
hold the wire JSON of the registry models (camelCase), which the store decodes again.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from thv_registry.registry.models import ServerDetail, Skill
from thv_registry.sync.upstream import ServerEntry, SkillEntry

__all__ = ["Staged", "stage_server", "stage_skill"]

Row = tuple[Any, ...]


class Staged:
    """The rows of every staging table, filled entry by entry."""

    def __init__(self) -> None:
        self.version: list[Row] = []
        self.mcp_server: list[Row] = []
        self.package: list[Row] = []
        self.remote: list[Row] = []
        self.icon: list[Row] = []
        self.skill: list[Row] = []
        self.skill_oci: list[Row] = []
        self.skill_git: list[Row] = []


def _json(value: Any) -> str | None:
    return None if value is None else msgspec.json.encode(value).decode()


def _tag(struct: Any) -> str:
    return str(type(struct).__struct_config__.tag)


def stage_server(staged: Staged, entry_id: uuid.UUID, entry: ServerEntry, sort_key: bytes) -> None:
    d: ServerDetail = entry.detail
    key = (entry_id, d.version)
    staged.version.append((*key, d.title, d.description, "ACTIVE", sort_key, entry.content_sha256))
    repo = d.repository
    staged.mcp_server.append(
        (
            *key,
            d.website_url,
            d.schema,
            repo.url if repo else None,
            repo.source if repo else None,
            repo.id if repo else None,
            repo.subfolder if repo else None,
            _json(d.meta),
        )
    )
    for position, p in enumerate(d.packages or ()):
        t = p.transport
        url = getattr(t, "url", None)
        headers = getattr(t, "headers", None)
        staged.package.append(
            (
                *key,
                position,
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
                url,
                _json(headers),
            )
        )
    for position, r in enumerate(d.remotes or ()):
        staged.remote.append((*key, position, _tag(r), r.url, _json(r.headers), _json(r.variables)))
    for position, i in enumerate(d.icons or ()):
        theme = i.theme.upper() if i.theme else None
        staged.icon.append((*key, position, i.src, i.mime_type, i.sizes, theme))


def stage_skill(staged: Staged, entry_id: uuid.UUID, entry: SkillEntry, sort_key: bytes) -> None:
    s: Skill = entry.skill
    key = (entry_id, s.version)
    status = (s.status or "active").upper()
    staged.version.append((*key, s.title, s.description, status, sort_key, entry.content_sha256))
    staged.skill.append(
        (
            *key,
            s.namespace,
            s.license,
            s.compatibility,
            s.allowed_tools,
            _json(s.repository),
            _json(s.icons),
            _json(s.metadata),
            _json(s.meta),
        )
    )
    oci = git = 0
    for p in s.packages or ():
        if p.registry_type == "oci":
            staged.skill_oci.append((*key, oci, p.identifier, p.digest, p.media_type))
            oci += 1
        else:
            staged.skill_git.append((*key, git, p.url, p.ref, p.commit, p.subfolder))
            git += 1
