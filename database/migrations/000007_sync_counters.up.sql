-- 000007_sync_counters (up): how many MCP servers and skills each source holds.
--
-- The sync writes the counts it applied; the API reports them per source
-- without counting entries on every request.
--
-- Pattern: a data backfill. The columns are added without a default, filled
-- from the entries each source holds now, and only then made NOT NULL with a
-- default for new rows; all in this one transaction, so no reader ever sees a
-- source with missing counts.

ALTER TABLE registry_sync
    ADD COLUMN server_count BIGINT,
    ADD COLUMN skill_count BIGINT;

UPDATE registry_sync AS s
   SET server_count = (SELECT count(*) FROM registry_entry AS e
                        WHERE e.source_id = s.source_id AND e.entry_type = 'MCP'),
       skill_count = (SELECT count(*) FROM registry_entry AS e
                       WHERE e.source_id = s.source_id AND e.entry_type = 'SKILL');

ALTER TABLE registry_sync
    ALTER COLUMN server_count SET DEFAULT 0,
    ALTER COLUMN server_count SET NOT NULL,
    ALTER COLUMN skill_count SET DEFAULT 0,
    ALTER COLUMN skill_count SET NOT NULL,
    ADD CONSTRAINT registry_sync_server_count_check CHECK (server_count >= 0),
    ADD CONSTRAINT registry_sync_skill_count_check CHECK (skill_count >= 0);
