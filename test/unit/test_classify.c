/*
 * test_classify.c - unit tests of statement classification
 * (src/route/classify.c): a table of statements with their expected class,
 * statement count and flags; deep and big statements; the function lists;
 * the per-thread cache.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "pgchorus/classify.h"

/* Prototypes for the TEST functions (the build uses -Wmissing-prototypes). */
#define X(name) void name(void);
#include "tests_classify.def"
#undef X

#define F(x) STMT_F_##x

struct expect {
	const char *sql;
	enum stmt_class cls;
	int n_stmts;
	uint32_t flags;
};

/* Compare one classification with its expectation, printing both on a mismatch. */
static bool same(const char *sql, const struct stmt_info *got, enum stmt_class cls, int n, uint32_t flags)
{
	char a[512], b[512];

	if (got->cls == cls && got->n_stmts == n && got->flags == flags)
		return true;
	fprintf(stderr, "    %.100s\n      got  %s n=%d %s\n      want %s n=%d %s\n", sql,
		stmt_class_name(got->cls), got->n_stmts, stmt_flags_format(got->flags, a, sizeof(a)),
		stmt_class_name(cls), n, stmt_flags_format(flags, b, sizeof(b)));
	return false;
}

static bool check_sql(const char *sql, enum stmt_class cls, int n, uint32_t flags)
{
	struct stmt_info info;

	classify_sql(sql, &info);
	info.flags &= ~STMT_F_OTHER_FN; /* checked by test_classify_other_fn */
	return same(sql, &info, cls, n, flags);
}

/* OTHER_FN: a function none of the lists knows (pg_proc decides, rship.c). */
TEST(test_classify_other_fn)
{
	struct stmt_info info;

	classify_sql("SELECT my_func(1), count(*) FROM t", &info);
	CHECK(info.cls == STMT_READ && (info.flags & STMT_F_OTHER_FN));
	classify_sql("SELECT random(), now() FROM t", &info);
	CHECK(!(info.flags & STMT_F_OTHER_FN));
	classify_sql("SELECT a FROM t", &info);
	CHECK(!(info.flags & STMT_F_OTHER_FN));
}

