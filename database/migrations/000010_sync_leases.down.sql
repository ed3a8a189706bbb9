-- 000010_sync_leases (down): remove the replica heartbeats, the attempt history and the leases.
--
-- Status rows of sources that were never attempted (no phase) are removed, as before this
-- migration such a row was made by the first attempt; every other row keeps its phase.

DROP TABLE sync_replica;

DROP TABLE sync_attempt;

DROP INDEX registry_sync_next_due_at_idx;

DELETE FROM registry_sync WHERE sync_status IS NULL;

ALTER TABLE registry_sync
    DROP CONSTRAINT registry_sync_lease_check,
    DROP CONSTRAINT registry_sync_attempts_total_check,
    DROP COLUMN attempts_total,
    DROP COLUMN next_due_at,
    DROP COLUMN lease_expires_at,
    DROP COLUMN lease_holder,
    ALTER COLUMN sync_status SET DEFAULT 'IN_PROGRESS',
    ALTER COLUMN sync_status SET NOT NULL;
