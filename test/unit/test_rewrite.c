/*
 * test_rewrite.c - unit tests of the transaction-time rewrite
 * (src/route/rewrite.c): a table of statements with their expected text,
 * counts and highest parameter; errors; deep and long texts; the
 * scanner-only rewrite_max_param().
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "pgchorus/rewrite.h"

/* Prototypes for the TEST functions (the build uses -Wmissing-prototypes). */
#define X(name) void name(void);
#include "tests_rewrite.def"
#undef X

#define R "'2026-11-21 08:40:00.123456+00'::timestamptz"
#define P5 "$5::timestamptz"

struct expect {
	const char *sql;
	const char *want;    /* NULL: nothing replaced */
	int n_replaced;
	int n_left;
	int max_param;
};

/* Rewrite sql with ref and compare with the expectation, printing both on a mismatch. */
static bool check_rw(const char *sql, const char *ref, const char *want, int n, int left, int max_param)
{
	struct rewrite_result r;
	bool ok;

	rewrite_now(sql, ref, &r);
	ok = !r.error && r.n_replaced == n && r.n_left == left && r.max_param == max_param &&
	     ((!want && !r.sql) || (want && r.sql && strcmp(want, r.sql) == 0));
	if (!ok)
		fprintf(stderr, "    %.300s\n      got  %s n=%d left=%d max=%d error=%d\n"
		        "      want %s n=%d left=%d max=%d\n", sql, r.sql ? r.sql : "(null)",
		        r.n_replaced, r.n_left, r.max_param, r.error, want ? want : "(null)", n, left, max_param);
	rewrite_result_free(&r);
	return ok;
}

