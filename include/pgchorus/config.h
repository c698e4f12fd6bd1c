/*
 * config.h - pgchorus configuration: a libconfig file turned into a validated,
 * immutable, reference-counted snapshot.
 *
 * A snapshot is never modified after config_load() returns it.  Workers hold
 * a reference to the snapshot they run with; a reload (SIGHUP) builds a new
 * snapshot and hands it to every worker, which drops its old reference.
 */
#ifndef PGCHORUS_CONFIG_H
#define PGCHORUS_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PGC_MAX_NODES 64

enum pool_mode {
	POOL_MODE_SESSION,
	POOL_MODE_TRANSACTION,
};

enum run_mode {
	RUN_MODE_POOL,        /* single node (or first node) pooling */
	RUN_MODE_REPLICATION, /* issue 4: statement broadcast with 2PC */
};

enum auth_method {
	AUTH_TRUST,
	AUTH_MD5,
	AUTH_SCRAM,
};

enum log_level {
	LOG_LVL_ERROR,
	LOG_LVL_WARNING,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

struct cfg_node {
	int id;            /* position in the nodes list, from 0 */
	char *host;        /* hostname, IP address or unix socket directory (starts with '/') */
	int port;
	double weight;     /* load-balancing weight (issue 4), >= 0 */
	char *data_dir;    /* optional, used by recovery and hooks (issue 6); NULL if unset */
};

struct config {
	_Atomic int refcnt;         /* use config_ref/config_unref */
	char *path;                 /* file this snapshot was read from */

	/* listening */
	char *listen_addresses;     /* comma separated; "*" = all IPv4; "" = no TCP */
	int port;
	char *unix_socket_dir;      /* "" = no unix socket */
	int unix_socket_mode;       /* octal permission bits, default 0777 */
	int workers;                /* resolved: never 0 (0 in the file = number of cores) */

	/* pooling */
	enum run_mode mode;
	enum pool_mode pool_mode;
	int pool_size;              /* per (database, user, node) */
	int max_client_conn;
	char *server_reset_query;   /* session mode; "" = none */
	int max_prepared_statements;/* per server connection cache (transaction mode) */
	char **ignore_startup_parameters; /* NULL terminated */
	int n_ignore_startup_parameters;

	/* timeouts, in seconds (0 = disabled) */
	double query_wait_timeout;
	double server_connect_timeout;
	double server_idle_timeout;
	double server_lifetime;
	double shutdown_timeout;

	/* limits */
	uint32_t max_message_size;  /* bytes, data messages */
	uint32_t max_startup_size;  /* bytes, before authentication */

	/* authentication (issue 3 completes) */
	enum auth_method auth_method;
	char *users_file;           /* resolved relative to the config file's directory */

	/* operations */
	char *control_socket;       /* "" = none */
	char *logfile;              /* "" = stderr */
	char *pidfile;              /* "" = none */
	enum log_level log_level;

	/* backend nodes */
	int n_nodes;
	struct cfg_node *nodes;
};

/*
 * Parse and validate FILE.  On success returns a snapshot with refcnt 1.
 * On failure returns NULL and writes a message "FILE:LINE: setting: problem"
 * into err (size errlen).
 */
struct config *config_load(const char *path, char *err, size_t errlen);

/* Take / drop a reference (thread safe).  The last unref frees everything. */
struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/*
 * Settings that cannot change on reload (listen_addresses, port,
 * unix_socket_dir, unix_socket_mode, workers, mode, the number of nodes and
 * each node's host/port, control_socket, pidfile, logfile).
 * Returns true if NEW may replace OLD at run time; otherwise false with a
 * message naming the first setting that differs.
 */
bool config_reload_compatible(const struct config *old, const struct config *new_cfg,
			      char *err, size_t errlen);

/* true if NAME is listed in ignore_startup_parameters (case-insensitive). */
bool config_ignores_startup_param(const struct config *cfg, const char *name);

/* The spelling used in the configuration file, e.g. "transaction". */
const char *config_pool_mode_name(enum pool_mode m);
const char *config_auth_method_name(enum auth_method m);
const char *config_run_mode_name(enum run_mode m);
const char *config_log_level_name(enum log_level l);

#endif
