/*
 * test_config.c - unit tests of the configuration loader (src/config/config.c)
 * and of the users file (src/config/users.c).  Every test writes its input to
 * a temporary file made with mkstemp and removes it afterwards.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h> /* TLS1_2_VERSION etc. */

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
	CHECK(cfg->auth_timeout == 60);
	CHECK(cfg->client_idle_timeout == 0);
	CHECK(cfg->idle_in_transaction_timeout == 0);
	CHECK(cfg->query_wait_timeout == 120);
	CHECK(cfg->server_connect_timeout == 15);
	CHECK(cfg->server_idle_timeout == 600);
	CHECK(cfg->server_lifetime == 3600);
	CHECK(cfg->shutdown_timeout == 60);
	CHECK(cfg->max_message_size == 1073741824u);
	CHECK(cfg->max_startup_size == 10000);
	CHECK(cfg->auth_method == AUTH_TRUST);
	CHECK_STREQ(cfg->users_file, "");
	CHECK_STREQ(cfg->hba_file, "");
	CHECK_STREQ(cfg->auth_query, "");
	CHECK_STREQ(cfg->auth_user, "");
	CHECK(cfg->client_tls == CLIENT_TLS_ALLOW);
	CHECK_STREQ(cfg->tls_cert_file, "");
	CHECK_STREQ(cfg->tls_key_file, "");
	CHECK_STREQ(cfg->tls_ca_file, "");
	CHECK_STREQ(cfg->tls_ciphers, "HIGH:!aNULL:!MD5");
	CHECK(cfg->tls_min_protocol == TLS1_2_VERSION);
	CHECK(cfg->server_tls == SERVER_TLS_PREFER);
	CHECK_STREQ(cfg->server_tls_ca_file, "");
	CHECK_STREQ(cfg->server_tls_cert_file, "");
	CHECK_STREQ(cfg->server_tls_key_file, "");
	CHECK_STREQ(config_client_tls_name(cfg->client_tls), "allow");
	CHECK_STREQ(config_server_tls_name(cfg->server_tls), "prefer");
	CHECK_STREQ(config_tls_protocol_name(cfg->tls_min_protocol), "TLSv1.2");
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
		"load_balance = \"off\";\n"
		"on_mismatch = \"abort\";\n"
		"instance_name = \"full\";\n"
		"resolver_user = \"ru\";\n"
		"resolver_password = \"rp\";\n"
		"resolver_database = \"rd\";\n"
		"resolver_period = 2;\n"
		"resolver_grace = 3;\n"
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
	CHECK(cfg->load_balance == LB_OFF);
	CHECK(cfg->on_mismatch == MISMATCH_ABORT);
	CHECK_STREQ(cfg->instance_name, "full");
	CHECK_STREQ(cfg->resolver_user, "ru");
	CHECK_STREQ(cfg->resolver_password, "rp");
	CHECK_STREQ(cfg->resolver_database, "rd");
	CHECK(cfg->resolver_period == 2);
	CHECK(cfg->resolver_grace == 3);
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
	/* TLS, authentication and client timeouts may change */
	CHECK(reloads(TWO_NODES, "client_tls = \"disable\";\nserver_tls = \"require\";\n"
		      "tls_min_protocol = \"TLSv1.3\";\ntls_ciphers = \"HIGH\";\n"
		      "hba_file = \"hba.conf\";\nauth_query = \"SELECT $1\";\nauth_user = \"a\";\n"
		      "auth_timeout = 5;\nclient_idle_timeout = 30;\nidle_in_transaction_timeout = 9;\n"
		      TWO_NODES, err, sizeof(err)) == 1);
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
/* TLS, authentication sources, client timeouts                              */
/* ------------------------------------------------------------------------ */

/*
 * A temporary directory holding the (dummy) files cert.pem, key.pem and
 * ca.pem: the loader only checks that TLS files can be opened.
 */
struct tls_dir {
	char path[64];
	char cert[96], key[96], ca[96];
};

static int tls_dir_make(struct tls_dir *d)
{
	const char *names[] = { "cert.pem", "key.pem", "ca.pem" };
	char *files[] = { d->cert, d->key, d->ca };

	snprintf(d->path, sizeof(d->path), "/tmp/pgc_test_tls_XXXXXX");
	if (!mkdtemp(d->path))
		return 0;
	for (int i = 0; i < 3; i++) {
		FILE *f;

		snprintf(files[i], sizeof(d->cert), "%s/%s", d->path, names[i]);
		f = fopen(files[i], "w");
		if (!f)
			return 0;
		fputs("-----BEGIN DUMMY-----\n", f);
		fclose(f);
	}
	return 1;
}