static const struct expect table[] = {
	/* reads */
	{ "SELECT 1", STMT_READ, 1, 0 },
	{ "select * from t where a = 1 order by b limit 10", STMT_READ, 1, 0 },
	{ "VALUES (1), (2)", STMT_READ, 1, 0 },
	{ "TABLE t", STMT_READ, 1, 0 },
	{ "SELECT 1 UNION SELECT 2 EXCEPT SELECT 3", STMT_READ, 1, 0 },
	{ "SELECT * FROM t WHERE id IN (SELECT id FROM u)", STMT_READ, 1, 0 },
	{ "WITH x AS (SELECT 1) SELECT * FROM x", STMT_READ, 1, 0 },
	{ "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 9) SELECT * FROM r",
	  STMT_READ, 1, 0 },
	{ "SELECT random(), now(), CURRENT_TIMESTAMP", STMT_READ, 1, F(NOW) }, /* a read may differ; its
									     * now() is the transaction's */
	{ "SELECT current_user, current_schema, session_user", STMT_READ, 1, 0 },
	{ "SELECT currval('s')", STMT_READ, 1, F(SEQUENCE) },
	{ "SELECT lo_get(42)", STMT_READ, 1, F(LARGE_OBJECT) },
	{ "SELECT * FROM pg_temp.t", STMT_READ, 1, F(TEMP) },
	{ "SELECT age(a, b) FROM t", STMT_READ, 1, 0 },
	{ "SHOW search_path", STMT_READ, 1, 0 },
	{ "SHOW ALL", STMT_READ, 1, 0 },
	{ "EXPLAIN SELECT * FROM t", STMT_READ, 1, 0 },
	{ "EXPLAIN DELETE FROM t", STMT_READ, 1, 0 },
	{ "EXPLAIN (ANALYZE false) DELETE FROM t", STMT_READ, 1, 0 },
	{ "EXPLAIN (ANALYZE off, COSTS off) UPDATE t SET a = 1", STMT_READ, 1, 0 },
	{ "EXPLAIN ANALYZE SELECT 1", STMT_READ, 1, 0 },
	{ "FETCH 10 FROM c", STMT_READ, 1, F(CURSOR) },
	{ "MOVE NEXT IN c", STMT_READ, 1, F(CURSOR) },
	{ "COPY t TO STDOUT", STMT_READ, 1, F(COPY_TO) },
	{ "COPY (SELECT 1) TO STDOUT", STMT_READ, 1, F(COPY_TO) },
	{ "COPY t TO '/tmp/t.csv' WITH (FORMAT csv)", STMT_READ, 1, F(COPY_TO) | F(COPY_FILE) },

	/* writes */
	{ "INSERT INTO t VALUES (1)", STMT_WRITE, 1, 0 },
	{ "UPDATE t SET a = a + 1 WHERE id = 2", STMT_WRITE, 1, 0 },
	{ "DELETE FROM t WHERE id = 3", STMT_WRITE, 1, 0 },
	{ "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a "
	  "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)", STMT_WRITE, 1, 0 },
	{ "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = excluded.a RETURNING *",
	  STMT_WRITE, 1, 0 },
	{ "SELECT * FROM t FOR UPDATE", STMT_WRITE, 1, F(LOCKING) },
	{ "SELECT * FROM t FOR SHARE SKIP LOCKED", STMT_WRITE, 1, F(LOCKING) | F(VOLATILE) },
	{ "SELECT * FROM t FOR NO KEY UPDATE NOWAIT", STMT_WRITE, 1, F(LOCKING) },
	{ "SELECT * FROM t FOR KEY SHARE OF t", STMT_WRITE, 1, F(LOCKING) },
	{ "SELECT * FROM (SELECT * FROM t FOR UPDATE) s", STMT_WRITE, 1, F(LOCKING) },
	{ "SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.id = t.id FOR SHARE) x", STMT_WRITE, 1, F(LOCKING) },
	{ "SELECT nextval('s')", STMT_WRITE, 1, F(SEQUENCE) | F(VOLATILE) },
	{ "SELECT pg_catalog.nextval('s')", STMT_WRITE, 1, F(SEQUENCE) | F(VOLATILE) },
	{ "SELECT setval('s', 10)", STMT_WRITE, 1, F(SEQUENCE) },
	{ "SELECT * FROM t WHERE id = (SELECT nextval('s'))", STMT_WRITE, 1, F(SEQUENCE) | F(VOLATILE) },
	{ "SELECT * FROM generate_series(1, nextval('s')) g", STMT_WRITE, 1, F(SEQUENCE) | F(VOLATILE) },
	{ "WITH ins AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM ins", STMT_WRITE, 1, 0 },
	{ "WITH d AS (DELETE FROM t RETURNING *) INSERT INTO archive SELECT * FROM d", STMT_WRITE, 1, 0 },
	{ "SELECT * FROM u WHERE x IN (WITH up AS (UPDATE t SET a = 1 RETURNING a) SELECT a FROM up)",
	  STMT_WRITE, 1, 0 },   /* the grammar accepts it (the server refuses it later) */
	{ "COPY t FROM STDIN", STMT_WRITE, 1, F(COPY_FROM) },
	{ "COPY t (a, b) FROM STDIN WITH (FORMAT csv)", STMT_WRITE, 1, F(COPY_FROM) },
	{ "COPY t FROM PROGRAM 'cat /tmp/x'", STMT_WRITE, 1, F(COPY_FROM) | F(COPY_FILE) },
	{ "COPY t FROM STDIN WHERE random() < 0.5", STMT_WRITE, 1, F(COPY_FROM) | F(VOLATILE) },
	{ "COPY (INSERT INTO t VALUES (1) RETURNING id) TO STDOUT", STMT_WRITE, 1, F(COPY_TO) },
	{ "COPY (SELECT nextval('s')) TO STDOUT", STMT_WRITE, 1, F(COPY_TO) | F(SEQUENCE) | F(VOLATILE) },
	{ "CALL do_work(1)", STMT_WRITE, 1, 0 },
	{ "DO $$BEGIN PERFORM 1; END$$", STMT_WRITE, 1, 0 },
	{ "SELECT lo_create(0)", STMT_WRITE, 1, F(LARGE_OBJECT) | F(VOLATILE) },
	{ "SELECT lo_unlink(42)", STMT_WRITE, 1, F(LARGE_OBJECT) },
	{ "SELECT pg_advisory_lock(1)", STMT_WRITE, 1, F(ADVISORY_LOCK) },
	{ "SELECT pg_try_advisory_xact_lock(1, 2)", STMT_WRITE, 1, F(ADVISORY_LOCK) },
	{ "SELECT pg_advisory_unlock_all()", STMT_WRITE, 1, F(ADVISORY_LOCK) },
	{ "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", STMT_WRITE, 1, F(LOCKING) },
	{ "EXPLAIN ANALYZE DELETE FROM t", STMT_WRITE, 1, 0 },
	{ "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1", STMT_WRITE, 1, 0 },
	{ "EXPLAIN (ANALYZE 1) SELECT nextval('s')", STMT_WRITE, 1, F(SEQUENCE) | F(VOLATILE) },
	{ "EXECUTE p(1)", STMT_WRITE, 1, F(EXECUTE) },
	{ "EXECUTE p(random())", STMT_WRITE, 1, F(EXECUTE) | F(VOLATILE) },
	{ "ANALYZE t", STMT_WRITE, 1, 0 },
	{ "INSERT INTO t VALUES (random())", STMT_WRITE, 1, F(VOLATILE) },
	{ "INSERT INTO t VALUES (gen_random_uuid(), now())", STMT_WRITE, 1, F(VOLATILE) | F(NOW) },
	{ "UPDATE t SET ts = CURRENT_TIMESTAMP", STMT_WRITE, 1, F(VOLATILE) | F(NOW) },
	{ "UPDATE t SET d = current_date WHERE id = 1", STMT_WRITE, 1, F(VOLATILE) | F(NOW) },
	{ "INSERT INTO t VALUES (localtimestamp(3))", STMT_WRITE, 1, F(VOLATILE) | F(NOW) },
	{ "DELETE FROM t WHERE ts < 'now'::timestamptz", STMT_WRITE, 1, F(VOLATILE) | F(NOW) },
	{ "INSERT INTO t VALUES (DATE 'today')", STMT_WRITE, 1, F(VOLATILE) | F(NOW) },
	{ "INSERT INTO t VALUES ('2024-01-01'::timestamptz, 'now')", STMT_WRITE, 1, 0 },
	{ "INSERT INTO t VALUES (clock_timestamp())", STMT_WRITE, 1, F(VOLATILE) },
	{ "INSERT INTO t VALUES (uuid_generate_v4())", STMT_WRITE, 1, F(VOLATILE) },
	{ "INSERT INTO t (pid) VALUES (pg_backend_pid())", STMT_WRITE, 1, F(VOLATILE) },
	{ "UPDATE t SET x = age(ts)", STMT_WRITE, 1, F(VOLATILE) },
	{ "UPDATE t SET x = age(a, b)", STMT_WRITE, 1, 0 },
	{ "INSERT INTO t SELECT * FROM u WHERE random() < 0.1 RETURNING id", STMT_WRITE, 1, F(VOLATILE) },
	{ "UPDATE t SET a = 1 WHERE id IN (SELECT id FROM u ORDER BY random() LIMIT 1)",
	  STMT_WRITE, 1, F(VOLATILE) },
	{ "DELETE FROM t USING u WHERE t.id = u.id AND u.ts < now() - interval '1 day'",
	  STMT_WRITE, 1, F(VOLATILE) | F(NOW) },
	/* which rows: LIMIT without ORDER BY, SKIP LOCKED, TABLESAMPLE */
	{ "SELECT * FROM t LIMIT 1", STMT_READ, 1, 0 },
	{ "INSERT INTO t SELECT * FROM u LIMIT 10", STMT_WRITE, 1, F(VOLATILE) },
	{ "INSERT INTO t SELECT * FROM u ORDER BY id LIMIT 10 OFFSET 5", STMT_WRITE, 1, 0 },
	{ "DELETE FROM t WHERE id IN (SELECT id FROM t OFFSET 5)", STMT_WRITE, 1, F(VOLATILE) },
	{ "UPDATE jobs SET taken = true WHERE id = "
	  "(SELECT id FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)",
	  STMT_WRITE, 1, F(LOCKING) | F(VOLATILE) },
	{ "SELECT * FROM jobs ORDER BY id FOR UPDATE SKIP LOCKED", STMT_WRITE, 1, F(LOCKING) | F(VOLATILE) },
	{ "INSERT INTO t SELECT * FROM u TABLESAMPLE SYSTEM (10)", STMT_WRITE, 1, F(VOLATILE) },
	{ "INSERT INTO t SELECT * FROM u TABLESAMPLE SYSTEM (10) REPEATABLE (42)", STMT_WRITE, 1, 0 },

	/* session */
	{ "SET search_path = app, public", STMT_SESSION, 1, 0 },
	{ "SET LOCAL statement_timeout = '5s'", STMT_SESSION, 1, F(SET_LOCAL) },
	{ "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", STMT_SESSION, 1, F(SET_LOCAL) },
	{ "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", STMT_SESSION, 1, 0 },
	{ "SET TIME ZONE 'UTC'", STMT_SESSION, 1, 0 },
	{ "SET ROLE app", STMT_SESSION, 1, 0 },
	{ "SET SESSION AUTHORIZATION bob", STMT_SESSION, 1, 0 },
	{ "SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", STMT_SESSION, 1, F(SET_LOCAL) },
	{ "RESET ALL", STMT_SESSION, 1, 0 },
	{ "RESET work_mem", STMT_SESSION, 1, 0 },
	{ "SET CONSTRAINTS ALL DEFERRED", STMT_SESSION, 1, F(SET_LOCAL) },
	{ "PREPARE p AS SELECT 1", STMT_SESSION, 1, 0 },
	{ "PREPARE q (int) AS INSERT INTO t VALUES ($1)", STMT_SESSION, 1, 0 },
	{ "DEALLOCATE p", STMT_SESSION, 1, 0 },
	{ "DEALLOCATE ALL", STMT_SESSION, 1, 0 },
	{ "LISTEN chan", STMT_SESSION, 1, F(LISTEN_NOTIFY) },
	{ "UNLISTEN *", STMT_SESSION, 1, F(LISTEN_NOTIFY) },
	{ "NOTIFY chan, 'payload'", STMT_SESSION, 1, F(LISTEN_NOTIFY) },
	{ "SELECT pg_notify('chan', 'x')", STMT_SESSION, 1, F(LISTEN_NOTIFY) },
	{ "DISCARD PLANS", STMT_SESSION, 1, 0 },
	{ "DISCARD SEQUENCES", STMT_SESSION, 1, 0 },
	{ "DISCARD TEMP", STMT_SESSION, 1, F(TEMP) },
	{ "LOAD 'auto_explain'", STMT_SESSION, 1, 0 },
	{ "DECLARE c CURSOR FOR SELECT * FROM t", STMT_SESSION, 1, F(CURSOR) },
	{ "DECLARE c CURSOR WITH HOLD FOR SELECT 1", STMT_SESSION, 1, F(CURSOR) | F(WITH_HOLD) },
	{ "DECLARE c NO SCROLL CURSOR WITHOUT HOLD FOR SELECT 1", STMT_SESSION, 1, F(CURSOR) },
	{ "DECLARE c SCROLL CURSOR FOR SELECT * FROM t FOR UPDATE", STMT_WRITE, 1, F(CURSOR) | F(LOCKING) },
	{ "CLOSE c", STMT_SESSION, 1, F(CURSOR) },
	{ "CLOSE ALL", STMT_SESSION, 1, F(CURSOR) },
	{ "SELECT set_config('app.user', 'bob', false)", STMT_SESSION, 1, 0 },
	{ "SELECT set_config('app.user', 'bob', true)", STMT_SESSION, 1, F(SET_LOCAL) },
	{ "SELECT set_config('app.ts', now()::text, false)", STMT_SESSION, 1, F(VOLATILE) | F(NOW) },

	/* transaction control */
	{ "BEGIN", STMT_TXN, 1, F(TXN_BEGIN) },
	{ "BEGIN READ ONLY", STMT_TXN, 1, F(TXN_BEGIN) },
	{ "START TRANSACTION ISOLATION LEVEL REPEATABLE READ", STMT_TXN, 1, F(TXN_BEGIN) },
	{ "COMMIT", STMT_TXN, 1, F(TXN_COMMIT) },
	{ "END", STMT_TXN, 1, F(TXN_COMMIT) },
	{ "COMMIT AND CHAIN", STMT_TXN, 1, F(TXN_COMMIT) | F(TXN_BEGIN) },
	{ "ROLLBACK", STMT_TXN, 1, F(TXN_ROLLBACK) },
	{ "ABORT", STMT_TXN, 1, F(TXN_ROLLBACK) },
	{ "ROLLBACK AND CHAIN", STMT_TXN, 1, F(TXN_ROLLBACK) | F(TXN_BEGIN) },
	{ "SAVEPOINT sp1", STMT_TXN, 1, F(SAVEPOINT) },
	{ "RELEASE SAVEPOINT sp1", STMT_TXN, 1, F(RELEASE) },
	{ "RELEASE sp1", STMT_TXN, 1, F(RELEASE) },
	{ "ROLLBACK TO SAVEPOINT sp1", STMT_TXN, 1, F(ROLLBACK_TO) },
	{ "ROLLBACK TO sp1", STMT_TXN, 1, F(ROLLBACK_TO) },
	{ "PREPARE TRANSACTION 'x'", STMT_TXN, 1, F(PREPARE_TXN) },
	{ "COMMIT PREPARED 'x'", STMT_TXN, 1, F(COMMIT_PREPARED) },
	{ "ROLLBACK PREPARED 'x'", STMT_TXN, 1, F(ROLLBACK_PREPARED) },

	/* DDL */
	{ "CREATE TABLE t (id int PRIMARY KEY, ts timestamptz DEFAULT now())", STMT_DDL, 1, 0 },
	{ "CREATE TEMP TABLE tt (a int)", STMT_DDL, 1, F(TEMP) },
	{ "CREATE TEMPORARY TABLE tt (a int) ON COMMIT DROP", STMT_DDL, 1, F(TEMP) },
	{ "CREATE TABLE pg_temp.x (a int)", STMT_DDL, 1, F(TEMP) },
	{ "CREATE TEMP VIEW v AS SELECT 1", STMT_DDL, 1, F(TEMP) },
	{ "CREATE TEMP SEQUENCE s", STMT_DDL, 1, F(TEMP) },
	{ "CREATE UNLOGGED TABLE u (a int)", STMT_DDL, 1, 0 },
	{ "CREATE SEQUENCE s", STMT_DDL, 1, 0 },
	{ "CREATE TABLE t2 AS SELECT * FROM t", STMT_DDL, 1, 0 },
	{ "CREATE TABLE t2 AS EXECUTE p(1)", STMT_DDL, 1, F(EXECUTE) },
	{ "CREATE TEMP TABLE t2 AS SELECT random() AS r", STMT_DDL, 1, F(TEMP) | F(VOLATILE) },
	{ "SELECT * INTO t2 FROM t", STMT_DDL, 1, 0 },
	{ "SELECT * INTO TEMP t2 FROM t", STMT_DDL, 1, F(TEMP) },
	{ "CREATE MATERIALIZED VIEW mv AS SELECT now()", STMT_DDL, 1, F(VOLATILE) | F(NOW) },
	{ "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid()", STMT_DDL, 1, F(VOLATILE) },
	{ "ALTER TABLE t ADD COLUMN c int", STMT_DDL, 1, 0 },
	{ "ALTER TABLE t ALTER COLUMN a TYPE bigint USING a::bigint", STMT_DDL, 1, 0 },
	{ "ALTER TABLE p ATTACH PARTITION c FOR VALUES IN (1)", STMT_DDL, 1, 0 },
	{ "DROP TABLE t", STMT_DDL, 1, 0 },
	{ "DROP TABLE IF EXISTS pg_temp.x, y", STMT_DDL, 1, F(TEMP) },
	{ "CREATE INDEX i ON t (a)", STMT_DDL, 1, 0 },
	{ "CREATE UNIQUE INDEX i ON t (lower(b)) WHERE a > 0", STMT_DDL, 1, 0 },
	{ "TRUNCATE t", STMT_DDL, 1, 0 },
	{ "COMMENT ON TABLE t IS 'x'", STMT_DDL, 1, 0 },
	{ "GRANT SELECT ON t TO bob", STMT_DDL, 1, 0 },
	{ "REVOKE ALL ON t FROM bob", STMT_DDL, 1, 0 },
	{ "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT nextval(''s'')::int'", STMT_DDL, 1, 0 },
	{ "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT nextval('s'); END",
	  STMT_DDL, 1, 0 },   /* stored, not run */
	{ "CREATE FUNCTION pg_temp.f() RETURNS int AS 'SELECT 1' LANGUAGE sql", STMT_DDL, 1, F(TEMP) },
	{ "CREATE VIEW v AS SELECT * FROM t FOR UPDATE", STMT_DDL, 1, 0 },
	{ "CREATE RULE r AS ON INSERT TO t DO ALSO INSERT INTO log VALUES (now())", STMT_DDL, 1, 0 },
	{ "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", STMT_DDL, 1, 0 },
	{ "ALTER TYPE mood ADD VALUE 'happy'", STMT_DDL, 1, 0 },
	{ "CLUSTER t USING i", STMT_DDL, 1, 0 },
	{ "REINDEX TABLE t", STMT_DDL, 1, 0 },
	{ "REFRESH MATERIALIZED VIEW mv", STMT_DDL, 1, 0 },
	{ "REFRESH MATERIALIZED VIEW CONCURRENTLY mv", STMT_DDL, 1, 0 },
	{ "CHECKPOINT", STMT_DDL, 1, 0 },
	{ "CREATE EXTENSION IF NOT EXISTS pgcrypto", STMT_DDL, 1, 0 },
	{ "CREATE SCHEMA app", STMT_DDL, 1, 0 },
	{ "ALTER DATABASE d SET work_mem = '64MB'", STMT_DDL, 1, 0 },
	{ "ALTER DATABASE d CONNECTION LIMIT 5", STMT_DDL, 1, 0 },
	{ "SECURITY LABEL ON TABLE t IS 'x'", STMT_DDL, 1, 0 },
	{ "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (connect = false)", STMT_DDL, 1, 0 },
	{ "ALTER SUBSCRIPTION s DISABLE", STMT_DDL, 1, 0 },
	{ "ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false)", STMT_DDL, 1, 0 },

	/* not in a transaction block */
	{ "VACUUM", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "VACUUM (FULL, ANALYZE) t", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "VACUUM ANALYZE pg_temp.t", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) | F(TEMP) },
	{ "CREATE DATABASE d", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "DROP DATABASE IF EXISTS d WITH (FORCE)", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "CREATE TABLESPACE ts LOCATION '/x'", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "DROP TABLESPACE ts", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "CREATE INDEX CONCURRENTLY i ON t (a)", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "DROP INDEX CONCURRENTLY i", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "REINDEX INDEX CONCURRENTLY i", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "REINDEX (CONCURRENTLY) TABLE t", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "REINDEX (CONCURRENTLY false) TABLE t", STMT_DDL, 1, 0 },
	{ "REINDEX SCHEMA app", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "REINDEX DATABASE d", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "ALTER SYSTEM SET work_mem = '1GB'", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "CLUSTER", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "DISCARD ALL", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) | F(TEMP) },
	{ "ALTER DATABASE d SET TABLESPACE ts", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "ALTER TABLE p DETACH PARTITION c CONCURRENTLY", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "ALTER SUBSCRIPTION s REFRESH PUBLICATION", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },
	{ "DROP SUBSCRIPTION s", STMT_NO_TXN_BLOCK, 1, F(NO_TXN_BLOCK) },

	/* several statements */
	{ "BEGIN; UPDATE t SET a=1; COMMIT", STMT_WRITE, 3, F(TXN_BEGIN) | F(TXN_COMMIT) },
	{ "BEGIN; SELECT 1; COMMIT", STMT_READ, 3, F(TXN_BEGIN) | F(TXN_COMMIT) },
	{ "BEGIN; COMMIT", STMT_TXN, 2, F(TXN_BEGIN) | F(TXN_COMMIT) },
	{ "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", STMT_WRITE, 2, F(MULTI_WRITE) },
	{ "SELECT 1; SET x = 1", STMT_SESSION, 2, 0 },
	{ "SELECT 1; CREATE TABLE x (a int); SELECT 2", STMT_DDL, 3, 0 },
	{ "UPDATE t SET a = 1; CREATE TABLE x (a int)", STMT_DDL, 2, F(MULTI_WRITE) },
	{ "VACUUM; SELECT 1", STMT_NO_TXN_BLOCK, 2, F(NO_TXN_BLOCK) },
	{ "SELECT 1;;; SELECT 2;", STMT_READ, 2, 0 },
	{ "SELECT ';'; SELECT 2 -- ; a comment", STMT_READ, 2, 0 },
	{ "BEGIN; SAVEPOINT a; INSERT INTO t VALUES (now()); ROLLBACK TO a; COMMIT", STMT_WRITE, 5,
	  F(TXN_BEGIN) | F(SAVEPOINT) | F(ROLLBACK_TO) | F(TXN_COMMIT) | F(VOLATILE) | F(NOW) },
	{ "SELECT now(); INSERT INTO t VALUES (1)", STMT_WRITE, 2, F(NOW) },   /* the transaction's time */
	{ "LISTEN a; NOTIFY a", STMT_SESSION, 2, F(LISTEN_NOTIFY) },
	{ "PREPARE TRANSACTION 'x'; COMMIT PREPARED 'x'", STMT_TXN, 2, F(PREPARE_TXN) | F(COMMIT_PREPARED) },
};

