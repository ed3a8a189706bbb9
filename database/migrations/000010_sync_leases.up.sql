-- 000010_sync_leases (up): leases, due times and attempt history for several replicas.
--
-- Several serve replicas share one database and coordinate the sync through it:
--
-- registry_sync.lease_holder and lease_expires_at: the replica that claimed a source (claimed
-- with FOR UPDATE SKIP LOCKED in a short transaction) and until when; the holder renews the
-- lease while the sync runs, and a replica that dies loses it when it expires, so another one
-- takes the source over. next_due_at: when the source is due again (the interval after the last
-- attempt started, or the back-off after failures); NULL: due now. attempts_total: every attempt
-- ever claimed (attempt_count stays the consecutive failures). sync_status becomes nullable: a
-- row made when a source is configured, before its first attempt, has no phase yet.
--
-- sync_attempt: the recent attempts of each source (which replica, when, the result), kept
-- short by the sync itself; it is how operators and tests see that a source ran once per
-- interval on exactly one replica.
--
-- sync_replica: each running replica's heartbeat and the fingerprint of its sources and
-- registries configuration; live replicas with different fingerprints are a configuration
-- mismatch, which the sync reports and which stops it from deleting configured sources.
--
-- Pattern: nullable columns and constant defaults added (no rewrite), a NOT NULL dropped, and
-- two new tables; every statement transactional.

ALTER TABLE registry_sync
    ALTER COLUMN sync_status DROP NOT NULL,
    ALTER COLUMN sync_status DROP DEFAULT,
    ADD COLUMN lease_holder TEXT,
    ADD COLUMN lease_expires_at TIMESTAMPTZ,
    ADD COLUMN next_due_at TIMESTAMPTZ,
    ADD COLUMN attempts_total BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT registry_sync_attempts_total_check CHECK (attempts_total >= 0),
    ADD CONSTRAINT registry_sync_lease_check
        CHECK ((lease_holder IS NULL) = (lease_expires_at IS NULL));

-- The poll's claim: sources due first.
CREATE INDEX registry_sync_next_due_at_idx ON registry_sync (next_due_at);

-- One row per sync attempt (recent ones only: the sync prunes older rows of each source).
CREATE TABLE sync_attempt (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id  UUID NOT NULL REFERENCES source (id) ON DELETE CASCADE,
    replica    TEXT NOT NULL,        -- lease holder that made the attempt
    started_at TIMESTAMPTZ NOT NULL,
    ended_at   TIMESTAMPTZ,          -- NULL: running, or its replica died
    result     TEXT,                 -- synced, unchanged, failed, interrupted, lost
    message    TEXT,
    CONSTRAINT sync_attempt_result_check
        CHECK (result IN ('synced', 'unchanged', 'failed', 'interrupted', 'lost'))
);

CREATE INDEX sync_attempt_source_id_started_at_idx ON sync_attempt (source_id, started_at);

-- The replicas running now: a heartbeat and the fingerprint of their configuration.
CREATE TABLE sync_replica (
    replica            TEXT PRIMARY KEY,  -- host:pid:random, also the lease holder
    config_fingerprint TEXT NOT NULL,     -- sha256 of the sources and registries blocks
    sources            TEXT[] NOT NULL,   -- the names of its configured sources
    started_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at         TIMESTAMPTZ NOT NULL, -- not live after this
    CONSTRAINT sync_replica_config_fingerprint_check
        CHECK (config_fingerprint ~ '^[a-f0-9]{64}$')
);
