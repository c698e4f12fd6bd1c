-- class 1, autocommit: each statement is a transaction of its own
\set id random(1, 2000)
INSERT INTO tm (id, c_now, c_ts, c_date, c_time, c_ltime, c_lts, c_txts, c_stmts, c_nowlit, c_nowdate, c_today)
	VALUES (:id, now(), CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME, LOCALTIME, LOCALTIMESTAMP,
		transaction_timestamp(), statement_timestamp(), 'now'::timestamptz, 'now'::date, 'today'::date)
	ON CONFLICT (id) DO UPDATE SET n = tm.n + 1, upd = CURRENT_TIMESTAMP, upd_stmt = statement_timestamp();
UPDATE tm SET upd_lts = LOCALTIMESTAMP(2), upd_d = CURRENT_DATE WHERE id = :id AND c_ts < now() + interval '1 hour';
UPDATE tm SET upd_sub = (SELECT transaction_timestamp()), upd_lt = LOCALTIME
	WHERE id = (SELECT :id::int WHERE 'now'::date <= 'today'::date + 1);
INSERT INTO tm_ev (id, note) VALUES (:id, 'auto')
	ON CONFLICT (id) DO UPDATE SET cnt = tm_ev.cnt + 1, seen = now(), seen_stmt = statement_timestamp();