TEST(test_classify_table)
{
	size_t n = sizeof(table) / sizeof(table[0]);

	CHECK(n >= 80);
	for (size_t i = 0; i < n; i++)
		CHECK(check_sql(table[i].sql, table[i].cls, table[i].n_stmts, table[i].flags));
}

TEST(test_classify_empty_and_errors)
{
	CHECK(check_sql("", STMT_READ, 0, 0));
	CHECK(check_sql("   \n\t  ", STMT_READ, 0, 0));
	CHECK(check_sql("-- only a comment", STMT_READ, 0, 0));
	CHECK(check_sql("/* block */ -- and a line comment\n", STMT_READ, 0, 0));
	CHECK(check_sql(";", STMT_READ, 0, 0));
	CHECK(check_sql("SELEC 1", STMT_UNKNOWN, 0, 0));
	CHECK(check_sql("SELECT 1; SELEC 2", STMT_UNKNOWN, 0, 0));
	CHECK(check_sql("BEGIN; INSERT INTO", STMT_UNKNOWN, 0, 0));
	CHECK(check_sql("SELECT 'unterminated", STMT_UNKNOWN, 0, 0));
	CHECK(check_sql("/* unterminated comment", STMT_UNKNOWN, 0, 0));
	CHECK(check_sql("SELECT (1", STMT_UNKNOWN, 0, 0));
	CHECK(check_sql("\xff\xfe", STMT_UNKNOWN, 0, 0));
}

