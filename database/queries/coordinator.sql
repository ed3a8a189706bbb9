-- The sync coordinator of several replicas on one database (thv_registry.sync.lease,
-- thv_registry.sync.replicas, thv_registry.sync.status): status rows, claims with a lease,
-- renewals, the end of an attempt (guarded by the lease), the attempt history, the replicas'
-- heartbeats and what `sources` lists. Run `task gen` after editing this file.

-- name: EnsureSyncRows :execrows
-- A status row (no phase yet: never attempted) for each syncable source that has none, so the
-- claim has a row to lock.
INSERT INTO registry_sync (source_id)
SELECT s.id FROM source AS s
WHERE s.syncable AND s.sync_schedule IS NOT NULL
ON CONFLICT (source_id) DO NOTHING;

-- name: ClaimDueSource :one
-- Claim the most overdue source among these names that no live lease holds: a source is due
-- when its due time has come (never attempted: at once), when the lease of its attempt expired
-- (its replica died), or, when healthy, one interval (as configured now) after its last start.
-- Rows another replica is claiming are skipped, not waited for. The claim takes the lease,
-- counts the attempt and marks the phase; the caller commits at once.
UPDATE registry_sync AS y SET
    sync_status = 'IN_PROGRESS',
    started_at = now(),
    ended_at = NULL,
    lease_holder = sqlc.arg('holder'),
    lease_expires_at = now() + sqlc.arg('lease')::interval,
    attempts_total = y.attempts_total + 1,
    updated_at = now()
WHERE y.source_id = (
    SELECT d.source_id
    FROM registry_sync AS d
    JOIN source AS s ON s.id = d.source_id
    WHERE s.syncable
        AND s.sync_schedule IS NOT NULL
        AND s.name = ANY(sqlc.arg('names')::text[])
        AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= now())
        AND (d.next_due_at IS NULL OR d.next_due_at <= now() OR d.lease_holder IS NOT NULL
             -- a healthy source whose interval the config shortened: due by the new one
             OR (d.attempt_count = 0 AND d.started_at + s.sync_schedule <= now()))
    ORDER BY d.next_due_at NULLS FIRST, s.name
    LIMIT 1
    FOR UPDATE OF d SKIP LOCKED
)
RETURNING y.source_id, y.started_at, y.attempts_total;

-- name: ClaimSource :one
-- Claim one source now, due or not (a sync asked for), unless another replica's live lease
-- holds it or another replica is claiming it.
UPDATE registry_sync AS y SET
    sync_status = 'IN_PROGRESS',
    started_at = now(),
    ended_at = NULL,
    lease_holder = sqlc.arg('holder'),
    lease_expires_at = now() + sqlc.arg('lease')::interval,
    attempts_total = y.attempts_total + 1,
    updated_at = now()
WHERE y.source_id = (
    SELECT d.source_id FROM registry_sync AS d
    WHERE d.source_id = sqlc.arg('source_id')
        AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= now()
             OR d.lease_holder = sqlc.arg('holder'))
    FOR UPDATE SKIP LOCKED
)
RETURNING y.source_id, y.started_at, y.attempts_total;

-- name: LeaseHolderOf :one
-- Who holds a source's lease now, and until when (NULL: nobody).
SELECT y.lease_holder, y.lease_expires_at FROM registry_sync AS y
WHERE y.source_id = sqlc.arg('source_id');

-- name: CloseLostAttempts :execrows
-- Attempts of a source that never ended (their replica died): lost.
UPDATE sync_attempt SET ended_at = now(), result = 'lost',
    message = 'the replica stopped renewing its lease before the attempt ended'
WHERE source_id = sqlc.arg('source_id') AND ended_at IS NULL;

-- name: StartAttempt :one
-- Record an attempt in the history; returns its id.
INSERT INTO sync_attempt (source_id, replica, started_at)
VALUES (sqlc.arg('source_id'), sqlc.arg('replica'), sqlc.arg('started_at'))
RETURNING id;

-- name: EndAttempt :exec
-- Record how an attempt ended.
UPDATE sync_attempt SET ended_at = clock_timestamp(), result = sqlc.arg('result'),
    message = sqlc.narg('message')
WHERE id = sqlc.arg('attempt_id');

-- name: PruneAttempts :execrows
-- Keep the latest attempts of a source (how many: keep), remove older ones.
DELETE FROM sync_attempt AS t
WHERE t.source_id = sqlc.arg('source_id')
    AND t.id < (SELECT a.id FROM sync_attempt AS a WHERE a.source_id = sqlc.arg('source_id')
              ORDER BY a.id DESC OFFSET sqlc.arg('keep')::integer - 1 LIMIT 1);

-- name: RenewLease :one
-- Extend a lease this replica holds. A row locked by this replica's own write transaction is
-- skipped (nobody can claim it meanwhile) and reported still held; holder tells who holds the
-- lease now (another replica: this one lost it).
WITH renewed AS (
    UPDATE registry_sync AS y SET lease_expires_at = now() + sqlc.arg('lease')::interval
    WHERE y.source_id = (
        SELECT d.source_id FROM registry_sync AS d
        WHERE d.source_id = sqlc.arg('source_id') AND d.lease_holder = sqlc.arg('holder')
        FOR UPDATE SKIP LOCKED
    )
    RETURNING y.lease_expires_at
)
SELECT
    (SELECT c.lease_holder FROM registry_sync AS c
     WHERE c.source_id = sqlc.arg('source_id'))::text AS holder,
    (SELECT r.lease_expires_at FROM renewed AS r)::timestamptz AS renewed_until;

