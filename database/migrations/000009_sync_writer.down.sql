-- 000009_sync_writer (down): remove the sort key, the content hash and the sync summary.
--
-- Their CHECK constraints go with the columns. The fetch hashes that the up cleared are not
-- restored: they only spare a sync, which recomputes them.

ALTER TABLE registry_sync
    DROP COLUMN plugin_skipped_count,
    DROP COLUMN version_count,
    DROP COLUMN message;

ALTER TABLE entry_version
    DROP COLUMN content_sha256,
    DROP COLUMN version_sort_key;
