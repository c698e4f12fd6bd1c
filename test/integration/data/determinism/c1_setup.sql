-- class 1: values fixed per transaction or statement (run through pgchorus)
create table tm (
	id int primary key,
	c_now timestamptz, c_ts timestamptz, c_date date, c_time timetz, c_ltime time, c_lts timestamp,
	c_txts timestamptz, c_stmts timestamptz, c_nowlit timestamptz, c_nowdate date, c_today date,
	n int not null default 0,
	upd timestamptz, upd_d date, upd_lts timestamp, upd_sub timestamptz, upd_lt time, upd_stmt timestamptz,
	-- filled by their defaults (the column is never given)
	dflt timestamptz default now(), dflt_d date default current_date, dflt_lts timestamp default localtimestamp,
	dflt_tx timestamptz default transaction_timestamp());
create table tm_ev (
	id int primary key,
	note text,
	cnt int not null default 1,
	seen timestamptz, seen_stmt timestamptz,
	at timestamptz default now(), d date default current_date, t timetz default current_time);
-- written outside pgbench
create table t1same (id int primary key, ts timestamptz, st timestamptz);