/* The class comes from the grammar, never from words in the text. */
TEST(test_classify_not_keywords)
{
	CHECK(check_sql("SELECT 'INSERT INTO t VALUES (1); DROP TABLE t'", STMT_READ, 1, 0));
	CHECK(check_sql("SELECT 1 AS nextval, 2 AS \"update\"", STMT_READ, 1, 0));
	CHECK(check_sql("SELECT \"nextval\"('s')", STMT_WRITE, 1, F(SEQUENCE) | F(VOLATILE)));
	CHECK(check_sql("SELECT \"NextVal\"('s')", STMT_READ, 1, 0));   /* another function */
	CHECK(check_sql("INSERT INTO t (now, random) VALUES (1, 2)", STMT_WRITE, 1, 0));
	CHECK(check_sql("/* DELETE FROM t; */ SELECT 1 -- VACUUM", STMT_READ, 1, 0));
	CHECK(check_sql("SELECT $$ COMMIT; $$, E'\\' ROLLBACK'", STMT_READ, 1, 0));
	CHECK(check_sql("SELECT * FROM \"pg_temp\"", STMT_READ, 1, STMT_F_CATALOG));   /* a table so named */
	CHECK(check_sql("select * FROM t fOr UpDaTe", STMT_WRITE, 1, F(LOCKING)));
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1);

	if (!s)
		return NULL;
	memcpy(s, head, hl);
	for (size_t i = 0; i < n; i++)
		memcpy(s + hl + i * ul, unit, ul);
	memcpy(s + hl + n * ul, tail, tl + 1);
	return s;
}

