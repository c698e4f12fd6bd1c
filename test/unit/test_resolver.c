/*
 * test_resolver.c - unit tests of src/repl/resolver.c that need no database:
 * gids before resolver_start() and in pool mode, and, started against nodes
 * that cannot be reached (a unix socket directory that does not exist), the
 * gids handed to worker threads, kick, reload and stop.  Its runs against
 * real nodes are tested by hand and by the integration tests.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "pgchorus/config.h"
#include "pgchorus/log.h"
#include "pgchorus/resolver.h"
#include "pgchorus/twopc.h"

/* Prototypes for the TEST functions (the build uses -Wmissing-prototypes). */
#define X(name) void name(void);
#include "tests_resolver.def"
#undef X

#define UNREACHABLE "nodes = ( { host = \"/nonexistent/pgc-test\"; port = 1; }," \
	" { host = \"/nonexistent/pgc-test\"; port = 2; } );\n"

static struct config *load(const char *text)
{
	char path[] = "/tmp/pgc_test_XXXXXX", err[512];
	struct config *cfg;
	FILE *f;
	int fd = mkstemp(path);

	if (fd < 0)
		return NULL;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return NULL;
	}
	fputs(text, f);
	fclose(f);
	cfg = config_load(path, err, sizeof(err));
	if (!cfg)
		fprintf(stderr, "    %s\n", err);
	unlink(path);
	return cfg;
}

TEST(test_resolver_not_started)
{
	char gid[TWOPC_GID_BUF], err[256];
	struct config *cfg = load("port = 7002;\n" UNREACHABLE);

	REQUIRE(cfg);
	CHECK(!resolver_gid_begin(gid, sizeof(gid)));
	CHECK_STREQ(gid, "");
	resolver_gid_end("pgc_p7002_1_1"); /* no-ops */
	resolver_kick();
	resolver_reload(cfg);
	resolver_stop();
	/* pool mode: nothing is started */
	CHECK(resolver_start(cfg, err, sizeof(err)) == 0);
	CHECK(!resolver_gid_begin(gid, sizeof(gid)));
	resolver_stop();
	config_unref(cfg);
}

#define N_THREADS 4
#define N_GIDS 500

struct taker {
	uint64_t counters[N_GIDS];
	uint64_t boot;
	int errors;
};

static void *take_gids(void *arg)
{
	struct taker *t = arg;

	for (int i = 0; i < N_GIDS; i++) {
		char gid[TWOPC_GID_BUF], inst[TWOPC_INSTANCE_MAX + 1];
		uint64_t boot, counter;

		if (!resolver_gid_begin(gid, sizeof(gid)) ||
		    !twopc_parse_gid(gid, inst, sizeof(inst), &boot, &counter) || strcmp(inst, "unit_t") != 0 ||
		    (t->boot && boot != t->boot)) {
			t->errors++;
			continue;
		}
		t->boot = boot;
		t->counters[i] = counter;
		if (i % 7 == 0)
			resolver_kick();
		resolver_gid_end(gid);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

TEST(test_resolver_gids)
{
	static struct taker takers[N_THREADS];
	static uint64_t all[N_THREADS * N_GIDS];
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	pthread_t th[N_THREADS];
	char gid[TWOPC_GID_BUF], small[8], err[256];
	struct config *cfg = load("mode = \"replication\";\ninstance_name = \"unit_t\";\n"
				  "resolver_period = 0.01;\nresolver_grace = 0;\n" UNREACHABLE);
	struct config *cfg2 = load("mode = \"replication\";\ninstance_name = \"unit_t\";\n"
				   "resolver_period = 0.02;\nresolver_user = \"o'neil\";\n"
				   "resolver_password = \"a b\\\\c'\";\n" UNREACHABLE);
	uint64_t boot = 0, counter = 0;
	char inst[TWOPC_INSTANCE_MAX + 1];

	REQUIRE(cfg && cfg2);
	log_set_level(LOG_LVL_ERROR); /* the nodes are unreachable: warnings silenced */
	REQUIRE(resolver_start(cfg, err, sizeof(err)) == 0);

	CHECK(!resolver_gid_begin(small, sizeof(small)));
	REQUIRE(resolver_gid_begin(gid, sizeof(gid)));
	REQUIRE(twopc_parse_gid(gid, inst, sizeof(inst), &boot, &counter));
	CHECK_STREQ(inst, "unit_t");
	CHECK(boot > 1600000000000000ull); /* microseconds since 1970 */
	resolver_gid_end(gid);

	memset(takers, 0, sizeof(takers));
	for (int i = 0; i < N_THREADS; i++)
		REQUIRE(pthread_create(&th[i], NULL, take_gids, &takers[i]) == 0);
	resolver_reload(cfg2); /* while gids are taken and runs go on */
	for (int i = 0; i < N_THREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK(takers[i].errors == 0);
		CHECK(takers[i].boot == boot);
		memcpy(all + i * N_GIDS, takers[i].counters, sizeof(takers[i].counters));
	}
	/* every counter once: after the first gid's, consecutive */
	qsort(all, N_THREADS * N_GIDS, sizeof(all[0]), cmp_u64);
	for (int i = 0; i < N_THREADS * N_GIDS; i++)
		CHECK(all[i] == counter + 1 + (uint64_t)i);

	nanosleep(&pause, NULL); /* a few periodic runs */
	resolver_stop();
	log_set_level(LOG_LVL_INFO);
	CHECK(!resolver_gid_begin(gid, sizeof(gid)));

	/* a new start is a new boot */
	log_set_level(LOG_LVL_ERROR);
	REQUIRE(resolver_start(cfg2, err, sizeof(err)) == 0);
	REQUIRE(resolver_gid_begin(gid, sizeof(gid)));
	{
		uint64_t boot2 = 0, counter2 = 0;

		REQUIRE(twopc_parse_gid(gid, inst, sizeof(inst), &boot2, &counter2));
		CHECK(boot2 > boot);
		CHECK(counter2 == 1);
	}
	resolver_stop();
	log_set_level(LOG_LVL_INFO);
	config_unref(cfg);
	config_unref(cfg2);
}