-- name: HoldLease :one
-- Lock a source's status row for the rest of the write transaction and say who holds its
-- lease: the write goes on only while it is this replica.
SELECT y.lease_holder FROM registry_sync AS y
WHERE y.source_id = sqlc.arg('source_id')
FOR UPDATE;

-- name: CompleteLeased :execrows
-- A good attempt (synced or unchanged): hashes, counts, summary; due again one interval after
-- it started; the lease is released. Only the lease holder's attempt is recorded.
UPDATE registry_sync AS y SET
    sync_status = 'COMPLETED',
    error_msg = NULL,
    message = sqlc.arg('message'),
    ended_at = clock_timestamp(),
    last_success_at = clock_timestamp(),
    attempt_count = 0,
    last_sync_hash = sqlc.arg('sha256'),
    last_applied_filter_hash = sqlc.narg('filter_hash'),
    server_count = sqlc.arg('servers'),
    skill_count = sqlc.arg('skills'),
    version_count = sqlc.arg('versions'),
    plugin_skipped_count = sqlc.arg('plugins_skipped'),
    next_due_at = y.started_at + coalesce(s.sync_schedule, interval '0'),
    lease_holder = NULL,
    lease_expires_at = NULL,
    updated_at = clock_timestamp()
FROM source AS s
WHERE s.id = y.source_id
    AND y.source_id = sqlc.arg('source_id')
    AND y.lease_holder = sqlc.arg('holder');

-- name: FailLeased :execrows
-- A failed attempt: one more consecutive failure, due again after the back-off (the interval,
-- doubled for each earlier consecutive failure, at most the larger of backoff_max and the
-- interval); the data, hashes and counts of the last good sync stay; the lease is released.
UPDATE registry_sync AS y SET
    sync_status = 'FAILED',
    error_msg = sqlc.arg('message'),
    message = sqlc.arg('message'),
    ended_at = clock_timestamp(),
    attempt_count = y.attempt_count + 1,
    next_due_at = y.started_at + least(
        coalesce(s.sync_schedule, interval '0') * power(2, least(y.attempt_count, 30))::float8,
        greatest(sqlc.arg('backoff_max')::interval, coalesce(s.sync_schedule, interval '0'))
    ),
    lease_holder = NULL,
    lease_expires_at = NULL,
    updated_at = clock_timestamp()
FROM source AS s
WHERE s.id = y.source_id
    AND y.source_id = sqlc.arg('source_id')
    AND y.lease_holder = sqlc.arg('holder');

-- name: InterruptLeased :execrows
-- An attempt stopped from outside (the server stopping): not the source's failure; due at once
-- (another replica may take it), the lease released.
UPDATE registry_sync AS y SET
    sync_status = 'FAILED',
    error_msg = sqlc.arg('message'),
    message = sqlc.arg('message'),
    ended_at = clock_timestamp(),
    next_due_at = NULL,
    lease_holder = NULL,
    lease_expires_at = NULL,
    updated_at = clock_timestamp()
WHERE y.source_id = sqlc.arg('source_id') AND y.lease_holder = sqlc.arg('holder');

-- name: Heartbeat :exec
-- This replica is alive until expires_at, with this configuration.
INSERT INTO sync_replica (replica, config_fingerprint, sources, expires_at)
VALUES (
    sqlc.arg('replica'),
    sqlc.arg('fingerprint'),
    sqlc.arg('sources')::text[],
    now() + sqlc.arg('ttl')::interval
)
ON CONFLICT (replica) DO UPDATE SET
    config_fingerprint = EXCLUDED.config_fingerprint,
    sources = EXCLUDED.sources,
    heartbeat_at = now(),
    expires_at = EXCLUDED.expires_at;

-- name: PruneReplicas :execrows
-- Forget replicas whose heartbeat expired.
DELETE FROM sync_replica WHERE expires_at < now();

-- name: ForgetReplica :execrows
-- A replica that stops says so.
DELETE FROM sync_replica WHERE replica = sqlc.arg('replica');

-- name: LiveReplicas :many
-- The replicas whose heartbeat has not expired, oldest first.
SELECT replica, config_fingerprint, sources, started_at, heartbeat_at, expires_at
FROM sync_replica
WHERE expires_at >= now()
ORDER BY started_at, replica;

-- name: SourcesStatus :many
-- Every source with its sync status and lease, by name (what `sources` lists).
SELECT
    s.name,
    s.source_type,
    s.creation_type,
    s.syncable,
    s.sync_schedule,
    y.sync_status,
    y.message,
    y.started_at,
    y.ended_at,
    y.last_success_at,
    coalesce(y.attempt_count, 0)::bigint AS attempt_count,
    coalesce(y.attempts_total, 0)::bigint AS attempts_total,
    coalesce(y.server_count, 0)::bigint AS server_count,
    coalesce(y.skill_count, 0)::bigint AS skill_count,
    coalesce(y.version_count, 0)::bigint AS version_count,
    coalesce(y.plugin_skipped_count, 0)::bigint AS plugin_skipped_count,
    y.next_due_at,
    y.lease_holder,
    y.lease_expires_at,
    (y.lease_expires_at IS NOT NULL AND y.lease_expires_at > now())::boolean AS lease_live
FROM source AS s
LEFT JOIN registry_sync AS y ON y.source_id = s.id
ORDER BY s.name;
