-- Read queries of the registry API: the MCP servers a registry serves.
--
-- A registry is an ordered list of sources (registry_source.position); a server name present
-- in several of its sources is served from the one with the lowest position. Listings page by
-- keyset on (name, version): pass the last row's name and version as the cursor, NULL for the
-- first page (a name with a NULL version continues after that name's last version).
--
-- Comments before a query become its function's docstring; sqlc also moves comments inside a
-- query there, so keep them above it. Run `task gen` after editing this file.

-- name: ListServers :many
-- One page of server versions of a registry, ordered by (name, version), after the cursor.
-- Filters (NULL: no filter): search (case-insensitive substring of the name, title or
-- description), updated_since (versions updated strictly after it); latest_only keeps each
-- server's latest version; include_deleted keeps versions whose status is DELETED. The search
-- text is matched literally (its % and _ are escaped).
WITH served AS (
    SELECT DISTINCT ON (e.name)
        e.id AS entry_id,
        e.name,
        src.name AS source_name
    FROM registry AS r
    JOIN registry_source AS rs ON rs.registry_id = r.id
    JOIN source AS src ON src.id = rs.source_id
    JOIN registry_entry AS e ON e.source_id = rs.source_id AND e.entry_type = 'MCP'
    WHERE r.name = sqlc.arg('registry_name')
    ORDER BY e.name, rs.position
),
pattern AS (
    SELECT '%' || replace(replace(replace(
        sqlc.narg('search')::text, '\', '\\'), '%', '\%'), '_', '\_') || '%' AS like_text
)
SELECT
    s.name,
    v.version,
    v.id AS version_id,
    s.source_name,
    v.title,
    v.description,
    v.status,
    v.status_message,
    v.published_at,
    v.updated_at,
    (l.version IS NOT NULL)::boolean AS is_latest,
    m.website,
    m.schema_url,
    m.repository_url,
    m.repository_type,
    m.repository_id,
    m.repository_subfolder,
    m.server_meta,
    m.upstream_meta
FROM served AS s
CROSS JOIN pattern AS p
JOIN entry_version AS v ON v.entry_id = s.entry_id
LEFT JOIN latest_entry_version AS l ON l.entry_id = v.entry_id AND l.version = v.version
LEFT JOIN mcp_server AS m ON m.version_id = v.id
WHERE (
        sqlc.narg('cursor_name')::text IS NULL
        OR (s.name, v.version) > (sqlc.narg('cursor_name')::text, sqlc.narg('cursor_version')::text)
    )
    AND (
        p.like_text IS NULL
        OR s.name ILIKE p.like_text
        OR v.title ILIKE p.like_text
        OR v.description ILIKE p.like_text
    )
    AND (
        sqlc.narg('updated_since')::timestamptz IS NULL
        OR v.updated_at > sqlc.narg('updated_since')::timestamptz
    )
    AND (NOT sqlc.arg('latest_only')::boolean OR l.version IS NOT NULL)
    AND (sqlc.arg('include_deleted')::boolean OR v.status <> 'DELETED')
ORDER BY s.name, v.version
LIMIT sqlc.arg('page_size');

-- name: ListServerVersions :many
-- Every version of one server as the registry serves it (from the source with the lowest
-- position that has it), ordered by version.
WITH served AS (
    SELECT e.id AS entry_id, src.name AS source_name
    FROM registry AS r
    JOIN registry_source AS rs ON rs.registry_id = r.id
    JOIN source AS src ON src.id = rs.source_id
    JOIN registry_entry AS e ON e.source_id = rs.source_id AND e.entry_type = 'MCP'
    WHERE r.name = sqlc.arg('registry_name') AND e.name = sqlc.arg('server_name')
    ORDER BY rs.position
    LIMIT 1
)
SELECT
    v.id AS version_id,
    v.version,
    s.source_name,
    v.title,
    v.description,
    v.status,
    v.published_at,
    v.updated_at,
    (l.version IS NOT NULL)::boolean AS is_latest
FROM served AS s
JOIN entry_version AS v ON v.entry_id = s.entry_id
LEFT JOIN latest_entry_version AS l ON l.entry_id = v.entry_id AND l.version = v.version
WHERE sqlc.arg('include_deleted')::boolean OR v.status <> 'DELETED'
ORDER BY v.version;

-- name: GetServerVersion :one
-- One version of a server as the registry serves it, with its ServerDetail fields; a NULL
-- version asks for the server's latest version.
WITH served AS (
    SELECT e.id AS entry_id, e.name, e.claims, src.name AS source_name
    FROM registry AS r
    JOIN registry_source AS rs ON rs.registry_id = r.id
    JOIN source AS src ON src.id = rs.source_id
    JOIN registry_entry AS e ON e.source_id = rs.source_id AND e.entry_type = 'MCP'
    WHERE r.name = sqlc.arg('registry_name') AND e.name = sqlc.arg('server_name')
    ORDER BY rs.position
    LIMIT 1
)
SELECT
    s.name,
    v.version,
    v.id AS version_id,
    s.source_name,
    s.claims,
    v.title,
    v.description,
    v.status,
    v.status_message,
    v.status_changed_at,
    v.published_at,
    v.updated_at,
    (l.version IS NOT NULL)::boolean AS is_latest,
    m.website,
    m.schema_url,
    m.repository_url,
    m.repository_type,
    m.repository_id,
    m.repository_subfolder,
    m.server_meta,
    m.upstream_meta
FROM served AS s
JOIN entry_version AS v ON v.entry_id = s.entry_id
LEFT JOIN latest_entry_version AS l ON l.entry_id = v.entry_id AND l.version = v.version
LEFT JOIN mcp_server AS m ON m.version_id = v.id
WHERE v.version = sqlc.narg('version')::text
    OR (sqlc.narg('version')::text IS NULL AND l.version IS NOT NULL);

-- name: ListServerPackages :many
-- The packages of one server version (ServerDetail.packages), in order.
SELECT
    id,
    position,
    registry_type,
    pkg_registry_url,
    pkg_identifier,
    pkg_version,
    sha256_hash,
    runtime_hint,
    runtime_arguments,
    package_arguments,
    env_vars,
    transport,
    transport_url,
    transport_headers
FROM mcp_server_package
WHERE server_id = sqlc.arg('version_id')
ORDER BY position;

-- name: ListServerRemotes :many
-- The remotes of one server version (ServerDetail.remotes), in order.
SELECT id, position, transport, transport_url, transport_headers, transport_variables
FROM mcp_server_remote
WHERE server_id = sqlc.arg('version_id')
ORDER BY position;

-- name: ListServerIcons :many
-- The icons of one server version (ServerDetail.icons), in order.
SELECT id, position, source_uri, mime_type, sizes, theme
FROM mcp_server_icon
WHERE server_id = sqlc.arg('version_id')
ORDER BY position;
