/*
 * resolver.c - replication mode's two-phase-commit bookkeeping at run time
 * (contracts in resolver.h; doc/replication.md, "Atomic commit").
 *
 * The data path takes gids with resolver_gid_begin() on worker threads: an
 * atomic counter and the in-flight set (its own short lock), nothing else,
 * so a worker never waits for the resolver.  The resolver itself is blocking
 * libpq (src/repl/twopc.c): once in the main thread at start-up, then in a
 * thread of its own that sleeps on a condition variable between runs, so that
 * resolver_kick() and resolver_stop() wake it at once.
 *
 * "Ensure" below is making sure that every database of every reachable node
 * has the decision table: template1 included, so that databases created later
 * have it from their start; it is repeated every ENSURE_EVERY runs for the
 * databases created from template0 meanwhile.
 *
 * Owns: the boot number and gid counter, the in-flight set, a private copy
 * of the settings it needs (never a pointer into a config snapshot), the
 * thread.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "pgchorus/buf.h"
#include "pgchorus/log.h"
#include "pgchorus/metrics.h"
#include "pgchorus/node.h"
#include "pgchorus/resolver.h"
#include "pgchorus/ship.h"
#include "pgchorus/twopc.h"

/* Databases whose sequences the sweep looks at, at most this many at a time. */
#define SEQ_DIRTY_MAX 64

/* Every ENSURE_EVERY periodic runs, the decision table is created in new databases. */
#define ENSURE_EVERY 10

/* Added to every connection string: no run may hang on a node for long. */
#define CONN_OPTIONS "connect_timeout=5 keepalives=1 keepalives_idle=10 keepalives_interval=5 " \
	"keepalives_count=3 fallback_application_name=pgchorus_resolver"
#define SESSION_SETUP \
	"SET statement_timeout = '30s'; SET lock_timeout = '10s'; SET client_min_messages = warning"

/* A peer instance declared dead by the heartbeat: its gids are resolved here. */
struct dead_peer {
	char instance[TWOPC_INSTANCE_MAX + 1];
	uint64_t boot;
};

/* What a run needs from a configuration snapshot, copied. */
struct settings {
	int n;
	struct twopc_node *nodes; /* conninfo to resolver_database */
	char **node_conn_base;    /* conninfo without dbname, to reach other databases */
	char *database;           /* resolver_database */
	double period, grace;
};

static struct {
	atomic_bool started;      /* resolver_start() set up the fields below */
	char instance[TWOPC_INSTANCE_MAX + 1];
	uint64_t boot;
	atomic_uint_fast64_t counter;
	struct twopc_inflight *inflight;

	pthread_mutex_t lock;     /* protects the fields below */
	pthread_cond_t wake;      /* CLOCK_MONOTONIC */
	bool stop, kicked;
	struct settings *next;    /* from resolver_reload(), taken by the thread */
	bool thread_running;
	pthread_t thread;
	struct settings *set;     /* the thread's own (the main thread's before it starts) */
	char *seq_dirty[SEQ_DIRTY_MAX]; /* databases where shipped writes moved sequences */
	int n_seq_dirty;
	struct dead_peer dead[PGC_MAX_PEERS]; /* resolver_peer_dead() */
	int n_dead;
} R = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- connection strings ----------------------------------------------------- */

/* Append " KEY='VALUE'" to *BUF (*LEN used, *CAP allocated).  false when out of memory. */
static bool put_kv(char **buf, size_t *len, size_t *cap, const char *key, const char *value)
{
	size_t need = *len + strlen(key) + 2 * strlen(value) + 5;
	char *p;

	if (need > *cap) {
		size_t c = need * 2;

		p = realloc(*buf, c);
		if (!p)
			return false;
		*buf = p;
		*cap = c;
	}
	p = *buf + *len;
	p += sprintf(p, "%s%s='", *len ? " " : "", key);
	/* libpq's quoting: inside '...', a backslash escapes ' and \ */
	for (const char *v = value; *v; v++) {
		if (*v == '\'' || *v == '\\')
			*p++ = '\\';
		*p++ = *v;
	}
	*p++ = '\'';
	*p = '\0';
	*len = (size_t)(p - *buf);
	return true;
}

/*
 * The connection string of NODE as the resolver user, to DBNAME (NULL: none
 * written).  TLS as server_tls says.  Malloc'ed; NULL when out of memory.
 */