static void tls_dir_remove(struct tls_dir *d)
{
	unlink(d->cert);
	unlink(d->key);
	unlink(d->ca);
	rmdir(d->path);
}

TEST(test_config_tls_full)
{
	struct tls_dir d;
	char text[2048], err[512];
	char *path;
	struct config *cfg;

	REQUIRE(tls_dir_make(&d));
	snprintf(text, sizeof(text),
		 "client_tls = \"require\";\n"
		 "tls_cert_file = \"%s\";\n"
		 "tls_key_file = \"%s\";\n"
		 "tls_ca_file = \"%s\";\n"
		 "tls_ciphers = \"ECDHE+AESGCM:!aNULL\";\n"
		 "tls_min_protocol = \"TLSv1.3\";\n"
		 "server_tls = \"verify-full\";\n"
		 "server_tls_ca_file = \"%s\";\n"
		 "server_tls_cert_file = \"%s\";\n"
		 "server_tls_key_file = \"%s\";\n" NODE1,
		 d.cert, d.key, d.ca, d.ca, d.cert, d.key);
	cfg = load_text(text, &path, err, sizeof(err));
	if (!cfg)
		fprintf(stderr, "    %s\n", err);
	REQUIRE(cfg);
	CHECK(cfg->client_tls == CLIENT_TLS_REQUIRE);
	CHECK_STREQ(cfg->tls_cert_file, d.cert);
	CHECK_STREQ(cfg->tls_key_file, d.key);
	CHECK_STREQ(cfg->tls_ca_file, d.ca);
	CHECK_STREQ(cfg->tls_ciphers, "ECDHE+AESGCM:!aNULL");
	CHECK(cfg->tls_min_protocol == TLS1_3_VERSION);
	CHECK(cfg->server_tls == SERVER_TLS_VERIFY_FULL);
	CHECK_STREQ(cfg->server_tls_ca_file, d.ca);
	CHECK_STREQ(cfg->server_tls_cert_file, d.cert);
	CHECK_STREQ(cfg->server_tls_key_file, d.key);
	CHECK_STREQ(config_client_tls_name(cfg->client_tls), "require");
	CHECK_STREQ(config_server_tls_name(cfg->server_tls), "verify-full");
	CHECK_STREQ(config_tls_protocol_name(cfg->tls_min_protocol), "TLSv1.3");
	config_unref(cfg);
	remove_file(path);

	/* every keyword, written in any case */
	static const struct {
		const char *text;
		int client_tls, server_tls, proto;
	} kw[] = {
		{ "client_tls = \"disable\";\nserver_tls = \"disable\";\ntls_min_protocol = \"TLSv1\";\n",
		  CLIENT_TLS_DISABLE, SERVER_TLS_DISABLE, TLS1_VERSION },
		{ "client_tls = \"ALLOW\";\nserver_tls = \"Require\";\ntls_min_protocol = \"tlsv1.1\";\n",
		  CLIENT_TLS_ALLOW, SERVER_TLS_REQUIRE, TLS1_1_VERSION },
		{ "server_tls = \"prefer\";\ntls_min_protocol = \"TLSv1.2\";\n",
		  CLIENT_TLS_ALLOW, SERVER_TLS_PREFER, TLS1_2_VERSION },
	};
	for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++) {
		snprintf(text, sizeof(text), "%s" NODE1, kw[i].text);
		cfg = load_text(text, &path, err, sizeof(err));
		if (!cfg)
			fprintf(stderr, "    %s\n", err);
		CHECK(cfg && (int)cfg->client_tls == kw[i].client_tls &&
		      (int)cfg->server_tls == kw[i].server_tls && cfg->tls_min_protocol == kw[i].proto);
		config_unref(cfg);
		remove_file(path);
	}

	/* verify-ca with a CA; "allow" with a certificate; no client certificate for nodes */
	snprintf(text, sizeof(text), "server_tls = \"verify-ca\";\nserver_tls_ca_file = \"%s\";\n"
		 "tls_cert_file = \"%s\";\ntls_key_file = \"%s\";\n" NODE1, d.ca, d.cert, d.key);
	cfg = load_text(text, &path, err, sizeof(err));
	if (!cfg)
		fprintf(stderr, "    %s\n", err);
	REQUIRE(cfg);
	CHECK(cfg->server_tls == SERVER_TLS_VERIFY_CA);
	CHECK(cfg->client_tls == CLIENT_TLS_ALLOW);
	CHECK_STREQ(cfg->server_tls_cert_file, "");
	config_unref(cfg);
	remove_file(path);
	CHECK_STREQ(config_tls_protocol_name(0), "unknown");
	tls_dir_remove(&d);
}

