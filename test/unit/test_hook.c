/*
 * test_hook.c - unit tests of src/ha/hook.c: placeholder expansion, the
 * arguments of a node, and running scripts (hook_run_wait in this thread,
 * hook_run_async on a loop of its own) with their output, exit status and
 * timeout read back from the log (stderr, redirected to a file here).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "runner.h"
#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/node.h"

static const struct hook_args sample = {
	.node = 2, .host = "db2.example", .port = 5434, .data_dir = "/srv/pg/node2",
	.primary = 0, .p_host = "10.0.0.1", .p_port = 5432, .p_data_dir = "/srv/pg/node0",
};

static const char *expand(const char *tmpl, const struct hook_args *a)
{
	static char out[512];

	hook_expand(tmpl, a, out, sizeof(out));
	return out;
}

TEST(test_hook_expand_placeholders)
{
	CHECK_STREQ(expand("failover.sh %d %h %p %D %m %H %P %R", &sample),
		    "failover.sh 2 db2.example 5434 /srv/pg/node2 0 10.0.0.1 5432 /srv/pg/node0");
	CHECK_STREQ(expand("%d%d-%p", &sample), "22-5434");
	CHECK_STREQ(expand("no placeholder", &sample), "no placeholder");
	CHECK_STREQ(expand("", &sample), "");
	CHECK(hook_expand("%h:%p", &sample, NULL, 0) == strlen("db2.example:5434"));
}

TEST(test_hook_expand_percent_and_unknown)
{
	CHECK_STREQ(expand("100%% sure", &sample), "100% sure");
	CHECK_STREQ(expand("%%d is %d", &sample), "%d is 2");
	CHECK_STREQ(expand("%x %Z %", &sample), "%x %Z %");
	CHECK_STREQ(expand("%%%d%", &sample), "%2%");
	CHECK_STREQ(expand("date +%s", &sample), "date +%s");
}

TEST(test_hook_expand_raw_values)
{
	struct hook_args a = sample;

	/* substituted as they are: the template quotes them if it needs to */
	a.data_dir = "/data/it's here";
	a.host = "";
	a.p_data_dir = NULL;
	a.primary = -1;
	CHECK_STREQ(expand("x '%D' [%h] [%R] %m", &a), "x '/data/it's here' [] [] -1");
}

TEST(test_hook_expand_truncation)
{
	char out[8];
	size_t need;

	memset(out, 'Z', sizeof(out));
	need = hook_expand("node %d on %h", &sample, out, sizeof(out));
	CHECK(need == strlen("node 2 on db2.example"));
	CHECK_STREQ(out, "node 2 ");
	memset(out, 'Z', sizeof(out));
	CHECK(hook_expand("abc", &sample, out, 1) == 3);
	CHECK(out[0] == '\0' && out[1] == 'Z');
	CHECK(hook_expand("%D", &sample, out, 0) == strlen("/srv/pg/node2"));
	CHECK(out[0] == '\0');
	/* exactly the right size */
	CHECK(hook_expand("%p", &sample, out, 5) == 4);
	CHECK_STREQ(out, "5434");
}

TEST(test_hook_args_for_node_and_primary)
{
	struct cfg_node cn[3] = {
		{ .id = 0, .host = "127.0.0.1", .port = 5432, .data_dir = "/d0" },
		{ .id = 1, .host = "127.0.0.1", .port = 5433, .data_dir = NULL },
		{ .id = 2, .host = "/tmp/sock", .port = 5434, .data_dir = "/d2" },
	};
	struct config cfg;
	struct hook_args a;
	char err[200];

	memset(&cfg, 0, sizeof(cfg));
	cfg.n_nodes = 3;
	cfg.nodes = cn;
	REQUIRE(nodes_init(&cfg, err, sizeof(err)) == 0);

	hook_args_for(&cfg, 2, &a);
	CHECK(a.node == 2);
	CHECK_STREQ(a.host, "/tmp/sock");
	CHECK(a.port == 5434);
	CHECK_STREQ(a.data_dir, "/d2");
	CHECK(a.primary == 0);
	CHECK(a.p_port == 5432);
	CHECK_STREQ(a.p_data_dir, "/d0");

	/* node 0 failed: the new primary is node 1, whose data_dir is unset */
	atomic_store(&node_get(0)->state, NODE_DOWN);
	hook_args_for(&cfg, 0, &a);
	CHECK(a.node == 0 && a.port == 5432);
	CHECK(a.primary == 1);
	CHECK_STREQ(a.p_host, "127.0.0.1");
	CHECK(a.p_port == 5433);
	CHECK_STREQ(a.p_data_dir, "");
	CHECK_STREQ(expand("%d %m %P '%R'", &a), "0 1 5433 ''");

	/* no node up */
	atomic_store(&node_get(1)->state, NODE_DOWN);
	atomic_store(&node_get(2)->state, NODE_DETACHED);
	hook_args_for(&cfg, 1, &a);
	CHECK(a.primary == -1);
	CHECK_STREQ(a.p_host, "");
	CHECK_STREQ(a.data_dir, "");
	nodes_free();
}

/* ---- running scripts: the log goes to a file while they run ---- */

struct captured {
	char path[64];
	int saved;
};

