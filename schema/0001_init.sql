-- 0001: the store's own bookkeeping. schema_migrations is created by the migrator itself.

-- Small key/value facts about this installation (first start, readiness probe).
CREATE TABLE kv (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
) WITHOUT ROWID;
