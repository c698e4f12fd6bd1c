/*
 * test_config.c - unit tests of the configuration loader (src/config/config.c)
 * and of the users file (src/config/users.c).  Every test writes its input to
 * a temporary file made with mkstemp and removes it afterwards.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner.h"
#include "pgchorus/config.h"
#include "pgchorus/users.h"

/* Prototypes for the TEST functions (the build uses -Wmissing-prototypes). */
#define X(name) void name(void);
#include "tests_config.def"
#undef X

#define NODE1 "nodes = ( { host = \"127.0.0.1\"; port = 5433; } );\n"

/* Write TEXT to a new file in DIR (or /tmp); returns its malloc'ed path. */
static char *write_file_in(const char *dir, const char *text)
{
	char *path = malloc(strlen(dir ? dir : "/tmp") + 32);
	FILE *f;
	int fd;

	if (!path)
		return NULL;
	sprintf(path, "%s/pgc_test_XXXXXX", dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0) {
		free(path);
		return NULL;
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		free(path);
		return NULL;
	}
	fputs(text, f);
	fclose(f);
	return path;
}

static char *write_file(const char *text)
{
	return write_file_in(NULL, text);
}

static void remove_file(char *path)
{
	if (path) {
		unlink(path);
		free(path);
	}
}

/* Load TEXT as a configuration file; *pathp receives the file name. */
static struct config *load_text(const char *text, char **pathp, char *err, size_t errlen)
{
	struct config *cfg;

	*pathp = write_file(text);
	if (!*pathp) {
		snprintf(err, errlen, "cannot write temporary file");
		return NULL;
	}
	cfg = config_load(*pathp, err, errlen);
	return cfg;
}

/*
 * Load TEXT, which must fail with a message starting "FILE:LINE: SETTING: "
 * (or "FILE: SETTING: " when LINE is 0) and containing WORDS.
 */
static int expect_error(const char *text, int line, const char *setting, const char *words)
{
	char err[512], want[512];
	char *path;
	struct config *cfg = load_text(text, &path, err, sizeof(err));
	int ok = 1;

	if (!path)
		return 0;
	if (cfg) {
		fprintf(stderr, "    expected an error for: %s", text);
		config_unref(cfg);
		ok = 0;
	} else {
		if (line)
			snprintf(want, sizeof(want), "%s:%d: %s: ", path, line, setting);
		else
			snprintf(want, sizeof(want), "%s: %s: ", path, setting);
		if (strncmp(err, want, strlen(want)) != 0 || (words && !strstr(err, words))) {
			fprintf(stderr, "    got \"%s\", wanted \"%s...%s\"\n", err, want, words ? words : "");
			ok = 0;
		}
	}
	remove_file(path);
	return ok;
}

TEST(test_config_defaults)
{
	char err[256];
	char *path;
	struct config *cfg = load_text(NODE1, &path, err, sizeof(err));

	if (!cfg)
		fprintf(stderr, "    %s\n", err);
	REQUIRE(cfg);
	CHECK_STREQ(cfg->path, path);
	CHECK_STREQ(cfg->listen_addresses, "127.0.0.1");
	CHECK(cfg->port == 6432);
	CHECK_STREQ(cfg->unix_socket_dir, "/tmp");
	CHECK(cfg->unix_socket_mode == 0777);
	CHECK(cfg->workers >= 1 && cfg->workers <= 64);
	CHECK(cfg->mode == RUN_MODE_POOL);
	CHECK(cfg->pool_mode == POOL_MODE_TRANSACTION);
	CHECK(cfg->pool_size == 20);
	CHECK(cfg->max_client_conn == 10000);
	CHECK_STREQ(cfg->server_reset_query, "DISCARD ALL");
	CHECK(cfg->max_prepared_statements == 1000);
	CHECK(cfg->n_ignore_startup_parameters == 1);
	CHECK_STREQ(cfg->ignore_startup_parameters[0], "extra_float_digits");
	CHECK(cfg->ignore_startup_parameters[1] == NULL);
	CHECK(cfg->query_wait_timeout == 120);
	CHECK(cfg->server_connect_timeout == 15);
	CHECK(cfg->server_idle_timeout == 600);
	CHECK(cfg->server_lifetime == 3600);
	CHECK(cfg->shutdown_timeout == 60);
	CHECK(cfg->max_message_size == 1073741824u);
	CHECK(cfg->max_startup_size == 10000);
	CHECK(cfg->auth_method == AUTH_TRUST);
	CHECK_STREQ(cfg->users_file, "");
	CHECK_STREQ(cfg->control_socket, "/tmp/pgchorus.ctl");
	CHECK_STREQ(cfg->logfile, "");
	CHECK_STREQ(cfg->pidfile, "");
	CHECK(cfg->log_level == LOG_LVL_INFO);
	REQUIRE(cfg->n_nodes == 1);
	CHECK(cfg->nodes[0].id == 0);
	CHECK_STREQ(cfg->nodes[0].host, "127.0.0.1");
	CHECK(cfg->nodes[0].port == 5433);
	CHECK(cfg->nodes[0].weight == 1.0);
	CHECK(cfg->nodes[0].data_dir == NULL);
	config_unref(cfg);
	remove_file(path);
}

