-- Writes of a file-source sync: the source and registry named in the configuration, the
-- entries and versions read from the file, their ServerDetail rows, the latest pointers and
-- the sync state. Every upsert returns the row's id, whether it inserted or updated it, so a
-- sync can run again over the same data and converge. The sync service (thv_registry.sync) uses
-- the queries from LockReconcile on, through queries.aio.sync; its bulk writes of entry details
-- (temp table + COPY) stay in sync/writer.py, since sqlc cannot see a temp table. Run `task gen`
-- after editing this file.

-- name: UpsertSource :one
-- Create or update a source by name; returns its id.
INSERT INTO source (
    name, source_type, creation_type, source_config, filter_config, syncable, sync_schedule, claims
) VALUES (
    sqlc.arg('name'),
    sqlc.arg('source_type'),
    sqlc.arg('creation_type'),
    sqlc.narg('source_config'),
    sqlc.narg('filter_config'),
    sqlc.arg('syncable'),
    sqlc.narg('sync_schedule'),
    sqlc.narg('claims')
)
ON CONFLICT (name) DO UPDATE SET
    source_type = EXCLUDED.source_type,
    creation_type = EXCLUDED.creation_type,
    source_config = EXCLUDED.source_config,
    filter_config = EXCLUDED.filter_config,
    syncable = EXCLUDED.syncable,
    sync_schedule = EXCLUDED.sync_schedule,
    claims = EXCLUDED.claims,
    updated_at = now()
RETURNING id;

-- name: UpsertRegistry :one
-- Create or update a registry by name; returns its id.
INSERT INTO registry (name, creation_type, claims)
VALUES (sqlc.arg('name'), sqlc.arg('creation_type'), sqlc.narg('claims'))
ON CONFLICT (name) DO UPDATE SET
    creation_type = EXCLUDED.creation_type,
    claims = EXCLUDED.claims,
    updated_at = now()
RETURNING id;

-- name: UpsertRegistrySource :exec
-- Put a source into a registry at a position (or move it there).
INSERT INTO registry_source (registry_id, source_id, position)
VALUES (sqlc.arg('registry_id'), sqlc.arg('source_id'), sqlc.arg('position'))
ON CONFLICT (registry_id, source_id) DO UPDATE SET position = EXCLUDED.position;

-- name: UpsertRegistryEntry :one
-- Create or update an entry (one server name in one source); returns its id.
INSERT INTO registry_entry (source_id, entry_type, name, claims)
VALUES (sqlc.arg('source_id'), sqlc.arg('entry_type'), sqlc.arg('name'), sqlc.narg('claims'))
ON CONFLICT (source_id, entry_type, name) DO UPDATE SET
    claims = EXCLUDED.claims,
    updated_at = now()
RETURNING id;

-- name: UpsertEntryVersion :one
-- Create or update one version of an entry; returns its id. A NULL published_at means now
-- for a new version and keeps the stored one for an existing version. updated_at moves only
-- when a field really changes, so "updated_since" listings see real changes only.
INSERT INTO entry_version (
    entry_id, version, title, description, status, status_message, status_changed_at,
    published_at
) VALUES (
    sqlc.arg('entry_id'),
    sqlc.arg('version'),
    sqlc.narg('title'),
    sqlc.narg('description'),
    sqlc.arg('status'),
    sqlc.narg('status_message'),
    sqlc.narg('status_changed_at'),
    COALESCE(sqlc.narg('published_at')::timestamptz, now())
)
ON CONFLICT (entry_id, version) DO UPDATE SET
    title = EXCLUDED.title,
    description = EXCLUDED.description,
    status = EXCLUDED.status,
    status_message = EXCLUDED.status_message,
    status_changed_at = EXCLUDED.status_changed_at,
    published_at = COALESCE(sqlc.narg('published_at')::timestamptz, entry_version.published_at),
    updated_at = CASE
        WHEN (entry_version.title, entry_version.description, entry_version.status,
              entry_version.status_message)
             IS DISTINCT FROM
             (EXCLUDED.title, EXCLUDED.description, EXCLUDED.status, EXCLUDED.status_message)
        THEN now()
        ELSE entry_version.updated_at
    END
