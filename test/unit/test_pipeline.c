/*
 * test_pipeline.c - unit tests of src/server/pipeline.c: which statements a
 * client may have queued behind another client's on a busy server (they
 * must run in their own implicit transaction and leave no transaction
 * block open).
 */
#include <string.h>

#include "runner.h"
#include "pgchorus/pipeline.h"

static int safe(const char *sql)
{
	return pipe_sql_safe(sql, strlen(sql));
}

TEST(test_pipeline_statements_admitted)
{
	CHECK(safe("SELECT abalance FROM pgbench_accounts WHERE aid = 1"));
	CHECK(safe("select 1;"));
	CHECK(safe("  \n\tSelect 1 ;  ;\n"));
	CHECK(safe("-- a comment\nselect 1"));
	CHECK(safe("/* outer /* nested */ still */ values (1), (2)"));
	CHECK(safe("TABLE t"));
	CHECK(safe("with x as (select 1) select * from x"));
	CHECK(safe("INSERT INTO t VALUES (1)"));
	CHECK(safe("update t set v = 2 where id = 1"));
	CHECK(safe("delete from t where id = 1"));
	CHECK(safe("select $1::int"));
}

TEST(test_pipeline_statements_refused)
{
	/* transaction control and session state */
	CHECK(!safe("BEGIN"));
	CHECK(!safe("begin; select 1"));
	CHECK(!safe("START TRANSACTION"));
	CHECK(!safe("commit"));
	CHECK(!safe("SET search_path = x"));
	CHECK(!safe("LISTEN ch"));
	CHECK(!safe("COPY t FROM STDIN"));
	CHECK(!safe("DECLARE c CURSOR WITH HOLD FOR SELECT 1"));
	CHECK(!safe("CALL p()"));
	CHECK(!safe("DO $$ begin end $$"));
	CHECK(!safe("PREPARE p AS SELECT 1"));
	CHECK(!safe("create table t (id int)"));
	/* more than one statement, or what might be */
	CHECK(!safe("select 1; begin"));
	CHECK(!safe("select 1; select 2"));
	CHECK(!safe("select ';' || 'x'")); /* refused although harmless: ';' inside a literal */
	CHECK(!safe("select 1; -- trailing comment"));
	/* not a keyword of the list, or not a whole word */
	CHECK(!safe("selected"));
	CHECK(!safe("select_x()"));
	CHECK(!safe("(select 1)"));
	CHECK(!safe(""));
	CHECK(!safe("   "));
	CHECK(!safe("-- only a comment"));
	CHECK(!safe("/* unterminated select 1"));
	/* the length is what counts, not a NUL */
	CHECK(!pipe_sql_safe("select 1", 3));
	CHECK(pipe_sql_safe("select 1; begin", 9));
}
