"""Write one source's validated entries in one transaction, set-based.

The statements on the temp table (``COPY`` into it, the upserts and inserts fed from it) are
here, as ``psycopg.sql`` compositions and constants, because sqlc cannot see a temp table; the
others are in ``database/queries/sync.sql`` (SourceVersions to TouchVersions), called through
the generated coroutines of ``queries.aio.sync``.

The plan is made in Python from one read of what the source holds now (every entry and
version with its content hash, status and latest flag):

- new names become ``registry_entry`` rows (one ``INSERT ... SELECT FROM unnest``);
- new versions, versions whose content hash differs and deleted versions that came back are
  the *changed* ones: only they are COPYed into staging tables and upserted (``updated_at``
  moves; ``published_at`` is set on first insert only), and only their detail rows
  (``mcp_server`` and its packages, remotes, icons; ``skill`` and its packages) are replaced;
- versions the source no longer has become ``DELETED`` (``updated_at`` moves);
- each entry's latest pointer is recomputed (:func:`~thv_registry.registry.semver.latest_of`
  over the versions in the file); a version whose latest flag flips gets a new ``updated_at``.

Nothing else is touched, so a re-sync of an unchanged file writes no row. The caller owns the
transaction (:func:`write` must run inside one) and the sync status.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

from thv_registry.queries.aio import sync as q
from thv_registry.queries.models import EntryType
from thv_registry.registry.generation import bump_source
from thv_registry.registry.semver import latest_of
from thv_registry.sync.rows import COLUMNS, Changed, stage_rows
from thv_registry.sync.upstream import UpstreamData

__all__ = ["WriteResult", "write"]

Key = tuple[EntryType, str]  #: (entry_type, name)
#: staging rows made, or entries planned, between two turns of the event loop: each stretch
#: of CPU work stays about a millisecond, so requests are served while a large source is written
#: (benchmarks/sync_read_bench.py)
YIELD_EVERY = 250
#: while rows are made for the COPY, every YIELD_EVERY rows the writer steps aside this long (not
#: just one turn): a read needs several turns of the loop (its queries' answers, its response),
#: and with the writer back at every turn each of them waited behind a stretch of row-making
TURN_S = 0.001
#: The tables a write changes. After a large write (autovacuum's rule: more than 50 + 10 % of
#: the versions held before), they are ANALYZEd in the write's transaction, so the new rows and
#: their statistics appear together: without statistics (a first sync into an empty database,
#: before autovacuum's next round, or never where it is off) PostgreSQL plans the listing to
#: sort every name at each step, 1.4 s a page for 10,000 servers instead of 2 ms
#: (benchmarks/api_bench.py). A user who does not own the tables gets a warning, no error.
_ANALYZE = (
    "ANALYZE registry_entry, entry_version, latest_entry_version, mcp_server, "
    "mcp_server_package, mcp_server_remote, mcp_server_icon, skill, skill_oci_package, "
    "skill_git_package"
)

_UPSERT_VERSIONS = """
INSERT INTO entry_version AS v (id, entry_id, version, title, description, status,
                                version_sort_key, content_sha256)
SELECT version_id, entry_id, version, t1, t2, t3::version_status, sort_key, t4
  FROM stage WHERE kind = 'version'
ON CONFLICT (entry_id, version) DO UPDATE SET
    title = EXCLUDED.title,
    description = EXCLUDED.description,
    status = EXCLUDED.status,
    status_message = NULL,
    status_changed_at = CASE WHEN v.status IS DISTINCT FROM EXCLUDED.status
                             THEN now() ELSE v.status_changed_at END,
    version_sort_key = EXCLUDED.version_sort_key,
    content_sha256 = EXCLUDED.content_sha256,
    updated_at = now()
"""
#: kind -> the insert of its target table from the staging rows of that kind
INSERTS: dict[str, str] = {
    "mcp_server": """
INSERT INTO mcp_server (version_id, website, schema_url, repository_url, repository_type,
                        repository_id, repository_subfolder, server_meta)
SELECT s.version_id, s.t1, s.t2, s.t3, s.t4, s.t5, s.t6, s.t7::jsonb
  FROM stage s WHERE s.kind = 'mcp_server'""",
    "package": """
INSERT INTO mcp_server_package (server_id, position, registry_type, pkg_registry_url,
    pkg_identifier, pkg_version, sha256_hash, runtime_hint, runtime_arguments,
    package_arguments, env_vars, transport, transport_url, transport_headers)