RETURNING id;

-- name: UpsertMcpServer :exec
-- Create or replace the ServerDetail fields of an MCP version.
INSERT INTO mcp_server (
    version_id, website, schema_url, repository_url, repository_type, repository_id,
    repository_subfolder, server_meta, upstream_meta
) VALUES (
    sqlc.arg('version_id'),
    sqlc.narg('website'),
    sqlc.narg('schema_url'),
    sqlc.narg('repository_url'),
    sqlc.narg('repository_type'),
    sqlc.narg('repository_id'),
    sqlc.narg('repository_subfolder'),
    sqlc.narg('server_meta'),
    sqlc.narg('upstream_meta')
)
ON CONFLICT (version_id) DO UPDATE SET
    website = EXCLUDED.website,
    schema_url = EXCLUDED.schema_url,
    repository_url = EXCLUDED.repository_url,
    repository_type = EXCLUDED.repository_type,
    repository_id = EXCLUDED.repository_id,
    repository_subfolder = EXCLUDED.repository_subfolder,
    server_meta = EXCLUDED.server_meta,
    upstream_meta = EXCLUDED.upstream_meta;

-- name: TouchEntryVersion :execrows
-- Mark a version as updated now: a sync calls it when the version's ServerDetail rows changed
-- but its entry_version fields did not (UpsertEntryVersion moves updated_at only for those).
UPDATE entry_version SET updated_at = now() WHERE id = sqlc.arg('version_id');

-- name: DeleteServerPackages :execrows
-- Remove the packages of a version before writing its current list.
DELETE FROM mcp_server_package WHERE server_id = sqlc.arg('version_id');

-- name: InsertServerPackage :one
-- Add one package to a version at a position; returns its id.
INSERT INTO mcp_server_package (
    server_id, position, registry_type, pkg_registry_url, pkg_identifier, pkg_version,
    sha256_hash, runtime_hint, runtime_arguments, package_arguments, env_vars, transport,
    transport_url, transport_headers
) VALUES (
    sqlc.arg('version_id'),
    sqlc.arg('position'),
    sqlc.arg('registry_type'),
    sqlc.narg('pkg_registry_url'),
    sqlc.arg('pkg_identifier'),
    sqlc.narg('pkg_version'),
    sqlc.narg('sha256_hash'),
    sqlc.narg('runtime_hint'),
    sqlc.narg('runtime_arguments'),
    sqlc.narg('package_arguments'),
    sqlc.narg('env_vars'),
    sqlc.arg('transport'),
    sqlc.narg('transport_url'),
    sqlc.narg('transport_headers')
)
RETURNING id;

-- name: DeleteServerRemotes :execrows
-- Remove the remotes of a version before writing its current list.
DELETE FROM mcp_server_remote WHERE server_id = sqlc.arg('version_id');

-- name: InsertServerRemote :one
-- Add one remote to a version at a position; returns its id.
INSERT INTO mcp_server_remote (
    server_id, position, transport, transport_url, transport_headers, transport_variables
) VALUES (
    sqlc.arg('version_id'),
    sqlc.arg('position'),
    sqlc.arg('transport'),
    sqlc.arg('transport_url'),
    sqlc.narg('transport_headers'),
    sqlc.narg('transport_variables')
)
RETURNING id;

-- name: SetLatestVersion :exec
-- Point an entry's latest version at one of its versions.
INSERT INTO latest_entry_version (entry_id, version)
VALUES (sqlc.arg('entry_id'), sqlc.arg('version'))
ON CONFLICT (entry_id) DO UPDATE SET
    version = EXCLUDED.version,
    updated_at = now()
WHERE latest_entry_version.version IS DISTINCT FROM EXCLUDED.version;

