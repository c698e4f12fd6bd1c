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
#define PGC_MAX_PEERS 16
/* pipeline_depth: at most this many clients' statements queued on one server */
#define PIPELINE_DEPTH_MAX 32

enum pool_mode {
	POOL_MODE_SESSION,
	POOL_MODE_TRANSACTION,
};

enum run_mode {
	RUN_MODE_POOL,        /* single node (or first node) pooling */
	RUN_MODE_REPLICATION, /* issue 4: statement broadcast with 2PC */
};

/* Where reads go in replication mode (issue 4). */
enum load_balance {
	LB_OFF,        /* every read goes to the primary */
	LB_STATEMENT,  /* each read outside a transaction picks a node by weight */
	LB_SESSION,    /* a client session picks its read node once */
};

/* What a replicated write does when the nodes disagree on its outcome. */
enum on_mismatch {
	MISMATCH_DETACH_MINORITY, /* detach the nodes that disagree with the majority (primary wins a tie) */
	MISMATCH_ABORT,           /* abort the transaction on every node */
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

/* TLS between clients and pgchorus (client_tls). */
enum client_tls_mode {
	CLIENT_TLS_DISABLE, /* SSLRequest is answered 'N' */
	CLIENT_TLS_ALLOW,   /* TLS if the client asks and a certificate is configured */
	CLIENT_TLS_REQUIRE, /* clients that do not use TLS are refused */
};

/* TLS between pgchorus and the nodes (server_tls), as libpq's sslmode. */
enum server_tls_mode {
	SERVER_TLS_DISABLE,
	SERVER_TLS_PREFER,      /* TLS if the node accepts it, plain otherwise */
	SERVER_TLS_REQUIRE,     /* TLS, the node's certificate is not checked */
	SERVER_TLS_VERIFY_CA,   /* TLS, certificate signed by server_tls_ca_file */
	SERVER_TLS_VERIFY_FULL, /* as VERIFY_CA, and the name matches the node's host */
};

struct cfg_node {
	int id;            /* position in the nodes list, from 0 */
	char *host;        /* hostname, IP address or unix socket directory (starts with '/') */
	int port;
	double weight;     /* load-balancing weight (issue 4), >= 0 */
	char *data_dir;    /* optional, used by recovery and hooks (issue 6); NULL if unset */
	char *ssh_host;    /* optional: recovery runs its commands there with ssh (a remote node); NULL if unset */
};

/* peers = ( { host; port; virtual_ip; } ... ): other pgchorus instances (doc/heartbeat.md) */
struct cfg_peer {
	char *host;        /* IPv4 or IPv6 address or host name */
	int port;          /* its heartbeat_port */
	char *virtual_ip;  /* "" = none; the %v of escalation_command */
};

/* health_check = { ... } (doc/failover.md) */
struct cfg_health {
	double period;      /* seconds between checks of a node; 0 = no health checks */
	double timeout;     /* a check (connect + SELECT 1) that takes longer fails */
	int retries;        /* failed checks retried this many times before the node is detached */
	double retry_delay; /* seconds between those retries */
	char *user;         /* "" = resolver_user */
	char *password;     /* "" = resolver_password */
	char *database;     /* "" = resolver_database */
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
	int pipeline_depth;         /* clients' statements queued on one server (1 = off; pipeline.c) */
	int max_client_conn;
	char *server_reset_query;   /* session mode; "" = none */
	int max_prepared_statements;/* per server connection cache (transaction mode) */
	char **ignore_startup_parameters; /* NULL terminated */
	int n_ignore_startup_parameters;
	char **volatile_functions;        /* replication: results differ per node (NULL terminated) */
	char **writing_functions;         /* replication: a SELECT calling one writes (NULL terminated) */
	char **immutable_functions;       /* replication: declared deterministic (NULL terminated) */

	/*
	 * replication mode (doc/replication.md).  instance_name is never "":
	 * the file's value or "p<port>".  The resolver of prepared transactions
	 * connects to every node as resolver_user (a superuser, or the owner of
	 * every replicated table's transactions) to resolver_database.
	 */
	enum load_balance load_balance;
	enum on_mismatch on_mismatch;
	char *instance_name;        /* [a-z0-9_]{1,20}, the gid prefix pgc_<instance>_ */
	char *resolver_user;
	char *resolver_password;    /* "" = none (trust, .pgpass, PGPASSWORD) */
	char *resolver_database;
	double resolver_period;     /* seconds between resolver runs, > 0 */
	double resolver_grace;      /* a running boot's prepared transaction is resolved when older */

	/* timeouts, in seconds (0 = disabled) */
	double auth_timeout;        /* startup + authentication of a client */
	double client_idle_timeout; /* client idle outside a transaction */
	double idle_in_transaction_timeout; /* client silent inside a transaction */
	double query_wait_timeout;
	double server_connect_timeout;
	double server_idle_timeout;
	double server_lifetime;
	double shutdown_timeout;