TEST(test_config_tls_errors)
{
	struct tls_dir d;
	char text[1024];

	REQUIRE(tls_dir_make(&d));
	/* client_tls = "require" needs a certificate and its key */
	CHECK(expect_error("port = 6432;\nclient_tls = \"require\";\n" NODE1, 2, "client_tls",
			   "\"require\" needs tls_cert_file and tls_key_file"));
	snprintf(text, sizeof(text), "tls_cert_file = \"%s\";\n\nclient_tls = \"require\";\n" NODE1, d.cert);
	CHECK(expect_error(text, 3, "client_tls", "\"require\" needs tls_key_file"));
	snprintf(text, sizeof(text), "client_tls = \"require\";\ntls_key_file = \"%s\";\n" NODE1, d.key);
	CHECK(expect_error(text, 1, "client_tls", "\"require\" needs tls_cert_file"));
	/* with "allow" too, a certificate comes with its key */
	snprintf(text, sizeof(text), "\ntls_cert_file = \"%s\";\n" NODE1, d.cert);
	CHECK(expect_error(text, 2, "tls_cert_file", "tls_key_file is not"));
	snprintf(text, sizeof(text), "tls_key_file = \"%s\";\n" NODE1, d.key);
	CHECK(expect_error(text, 1, "tls_key_file", "tls_cert_file is not"));
	snprintf(text, sizeof(text), "tls_ca_file = \"%s\";\n" NODE1, d.ca);
	CHECK(expect_error(text, 1, "tls_ca_file", "clients cannot use TLS"));
	/* ... but with "disable" the files are unused */
	snprintf(text, sizeof(text), "client_tls = \"disable\";\ntls_cert_file = \"%s\";\n"
		 "tls_ca_file = \"%s\";\n" NODE1, d.cert, d.ca);
	{
		char err[512];
		char *path;
		struct config *cfg = load_text(text, &path, err, sizeof(err));

		if (!cfg)
			fprintf(stderr, "    %s\n", err);
		CHECK(cfg && cfg->client_tls == CLIENT_TLS_DISABLE);
		config_unref(cfg);
		remove_file(path);
	}

	/* verify-ca / verify-full need a CA */
	CHECK(expect_error("\n\nserver_tls = \"verify-full\";\n" NODE1, 3, "server_tls",
			   "\"verify-full\" needs server_tls_ca_file"));
	CHECK(expect_error("server_tls = \"verify-ca\";\nserver_tls_ca_file = \"\";\n" NODE1, 1,
			   "server_tls", "\"verify-ca\" needs server_tls_ca_file"));
	snprintf(text, sizeof(text), "server_tls_cert_file = \"%s\";\n" NODE1, d.cert);
	CHECK(expect_error(text, 1, "server_tls_cert_file", "server_tls_key_file is not"));
	snprintf(text, sizeof(text), "server_tls = \"require\";\nserver_tls_key_file = \"%s\";\n" NODE1, d.key);
	CHECK(expect_error(text, 2, "server_tls_key_file", "server_tls_cert_file is not"));

	/* bad values */
	CHECK(expect_error("client_tls = \"prefer\";\n" NODE1, 1, "client_tls",
			   "invalid value \"prefer\" (expected \"disable\", \"allow\" or \"require\")"));
	CHECK(expect_error("client_tls = true;\n" NODE1, 1, "client_tls", "expected a string"));
	CHECK(expect_error("server_tls = \"verify\";\n" NODE1, 1, "server_tls",
			   "(expected \"disable\", \"prefer\", \"require\", \"verify-ca\" or \"verify-full\")"));
	CHECK(expect_error("server_tls = \"allow\";\n" NODE1, 1, "server_tls", "invalid value \"allow\""));
	CHECK(expect_error("tls_min_protocol = \"TLSv1.4\";\n" NODE1, 1, "tls_min_protocol",
			   "(expected \"TLSv1\", \"TLSv1.1\", \"TLSv1.2\" or \"TLSv1.3\")"));
	CHECK(expect_error("tls_min_protocol = \"SSLv3\";\n" NODE1, 1, "tls_min_protocol", "invalid value"));
	CHECK(expect_error("tls_min_protocol = 1.2;\n" NODE1, 1, "tls_min_protocol", "expected a string"));
	CHECK(expect_error("tls_ciphers = \"\";\n" NODE1, 1, "tls_ciphers", "must not be empty"));
	CHECK(expect_error("tls_cert_file = 1;\n" NODE1, 1, "tls_cert_file", "expected a string"));
	CHECK(expect_error("server_tls_ca_file = [ \"a\" ];\n" NODE1, 1, "server_tls_ca_file",
			   "expected a string"));
	tls_dir_remove(&d);
}