TEST(test_config_full)
{
	static const char text[] =
		"# every setting, none at its default\n"
		"listen_addresses = \"127.0.0.1, ::1\";\n"
		"port = 7432;\n"
		"unix_socket_dir = \"/var/run/pgchorus\";\n"
		"unix_socket_mode = 0660;\n"
		"workers = 3;\n"
		"mode = \"replication\";\n"
		"pool_mode = \"session\";\n"
		"pool_size = 5;\n"
		"max_client_conn = 200;\n"
		"server_reset_query = \"\";\n"
		"max_prepared_statements = 50;\n"
		"ignore_startup_parameters = [ \"extra_float_digits\", \"search_path\" ];\n"
		"query_wait_timeout = 0.5;\n"
		"server_connect_timeout = 3;\n"
		"server_idle_timeout = 0;\n"
		"server_lifetime = 7200L;\n"
		"shutdown_timeout = 2.5;\n"
		"max_message_size = 65536;\n"
		"max_startup_size = 4096;\n"
		"auth_method = \"scram-sha-256\";\n"
		"users_file = \"/etc/pgchorus/users.txt\";\n"
		"control_socket = \"/run/pgchorus.ctl\";\n"
		"logfile = \"/var/log/pgchorus.log\";\n"
		"pidfile = \"/run/pgchorus.pid\";\n"
		"log_level = \"debug\";\n"
		"nodes = (\n"
		"  { host = \"127.0.0.1\"; port = 5433; weight = 2; data_dir = \"/data/n1\"; },\n"
		"  { host = \"/var/run/postgresql\"; weight = 0.25; },\n"
		"  { host = \"db3.example.com\"; port = 5434; weight = 0; }\n"
		");\n";
	char err[256];
	char *path;
	struct config *cfg = load_text(text, &path, err, sizeof(err));

	if (!cfg)
		fprintf(stderr, "    %s\n", err);
	REQUIRE(cfg);
	CHECK_STREQ(cfg->listen_addresses, "127.0.0.1, ::1");
	CHECK(cfg->port == 7432);
	CHECK_STREQ(cfg->unix_socket_dir, "/var/run/pgchorus");
	CHECK(cfg->unix_socket_mode == 0660);
	CHECK(cfg->workers == 3);
	CHECK(cfg->mode == RUN_MODE_REPLICATION);
	CHECK(cfg->pool_mode == POOL_MODE_SESSION);
	CHECK(cfg->pool_size == 5);
	CHECK(cfg->max_client_conn == 200);
	CHECK_STREQ(cfg->server_reset_query, "");
	CHECK(cfg->max_prepared_statements == 50);
	CHECK(cfg->n_ignore_startup_parameters == 2);
	CHECK(cfg->query_wait_timeout == 0.5);
	CHECK(cfg->server_connect_timeout == 3);
	CHECK(cfg->server_idle_timeout == 0);
	CHECK(cfg->server_lifetime == 7200);
	CHECK(cfg->shutdown_timeout == 2.5);
	CHECK(cfg->max_message_size == 65536);
	CHECK(cfg->max_startup_size == 4096);
	CHECK(cfg->auth_method == AUTH_SCRAM);
	CHECK_STREQ(cfg->users_file, "/etc/pgchorus/users.txt");
	CHECK_STREQ(cfg->control_socket, "/run/pgchorus.ctl");
	CHECK_STREQ(cfg->logfile, "/var/log/pgchorus.log");
	CHECK_STREQ(cfg->pidfile, "/run/pgchorus.pid");
	CHECK(cfg->log_level == LOG_LVL_DEBUG);
	REQUIRE(cfg->n_nodes == 3);
	CHECK(cfg->nodes[0].id == 0 && cfg->nodes[1].id == 1 && cfg->nodes[2].id == 2);
	CHECK(cfg->nodes[0].port == 5433);
	CHECK(cfg->nodes[0].weight == 2.0);
	CHECK_STREQ(cfg->nodes[0].data_dir, "/data/n1");
	CHECK_STREQ(cfg->nodes[1].host, "/var/run/postgresql");
	CHECK(cfg->nodes[1].port == 5432);
	CHECK(cfg->nodes[1].weight == 0.25);
	CHECK(cfg->nodes[1].data_dir == NULL);
	CHECK_STREQ(cfg->nodes[2].host, "db3.example.com");
	CHECK(cfg->nodes[2].weight == 0);
	CHECK_STREQ(config_pool_mode_name(cfg->pool_mode), "session");
	CHECK_STREQ(config_auth_method_name(cfg->auth_method), "scram-sha-256");
	CHECK_STREQ(config_run_mode_name(cfg->mode), "replication");
	CHECK_STREQ(config_log_level_name(cfg->log_level), "debug");
	config_unref(cfg);
	remove_file(path);
}

