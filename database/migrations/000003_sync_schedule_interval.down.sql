-- 000003_sync_schedule_interval (down): store the sync schedule as text again.
--
-- Each interval is written back as a Go duration in seconds ("1800s" for
-- 30 minutes), which the Go server and 000003's up both read again. A month
-- in an interval counts as 30 days.

ALTER TABLE source
    DROP CONSTRAINT source_sync_schedule_check,
    ALTER COLUMN sync_schedule TYPE TEXT
        USING trim_scale(extract(epoch FROM sync_schedule))::text || 's',
    ADD CONSTRAINT source_sync_schedule_check
        CHECK (sync_schedule ~ '^([0-9]+(\.[0-9]+)?(h|m|s|ms|us))+$');
