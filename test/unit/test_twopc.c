/*
 * test_twopc.c - unit tests of src/repl/twopc.c that need no database: gid
 * make/parse, the decision row's SQL, the set of gids in flight, and the
 * resolver's argument checks (its work against real nodes is tested by
 * test/integration/56_twopc_resolver.sh).
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "runner.h"
#include "pgchorus/log.h"
#include "pgchorus/twopc.h"

/* Prototypes for the TEST functions (the build uses -Wmissing-prototypes). */
#define X(name) void name(void);
#include "tests_twopc.def"
#undef X

static bool parse(const char *gid, char *inst, uint64_t *boot, uint64_t *counter)
{
	return twopc_parse_gid(gid, inst, TWOPC_INSTANCE_MAX + 1, boot, counter);
}

TEST(test_twopc_gid_round_trip)
{
	static const struct {
		const char *instance;
		uint64_t boot, counter;
		const char *gid;
	} cases[] = {
		{ "p6432", 1700000000, 1, "pgc_p6432_1700000000_1" },
		{ "a", 0, 0, "pgc_a_0_0" },
		{ "ab_c", 1, 2, "pgc_ab_c_1_2" },
		{ "ab_c_1", 2, 3, "pgc_ab_c_1_2_3" },
		{ "_", 5, 6, "pgc___5_6" },
		{ "x_", 7, 8, "pgc_x__7_8" },
		{ "abcdefghij0123456789", UINT64_MAX, UINT64_MAX,
		  "pgc_abcdefghij0123456789_18446744073709551615_18446744073709551615" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char gid[TWOPC_GID_BUF], inst[TWOPC_INSTANCE_MAX + 1];
		uint64_t boot = 42, counter = 42;

		CHECK(twopc_instance_valid(cases[i].instance));
		REQUIRE(twopc_make_gid(gid, sizeof(gid), cases[i].instance, cases[i].boot, cases[i].counter));
		CHECK_STREQ(gid, cases[i].gid);
		CHECK(strlen(gid) < TWOPC_GID_SIZE);
		REQUIRE(parse(gid, inst, &boot, &counter));
		CHECK_STREQ(inst, cases[i].instance);
		CHECK(boot == cases[i].boot);
		CHECK(counter == cases[i].counter);
	}
	/* Exactly the room needed, then one byte less. */
	{
		char gid[sizeof("pgc_a_1_2")];

		CHECK(twopc_make_gid(gid, sizeof(gid), "a", 1, 2));
		CHECK_STREQ(gid, "pgc_a_1_2");
		CHECK(!twopc_make_gid(gid, sizeof(gid) - 1, "a", 1, 2));
		CHECK_STREQ(gid, "");
	}
	/* The instance buffer must hold the instance; boot and counter may be omitted. */
	{
		char small[3], inst[TWOPC_INSTANCE_MAX + 1];

		CHECK(!twopc_parse_gid("pgc_abc_1_2", small, sizeof(small), NULL, NULL));
		CHECK(twopc_parse_gid("pgc_ab_1_2", small, sizeof(small), NULL, NULL));
		CHECK_STREQ(small, "ab");
		CHECK(!twopc_parse_gid("pgc_ab_1_2", NULL, 0, NULL, NULL));
		CHECK(twopc_parse_gid("pgc_ab_1_2", inst, sizeof(inst), NULL, NULL));
	}
}

TEST(test_twopc_gid_make_refuses)
{
	static const char *const bad[] = {
		"", "A", "ab-c", "ab c", "é", "abc.", "abcdefghij0123456789x", "a%s", "a'b", "a\\b", "a\n",
	};
	char gid[TWOPC_GID_BUF];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(gid, "junk", 5);
		CHECK(!twopc_instance_valid(bad[i]));
		CHECK(!twopc_make_gid(gid, sizeof(gid), bad[i], 1, 1));
		CHECK_STREQ(gid, "");
	}
	CHECK(!twopc_instance_valid(NULL));
	CHECK(!twopc_make_gid(gid, sizeof(gid), NULL, 1, 1));
	CHECK(!twopc_make_gid(gid, 0, "a", 1, 1));
	CHECK(!twopc_make_gid(NULL, 10, "a", 1, 1));
}