TEST(test_config_workers_zero)
{
	char err[256];
	char *path;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int want = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;
	struct config *cfg = load_text("workers = 0;\n" NODE1, &path, err, sizeof(err));

	REQUIRE(cfg);
	CHECK(cfg->workers == want);
	config_unref(cfg);
	remove_file(path);

	cfg = load_text("workers = 64;\n" NODE1, &path, err, sizeof(err));
	REQUIRE(cfg);
	CHECK(cfg->workers == 64);
	config_unref(cfg);
	remove_file(path);

	CHECK(expect_error("workers = 65;\n" NODE1, 1, "workers", "out of range"));
	CHECK(expect_error("workers = -1;\n" NODE1, 1, "workers", "out of range"));
}

TEST(test_config_numbers)
{
	char err[256];
	char *path;
	struct config *cfg;

	/* where a float is expected an int, an int64 or a float is accepted */
	cfg = load_text("query_wait_timeout = 5;\nserver_lifetime = 10L;\n"
			"server_idle_timeout = 1.5;\n" NODE1, &path, err, sizeof(err));
	REQUIRE(cfg);
	CHECK(cfg->query_wait_timeout == 5.0);
	CHECK(cfg->server_lifetime == 10.0);
	CHECK(cfg->server_idle_timeout == 1.5);
	config_unref(cfg);
	remove_file(path);

	/* int64 where an int is expected */
	cfg = load_text("max_message_size = 2147483647L;\npool_size = 7L;\n" NODE1, &path, err,
			sizeof(err));
	REQUIRE(cfg);
	CHECK(cfg->max_message_size == 2147483647u);
	CHECK(cfg->pool_size == 7);
	config_unref(cfg);
	remove_file(path);

	/* ... but not a float where an int is expected */
	CHECK(expect_error("\npool_size = 2.5;\n" NODE1, 2, "pool_size", "expected an integer"));
	CHECK(expect_error("query_wait_timeout = \"5s\";\n" NODE1, 1, "query_wait_timeout",
			   "expected a number"));
	CHECK(expect_error("shutdown_timeout = -1;\n" NODE1, 1, "shutdown_timeout", "negative"));
	CHECK(expect_error("server_lifetime = 1e12;\n" NODE1, 1, "server_lifetime", "maximum"));
	CHECK(expect_error("server_lifetime = 1e-9;\n" NODE1, 1, "server_lifetime", "at least"));
}