-- name: DeleteStaleEntries :execrows
-- Remove the entries of a source whose names the source no longer has (cascades to their
-- versions and details); returns how many were removed.
DELETE FROM registry_entry
WHERE source_id = sqlc.arg('source_id')
    AND entry_type = sqlc.arg('entry_type')
    AND NOT (name = ANY (sqlc.arg('keep_names')::text[]));

-- name: DeleteStaleVersions :execrows
-- Remove the versions of an entry that the source no longer has; returns how many.
DELETE FROM entry_version
WHERE entry_id = sqlc.arg('entry_id')
    AND NOT (version = ANY (sqlc.arg('keep_versions')::text[]));

-- name: StartSourceSync :exec
-- Record that a sync attempt of a source has started.
INSERT INTO registry_sync (source_id, sync_status, started_at, ended_at, attempt_count)
VALUES (sqlc.arg('source_id'), 'IN_PROGRESS', now(), NULL, 1)
ON CONFLICT (source_id) DO UPDATE SET
    sync_status = 'IN_PROGRESS',
    error_msg = NULL,
    started_at = now(),
    ended_at = NULL,
    attempt_count = registry_sync.attempt_count + 1,
    updated_at = now();

-- name: CompleteSourceSync :execrows
-- Record a successful sync of a source: its data hash, filter hash and server count.
UPDATE registry_sync SET
    sync_status = 'COMPLETED',
    error_msg = NULL,
    ended_at = now(),
    last_success_at = now(),
    attempt_count = 0,
    last_sync_hash = sqlc.narg('last_sync_hash'),
    last_applied_filter_hash = sqlc.narg('last_applied_filter_hash'),
    server_count = sqlc.arg('server_count'),
    updated_at = now()
WHERE source_id = sqlc.arg('source_id');

-- name: FailSourceSync :execrows
-- Record a failed sync attempt of a source with its error message.
UPDATE registry_sync SET
    sync_status = 'FAILED',
    error_msg = sqlc.arg('error_msg'),
    ended_at = now(),
    updated_at = now()
WHERE source_id = sqlc.arg('source_id');

-- name: GetSourceSync :one
-- The sync state of a source by name (NULL sync fields: never synced).
SELECT
    s.id AS source_id,
    s.name,
    s.source_type,
    s.sync_schedule,
    y.sync_status,
    y.error_msg,
    y.started_at,
    y.ended_at,
    y.last_success_at,
    y.attempt_count,
    y.last_sync_hash,
    y.last_applied_filter_hash,
    y.server_count
FROM source AS s
LEFT JOIN registry_sync AS y ON y.source_id = s.id
WHERE s.name = sqlc.arg('name');

-- name: LockReconcile :exec
-- One start-up reconciliation at a time (a transaction-level advisory lock on a constant key):
-- replicas starting together would otherwise re-link the same registry at once.
SELECT true AS locked FROM pg_advisory_xact_lock(sqlc.arg('lock_key')::bigint);

-- name: UpsertConfigSource :exec
-- Create or update a source of the configuration; a row that would not change is left alone,
-- and a source created through the API is never touched (SourceByName tells).
INSERT INTO source (
    name, source_type, creation_type, source_config, filter_config, syncable, sync_schedule, claims
) VALUES (
    sqlc.arg('name'),
    sqlc.arg('source_type'),
    'CONFIG',
    sqlc.narg('source_config'),
    sqlc.narg('filter_config'),
    sqlc.arg('syncable'),
    sqlc.narg('sync_schedule'),
    sqlc.narg('claims')
)
ON CONFLICT (name) DO UPDATE SET
    source_type = EXCLUDED.source_type,
    source_config = EXCLUDED.source_config,
    filter_config = EXCLUDED.filter_config,
    syncable = EXCLUDED.syncable,
    sync_schedule = EXCLUDED.sync_schedule,
    claims = EXCLUDED.claims,
    updated_at = now()
