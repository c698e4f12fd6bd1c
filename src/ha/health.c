/*
 * health.c - health checks of the nodes (ha.h), on the main thread's loop.
 *
 * Every health_check.period seconds each node that is up gets a check: a
 * new libpq connection (asynchronous: PQconnectStartParams, then
 * PQconnectPoll driven by an uv_poll_t on its socket) and "SELECT 1".  One
 * timer bounds the whole check (connect + query) to health_check.timeout:
 * a node that accepts the TCP connection and then never answers (a stopped
 * postmaster) fails by that timer.  A failed check is retried
 * health_check.retries times, health_check.retry_delay apart; then the node
 * is failed (node_fail: state file, workers, failover_command).  A node
 * that is not up is not checked: it comes back by recovery or attach only.
 *
 * Owns: one struct hc_node per node (its connection, poll handle and two
 * timers), the async handle of health_check_now(), and a configuration
 * reference.  Everything but health_check_now() and health_last_ms() runs on
 * the main loop.
 */
#include <libpq-fe.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/ha.h"
#include "pgchorus/log.h"

enum hc_phase {
	HC_IDLE,       /* waiting for the next check (or a retry) */
	HC_CONNECTING, /* PQconnectPoll */
	HC_QUERYING,   /* SELECT 1 sent, reading its result */
};

struct hc_node;

/* A poll handle lives on until its close callback: one per socket watched. */
struct hc_poll {
	uv_poll_t h;
	struct hc_node *hn;
	int fd;
};

struct hc_node {
	int id;
	enum hc_phase phase;
	PGconn *conn;
	struct hc_poll *poll;  /* NULL: none */
	uv_timer_t deadline;   /* the timeout of the running check */
	uv_timer_t next;       /* the next check: period, or retry_delay after a failure */
	uint64_t started;      /* uv_hrtime() at the start of the running check */
	int failures;          /* failed checks in a row (retries so far + 1) */
	int poll_errors;       /* error events in a row */
	bool query_ok;         /* SELECT 1 returned its row */
	char query_err[256];   /* or failed with this */
	atomic_bool wanted;    /* health_check_now() */
	atomic_llong last_us;  /* last successful check, microseconds; -1: none */
};

static pthread_mutex_t hc_lock = PTHREAD_MUTEX_INITIALIZER;
static bool hc_open;               /* hc_lock: hc_async may be sent */
static uv_async_t hc_async;
static uv_loop_t *hc_loop;
static struct config *hc_cfg;
static struct hc_node *hc_nodes;
static int hc_n;
static int hc_handles;             /* handles still open after health_stop() */
static bool hc_stopping;

static void check_step(struct hc_node *hn);

/* ------------------------------------------------------------------------ */
/* Scheduling                                                                */
/* ------------------------------------------------------------------------ */

static void next_cb(uv_timer_t *t);

/* The next check of HN in SECONDS (< 0: none). */
static void schedule(struct hc_node *hn, double seconds)
{
	uv_timer_stop(&hn->next);
	if (hc_stopping || seconds < 0)
		return;
	uv_timer_start(&hn->next, next_cb, (uint64_t)(seconds * 1000), 0);
}

/* After a finished round: the next one a period after the start of this one. */
static void schedule_period(struct hc_node *hn)
{
	double period = hc_cfg->health.period, elapsed;

	if (period <= 0) {
		schedule(hn, -1);
		return;
	}
	elapsed = hn->started ? (double)(uv_hrtime() - hn->started) / 1e9 : 0;
	schedule(hn, elapsed < period ? period - elapsed : 0);
}

/* ------------------------------------------------------------------------ */
/* The end of a check                                                        */
/* ------------------------------------------------------------------------ */

static void poll_closed(uv_handle_t *h)
{
	free(h->data);
}

static void poll_close(struct hc_node *hn)
{
	struct hc_poll *p = hn->poll;

	if (!p)
		return;
	hn->poll = NULL;
	/* before PQfinish closes the socket (libuv must not watch a closed fd) */
	uv_poll_stop(&p->h);
	uv_close((uv_handle_t *)&p->h, poll_closed);
}

static void conn_close(struct hc_node *hn)
{
	poll_close(hn);
	if (hn->conn) {
		PQfinish(hn->conn);
		hn->conn = NULL;
	}
	uv_timer_stop(&hn->deadline);
	hn->phase = HC_IDLE;
}

/* "multi\n\tline message\n" -> "multi line message" into OUT. */
static void one_line(const char *msg, char *out, size_t n)
{
	size_t k = 0;
	bool space = false;

	for (const char *p = msg ? msg : ""; *p && k + 1 < n; p++) {
		if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
			space = k > 0;
			continue;
		}
		if (space && k + 2 < n)
			out[k++] = ' ';
		space = false;
		out[k++] = *p;
	}
	out[k] = '\0';
}

