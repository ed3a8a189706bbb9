-- Read queries of the skills extension (/x/dev.toolhive/skills): the Agent Skills a registry
-- serves.
--
-- A skill is a registry_entry of type SKILL named "namespace/name", with one entry_version and
-- one skill row per version. As for servers, a name present in several sources of a registry
-- is served entirely from one (the lowest position where it has a version not DELETED, else
-- the lowest position), and versions order newest first
-- (version_sort_key, published_at, version, all descending; NULL sort key = 00). Listings page
-- by keyset on (name, sort_key, published_at, version); the first page passes an empty name.
-- Run `task gen` after editing this file.

-- name: ListSkills :many
-- One page of skill versions of a registry after the cursor, in listing order. Filters, each
-- on when its by_* flag is true (booleans, not "parameter IS NULL" tests, for the reason
-- servers.sql's ListServers gives): name (one skill, "namespace/name"), search
-- (case-insensitive literal substring of the name, title or description), statuses (versions
-- whose status is one of these; off: every status but DELETED), version (exact text);
-- latest_only keeps each skill's latest version. Names are found one index probe each, as in
-- ListServers.
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
        JOIN registry_entry AS e ON e.source_id = rs.source_id AND e.entry_type = 'SKILL'
        CROSS JOIN pattern AS p
        WHERE e.name >= prev.name
            AND (prev.n = 0 OR e.name > prev.name)
            AND (NOT sqlc.arg('by_name')::boolean OR e.name = sqlc.narg('name')::text)
            -- within the cursor's name, only the cursor's own entry: a name that moved to
            -- another source since is not continued (its versions would mix two sources)
            AND (e.name > sqlc.arg('cursor_name')::text OR e.id = sqlc.arg('cursor_entry_id')::uuid)
            -- no better entry of this name: a live one (a version not DELETED) before a gone
            -- one, then the lower position
            AND NOT EXISTS (
                SELECT 1
                FROM sources AS rs2
                JOIN registry_entry AS e2
                    ON e2.source_id = rs2.source_id AND e2.entry_type = 'SKILL' AND e2.name = e.name
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
                JOIN skill AS k1 ON k1.version_id = v1.id
                LEFT JOIN latest_entry_version AS l1
                    ON l1.entry_id = v1.entry_id AND l1.version = v1.version
                WHERE v1.entry_id = e.id
                    AND (
                        e.name > sqlc.arg('cursor_name')::text
                        OR (
                            e.name = sqlc.arg('cursor_name')::text
                            AND (
                                COALESCE(v1.version_sort_key, '\x00'::bytea) < sqlc.arg('cursor_sort_key')::bytea
                                OR (
                                    COALESCE(v1.version_sort_key, '\x00'::bytea)
                                        = sqlc.arg('cursor_sort_key')::bytea
                                    AND (
                                        v1.published_at < sqlc.arg('cursor_published_at')::timestamptz
                                        OR (
                                            v1.published_at = sqlc.arg('cursor_published_at')::timestamptz
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
                        (NOT sqlc.arg('by_status')::boolean AND v1.status <> 'DELETED')
                        OR (sqlc.arg('by_status')::boolean AND v1.status = ANY(sqlc.arg('statuses')::version_status[]))
                    )
                    AND (NOT sqlc.arg('by_version')::boolean OR v1.version = sqlc.narg('version')::text)
                    AND (NOT sqlc.arg('latest_only')::boolean OR l1.version IS NOT NULL)
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
    v.published_at,
    v.updated_at,
    (l.version IS NOT NULL)::boolean AS is_latest,
    k.namespace,
    k.license,
    k.compatibility,
    k.allowed_tools,
    k.repository,
    k.icons,
    k.metadata,
    k.extension_meta
FROM served AS s
CROSS JOIN pattern AS p
JOIN entry_version AS v ON v.entry_id = s.entry_id
JOIN skill AS k ON k.version_id = v.id
LEFT JOIN latest_entry_version AS l ON l.entry_id = v.entry_id AND l.version = v.version
WHERE s.n > 0
    AND v.entry_id = s.entry_id
    AND (
        s.name > sqlc.arg('cursor_name')::text
        OR (
            s.name = sqlc.arg('cursor_name')::text
            AND (
                COALESCE(v.version_sort_key, '\x00'::bytea) < sqlc.arg('cursor_sort_key')::bytea
                OR (
                    COALESCE(v.version_sort_key, '\x00'::bytea)
                        = sqlc.arg('cursor_sort_key')::bytea
                    AND (
                        v.published_at < sqlc.arg('cursor_published_at')::timestamptz
                        OR (
                            v.published_at = sqlc.arg('cursor_published_at')::timestamptz
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
        (NOT sqlc.arg('by_status')::boolean AND v.status <> 'DELETED')
        OR (sqlc.arg('by_status')::boolean AND v.status = ANY(sqlc.arg('statuses')::version_status[]))
    )
    AND (NOT sqlc.arg('by_version')::boolean OR v.version = sqlc.narg('version')::text)
    AND (NOT sqlc.arg('latest_only')::boolean OR l.version IS NOT NULL)
ORDER BY s.name, sort_key DESC, v.published_at DESC, v.version DESC
LIMIT sqlc.arg('page_size');

-- name: ListSkillOciPackages :many
-- The OCI artifacts of several skill versions, each version's in order.
SELECT skill_id, position, identifier, digest, media_type
FROM skill_oci_package
WHERE skill_id = ANY(sqlc.arg('version_ids')::uuid[])
ORDER BY skill_id, position;

-- name: ListSkillGitPackages :many
-- The git checkouts of several skill versions, each version's in order.
SELECT skill_id, position, url, ref, commit_sha, subfolder
FROM skill_git_package
WHERE skill_id = ANY(sqlc.arg('version_ids')::uuid[])
ORDER BY skill_id, position;
