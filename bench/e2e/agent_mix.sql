-- bench/e2e.sh's agent-mix workload: what an AI coding agent sends while it works on
-- pgbench's schema. Reads with joins, an aggregate, a look at the catalog, then a change
-- and a note about it in one transaction. Valid at any scale (run with -s SCALE so
-- that :scale is the one pgbench -i used); agent_scratch is created by bench/e2e.sh.
-- In simple mode the random keys make most texts new each time (decision cache misses);
-- the catalog query, BEGIN and COMMIT repeat exactly.
\set aid random(1, 100000 * :scale)
\set aid2 random(1, 100000 * :scale)
\set aid3 random(1, 100000 * :scale)
\set bid random(1, :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
-- One account with its branch and that branch's first tellers.
SELECT a.aid, a.abalance, b.bid, b.bbalance, t.tid, t.tbalance
  FROM pgbench_accounts a
  JOIN pgbench_branches b ON b.bid = a.bid
  JOIN pgbench_tellers t ON t.bid = b.bid
 WHERE a.aid = :aid
 ORDER BY t.tid
 LIMIT 5;
-- An aggregate over a range of 1,000 accounts.
SELECT a.bid, count(*) AS accounts, sum(a.abalance) AS total, round(avg(a.abalance), 2) AS mean
  FROM pgbench_accounts a
 WHERE a.aid BETWEEN :aid2 AND :aid2 + 999
 GROUP BY a.bid
 ORDER BY a.bid;
-- Exploring the schema before writing a query.
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
 WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, a.attnum;
-- A teller next to its branch.
SELECT t.tid, t.tbalance, b.bbalance, t.tbalance - b.bbalance AS difference
  FROM pgbench_tellers t
  JOIN pgbench_branches b USING (bid)
 WHERE t.tid = :tid;
-- A change by key, and the agent's notes about it.
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
INSERT INTO agent_scratch (aid, bid, delta, note) VALUES
  (:aid, :bid, :delta, 'adjusted balance'),
  (:aid2, :bid, 0, 'looked at range'),
  (:aid3, :bid, 0, 'looked at');
COMMIT;
