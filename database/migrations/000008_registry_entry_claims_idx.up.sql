-- 000008_registry_entry_claims_idx (up): find entries by their claims quickly.
--
-- The API filters entries with claims @> '{"org": "..."}'; a GIN index with
-- jsonb_path_ops serves that containment operator.
--
-- Pattern: an index built CONCURRENTLY, so writers are not blocked while it
-- is built on a large table. CREATE INDEX CONCURRENTLY cannot run inside a
-- transaction block, so it is the only statement of this file: the engine runs
-- the file outside a transaction, marking the version dirty until it has
-- finished, and golang-migrate, which sends a file as one query, can run it
-- too. A build that fails or is interrupted leaves an INVALID index of this
-- name behind, which IF NOT EXISTS would then skip: drop it first
-- (DROP INDEX CONCURRENTLY registry_entry_claims_idx), then
-- `migrate force 7` and `migrate up` again.

CREATE INDEX CONCURRENTLY IF NOT EXISTS registry_entry_claims_idx
    ON registry_entry USING gin (claims jsonb_path_ops);
