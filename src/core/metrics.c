/*
 * metrics.c - Prometheus text exposition over a minimal HTTP/1.0 server on
 * the main thread's loop (metrics.h).  Each connection sends one request;
 * GET /metrics gets the metrics, anything else 404; the connection is then
 * closed.  Requests are limited to 8 kB and 5 seconds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/metrics.h"
#include "pgchorus/node.h"
#include "pgchorus/worker.h"

#define REQ_MAX 8192
#define REQ_TIMEOUT_MS 5000
#define MAX_LISTENERS 16

struct mconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	char req[REQ_MAX];
	size_t len;
	struct buf out;
	uv_write_t wr;
	int closing;
};

static uv_tcp_t listeners[MAX_LISTENERS];
static int n_listeners;

/* In-doubt transactions the resolver finished (its thread adds). */
static _Atomic uint64_t resolved_committed, resolved_rolled_back;

void metrics_count_resolved(int committed, int rolled_back)
{
	if (committed > 0)
		atomic_fetch_add(&resolved_committed, (uint64_t)committed);
	if (rolled_back > 0)
		atomic_fetch_add(&resolved_rolled_back, (uint64_t)rolled_back);
}

static bool put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool put(struct buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return n >= 0 && buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static uint64_t sum_workers(size_t offset)
{
	uint64_t t = 0;

	for (int i = 0; i < pgc_runtime.n_workers; i++)
		t += atomic_load_explicit((_Atomic uint64_t *)((char *)&pgc_runtime.workers[i].stats + offset),
					  memory_order_relaxed);
	return t;
}

#define SUM(field) sum_workers(offsetof(struct worker_stats, field))

static bool render_counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
	return put(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)v);
}

/* Sum over the workers of the counter at OFFSET + I counters in struct worker_stats. */
static uint64_t sum_at(size_t offset, int i)
{
	return sum_workers(offset + (size_t)i * sizeof(_Atomic uint64_t));
}

#define SUM_NODE(field, i) sum_at(offsetof(struct worker_stats, field), i)

/* A counter of every (database, node) cell, summed per node (I) over the
 * workers and their database rows; OFFSET within struct stat_db_node. */
static uint64_t sum_db_cells(size_t offset, int node)
{
	uint64_t t = 0;

	if (node >= STAT_DB_NODES)
		return 0;
	for (int w = 0; w < pgc_runtime.n_workers; w++)
		for (int d = 0; d < STAT_DBS; d++)
			t += atomic_load_explicit((_Atomic uint64_t *)((char *)&pgc_runtime.workers[w].stats.dbs[d].node[node] +
								       offset), memory_order_relaxed);
	return t;
}

#define SUM_CELLS(field, i) sum_db_cells(offsetof(struct stat_db_node, field), i)

/* Pool gauges (refreshed by the workers every second), waits, and the
 * transactions and queries per node. */

/* The peer instances of the heartbeat (doc/heartbeat.md). */
static bool put_peers(struct buf *b)
{
	struct hb_peer_info info[PGC_MAX_PEERS];
	int n = hb_peers_info(info, PGC_MAX_PEERS);
	bool ok = true;

	if (n == 0)
		return true;
	ok &= put(b, "# HELP pgchorus_peer_up 1 while the peer instance is heard\n# TYPE pgchorus_peer_up gauge\n");
	for (int i = 0; i < n; i++)
		ok &= put(b, "pgchorus_peer_up{peer=\"%s:%d\",name=\"%s\"} %d\n", info[i].host, info[i].port,
			  info[i].name, strcmp(info[i].status, "alive") == 0);
	ok &= put(b, "# HELP pgchorus_peer_heard_seconds seconds since the peer's last heartbeat\n"
		     "# TYPE pgchorus_peer_heard_seconds gauge\n");
	for (int i = 0; i < n; i++)
		if (info[i].heard_ago >= 0)
			ok &= put(b, "pgchorus_peer_heard_seconds{peer=\"%s:%d\",name=\"%s\"} %.3f\n", info[i].host,
				  info[i].port, info[i].name, info[i].heard_ago);
	ok &= put(b, "# HELP pgchorus_peer_escalated 1 while this instance holds the peer's address\n"
		     "# TYPE pgchorus_peer_escalated gauge\n");
	for (int i = 0; i < n; i++)
		ok &= put(b, "pgchorus_peer_escalated{peer=\"%s:%d\",name=\"%s\"} %d\n", info[i].host, info[i].port,
			  info[i].name, info[i].escalated);
	return ok;
}

