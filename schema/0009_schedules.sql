-- 0009: the schedule trigger's per-zap state (issue 17), owned by the schedule module. One
-- row per schedule zap, written in the same transaction as the run of each slot, so a slot
-- runs once across restarts and kill -9: a slot <= through_ms is never fired again.
CREATE TABLE schedules (
  zap_id        TEXT PRIMARY KEY,
  zap_version   INTEGER NOT NULL,   -- the version the row was last written for (an edit re-baselines)
  through_ms    INTEGER NOT NULL,   -- Unix ms: every slot up to here has fired or was skipped
  last_slot_ms  INTEGER,            -- the last slot that made a run
  last_run_id   TEXT,               -- that run
  fired_at_ms   INTEGER             -- when it was made (last_slot_ms + the lag)
) WITHOUT ROWID;