static const struct expect table[] = {
	/* pgbench */
	{ "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, CURRENT_TIMESTAMP);",
	  "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, 4, (" R "));", 1, 0, 0 },
	{ "UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 7;", NULL, 0, 0, 0 },
	/* every spelling */
	{ "INSERT INTO t VALUES (now())", "INSERT INTO t VALUES ((" R "))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (NOW ( ))", "INSERT INTO t VALUES ((" R "))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (now /* why */ ())", "INSERT INTO t VALUES ((" R "))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (\"now\"())", "INSERT INTO t VALUES ((" R "))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (pg_catalog.now())", "INSERT INTO t VALUES ((" R "))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (pg_catalog . now())", "INSERT INTO t VALUES ((" R "))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (transaction_timestamp(), statement_timestamp())",
	  "INSERT INTO t VALUES ((" R "), statement_timestamp())", 1, 0, 0 },
	{ "INSERT INTO t VALUES (current_timestamp(3))",
	  "INSERT INTO t VALUES (((" R ")::timestamptz(3)))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (CURRENT_TIMESTAMP ( 6 ))",
	  "INSERT INTO t VALUES (((" R ")::timestamptz(6)))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (LOCALTIMESTAMP, LOCALTIMESTAMP(2))",
	  "INSERT INTO t VALUES (((" R ")::timestamp), ((" R ")::timestamp(2)))", 2, 0, 0 },
	{ "INSERT INTO t VALUES (CURRENT_DATE)", "INSERT INTO t VALUES (((" R ")::date))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (CURRENT_TIME, current_time(0))",
	  "INSERT INTO t VALUES (((" R ")::timetz), ((" R ")::timetz(0)))", 2, 0, 0 },
	{ "INSERT INTO t VALUES (LOCALTIME, LOCALTIME(1))",
	  "INSERT INTO t VALUES (((" R ")::time), ((" R ")::time(1)))", 2, 0, 0 },
	/* 'now' cast to a time type */
	{ "INSERT INTO t VALUES ('now'::timestamptz)", "INSERT INTO t VALUES ((" R ")::timestamptz)", 1, 0, 0 },
	{ "INSERT INTO t VALUES (' NOW '::date)", "INSERT INTO t VALUES ((" R ")::date)", 1, 0, 0 },
	{ "INSERT INTO t VALUES ('now'::pg_catalog.timestamp(3))",
	  "INSERT INTO t VALUES ((" R ")::pg_catalog.timestamp(3))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (CAST('now' AS time with time zone))",
	  "INSERT INTO t VALUES (CAST((" R ") AS time with time zone))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (timestamp 'now')", "INSERT INTO t VALUES (((" R ")::timestamp ))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (timestamp(2) with time zone 'now')",
	  "INSERT INTO t VALUES (((" R ")::timestamp(2) with time zone ))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (date -- the day\n'now')",
	  "INSERT INTO t VALUES (((" R ")::date -- the day\n))", 1, 0, 0 },
	{ "INSERT INTO t VALUES (E'now'::date, $$now$$::timetz)",
	  "INSERT INTO t VALUES ((" R ")::date, (" R ")::timetz)", 2, 0, 0 },
	{ "INSERT INTO t VALUES (U&'now' UESCAPE '!'::date)", "INSERT INTO t VALUES ((" R ")::date)", 1, 0, 0 },
	{ "INSERT INTO t VALUES ('no'\n'w'::date)", "INSERT INTO t VALUES ((" R ")::date)", 1, 0, 0 },
	/* not transaction time, or not time at all */
	{ "INSERT INTO t VALUES ('now'::text, 'now', 'now()', 'now'::interval)", NULL, 0, 0, 0 },
	{ "INSERT INTO t VALUES (clock_timestamp(), timeofday(), random(), now)", NULL, 0, 0, 0 },
	{ "INSERT INTO t VALUES (myschema.now(), now(1), now() OVER ())", NULL, 0, 0, 0 },
	{ "INSERT INTO t VALUES ('today'::date, date 'tomorrow', 'yesterday'::timestamp)", NULL, 0, 3, 0 },
	{ "INSERT INTO t VALUES (current_user, current_schema, session_user)", NULL, 0, 0, 0 },
	/* comments and strings keep their contents */
	{ "INSERT INTO t VALUES (1, 'now()') /* now() */ -- CURRENT_TIMESTAMP\n", NULL, 0, 0, 0 },
	{ "INSERT INTO t /* now() */ VALUES ('now()', now()) -- now()",
	  "INSERT INTO t /* now() */ VALUES ('now()', (" R ")) -- now()", 1, 0, 0 },
	/* everywhere in the statement */
	{ "DELETE FROM t WHERE ts < now() - interval '1 day'",
	  "DELETE FROM t WHERE ts < (" R ") - interval '1 day'", 1, 0, 0 },
	{ "UPDATE t SET a = date_trunc('day', now()), b = (SELECT max(x) FROM u WHERE u.d > CURRENT_DATE)",
	  "UPDATE t SET a = date_trunc('day', (" R ")), b = (SELECT max(x) FROM u WHERE u.d > ((" R ")::date))",
	  2, 0, 0 },
	{ "WITH c AS (UPDATE t SET ts = now() RETURNING id) INSERT INTO log SELECT id, now() AS at FROM c",
	  "WITH c AS (UPDATE t SET ts = (" R ") RETURNING id) INSERT INTO log SELECT id, (" R ") AS at FROM c",
	  2, 0, 0 },
	{ "INSERT INTO t SELECT * FROM u WHERE u.ts IN (SELECT max(ts) FROM v WHERE ts < now()::date)",
	  "INSERT INTO t SELECT * FROM u WHERE u.ts IN (SELECT max(ts) FROM v WHERE ts < (" R ")::date)", 1, 0, 0 },
	{ "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET ts = now() "
	  "WHEN NOT MATCHED THEN INSERT VALUES (s.id, now())",
	  "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET ts = (" R ") "
	  "WHEN NOT MATCHED THEN INSERT VALUES (s.id, (" R "))", 2, 0, 0 },
	{ "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET ts = now() WHERE t.ts < now()",
	  "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET ts = (" R ") WHERE t.ts < (" R ")", 2, 0, 0 },
	{ "CALL p(now(), CURRENT_DATE)", "CALL p((" R "), ((" R ")::date))", 2, 0, 0 },
	{ "SELECT f(coalesce(x, now())) FROM t FOR UPDATE", "SELECT f(coalesce(x, (" R "))) FROM t FOR UPDATE",
	  1, 0, 0 },
	{ "SELECT * FROM generate_series(now(), now() + '1 day', '1 hour') g FOR UPDATE",
	  "SELECT * FROM generate_series((" R "), (" R ") + '1 day', '1 hour') g FOR UPDATE", 2, 0, 0 },
	{ "COPY t FROM STDIN WHERE ts < now()", "COPY t FROM STDIN WHERE ts < (" R ")", 1, 0, 0 },
	{ "EXECUTE p(now())", "EXECUTE p((" R "))", 1, 0, 0 },
	{ "EXPLAIN ANALYZE INSERT INTO t VALUES (now())", "EXPLAIN ANALYZE INSERT INTO t VALUES ((" R "))",
	  1, 0, 0 },
	{ "CREATE TABLE c AS SELECT now() AS ts", "CREATE TABLE c AS SELECT (" R ") AS ts", 1, 0, 0 },
	{ "DECLARE c CURSOR WITH HOLD FOR SELECT id FROM t WHERE ts < now()",
	  "DECLARE c CURSOR WITH HOLD FOR SELECT id FROM t WHERE ts < (" R ")", 1, 0, 0 },
	/* result column names are kept */
	{ "INSERT INTO t VALUES (1) RETURNING now(), now() AS x, now()::date, CURRENT_DATE, 'now'::date",
	  "INSERT INTO t VALUES (1) RETURNING (SELECT (" R ") AS \"now\"), (" R ") AS x, "
	  "(SELECT (" R ") AS \"now\")::date, (SELECT ((" R ")::date) AS \"current_date\"), "
	  "(" R ")::date", 5, 0, 0 },
	{ "SELECT nextval('s'), transaction_timestamp(), now() + interval '1 h'",
	  "SELECT nextval('s'), (SELECT (" R ") AS \"transaction_timestamp\"), (" R ") + interval '1 h'", 2, 0, 0 },
	{ "SELECT LOCALTIMESTAMP(3) FROM t FOR UPDATE",
	  "SELECT (SELECT ((" R ")::timestamp(3)) AS \"localtimestamp\") FROM t FOR UPDATE", 1, 0, 0 },
	/* a FROM item must be a function call */
	{ "SELECT * FROM now() FOR UPDATE", NULL, 0, 1, 0 },
	{ "SELECT * FROM CURRENT_DATE, now() x WHERE now() > x FOR UPDATE",
	  "SELECT * FROM CURRENT_DATE, now() x WHERE (" R ") > x FOR UPDATE", 1, 2, 0 },
	/* several statements */
	{ "BEGIN; INSERT INTO a VALUES (now()); UPDATE b SET t = CURRENT_TIMESTAMP; COMMIT",
	  "BEGIN; INSERT INTO a VALUES ((" R ")); UPDATE b SET t = (" R "); COMMIT", 2, 0, 0 },
	{ "SELECT 1; SELECT 2;", NULL, 0, 0, 0 },
	/* stored: left alone */
	{ "CREATE FUNCTION f() RETURNS timestamptz AS $$ select now() $$ LANGUAGE sql", NULL, 0, 0, 0 },
	{ "CREATE FUNCTION f() RETURNS timestamptz LANGUAGE sql BEGIN ATOMIC SELECT now(); END", NULL, 0, 0, 0 },
	{ "CREATE VIEW v AS SELECT now()", NULL, 0, 0, 0 },
	{ "CREATE MATERIALIZED VIEW v AS SELECT now()", NULL, 0, 0, 0 },
	{ "CREATE TABLE t (id int, ts timestamptz DEFAULT now() CHECK (ts <= now()))", NULL, 0, 0, 0 },
	{ "PREPARE p AS INSERT INTO t VALUES (now())", NULL, 0, 0, 0 },
	{ "DO $$ BEGIN PERFORM now(); END $$", NULL, 0, 0, 0 },
	{ "ALTER TABLE t ADD COLUMN ts timestamptz DEFAULT now(), ALTER COLUMN d SET DEFAULT CURRENT_DATE",
	  NULL, 0, 2, 0 },
	{ "ALTER TABLE t ALTER COLUMN d TYPE date USING now()::date",
	  "ALTER TABLE t ALTER COLUMN d TYPE date USING (" R ")::date", 1, 0, 0 },
	/* empty */
	{ "", NULL, 0, 0, 0 },
	{ "-- now()", NULL, 0, 0, 0 },
};