TEST(test_classify_big_statement)
{
	char *ins = repeat("INSERT INTO t (a, b, c) VALUES ", "(1, 'abcdef', now()), ", 5000, "(2, 'x', 3)");
	char *sel = repeat("SELECT * FROM t WHERE id IN (", "123456, ", 15000, "1) FOR SHARE");
	char *cmt = repeat("SELECT 1 /* ", "xxxxxxxxxx", 10000, " */");

	REQUIRE(ins && sel && cmt);
	CHECK(strlen(ins) > 100000);
	CHECK(strlen(sel) > 100000);
	CHECK(check_sql(ins, STMT_WRITE, 1, F(VOLATILE) | F(NOW)));
	CHECK(check_sql(sel, STMT_WRITE, 1, F(LOCKING)));
	CHECK(check_sql(cmt, STMT_READ, 1, 0));
	free(ins);
	free(sel);
	free(cmt);
}

struct deep_case {
	const char *head, *unit, *mid, *close, *tail;
};

static const struct deep_case deep_cases[] = {
	{ "SELECT ", "1+", "1", "", "" },
	{ "SELECT ", "- ", "1", "", "" },
	{ "SELECT ", "NOT ", "true", "", "" },
	{ "SELECT ", "(SELECT ", "1", ")", "" },
	{ "SELECT ", "f(", "1", ")", "" },
	{ "SELECT ", "ARRAY[", "1", "]", "" },
	{ "SELECT ", "(", "1", ")", "" },
	{ "SELECT 1", "::int", "", "", "" },
	{ "SELECT ", "CASE WHEN x THEN ", "1", " END", "" },
	{ "SELECT * FROM a", " JOIN b ON a.x = b.y", "", "", "" },
	{ "SELECT 1", " UNION SELECT 1", "", "", "" },
	{ "SELECT x", " COLLATE \"C\"", "", "", "" },
	{ "SELECT ", "(a AND (b OR ", "1", "))", "" },
	{ "INSERT INTO t VALUES (", "'a' || ", "'b'", "", ")" },
	{ "SELECT * FROM ", "(SELECT * FROM ", "t", ") s", "" },
};

