"""Seed registry data straight into a migrated database with SQL (for the store's tests).

``Seed`` writes sources, registries, server versions with their full ServerDetail (packages,
remotes, icons from a server.json dict) and skills, the way the sync writer stores them
(JSON columns hold the wire JSON; ``version_sort_key`` from the semver module). Nothing here
goes through the code under test.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from conftest import REPO_ROOT, TestDatabase
from thv_registry.config import ConnectionParams
from thv_registry.migrations import Migrator, Source, Up
from thv_registry.registry.semver import version_sort_key

T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


def migrate(database: TestDatabase) -> None:
    s = database.server
    params = ConnectionParams(s.host, s.port, s.user, database.name, "disable")
    Migrator(params, Source.from_directory(REPO_ROOT / "database" / "migrations")).apply(Up())


def _j(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


class Seed:
    """Writes registry rows over one autocommit connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.entries: dict[tuple[uuid.UUID, str, str], uuid.UUID] = {}
        self.clock = T0

    def one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        row = self.conn.execute(query, params).fetchone()
        assert row is not None
        return row[0]

    def registry(self, name: str, sources: list[str]) -> list[uuid.UUID]:
        """A registry over these sources, in priority order (created as needed)."""
        registry_id = self.one(
            "INSERT INTO registry (name) VALUES (%s) ON CONFLICT (name) DO UPDATE"
            " SET name = EXCLUDED.name RETURNING id",
            (name,),
        )
        ids = []
        for position, source in enumerate(sources):
            source_id = self.one(
                "INSERT INTO source (name, source_type) VALUES (%s, 'file')"
                " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                (source,),
            )
            self.conn.execute(
                "INSERT INTO registry_source (registry_id, source_id, position)"
                " VALUES (%s, %s, %s)",
                (registry_id, source_id, position),
            )
            ids.append(source_id)
        return ids

    def entry(self, source_id: uuid.UUID, name: str, kind: str = "MCP") -> uuid.UUID:
        key = (source_id, kind, name)
        if key not in self.entries:
            self.entries[key] = self.one(
                "INSERT INTO registry_entry (source_id, entry_type, name) VALUES (%s, %s, %s)"
                " RETURNING id",
                key,
            )
        return self.entries[key]

    def _version(
        self,
        entry_id: uuid.UUID,
        version: str,
        title: str | None,
        description: str | None,
        status: str,
        published_at: datetime.datetime | None,
    ) -> uuid.UUID:
        if published_at is None:
            self.clock += datetime.timedelta(minutes=1)
            published_at = self.clock
        return self.one(  # type: ignore[no-any-return]
            "INSERT INTO entry_version (entry_id, version, title, description, status,"
            " published_at, updated_at, version_sort_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (
                entry_id,
                version,
                title,
                description,
                status,
                published_at,
                published_at,
                version_sort_key(version),
            ),
        )

    def latest(self, entry_id: uuid.UUID, version: str) -> None:
        self.conn.execute(
            "INSERT INTO latest_entry_version (entry_id, version) VALUES (%s, %s)"
            " ON CONFLICT (entry_id) DO UPDATE SET version = EXCLUDED.version",
            (entry_id, version),
        )

    def server(
        self,
        source_id: uuid.UUID,
        name: str,
        version: str,
        *,
        detail: dict[str, Any] | None = None,
        status: str = "ACTIVE",
        published_at: datetime.datetime | None = None,
        latest: bool = False,
        description: str | None = None,
    ) -> uuid.UUID:
        """One server version; ``detail`` is a server.json dict for the ServerDetail rows."""
        d = detail or {}
        entry_id = self.entry(source_id, name)
        vid = self._version(
            entry_id,
            version,
            d.get("title"),
            d.get("description", description if description is not None else f"{name} server"),
            status,
            published_at,
        )
        repo = d.get("repository") or {}
        self.conn.execute(
            "INSERT INTO mcp_server (version_id, website, schema_url, repository_url,"
            " repository_type, repository_id, repository_subfolder, server_meta)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                vid,
                d.get("websiteUrl"),
                d.get("$schema"),
                repo.get("url"),
                repo.get("source"),
                repo.get("id"),
                repo.get("subfolder"),
                _j(d.get("_meta")),
            ),
        )
        for pos, p in enumerate(d.get("packages", [])):
            t = p["transport"]
            self.conn.execute(
                "INSERT INTO mcp_server_package (server_id, position, registry_type,"
                " pkg_registry_url, pkg_identifier, pkg_version, sha256_hash, runtime_hint,"
                " runtime_arguments, package_arguments, env_vars, transport, transport_url,"
                " transport_headers) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s, %s)",
                (
                    vid,
                    pos,
                    p["registryType"],
                    p.get("registryBaseUrl"),
                    p["identifier"],
                    p.get("version"),
                    p.get("fileSha256"),
                    p.get("runtimeHint"),
                    _j(p.get("runtimeArguments")),
                    _j(p.get("packageArguments")),
                    _j(p.get("environmentVariables")),
                    t["type"],
                    t.get("url"),
                    _j(t.get("headers")),
                ),
            )
        for pos, r in enumerate(d.get("remotes", [])):
            self.conn.execute(
                "INSERT INTO mcp_server_remote (server_id, position, transport, transport_url,"
                " transport_headers, transport_variables) VALUES (%s, %s, %s, %s, %s, %s)",
                (vid, pos, r["type"], r["url"], _j(r.get("headers")), _j(r.get("variables"))),
            )
        for pos, i in enumerate(d.get("icons", [])):
            theme = i["theme"].upper() if i.get("theme") else None
            self.conn.execute(
                "INSERT INTO mcp_server_icon (server_id, position, source_uri, mime_type, sizes,"
                " theme) VALUES (%s, %s, %s, %s, %s, %s)",
                (vid, pos, i["src"], i.get("mimeType"), i.get("sizes"), theme),
            )
        if latest:
            self.latest(entry_id, version)
        return vid

    def skill(
        self,
        source_id: uuid.UUID,
        namespace: str,
        name: str,
        version: str,
        *,
        status: str = "ACTIVE",
        latest: bool = False,
        oci: list[str] = (),  # type: ignore[assignment]
        git: list[str] = (),  # type: ignore[assignment]
        description: str = "a skill",
        extra: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        entry_id = self.entry(source_id, f"{namespace}/{name}", "SKILL")
        vid = self._version(entry_id, version, None, description, status, None)
        e = extra or {}
        self.conn.execute(
            "INSERT INTO skill (version_id, namespace, license, compatibility, allowed_tools,"
            " repository, icons, metadata, extension_meta) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " %s, %s)",
            (
                vid,
                namespace,
                e.get("license"),
                e.get("compatibility"),
                e.get("allowedTools"),
                _j(e.get("repository")),
                _j(e.get("icons")),
                _j(e.get("metadata")),
                _j(e.get("_meta")),
            ),
        )
        for pos, identifier in enumerate(oci):
            self.conn.execute(
                "INSERT INTO skill_oci_package (skill_id, position, identifier)"
                " VALUES (%s, %s, %s)",
                (vid, pos, identifier),
            )
        for pos, url in enumerate(git):
            self.conn.execute(
                "INSERT INTO skill_git_package (skill_id, position, url) VALUES (%s, %s, %s)",
                (vid, pos, url),
            )
        if latest:
            self.latest(entry_id, version)
        return vid
