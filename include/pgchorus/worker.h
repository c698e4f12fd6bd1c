/*
 * worker.h - event-loop threads.  Each worker owns a libuv loop, its own
 * listening sockets (SO_REUSEPORT), its clients, servers and pools.  Other
 * threads talk to a worker only through worker_post().
 */
#ifndef PGCHORUS_WORKER_H
#define PGCHORUS_WORKER_H

#include <stdatomic.h>
#include <uv.h>

#include "pgchorus/buf.h"
#include "pgchorus/classify.h"
#include "pgchorus/core-t.h"

enum inbox_kind {
	INBOX_CANCEL,         /* forward a cancel request for one of our clients */
	INBOX_CONFIG,         /* switch to a new configuration snapshot */
	INBOX_SHUTDOWN,       /* graceful: stop accepting, close clients as transactions end */
	INBOX_FAST_SHUTDOWN,  /* close everything now */
	INBOX_POOL_RELEASE,   /* close an idle server of pool `shared` if you have one */
	INBOX_POOL_ROOM,      /* pool `shared` has room: open servers for your waiters */
	INBOX_NODE_DOWN,      /* node `pid` is no longer up: sessions and pools let go of it */
	INBOX_WRITES_RESUMED, /* the pause of writes ended (rgate.c): waiting sessions go on */
	INBOX_ADMIN_SNAPSHOT, /* admin console: `snap`, key 0: fill your part; key 1: all parts are in */
};

struct admin_snapshot;

struct inbox_msg {
	struct list link;
	enum inbox_kind kind;
	uint32_t pid;
	uint32_t key;
	struct config *cfg;   /* INBOX_CONFIG: a reference the worker takes over */
	struct pool_shared *shared;
	struct admin_snapshot *snap; /* INBOX_ADMIN_SNAPSHOT (snapshot.h) */
};

enum worker_run {
	WORKER_RUNNING,
	WORKER_SHUTDOWN,
	WORKER_FAST,
};

/* Latency buckets of the unit histogram (seconds, upper bounds; then +Inf). */
#define STAT_LAT_BUCKETS 10
extern const double stat_lat_bounds[STAT_LAT_BUCKETS];

/* Per-database counters: each worker has rows for at most STAT_DBS - 1
 * databases (the first ones its pools see); the last row counts every
 * database after those, under the name STAT_DB_OTHER.  Each row has
 * counters for nodes 0 .. STAT_DB_NODES - 1 (a node beyond counts as the
 * last one). */
#define STAT_DBS 32
#define STAT_DB_NODES 16
#define STAT_DB_OTHER "(other)"
#define STAT_NODES 64

/* One (database, node) of one worker. */
struct stat_db_node {
	_Atomic uint64_t transactions;     /* server connections given back */
	_Atomic uint64_t queries;          /* Query and Execute messages relayed (pool mode) */
	_Atomic uint64_t bytes_in;         /* bytes received from its clients */
	_Atomic uint64_t bytes_out;        /* bytes sent to its clients */
	_Atomic uint64_t time_us;          /* time the transactions held their server */
	_Atomic uint64_t lat_bucket[STAT_LAT_BUCKETS + 1]; /* the same, by stat_lat_bounds */
};

struct stat_db {
	_Atomic bool used;                 /* NAME is set (release store by the worker) */
	char name[64];
	struct stat_db_node node[STAT_DB_NODES];
};

/*
 * Counters of one worker.  Only the worker writes them (stat_inc: a relaxed
 * load and store, no locked instruction); the metrics endpoint reads them
 * from the main thread with relaxed loads.
 */
struct worker_stats {
	_Atomic uint64_t clients_accepted;
	_Atomic uint64_t servers_opened;
	_Atomic uint64_t transactions;     /* server connections given back (pool mode) */
	_Atomic uint64_t pipelined;        /* statements queued behind another client's (pipeline.c) */
	_Atomic uint64_t units;            /* replication: client units answered */
	_Atomic uint64_t commits_2pc;      /* replication: COMMIT PREPARED everywhere */
	_Atomic uint64_t aborts;           /* replication: transactions rolled back by pgchorus */
	_Atomic uint64_t node_statements[64]; /* replication: units sent to each node */
	_Atomic uint64_t errors[36 * 36];  /* ErrorResponses to clients by SQLSTATE class */
	_Atomic uint64_t lat_bucket[STAT_LAT_BUCKETS + 1];
	_Atomic uint64_t lat_sum_us;
	_Atomic uint64_t node_waits[STAT_NODES];     /* clients that waited for a server of the node */
	_Atomic uint64_t node_wait_us[STAT_NODES];   /* how long, in all (when the wait ended) */
	/* Gauges of the worker's pools per node, refreshed by its janitor
	 * every second (worker_stats_gauges). */
	_Atomic uint64_t node_idle[STAT_NODES];      /* idle server connections */
	_Atomic uint64_t node_active[STAT_NODES];    /* linked to a client */
	_Atomic uint64_t node_connecting[STAT_NODES];/* connect or login in progress */
	_Atomic uint64_t node_waiting[STAT_NODES];   /* clients waiting for a server */
	struct stat_db dbs[STAT_DBS];
};

