-- 0013: the hot tables' CHECK constraints as chains of `=` instead of `IN` lists. SQLite codes
-- an IN list of more than two values as a temporary B-tree that it opens, fills and closes for
-- every row written (EXPLAIN shows `OpenEphemeral`): every webhook paid that twice (its run and
-- its job), every step a few times more (run_steps, job and run status updates), about 8 % of
-- the writer thread's time. The chains accept and refuse exactly the same values, so rows
-- already stored satisfy them, and SQLite allows changing a table's CHECK constraints by
-- rewriting its schema text (https://sqlite.org/lang_altertable.html, "otheralter"): no table
-- is copied, whatever its size.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql,
     'CHECK (status IN (''queued'', ''running'', ''waiting'', ''succeeded'', ''failed'', ''filtered'', ''cancelled''))',
     'CHECK (status = ''queued'' OR status = ''running'' OR status = ''waiting'' OR status = ''succeeded'' OR status = ''failed'' OR status = ''filtered'' OR status = ''cancelled'')')
 WHERE type = 'table' AND name = 'runs';
UPDATE sqlite_master
   SET sql = replace(sql,
     'CHECK (status IN (''queued'', ''running'', ''succeeded'', ''failed'', ''filtered'', ''cancelled''))',
     'CHECK (status = ''queued'' OR status = ''running'' OR status = ''succeeded'' OR status = ''failed'' OR status = ''filtered'' OR status = ''cancelled'')')
 WHERE type = 'table' AND name = 'run_steps';
UPDATE sqlite_master
   SET sql = replace(sql,
     'CHECK (state IN (''ready'', ''leased'', ''dead''))',
     'CHECK (state = ''ready'' OR state = ''leased'' OR state = ''dead'')')
 WHERE type = 'table' AND name = 'jobs';
-- Reload this connection's schema. Then the table below fails the migration if a CHECK kept
-- its list (a schema whose text differs from what the earlier migrations wrote), and
-- creating and dropping it, ordinary DDL, changes the schema cookie, so that every other
-- connection to the file reloads the schema too.
PRAGMA writable_schema = RESET;
CREATE TABLE checks_rewritten (
  ok INTEGER NOT NULL
     CONSTRAINT "a status CHECK of runs, run_steps or jobs is not the text the earlier migrations wrote"
     CHECK (ok = 1));
INSERT INTO checks_rewritten
  SELECT NOT EXISTS (SELECT 1 FROM sqlite_master
                      WHERE type = 'table' AND name IN ('runs', 'run_steps', 'jobs')
                        AND (sql LIKE '%status IN (%' OR sql LIKE '%state IN (%'));
DROP TABLE checks_rewritten;
