-- 0002: accounts (issue 3). Users sign in with email + password (argon2id hash); sessions are
-- stateless JWTs that carry token_version, so bumping it ends every session of the user.

CREATE TABLE users (
  id            TEXT PRIMARY KEY,                 -- UUIDv4
  email         TEXT NOT NULL UNIQUE,             -- trimmed, lower-cased
  name          TEXT NOT NULL,
  password_hash TEXT NOT NULL,                    -- "$argon2id$v=19$m=...,t=...,p=1$salt$hash"
  plan          TEXT NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'paid')),
  is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
  token_version INTEGER NOT NULL DEFAULT 0,
  created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
) WITHOUT ROWID;

-- API tokens for scripts. Only SHA-256(token) is stored; the token is shown once.
CREATE TABLE api_tokens (
  id           TEXT PRIMARY KEY,                  -- UUIDv4
  user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name         TEXT NOT NULL,
  token_hash   TEXT NOT NULL UNIQUE,
  created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  last_used_at TEXT,
  revoked      INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
) WITHOUT ROWID;

CREATE INDEX api_tokens_by_user ON api_tokens(user_id, created_at);