TEST(test_config_socket_mode)
{
	static const struct {
		const char *text;
		int mode;
	} ok[] = {
		{ "unix_socket_mode = 0777;\n", 0777 },
		{ "unix_socket_mode = 0600;\n", 0600 },
		{ "unix_socket_mode = 0444;\n", 0444 },
		{ "unix_socket_mode = 700;\n", 0700 },
		{ "unix_socket_mode = 0x1ff;\n", 0777 },
		{ "unix_socket_mode = \"0640\";\n", 0640 },
		{ "unix_socket_mode = 0;\n", 0 },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char err[256], text[256];
		char *path;
		struct config *cfg;

		snprintf(text, sizeof(text), "%s%s", ok[i].text, NODE1);
		cfg = load_text(text, &path, err, sizeof(err));
		if (!cfg)
			fprintf(stderr, "    %s\n", err);
		CHECK(cfg && cfg->unix_socket_mode == ok[i].mode);
		config_unref(cfg);
		remove_file(path);
	}
	CHECK(expect_error("unix_socket_mode = 0780;\n" NODE1, 1, "unix_socket_mode", "octal"));
	CHECK(expect_error("unix_socket_mode = 01777;\n" NODE1, 1, "unix_socket_mode", "out of range"));
	CHECK(expect_error("unix_socket_mode = \"rwx\";\n" NODE1, 1, "unix_socket_mode", "octal"));
}

TEST(test_config_error_bad_keyword)
{
	CHECK(expect_error("port = 6432;\n\npool_mode = \"statement\";\n" NODE1, 3, "pool_mode",
			   "\"statement\""));
	CHECK(expect_error(NODE1 "mode = \"multi\";\n", 2, "mode", "\"pool\" or \"replication\""));
	CHECK(expect_error("auth_method = \"password\";\n" NODE1, 1, "auth_method", "scram-sha-256"));
	CHECK(expect_error("log_level = \"verbose\";\n" NODE1, 1, "log_level", "\"debug\""));
	CHECK(expect_error("log_level = 3;\n" NODE1, 1, "log_level", "expected a string"));
}

TEST(test_config_error_type_and_range)
{
	CHECK(expect_error("\nport = \"6432\";\n" NODE1, 2, "port", "expected an integer, got a string"));
	CHECK(expect_error("port = 70000;\n" NODE1, 1, "port", "out of range"));
	CHECK(expect_error("pool_size = 0;\n" NODE1, 1, "pool_size", "out of range"));
	CHECK(expect_error("max_client_conn = 0;\n" NODE1, 1, "max_client_conn", "out of range"));
	CHECK(expect_error("max_message_size = 1023;\n" NODE1, 1, "max_message_size", "out of range"));
	CHECK(expect_error("max_startup_size = 511;\n" NODE1, 1, "max_startup_size", "out of range"));
	CHECK(expect_error("listen_addresses = 127;\n" NODE1, 1, "listen_addresses", "expected a string"));
	CHECK(expect_error("listen_addresses = \"a,,b\";\n" NODE1, 1, "listen_addresses", "empty address"));
	CHECK(expect_error("users_file = true;\n" NODE1, 1, "users_file", "boolean"));
	CHECK(expect_error("ignore_startup_parameters = \"x\";\n" NODE1, 1,
			   "ignore_startup_parameters", "array"));
	CHECK(expect_error("ignore_startup_parameters = [ 1, 2 ];\n" NODE1, 1,
			   "ignore_startup_parameters", "non-empty string"));
	CHECK(expect_error("listen_addresses = \"\";\nunix_socket_dir = \"\";\n" NODE1, 1,
			   "listen_addresses", "nothing to listen on"));
	CHECK(expect_error("auth_method = \"md5\";\n" NODE1, 1, "auth_method", "users_file"));
	CHECK(expect_error("control_socket = \"/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\";\n" NODE1, 1,
			   "control_socket", "too long"));
}