struct deep_arg {
	const char *sql;
	struct stmt_info info;
};

static void *deep_thread(void *arg)
{
	struct deep_arg *a = arg;

	classify_sql(a->sql, &a->info);
	return NULL;
}

/*
 * Statements of every shape, up to absurd depths, classified on a thread
 * with a 4 MB stack (a worker has 8): none may crash.  What is too deep is
 * UNANALYSED (or a syntax error, when the grammar's own stack overflows).
 */
TEST(test_classify_deep_statements)
{
	static const size_t depths[] = { 10, 300, 900, 3000, 20000, 100000 };
	pthread_attr_t attr;

	REQUIRE(pthread_attr_init(&attr) == 0);
	REQUIRE(pthread_attr_setstacksize(&attr, 4u << 20) == 0);
	for (size_t c = 0; c < sizeof(deep_cases) / sizeof(deep_cases[0]); c++) {
		const struct deep_case *d = &deep_cases[c];

		for (size_t k = 0; k < sizeof(depths) / sizeof(depths[0]); k++) {
			size_t n = depths[k];
			char *open = repeat(d->head, d->unit, n, d->mid);
			char *sql = open ? repeat(open, d->close, n, d->tail) : NULL;
			struct deep_arg a = { .sql = sql };
			pthread_t t;

			REQUIRE(sql);
			REQUIRE(pthread_create(&t, &attr, deep_thread, &a) == 0);
			pthread_join(t, NULL);
			if (n <= 300) {
				/* realistic depths are analysed */
				CHECK(!(a.info.flags & STMT_F_UNANALYSED));
				CHECK(a.info.cls == STMT_READ || a.info.cls == STMT_WRITE);
			} else if (a.info.flags & STMT_F_UNANALYSED) {
				CHECK(a.info.cls == STMT_WRITE);
				CHECK(a.info.flags & STMT_F_VOLATILE);
			}
			CHECK(a.info.cls != STMT_UNKNOWN || n >= 3000);
			if (a.info.cls == STMT_UNKNOWN && n < 3000)
				fprintf(stderr, "    case %zu depth %zu: syntax error\n", c, n);
			free(open);
			free(sql);
		}
	}
	pthread_attr_destroy(&attr);
	CHECK(check_sql("SELECT 1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1", STMT_READ, 1, 0));
}