static bool render_pools(struct buf *b, int n)
{
	static const char *const states[] = { "idle", "active", "connecting" };
	bool ok = true;

	if (n > STAT_NODES)
		n = STAT_NODES;
	ok &= put(b, "# HELP pgchorus_pool_servers server connections of the pools of the node, by state "
		     "(updated every second)\n# TYPE pgchorus_pool_servers gauge\n");
	for (int i = 0; i < n; i++) {
		uint64_t v[3] = { SUM_NODE(node_idle, i), SUM_NODE(node_active, i), SUM_NODE(node_connecting, i) };

		for (int k = 0; k < 3; k++)
			ok &= put(b, "pgchorus_pool_servers{node=\"%d\",state=\"%s\"} %llu\n", i, states[k],
				  (unsigned long long)v[k]);
	}
	ok &= put(b, "# HELP pgchorus_pool_clients_waiting clients waiting for a server of the node "
		     "(updated every second)\n# TYPE pgchorus_pool_clients_waiting gauge\n");
	for (int i = 0; i < n; i++)
		ok &= put(b, "pgchorus_pool_clients_waiting{node=\"%d\"} %llu\n", i,
			  (unsigned long long)SUM_NODE(node_waiting, i));
	ok &= put(b, "# HELP pgchorus_pool_waits_total clients that had to wait for a server of the node\n"
		     "# TYPE pgchorus_pool_waits_total counter\n");
	for (int i = 0; i < n; i++)
		ok &= put(b, "pgchorus_pool_waits_total{node=\"%d\"} %llu\n", i,
			  (unsigned long long)SUM_NODE(node_waits, i));
	ok &= put(b, "# HELP pgchorus_pool_wait_seconds_total time clients waited for a server of the node "
		     "(counted when a wait ends)\n# TYPE pgchorus_pool_wait_seconds_total counter\n");
	for (int i = 0; i < n; i++)
		ok &= put(b, "pgchorus_pool_wait_seconds_total{node=\"%d\"} %.6f\n", i,
			  (double)SUM_NODE(node_wait_us, i) / 1e6);
	ok &= put(b, "# HELP pgchorus_node_transactions_total transactions of the node: server connections "
		     "given back to its pool (pool mode), transactions it answered (replication mode)\n"
		     "# TYPE pgchorus_node_transactions_total counter\n");
	for (int i = 0; i < n && i < STAT_DB_NODES; i++)
		ok &= put(b, "pgchorus_node_transactions_total{node=\"%d\"} %llu\n", i,
			  (unsigned long long)SUM_CELLS(transactions, i));
	ok &= put(b, "# HELP pgchorus_node_queries_total Query and Execute messages relayed to the node "
		     "(pool mode), units it answered (replication mode)\n# TYPE pgchorus_node_queries_total counter\n");
	for (int i = 0; i < n && i < STAT_DB_NODES; i++)
		ok &= put(b, "pgchorus_node_queries_total{node=\"%d\"} %llu\n", i,
			  (unsigned long long)SUM_CELLS(queries, i));
	return ok;
}

