/*
 * test_ship.c - unit tests of row shipping's statement side
 * (src/route/ship.c): what ship_analyze() finds in statement texts, the
 * RETURNING addition (simple and extended-protocol texts), the apply
 * statements built for a table, literal and identifier quoting.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "pgchorus/ship.h"

/* Prototypes for the TEST functions (the build uses -Wmissing-prototypes). */
#define X(name) void name(void);
#include "tests_ship.def"
#undef X

struct an {
	const char *sql;
	bool ok;
	enum ship_kind kind;
	uint32_t flags;
	const char *schema, *rel, *ref;
};

TEST(test_ship_analyze)
{
	static const struct an t[] = {
		{ "INSERT INTO t VALUES (1, 'a')", true, SHIP_INSERT, SHIP_F_PLAIN, "", "t", "t" },
		{ "INSERT INTO t VALUES ($1, $2::text)", true, SHIP_INSERT, SHIP_F_PLAIN, "", "t", "t" },
		{ "insert into s.t as x (a) values (random())", true, SHIP_INSERT, SHIP_F_VOLATILE | SHIP_F_VOLATILE_FN, "s", "t", "x" },
		{ "INSERT INTO t SELECT * FROM u", true, SHIP_INSERT, 0, "", "t", "t" },
		{ "INSERT INTO t VALUES ((SELECT max(a) FROM t))", true, SHIP_INSERT, SHIP_F_VOLATILE, "", "t", "t" },
		{ "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", true, SHIP_INSERT, SHIP_F_ON_CONFLICT, "", "t", "t" },
		{ "INSERT INTO t VALUES (1) RETURNING *", true, SHIP_INSERT, SHIP_F_PLAIN | SHIP_F_RETURNING, "", "t", "t" },
		{ "INSERT INTO \"Odd\"\"T\" DEFAULT VALUES", true, SHIP_INSERT, SHIP_F_PLAIN, "", "Odd\"T", "Odd\"T" },
		{ "UPDATE t SET a = a + 1 WHERE id = 1", true, SHIP_UPDATE, 0, "", "t", "t" },
		{ "UPDATE t AS x SET a = 1 FROM u WHERE u.id = x.id RETURNING x.a", true, SHIP_UPDATE, SHIP_F_RETURNING,
		  "", "t", "x" },
		{ "DELETE FROM q WHERE ctid IN (SELECT ctid FROM q LIMIT 3)", true, SHIP_DELETE, SHIP_F_VOLATILE, "", "q", "q" },
		{ "SELECT nextval('s')", true, SHIP_SEQ, SHIP_F_VOLATILE | SHIP_F_VOLATILE_FN, "", "", "" },
		{ "SELECT nextval(pg_get_serial_sequence('t', 'id'))", false, SHIP_NO, 0, "", "", "" },
		{ "SELECT lo_create(0)", true, SHIP_LO, SHIP_F_LO_CREATE | SHIP_F_VOLATILE | SHIP_F_VOLATILE_FN, "", "", "" },
		{ "SELECT lo_from_bytea(0, '\\x01')", true, SHIP_LO, SHIP_F_LO_CREATE | SHIP_F_VOLATILE | SHIP_F_VOLATILE_FN, "", "", "" },
		{ "SELECT lo_create(1234)", false, SHIP_NO, 0, "", "", "" },
		{ "COPY t (a, b) FROM STDIN", true, SHIP_COPY, 0, "", "t", "t" },
		{ "COPY t FROM STDIN", false, SHIP_NO, 0, "", "", "" },
		{ "COPY t (a) FROM '/tmp/x'", false, SHIP_NO, 0, "", "", "" },
		{ "SELECT 1", false, SHIP_NO, 0, "", "", "" },
		{ "UPDATE t SET a = 1; UPDATE t SET a = 2", false, SHIP_NO, 0, "", "", "" },
		{ "WITH d AS (DELETE FROM t RETURNING *) SELECT nextval('s') FROM d", false, SHIP_NO, 0, "", "", "" },
		{ "UPDATE t SET", false, SHIP_NO, 0, "", "", "" },
		{ "WITH u AS (UPDATE t SET a = 1 RETURNING a) INSERT INTO l SELECT a FROM u", true, SHIP_WITH, 0, "", "l", "l" },
		{ "INSERT INTO t VALUES (lo_from_bytea(0, 'x'))", true, SHIP_INSERT, SHIP_F_LO_CREATE | SHIP_F_VOLATILE | SHIP_F_VOLATILE_FN,
		  "", "t", "t" },
		{ "INSERT INTO t VALUES (lower('X'))", true, SHIP_INSERT, 0, "", "t", "t" },
		{ "INSERT INTO t VALUES (now(), CURRENT_DATE, $1)", true, SHIP_INSERT, SHIP_F_PLAIN, "", "t", "t" },
		{ "INSERT INTO t VALUES (statement_timestamp())", true, SHIP_INSERT, SHIP_F_VOLATILE | SHIP_F_VOLATILE_FN, "", "t", "t" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct ship_stmt st;
		bool ok = ship_analyze(t[i].sql, &st);

		if (ok != t[i].ok || st.kind != t[i].kind || st.flags != t[i].flags || strcmp(st.schema, t[i].schema) ||
		    strcmp(st.rel, t[i].rel) || strcmp(st.ref, t[i].ref)) {
			fprintf(stderr, "    %s: ok %d kind %d flags %x %s.%s ref %s\n", t[i].sql, ok, st.kind,
				st.flags, st.schema, st.rel, st.ref);
			CHECK(false);
		}
	}
	{
		struct ship_stmt st;

		REQUIRE(ship_analyze("INSERT INTO t VALUES (nextval('a'), nextval('b'), nextval('a'))", &st));
		CHECK(st.seqs_len == 4 && strcmp(st.seqs, "a") == 0 && strcmp(st.seqs + 2, "b") == 0);
		REQUIRE(ship_analyze("UPDATE t SET a = 1, \"B\" = 2 WHERE id = 3", &st));
		CHECK(st.set_len == 4 && strcmp(st.set_cols, "a") == 0 && strcmp(st.set_cols + 2, "B") == 0);
		REQUIRE(ship_analyze("select lo_create( 0 ) ", &st));
		CHECK(st.lo_at == 18 && st.lo_len == 1);
	}
}

static void check_returning(const char *sql, const char *want)
{
	struct ship_stmt st;
	struct buf out = { 0 };

	REQUIRE(ship_analyze(sql, &st));
	REQUIRE(ship_add_returning(sql, &st, &out));
	if (strcmp((const char *)out.data, want) != 0) {
		fprintf(stderr, "    %s\n    got  %s\n    want %s\n", sql, (const char *)out.data, want);
		CHECK(false);
	}
	buf_free(&out);
}

TEST(test_ship_returning)
{
	check_returning("UPDATE t SET a = 1", "UPDATE t SET a = 1\nRETURNING ROW(\"t\".*)::text");
	check_returning("UPDATE t SET a = 1;", "UPDATE t SET a = 1\nRETURNING ROW(\"t\".*)::text;");
	check_returning("DELETE FROM t WHERE id = $1 -- why\n",
			"DELETE FROM t WHERE id = $1 -- why\n\nRETURNING ROW(\"t\".*)::text");
	check_returning("INSERT INTO s.t AS x VALUES (1) RETURNING x.id, 2 ;  ",
			"INSERT INTO s.t AS x VALUES (1) RETURNING x.id, 2 , ROW(\"x\".*)::text;  ");
	check_returning("/* c */ insert into \"T\" values (random()) returning *",
			"/* c */ insert into \"T\" values (random()) returning *, ROW(\"T\".*)::text");
}

TEST(test_ship_apply_sql)
{
	/* colspec: flags (generated, identity ALWAYS, key) and quoted name, NUL-separated */
	static const char colspec[] = "--k\"id\"\0---\"v\"\0g--\"g\"\0";
	struct ship_table t = {
		.qname = "\"public\".\"t\"", .cols = "\"id\",\"v\"", .set_list = "\"v\" = pgc_s.\"v\"",
		.key_cond = "pgc_t.\"id\" = pgc_s.\"id\"", .conflict_set = "\"id\" = EXCLUDED.\"id\", \"v\" = EXCLUDED.\"v\"",
		.key_cols = "\"id\"", .exists = true,
	};
	static const char one[] = "(1,\"a b\",2)";
	static const char two[] = "(1,x,2)\0(2,,4)";
	struct buf out = { 0 };

	/* without colspec: the unnest form */
	REQUIRE(ship_apply_sql(&out, SHIP_INSERT, &t, one, 1, false));
	CHECK_STREQ((const char *)out.data,
		    "INSERT INTO \"public\".\"t\" AS pgc_t (\"id\",\"v\") SELECT \"id\",\"v\" FROM pg_catalog.unnest(ARRAY["
		    "E'(1,\"a b\",2)'::\"public\".\"t\"]::\"public\".\"t\"[]) AS pgc_s");
	t.colspec = (char *)colspec;
	buf_reset(&out);
	REQUIRE(ship_apply_sql(&out, SHIP_INSERT, &t, two, 2, false));
	CHECK_STREQ((const char *)out.data,
		    "INSERT INTO \"public\".\"t\" AS pgc_t (\"id\",\"v\") VALUES (E'1', E'x'), (E'2', NULL)");
	buf_reset(&out);
	t.ident_always = true;
	REQUIRE(ship_apply_sql(&out, SHIP_INSERT, &t, one, 1, true));
	CHECK(strstr((const char *)out.data, ") OVERRIDING SYSTEM VALUE VALUES (E'1', E'a b')") != NULL);
	CHECK(strstr((const char *)out.data, " ON CONFLICT (\"id\") DO UPDATE SET \"id\" = EXCLUDED.\"id\"") != NULL);
	buf_reset(&out);
	REQUIRE(ship_apply_sql(&out, SHIP_UPDATE, &t, one, 1, false));
	CHECK_STREQ((const char *)out.data, "UPDATE \"public\".\"t\" AS pgc_t SET \"v\" = E'a b' WHERE pgc_t.\"id\" = E'1'");
	buf_reset(&out);
	REQUIRE(ship_apply_sql(&out, SHIP_DELETE, &t, one, 1, false));
	CHECK_STREQ((const char *)out.data, "DELETE FROM \"public\".\"t\" AS pgc_t WHERE pgc_t.\"id\" = E'1'");
	buf_reset(&out);
	/* several rows: unnest */
	REQUIRE(ship_apply_sql(&out, SHIP_UPDATE, &t, two, 2, false));
	CHECK_STREQ((const char *)out.data,
		    "UPDATE \"public\".\"t\" AS pgc_t SET \"v\" = pgc_s.\"v\" FROM pg_catalog.unnest(ARRAY["
		    "E'(1,x,2)'::\"public\".\"t\", E'(2,,4)'::\"public\".\"t\"]::\"public\".\"t\"[]) AS pgc_s"
		    " WHERE pgc_t.\"id\" = pgc_s.\"id\"");
	buf_reset(&out);
	REQUIRE(ship_apply_sql(&out, SHIP_DELETE, &t, two, 2, false));
	CHECK(strncmp((const char *)out.data, "DELETE FROM \"public\".\"t\" AS pgc_t USING pg_catalog.unnest(", 58) == 0);
	buf_reset(&out);
	REQUIRE(ship_setval_sql(&out, "\"s\".\"q\"", "42", true));
	CHECK_STREQ((const char *)out.data,
		    "SELECT pg_catalog.setval(E'\"s\".\"q\"', 42, true) WHERE pg_catalog.has_sequence_privilege("
		    "E'\"s\".\"q\"', 'UPDATE') AND COALESCE("
		    "pg_catalog.pg_sequence_last_value(E'\"s\".\"q\"') < 42, true)");
	buf_free(&out);
}

/* record_out texts into fields */
TEST(test_ship_record_fields)
{
	static const struct {
		const char *in;
		int n;
		const char *want; /* fields joined by '|' */
	} t[] = {
		{ "(1,abc)", 2, "v1|vabc" },
		{ "(,)", 2, "n|n" },
		{ "(\"\")", 1, "v" },
		{ "(\"a,b\",\"say \"\"hi\"\"\",\"back\\\\slash\")", 3, "va,b|vsay \"hi\"|vback\\slash" },
		{ "(\"(1,2)\",)", 2, "v(1,2)|n" },
		{ "()", 0, "" },
		{ "(1,2", -1, NULL },
		{ "1,2)", -1, NULL },
		{ "(\"unterminated)", -1, NULL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct buf out = { 0 }, joined = { 0 };
		int n = ship_record_fields(t[i].in, strlen(t[i].in), &out);

		CHECK(n == t[i].n);
		if (n >= 0 && t[i].want) {
			for (size_t at = 0; at < out.len; at += strlen((const char *)out.data + at) + 1) {
				if (at)
					REQUIRE(buf_append(&joined, "|", 1));
				REQUIRE(buf_append(&joined, out.data + at, strlen((const char *)out.data + at)));
			}
			REQUIRE(buf_append(&joined, "", 1));
			if (strcmp((const char *)joined.data, t[i].want) != 0) {
				fprintf(stderr, "    %s -> %s (want %s)\n", t[i].in, (const char *)joined.data, t[i].want);
				CHECK(false);
			}
		}
		buf_free(&out);
		buf_free(&joined);
	}
}

TEST(test_ship_quote)
{
	struct buf out = { 0 };

	REQUIRE(ship_quote_literal(&out, "a'b\\c", 5));
	REQUIRE(ship_quote_ident(&out, "x\"y"));
	REQUIRE(buf_append(&out, "", 1));
	CHECK_STREQ((const char *)out.data, "E'a''b\\\\c'\"x\"\"y\"");
	buf_free(&out);
}
