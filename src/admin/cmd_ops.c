/*
 * cmd_ops.c - admin console commands for operations (doc/admin.md):
 * SHOW VERSION, SHOW CONFIG, RELOAD, SHUTDOWN [FAST], PAUSE, RESUME.
 *
 * RELOAD and SHUTDOWN signal the process itself, so that they take the
 * same path as an administrator's kill -HUP / kill -TERM / kill -INT (the main thread's
 * signal handlers); the command returns before the reload or the shutdown
 * happens.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "pgchorus/ha.h"
#include "pgchorus/msg.h"
#include "admin-int.h"

#define COLS(a) a, (int)(sizeof(a) / sizeof(a[0]))

/* ---- SHOW VERSION --------------------------------------------------------- */

static const struct admin_col version_cols[] = {
	{ "version", ADMIN_TEXT },
};

static void show_version(struct admin_res *r, const int64_t *args)
{
	(void)args;
	admin_row_begin(r);
	admin_put_text(r, "pgchorus " PACKAGE_VERSION);
	admin_row_end(r);
}

/* ---- SHOW CONFIG ---------------------------------------------------------- */

static const struct admin_col config_cols[] = {
	{ "name", ADMIN_TEXT },
	{ "value", ADMIN_TEXT },
};

static void put_setting(struct admin_res *r, const char *name, const char *value)
{
	if (r->failed)
		return;
	admin_row_begin(r);
	admin_put_text(r, name);
	admin_put_text(r, value);
	admin_row_end(r);
}

static void put_setting_num(struct admin_res *r, const char *name, double v)
{
	char text[32];

	snprintf(text, sizeof(text), "%g", v);
	put_setting(r, name, text);
}

/* The settings in force (nodestate_config(): the main thread's snapshot,
 * which a reload replaces).  Passwords are not shown. */
static void show_config(struct admin_res *r, const int64_t *args)
{
	struct config *cfg = nodestate_config();
	const struct config *c = cfg ? cfg : r->cfg;

	(void)args;
	put_setting(r, "config_file", c->path ? c->path : "");
	put_setting(r, "mode", config_run_mode_name(c->mode));
	put_setting(r, "pool_mode", config_pool_mode_name(c->pool_mode));
	put_setting_num(r, "pool_size", c->pool_size);
	put_setting_num(r, "max_client_conn", c->max_client_conn);
	put_setting(r, "listen_addresses", c->listen_addresses);
	put_setting_num(r, "port", c->port);
	put_setting(r, "unix_socket_dir", c->unix_socket_dir);
	put_setting_num(r, "workers", c->workers);
	put_setting(r, "load_balance", config_load_balance_name(c->load_balance));
	put_setting(r, "on_mismatch", config_on_mismatch_name(c->on_mismatch));
	put_setting(r, "instance_name", c->instance_name);
	put_setting_num(r, "min_nodes", c->min_nodes);
	put_setting(r, "auth_method", config_auth_method_name(c->auth_method));
	put_setting(r, "client_tls", config_client_tls_name(c->client_tls));
	put_setting(r, "server_tls", config_server_tls_name(c->server_tls));
	put_setting_num(r, "health_check.period", c->health.period);
	put_setting_num(r, "health_check.timeout", c->health.timeout);
	put_setting_num(r, "health_check.retries", c->health.retries);
	put_setting_num(r, "health_check.retry_delay", c->health.retry_delay);
	put_setting(r, "health_check.user", c->health.user);
	put_setting(r, "health_check.database", c->health.database);
	put_setting(r, "state_file", c->state_file);
	put_setting(r, "failover_on_backend_error", c->failover_on_backend_error ? "true" : "false");
	put_setting(r, "failover_command", c->failover_command);
	put_setting(r, "failback_command", c->failback_command);
	put_setting(r, "recovery_1st_stage_command", c->recovery_1st_stage_command);
	put_setting(r, "recovery_2nd_stage_command", c->recovery_2nd_stage_command);
	put_setting_num(r, "hook_timeout", c->hook_timeout);
	put_setting_num(r, "recovery_timeout", c->recovery_timeout);
	put_setting_num(r, "recovery_pause_timeout", c->recovery_pause_timeout);
	put_setting(r, "log_level", config_log_level_name(c->log_level));
	put_setting(r, "logfile", c->logfile);
	put_setting(r, "pidfile", c->pidfile);
	put_setting(r, "control_socket", c->control_socket);
	put_setting(r, "admin_users", c->admin_users);
	put_setting_num(r, "nodes", c->n_nodes);
	if (cfg)
		config_unref(cfg);
}

/* ---- RELOAD, SHUTDOWN ----------------------------------------------------- */

static void signal_self(struct admin_res *r, int sig)
{
	if (kill(getpid(), sig) < 0)
		admin_error(r, SQLSTATE_INTERNAL, "cannot signal pgchorus");
}

static void reload(struct admin_res *r, const int64_t *args)
{
	(void)args;
	signal_self(r, SIGHUP);
}

static void shutdown_cmd(struct admin_res *r, const int64_t *args)
{
	(void)args;
	signal_self(r, SIGTERM);
}

/* As kill -INT: every connection is closed now, open transactions roll back. */
static void shutdown_fast(struct admin_res *r, const int64_t *args)
{
	(void)args;
	signal_self(r, SIGINT);
}

/* ---- PAUSE, RESUME -------------------------------------------------------- */

/* PAUSE holds one of the nested pauses of writes (rgate.c) until RESUME. */
static atomic_bool admin_paused;

static void pause_writes(struct admin_res *r, const int64_t *args)
{
	(void)args;
	if (atomic_exchange(&admin_paused, true))
		admin_notice(r, "writes were paused already");
	else
		repl_pause_writes();
	admin_notice(r, "writes paused: new write transactions wait, %d open ones go on; reads go on",
		     repl_open_writers());
}

static void resume_writes(struct admin_res *r, const int64_t *args)
{
	(void)args;
	if (!atomic_exchange(&admin_paused, false))
		admin_notice(r, "writes were not paused by PAUSE");
	else
		repl_resume_writes();
	if (repl_writes_paused())
		admin_notice(r, "writes stay paused by a recovery, attach, compare or peer instance");
}

static const struct admin_cmd ops_cmds[] = {
	{ "SHOW VERSION", "SHOW VERSION", "SHOW", COLS(version_cols), show_version },
	{ "SHOW CONFIG", "SHOW CONFIG", "SHOW", COLS(config_cols), show_config },
	{ "RELOAD", "RELOAD", "RELOAD", NULL, 0, reload },
	{ "SHUTDOWN", "SHUTDOWN", "SHUTDOWN", NULL, 0, shutdown_cmd },
	{ "SHUTDOWN FAST", "SHUTDOWN FAST", "SHUTDOWN", NULL, 0, shutdown_fast },
	{ "PAUSE", "PAUSE", "PAUSE", NULL, 0, pause_writes },
	{ "RESUME", "RESUME", "RESUME", NULL, 0, resume_writes },
};

const struct admin_cmd_set admin_cmds_ops = { ops_cmds, sizeof(ops_cmds) / sizeof(ops_cmds[0]) };
