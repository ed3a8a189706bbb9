-- Read queries of the registry API: the MCP servers a registry serves.
--
-- A registry is an ordered list of sources (registry_source.position); a server name present
-- in several of its sources is served entirely from one of them (all of that source's
-- versions, none of the others'): the one with the lowest position among those where the name
-- has a version that is not DELETED, else (the name is gone everywhere) the lowest position.
-- So a name that leaves the first source is served from the next one. Versions order by name,
-- then newest first:
-- version_sort_key descending (semantic-version precedence as bytes; NULL counts as the key of
-- a non-semver version, 00), then published_at, then the version text, both descending.
-- Listings page by keyset on that order: the cursor is the last row's (name, sort_key,
-- published_at, version) and its entry (a name is continued only from the same entry); the
-- first page passes an empty name (every name is greater). The
-- cursor is never NULL, so that the plan PostgreSQL caches for a prepared statement (a generic
-- plan) still walks the name index from the cursor on.
--
-- Comments before a query become its function's docstring; sqlc also moves comments inside a
-- query there, so keep them above it. Run `task gen` after editing this file.

-- name: GetRegistryId :one
-- The id of a registry by name (no row: unknown registry).
SELECT id FROM registry WHERE name = sqlc.arg('registry_name');

-- name: ListServers :many
-- One page of server versions of a registry after the cursor, in listing order.
-- Filters, each on when its by_* flag is true: search (case-insensitive substring of the name,
-- title or description, matched literally: its %, _ and \ are escaped), updated_since
-- (versions updated strictly after it), version (exact version text); latest_only keeps each
-- server's latest version; include_deleted keeps versions whose status is DELETED. The flags are
-- booleans rather than "parameter IS NULL" tests because PostgreSQL estimates those as nearly
-- never true when it plans for any parameter (a generic plan), and then scans and sorts
-- everything instead of walking the name index. The served names of the page
-- are found first, one index probe each (the recursive `served`: the next name after the last,
-- with at least one version that passes the filters, at most page_size of them), then their
-- versions: so whatever plan PostgreSQL caches for the prepared statement, a page reads about
-- a page of rows.
WITH RECURSIVE pattern AS (
    SELECT '%' || replace(replace(replace(
        sqlc.narg('search')::text, '\', '\\'), '%', '\%'), '_', '\_') || '%' AS like_text
),
sources AS (
    SELECT rs.source_id, rs.position
    FROM registry AS r
    JOIN registry_source AS rs ON rs.registry_id = r.id
    WHERE r.name = sqlc.arg('registry_name')
),
served (n, entry_id, name) AS (
    SELECT 0, NULL::uuid, sqlc.arg('cursor_name')::text
    UNION ALL
    SELECT prev.n + 1, nxt.id, nxt.name
    FROM served AS prev
    CROSS JOIN LATERAL (
        SELECT e.id, e.name
        FROM sources AS rs
        JOIN registry_entry AS e ON e.source_id = rs.source_id AND e.entry_type = 'MCP'
        CROSS JOIN pattern AS p
        WHERE e.name >= prev.name
            AND (prev.n = 0 OR e.name > prev.name)
            -- within the cursor's name, only the cursor's own entry: a name that moved to
            -- another source since is not continued (its versions would mix two sources)
            AND (e.name > sqlc.arg('cursor_name')::text OR e.id = sqlc.arg('cursor_entry_id')::uuid)
            -- no better entry of this name: a live one (a version not DELETED) before a gone
            -- one, then the lower position
            AND NOT EXISTS (
                SELECT 1
                FROM sources AS rs2
                JOIN registry_entry AS e2
                    ON e2.source_id = rs2.source_id AND e2.entry_type = 'MCP' AND e2.name = e.name
                WHERE e2.id <> e.id
                    AND (
                        (
                            rs2.position < rs.position
                            AND (
                                EXISTS (
                                    SELECT 1 FROM entry_version AS lv2
                                    WHERE lv2.entry_id = e2.id AND lv2.status <> 'DELETED'
                                )
                                OR NOT EXISTS (
                                    SELECT 1 FROM entry_version AS lv
                                    WHERE lv.entry_id = e.id AND lv.status <> 'DELETED'
                                )
                            )
                        )
                        OR (
                            rs2.position > rs.position
                            AND EXISTS (
                                SELECT 1 FROM entry_version AS lv2
                                WHERE lv2.entry_id = e2.id AND lv2.status <> 'DELETED'
                            )
                            AND NOT EXISTS (
                                SELECT 1 FROM entry_version AS lv
                                WHERE lv.entry_id = e.id AND lv.status <> 'DELETED'
                            )
                        )
                    )
            )
            AND EXISTS (
                SELECT 1
                FROM entry_version AS v1
                LEFT JOIN latest_entry_version AS l1
                    ON l1.entry_id = v1.entry_id AND l1.version = v1.version
                WHERE v1.entry_id = e.id
                    AND (
                        e.name > sqlc.arg('cursor_name')::text
                        OR (
                            e.name = sqlc.arg('cursor_name')::text
                            AND (
                                COALESCE(v1.version_sort_key, '\x00'::bytea)
                                    < sqlc.arg('cursor_sort_key')::bytea
                                OR (
                                    COALESCE(v1.version_sort_key, '\x00'::bytea)
                                        = sqlc.arg('cursor_sort_key')::bytea
                                    AND (
                                        v1.published_at < sqlc.arg('cursor_published_at')::timestamptz
                                        OR (
                                            v1.published_at
                                                = sqlc.arg('cursor_published_at')::timestamptz
                                            AND v1.version < sqlc.arg('cursor_version')::text
                                        )
                                    )
                                )
                            )
                        )
                    )
                    AND (
                        NOT sqlc.arg('by_search')::boolean
                        OR e.name ILIKE p.like_text
                        OR v1.title ILIKE p.like_text
                        OR v1.description ILIKE p.like_text
                    )
                    AND (
                        NOT sqlc.arg('by_time')::boolean
                        OR v1.updated_at > sqlc.narg('updated_since')::timestamptz
                    )
                    AND (NOT sqlc.arg('by_version')::boolean OR v1.version = sqlc.narg('version')::text)
                    AND (NOT sqlc.arg('latest_only')::boolean OR l1.version IS NOT NULL)
                    AND (sqlc.arg('include_deleted')::boolean OR v1.status <> 'DELETED')
            )
        ORDER BY e.name
        LIMIT 1
    ) AS nxt
    WHERE prev.n < sqlc.arg('page_size')
)
SELECT
    s.name,
    s.entry_id,
    v.version,
    v.id AS version_id,
    COALESCE(v.version_sort_key, '\x00'::bytea) AS sort_key,
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
    m.server_meta
FROM served AS s
CROSS JOIN pattern AS p
JOIN entry_version AS v ON v.entry_id = s.entry_id
LEFT JOIN latest_entry_version AS l ON l.entry_id = v.entry_id AND l.version = v.version
LEFT JOIN mcp_server AS m ON m.version_id = v.id
WHERE s.n > 0
    AND (
        s.name > sqlc.arg('cursor_name')::text
        OR (
            s.name = sqlc.arg('cursor_name')::text
            AND (
                COALESCE(v.version_sort_key, '\x00'::bytea)
                    < sqlc.arg('cursor_sort_key')::bytea
                OR (
                    COALESCE(v.version_sort_key, '\x00'::bytea)
                        = sqlc.arg('cursor_sort_key')::bytea
                    AND (
                        v.published_at < sqlc.arg('cursor_published_at')::timestamptz
                        OR (
                            v.published_at
                                = sqlc.arg('cursor_published_at')::timestamptz
                            AND v.version < sqlc.arg('cursor_version')::text
                        )
                    )
                )
            )
        )
    )
    AND (
        NOT sqlc.arg('by_search')::boolean
        OR s.name ILIKE p.like_text
        OR v.title ILIKE p.like_text
        OR v.description ILIKE p.like_text
    )
    AND (
        NOT sqlc.arg('by_time')::boolean
        OR v.updated_at > sqlc.narg('updated_since')::timestamptz
    )
    AND (NOT sqlc.arg('by_version')::boolean OR v.version = sqlc.narg('version')::text)
    AND (NOT sqlc.arg('latest_only')::boolean OR l.version IS NOT NULL)
    AND (sqlc.arg('include_deleted')::boolean OR v.status <> 'DELETED')
ORDER BY s.name, sort_key DESC, v.published_at DESC, v.version DESC
LIMIT sqlc.arg('page_size');

-- name: ListServerVersions :many
-- Every version of one server as the registry serves it (from the source chosen as the header
-- says), newest first; include_deleted keeps DELETED versions.
WITH served AS (
    SELECT e.id AS entry_id, e.name, src.name AS source_name
    FROM registry AS r
    JOIN registry_source AS rs ON rs.registry_id = r.id
    JOIN source AS src ON src.id = rs.source_id
    JOIN registry_entry AS e ON e.source_id = rs.source_id AND e.entry_type = 'MCP'
    WHERE r.name = sqlc.arg('registry_name') AND e.name = sqlc.arg('server_name')
    ORDER BY
        EXISTS (
            SELECT 1 FROM entry_version AS lv WHERE lv.entry_id = e.id AND lv.status <> 'DELETED'
        ) DESC,
        rs.position
    LIMIT 1
)
SELECT
    s.name,
    v.version,
    v.id AS version_id,
    s.source_name,
    COALESCE(v.version_sort_key, '\x00'::bytea) AS sort_key,
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
    m.server_meta
FROM served AS s
JOIN entry_version AS v ON v.entry_id = s.entry_id
LEFT JOIN latest_entry_version AS l ON l.entry_id = v.entry_id AND l.version = v.version
LEFT JOIN mcp_server AS m ON m.version_id = v.id
WHERE sqlc.arg('include_deleted')::boolean OR v.status <> 'DELETED'
ORDER BY sort_key DESC, v.published_at DESC, v.version DESC;

-- name: GetServerVersion :one
-- One version of a server as the registry serves it, whatever its status; a NULL version asks
-- for the server's latest version.
WITH served AS (
    SELECT e.id AS entry_id, e.name, src.name AS source_name
    FROM registry AS r
    JOIN registry_source AS rs ON rs.registry_id = r.id
    JOIN source AS src ON src.id = rs.source_id
    JOIN registry_entry AS e ON e.source_id = rs.source_id AND e.entry_type = 'MCP'
    WHERE r.name = sqlc.arg('registry_name') AND e.name = sqlc.arg('server_name')
    ORDER BY
        EXISTS (
            SELECT 1 FROM entry_version AS lv WHERE lv.entry_id = e.id AND lv.status <> 'DELETED'
        ) DESC,
        rs.position
    LIMIT 1
)
SELECT
    s.name,
    v.version,
    v.id AS version_id,
    s.source_name,
    COALESCE(v.version_sort_key, '\x00'::bytea) AS sort_key,
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
    m.server_meta
FROM served AS s
JOIN entry_version AS v ON v.entry_id = s.entry_id
LEFT JOIN latest_entry_version AS l ON l.entry_id = v.entry_id AND l.version = v.version
LEFT JOIN mcp_server AS m ON m.version_id = v.id
WHERE v.version = sqlc.narg('version')::text
    OR (sqlc.narg('version')::text IS NULL AND l.version IS NOT NULL);

-- name: ServerIsServed :one
-- Whether the registry serves a server of this name (from any of its sources).
SELECT EXISTS (
    SELECT 1
    FROM registry AS r
    JOIN registry_source AS rs ON rs.registry_id = r.id
    JOIN registry_entry AS e ON e.source_id = rs.source_id AND e.entry_type = 'MCP'
    WHERE r.name = sqlc.arg('registry_name') AND e.name = sqlc.arg('server_name')
)::boolean AS served;

-- name: ListServerPackages :many
-- The packages of several server versions (ServerDetail.packages), each version's in order.
SELECT
    server_id,
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
WHERE server_id = ANY(sqlc.arg('version_ids')::uuid[])
ORDER BY server_id, position;

-- name: ListServerRemotes :many
-- The remotes of several server versions (ServerDetail.remotes), each version's in order.
SELECT server_id, position, transport, transport_url, transport_headers, transport_variables
FROM mcp_server_remote
WHERE server_id = ANY(sqlc.arg('version_ids')::uuid[])
ORDER BY server_id, position;

-- name: ListServerIcons :many
-- The icons of several server versions (ServerDetail.icons), each version's in order.
SELECT server_id, position, source_uri, mime_type, sizes, theme
FROM mcp_server_icon
WHERE server_id = ANY(sqlc.arg('version_ids')::uuid[])
ORDER BY server_id, position;
