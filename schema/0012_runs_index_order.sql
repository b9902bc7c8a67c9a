-- 0012: the run-history indexes in ascending order. As (user_id, created_at DESC, id) every new
-- run went to the left end of its user's (zap's) range, where SQLite splits pages in half
-- (its quick append balance works only at a B-tree's right end), and the history's
-- `ORDER BY created_at DESC, id DESC` did not match the index's (DESC, ASC) order, so each page
-- sorted its rows in a temporary B-tree. Ascending, a user's new runs append at the end of
-- its range and the history reads the index backwards, already in order, the cursor's
-- `(created_at, id) < (?, ?)` bounding the scan. Rebuilding the two indexes reads every run
-- once (zapd logs the migration it applies).
DROP INDEX runs_by_user;
DROP INDEX runs_by_zap;
CREATE INDEX runs_by_user ON runs(user_id, created_at, id);
CREATE INDEX runs_by_zap ON runs(zap_id, created_at, id);
