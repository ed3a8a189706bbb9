-- 000003_sync_schedule_interval (up): store a source's sync schedule as an interval.
--
-- source.sync_schedule held the Go duration text from the configuration
-- ("30m", "1h30m", "90s"); as an INTERVAL the scheduler can compare it with
-- timestamps in SQL and nonsense cannot be stored.
--
-- Pattern: a column type change with a USING clause. PostgreSQL's interval
-- input reads Go durations made of h, m, s, ms and us units, the only ones the
-- old CHECK allowed; a value it cannot read (or a zero schedule) makes this
-- migration fail and roll back, with the server's message naming the value.
-- The CHECK on the old type is replaced by one on the new type in the same
-- statement, so the table is rewritten once.

ALTER TABLE source
    DROP CONSTRAINT source_sync_schedule_check,
    ALTER COLUMN sync_schedule TYPE INTERVAL USING sync_schedule::interval,
    ADD CONSTRAINT source_sync_schedule_check
        CHECK (sync_schedule IS NULL OR sync_schedule > INTERVAL '0');