WHERE source.creation_type = 'CONFIG'
    AND (source.source_type, source.source_config, source.filter_config, source.syncable,
         source.sync_schedule, source.claims)
        IS DISTINCT FROM
        (EXCLUDED.source_type, EXCLUDED.source_config, EXCLUDED.filter_config,
         EXCLUDED.syncable, EXCLUDED.sync_schedule, EXCLUDED.claims);

-- name: SourceByName :one
-- A source's id and how it was created.
SELECT id, creation_type FROM source WHERE name = sqlc.arg('name');

-- name: PropagateSourceClaims :execrows
-- Give the entries of a source the source's claims (entries follow their source).
UPDATE registry_entry AS e SET claims = s.claims, updated_at = now()
FROM source AS s
WHERE e.source_id = s.id AND s.id = sqlc.arg('source_id') AND e.claims IS DISTINCT FROM s.claims;

-- name: UpsertConfigRegistry :exec
-- Create a registry of the configuration or update its claims (never one created through
-- the API).
INSERT INTO registry (name, creation_type, claims)
VALUES (sqlc.arg('name'), 'CONFIG', sqlc.narg('claims'))
ON CONFLICT (name) DO UPDATE SET claims = EXCLUDED.claims, updated_at = now()
WHERE registry.creation_type = 'CONFIG' AND registry.claims IS DISTINCT FROM EXCLUDED.claims;

-- name: RegistryByName :one
-- A registry's id and how it was created.
SELECT id, creation_type FROM registry WHERE name = sqlc.arg('name');

-- name: UnlinkRegistry :execrows
-- Remove every source from a registry (before linking its configured ones again).
DELETE FROM registry_source WHERE registry_id = sqlc.arg('registry_id');

-- name: LinkRegistrySources :exec
-- Link sources to a registry in list order: the first gets position 0 (highest priority).
INSERT INTO registry_source (registry_id, source_id, position)
SELECT sqlc.arg('registry_id'), t.source_id, (t.ord - 1)::integer
FROM unnest(sqlc.arg('source_ids')::uuid[]) WITH ORDINALITY AS t (source_id, ord);

-- name: DropConfigRegistries :execrows
-- Remove the registries of the configuration that it no longer names.
DELETE FROM registry
WHERE creation_type = 'CONFIG' AND NOT (name = ANY(sqlc.arg('keep_names')::text[]));

