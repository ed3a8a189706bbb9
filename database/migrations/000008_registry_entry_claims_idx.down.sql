-- 000008_registry_entry_claims_idx (down): drop the claims index.
--
-- Also CONCURRENTLY (outside a transaction), so that queries on registry_entry
-- are not blocked while it is dropped.

DROP INDEX CONCURRENTLY IF EXISTS registry_entry_claims_idx;
