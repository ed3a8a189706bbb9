-- 000009_sync_writer (up): what the set-based sync writer and the readers need.
--
-- entry_version.version_sort_key: the version's semantic-version precedence as bytes
-- (thv_registry.registry.semver.version_sort_key), so readers order versions newest first
-- with a plain ORDER BY; NULL sorts like a version that is not semver (the writer fills it).
-- entry_version.content_sha256: the sha256 of the version's canonical JSON as last written,
-- so a sync compares one column to learn which versions really changed (only those get a new
-- updated_at and new child rows).
-- registry_sync.message: the human summary of the last attempt (success notes such as
-- skipped plugins, or the failure); version_count and plugin_skipped_count complete the
-- counts of the last good sync.
--
-- Pattern: nullable columns and constant defaults added to existing tables (no rewrite since
-- PostgreSQL 11), plus a data change: every source's stored fetch hash is cleared, so the
-- next sync of each source writes all of its rows once and fills the new columns.

ALTER TABLE entry_version
    ADD COLUMN version_sort_key BYTEA,
    ADD COLUMN content_sha256 TEXT,
    ADD CONSTRAINT entry_version_content_sha256_check
        CHECK (content_sha256 IS NULL OR content_sha256 ~ '^[a-f0-9]{64}$');

ALTER TABLE registry_sync
    ADD COLUMN message TEXT,
    ADD COLUMN version_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN plugin_skipped_count BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT registry_sync_version_count_check CHECK (version_count >= 0),
    ADD CONSTRAINT registry_sync_plugin_skipped_count_check CHECK (plugin_skipped_count >= 0);

UPDATE registry_sync SET last_sync_hash = NULL WHERE last_sync_hash IS NOT NULL;