TEST(test_config_error_syntax)
{
	char err[256], want[256];
	char *path;
	struct config *cfg = load_text("port = 6432;\npool_size = 10;\npool_mode = ;\n" NODE1,
				       &path, err, sizeof(err));

	CHECK(cfg == NULL);
	snprintf(want, sizeof(want), "%s:3: ", path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	CHECK(strstr(err, "syntax error") != NULL);
	remove_file(path);
}

TEST(test_config_error_unknown_setting)
{
	CHECK(expect_error(NODE1 "pool_szie = 10;\n", 2, "pool_szie", "unknown setting"));
	CHECK(expect_error("nodes = ( { host = \"h\"; prot = 5432; } );\n", 1, "nodes[0].prot",
			   "unknown node setting"));
}

TEST(test_config_error_nodes)
{
	CHECK(expect_error("nodes = (\n  { host = \"a\"; },\n  { port = 5434; }\n);\n", 3, "nodes[1]",
			   "host is required"));
	CHECK(expect_error("port = 6432;\n", 0, "nodes", "at least one node"));
	CHECK(expect_error("nodes = ();\n", 1, "nodes", "at least one node"));
	CHECK(expect_error("nodes = { host = \"a\"; };\n", 1, "nodes", "list of groups"));
	CHECK(expect_error("nodes = ( \"a\" );\n", 1, "nodes[0]", "expected a group"));
	CHECK(expect_error("nodes = (\n { host = \"a\"; port = 0; }\n);\n", 2, "nodes[0].port",
			   "out of range"));
	CHECK(expect_error("nodes = (\n { host = \"a\";\n   weight = -1; }\n);\n", 3, "nodes[0].weight",
			   "negative"));
	CHECK(expect_error("nodes = ( { host = \"\"; } );\n", 1, "nodes[0].host", "empty"));
	CHECK(expect_error("nodes = (\n { host = \"a\"; },\n { host = \"a\"; port = 5432; }\n);\n", 3,
			   "nodes[1]", "nodes[0]"));
}

TEST(test_config_error_missing_file)
{
	char err[256];
	struct config *cfg = config_load("/nonexistent/pgchorus.conf", err, sizeof(err));

	CHECK(cfg == NULL);
	CHECK_STREQ(err, "/nonexistent/pgchorus.conf: cannot open: No such file or directory");
	cfg = config_load("/tmp", err, sizeof(err));
	CHECK(cfg == NULL);
	CHECK_STREQ(err, "/tmp: cannot open: Is a directory");
}

TEST(test_config_include)
{
	char err[512], text[256], want[256];
	char *inc = write_file("\n\npool_mode = \"statement\";\n");
	char *path;
	const char *base;
	struct config *cfg;

	REQUIRE(inc);
	/* a relative @include is looked up next to the main file */
	base = strrchr(inc, '/') + 1;
	snprintf(text, sizeof(text), NODE1 "@include \"%s\"\n", base);
	cfg = load_text(text, &path, err, sizeof(err));
	CHECK(cfg == NULL);
	snprintf(want, sizeof(want), "%s:3: pool_mode: ", inc);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	if (strncmp(err, want, strlen(want)) != 0)
		fprintf(stderr, "    got \"%s\"\n", err);
	config_unref(cfg);
	remove_file(path);
	remove_file(inc);

	/* a syntax error inside an included file names that file */
	inc = write_file("pool_size = 3;\npool_mode = ;\n");
	REQUIRE(inc);
	base = strrchr(inc, '/') + 1;
	snprintf(text, sizeof(text), NODE1 "@include \"%s\"\n", base);
	cfg = load_text(text, &path, err, sizeof(err));
	CHECK(cfg == NULL);
	snprintf(want, sizeof(want), "%s:2: syntax error", inc);
	CHECK_STREQ(err, want);
	config_unref(cfg);
	remove_file(path);
	remove_file(inc);
}

TEST(test_config_ignore_startup_parameters)
{
	char err[256];
	char *path;
	struct config *cfg = load_text(NODE1, &path, err, sizeof(err));

	REQUIRE(cfg);
	CHECK(config_ignores_startup_param(cfg, "extra_float_digits"));
	CHECK(config_ignores_startup_param(cfg, "Extra_Float_Digits"));
	CHECK(!config_ignores_startup_param(cfg, "search_path"));
	config_unref(cfg);
	remove_file(path);

	cfg = load_text("ignore_startup_parameters = ( \"search_path\", \"geqo\" );\n" NODE1, &path,
			err, sizeof(err));
	REQUIRE(cfg);
	CHECK(config_ignores_startup_param(cfg, "GEQO"));
	CHECK(config_ignores_startup_param(cfg, "search_path"));
	CHECK(!config_ignores_startup_param(cfg, "extra_float_digits"));
	config_unref(cfg);
	remove_file(path);

	cfg = load_text("ignore_startup_parameters = [];\n" NODE1, &path, err, sizeof(err));
	REQUIRE(cfg);
	CHECK(cfg->n_ignore_startup_parameters == 0);
	CHECK(cfg->ignore_startup_parameters && cfg->ignore_startup_parameters[0] == NULL);
	CHECK(!config_ignores_startup_param(cfg, "extra_float_digits"));
	config_unref(cfg);
	remove_file(path);
}

/* Does the configuration TEXT2 reload over TEXT1?  The message goes to err. */
static int reloads(const char *text1, const char *text2, char *err, size_t errlen)
{
	char *p1, *p2;
	struct config *a = load_text(text1, &p1, err, errlen);
	struct config *b = load_text(text2, &p2, err, errlen);
	int r = -1;

	if (a && b)
		r = config_reload_compatible(a, b, err, errlen);
	config_unref(a);
	config_unref(b);
	remove_file(p1);
	remove_file(p2);
	return r;
}

#define TWO_NODES "nodes = ( { host = \"127.0.0.1\"; port = 5433; }, { host = \"127.0.0.1\"; port = 5434; } );\n"

TEST(test_config_reload_compatible)
{
	char err[256];

	CHECK(reloads(TWO_NODES, TWO_NODES, err, sizeof(err)) == 1);
	CHECK(reloads("pool_size = 5;\nquery_wait_timeout = 1;\nlog_level = \"error\";\n" TWO_NODES,
		      "pool_size = 50;\nquery_wait_timeout = 9;\nlog_level = \"debug\";\n"
		      "auth_method = \"md5\";\nusers_file = \"/x\";\n" TWO_NODES, err, sizeof(err)) == 1);
	/* weight and data_dir may change */
	CHECK(reloads(TWO_NODES, "nodes = ( { host = \"127.0.0.1\"; port = 5433; weight = 3; },"
		      " { host = \"127.0.0.1\"; port = 5434; data_dir = \"/d\"; } );\n", err, sizeof(err)) == 1);

	CHECK(reloads("port = 6432;\n" TWO_NODES, "port = 6433;\n" TWO_NODES, err, sizeof(err)) == 0);
	CHECK(strncmp(err, "port: ", 6) == 0);
	CHECK(reloads(TWO_NODES, "listen_addresses = \"*\";\n" TWO_NODES, err, sizeof(err)) == 0);
	CHECK(strncmp(err, "listen_addresses: ", 18) == 0);
	CHECK(reloads(TWO_NODES, "workers = 3;\n" TWO_NODES, err, sizeof(err)) != 1 ||
	      sysconf(_SC_NPROCESSORS_ONLN) == 3);
	CHECK(reloads(TWO_NODES, "mode = \"replication\";\n" TWO_NODES, err, sizeof(err)) == 0);
	CHECK(strncmp(err, "mode: ", 6) == 0);
	CHECK(reloads(TWO_NODES, "unix_socket_dir = \"\";\n" TWO_NODES, err, sizeof(err)) == 0);
	CHECK(strncmp(err, "unix_socket_dir: ", 17) == 0);
	CHECK(reloads(TWO_NODES, NODE1, err, sizeof(err)) == 0);
	CHECK(strncmp(err, "nodes: ", 7) == 0);
	CHECK(reloads(TWO_NODES, "nodes = ( { host = \"127.0.0.1\"; port = 5433; },"
		      " { host = \"127.0.0.1\"; port = 5435; } );\n", err, sizeof(err)) == 0);
	CHECK(strncmp(err, "nodes[1].port: ", 15) == 0);
	CHECK(reloads(TWO_NODES, "control_socket = \"/tmp/other.ctl\";\n" TWO_NODES, err, sizeof(err)) == 0);
	CHECK(strncmp(err, "control_socket: ", 16) == 0);
	CHECK(reloads(TWO_NODES, "pidfile = \"/tmp/x.pid\";\n" TWO_NODES, err, sizeof(err)) == 0);
	CHECK(strncmp(err, "pidfile: ", 9) == 0);
}

TEST(test_config_users_file_relative)
{
	char tmpl[] = "/tmp/pgc_test_dir_XXXXXX";
	char err[256], want[300];
	char *dir = mkdtemp(tmpl);
	char *path;
	struct config *cfg;

	REQUIRE(dir);
	path = write_file_in(dir, "users_file = \"users.txt\";\nauth_method = \"md5\";\n" NODE1);
	REQUIRE(path);
	cfg = config_load(path, err, sizeof(err));
	if (!cfg)
		fprintf(stderr, "    %s\n", err);
	REQUIRE(cfg);
	snprintf(want, sizeof(want), "%s/users.txt", dir);
	CHECK_STREQ(cfg->users_file, want);
	CHECK(cfg->auth_method == AUTH_MD5);
	config_unref(cfg);
	remove_file(path);

	path = write_file_in(dir, "users_file = \"sub/../u.txt\";\n" NODE1);
	REQUIRE(path);
	cfg = config_load(path, err, sizeof(err));
	REQUIRE(cfg);
	snprintf(want, sizeof(want), "%s/sub/../u.txt", dir);
	CHECK_STREQ(cfg->users_file, want);
	config_unref(cfg);
	remove_file(path);

	/* an absolute path stays as written */
	path = write_file_in(dir, "users_file = \"/etc/pgchorus/users.txt\";\n" NODE1);
	REQUIRE(path);
	cfg = config_load(path, err, sizeof(err));
	REQUIRE(cfg);
	CHECK_STREQ(cfg->users_file, "/etc/pgchorus/users.txt");
	config_unref(cfg);
	remove_file(path);
	rmdir(dir);
}

TEST(test_config_refcount)
{
	char err[256];
	char *path;
	struct config *cfg = load_text(NODE1, &path, err, sizeof(err));

	REQUIRE(cfg);
	CHECK(config_ref(cfg) == cfg);
	CHECK(atomic_load(&cfg->refcnt) == 2);
	config_unref(cfg);
	CHECK(atomic_load(&cfg->refcnt) == 1);
	config_unref(cfg); /* frees; the sanitizer build checks nothing leaks */
	config_unref(NULL);
	remove_file(path);
}

/* ------------------------------------------------------------------------ */
/* users file                                                                */
/* ------------------------------------------------------------------------ */

#define MD5_ALICE "md5" "0123456789abcdef0123456789abcdef"
#define SCRAM_BOB "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$" \
	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

TEST(test_config_users_parse)
{
	static const char text[] =
		"# pgchorus users\n"
		"\n"
		"carol:plain secret with spaces and : colons\n"
		"alice:" MD5_ALICE "\n"
		"  # indented comment\n"
		"bob:" SCRAM_BOB "\r\n"
		"\"we:ird \"\"name\"\"\":pw1\n"
		"\"\"\"\":pw2\t \n"
		"dave:md5notahash\n";
	char err[256];
	char *path = write_file(text);
	struct users *u;

	REQUIRE(path);
	u = users_load(path, err, sizeof(err));
	if (!u)
		fprintf(stderr, "    %s\n", err);
	REQUIRE(u);
	CHECK(users_count(u) == 6);
	CHECK_STREQ(users_lookup(u, "carol"), "plain secret with spaces and : colons");
	CHECK_STREQ(users_lookup(u, "alice"), MD5_ALICE);
	CHECK_STREQ(users_lookup(u, "bob"), SCRAM_BOB);
	CHECK_STREQ(users_lookup(u, "we:ird \"name\""), "pw1");
	CHECK_STREQ(users_lookup(u, "\""), "pw2");
	CHECK_STREQ(users_lookup(u, "dave"), "md5notahash");
	CHECK(users_lookup(u, "Alice") == NULL);
	CHECK(users_lookup(u, "eve") == NULL);
	CHECK(users_secret_kind(users_lookup(u, "alice")) == USER_SECRET_MD5);
	CHECK(users_secret_kind(users_lookup(u, "bob")) == USER_SECRET_SCRAM);
	CHECK(users_secret_kind(users_lookup(u, "carol")) == USER_SECRET_PLAIN);
	CHECK(users_secret_kind(users_lookup(u, "dave")) == USER_SECRET_PLAIN);
	users_free(u);
	remove_file(path);

	/* an empty file is a valid, empty list */
	path = write_file("# nobody\n");
	REQUIRE(path);
	u = users_load(path, err, sizeof(err));
	REQUIRE(u);
	CHECK(users_count(u) == 0);
	CHECK(users_lookup(u, "alice") == NULL);
	users_free(u);
	remove_file(path);
}

/* TEXT must fail to load with "FILE:LINE: " and WORDS in the message. */
static int users_error(const char *text, int line, const char *words)
{
	char err[512], want[512];
	char *path = write_file(text);
	struct users *u;
	int ok = 1;

	if (!path)
		return 0;
	u = users_load(path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (u) {
		fprintf(stderr, "    expected an error for: %s", text);
		users_free(u);
		ok = 0;
	} else if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, words)) {
		fprintf(stderr, "    got \"%s\", wanted \"%s...%s\"\n", err, want, words);
		ok = 0;
	}
	remove_file(path);
	return ok;
}

