/*
 * core-t.h - types shared by the worker, client, server and pool modules.
 * Types only; functions live in worker.h, client.h, server.h, pool.h.
 *
 * Ownership: a worker owns its event loop and every client, server and
 * pool created on it; nothing here is touched by another thread.  Threads
 * talk to a worker only through its inbox (worker_post).
 */
#ifndef PGCHORUS_CORE_T_H
#define PGCHORUS_CORE_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "pgchorus/buf.h"
#include "pgchorus/config.h"
#include "pgchorus/hmap.h"
#include "pgchorus/list.h"
#include "pgchorus/params.h"
#include "pgchorus/restrack.h"
#include "pgchorus/stream.h"
#include "pgchorus/tls.h"

/* Parameters the server reports (GUC_REPORT) that a client may change and
 * that pgchorus carries from one server connection to the next. */
enum tracked_param {
	TP_CLIENT_ENCODING,
	TP_DATESTYLE,
	TP_TIMEZONE,
	TP_INTERVALSTYLE,
	TP_STANDARD_CONFORMING_STRINGS,
	TP_APPLICATION_NAME,
	TP_COUNT,
};

enum client_state {
	CL_STARTUP,     /* reading the startup packet */
	CL_AUTH,        /* password / SASL exchange in progress */
	CL_LOGIN_WAIT,  /* authenticated; waiting for a server to complete the login */
	CL_LOGIN,       /* server linked; applying startup parameters */
	CL_IDLE,        /* logged in, holds no server */
	CL_WAIT,        /* has a message to send, waiting for a server */
	CL_ACTIVE,      /* linked to a server */
	CL_PIPED,       /* its statement was sent behind another client's on a server (pipeline.c) */
	CL_CLOSING,     /* handle closing; freed in the close callback */
};

enum server_state {
	SV_CONNECTING,  /* TCP / unix connect in progress */
	SV_LOGIN,       /* startup sent, waiting for ReadyForQuery */
	SV_IDLE,        /* in the pool's idle list */
	SV_ACTIVE,      /* linked to a client */
	SV_RESET,       /* running server_reset_query before going idle */
	SV_CLOSING,
};

#define POOL_LOGIN_CACHE 8

struct worker;
struct pool;
struct server;
struct rsess;
struct admin_session;

/* A protocol-level prepared statement the client created (transaction pooling). */
struct client_stmt {
	uint64_t hash;          /* of the Parse body after the name: query + parameter types */
	uint32_t body_len;
	uint8_t pipe_safe;      /* pipeline.c: 0 not known yet, 1 may be pipelined, 2 may not */
	uint8_t body[];         /* Parse body after the statement name */
};

struct client {
	struct pstream ps;               /* must be first */
	struct worker *w;
	enum client_state state;
	struct list link;                /* worker->clients */
	struct list wait_link;           /* pool->waiters while waiting */
	uint64_t wait_since;             /* loop time (ms) when it started waiting */
	uint64_t state_since;
	uint64_t last_active;            /* loop time (ms) of the last bytes received */
	uint64_t stat_bytes_out;         /* the part of ps.bytes_out counted in the database stats */
	uint64_t connected_at;
	struct iobuf in;
	struct buf scratch;              /* messages pgchorus writes to this client */
	struct pool *pool;               /* pool of the node the client's queries go to */
	struct server *srv;              /* linked server, CL_LOGIN / CL_ACTIVE */
	/* Shared copies (intern.h, the worker's strings): set with client_set_param
	 * and client_intern, never freed directly. */
	const char *user;
	const char *database;
	char addr[64];
	const char *params[TP_COUNT];    /* values the client believes are set */
	const char *login_sig;           /* tracked startup parameters, for the login cache */
	uint32_t cancel_pid;
	uint32_t cancel_key;
	uint32_t fwd_remaining;          /* bytes of a message being passed through */
	bool reading;
	bool close_when_idle;            /* graceful shutdown: close at the next transaction end */
	bool txn_pooling;                /* pool_mode was "transaction" when it logged in */
	bool track_statements;           /* transaction pooling: map prepared statement names */
	bool local_batch;                /* messages since the last Sync were all answered locally */
	bool is_unix;                    /* connected through the unix socket */
	bool over_limit;                 /* accepted beyond max_client_conn */
	bool ssl_requested;              /* SSLRequest already answered */
	bool gss_requested;              /* GSSENCRequest already answered */
	bool fwd_drop;                   /* the rest of the message (fwd_remaining) is dropped */
	bool cancel_pending;             /* a cancel came while CL_PIPED: sent when its statement runs */
	union {                          /* TCP peer address (hba); 28 bytes, not a sockaddr_storage's 128 */
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} peer;
	struct client_auth *auth;        /* during CL_AUTH */
	struct auth_lookup *auth_lookup; /* auth_query in flight */
	int auth_method_pending;         /* enum hba_method while auth_query runs */
	struct strmap stmts;             /* name -> struct client_stmt */
	struct rsess *rs;                /* replication mode: the session (rsess.h) */
	struct admin_session *admin;     /* the admin console (admin.h), answered by pgchorus */
};