static char *node_conninfo(const struct config *cfg, const struct cfg_node *node, const char *dbname)
{
	char *buf = NULL, port[16];
	size_t len = 0, cap = 0;
	bool ok;

	snprintf(port, sizeof(port), "%d", node->port);
	ok = put_kv(&buf, &len, &cap, "host", node->host) && put_kv(&buf, &len, &cap, "port", port) &&
		put_kv(&buf, &len, &cap, "user", cfg->resolver_user) &&
		(!*cfg->resolver_password || put_kv(&buf, &len, &cap, "password", cfg->resolver_password)) &&
		(!dbname || put_kv(&buf, &len, &cap, "dbname", dbname)) &&
		put_kv(&buf, &len, &cap, "sslmode", config_server_tls_name(cfg->server_tls)) &&
		(!*cfg->server_tls_ca_file || put_kv(&buf, &len, &cap, "sslrootcert", cfg->server_tls_ca_file)) &&
		(!*cfg->server_tls_cert_file || put_kv(&buf, &len, &cap, "sslcert", cfg->server_tls_cert_file)) &&
		(!*cfg->server_tls_key_file || put_kv(&buf, &len, &cap, "sslkey", cfg->server_tls_key_file));
	if (ok) {
		char *all = malloc(len + sizeof(CONN_OPTIONS) + 1);

		if (all)
			sprintf(all, "%s " CONN_OPTIONS, buf);
		free(buf);
		return all;
	}
	free(buf);
	return NULL;
}

/* With DBNAME appended to BASE (node_conninfo() without a dbname).  Malloc'ed or NULL. */
static char *conninfo_with_db(const char *base, const char *dbname)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	char *all;

	if (!put_kv(&buf, &len, &cap, "dbname", dbname))
		return NULL;
	all = malloc(strlen(base) + 1 + len + 1);
	if (all)
		sprintf(all, "%s %s", base, buf);
	free(buf);
	return all;
}

static void settings_free(struct settings *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++) {
		free((char *)s->nodes[i].conninfo);
		free(s->node_conn_base[i]);
	}
	free(s->nodes);
	free(s->node_conn_base);
	free(s->database);
	free(s);
}

static struct settings *settings_new(const struct config *cfg)
{
	struct settings *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->nodes = calloc((size_t)cfg->n_nodes, sizeof(*s->nodes));
	s->node_conn_base = calloc((size_t)cfg->n_nodes, sizeof(*s->node_conn_base));
	s->database = strdup(cfg->resolver_database);
	if (!s->nodes || !s->node_conn_base || !s->database)
		goto oom;
	for (int i = 0; i < cfg->n_nodes; i++) {
		s->n = i + 1; /* so that settings_free() frees what was made */
		s->nodes[i].id = cfg->nodes[i].id;
		s->node_conn_base[i] = node_conninfo(cfg, &cfg->nodes[i], NULL);
		s->nodes[i].conninfo = node_conninfo(cfg, &cfg->nodes[i], cfg->resolver_database);
		if (!s->node_conn_base[i] || !s->nodes[i].conninfo)
			goto oom;
	}
	s->period = cfg->resolver_period;
	s->grace = cfg->resolver_grace;
	return s;
oom:
	settings_free(s);
	return NULL;
}

/* ---- ensure: the decision table in every database ----------------------------------- */

/* The last error of CONN (or RES), one line. */
static const char *one_line(PGconn *conn, const PGresult *res, char *buf, size_t n)
{
	const char *msg = res ? PQresultErrorMessage(res) : NULL;

	if (!msg || !*msg)
		msg = PQerrorMessage(conn);
	snprintf(buf, n, "%s", msg && *msg ? msg : "unknown error");
	for (char *p = buf; *p; p++) {
		if (*p == '\n')
			*p = *(p + 1) ? ' ' : '\0';
	}
	return buf;
}

static PGconn *connect_logged(int node_id, const char *conninfo, const char *dbname)
{
	PGconn *conn = PQconnectdb(conninfo);
	PGresult *res;
	char ebuf[512];

	if (!conn) {
		log_warning("resolver: node %d: out of memory", node_id);
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		log_warning("resolver: node %d: cannot connect to database %s: %s", node_id, dbname,
			one_line(conn, NULL, ebuf, sizeof(ebuf)));
		PQfinish(conn);
		return NULL;
	}
	res = PQexec(conn, SESSION_SETUP);
	PQclear(res);
	return conn;
}

