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
-- Reload this connection's schema, then change the schema cookie through ordinary DDL, so that
-- every other connection to the file reloads it too.
PRAGMA writable_schema = RESET;
CREATE TABLE schema_cookie_bump (x);
DROP TABLE schema_cookie_bump;