/* Load TEXT, which must fail with exactly "CONF:LINE: SETTING: cannot read FILE: REASON". */
static int expect_unreadable(const char *text, int line, const char *setting, const char *file,
			     const char *reason)
{
	char err[512], want[512];
	char *path;
	struct config *cfg = load_text(text, &path, err, sizeof(err));
	int ok = 1;

	if (!path)
		return 0;
	snprintf(want, sizeof(want), "%s:%d: %s: cannot read %s: %s", path, line, setting, file, reason);
	if (cfg || strcmp(err, want) != 0) {
		fprintf(stderr, "    got \"%s\", wanted \"%s\"\n", cfg ? "(loaded)" : err, want);
		ok = 0;
	}
	config_unref(cfg);
	remove_file(path);
	return ok;
}

TEST(test_config_tls_unreadable)
{
	struct tls_dir d;
	char text[1024], missing[128];

	REQUIRE(tls_dir_make(&d));
	snprintf(missing, sizeof(missing), "%s/missing.pem", d.path);

	snprintf(text, sizeof(text), "tls_cert_file = \"%s\";\ntls_key_file = \"%s\";\n" NODE1,
		 missing, d.key);
	CHECK(expect_unreadable(text, 1, "tls_cert_file", missing, strerror(ENOENT)));
	snprintf(text, sizeof(text), "tls_cert_file = \"%s\";\n\ntls_key_file = \"%s\";\n" NODE1,
		 d.cert, missing);
	CHECK(expect_unreadable(text, 3, "tls_key_file", missing, strerror(ENOENT)));
	snprintf(text, sizeof(text), "server_tls = \"verify-full\";\nserver_tls_ca_file = \"%s\";\n" NODE1,
		 d.path);
	CHECK(expect_unreadable(text, 2, "server_tls_ca_file", d.path, strerror(EISDIR)));
	snprintf(text, sizeof(text), "tls_cert_file = \"%s\";\ntls_key_file = \"%s\";\n"
		 "tls_ca_file = \"%s\";\n" NODE1, d.cert, d.key, missing);
	CHECK(expect_unreadable(text, 3, "tls_ca_file", missing, strerror(ENOENT)));
	snprintf(text, sizeof(text), "server_tls_cert_file = \"%s\";\nserver_tls_key_file = \"%s\";\n" NODE1,
		 missing, d.key);
	CHECK(expect_unreadable(text, 1, "server_tls_cert_file", missing, strerror(ENOENT)));
	/* set files are checked even when that side's TLS is off */
	snprintf(text, sizeof(text), "server_tls = \"disable\";\nserver_tls_ca_file = \"%s\";\n" NODE1,
		 missing);
	CHECK(expect_unreadable(text, 2, "server_tls_ca_file", missing, strerror(ENOENT)));
	/* a key the process may not read (root reads anything: skipped then) */
	if (geteuid() != 0) {
		chmod(d.key, 0);
		snprintf(text, sizeof(text), "tls_cert_file = \"%s\";\ntls_key_file = \"%s\";\n" NODE1,
			 d.cert, d.key);
		CHECK(expect_unreadable(text, 2, "tls_key_file", d.key, strerror(EACCES)));
	}
	tls_dir_remove(&d);
}