static void check_failed(struct hc_node *hn, const char *reason)
{
	int retries = hc_cfg->health.retries;
	char why[300];

	conn_close(hn);
	hn->failures++;
	if (atomic_load(&node_get(hn->id)->state) != NODE_UP) {
		/* failed meanwhile by someone else */
		log_debug("node %d: health check failed: %s (node already %s)", hn->id, reason,
			  node_state_name(atomic_load(&node_get(hn->id)->state)));
		hn->failures = 0;
		schedule_period(hn);
		return;
	}
	if (hn->failures <= retries) {
		log_warning("node %d: health check failed (attempt %d of %d, retry in %gs): %s", hn->id,
			    hn->failures, retries + 1, hc_cfg->health.retry_delay, reason);
		schedule(hn, hc_cfg->health.retry_delay);
		return;
	}
	log_warning("node %d: health check failed (attempt %d of %d): %s", hn->id, hn->failures, retries + 1,
		    reason);
	hn->failures = 0;
	snprintf(why, sizeof(why), "health check failed: %s", reason);
	node_fail(hn->id, why);
	schedule_period(hn);
}

/* The failure text of libpq, on one line. */
static void check_failed_pq(struct hc_node *hn, const char *what)
{
	char msg[256], reason[300];

	one_line(hn->conn ? PQerrorMessage(hn->conn) : "out of memory", msg, sizeof(msg));
	snprintf(reason, sizeof(reason), "%s%s%s", what, *what && *msg ? ": " : "", msg);
	check_failed(hn, reason);
}

static void check_ok(struct hc_node *hn)
{
	uint64_t us = (uv_hrtime() - hn->started) / 1000;

	conn_close(hn);
	atomic_store(&hn->last_us, (long long)us);
	if (hn->failures > 0)
		log_info("node %d: health check ok after %d failed attempt(s) (%.1f ms)", hn->id, hn->failures,
			 (double)us / 1000);
	else
		log_debug("node %d: health check ok (%.1f ms)", hn->id, (double)us / 1000);
	hn->failures = 0;
	schedule_period(hn);
}

static void deadline_cb(uv_timer_t *t)
{
	struct hc_node *hn = t->data;
	char reason[64];

	if (hn->phase == HC_IDLE)
		return;
	snprintf(reason, sizeof(reason), "timeout after %gs", hc_cfg->health.timeout);
	check_failed(hn, reason);
}

/* ------------------------------------------------------------------------ */
/* The connection and the query                                              */
/* ------------------------------------------------------------------------ */

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct hc_poll *p = h->data;
	struct hc_node *hn = p->hn;
	char reason[128];

	(void)events;
	if (hn->poll != p || hn->phase == HC_IDLE)
		return;
	/*
	 * libuv reports POLLERR (e.g. a refused connection) as an error:
	 * libpq then reads the socket's error itself and gives the real
	 * reason.  Should it keep asking for the same socket, fail.
	 */
	if (status < 0 && ++hn->poll_errors > 3) {
		snprintf(reason, sizeof(reason), "socket error: %s", uv_strerror(status));
		check_failed(hn, reason);
		return;
	}
	if (status == 0)
		hn->poll_errors = 0;
	check_step(hn);
}

/* Wait for EVENTS on the connection's socket (a new handle if the socket
 * changed).  false when the check failed (already reported). */
static bool watch(struct hc_node *hn, int events)
{
	int fd = PQsocket(hn->conn), err;
	struct hc_poll *p;
	char reason[128];

	if (fd < 0) {
		check_failed_pq(hn, "no socket");
		return false;
	}
	if (hn->poll && hn->poll->fd != fd)
		poll_close(hn);
	if (!hn->poll) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			check_failed(hn, "out of memory");
			return false;
		}
		err = uv_poll_init(hc_loop, &p->h, fd);
		if (err != 0) {
			free(p);
			snprintf(reason, sizeof(reason), "cannot watch the socket: %s", uv_strerror(err));
			check_failed(hn, reason);
			return false;
		}
		p->h.data = p;
		p->hn = hn;
		p->fd = fd;
		hn->poll = p;
	}
	/* stop, then start: a socket libpq re-created under the same number
	 * must be registered again with the kernel */
	uv_poll_stop(&hn->poll->h);
	err = uv_poll_start(&hn->poll->h, events, poll_cb);
	if (err != 0) {
		snprintf(reason, sizeof(reason), "cannot watch the socket: %s", uv_strerror(err));
		check_failed(hn, reason);
		return false;
	}
	return true;
}

