-- 0007: a job id is never reused, so (id, attempts) identifies one claim for good.
-- jobs.id was INTEGER PRIMARY KEY without AUTOINCREMENT: SQLite hands out max(id)+1, so an
-- acked (deleted) job's id came back for the next job, and a late worker's result could
-- settle that other job. AUTOINCREMENT never reuses an id. The table is rebuilt in place.
CREATE TABLE jobs_new (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id         TEXT NOT NULL,
  step_index     INTEGER NOT NULL,
  lane           TEXT NOT NULL CHECK (lane IN ('paid', 'free')),
  run_at_ms      INTEGER NOT NULL,
  attempts       INTEGER NOT NULL DEFAULT 0,
  lease_until_ms INTEGER,
  state          TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'leased', 'dead')),
  dead_reason    TEXT,
  created_at     INTEGER NOT NULL,
  UNIQUE (run_id, step_index)
);
INSERT INTO jobs_new (id, run_id, step_index, lane, run_at_ms, attempts, lease_until_ms, state, dead_reason, created_at)
  SELECT id, run_id, step_index, lane, run_at_ms, attempts, lease_until_ms, state, dead_reason, created_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_claim ON jobs(lane, state, run_at_ms);
CREATE INDEX jobs_leases ON jobs(lane, lease_until_ms) WHERE state = 'leased';