/* One statement too deep to unpack: the others of the string are still analysed. */
TEST(test_classify_deep_statement_in_a_string)
{
	char *sql = repeat("BEGIN; SELECT ", "1+", 1500, "1; COMMIT");
	struct stmt_info info;

	REQUIRE(sql);
	classify_sql(sql, &info);
	CHECK(same(sql, &info, STMT_WRITE, 3,
		   F(TXN_BEGIN) | F(TXN_COMMIT) | F(UNANALYSED) | F(VOLATILE)));
	free(sql);
	/* too deep even to parse: nothing is analysed, the statements are counted */
	sql = repeat("BEGIN; SELECT ", "1+", 60000, "1; COMMIT");
	REQUIRE(sql);
	classify_sql(sql, &info);
	CHECK(same("(60000 terms)", &info, STMT_WRITE, 3, F(UNANALYSED) | F(VOLATILE)));
	free(sql);
}

TEST(test_classify_function_lists)
{
	static const char *const writing[] = { "audit", "app.bump", NULL };
	static const char *const volatile_fns[] = { "my_uuid", NULL };
	static const char *const immutable[] = { "now", "ext.random", NULL };

	REQUIRE(classify_set_functions(writing, volatile_fns, immutable));
	CHECK(check_sql("SELECT audit(1)", STMT_WRITE, 1, 0));
	CHECK(check_sql("SELECT x.audit(1)", STMT_WRITE, 1, 0));        /* a plain name: any schema */
	CHECK(check_sql("SELECT app.bump()", STMT_WRITE, 1, 0));
	CHECK(check_sql("SELECT bump()", STMT_WRITE, 1, 0));            /* may resolve to app.bump */
	CHECK(check_sql("SELECT other.bump()", STMT_READ, 1, 0));
	CHECK(check_sql("SELECT * FROM t WHERE a = audit(2)", STMT_WRITE, 1, 0));
	CHECK(check_sql("INSERT INTO t VALUES (my_uuid())", STMT_WRITE, 1, F(VOLATILE)));
	CHECK(check_sql("SELECT my_uuid()", STMT_READ, 1, 0));
	CHECK(check_sql("INSERT INTO t VALUES (now())", STMT_WRITE, 1, 0));
	CHECK(check_sql("INSERT INTO t VALUES ('now'::timestamptz)", STMT_WRITE, 1, 0));
	CHECK(check_sql("INSERT INTO t VALUES (CURRENT_TIMESTAMP)", STMT_WRITE, 1, F(VOLATILE) | F(NOW)));
	CHECK(check_sql("INSERT INTO t VALUES (ext.random())", STMT_WRITE, 1, 0));
	CHECK(check_sql("INSERT INTO t VALUES (random())", STMT_WRITE, 1, F(VOLATILE)));
	/* a declared-immutable function keeps its other effects */
	REQUIRE(classify_set_functions(NULL, NULL, (const char *const[]){ "nextval", NULL }));
	CHECK(check_sql("SELECT nextval('s')", STMT_WRITE, 1, F(SEQUENCE)));
	CHECK(check_sql("SELECT audit(1)", STMT_READ, 1, 0));           /* lists replaced */
	REQUIRE(classify_set_functions(NULL, NULL, NULL));
	CHECK(check_sql("INSERT INTO t VALUES (now())", STMT_WRITE, 1, F(VOLATILE) | F(NOW)));
	CHECK(check_sql("SELECT nextval('s')", STMT_WRITE, 1, F(SEQUENCE) | F(VOLATILE)));
}

TEST(test_classify_cache_hit)
{
	struct classify_cache c;
	const char *q = "SELECT * FROM t FOR UPDATE";
	const struct stmt_info *a, *b;

	REQUIRE(classify_cache_init(&c, 0, 0));
	CHECK(c.cap == 1024);
	a = classify_cached(&c, q, strlen(q));
	CHECK(same(q, a, STMT_WRITE, 1, F(LOCKING)));
	CHECK(c.misses == 1 && c.hits == 0 && c.count == 1);
	b = classify_cached(&c, q, strlen(q));
	CHECK(a == b);
	CHECK(same(q, b, STMT_WRITE, 1, F(LOCKING)));
	CHECK(c.hits == 1 && c.misses == 1);
	/* the length is the key: a prefix is another statement */
	b = classify_cached(&c, q, 15);   /* "SELECT * FROM t" */
	CHECK(same("SELECT * FROM t", b, STMT_READ, 1, 0));
	CHECK(c.misses == 2 && c.count == 2);
	/* not NUL-terminated input */
	{
		char buf[16];

		memcpy(buf, "BEGINxxxxxxxxxxx", 16);
		b = classify_cached(&c, buf, 5);
		CHECK(same("BEGIN", b, STMT_TXN, 1, F(TXN_BEGIN)));
		b = classify_cached(&c, buf, 5);
		CHECK(c.hits == 2);
	}
	classify_cache_clear(&c);
	CHECK(c.count == 0);
	b = classify_cached(&c, q, strlen(q));
	CHECK(same(q, b, STMT_WRITE, 1, F(LOCKING)));
	CHECK(c.misses == 4);
	classify_cache_destroy(&c);
}

