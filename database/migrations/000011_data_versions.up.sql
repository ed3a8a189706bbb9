-- 000011_data_versions (up): generations for the API's response cache.
--
-- source.data_version: moved by one in the same transaction as every write that changes what
-- the API serves from that source (the sync writer, only when it writes rows). catalog_version:
-- one row, moved by one in the same transaction as every write of the configuration the API
-- reads (reconcile: sources, registries, their order, claims; deleted sources). A registry's
-- generation is the catalog version with the data versions of its sources, read in the same
-- snapshot as a page: two snapshots that see the same generation serve the same bytes.
--
-- Pattern: a NOT NULL column with a constant default (no rewrite) and a new one-row table;
-- every statement transactional.

ALTER TABLE source ADD COLUMN data_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE catalog_version (
    id      BOOLEAN PRIMARY KEY DEFAULT true,
    version BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT catalog_version_single CHECK (id)
);

INSERT INTO catalog_version DEFAULT VALUES;
