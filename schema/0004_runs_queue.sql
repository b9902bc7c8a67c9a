-- 0004: runs, the transactional outbox, the embedded queue's jobs, webhook dedup keys.
-- Times are Unix epoch milliseconds (INTEGER), taken from zapd's clock seam so tests can
-- move time. No foreign keys to users/zaps: rows outlive edits of a zap (a run records
-- the zap version it started on) and the queue must not depend on the zap tables.

-- One execution of a zap, created by a webhook (hooks) in the same transaction as its outbox row.
CREATE TABLE runs (
  id          TEXT PRIMARY KEY,                       -- UUIDv4
  zap_id      TEXT NOT NULL,
  zap_version INTEGER NOT NULL,
  user_id     TEXT NOT NULL,
  lane        TEXT NOT NULL CHECK (lane IN ('paid', 'free')),
  status      TEXT NOT NULL DEFAULT 'queued'
              CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  "trigger"   TEXT NOT NULL,                          -- JSON: body, query, headers, method, received_at
  dedup_key   TEXT,
  created_at  INTEGER NOT NULL,
  started_at  INTEGER,
  finished_at INTEGER
) WITHOUT ROWID;
-- Run history pages: a user's or a zap's runs, newest first.
CREATE INDEX runs_by_user ON runs(user_id, created_at DESC, id);
CREATE INDEX runs_by_zap ON runs(zap_id, created_at DESC, id);

-- Steps waiting to be handed to the queue. Written with the run (or with the previous step's
-- result); the outbox relay moves rows to the queue and deletes them once the queue holds them.
CREATE TABLE outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,       -- relay order
  run_id     TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  lane       TEXT NOT NULL CHECK (lane IN ('paid', 'free')),
  created_at INTEGER NOT NULL
);

-- The embedded queue (queue::sqlite_queue): one row per (run, step). A row is deleted when
-- its job is acked. 'leased' rows whose lease_until_ms has passed are claimable again.
CREATE TABLE jobs (
  id             INTEGER PRIMARY KEY,
  run_id         TEXT NOT NULL,
  step_index     INTEGER NOT NULL,
  lane           TEXT NOT NULL CHECK (lane IN ('paid', 'free')),
  run_at_ms      INTEGER NOT NULL,                    -- not claimable before (retries, delays)
  attempts       INTEGER NOT NULL DEFAULT 0,          -- claims so far; also the lease's fencing token
  lease_until_ms INTEGER,                             -- set while leased
  state          TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'leased', 'dead')),
  dead_reason    TEXT,
  created_at     INTEGER NOT NULL,
  UNIQUE (run_id, step_index)
);
-- claim: ready jobs of a lane in run_at order.
CREATE INDEX jobs_claim ON jobs(lane, state, run_at_ms);
-- claim: expired leases of a lane; and the lane's in-flight count (live leases).
CREATE INDEX jobs_leases ON jobs(lane, lease_until_ms) WHERE state = 'leased';

-- Webhook dedup (webhook-id / Idempotency-Key / configured JSON path) -> the first run.
CREATE TABLE dedup_keys (
  zap_id        TEXT NOT NULL,
  key           TEXT NOT NULL,
  run_id        TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (zap_id, key)
) WITHOUT ROWID;
-- Expiry sweeps (24 h window).
CREATE INDEX dedup_keys_by_age ON dedup_keys(created_at_ms);