TEST(test_rewrite_table)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct expect *e = &table[i];

		CHECK(check_rw(e->sql, R, e->want, e->n_replaced, e->n_left, e->max_param));
	}
}

/* Extended protocol: the time is an extra parameter after the client's. */
TEST(test_rewrite_params)
{
	CHECK(check_rw("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
	               "VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);", P5,
	               "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
	               "VALUES ($1, $2, $3, $4, (" P5 "));", 1, 0, 4));
	CHECK(check_rw("UPDATE t SET ts = now() WHERE id = $2 AND ts > $1::date", P5,
	               "UPDATE t SET ts = (" P5 ") WHERE id = $2 AND ts > $1::date", 1, 0, 2));
	CHECK(check_rw("SELECT $1, '$7', $$ $8 $$ /* $9 */ -- $10\n", P5, NULL, 0, 0, 1));
	CHECK(check_rw("INSERT INTO t VALUES ($12)", P5, NULL, 0, 0, 12));
}

TEST(test_rewrite_errors)
{
	static const char *const bad[] = {
		"INSERT INTO t VALUES (now()", "SELEC now()", "INSERT INTO t VALUES (now()); SELEC 1",
		"SELECT 'unterminated now()", "/* now() ", "\xff\xfe now()",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rewrite_result r;

		rewrite_now(bad[i], R, &r);
		CHECK(r.error);
		CHECK(r.sql == NULL);
		CHECK(r.n_replaced == 0);
		rewrite_result_free(&r);
	}
}