-- name: SourceStillUsed :one
-- A configuration source about to be removed that a registry still uses (created through the
-- API, since the configuration's registries were re-linked), with that registry.
SELECT s.name AS source_name, r.name AS registry_name
FROM source AS s
JOIN registry_source AS rs ON rs.source_id = s.id
JOIN registry AS r ON r.id = rs.registry_id
WHERE s.creation_type = 'CONFIG' AND NOT (s.name = ANY(sqlc.arg('keep_names')::text[]))
ORDER BY s.name, r.name
LIMIT 1;

-- name: DropConfigSources :execrows
-- Remove the sources of the configuration that it no longer names, with their entries.
DELETE FROM source
WHERE creation_type = 'CONFIG' AND NOT (name = ANY(sqlc.arg('keep_names')::text[]));

-- name: SyncStatusById :one
-- The sync status of a source (NULL sync fields: never synced).
SELECT
    s.name,
    y.sync_status,
    y.message,
    y.started_at,
    y.ended_at,
    y.last_success_at,
    coalesce(y.attempt_count, 0)::bigint AS attempt_count,
    coalesce(y.server_count, 0)::bigint AS server_count,
    coalesce(y.skill_count, 0)::bigint AS skill_count,
    coalesce(y.version_count, 0)::bigint AS version_count,
    coalesce(y.plugin_skipped_count, 0)::bigint AS plugin_skipped_count,
    y.last_sync_hash,
    y.last_applied_filter_hash
FROM source AS s
LEFT JOIN registry_sync AS y ON y.source_id = s.id
WHERE s.id = sqlc.arg('source_id');

-- name: SyncStatusByName :one
-- The sync status of a source by name (NULL sync fields: never synced).
SELECT
    s.name,
    y.sync_status,
    y.message,
    y.started_at,
    y.ended_at,
    y.last_success_at,
    coalesce(y.attempt_count, 0)::bigint AS attempt_count,
    coalesce(y.server_count, 0)::bigint AS server_count,
    coalesce(y.skill_count, 0)::bigint AS skill_count,
    coalesce(y.version_count, 0)::bigint AS version_count,
    coalesce(y.plugin_skipped_count, 0)::bigint AS plugin_skipped_count,
    y.last_sync_hash,
    y.last_applied_filter_hash
FROM source AS s
LEFT JOIN registry_sync AS y ON y.source_id = s.id
WHERE s.name = sqlc.arg('name');

-- name: LockSource :exec
-- Hold a source's row for the rest of the transaction: one writer per source at a time.
SELECT id FROM source WHERE id = sqlc.arg('source_id') FOR UPDATE;

-- name: SourceVersions :many
-- Every entry and version a source holds now, with the content hash, status, first-seen time
-- and latest version of each: what a sync compares the fetched file with.
SELECT
    e.entry_type,
    e.name,
    e.id AS entry_id,
    v.id AS version_id,
    v.version,
    v.content_sha256,
    v.status,
    v.published_at,
    l.version AS latest_version
FROM registry_entry AS e
LEFT JOIN entry_version AS v ON v.entry_id = e.id
LEFT JOIN latest_entry_version AS l ON l.entry_id = e.id
WHERE e.source_id = sqlc.arg('source_id');

-- name: InsertEntries :many
-- Create the entries of names a source did not have yet, with the source's claims.
INSERT INTO registry_entry (source_id, entry_type, name, claims)
SELECT sqlc.arg('source_id'), t.entry_type, n.name, sqlc.narg('claims')
FROM unnest(sqlc.arg('entry_types')::entry_type[]) WITH ORDINALITY AS t (entry_type, i)
JOIN unnest(sqlc.arg('names')::text[]) WITH ORDINALITY AS n (name, i) USING (i)
RETURNING entry_type, name, id;

-- name: MarkVersionsDeleted :execrows
-- Versions the source no longer has: DELETED, and updated now, so that "updated_since"
-- readers see it.
UPDATE entry_version SET
    status = 'DELETED', status_message = NULL, status_changed_at = now(), updated_at = now()
WHERE id = ANY(sqlc.arg('version_ids')::uuid[]) AND status <> 'DELETED';

-- name: DropLatestVersions :execrows
-- Entries left without a live version have no latest version.
DELETE FROM latest_entry_version WHERE entry_id = ANY(sqlc.arg('entry_ids')::uuid[]);

-- name: SetLatestVersions :exec
-- Point entries at their latest versions (pairs of the two arrays).
INSERT INTO latest_entry_version (entry_id, version)
SELECT e.entry_id, v.version
FROM unnest(sqlc.arg('entry_ids')::uuid[]) WITH ORDINALITY AS e (entry_id, i)
JOIN unnest(sqlc.arg('versions')::text[]) WITH ORDINALITY AS v (version, i) USING (i)
ON CONFLICT (entry_id) DO UPDATE SET version = EXCLUDED.version, updated_at = now();

-- name: TouchVersions :execrows
-- Versions whose latest flag flipped get a new updated_at, once per transaction (rows this
-- transaction wrote already have now()).
UPDATE entry_version AS v SET updated_at = now()
FROM unnest(sqlc.arg('entry_ids')::uuid[]) WITH ORDINALITY AS e (entry_id, i)
JOIN unnest(sqlc.arg('versions')::text[]) WITH ORDINALITY AS t (version, i) USING (i)
WHERE v.entry_id = e.entry_id AND v.version = t.version AND v.updated_at <> now();
