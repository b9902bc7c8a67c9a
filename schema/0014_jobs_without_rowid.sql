-- 0014: a job is one B-tree entry and one index entry, not five. Every webhook wrote its job
-- row into the table, `sqlite_sequence` (AUTOINCREMENT), the (run_id, step_index) index,
-- `jobs_claim` and `jobs_leases`, and every finished step deleted four of them again: with the
-- run's row, the job was most of the writer's work per webhook. Now:
-- - the table is keyed by (run_id, step_index) WITHOUT ROWID, so the key that already had to
--   be unique (a repeated publish changes nothing) is the row's place;
-- - `id` is the claim's fencing handle (0007: never reused, so a late worker can only match
--   its own claim). The queue gives every claim a new one from a process-wide counter that
--   starts at the clock's microseconds (0 on a job never claimed): ids only have to differ
--   between the claims of one process, since the data dir lock lets one process at a time
--   use the database and every lease it held ends at the next start (release_all_leases);
-- - a leased job's `run_at_ms` is its lease's end (when it may be claimed again), so
--   `jobs_claim` finds expired leases and counts live ones, and `jobs_leases` goes.
CREATE TABLE jobs_new (
  run_id         TEXT NOT NULL,
  step_index     INTEGER NOT NULL,
  id             INTEGER NOT NULL DEFAULT 0,          -- the claim's handle (see above)
  lane           TEXT NOT NULL CHECK (lane = 'paid' OR lane = 'free'),
  run_at_ms      INTEGER NOT NULL,                    -- ready: not claimable before; leased: the lease's end
  attempts       INTEGER NOT NULL DEFAULT 0,          -- claims so far
  lease_until_ms INTEGER,                             -- set while leased (= run_at_ms)
  state          TEXT NOT NULL DEFAULT 'ready' CHECK (state = 'ready' OR state = 'leased' OR state = 'dead'),
  dead_reason    TEXT,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (run_id, step_index)
) WITHOUT ROWID;
INSERT INTO jobs_new (run_id, step_index, id, lane, run_at_ms, attempts, lease_until_ms, state, dead_reason, created_at)
  SELECT run_id, step_index, id, lane,
         CASE WHEN state = 'leased' AND lease_until_ms IS NOT NULL THEN lease_until_ms ELSE run_at_ms END,
         attempts, lease_until_ms, state, dead_reason, created_at
    FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_claim ON jobs(lane, state, run_at_ms);
DELETE FROM sqlite_sequence WHERE name = 'jobs';
