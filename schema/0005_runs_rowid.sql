-- 0005: runs becomes a rowid table. As WITHOUT ROWID, a run's whole row (trigger payload
-- included, often ~1 KB) lived in the primary-key B-tree, where SQLite keeps much less of a
-- row on the page and splits pages far more. Run ids are now UUIDv7 (time-ordered), so
-- both the table and the id index grow at their right edge. Nothing wrote runs before this
-- version (ingestion arrives with it), so the table is recreated empty.
DROP TABLE runs;
CREATE TABLE runs (
  id          TEXT NOT NULL UNIQUE,                   -- UUIDv7
  zap_id      TEXT NOT NULL,
  zap_version INTEGER NOT NULL,
  user_id     TEXT NOT NULL,
  lane        TEXT NOT NULL CHECK (lane IN ('paid', 'free')),
  status      TEXT NOT NULL DEFAULT 'queued'
              CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  "trigger"   TEXT NOT NULL,                          -- JSON: method, body, query, headers, contentType, receivedAt
  dedup_key   TEXT,
  created_at  INTEGER NOT NULL,                       -- Unix ms
  started_at  INTEGER,
  finished_at INTEGER
);
-- Run history pages: a user's or a zap's runs, newest first.
CREATE INDEX runs_by_user ON runs(user_id, created_at DESC, id);
CREATE INDEX runs_by_zap ON runs(zap_id, created_at DESC, id);