bool metrics_render(struct buf *b)
{
	bool ok = true;
	int n = nodes_count(), primary = node_primary();
	struct recovery_progress rp;
	uint64_t cum = 0;

	ok &= put(b, "# HELP pgchorus_info pgchorus version\n# TYPE pgchorus_info gauge\n"
		     "pgchorus_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	ok &= put(b, "# HELP pgchorus_node_up 1 when the node is in service\n# TYPE pgchorus_node_up gauge\n");
	for (int i = 0; i < n; i++) {
		struct node *nd = node_get(i);

		ok &= put(b, "pgchorus_node_up{node=\"%d\",host=\"%s\",port=\"%d\"} %d\n", i, nd->host, nd->port,
			  atomic_load(&nd->state) == NODE_UP);
	}
	ok &= put(b, "# HELP pgchorus_node_state the node's state (one series per state, 1 for the current one)\n"
		     "# TYPE pgchorus_node_state gauge\n");
	for (int i = 0; i < n; i++)
		for (int st = NODE_UP; st <= NODE_DETACHED; st++)
			ok &= put(b, "pgchorus_node_state{node=\"%d\",state=\"%s\"} %d\n", i, node_state_name(st),
				  atomic_load(&node_get(i)->state) == st);
	ok &= put(b, "# HELP pgchorus_node_primary 1 for the primary\n# TYPE pgchorus_node_primary gauge\n");
	for (int i = 0; i < n; i++)
		ok &= put(b, "pgchorus_node_primary{node=\"%d\"} %d\n", i, i == primary);
	ok &= put(b, "# HELP pgchorus_health_check_seconds duration of the last successful health check\n"
		     "# TYPE pgchorus_health_check_seconds gauge\n");
	for (int i = 0; i < n; i++) {
		double ms = health_last_ms(i);

		if (ms >= 0)
			ok &= put(b, "pgchorus_health_check_seconds{node=\"%d\"} %.6f\n", i, ms / 1000.0);
	}
	ok &= put(b, "# HELP pgchorus_node_statements_total units of client statements sent to the node\n"
		     "# TYPE pgchorus_node_statements_total counter\n");
	for (int i = 0; i < n && i < 64; i++)
		ok &= put(b, "pgchorus_node_statements_total{node=\"%d\"} %llu\n", i,
			  (unsigned long long)sum_workers(offsetof(struct worker_stats, node_statements) +
							  (size_t)i * sizeof(_Atomic uint64_t)));
	ok &= put(b, "# HELP pgchorus_clients client connections\n# TYPE pgchorus_clients gauge\npgchorus_clients %d\n",
		  atomic_load(&pgc_runtime.n_clients));
	ok &= render_counter(b, "pgchorus_clients_accepted_total", "client connections accepted", SUM(clients_accepted));
	ok &= render_counter(b, "pgchorus_servers_opened_total", "server connections opened", SUM(servers_opened));
	ok &= render_counter(b, "pgchorus_pool_transactions_total", "server connections given back to a pool",
			     SUM(transactions));
	ok &= render_counter(b, "pgchorus_pipelined_total",
			     "statements sent behind another client's on a busy server (pipeline_depth)", SUM(pipelined));
	ok &= render_counter(b, "pgchorus_units_total", "replication: client units (statements, extended-protocol "
			     "groups) answered", SUM(units));
	ok &= render_counter(b, "pgchorus_2pc_commits_total", "replication: transactions committed with two-phase "
			     "commit", SUM(commits_2pc));
	ok &= render_counter(b, "pgchorus_aborts_total", "replication: transactions rolled back on every node by "
			     "pgchorus", SUM(aborts));
	ok &= put(b, "# HELP pgchorus_errors_total ErrorResponses sent to clients by SQLSTATE class\n"
		     "# TYPE pgchorus_errors_total counter\n");
	for (int c = 0; c < 36 * 36; c++) {
		uint64_t v = sum_workers(offsetof(struct worker_stats, errors) + (size_t)c * sizeof(_Atomic uint64_t));
		static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

		if (v)
			ok &= put(b, "pgchorus_errors_total{class=\"%c%c\"} %llu\n", digits[c / 36], digits[c % 36],
				  (unsigned long long)v);
	}
	ok &= put(b, "# HELP pgchorus_unit_seconds time from a client unit's routing to its answer\n"
		     "# TYPE pgchorus_unit_seconds histogram\n");
	for (int i = 0; i <= STAT_LAT_BUCKETS; i++) {
		cum += sum_workers(offsetof(struct worker_stats, lat_bucket) + (size_t)i * sizeof(_Atomic uint64_t));
		if (i < STAT_LAT_BUCKETS)
			ok &= put(b, "pgchorus_unit_seconds_bucket{le=\"%g\"} %llu\n", stat_lat_bounds[i],
				  (unsigned long long)cum);
		else
			ok &= put(b, "pgchorus_unit_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	ok &= put(b, "pgchorus_unit_seconds_sum %.6f\npgchorus_unit_seconds_count %llu\n",
		  (double)SUM(lat_sum_us) / 1e6, (unsigned long long)cum);
	ok &= render_pools(b, n);
	ok &= put(b, "# HELP pgchorus_2pc_resolved_total in-doubt prepared transactions finished by the resolver, "
		     "by outcome\n# TYPE pgchorus_2pc_resolved_total counter\n"
		     "pgchorus_2pc_resolved_total{outcome=\"committed\"} %llu\n"
		     "pgchorus_2pc_resolved_total{outcome=\"rolled_back\"} %llu\n",
		  (unsigned long long)atomic_load(&resolved_committed),
		  (unsigned long long)atomic_load(&resolved_rolled_back));
	ok &= put_peers(b);
	recovery_get_progress(&rp);
	ok &= put(b, "# HELP pgchorus_recovery_running 1 while an online recovery runs\n"
		     "# TYPE pgchorus_recovery_running gauge\npgchorus_recovery_running %d\n", rp.running);
	ok &= put(b, "# HELP pgchorus_writes_paused 1 while writes are paused\n"
		     "# TYPE pgchorus_writes_paused gauge\npgchorus_writes_paused %d\n", repl_writes_paused());
	return ok;
}

static void mconn_closed(uv_handle_t *h)
{
	struct mconn *m = h->data;

	if (--m->closing == 0) {
		buf_free(&m->out);
		free(m);
	}
}

static void mconn_close(struct mconn *m)
{
	if (m->closing)
		return;
	m->closing = 2;
	uv_timer_stop(&m->timer);
	uv_close((uv_handle_t *)&m->timer, mconn_closed);
	uv_close((uv_handle_t *)&m->tcp, mconn_closed);
}

static void mconn_written(uv_write_t *w, int status)
{
	(void)status;
	mconn_close(w->data);
}

static void mconn_reply(struct mconn *m, const char *status, const char *ctype, struct buf *body)
{
	char head[256];
	uv_buf_t b;
	int n;

	uv_read_stop((uv_stream_t *)&m->tcp);
	n = snprintf(head, sizeof(head), "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n", status, ctype, body ? body->len : 0);
	if (!buf_append(&m->out, head, (size_t)n) || (body && !buf_append(&m->out, body->data, body->len))) {
		mconn_close(m);
		return;
	}
	b = uv_buf_init((char *)m->out.data, (unsigned int)m->out.len);
	m->wr.data = m;
	if (uv_write(&m->wr, (uv_stream_t *)&m->tcp, &b, 1, mconn_written) < 0)
		mconn_close(m);
}

static void mconn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct mconn *m = h->data;

	(void)suggested;
	*buf = uv_buf_init(m->req + m->len, (unsigned int)(REQ_MAX - m->len - 1));
}

static void mconn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct mconn *m = s->data;
	struct buf body;

	(void)buf;
	if (nread < 0) {
		mconn_close(m);
		return;
	}
	m->len += (size_t)nread;
	m->req[m->len] = '\0';
	if (!strstr(m->req, "\r\n\r\n") && !strstr(m->req, "\n\n")) {
		if (m->len >= REQ_MAX - 1)
			mconn_close(m);
		return;
	}
	buf_init(&body);
	if (strncmp(m->req, "GET /metrics ", 13) == 0 || strncmp(m->req, "GET /metrics?", 13) == 0) {
		if (metrics_render(&body))
			mconn_reply(m, "200 OK", "text/plain; version=0.0.4; charset=utf-8", &body);
		else
			mconn_reply(m, "500 Internal Server Error", "text/plain", NULL);
	} else {
		static const char nf[] = "not found: try /metrics\n";

		if (buf_append(&body, nf, sizeof(nf) - 1))
			mconn_reply(m, "404 Not Found", "text/plain", &body);
		else
			mconn_close(m);
	}
	buf_free(&body);
}