TEST(test_twopc_gid_parse_refuses)
{
	static const char *const bad[] = {
		"", "foo", "other_tx", "pgc", "pgc_", "pgc__", "pgc___", "pgc_x", "pgc_x_1", "pgc_x_1_",
		"pgc_x__1", "pgc__1_2", "PGC_x_1_2", "pgc_X_1_2", "pgc-x_1_2", "xpgc_x_1_2", " pgc_x_1_2",
		"pgc_x_1_2 ", "pgc_x_1_2\n", "pgc_x_01_2", "pgc_x_1_02", "pgc_x_00_2", "pgc_x_+1_2",
		"pgc_x_-1_2", "pgc_x_1_2a", "pgc_x_1a_2", "pgc_x_0x1_2", "pgc_x_1 _2", "pgc_x-y_1_2",
		"pgc_x.y_1_2", "pgc_abcdefghij0123456789x_1_2",   /* instance of 21 characters */
		"pgc_x_18446744073709551616_1",                     /* boot = 2^64 */
		"pgc_x_1_18446744073709551616",                     /* counter = 2^64 */
		"pgc_x_1_99999999999999999999",
		"pgc_x_1_123456789012345678901",
		"pgc_\xc3\xa9_1_2",
	};
	char inst[TWOPC_INSTANCE_MAX + 1];
	uint64_t boot = 7, counter = 8;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(inst, "untouched");
		if (parse(bad[i], inst, &boot, &counter)) {
			fprintf(stderr, "    accepted: \"%s\"\n", bad[i]);
			test_failures++;
		}
		CHECK_STREQ(inst, "untouched");
		CHECK(boot == 7 && counter == 8);
	}
	CHECK(!parse(NULL, inst, &boot, &counter));
	/* A gid of PostgreSQL's maximum length made of valid parts is still refused (instance too long). */
	{
		char gid[TWOPC_GID_SIZE + 8];

		memset(gid, 'a', sizeof(gid));
		memcpy(gid, "pgc_", 4);
		memcpy(gid + TWOPC_GID_SIZE - 5, "_1_2", 5);
		CHECK(!parse(gid, inst, &boot, &counter));
		memcpy(gid + TWOPC_GID_SIZE + 2, "_1_2", 5); /* 205 bytes */
		CHECK(!parse(gid, inst, &boot, &counter));
	}
	/* Another instance's gid parses; the resolver compares the instance. */
	CHECK(parse("pgc_other_1_2", inst, &boot, &counter));
	CHECK_STREQ(inst, "other");
}