TEST(test_classify_cache_bounded)
{
	struct classify_cache c;
	char q[64];

	REQUIRE(classify_cache_init(&c, 20, 0));
	CHECK(c.cap == 32);
	for (int i = 0; i < 1000; i++) {
		const struct stmt_info *r;

		snprintf(q, sizeof(q), "UPDATE t SET a = %d", i);
		r = classify_cached(&c, q, strlen(q));
		CHECK(r->cls == STMT_WRITE && r->n_stmts == 1);
		CHECK(c.count <= c.cap);
	}
	CHECK(c.misses == 1000);
	CHECK(c.evictions >= 1000 - c.cap);
	CHECK(c.count + c.evictions == 1000);
	/* the most recent entry is still there */
	classify_cached(&c, q, strlen(q));
	CHECK(c.hits == 1);
	/* a hot entry survives a stream of others: it is used again each time */
	{
		const char *hot = "SELECT 42";
		uint64_t hits = c.hits;

		classify_cached(&c, hot, strlen(hot));
		for (int i = 0; i < 500; i++) {
			snprintf(q, sizeof(q), "DELETE FROM t WHERE id = %d", i);
			classify_cached(&c, q, strlen(q));
			classify_cached(&c, hot, strlen(hot));
		}
		CHECK(c.hits == hits + 500);
	}
	classify_cache_destroy(&c);
}

TEST(test_classify_cache_long_text)
{
	struct classify_cache c;
	char *big = repeat("INSERT INTO t VALUES ", "(1), ", 100, "(2)");
	const struct stmt_info *r;

	REQUIRE(big);
	REQUIRE(classify_cache_init(&c, 8, 64));
	r = classify_cached(&c, big, strlen(big));
	CHECK(same("long insert", r, STMT_WRITE, 1, 0));
	CHECK(c.count == 0);   /* classified, not kept */
	r = classify_cached(&c, big, strlen(big));
	CHECK(c.hits == 0 && c.misses == 2);
	r = classify_cached(&c, "", 0);
	CHECK(same("(empty)", r, STMT_READ, 0, 0));
	CHECK(c.count == 1);
	classify_cache_destroy(&c);
	free(big);
}

/* The cached classifications depend on the function lists: a change empties the cache. */
TEST(test_classify_cache_function_change)
{
	struct classify_cache c;
	const char *q = "SELECT audit(1)";
	const struct stmt_info *r;

	REQUIRE(classify_set_functions(NULL, NULL, NULL));
	REQUIRE(classify_cache_init(&c, 16, 0));
	r = classify_cached(&c, q, strlen(q));
	CHECK(same(q, r, STMT_READ, 1, STMT_F_OTHER_FN));
	REQUIRE(classify_set_functions((const char *const[]){ "audit", NULL }, NULL, NULL));
	r = classify_cached(&c, q, strlen(q));
	CHECK(same(q, r, STMT_WRITE, 1, 0));
	CHECK(c.hits == 0 && c.misses == 2);
	r = classify_cached(&c, q, strlen(q));
	CHECK(c.hits == 1);
	REQUIRE(classify_set_functions(NULL, NULL, NULL));
	r = classify_cached(&c, q, strlen(q));
	CHECK(same(q, r, STMT_READ, 1, STMT_F_OTHER_FN));
	classify_cache_destroy(&c);
}

TEST(test_classify_names)
{
	char buf[256];

	CHECK_STREQ(stmt_class_name(STMT_TXN), "TXN");
	CHECK_STREQ(stmt_class_name(STMT_NO_TXN_BLOCK), "NO_TXN_BLOCK");
	CHECK_STREQ(stmt_class_name(STMT_UNKNOWN), "UNKNOWN");
	CHECK_STREQ(stmt_class_name((enum stmt_class)99), "?");
	CHECK_STREQ(stmt_flags_format(0, buf, sizeof(buf)), "");
	CHECK_STREQ(stmt_flags_format(F(TXN_BEGIN) | F(TXN_COMMIT), buf, sizeof(buf)), "TXN_BEGIN|TXN_COMMIT");
	CHECK_STREQ(stmt_flags_format(F(UNANALYSED), buf, sizeof(buf)), "UNANALYSED");
	CHECK_STREQ(stmt_flags_format(F(TXN_BEGIN) | F(TXN_COMMIT), buf, 14), "TXN_BEGIN");
	CHECK_STREQ(stmt_flags_format(F(TXN_BEGIN), buf, 4), "");
}

struct thread_arg {
	int failures;
};

static void *classify_thread(void *arg)
{
	struct thread_arg *a = arg;
	struct classify_cache c;

	if (!classify_cache_init(&c, 64, 0)) {
		a->failures++;
		return NULL;
	}
	for (int i = 0; i < 300; i++) {
		const struct expect *e = &table[(size_t)i % (sizeof(table) / sizeof(table[0]))];
		const struct stmt_info *r = classify_cached(&c, e->sql, strlen(e->sql));

		if (r->cls != e->cls || r->n_stmts != e->n_stmts || (r->flags & ~STMT_F_OTHER_FN) != e->flags)
			a->failures++;
	}
	classify_cache_destroy(&c);
	return NULL;
}

/* Workers classify while the function lists are replaced (with equivalent lists). */
TEST(test_classify_threads)
{
	pthread_t t[4];
	struct thread_arg args[4] = { { 0 } };
	static const char *const unused[] = { "not_called_anywhere", NULL };

	for (int i = 0; i < 4; i++)
		REQUIRE(pthread_create(&t[i], NULL, classify_thread, &args[i]) == 0);
	for (int i = 0; i < 50; i++)
		CHECK(classify_set_functions(i % 2 ? unused : NULL, NULL, NULL));
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(args[i].failures == 0);
	}
	CHECK(classify_set_functions(NULL, NULL, NULL));
}
