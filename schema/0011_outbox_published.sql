-- 0011: steps handed to a queue that reports each step's outcome later (the Kafka fleet). The
-- relay moves such a row here once the brokers hold its message, instead of deleting it; the
-- recorder deletes it when it records the step's attempt (`outbox::settle`). A row still here
-- at `republish_at` (kafka.republish_after_ms after its publishing) is published again: its
-- message was lost (topic retention, a result that could not be opened). `id` is the outbox
-- row's, carried in the step message and its result.
CREATE TABLE outbox_published (
  id           INTEGER PRIMARY KEY,
  run_id       TEXT NOT NULL,
  step_index   INTEGER NOT NULL,
  lane         TEXT NOT NULL CHECK (lane IN ('paid', 'free')),
  created_at   INTEGER NOT NULL,   -- the outbox row's
  published_at INTEGER NOT NULL,   -- the last time it was published (Unix ms)
  republish_at INTEGER NOT NULL
);
CREATE INDEX outbox_published_due ON outbox_published (republish_at);