TEST(test_twopc_decision_sql)
{
	char buf[2 * TWOPC_GID_SIZE + 128], gid[TWOPC_GID_SIZE + 1];

	REQUIRE(twopc_decision_insert_sql("pgc_p1_2_3", buf, sizeof(buf)));
	CHECK_STREQ(buf, "INSERT INTO pgchorus.decisions (gid, decided_at) VALUES ('pgc_p1_2_3', clock_timestamp())");
	/* Quotes are doubled; with a backslash, the E'' form reads the same in either string mode. */
	REQUIRE(twopc_decision_insert_sql("a'b", buf, sizeof(buf)));
	CHECK(strstr(buf, "VALUES ('a''b', ") != NULL);
	REQUIRE(twopc_decision_insert_sql("x'); DROP TABLE t; --", buf, sizeof(buf)));
	CHECK(strstr(buf, "VALUES ('x''); DROP TABLE t; --', clock_timestamp())") != NULL);
	REQUIRE(twopc_decision_insert_sql("a\\'b", buf, sizeof(buf)));
	CHECK(strstr(buf, "VALUES (E'a\\\\''b', ") != NULL);
	/* Refused: empty, control characters, non-ASCII, 200 bytes or more. */
	CHECK(!twopc_decision_insert_sql("", buf, sizeof(buf)));
	CHECK_STREQ(buf, "");
	CHECK(!twopc_decision_insert_sql(NULL, buf, sizeof(buf)));
	CHECK(!twopc_decision_insert_sql("a\nb", buf, sizeof(buf)));
	CHECK(!twopc_decision_insert_sql("a\x7f", buf, sizeof(buf)));
	CHECK(!twopc_decision_insert_sql("\xc3\xa9", buf, sizeof(buf)));
	memset(gid, '\'', TWOPC_GID_SIZE);
	gid[TWOPC_GID_SIZE] = '\0';
	CHECK(!twopc_decision_insert_sql(gid, buf, sizeof(buf)));
	/* The longest acceptable gid, all quotes and a backslash, fits the documented size. */
	gid[TWOPC_GID_SIZE - 1] = '\0';
	gid[0] = '\\';
	REQUIRE(twopc_decision_insert_sql(gid, buf, sizeof(buf)));
	/* Too small a buffer: refused, never truncated. */
	CHECK(!twopc_decision_insert_sql("pgc_p1_2_3", buf, 60));
	CHECK_STREQ(buf, "");
	CHECK(!twopc_decision_insert_sql("pgc_p1_2_3", buf, 0));
}

TEST(test_twopc_inflight_set)
{
	struct twopc_inflight *set = twopc_inflight_new();
	char gid[TWOPC_GID_BUF];

	REQUIRE(set);
	CHECK(twopc_inflight_count(set) == 0);
	CHECK(!twopc_inflight_contains(set, "pgc_a_1_1"));
	CHECK(twopc_inflight_add(set, "pgc_a_1_1"));
	CHECK(twopc_inflight_add(set, "pgc_a_1_1")); /* no-op */
	CHECK(twopc_inflight_count(set) == 1);
	CHECK(twopc_inflight_contains(set, "pgc_a_1_1"));
	CHECK(!twopc_inflight_contains(set, "pgc_a_1_10"));
	CHECK(!twopc_inflight_contains(set, "pgc_a_1_"));
	CHECK(!twopc_inflight_add(set, ""));
	CHECK(!twopc_inflight_add(set, NULL));
	CHECK(!twopc_inflight_contains(set, NULL));
	CHECK(!twopc_inflight_contains(NULL, "pgc_a_1_1"));
	/* Enough to make the table grow several times. */
	for (uint64_t i = 0; i < 5000; i++) {
		REQUIRE(twopc_make_gid(gid, sizeof(gid), "a", 2, i));
		REQUIRE(twopc_inflight_add(set, gid));
	}
	CHECK(twopc_inflight_count(set) == 5001);
	for (uint64_t i = 0; i < 5000; i += 2) {
		REQUIRE(twopc_make_gid(gid, sizeof(gid), "a", 2, i));
		CHECK(twopc_inflight_remove(set, gid));
		CHECK(!twopc_inflight_remove(set, gid));
	}
	CHECK(twopc_inflight_count(set) == 2501);
	for (uint64_t i = 0; i < 5000; i++) {
		REQUIRE(twopc_make_gid(gid, sizeof(gid), "a", 2, i));
		CHECK(twopc_inflight_contains(set, gid) == (i % 2 == 1));
	}
	CHECK(twopc_inflight_remove(set, "pgc_a_1_1"));
	CHECK(!twopc_inflight_contains(set, "pgc_a_1_1"));
	CHECK(twopc_inflight_count(set) == 2500);
	twopc_inflight_free(set); /* frees the remaining items (LeakSanitizer checks) */
	twopc_inflight_free(NULL);
}

struct worker_arg {
	struct twopc_inflight *set;
	int id;
	int errors;
};

