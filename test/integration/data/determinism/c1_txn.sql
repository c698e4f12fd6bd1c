-- class 1, BEGIN ... COMMIT with several statements: the transaction's time
-- (and statement_timestamp()) in VALUES, UPDATE SET, WHERE, subqueries and
-- DEFAULT now() columns.  Rows are locked in ascending id order (tm, then
-- tm_ev): no deadlock on a single node.
\set a random(1, 2000)
\set b random(1, 2000)
\set lo least(:a, :b)
\set hi greatest(:a, :b)
BEGIN;
INSERT INTO tm (id, c_now, c_ts, c_date, c_time, c_ltime, c_lts, c_txts, c_stmts, c_nowlit, c_nowdate, c_today)
	VALUES (:lo, now(), CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME, LOCALTIME, LOCALTIMESTAMP,
		transaction_timestamp(), statement_timestamp(), 'now'::timestamptz, 'now'::date, 'today'::date)
	ON CONFLICT (id) DO UPDATE SET n = tm.n + 1, upd = now(), upd_d = CURRENT_DATE, upd_stmt = statement_timestamp();
UPDATE tm SET upd = CURRENT_TIMESTAMP, upd_lts = LOCALTIMESTAMP, upd_d = 'today'::date, n = n + 1
	WHERE id = :hi AND c_now <= now();
UPDATE tm SET upd_sub = (SELECT now() - interval '1 day'), upd_lt = (SELECT LOCALTIME(0))
	WHERE id = :hi AND coalesce(upd_d, CURRENT_DATE) <= (SELECT CURRENT_DATE);
INSERT INTO tm_ev (id, note) VALUES (:lo, 'txn')
	ON CONFLICT (id) DO UPDATE SET cnt = tm_ev.cnt + 1, seen = transaction_timestamp(), seen_stmt = statement_timestamp();
COMMIT;