TEST(test_config_tls_relative)
{
	struct tls_dir d;
	char err[512], want[256], missing[160];
	char *path;
	struct config *cfg;

	REQUIRE(tls_dir_make(&d));
	/* relative to the directory of the configuration file, like users_file */
	path = write_file_in(d.path,
			     "client_tls = \"require\";\n"
			     "tls_cert_file = \"cert.pem\";\n"
			     "tls_key_file = \"./key.pem\";\n"
			     "tls_ca_file = \"ca.pem\";\n"
			     "server_tls = \"verify-ca\";\n"
			     "server_tls_ca_file = \"ca.pem\";\n"
			     "server_tls_cert_file = \"cert.pem\";\n"
			     "server_tls_key_file = \"key.pem\";\n"
			     "hba_file = \"pgchorus_hba.conf\";\n" NODE1);
	REQUIRE(path);
	cfg = config_load(path, err, sizeof(err));
	if (!cfg)
		fprintf(stderr, "    %s\n", err);
	REQUIRE(cfg);
	CHECK_STREQ(cfg->tls_cert_file, d.cert);
	snprintf(want, sizeof(want), "%s/./key.pem", d.path);
	CHECK_STREQ(cfg->tls_key_file, want);
	CHECK_STREQ(cfg->tls_ca_file, d.ca);
	CHECK_STREQ(cfg->server_tls_ca_file, d.ca);
	CHECK_STREQ(cfg->server_tls_cert_file, d.cert);
	CHECK_STREQ(cfg->server_tls_key_file, d.key);
	/* the hba file is resolved, not opened: the hba module reads it */
	snprintf(want, sizeof(want), "%s/pgchorus_hba.conf", d.path);
	CHECK_STREQ(cfg->hba_file, want);
	config_unref(cfg);
	remove_file(path);

	/* an unreadable relative file is reported with its resolved path */
	path = write_file_in(d.path, "tls_cert_file = \"cert.pem\";\ntls_key_file = \"nokey.pem\";\n" NODE1);
	REQUIRE(path);
	CHECK(config_load(path, err, sizeof(err)) == NULL);
	snprintf(missing, sizeof(missing), "%s:2: tls_key_file: cannot read %s/nokey.pem: %s", path,
		 d.path, strerror(ENOENT));
	CHECK_STREQ(err, missing);
	remove_file(path);
	tls_dir_remove(&d);
}

/* Load TEXT, which must succeed; returns the snapshot (the file is removed). */
static struct config *load_ok(const char *text)
{
	char err[512];
	char *path;
	struct config *cfg = load_text(text, &path, err, sizeof(err));

	if (!cfg)
		fprintf(stderr, "    unexpected error: %s\n", err);
	remove_file(path);
	return cfg;
}

TEST(test_config_auth_sources)
{
	struct config *cfg;

	/* md5 / scram: users_file or auth_query provide the passwords */
	cfg = load_ok("auth_method = \"md5\";\n"
		      "auth_query = \"SELECT usename, passwd FROM pg_shadow WHERE usename=$1\";\n"
		      "auth_user = \"pgchorus\";\n" NODE1);
	REQUIRE(cfg);
	CHECK(cfg->auth_method == AUTH_MD5);
	CHECK_STREQ(cfg->auth_query, "SELECT usename, passwd FROM pg_shadow WHERE usename=$1");
	CHECK_STREQ(cfg->auth_user, "pgchorus");
	CHECK_STREQ(cfg->users_file, "");
	config_unref(cfg);
	cfg = load_ok("auth_method = \"scram-sha-256\";\nusers_file = \"/u\";\n"
		      "auth_query = \"SELECT usename, passwd FROM pg_shadow WHERE usename=$1\";\n"
		      "auth_user = \"pgchorus\";\n" NODE1);
	CHECK(cfg && cfg->auth_method == AUTH_SCRAM);
	config_unref(cfg);
	/* with an hba file, auth_method does not decide: no source is required here */
	cfg = load_ok("auth_method = \"scram-sha-256\";\nhba_file = \"/etc/pgchorus/hba.conf\";\n" NODE1);
	CHECK(cfg && strcmp(cfg->hba_file, "/etc/pgchorus/hba.conf") == 0);
	config_unref(cfg);
	/* auth_user alone is unused, and allowed */
	cfg = load_ok("auth_user = \"pgchorus\";\n" NODE1);
	CHECK(cfg && strcmp(cfg->auth_user, "pgchorus") == 0 && !*cfg->auth_query);
	config_unref(cfg);

	CHECK(expect_error("\nauth_method = \"scram-sha-256\";\n" NODE1, 2, "auth_method",
			   "\"scram-sha-256\" needs a users_file or an auth_query"));
	CHECK(expect_error("auth_method = \"md5\";\nauth_query = \"SELECT u, p FROM t WHERE u=$1\";\n" NODE1,
			   2, "auth_query", "needs auth_user"));
	CHECK(expect_error("auth_user = \"a\";\nauth_query = \"SELECT u, p FROM t WHERE u='x'\";\n" NODE1,
			   2, "auth_query", "must contain $1"));
	CHECK(expect_error("hba_file = 0;\n" NODE1, 1, "hba_file", "expected a string"));
	CHECK(expect_error("auth_query = [ ];\n" NODE1, 1, "auth_query", "expected a string"));
	CHECK(expect_error("auth_user = 5;\n" NODE1, 1, "auth_user", "expected a string"));
}

