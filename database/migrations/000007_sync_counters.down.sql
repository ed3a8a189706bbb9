-- 000007_sync_counters (down): remove the sync counters.
--
-- Their CHECK constraints go with the columns; the counts can be derived
-- again from the entries (000007's up does).

ALTER TABLE registry_sync
    DROP COLUMN skill_count,
    DROP COLUMN server_count;