SELECT s.version_id, s.position, s.t1, s.t2, s.t3, s.t4, s.t5, s.t6, s.t7::jsonb, s.t8::jsonb,
       s.t9::jsonb, s.t10::transport_type, s.t11, s.t12::jsonb
  FROM stage s WHERE s.kind = 'package'""",
    "remote": """
INSERT INTO mcp_server_remote (server_id, position, transport, transport_url,
                               transport_headers, transport_variables)
SELECT s.version_id, s.position, s.t1::transport_type, s.t2, s.t3::jsonb, s.t4::jsonb
  FROM stage s WHERE s.kind = 'remote'""",
    "icon": """
INSERT INTO mcp_server_icon (server_id, position, source_uri, mime_type, sizes, theme)
SELECT s.version_id, s.position, s.t1, s.t2, s.arr, s.t3::icon_theme
  FROM stage s WHERE s.kind = 'icon'""",
    "skill": """
INSERT INTO skill (version_id, namespace, license, compatibility, allowed_tools, repository,
                   icons, metadata, extension_meta)
SELECT s.version_id, s.t1, s.t2, s.t3, s.arr, s.t4::jsonb, s.t5::jsonb, s.t6::jsonb, s.t7::jsonb
  FROM stage s WHERE s.kind = 'skill'""",
    "skill_oci": """
INSERT INTO skill_oci_package (skill_id, position, identifier, digest, media_type)
SELECT s.version_id, s.position, s.t1, s.t2, s.t3
  FROM stage s WHERE s.kind = 'skill_oci'""",
    "skill_git": """