static void ensure_db(int node_id, PGconn *conn, const char *dbname)
{
	PGresult *res = PQexec(conn, twopc_decisions_ddl());
	char ebuf[512];

	if (PQresultStatus(res) == PGRES_COMMAND_OK)
		log_debug("resolver: node %d: pgchorus.decisions ready in database %s", node_id, dbname);
	else
		log_warning("resolver: node %d: cannot create pgchorus.decisions in database %s: %s", node_id,
			dbname, one_line(conn, res, ebuf, sizeof(ebuf)));
	PQclear(res);
}

/* The decision table in every database of every reachable node; failures are logged and skipped. */
static void ensure_all(const struct settings *s)
{
	char ebuf[512];

	for (int k = 0; k < s->n; k++) {
		int id = s->nodes[k].id;
		PGconn *base;
		PGresult *dbs;
		const char *base_db;

		if (node_get(id) && atomic_load(&node_get(id)->state) != NODE_UP)
			continue; /* out of service: it gets the table when it is recovered from a node that has it */
		base = connect_logged(id, s->nodes[k].conninfo, s->database);
		if (!base)
			continue;
		base_db = PQdb(base);
		dbs = PQexec(base, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname");
		if (PQresultStatus(dbs) != PGRES_TUPLES_OK) {
			log_warning("resolver: node %d: cannot list databases: %s", id,
				one_line(base, dbs, ebuf, sizeof(ebuf)));
			PQclear(dbs);
			PQfinish(base);
			continue;
		}
		for (int i = 0; i < PQntuples(dbs); i++) {
			const char *db = PQgetvalue(dbs, i, 0);
			char *conninfo;
			PGconn *conn;

			if (strcmp(db, base_db) == 0) {
				ensure_db(id, base, db);
				continue;
			}
			conninfo = conninfo_with_db(s->node_conn_base[k], db);
			if (!conninfo) {
				log_warning("resolver: node %d: out of memory", id);
				break;
			}
			conn = connect_logged(id, conninfo, db);
			free(conninfo);
			if (!conn)
				continue;
			ensure_db(id, conn, db);
			PQfinish(conn);
		}
		PQclear(dbs);
		PQfinish(base);
	}
}

/* ---- runs ----------------------------------------------------------------------- */

/*
 * One twopc_resolve() run for the gids of INSTANCE up to boot BOOT (this
 * instance's, or a dead peer's), with a one-line summary.  -1 on a hard
 * error (logged, in ERR).
 */
static int run_resolve(const struct settings *s, const char *when, const char *instance, uint64_t boot,
		       const struct twopc_inflight *inflight, char *err, size_t errlen)
{
	struct twopc_report rep;

	/* Nodes out of service are left alone (and not connected to every run). */
	for (int k = 0; k < s->n; k++)
		s->nodes[k].skip = node_get(s->nodes[k].id) && atomic_load(&node_get(s->nodes[k].id)->state) != NODE_UP;
	if (twopc_resolve(s->nodes, s->n, instance, boot, s->grace, inflight, &rep, err, errlen) < 0) {
		log_error("resolver: %s run failed: %s", when, err);
		return -1;
	}
	metrics_count_resolved(rep.committed, rep.rolled_back);
	if (rep.committed || rep.rolled_back)
		log_info("resolver: %s run: %d committed, %d rolled back, %d undecided, %d pending, %d failed, "
			"%d unreachable node(s), %ld decision rows deleted", when, rep.committed, rep.rolled_back,
			rep.undecided, rep.pending, rep.failed, rep.unreachable_nodes, rep.gc_deleted);
	else
		log_debug("resolver: %s run: %d committed, %d rolled back, %d undecided, %d pending, %d failed, "
			"%d unreachable node(s), %ld decision rows deleted", when, rep.committed, rep.rolled_back,
			rep.undecided, rep.pending, rep.failed, rep.unreachable_nodes, rep.gc_deleted);
	return 0;
}

/*
 * Sequence sweep: in every database where shipped writes moved sequences
 * since the last sweep, bring each sequence of the other nodes up to the
 * primary's value (never back).  The per-statement setval()s of the data
 * path can race on a node and leave a smaller value; this settles it.
 */
static void sweep_db(const struct settings *s, const char *db)
{
	int primary = node_primary(), pk = -1;
	PGconn *pc;
	PGresult *seqs;
	struct buf sql = { 0 };
	char ebuf[512];

	for (int k = 0; k < s->n; k++)
		if (s->nodes[k].id == primary)
			pk = k;
	if (pk < 0)
		return;
	{
		char *ci = conninfo_with_db(s->node_conn_base[pk], db);

		pc = ci ? connect_logged(primary, ci, db) : NULL;
		free(ci);
	}
	if (!pc)
		return;
	seqs = PQexec(pc, "SELECT format('%I.%I', schemaname, sequencename), last_value::text "
			  "FROM pg_catalog.pg_sequences WHERE last_value IS NOT NULL");
	if (PQresultStatus(seqs) != PGRES_TUPLES_OK) {
		log_warning("resolver: node %d: cannot read sequences of database %s: %s", primary, db,
			    one_line(pc, seqs, ebuf, sizeof(ebuf)));
		goto out;
	}
	for (int i = 0; i < PQntuples(seqs); i++) {
		struct buf lit = { 0 };
		bool ok = ship_quote_literal(&lit, PQgetvalue(seqs, i, 0), strlen(PQgetvalue(seqs, i, 0))) &&
			  buf_append(&lit, "", 1);

		/* Exactly the primary's value, backwards too (a client's setval());
		 * a sequence the node does not have (yet) is skipped, not an error. */
		static const char a[] = "SELECT pg_catalog.setval(s.oid, ";
		static const char b[] = ", true) FROM (SELECT pg_catalog.to_regclass(";
		static const char c[] = ") AS oid) s WHERE s.oid IS NOT NULL AND pg_catalog.pg_sequence_last_value(s.oid)"
					" IS DISTINCT FROM ";
		const char *v = PQgetvalue(seqs, i, 1);

		ok = ok && buf_append(&sql, a, sizeof(a) - 1) && buf_append(&sql, v, strlen(v)) &&
		     buf_append(&sql, b, sizeof(b) - 1) && buf_append(&sql, lit.data, lit.len - 1) &&
		     buf_append(&sql, c, sizeof(c) - 1) && buf_append(&sql, v, strlen(v)) && buf_append(&sql, ";", 1);
		buf_free(&lit);
		if (!ok) {
			log_warning("resolver: out of memory");
			goto out;
		}
	}
	if (!sql.len || !buf_append(&sql, "", 1))
		goto out;
	for (int k = 0; k < s->n; k++) {
		struct node *n = node_get(s->nodes[k].id);
		char *ci;
		PGconn *c;
		PGresult *r;

		if (k == pk || !n || atomic_load(&n->state) != NODE_UP)
			continue;
		ci = conninfo_with_db(s->node_conn_base[k], db);
		c = ci ? connect_logged(s->nodes[k].id, ci, db) : NULL;
		free(ci);
		if (!c)
			continue;
		r = PQexec(c, (const char *)sql.data);
		if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
			log_warning("resolver: node %d: sequence sweep of database %s failed: %s", s->nodes[k].id, db,
				    one_line(c, r, ebuf, sizeof(ebuf)));
		PQclear(r);
		PQfinish(c);
	}
out:
	PQclear(seqs);
	PQfinish(pc);
	buf_free(&sql);
}

static void sweep_sequences(const struct settings *s)
{
	char *dbs[SEQ_DIRTY_MAX];
	int n;

	pthread_mutex_lock(&R.lock);
	n = R.n_seq_dirty;
	memcpy(dbs, R.seq_dirty, sizeof(dbs[0]) * (size_t)n);
	R.n_seq_dirty = 0;
	pthread_mutex_unlock(&R.lock);
	for (int i = 0; i < n; i++) {
		sweep_db(s, dbs[i]);
		free(dbs[i]);
	}
}

void resolver_seq_dirty(const char *db)
{
	if (!db || !atomic_load_explicit(&R.started, memory_order_acquire))
		return;
	pthread_mutex_lock(&R.lock);
	for (int i = 0; i < R.n_seq_dirty; i++)
		if (strcmp(R.seq_dirty[i], db) == 0)
			goto out;
	if (R.n_seq_dirty < SEQ_DIRTY_MAX && (R.seq_dirty[R.n_seq_dirty] = strdup(db)) != NULL)
		R.n_seq_dirty++;
out:
	pthread_mutex_unlock(&R.lock);
}

/* SECONDS after T (CLOCK_MONOTONIC). */
static struct timespec later(struct timespec t, double seconds)
{
	t.tv_sec += (time_t)seconds;
	t.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static bool reached(const struct timespec *deadline)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec > deadline->tv_sec || (t.tv_sec == deadline->tv_sec && t.tv_nsec >= deadline->tv_nsec);
}

/*
 * The in-doubt transactions of the peer instances the heartbeat declared
 * dead (resolver_peer_dead): their gids of earlier boots at once, of the
 * last boot heard once older than resolver_grace (doc/heartbeat.md).
 */
static void resolve_dead_peers(const struct settings *s)
{
	struct dead_peer copy[PGC_MAX_PEERS];
	char err[512], when[64];
	int n;

	pthread_mutex_lock(&R.lock);
	n = R.n_dead;
	memcpy(copy, R.dead, sizeof(copy[0]) * (size_t)n);
	pthread_mutex_unlock(&R.lock);
	for (int i = 0; i < n; i++) {
		snprintf(when, sizeof(when), "dead peer %.*s", TWOPC_INSTANCE_MAX, copy[i].instance);
		run_resolve(s, when, copy[i].instance, copy[i].boot, NULL, err, sizeof(err));
	}
}

static void *resolver_main(void *arg)
{
	struct timespec last, deadline;
	unsigned long runs = 0;
	char err[512];

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &last); /* the start-up run just ended */
	pthread_mutex_lock(&R.lock);
	while (!R.stop) {
		if (R.next) {
			settings_free(R.set);
			R.set = R.next;
			R.next = NULL;
		}
		deadline = later(last, R.set->period);
		if (!R.kicked && !reached(&deadline)) {
			pthread_cond_timedwait(&R.wake, &R.lock, &deadline);
			continue;
		}
		R.kicked = false;
		/* R.set is replaced only by this thread: safe to use without the lock */
		pthread_mutex_unlock(&R.lock);
		if (++runs % ENSURE_EVERY == 0)
			ensure_all(R.set);
		run_resolve(R.set, "periodic", R.instance, R.boot, R.inflight, err, sizeof(err));
		resolve_dead_peers(R.set);
		sweep_sequences(R.set);
		clock_gettime(CLOCK_MONOTONIC, &last);
		pthread_mutex_lock(&R.lock);
	}
	pthread_mutex_unlock(&R.lock);
	return NULL;
}