struct server {
	struct pstream ps;               /* must be first */
	struct worker *w;
	struct pool *pool;
	enum server_state state;
	struct list link;                /* pool->idle or pool->busy */
	uint64_t created;                /* loop time (ms) */
	uint64_t state_since;
	struct iobuf in;
	struct buf scratch;              /* messages pgchorus writes to this server */
	struct client *client;           /* SV_ACTIVE; NULL there only while answering a client that left (pipeline.c) */
	/* pipeline.c: clients whose statement was sent behind the current one,
	 * in order; a NULL entry is a client that left (its answer is dropped). */
	struct client *piped[PIPELINE_DEPTH_MAX - 1];
	uint8_t n_piped;
	bool pipe_ok;                    /* the client runs one autocommit statement: others may queue */
	struct restrack rt;
	uint32_t be_pid;
	uint32_t be_key;
	char txn_status;                 /* of the last ReadyForQuery: 'I', 'T' or 'E' */
	uint32_t fwd_remaining;          /* bytes of a response still passing through */
	bool fwd_drop;                   /* ... and whether they are swallowed */
	bool reading;
	bool close_on_release;
	const char *params[TP_COUNT];    /* values the server reported (point into all_params) */
	struct param_list all_params;    /* every ParameterStatus seen, for client login */
	struct u64map stmts;             /* prepared statement hash -> STMT_SENT / STMT_READY */
	struct pending_parse {
		uint64_t hash;
		uint32_t sync_no;        /* rt.syncs_queued when the Parse was sent */
	} *pending;                      /* named Parses awaiting ParseComplete, FIFO */
	uint32_t n_pending;
	uint32_t cap_pending;
	struct tls_ctx *tls_ctx;          /* TLS to the node, if server_tls asks for it */
	struct scram_client *scram;      /* during a SCRAM login to the node */
	uv_connect_t creq;
};

/* What the workers' pools of one (database, user, node) share: the
 * pool_size limit counts servers of every worker. */
struct pool_shared {
	atomic_int n_servers;            /* all workers, all states */
	atomic_int n_waiting;            /* clients waiting, all workers */
	atomic_int n_starved;            /* workers whose waiters cannot get a server: pool_size reached */
	char key[];
};

struct pool {
	struct worker *w;
	struct pool_shared *shared;
	char *database;
	char *user;
	int node;
	struct list idle;                /* struct server, most recently used first */
	struct list busy;                /* struct server in any other state */
	struct list waiters;             /* struct client, FIFO */
	struct u64map valid_stmts;       /* statement hashes some server prepared successfully */
	struct login_cache {
		char *sig;               /* the client's tracked startup parameters */
		struct param_list params;/* what a server reported after applying them */
	} login_cache[POOL_LOGIN_CACHE];
	int n_login_cache;
	int n_servers;                   /* all states */
	int n_connecting;                /* SV_CONNECTING + SV_LOGIN */
	int n_waiting;                   /* length of waiters */
	bool starved;                    /* waiters beyond what pool_size lets us open */
	int stat_db;                     /* its database's row of the worker's stats (worker_stat_db) */
};

#endif