INSERT INTO skill_git_package (skill_id, position, url, ref, commit_sha, subfolder)
SELECT s.version_id, s.position, s.t1, s.t2, s.t3, s.t4
  FROM stage s WHERE s.kind = 'skill_git'""",
}

#: the detail rows of changed versions go (their children cascade) before the new ones come
_DROP_DETAILS = """
DELETE FROM {table} d USING stage s WHERE s.kind = 'version' AND d.version_id = s.version_id
"""


@dataclass(frozen=True)
class WriteResult:
    servers: int  #: MCP server names the source now has (after the filter)
    skills: int  #: skill names
    versions: int  #: versions in the file (after the filter)
    changed: int  #: versions inserted, rewritten or reactivated
    deleted: int  #: versions marked deleted because the source no longer has them
    latest_moved: int  #: entries whose latest version changed

    @property
    def wrote(self) -> bool:
        return bool(self.changed or self.deleted or self.latest_moved)


@dataclass
class _Version:
    id: uuid.UUID
    sha: str | None
    status: str
    published_at: datetime.datetime


async def write(
    conn: AsyncConnection[Any],
    source_id: uuid.UUID,
    data: UpstreamData,
    *,
    claims: dict[str, Any] | None = None,
    removed: frozenset[tuple[str, str]] | None = None,
) -> WriteResult:
    """Make the source's rows match ``data``; run inside the caller's transaction.

    ``removed`` None: ``data`` is everything the source has (a version it lacks is marked
    deleted). Otherwise ``data`` holds only what changed (an incremental fetch): the source's
    other versions stay as they are, and only the server versions in ``removed`` (name,
    version) are marked deleted; counts and latest pointers are over the merged result.
    """
    entries: dict[Key, uuid.UUID] = {}
    current: dict[Key, dict[str, _Version]] = defaultdict(dict)
    old_latest: dict[Key, str | None] = {}
    for n, r in enumerate(await q.source_versions(conn, source_id=source_id), 1):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        key: Key = (r.entry_type, r.name)
        entries[key] = r.entry_id
        old_latest[key] = r.latest_version
        if r.version_id is not None:
            assert r.version is not None and r.status is not None and r.published_at is not None
            current[key][r.version] = _Version(
                r.version_id, r.content_sha256, r.status, r.published_at
            )

    wanted: dict[Key, dict[str, Any]] = defaultdict(dict)
    for s in data.servers:
        wanted[("MCP", s.name)][s.version] = s
    for k in data.skills:
        wanted[("SKILL", k.name)][k.version] = k

    new_keys = [key for key in wanted if key not in entries]
    if new_keys:
        created = await q.insert_entries(
            conn,
            source_id=source_id,
            claims=claims or None,
            entry_types=[k[0] for k in new_keys],
            names=[k[1] for k in new_keys],
        )
        for e in created:
            entries[(e.entry_type, e.name)] = e.id

    changes = Changed()
    for n, (key, versions) in enumerate(wanted.items(), 1):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        have = current.get(key, {})
        into: list[Any] = changes.servers if key[0] == "MCP" else changes.skills
        for version, entry in versions.items():
            old = have.get(version)
            if old and old.sha == entry.content_sha256 and old.status != "DELETED":
                continue
            into.append((old.id if old else uuid.uuid4(), entries[key], entry))
    changed = len(changes)

    vanished = [
        v.id
        for key, have in current.items()
        for version, v in have.items()
        if v.status != "DELETED"
        and version not in wanted.get(key, {})
        and (removed is None or (key[0] == "MCP" and (key[1], version) in removed))
    ]
    live_count: dict[Key, int] = {}

    set_ids: list[uuid.UUID] = []
    set_versions: list[str] = []
    drop_ids: list[uuid.UUID] = []
    touch: list[tuple[uuid.UUID, str]] = []
    now = datetime.datetime.now(datetime.UTC)  # a version first seen now is the newest published
    for n, key in enumerate(set(entries) | set(wanted), 1):
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        versions = wanted.get(key, {})
        if removed is not None:  # incremental: the versions kept, overlaid with the changes
            kept = {
                v: old
                for v, old in current.get(key, {}).items()
                if old.status != "DELETED" and (key[0] != "MCP" or (key[1], v) not in removed)
            }
            versions = kept | versions
        live = [v for v, e in versions.items() if _status(e) != "DELETED"]
        live_count[key] = len(live)
        first_seen: dict[str, datetime.datetime] = defaultdict(
            lambda: now, {v: old.published_at for v, old in current.get(key, {}).items()}
        )
        new = latest_of(live, published_at=first_seen.__getitem__)
        previous = old_latest.get(key)
        if new == previous:
            continue
        eid = entries[key]
        if new is None:
            drop_ids.append(eid)
        else:
            set_ids.append(eid)
            set_versions.append(new)
            touch.append((eid, new))
        if previous is not None:
            touch.append((eid, previous))

    if new_keys or changed or vanished or drop_ids or set_ids or touch:
        # what the API serves changes: the response cache's generation moves with it (the
        # caller holds the source's row, so this takes no new lock)
        await bump_source(conn, source_id)
    if changed:
        await _apply_stages(conn, changes)
    if vanished:
        await q.mark_versions_deleted(conn, version_ids=vanished)
    if drop_ids:
        await q.drop_latest_versions(conn, entry_ids=drop_ids)
    if set_ids:
        await q.set_latest_versions(conn, entry_ids=set_ids, versions=set_versions)
    if touch:
        await q.touch_versions(
            conn, entry_ids=[t[0] for t in touch], versions=[t[1] for t in touch]
        )
    held_before = sum(len(have) for have in current.values())
    if changed + len(vanished) > 50 + held_before // 10:
        await conn.execute(_ANALYZE)
    if removed is not None:  # counts of what the source holds after the changes
        held = {k: n for k, n in live_count.items() if n}
        return WriteResult(
            servers=sum(1 for k in held if k[0] == "MCP"),
            skills=sum(1 for k in held if k[0] == "SKILL"),
            versions=sum(held.values()),
            changed=changed,
            deleted=len(vanished),
            latest_moved=len(drop_ids) + len(set_ids),
        )
    return WriteResult(
        servers=sum(1 for k in wanted if k[0] == "MCP"),
        skills=sum(1 for k in wanted if k[0] == "SKILL"),
        versions=len(data.servers) + len(data.skills),
        changed=changed,
        deleted=len(vanished),
        latest_moved=len(drop_ids) + len(set_ids),
    )


def _status(entry: Any) -> str:
    return str(getattr(entry, "status", "ACTIVE"))


async def _apply_stages(conn: AsyncConnection[Any], changes: Changed) -> None:
    """COPY the staging rows, upsert the versions, replace the changed versions' details."""
    await conn.execute(f"CREATE TEMP TABLE stage ({COLUMNS}) ON COMMIT DROP")
    kinds: set[str] = set()
    async with conn.cursor().copy("COPY stage FROM STDIN") as copy:
        for n, row in enumerate(stage_rows(changes), 1):
            kinds.add(row[0])
            await copy.write_row(row)
            if n % YIELD_EVERY == 0:  # making rows is CPU work: let requests be served between
                await asyncio.sleep(TURN_S)
    await conn.execute("ANALYZE stage")
    await conn.execute(_UPSERT_VERSIONS)
    if changes.servers:
        await conn.execute(sql.SQL(_DROP_DETAILS).format(table=sql.Identifier("mcp_server")))
    if changes.skills:
        await conn.execute(sql.SQL(_DROP_DETAILS).format(table=sql.Identifier("skill")))
    for kind, insert in INSERTS.items():
        if kind in kinds:
            await conn.execute(insert)