static void send_query(struct hc_node *hn)
{
	int f;

	hn->phase = HC_QUERYING;
	hn->query_ok = false;
	hn->query_err[0] = '\0';
	if (PQsetnonblocking(hn->conn, 1) != 0 || !PQsendQuery(hn->conn, "SELECT 1")) {
		check_failed_pq(hn, "SELECT 1");
		return;
	}
	f = PQflush(hn->conn);
	if (f < 0) {
		check_failed_pq(hn, "SELECT 1");
		return;
	}
	watch(hn, f > 0 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* Results of SELECT 1 as they arrive; the check ends with the last one. */
static void read_results(struct hc_node *hn)
{
	int f = PQflush(hn->conn);

	if (f < 0 || !PQconsumeInput(hn->conn)) {
		check_failed_pq(hn, "SELECT 1");
		return;
	}
	while (!PQisBusy(hn->conn)) {
		PGresult *res = PQgetResult(hn->conn);

		if (!res) {
			if (hn->query_ok && !hn->query_err[0])
				check_ok(hn);
			else
				check_failed(hn, hn->query_err[0] ? hn->query_err : "SELECT 1 returned no row");
			return;
		}
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
			hn->query_ok = true;
		else if (!hn->query_err[0]) {
			char msg[200];

			one_line(PQresultErrorMessage(res), msg, sizeof(msg));
			snprintf(hn->query_err, sizeof(hn->query_err), "SELECT 1: %s",
				 *msg ? msg : PQresStatus(PQresultStatus(res)));
		}
		PQclear(res);
	}
	watch(hn, f > 0 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void check_step(struct hc_node *hn)
{
	if (hn->phase == HC_QUERYING) {
		read_results(hn);
		return;
	}
	/* the socket may change inside PQconnectPoll: not watched meanwhile */
	if (hn->poll)
		uv_poll_stop(&hn->poll->h);
	switch (PQconnectPoll(hn->conn)) {
	case PGRES_POLLING_READING:
		watch(hn, UV_READABLE);
		break;
	case PGRES_POLLING_WRITING:
		watch(hn, UV_WRITABLE);
		break;
	case PGRES_POLLING_OK:
		send_query(hn);
		break;
	default:
		check_failed_pq(hn, "");
		break;
	}
}

static void check_start(struct hc_node *hn)
{
	const struct config *cfg = hc_cfg;
	const struct cfg_health *h = &cfg->health;
	struct node *n = node_get(hn->id);
	const char *keys[16], *vals[16];
	char port[16], addr[NI_MAXHOST];
	int k = 0;

	/* the lists end at the first NULL key: only what is set */
#define PARAM(key, val) do { keys[k] = (key); vals[k] = (val); k++; } while (0)
	snprintf(port, sizeof(port), "%d", n->port);
	PARAM("host", n->host);
	/* the address resolved at start: libpq would resolve the name, blocking */
	if (!n->is_unix && getnameinfo((const struct sockaddr *)&n->addr, n->addrlen, addr, sizeof(addr), NULL, 0,
				       NI_NUMERICHOST) == 0)
		PARAM("hostaddr", addr);
	PARAM("port", port);
	PARAM("user", h->user);
	if (*h->password)
		PARAM("password", h->password);
	PARAM("dbname", h->database);
	PARAM("application_name", "pgchorus_health");
	PARAM("sslmode", config_server_tls_name(cfg->server_tls));
	if (*cfg->server_tls_ca_file)
		PARAM("sslrootcert", cfg->server_tls_ca_file);
	if (*cfg->server_tls_cert_file)
		PARAM("sslcert", cfg->server_tls_cert_file);
	if (*cfg->server_tls_key_file)
		PARAM("sslkey", cfg->server_tls_key_file);
	PARAM("gssencmode", "disable"); /* no Kerberos round trip (it may block) */
	PARAM(NULL, NULL);
#undef PARAM

	log_debug("node %d: health check of %s:%d", hn->id, n->host, n->port);
	hn->phase = HC_CONNECTING;
	hn->poll_errors = 0;
	hn->started = uv_hrtime();
	uv_timer_start(&hn->deadline, deadline_cb, (uint64_t)(h->timeout * 1000), 0);
	hn->conn = PQconnectStartParams(keys, vals, 0);
	if (!hn->conn || PQstatus(hn->conn) == CONNECTION_BAD) {
		check_failed_pq(hn, "");
		return;
	}
	/* PQconnectStartParams has begun the connection: its first wait is for writing */
	watch(hn, UV_WRITABLE);
}

/* A check of HN now, if it is up and none runs. */
static void check_maybe_start(struct hc_node *hn)
{
	int st = atomic_load(&node_get(hn->id)->state);

	if (hn->phase != HC_IDLE)
		return;
	if (st != NODE_UP) {
		/* not checked; looked at again a period later (it may be attached meanwhile) */
		hn->failures = 0;
		schedule(hn, hc_cfg->health.period > 0 ? hc_cfg->health.period : -1);
		return;
	}
	uv_timer_stop(&hn->next);
	check_start(hn);
}

static void next_cb(uv_timer_t *t)
{
	check_maybe_start(t->data);
}

static void async_cb(uv_async_t *a)
{
	(void)a;
	for (int i = 0; i < hc_n; i++) {
		struct hc_node *hn = &hc_nodes[i];

		if (!atomic_exchange(&hn->wanted, false))
			continue;
		if (hn->phase != HC_IDLE) {
			log_debug("node %d: health check asked for: one is running", i);
			continue;
		}
		if (atomic_load(&node_get(i)->state) != NODE_UP) {
			log_debug("node %d: health check asked for: the node is %s, not checked", i,
				  node_state_name(atomic_load(&node_get(i)->state)));
			continue;
		}
		log_debug("node %d: health check asked for", i);
		check_maybe_start(hn);
	}
}

/* ------------------------------------------------------------------------ */
/* API                                                                       */
/* ------------------------------------------------------------------------ */

int health_start(uv_loop_t *loop, const struct config *cfg)
{
	hc_n = nodes_count();
	hc_nodes = calloc((size_t)(hc_n > 0 ? hc_n : 1), sizeof(*hc_nodes));
	if (!hc_nodes)
		return -1;
	if (uv_async_init(loop, &hc_async, async_cb) != 0) {
		free(hc_nodes);
		hc_nodes = NULL;
		return -1;
	}
	hc_loop = loop;
	hc_cfg = config_ref((struct config *)cfg);
	hc_stopping = false;
	for (int i = 0; i < hc_n; i++) {
		struct hc_node *hn = &hc_nodes[i];

		hn->id = i;
		atomic_init(&hn->wanted, false);
		atomic_init(&hn->last_us, -1);
		uv_timer_init(loop, &hn->deadline);
		uv_timer_init(loop, &hn->next);
		hn->deadline.data = hn;
		hn->next.data = hn;
		if (cfg->health.period > 0)
			schedule(hn, cfg->health.period);
	}
	pthread_mutex_lock(&hc_lock);
	hc_open = true;
	pthread_mutex_unlock(&hc_lock);
	if (cfg->health.period > 0)
		log_info("health checks every %gs (timeout %gs, %d retries %gs apart) as user %s, database %s",
			 cfg->health.period, cfg->health.timeout, cfg->health.retries, cfg->health.retry_delay,
			 cfg->health.user, cfg->health.database);
	return 0;
}

void health_reload(const struct config *cfg)
{
	struct config *old = hc_cfg;

	if (!hc_nodes || hc_stopping)
		return;
	hc_cfg = config_ref((struct config *)cfg);
	if (old->health.period != cfg->health.period) {
		log_info("health checks: period %gs -> %gs", old->health.period, cfg->health.period);
		for (int i = 0; i < hc_n; i++) {
			struct hc_node *hn = &hc_nodes[i];

			/* a running check, or one waiting for its retry, goes on */
			if (hn->phase != HC_IDLE || hn->failures > 0)
				continue;
			schedule(hn, cfg->health.period > 0 ? cfg->health.period : -1);
		}
	}
	config_unref(old);
}

static void handle_closed(uv_handle_t *h)
{
	(void)h;
	if (--hc_handles > 0)
		return;
	free(hc_nodes);
	hc_nodes = NULL;
	hc_n = 0;
}

void health_stop(void)
{
	bool was_open;

	pthread_mutex_lock(&hc_lock);
	was_open = hc_open;
	hc_open = false;
	pthread_mutex_unlock(&hc_lock);
	if (!was_open)
		return;
	hc_stopping = true;
	hc_handles = 1 + 2 * hc_n;
	uv_close((uv_handle_t *)&hc_async, handle_closed);
	for (int i = 0; i < hc_n; i++) {
		struct hc_node *hn = &hc_nodes[i];

		conn_close(hn);
		uv_close((uv_handle_t *)&hn->deadline, handle_closed);
		uv_close((uv_handle_t *)&hn->next, handle_closed);
	}
	config_unref(hc_cfg);
	hc_cfg = NULL;
}

void health_check_now(int node)
{
	pthread_mutex_lock(&hc_lock);
	if (hc_open && node >= 0 && node < hc_n) {
		atomic_store(&hc_nodes[node].wanted, true);
		uv_async_send(&hc_async);
	}
	pthread_mutex_unlock(&hc_lock);
}

double health_last_ms(int node)
{
	long long us;

	pthread_mutex_lock(&hc_lock);
	us = hc_open && node >= 0 && node < hc_n ? atomic_load(&hc_nodes[node].last_us) : -1;
	pthread_mutex_unlock(&hc_lock);
	return us < 0 ? -1 : (double)us / 1000;
}
