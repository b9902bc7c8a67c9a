-- 0010: which worker ran a step's last attempt (host:pid of a `zapd worker` of the Kafka fleet,
-- or of the serving process); NULL for steps recorded before, and for attempts that ran nowhere
-- (a missing secret, an unreadable run).
ALTER TABLE run_steps ADD COLUMN worker TEXT;