/* ---- the interface ------------------------------------------------------------------ */

static uint64_t boot_number(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

int resolver_start(const struct config *cfg, char *err, size_t errlen)
{
	pthread_condattr_t attr;
	int r;

	if (errlen)
		err[0] = '\0';
	if (cfg->mode != RUN_MODE_REPLICATION)
		return 0;
	if (!twopc_instance_valid(cfg->instance_name)) {
		snprintf(err, errlen, "resolver: invalid instance_name \"%s\"", cfg->instance_name);
		return -1;
	}
	snprintf(R.instance, sizeof(R.instance), "%s", cfg->instance_name);
	R.boot = boot_number();
	atomic_store(&R.counter, 0);
	R.inflight = twopc_inflight_new();
	R.set = settings_new(cfg);
	if (!R.inflight || !R.set) {
		snprintf(err, errlen, "resolver: out of memory");
		goto fail;
	}
	log_info("resolver: instance %s, boot %" PRIu64 ", %d node(s), every %g s, grace %g s", R.instance,
		R.boot, R.set->n, R.set->period, R.set->grace);

	ensure_all(R.set);
	if (run_resolve(R.set, "start-up", R.instance, R.boot, R.inflight, err, errlen) < 0)
		goto fail;

	if (pthread_condattr_init(&attr) != 0) {
		snprintf(err, errlen, "resolver: out of memory");
		goto fail;
	}
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	r = pthread_cond_init(&R.wake, &attr);
	pthread_condattr_destroy(&attr);
	if (r != 0) {
		snprintf(err, errlen, "resolver: cannot create a condition variable: %s", strerror(r));
		goto fail;
	}
	R.stop = R.kicked = false;
	atomic_store_explicit(&R.started, true, memory_order_release);
	r = pthread_create(&R.thread, NULL, resolver_main, NULL);
	if (r != 0) {
		atomic_store(&R.started, false);
		pthread_cond_destroy(&R.wake);
		snprintf(err, errlen, "resolver: cannot start its thread: %s", strerror(r));
		goto fail;
	}
	R.thread_running = true;
	return 0;
fail:
	settings_free(R.set);
	R.set = NULL;
	twopc_inflight_free(R.inflight);
	R.inflight = NULL;
	return -1;
}

void resolver_reload(const struct config *cfg)
{
	struct settings *s;

	if (!R.thread_running)
		return;
	s = settings_new(cfg);
	if (!s) {
		log_error("resolver: out of memory: keeping the old settings");
		return;
	}
	pthread_mutex_lock(&R.lock);
	settings_free(R.next);
	R.next = s;
	pthread_cond_signal(&R.wake);
	pthread_mutex_unlock(&R.lock);
}

void resolver_stop(void)
{
	if (!R.thread_running)
		return;
	pthread_mutex_lock(&R.lock);
	R.stop = true;
	pthread_cond_signal(&R.wake);
	pthread_mutex_unlock(&R.lock);
	pthread_join(R.thread, NULL);
	R.thread_running = false;
	atomic_store(&R.started, false);
	pthread_cond_destroy(&R.wake);
	settings_free(R.set);
	settings_free(R.next);
	R.set = R.next = NULL;
	for (int i = 0; i < R.n_seq_dirty; i++)
		free(R.seq_dirty[i]);
	R.n_seq_dirty = 0;
	twopc_inflight_free(R.inflight);
	R.inflight = NULL;
}

void resolver_peer_dead(const char *instance, uint64_t boot)
{
	int i;

	if (!atomic_load_explicit(&R.started, memory_order_acquire) || !twopc_instance_valid(instance) ||
	    strcmp(instance, R.instance) == 0)
		return;
	pthread_mutex_lock(&R.lock);
	for (i = 0; i < R.n_dead && strcmp(R.dead[i].instance, instance) != 0; i++)
		;
	if (i < PGC_MAX_PEERS) {
		snprintf(R.dead[i].instance, sizeof(R.dead[i].instance), "%s", instance);
		R.dead[i].boot = boot;
		if (i == R.n_dead)
			R.n_dead++;
	}
	pthread_mutex_unlock(&R.lock);
	resolver_kick();
}

void resolver_peer_alive(const char *instance)
{
	if (!atomic_load_explicit(&R.started, memory_order_acquire))
		return;
	pthread_mutex_lock(&R.lock);
	for (int i = 0; i < R.n_dead; i++) {
		if (strcmp(R.dead[i].instance, instance) == 0) {
			R.dead[i] = R.dead[--R.n_dead];
			break;
		}
	}
	pthread_mutex_unlock(&R.lock);
}

void resolver_kick(void)
{
	if (!atomic_load_explicit(&R.started, memory_order_acquire))
		return;
	pthread_mutex_lock(&R.lock);
	R.kicked = true;
	pthread_cond_signal(&R.wake);
	pthread_mutex_unlock(&R.lock);
}

/* Replication mode only: false until resolver_start() set things up (and after resolver_stop()). */
bool resolver_gid_begin(char *gid, size_t n)
{
	uint64_t c;

	if (n > 0)
		gid[0] = '\0';
	if (!atomic_load_explicit(&R.started, memory_order_acquire))
		return false;
	c = atomic_fetch_add_explicit(&R.counter, 1, memory_order_relaxed) + 1;
	if (!twopc_make_gid(gid, n, R.instance, R.boot, c))
		return false;
	if (!twopc_inflight_add(R.inflight, gid)) {
		gid[0] = '\0';
		return false;
	}
	return true;
}

void resolver_gid_end(const char *gid)
{
	if (gid && *gid && atomic_load_explicit(&R.started, memory_order_acquire))
		twopc_inflight_remove(R.inflight, gid);
}

uint64_t resolver_boot(void)
{
	return atomic_load_explicit(&R.started, memory_order_acquire) ? R.boot : 0;
}