static inline void stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static inline void stat_inc(_Atomic uint64_t *c)
{
	stat_add(c, 1);
}

/* The row of DATABASE in W's per-database counters (claimed if new; the
 * STAT_DB_OTHER row when they are all taken).  Worker W's thread. */
int worker_stat_db(struct worker *w, const char *database);

/* Counters of database row DB, node NODE, of stats ST. */
static inline struct stat_db_node *stat_db_cell(struct worker_stats *st, int db, int node)
{
	if (node < 0)
		node = 0;
	return &st->dbs[db].node[node < STAT_DB_NODES ? node : STAT_DB_NODES - 1];
}

/* Add a duration of US microseconds to histogram BUCKETS (STAT_LAT_BUCKETS + 1). */
static inline void stat_lat_add(_Atomic uint64_t *buckets, uint64_t us)
{
	int b = 0;

	while (b < STAT_LAT_BUCKETS && (double)us / 1e6 > stat_lat_bounds[b])
		b++;
	stat_inc(&buckets[b]);
}

/* The SQLSTATE class of CODE ("23505" -> index of "23"), -1 if not [0-9A-Z]{2}. */
static inline int stat_class_index(const char *code)
{
	int v = 0;

	for (int i = 0; i < 2; i++) {
		char ch = code ? code[i] : 0;

		if (ch >= '0' && ch <= '9')
			v = v * 36 + (ch - '0');
		else if (ch >= 'A' && ch <= 'Z')
			v = v * 36 + (ch - 'A' + 10);
		else
			return -1;
	}
	return v;
}

struct listener {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} u;
	struct worker *w;
	bool is_tcp;
	bool open;
};

struct worker {
	int id;
	uv_loop_t loop;
	uv_thread_t thread;
	uv_async_t async;
	uv_mutex_t inbox_lock;
	struct list inbox;
	bool stopped;                    /* INBOX_LOCK: the loop ended, nothing more is handled */
	uv_timer_t janitor;
	struct list corks;               /* corked streams (stream.h), written before the loop polls */
	uv_prepare_t cork_prepare;       /* ...corked by timers and other callbacks before the poll */
	uv_check_t cork_check;           /* ...corked by the I/O callbacks of the poll */
	struct config *cfg;              /* current snapshot (own reference) */
	int *listen_fds;                 /* handed over by the main thread */
	int n_listen_fds;
	struct listener *listeners;
	struct list clients;
	int n_clients;
	struct strmap pools;             /* "database\x01user\x01node" -> struct pool */
	struct u64map cancel_keys;       /* client->cancel_pid -> struct client */
	struct bufpool bp;
	struct strmap strings;           /* shared strings of its clients (intern.h) */
	struct strmap scram_keys;        /* user -> struct scram_secret with ClientKey */
	uint32_t next_pid;
	enum worker_run run;
	uint64_t shutdown_started;
	int open_handles;                /* clients + servers + cancel connections */
	struct worker_stats stats;
	struct classify_cache classify;  /* replication mode: statement classes by text */
	struct list order_waiters;       /* replication mode: sessions waiting for commits (corder.h) */
	struct list gate_waiters;        /* replication mode: sessions waiting for the pause of writes to end */
};

/* Process-wide state shared by workers; written only before workers start,
 * except the atomics. */
struct runtime {
	int n_workers;
	struct worker *workers;
	atomic_int n_clients;            /* for max_client_conn */
};

extern struct runtime pgc_runtime;

/*
 * Create cfg->workers workers; LISTEN_FDS[i] (N_FDS each, malloc'd) are the
 * sockets worker i listens on, owned by the worker afterwards.  ON_EXIT (an
 * async handle of the caller's loop) is signalled whenever a worker ends.
 * Returns 0 or -errno.
 */
int workers_start(struct config *cfg, int **listen_fds, int n_fds, uv_async_t *on_exit);
/* Workers whose loop has not ended yet. */
int workers_running_count(void);
/* Wait for every worker thread to exit. */
void workers_join(void);
/* Post a message to worker W (thread safe; MSG is freed by the worker).
 * A worker that has stopped drops it at once (an admin snapshot request
 * is counted as answered: admin_snapshot_dropped). */
void worker_post(struct worker *w, struct inbox_msg *msg);
void workers_broadcast(enum inbox_kind kind, struct config *cfg);
/* Post KIND with PID and KEY to worker W (false: out of memory), or to every worker. */
bool worker_post_kind(struct worker *w, enum inbox_kind kind, uint32_t pid, uint32_t key);
void workers_post_kind(enum inbox_kind kind, uint32_t pid, uint32_t key);

struct scram_secret;
/* Remember (copy) the SCRAM keys a client of USER proved; for node logins. */
void worker_remember_scram_keys(struct worker *w, const char *user, const struct scram_secret *keys);
const struct scram_secret *worker_scram_keys(const struct worker *w, const char *user);

/* Post KIND about pool SHARED to every worker but W. */
void workers_post_pool(struct worker *w, enum inbox_kind kind, struct pool_shared *shared);
/* Loop time in milliseconds. */
static inline uint64_t worker_now(struct worker *w) { return uv_now(&w->loop); }

#endif