TEST(test_config_client_timeouts)
{
	struct config *cfg;

	cfg = load_ok("auth_timeout = 0.5;\nclient_idle_timeout = 5;\n"
		      "idle_in_transaction_timeout = 0.5;\nquery_wait_timeout = 5;\n" NODE1);
	REQUIRE(cfg);
	CHECK(cfg->auth_timeout == 0.5);
	CHECK(cfg->client_idle_timeout == 5.0);
	CHECK(cfg->idle_in_transaction_timeout == 0.5);
	CHECK(cfg->query_wait_timeout == 5.0);
	config_unref(cfg);

	cfg = load_ok("auth_timeout = 5;\nclient_idle_timeout = 0.5;\n"
		      "idle_in_transaction_timeout = 5L;\nquery_wait_timeout = 0.5;\n" NODE1);
	REQUIRE(cfg);
	CHECK(cfg->auth_timeout == 5.0);
	CHECK(cfg->client_idle_timeout == 0.5);
	CHECK(cfg->idle_in_transaction_timeout == 5.0);
	CHECK(cfg->query_wait_timeout == 0.5);
	config_unref(cfg);

	/* 0 disables */
	cfg = load_ok("auth_timeout = 0;\nclient_idle_timeout = 0.0;\n"
		      "idle_in_transaction_timeout = 0;\nquery_wait_timeout = 0;\n" NODE1);
	REQUIRE(cfg);
	CHECK(cfg->auth_timeout == 0 && cfg->client_idle_timeout == 0);
	CHECK(cfg->idle_in_transaction_timeout == 0 && cfg->query_wait_timeout == 0);
	config_unref(cfg);

	CHECK(expect_error("auth_timeout = -1;\n" NODE1, 1, "auth_timeout", "negative"));
	CHECK(expect_error("\nclient_idle_timeout = \"5\";\n" NODE1, 2, "client_idle_timeout",
			   "expected a number"));
	CHECK(expect_error("idle_in_transaction_timeout = 0.0001;\n" NODE1, 1,
			   "idle_in_transaction_timeout", "at least"));
	CHECK(expect_error("auth_timeout = 1e9;\n" NODE1, 1, "auth_timeout", "maximum"));
}

/* ------------------------------------------------------------------------ */
/* replication settings                                                      */
/* ------------------------------------------------------------------------ */