static bool capture_start(struct captured *c)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "/tmp/pgc_test_hook.XXXXXX");
	fd = mkstemp(c->path);
	if (fd < 0)
		return false;
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return true;
}

/* Back to the real stderr; the captured text (malloc'ed), shown there too. */
static char *capture_end(struct captured *c)
{
	FILE *f;
	char *text = NULL;
	size_t len = 0;

	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	f = fopen(c->path, "r");
	if (f) {
		text = calloc(1, 65536);
		if (text)
			len = fread(text, 1, 65535, f);
		fclose(f);
	}
	unlink(c->path);
	if (text && getenv("TEST_VERBOSE"))
		fprintf(stderr, "%.*s", (int)len, text);
	return text;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(test_hook_run_wait_status_and_output)
{
	struct captured c;
	char *log;
	int st;

	log_set_level(LOG_LVL_INFO);
	REQUIRE(capture_start(&c));
	st = hook_run_wait("test hook", "echo out %d; echo 'err line' >&2; printf 'no newline'; exit 3", &sample, 10);
	log = capture_end(&c);
	REQUIRE(log);
	CHECK(st == 3);
	CHECK(strstr(log, "test hook (pid ") != NULL);
	CHECK(strstr(log, "): out 2\n") != NULL);
	CHECK(strstr(log, "): err line\n") != NULL);
	CHECK(strstr(log, "): no newline\n") != NULL);
	CHECK(strstr(log, "exited with status 3") != NULL);
	CHECK(strstr(log, "WARNING") != NULL);
	free(log);

	CHECK(hook_run_wait("empty", "", &sample, 10) == 0);
	REQUIRE(capture_start(&c));
	CHECK(hook_run_wait("ok hook", "true", &sample, 10) == 0);
	CHECK(hook_run_wait("signalled", "kill -9 $$", &sample, 10) == -1);
	log = capture_end(&c);
	REQUIRE(log);
	CHECK(strstr(log, "exited with status 0") != NULL);
	CHECK(strstr(log, "ended by signal 9") != NULL);
	free(log);
}

TEST(test_hook_run_wait_timeout)
{
	struct captured c;
	double t0;
	char *log;
	int st;

	REQUIRE(capture_start(&c));
	t0 = now_s();
	/* the sleep is a child of the shell: the whole process group is killed */
	st = hook_run_wait("slow hook", "sleep 100; echo never", &sample, 0.3);
	t0 = now_s() - t0;
	log = capture_end(&c);
	REQUIRE(log);
	CHECK(st == -1);
	CHECK(t0 < 3);
	CHECK(strstr(log, "killed (SIGTERM)") != NULL);
	CHECK(strstr(log, "was killed after 0.3s") != NULL);
	CHECK(strstr(log, "): never") == NULL);
	free(log);
}

struct async_wait {
	uv_timer_t tick;
	const char *path;
	const char *const *want;
	double deadline;
	bool found;
};

/* Every 50 ms: is every WANT in the log file yet? */
static void tick_cb(uv_timer_t *t)
{
	struct async_wait *w = t->data;
	char buf[65536];
	size_t n;
	FILE *f = fopen(w->path, "r");

	fflush(stderr);
	n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	w->found = true;
	for (const char *const *p = w->want; *p; p++)
		w->found &= strstr(buf, *p) != NULL;
	if (w->found || now_s() > w->deadline)
		uv_timer_stop(t);
}

TEST(test_hook_run_async)
{
	static const char *const want[] = {
		"async ok (pid ", "): hello 2 5434\n", "): on stderr\n", "async ok (pid ",
		"exited with status 4", "async slow (pid ", "was killed after 0.3s", NULL,
	};
	struct async_wait w = { .want = want };
	struct captured c;
	uv_loop_t loop;
	char *log;
	double t0;

	REQUIRE(uv_loop_init(&loop) == 0);
	REQUIRE(capture_start(&c));
	REQUIRE(hooks_start(&loop) == 0);
	t0 = now_s();
	hook_run_async("async ok", "echo hello %d %p; echo on stderr >&2; exit 4", &sample, 10);
	hook_run_async("async slow", "sleep 100", &sample, 0.3);
	hook_run_async("async empty", "", &sample, 10);
	w.path = c.path;
	w.deadline = t0 + 5;
	uv_timer_init(&loop, &w.tick);
	w.tick.data = &w;
	uv_timer_start(&w.tick, tick_cb, 50, 50);
	while (uv_is_active((uv_handle_t *)&w.tick))
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&w.tick, NULL);
	/* a hook still running when hooks stop is killed, and the loop can end */
	hook_run_async("async left", "sleep 100", &sample, 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	hooks_stop();
	uv_run(&loop, UV_RUN_DEFAULT);
	t0 = now_s() - t0;
	hook_run_async("after stop", "echo too late", &sample, 10);
	log = capture_end(&c);
	CHECK(w.found);
	CHECK(t0 < 5);
	CHECK(uv_loop_close(&loop) == 0);
	REQUIRE(log);
	CHECK(strstr(log, "async empty") == NULL);
	CHECK(strstr(log, "async left (pid ") != NULL);
	CHECK(strstr(log, "pgchorus is stopping") != NULL);
	CHECK(strstr(log, "after stop not run") != NULL);
	if (!w.found)
		fprintf(stderr, "    log:\n%s", log);
	free(log);
}
