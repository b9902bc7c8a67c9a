-- 0008: the built-in step kinds (issue 17). A filter step whose conditions do not hold ends
-- its run `filtered` (a final status, not a failure); a delay step leaves its run `waiting`
-- until `resume_at` (Unix ms), when the next step's job falls due. SQLite cannot change a
-- CHECK constraint: runs and run_steps are rebuilt in place, rowids kept (runs are paged by
-- rowid order of insertion), then their indexes made again.
CREATE TABLE runs_new (
  id          TEXT NOT NULL UNIQUE,                   -- UUIDv7
  zap_id      TEXT NOT NULL,
  zap_version INTEGER NOT NULL,
  user_id     TEXT NOT NULL,
  lane        TEXT NOT NULL CHECK (lane IN ('paid', 'free')),
  status      TEXT NOT NULL DEFAULT 'queued'
              CHECK (status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'filtered', 'cancelled')),
  "trigger"   TEXT NOT NULL,                          -- JSON: method, body, query, headers, contentType, receivedAt
  dedup_key   TEXT,
  created_at  INTEGER NOT NULL,                       -- Unix ms
  started_at  INTEGER,
  finished_at INTEGER,
  error       TEXT,                                   -- the failing step's error, for failed runs
  replay_of   TEXT,                                   -- the run this one replays, if any
  resume_at   INTEGER                                 -- Unix ms, while `waiting` (a delay step)
);
INSERT INTO runs_new (rowid, id, zap_id, zap_version, user_id, lane, status, "trigger", dedup_key, created_at,
                      started_at, finished_at, error, replay_of)
  SELECT rowid, id, zap_id, zap_version, user_id, lane, status, "trigger", dedup_key, created_at,
         started_at, finished_at, error, replay_of FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX runs_by_user ON runs(user_id, created_at DESC, id);
CREATE INDEX runs_by_zap ON runs(zap_id, created_at DESC, id);

CREATE TABLE run_steps_new (
  run_id          TEXT NOT NULL,
  step_index      INTEGER NOT NULL,
  action_id       TEXT NOT NULL,                -- catalog id: http, email, filter, delay, formatter
  status          TEXT NOT NULL
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'filtered', 'cancelled')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  input           TEXT,                         -- JSON: rendered config, secrets masked
  output          TEXT,                         -- JSON: the action's output (last attempt)
  error           TEXT,                         -- last attempt's error
  warnings        TEXT,                         -- JSON array: template warnings
  started_at      INTEGER,                      -- Unix ms, first attempt
  finished_at     INTEGER,                      -- Unix ms, when it became final
  duration_ms     INTEGER,                      -- last attempt
  next_attempt_at INTEGER,                      -- Unix ms, while a retry is scheduled
  UNIQUE (run_id, step_index)
);
INSERT INTO run_steps_new (rowid, run_id, step_index, action_id, status, attempts, input, output, error, warnings,
                           started_at, finished_at, duration_ms, next_attempt_at)
  SELECT rowid, run_id, step_index, action_id, status, attempts, input, output, error, warnings,
         started_at, finished_at, duration_ms, next_attempt_at FROM run_steps;
DROP TABLE run_steps;
ALTER TABLE run_steps_new RENAME TO run_steps;

-- A step due later than its enqueue (the step after a delay): the relay publishes its job with
-- this `run_at`. NULL: due at once.
ALTER TABLE outbox ADD COLUMN run_at INTEGER;
