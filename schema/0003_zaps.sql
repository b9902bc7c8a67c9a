-- 0003: zaps, their kept versions, and per-user secrets.

-- The current definition of each zap. `definition` is JSON:
-- {"trigger":{"id","triggerId","metadata"},"actions":[{"id","actionId","sortingOrder","metadata"}]}
CREATE TABLE zaps (
  id         TEXT PRIMARY KEY,            -- UUIDv4, appears in the webhook URL
  user_id    TEXT NOT NULL,
  name       TEXT NOT NULL,
  enabled    INTEGER NOT NULL DEFAULT 1,
  version    INTEGER NOT NULL,
  definition TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE INDEX zaps_by_user ON zaps(user_id, created_at);

-- Every version a zap has had; a run executes the version it started on.
CREATE TABLE zap_versions (
  zap_id     TEXT NOT NULL REFERENCES zaps(id) ON DELETE CASCADE,
  version    INTEGER NOT NULL,
  name       TEXT NOT NULL,
  enabled    INTEGER NOT NULL,
  definition TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  PRIMARY KEY (zap_id, version)
) WITHOUT ROWID;

-- Named per-user secrets, sealed with data_dir/secrets.key (see src/secrets).
CREATE TABLE secrets (
  user_id    TEXT NOT NULL,
  name       TEXT NOT NULL,
  sealed     TEXT NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  PRIMARY KEY (user_id, name)
) WITHOUT ROWID;