TEST(test_rewrite_max_param)
{
	CHECK(rewrite_max_param("SELECT 1") == 0);
	CHECK(rewrite_max_param("SELECT $1, $12, $3") == 12);
	CHECK(rewrite_max_param("SELECT '$40', $$ $41 $$, $q$ $42 $q$ /* $43 */ -- $44") == 0);
	CHECK(rewrite_max_param("SELECT $2; SELECT $7") == 7);
	CHECK(rewrite_max_param("SELECT $99999999999999") == 2147483647);
	CHECK(rewrite_max_param("SELECT 'unterminated") == -1);
	CHECK(rewrite_max_param("SELEC $3") == 3);   /* the scanner does not check the grammar */
}

/* Long texts: a multi-row INSERT is rewritten, a too deep expression refused. */
TEST(test_rewrite_long)
{
	size_t rows = 2000, n = 0, cap = rows * 64 + 64, wcap = rows * 128 + 64, wn = 0;
	char *sql = malloc(cap), *want = malloc(wcap);
	struct rewrite_result r;

	REQUIRE(sql && want);
	n += (size_t)snprintf(sql + n, cap - n, "INSERT INTO t VALUES ");
	wn += (size_t)snprintf(want + wn, wcap - wn, "INSERT INTO t VALUES ");
	for (size_t i = 0; i < rows; i++) {
		n += (size_t)snprintf(sql + n, cap - n, "%s(%zu, now())", i ? ", " : "", i);
		wn += (size_t)snprintf(want + wn, wcap - wn, "%s(%zu, (" R "))", i ? ", " : "", i);
	}
	rewrite_now(sql, R, &r);
	CHECK(!r.error);
	CHECK(r.n_replaced == (int)rows);
	CHECK_STREQ(r.sql, want);
	rewrite_result_free(&r);

	/* SELECT now()+1+1+...: refused before the parser can go too deep */
	n = (size_t)snprintf(sql, cap, "INSERT INTO t SELECT now()");
	for (size_t i = 0; i < 30000 && n + 3 < cap; i++)
		n += (size_t)snprintf(sql + n, cap - n, "+1");
	rewrite_now(sql, R, &r);
	CHECK(r.error);
	CHECK(r.sql == NULL);
	rewrite_result_free(&r);
	free(sql);
	free(want);
}