TEST(test_config_users_errors)
{
	char err[256];

	CHECK(users_error("alice:x\n# c\nbob\n", 3, "missing ':'"));
	CHECK(users_error("alice:\n", 1, "empty password"));
	CHECK(users_error(":pw\n", 1, "empty user name"));
	CHECK(users_error("\"\":pw\n", 1, "empty user name"));
	CHECK(users_error("\n\"alice:pw\n", 2, "unterminated"));
	CHECK(users_error("\"alice\"x:pw\n", 1, "expected ':'"));
	CHECK(users_error("al\"ice:pw\n", 1, "unquoted"));
	CHECK(users_error("alice:a\nbob:b\nalice:c\n", 3, "duplicate (first on line 1)"));
	CHECK(users_error("alice:md50123456789abcdef0123456789abcde\n", 1, "md5"));
	CHECK(users_error("alice:md50123456789ABCDEF0123456789ABCDEF\n", 1, "md5"));
	CHECK(users_error("bob:SCRAM-SHA-256$4096:c2FsdA==\n", 1, "SCRAM"));
	CHECK(users_error("bob:SCRAM-SHA-256$x:c2FsdA==$AAAA:AAAA\n", 1, "iteration"));
	CHECK(users_error("bob:SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA\n", 1, "StoredKey"));
	CHECK(users_error("bob:SCRAM-SHA-256$4096:!!$AAAA:AAAA\n", 1, "salt"));
	CHECK(users_error("a:b\nbob:SCRAM-SHA-256$4096:c2FsdA==$"
			  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:AAAA\n", 2, "ServerKey"));

	CHECK(users_load("/nonexistent/users.txt", err, sizeof(err)) == NULL);
	CHECK_STREQ(err, "/nonexistent/users.txt: cannot open: No such file or directory");
}