static void mconn_timeout(uv_timer_t *t)
{
	mconn_close(t->data);
}

static void metrics_accept(uv_stream_t *server, int status)
{
	struct mconn *m;

	if (status < 0)
		return;
	m = calloc(1, sizeof(*m));
	if (!m)
		return;
	buf_init(&m->out);
	uv_tcp_init(server->loop, &m->tcp);
	uv_timer_init(server->loop, &m->timer);
	m->tcp.data = m->timer.data = m;
	if (uv_accept(server, (uv_stream_t *)&m->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&m->tcp, mconn_alloc, mconn_read) < 0) {
		mconn_close(m);
		return;
	}
	uv_timer_start(&m->timer, mconn_timeout, REQ_TIMEOUT_MS, 0);
}

int metrics_start(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen)
{
	char addrs[1024], *save = NULL, *a;

	if (!cfg->metrics_port)
		return 0;
	snprintf(addrs, sizeof(addrs), "%s", *cfg->listen_addresses ? cfg->listen_addresses : "127.0.0.1");
	for (a = strtok_r(addrs, ",", &save); a && n_listeners < MAX_LISTENERS; a = strtok_r(NULL, ",", &save)) {
		struct sockaddr_storage ss;
		uv_tcp_t *t = &listeners[n_listeners];
		int r;

		a += strspn(a, " \t");
		a[strcspn(a, " \t")] = '\0';
		if (strcmp(a, "*") == 0)
			a = "0.0.0.0";
		if (uv_ip4_addr(a, cfg->metrics_port, (struct sockaddr_in *)&ss) != 0 &&
		    uv_ip6_addr(a, cfg->metrics_port, (struct sockaddr_in6 *)&ss) != 0) {
			snprintf(err, errlen, "metrics_port: cannot listen on \"%s\" (an IP address is needed)", a);
			return -1;
		}
		uv_tcp_init(loop, t);
		r = uv_tcp_bind(t, (const struct sockaddr *)&ss, 0);
		if (r == 0)
			r = uv_listen((uv_stream_t *)t, 64, metrics_accept);
		n_listeners++;
		if (r < 0) {
			snprintf(err, errlen, "metrics_port %d on %s: %s", cfg->metrics_port, a, uv_strerror(r));
			return -1;
		}
	}
	log_info("metrics on port %d (GET /metrics)", cfg->metrics_port);
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	(void)h;
}

void metrics_stop(void)
{
	for (int i = 0; i < n_listeners; i++)
		if (!uv_is_closing((uv_handle_t *)&listeners[i]))
			uv_close((uv_handle_t *)&listeners[i], listener_closed);
	n_listeners = 0;
}