TEST(test_config_replication)
{
	char err[256];
	struct config *cfg;

	/* defaults; instance_name is derived from the port */
	cfg = load_ok("port = 7001;\n" NODE1);
	REQUIRE(cfg);
	CHECK(cfg->load_balance == LB_STATEMENT);
	CHECK(cfg->on_mismatch == MISMATCH_DETACH_MINORITY);
	CHECK_STREQ(cfg->instance_name, "p7001");
	CHECK_STREQ(cfg->resolver_user, "postgres");
	CHECK_STREQ(cfg->resolver_password, "");
	CHECK_STREQ(cfg->resolver_database, "postgres");
	CHECK(cfg->resolver_period == 10);
	CHECK(cfg->resolver_grace == 30);
	CHECK_STREQ(config_load_balance_name(cfg->load_balance), "statement");
	CHECK_STREQ(config_on_mismatch_name(cfg->on_mismatch), "detach_minority");
	config_unref(cfg);

	/* "" written in the file is derived too (from the default port) */
	cfg = load_ok("instance_name = \"\";\n" NODE1);
	REQUIRE(cfg);
	CHECK_STREQ(cfg->instance_name, "p6432");
	config_unref(cfg);

	cfg = load_ok("load_balance = \"Session\";\non_mismatch = \"abort\";\n"
		      "instance_name = \"eu_west_1\";\nresolver_user = \"chorus\";\n"
		      "resolver_password = \"s e'c\\\\ret\";\nresolver_database = \"admin db\";\n"
		      "resolver_period = 0.5;\nresolver_grace = 0;\n" NODE1);
	REQUIRE(cfg);
	CHECK(cfg->load_balance == LB_SESSION);
	CHECK(cfg->on_mismatch == MISMATCH_ABORT);
	CHECK_STREQ(cfg->instance_name, "eu_west_1");
	CHECK_STREQ(cfg->resolver_user, "chorus");
	CHECK_STREQ(cfg->resolver_password, "s e'c\\ret");
	CHECK_STREQ(cfg->resolver_database, "admin db");
	CHECK(cfg->resolver_period == 0.5);
	CHECK(cfg->resolver_grace == 0);
	CHECK_STREQ(config_load_balance_name(cfg->load_balance), "session");
	CHECK_STREQ(config_on_mismatch_name(cfg->on_mismatch), "abort");
	config_unref(cfg);

	cfg = load_ok("load_balance = \"off\";\ninstance_name = \"abcdefghij0123456789\";\n" NODE1);
	REQUIRE(cfg);
	CHECK(cfg->load_balance == LB_OFF);
	CHECK_STREQ(config_load_balance_name(cfg->load_balance), "off");
	CHECK_STREQ(cfg->instance_name, "abcdefghij0123456789");
	config_unref(cfg);

	CHECK(expect_error("load_balance = \"random\";\n" NODE1, 1, "load_balance",
			   "\"statement\", \"session\" or \"off\""));
	CHECK(expect_error("\non_mismatch = \"majority\";\n" NODE1, 2, "on_mismatch",
			   "\"detach_minority\" or \"abort\""));
	CHECK(expect_error("on_mismatch = 1;\n" NODE1, 1, "on_mismatch", "expected a string"));
	CHECK(expect_error("instance_name = \"Paris\";\n" NODE1, 1, "instance_name", "a-z, 0-9 and _"));
	CHECK(expect_error("instance_name = \"a-b\";\n" NODE1, 1, "instance_name", "invalid name"));
	CHECK(expect_error("instance_name = \"abcdefghij0123456789x\";\n" NODE1, 1, "instance_name",
			   "1 to 20"));
	CHECK(expect_error("instance_name = 7;\n" NODE1, 1, "instance_name", "expected a string"));
	CHECK(expect_error("resolver_user = \"\";\n" NODE1, 1, "resolver_user", "empty"));
	CHECK(expect_error("resolver_database = \"\";\n" NODE1, 1, "resolver_database", "empty"));
	CHECK(expect_error("resolver_password = 5;\n" NODE1, 1, "resolver_password", "expected a string"));
	CHECK(expect_error("resolver_period = 0;\n" NODE1, 1, "resolver_period", "greater than 0"));
	CHECK(expect_error("resolver_period = -1;\n" NODE1, 1, "resolver_period", "negative"));
	CHECK(expect_error("resolver_grace = -0.5;\n" NODE1, 1, "resolver_grace", "negative"));
	CHECK(expect_error("resolver_grace = \"30s\";\n" NODE1, 1, "resolver_grace", "expected a number"));

	/* instance_name needs a restart, even from derived to the same value written out */
	CHECK(reloads("port = 7001;\n" TWO_NODES, "port = 7001;\ninstance_name = \"p7001\";\n" TWO_NODES,
		      err, sizeof(err)) == 1);
	CHECK(reloads(TWO_NODES, "instance_name = \"other\";\n" TWO_NODES, err, sizeof(err)) == 0);
	CHECK(strncmp(err, "instance_name: ", 15) == 0);
	/* the others may change */
	CHECK(reloads(TWO_NODES, "load_balance = \"off\";\non_mismatch = \"abort\";\n"
		      "resolver_user = \"u\";\nresolver_password = \"p\";\nresolver_database = \"d\";\n"
		      "resolver_period = 1;\nresolver_grace = 2;\n" TWO_NODES, err, sizeof(err)) == 1);
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