/* Each thread adds, checks and removes its own gids while the others do the same. */
static void *inflight_worker(void *p)
{
	struct worker_arg *w = p;
	char gid[TWOPC_GID_BUF];

	for (int round = 0; round < 20; round++) {
		for (uint64_t i = 0; i < 200; i++) {
			if (!twopc_make_gid(gid, sizeof(gid), "t", (uint64_t)w->id, i) ||
				!twopc_inflight_add(w->set, gid))
				w->errors++;
		}
		for (uint64_t i = 0; i < 200; i++) {
			if (!twopc_make_gid(gid, sizeof(gid), "t", (uint64_t)w->id, i) ||
				!twopc_inflight_contains(w->set, gid) || !twopc_inflight_remove(w->set, gid))
				w->errors++;
		}
	}
	return NULL;
}

TEST(test_twopc_inflight_threads)
{
	struct twopc_inflight *set = twopc_inflight_new();
	pthread_t th[4];
	struct worker_arg args[4];

	REQUIRE(set);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct worker_arg){ .set = set, .id = i, .errors = 0 };
		REQUIRE(pthread_create(&th[i], NULL, inflight_worker, &args[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(args[i].errors == 0);
	}
	CHECK(twopc_inflight_count(set) == 0);
	twopc_inflight_free(set);
}

TEST(test_twopc_resolve_arguments)
{
	/* A unix socket directory that does not exist: the connection fails at once. */
	const struct twopc_node nodes[2] = {
		{ 0, "host=/nonexistent/pgchorus-test port=1 connect_timeout=2", false },
		{ 1, "host=/nonexistent/pgchorus-test port=2 connect_timeout=2", false },
	};
	const struct twopc_node bad_conninfo[2] = {
		{ 0, "host=/nonexistent/pgchorus-test port=1", false },
		{ 7, "this is not a conninfo", false },
	};
	struct twopc_report rep;
	char err[256];

	CHECK(twopc_resolve(nodes, 0, "a", 1, 0, NULL, &rep, err, sizeof(err)) == -1);
	CHECK(strlen(err) > 0);
	CHECK(twopc_resolve(NULL, 2, "a", 1, 0, NULL, &rep, err, sizeof(err)) == -1);
	CHECK(twopc_resolve(nodes, 2, "A", 1, 0, NULL, &rep, err, sizeof(err)) == -1);
	CHECK(strstr(err, "instance") != NULL);
	CHECK(twopc_resolve(nodes, 2, "a", 1, -1, NULL, &rep, err, sizeof(err)) == -1);
	CHECK(twopc_resolve(nodes, 2, "a", 1, NAN, NULL, &rep, err, sizeof(err)) == -1);
	CHECK(twopc_resolve(nodes, 2, "a", 1, INFINITY, NULL, &rep, err, sizeof(err)) == -1);
	CHECK(twopc_resolve(nodes, 2, "a", 1, 0, NULL, NULL, err, sizeof(err)) == -1);
	CHECK(twopc_resolve(bad_conninfo, 2, "a", 1, 0, NULL, &rep, err, sizeof(err)) == -1);
	CHECK(strncmp(err, "node 7: invalid conninfo", 24) == 0);
	CHECK(twopc_resolve(bad_conninfo, 2, "a", 1, 0, NULL, &rep, NULL, 0) == -1);

	/* Unreachable nodes are not a hard error: counted, nothing decided (warnings silenced). */
	memset(&rep, 0x55, sizeof(rep));
	log_set_level(LOG_LVL_ERROR);
	CHECK(twopc_resolve(nodes, 2, "a", 1, 0, NULL, &rep, err, sizeof(err)) == 0);
	log_set_level(LOG_LVL_INFO);
	CHECK(rep.unreachable_nodes == 2);
	CHECK(rep.committed == 0 && rep.rolled_back == 0 && rep.undecided == 0);
	CHECK(rep.pending == 0 && rep.failed == 0 && rep.gc_deleted == 0);
}