	/* limits */
	uint32_t max_message_size;  /* bytes, data messages */
	uint32_t max_startup_size;  /* bytes, every client message before authentication */

	/*
	 * authentication (issue 3 completes).  Every file path in this snapshot
	 * that was written relative is resolved against the directory of the
	 * configuration file; "" = unset.
	 */
	enum auth_method auth_method; /* for every client when hba_file is "" */
	char *users_file;
	char *hba_file;             /* "" = no hba file */
	char *auth_query;           /* "" = none; otherwise contains $1 (the user name) */
	char *auth_user;            /* runs auth_query; "" only if auth_query is "" too */

	/*
	 * TLS, client side.  The files were readable when the snapshot was
	 * built; the TLS module reads them (again on every reload).
	 * tls_cert_file and tls_key_file are both set or both "".
	 */
	enum client_tls_mode client_tls;
	char *tls_cert_file;
	char *tls_key_file;
	char *tls_ca_file;          /* verifies client certificates; "" = none asked for */
	char *tls_ciphers;          /* OpenSSL cipher list (TLS <= 1.2), never "" */
	int tls_min_protocol;       /* OpenSSL constant for SSL_CTX_set_min_proto_version:
				       TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION or
				       TLS1_3_VERSION; used for clients and nodes */

	/*
	 * TLS, pgchorus -> nodes.  server_tls_ca_file is set if server_tls is
	 * VERIFY_CA or VERIFY_FULL; server_tls_cert_file and server_tls_key_file
	 * are both set or both "".
	 */
	enum server_tls_mode server_tls;
	char *server_tls_ca_file;
	char *server_tls_cert_file;
	char *server_tls_key_file;

	/* failure handling (doc/failover.md) */
	struct cfg_health health;
	char *state_file;           /* node states kept across restarts; "" = not kept */
	int min_nodes;              /* writes are refused (25006) when fewer nodes are up */
	bool failover_on_backend_error; /* a data connection's failure detaches its node */
	char *failover_command;     /* hook scripts, "" = none; placeholders %d %h %p %D %m %H %P %R %% */
	char *failback_command;
	char *recovery_1st_stage_command; /* "" = built in (pg_basebackup + start as a standby) */
	char *recovery_2nd_stage_command; /* "" = built in (promote) */
	double hook_timeout;        /* a hook script running longer is killed */
	double recovery_timeout;    /* stage 1 (copy and catch up) may take this long */
	double recovery_pause_timeout; /* stage 2 waits this long for open write transactions */
	char *recovery_user;        /* replication connection of pg_basebackup; "" = resolver_user */
	char *pg_bindir;            /* pg_basebackup, pg_ctl: "" = found with pg_config or PATH */
	char *admin_users;          /* comma separated: may use the admin console (database pgchorus) */

	/* heartbeat between pgchorus instances (doc/heartbeat.md) */
	int heartbeat_port;         /* UDP; 0 = no heartbeat */
	char *heartbeat_address;    /* bound; "" = every IPv4 address */
	double heartbeat_interval;  /* seconds between heartbeats sent to each peer */
	double heartbeat_deadtime;  /* a peer silent this long is dead */
	char *heartbeat_secret;     /* HMAC-SHA256 key of the heartbeats; "" = not authenticated */
	char *escalation_command;   /* a peer died; placeholders %n %h %p %v %% */
	char *de_escalation_command;/* a dead peer is heard again / shutdown */
	int n_peers;
	struct cfg_peer *peers;

	/* operations */
	int metrics_port;           /* Prometheus metrics over HTTP on listen_addresses; 0 = none */
	char *control_socket;       /* "" = none */
	char *logfile;              /* "" = stderr */
	char *pidfile;              /* "" = none */
	enum log_level log_level;

	/* backend nodes */
	int n_nodes;
	struct cfg_node *nodes;

	/*
	 * Derived from the settings above by the main thread before the snapshot
	 * is published (src/core/runtime.c): loaded files and TLS contexts, so
	 * that a reload swaps all of them at once.  Released through
	 * release_derived when the last reference goes.
	 */
	struct tls_ctx *tls_server;  /* clients -> pgchorus; NULL = no TLS offered */
	struct tls_ctx *tls_client;  /* pgchorus -> nodes; NULL = server_tls disable */
	struct users *users;         /* users_file, NULL if none */
	struct hba *hba;             /* hba_file, NULL if none */
	void (*release_derived)(struct config *cfg);
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
 * each node's host/port, control_socket, pidfile, logfile, heartbeat_port,
 * heartbeat_address, peers).
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
const char *config_load_balance_name(enum load_balance m);
const char *config_on_mismatch_name(enum on_mismatch m);
const char *config_client_tls_name(enum client_tls_mode m);
const char *config_server_tls_name(enum server_tls_mode m);
/* "TLSv1.2" for TLS1_2_VERSION etc.; "unknown" for anything else. */
const char *config_tls_protocol_name(int version);

#endif
