-- 0006: what each step of a run did (issue #6), and why a run ended.

ALTER TABLE runs ADD COLUMN error TEXT;        -- the failing step's error, for failed runs
ALTER TABLE runs ADD COLUMN replay_of TEXT;    -- the run this one replays, if any

-- One row per (run, step), written by the worker in the same transaction that settles the
-- step's job and enqueues the next step. Steps are numbered from 1 (`{{steps.1...}}`).
CREATE TABLE run_steps (
  run_id          TEXT NOT NULL,
  step_index      INTEGER NOT NULL,
  action_id       TEXT NOT NULL,                -- catalog id: http, email
  status          TEXT NOT NULL
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
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
