/*
 * cmd_show.c - admin console commands that show every worker's state
 * (doc/admin.md): SHOW POOLS, SHOW CLIENTS, SHOW SERVERS, and SHOW STATS
 * (per database and node), SHOW TOTALS.
 *
 * Clients, servers and pools belong to their worker's thread, so the first
 * three are answered by the workers themselves: the command defers
 * (admin_defer), the console starts a snapshot request (struct
 * admin_snapshot, owned here) and posts INBOX_ADMIN_SNAPSHOT to every
 * worker; each worker fills only its own part, counts itself done under the
 * request's mutex, and the last one posts the request back to the
 * requester: the console's worker, which builds the answer
 * (admin_deferred_done) and frees the request, or the control socket on
 * the main thread (ctlsock_snapshot_post, ctlsock.c).  A worker that has
 * stopped counts itself done with an empty part (admin_snapshot_dropped),
 * so that a request never waits for a worker that will not answer.
 * SHOW STATS and SHOW TOTALS read the workers' relaxed-atomic counters
 * directly (as the metrics endpoint does) and run anywhere.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/rsess.h"
#include "pgchorus/snapshot.h"
#include "pgchorus/worker.h"
#include "admin-int.h"

/* ---- the request across workers --------------------------------------------- */

struct admin_snapshot {
	uv_mutex_t lock;
	int left;                        /* workers still filling their part (LOCK) */
	struct worker *console;          /* the console's worker; NULL: the control socket */
	void *owner;                     /* requester's thread only; NULL: the requester is gone */
	struct inbox_msg *done;          /* posted to the requester by the last worker */
	const struct admin_cmd *cmd;
	admin_collect_fn *collect;
	bool text_parts;                 /* parts in text (FINISH reads them) */
	int16_t formats[ADMIN_MAX_COLS];
	int n_parts;
	struct admin_res parts[];        /* one per worker, written only by that worker */
};

void admin_snapshot_free(struct admin_snapshot *s)
{
	for (int i = 0; i < s->n_parts; i++)
		admin_res_free(&s->parts[i]);
	uv_mutex_destroy(&s->lock);
	free(s->done);
	free(s);
}

struct admin_snapshot *admin_snapshot_start(struct worker *console, void *owner, const struct admin_res *r)
{
	int n = pgc_runtime.n_workers;
	struct admin_snapshot *s = calloc(1, sizeof(*s) + (size_t)n * sizeof(s->parts[0]));
	struct inbox_msg **msgs = calloc((size_t)n + 1, sizeof(*msgs));
	bool ok = s && msgs && uv_mutex_init(&s->lock) == 0;

	if (!ok) {
		free(s);
		free(msgs);
		return NULL;
	}
	s->left = n;
	s->console = console;
	s->owner = owner;
	s->cmd = r->cmd;
	s->collect = r->collect;
	s->text_parts = r->finish != NULL || !r->formats;
	if (r->formats)
		memcpy(s->formats, r->formats, sizeof(s->formats[0]) * (size_t)r->cmd->n_cols);
	s->n_parts = n;
	for (int i = 0; i <= n && ok; i++) {
		msgs[i] = calloc(1, sizeof(*msgs[i]));
		ok = msgs[i] != NULL;
	}
	if (!ok) {
		for (int i = 0; i <= n; i++)
			free(msgs[i]);
		free(msgs);
		uv_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	s->done = msgs[n];
	s->done->kind = INBOX_ADMIN_SNAPSHOT;
	s->done->snap = s;
	s->done->key = SNAPSHOT_DONE;
	for (int i = 0; i < n; i++) {
		msgs[i]->kind = INBOX_ADMIN_SNAPSHOT;
		msgs[i]->snap = s;
		msgs[i]->key = SNAPSHOT_COLLECT;
		worker_post(&pgc_runtime.workers[i], msgs[i]);
	}
	free(msgs);
	return s;
}

void admin_snapshot_forget(struct admin_snapshot *s)
{
	s->owner = NULL;
}

void *admin_snapshot_owner(const struct admin_snapshot *s)
{
	return s->owner;
}

/* A worker's part of S is in (or dropped): the last one hands S to the
 * requester.  S lives until the requester handled it; every part is
 * written before the unlock that brought LEFT to 0. */
static void part_done(struct admin_snapshot *s)
{
	struct inbox_msg *done = NULL;

	uv_mutex_lock(&s->lock);
	if (--s->left == 0)
		done = s->done;
	uv_mutex_unlock(&s->lock);
	if (!done)
		return;
	if (s->console) {
		worker_post(s->console, done);
	} else {
		s->done = NULL; /* the control socket takes the message over */
		ctlsock_snapshot_post(done);
	}
}

void admin_snapshot_on_inbox(struct worker *w, struct admin_snapshot *s, uint32_t key)
{
	struct admin_res *part;

	if (key == SNAPSHOT_DONE) {
		s->done = NULL; /* the inbox frees the message */
		if (s->owner)
			admin_deferred_done(s->owner, s);
		admin_snapshot_free(s);
		return;
	}
	part = &s->parts[w->id];
	admin_res_init(part, w->cfg, "", "", s->cmd, s->text_parts ? NULL : s->formats);
	s->collect(part, w);
	part_done(s);
}

void admin_snapshot_dropped(struct worker *w, struct admin_snapshot *s, uint32_t key)
{
	if (key == SNAPSHOT_DONE) {
		/* the console's worker stopped: its sessions are gone */
		s->done = NULL;
		admin_snapshot_free(s);
		return;
	}
	admin_res_init(&s->parts[w->id], NULL, "", "", s->cmd, NULL);
	part_done(s);
}

void admin_snapshot_result(const struct admin_snapshot *s, struct admin_res *r)
{
	for (int i = 0; i < s->n_parts; i++) {
		if (s->parts[i].failed) {
			admin_error(r, s->parts[i].err.sqlstate, "%s", s->parts[i].err.message);
			return;
		}
	}
	if (r->finish) {
		r->finish(r, s->parts, s->n_parts);
		return;
	}
	for (int i = 0; i < s->n_parts; i++) {
		if (!s->parts[i].rows.len)
			continue;
		if (!buf_append(&r->rows, s->parts[i].rows.data, s->parts[i].rows.len)) {
			admin_error(r, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
		r->n_rows += s->parts[i].n_rows;
	}
}

/* ---- helpers ------------------------------------------------------------------ */

#define COLS(c) c, (int)(sizeof(c) / sizeof(c[0]))

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Loop time LOOP_MS of W as seconds since the epoch. */
static double wall_time(struct worker *w, uint64_t loop_ms)
{
	uint64_t now = worker_now(w);

	if (!loop_ms)
		return 0;
	return wall_now() - (double)(now > loop_ms ? now - loop_ms : 0) / 1000.0;
}

static double seconds_since(struct worker *w, uint64_t loop_ms)
{
	uint64_t now = worker_now(w);

	return loop_ms && now > loop_ms ? (double)(now - loop_ms) / 1000.0 : 0;
}

static const char *client_state_str(enum client_state st)
{
	switch (st) {
	case CL_STARTUP:
		return "startup";
	case CL_AUTH:
		return "auth";
	case CL_LOGIN_WAIT:
		return "login_wait";
	case CL_LOGIN:
		return "login";
	case CL_IDLE:
		return "idle";
	case CL_WAIT:
		return "wait";
	case CL_ACTIVE:
		return "active";
	case CL_PIPED:
		return "piped";
	case CL_CLOSING:
		return "closing";
	}
	return "unknown";
}

static const char *server_state_str(enum server_state st)
{
	switch (st) {
	case SV_CONNECTING:
		return "connecting";
	case SV_LOGIN:
		return "login";
	case SV_IDLE:
		return "idle";
	case SV_ACTIVE:
		return "active";
	case SV_RESET:
		return "reset";
	case SV_CLOSING:
		return "closing";
	}
	return "unknown";
}

static const char *step_str(enum rs_step st)
{
	static const char *const names[] = {
		[RS_NONE] = "none",       [RS_ACQUIRE] = "acquire", [RS_READ] = "read",
		[RS_PARALLEL] = "parallel", [RS_PRIMARY] = "primary", [RS_OTHERS] = "others",
		[RS_SYNC] = "sync",       [RS_PREPARE] = "prepare", [RS_COMMIT] = "commit",
		[RS_ABORT] = "abort",     [RS_LOOKUP] = "lookup",   [RS_ORDER] = "order",
		[RS_GATE] = "gate",
	};

	return (unsigned)st < sizeof(names) / sizeof(names[0]) && names[st] ? names[st] : "unknown";
}

static void put_ptr(struct admin_res *r, char prefix, const void *p)
{
	char id[32];

	snprintf(id, sizeof(id), "%c-%p", prefix, p);
	admin_put_text(r, id);
}

/* ---- SHOW CLIENTS ----------------------------------------------------------------- */

static const struct admin_col clients_cols[] = {
	{ "worker", ADMIN_INT4 },
	{ "id", ADMIN_TEXT },
	{ "user", ADMIN_TEXT },
	{ "database", ADMIN_TEXT },
	{ "address", ADMIN_TEXT },
	{ "state", ADMIN_TEXT },
	{ "connected_at", ADMIN_TEXT },
	{ "idle_s", ADMIN_FLOAT8 },
	{ "txn", ADMIN_TEXT },
	{ "step", ADMIN_TEXT },
	{ "server", ADMIN_TEXT },
	{ "application_name", ADMIN_TEXT },
};

static void collect_clients(struct admin_res *r, struct worker *w)
{
	struct list *it;

	for (it = (&w->clients)->next; it != (&w->clients); it = it->next) {
		struct client *c = list_entry(it, struct client, link);
		char txn[2] = { c->rs ? c->rs->txn : 0, 0 };
		struct server *srv;

		if (r->failed)
			return;
		admin_row_begin(r);
		admin_put_int(r, w->id);
		put_ptr(r, 'C', c);
		admin_put_text(r, c->user ? c->user : "");
		admin_put_text(r, c->database ? c->database : "");
		admin_put_text(r, c->addr);
		admin_put_text(r, client_state_str(c->state));
		admin_put_time(r, wall_time(w, c->connected_at));
		admin_put_float(r, seconds_since(w, c->last_active ? c->last_active : c->connected_at));
		if (c->rs) {
			admin_put_text(r, txn);
			admin_put_text(r, step_str(c->rs->step));
		} else {
			admin_put_null(r);
			admin_put_null(r);
		}
		srv = c->srv;
		for (int k = 0; !srv && c->rs && k < c->rs->n_nodes; k++)
			srv = c->rs->slot[k].srv; /* replication: its first node's */
		if (srv)
			put_ptr(r, 'S', srv);
		else
			admin_put_null(r);
		admin_put_text(r, c->params[TP_APPLICATION_NAME] ? c->params[TP_APPLICATION_NAME] : "");
		admin_row_end(r);
	}
}

static void show_clients(struct admin_res *r, const int64_t *args)
{
	(void)args;
	admin_defer(r, collect_clients, NULL);
}

/* ---- SHOW SERVERS ----------------------------------------------------------------- */

static const struct admin_col servers_cols[] = {
	{ "worker", ADMIN_INT4 },
	{ "id", ADMIN_TEXT },
	{ "node", ADMIN_INT4 },
	{ "database", ADMIN_TEXT },
	{ "user", ADMIN_TEXT },
	{ "state", ADMIN_TEXT },
	{ "backend_pid", ADMIN_INT8 },
	{ "client", ADMIN_TEXT },
	{ "age_s", ADMIN_FLOAT8 },
	{ "txn", ADMIN_TEXT },
};

static void server_rows(struct admin_res *r, struct worker *w, struct pool *p, struct list *head)
{
	struct list *it;

	for (it = (head)->next; it != (head); it = it->next) {
		struct server *s = list_entry(it, struct server, link);
		char txn[2] = { s->txn_status, 0 };

		if (r->failed)
			return;
		admin_row_begin(r);
		admin_put_int(r, w->id);
		put_ptr(r, 'S', s);
		admin_put_int(r, p->node);
		admin_put_text(r, p->database);
		admin_put_text(r, p->user);
		admin_put_text(r, server_state_str(s->state));
		if (s->be_pid)
			admin_put_int(r, s->be_pid);
		else
			admin_put_null(r);
		if (s->client)
			put_ptr(r, 'C', s->client);
		else
			admin_put_null(r);
		admin_put_float(r, seconds_since(w, s->created));
		if (s->txn_status)
			admin_put_text(r, txn);
		else
			admin_put_null(r);
		admin_row_end(r);
	}
}

struct walk {
	struct admin_res *r;
	struct worker *w;
};

static void servers_of_pool(const char *key, void *value, void *arg)
{
	struct walk *wk = arg;
	struct pool *p = value;

	(void)key;
	server_rows(wk->r, wk->w, p, &p->idle);
	server_rows(wk->r, wk->w, p, &p->busy);
}

static void collect_servers(struct admin_res *r, struct worker *w)
{
	struct walk wk = { r, w };

	strmap_foreach(&w->pools, servers_of_pool, &wk);
}

static void show_servers(struct admin_res *r, const int64_t *args)
{
	(void)args;
	admin_defer(r, collect_servers, NULL);
}

/* ---- SHOW POOLS ------------------------------------------------------------------- */

static const struct admin_col pools_cols[] = {
	{ "database", ADMIN_TEXT },
	{ "user", ADMIN_TEXT },
	{ "node", ADMIN_INT4 },
	{ "servers", ADMIN_INT4 },
	{ "idle", ADMIN_INT4 },
	{ "active", ADMIN_INT4 },
	{ "connecting", ADMIN_INT4 },
	{ "waiting", ADMIN_INT4 },
	{ "max_wait_ms", ADMIN_INT8 },
};

#define POOL_NUMS 6 /* the columns after node */

static void pool_row(const char *key, void *value, void *arg)
{
	struct walk *wk = arg;
	struct pool *p = value;
	uint64_t now = worker_now(wk->w), max_wait = 0;
	int64_t idle = 0, active = 0, connecting = 0;
	struct list *it;

	(void)key;
	if (wk->r->failed)
		return;
	for (it = (&p->idle)->next; it != (&p->idle); it = it->next)
		idle++;
	for (it = (&p->busy)->next; it != (&p->busy); it = it->next) {
		struct server *s = list_entry(it, struct server, link);

		if (s->state == SV_ACTIVE)
			active++;
		else if (s->state == SV_CONNECTING || s->state == SV_LOGIN)
			connecting++;
	}
	for (it = (&p->waiters)->next; it != (&p->waiters); it = it->next) {
		struct client *c = list_entry(it, struct client, wait_link);

		if (c->wait_since && now - c->wait_since > max_wait)
			max_wait = now - c->wait_since;
	}
	admin_row_begin(wk->r);
	admin_put_text(wk->r, p->database);
	admin_put_text(wk->r, p->user);
	admin_put_int(wk->r, p->node);
	admin_put_int(wk->r, p->n_servers);
	admin_put_int(wk->r, idle);
	admin_put_int(wk->r, active);
	admin_put_int(wk->r, connecting);
	admin_put_int(wk->r, p->n_waiting);
	admin_put_int(wk->r, (int64_t)max_wait);
	admin_row_end(wk->r);
}

static void collect_pools(struct admin_res *r, struct worker *w)
{
	struct walk wk = { r, w };

	strmap_foreach(&w->pools, pool_row, &wk);
}

/* One pool summed over the workers. */
struct pool_sum {
	char *database;
	char *user;
	int64_t node;
	int64_t n[POOL_NUMS];            /* servers ... max_wait_ms */
};

static char *value_dup(const struct tf_value *v)
{
	char *s = malloc((size_t)(v->len > 0 ? v->len : 0) + 1);

	if (s) {
		if (v->len > 0)
			memcpy(s, v->p, (size_t)v->len);
		s[v->len > 0 ? v->len : 0] = 0;
	}
	return s;
}

static int64_t value_int(const struct tf_value *v)
{
	char text[24];
	int len = v->len > 0 && v->len < (int)sizeof(text) ? v->len : 0;

	memcpy(text, v->p ? v->p : "", (size_t)len);
	text[len] = 0;
	return strtoll(text, NULL, 10);
}

static bool value_is(const struct tf_value *v, const char *s)
{
	return v->len >= 0 && (size_t)v->len == strlen(s) && memcmp(v->p, s, (size_t)v->len) == 0;
}

static int pool_sum_cmp(const void *a, const void *b)
{
	const struct pool_sum *x = a, *y = b;
	int d = strcmp(x->database, y->database);

	if (!d)
		d = strcmp(x->user, y->user);
	if (!d)
		d = (x->node > y->node) - (x->node < y->node);
	return d;
}

static void finish_pools(struct admin_res *r, const struct admin_res *parts, int n_parts)
{
	struct tf_value v[ADMIN_MAX_COLS];
	struct pool_sum *sums = NULL;
	size_t n = 0, cap = 0;

	for (int i = 0; i < n_parts && !r->failed; i++) {
		size_t pos = 0;

		while (!r->failed && admin_res_next_row(&parts[i], &pos, v)) {
			int64_t node = value_int(&v[2]);
			size_t k;

			for (k = 0; k < n; k++) {
				if (sums[k].node == node && value_is(&v[0], sums[k].database) &&
				    value_is(&v[1], sums[k].user))
					break;
			}
			if (k == n) {
				if (n == cap) {
					size_t ncap = cap ? cap * 2 : 16;
					struct pool_sum *ns = realloc(sums, ncap * sizeof(*ns));

					if (!ns) {
						admin_error(r, SQLSTATE_OUT_OF_MEMORY, "out of memory");
						break;
					}
					sums = ns;
					cap = ncap;
				}
				memset(&sums[n], 0, sizeof(sums[n]));
				sums[n].database = value_dup(&v[0]);
				sums[n].user = value_dup(&v[1]);
				sums[n].node = node;
				n++;
				if (!sums[k].database || !sums[k].user) {
					admin_error(r, SQLSTATE_OUT_OF_MEMORY, "out of memory");
					break;
				}
			}
			for (int c = 0; c < POOL_NUMS - 1; c++)
				sums[k].n[c] += value_int(&v[3 + c]);
			if (value_int(&v[3 + POOL_NUMS - 1]) > sums[k].n[POOL_NUMS - 1])
				sums[k].n[POOL_NUMS - 1] = value_int(&v[3 + POOL_NUMS - 1]);
		}
	}
	if (!r->failed && n)
		qsort(sums, n, sizeof(*sums), pool_sum_cmp);
	for (size_t k = 0; k < n && !r->failed; k++) {
		admin_row_begin(r);
		admin_put_text(r, sums[k].database);
		admin_put_text(r, sums[k].user);
		admin_put_int(r, sums[k].node);
		for (int c = 0; c < POOL_NUMS; c++)
			admin_put_int(r, sums[k].n[c]);
		admin_row_end(r);
	}
	for (size_t k = 0; k < n; k++) {
		free(sums[k].database);
		free(sums[k].user);
	}
	free(sums);
}

static void show_pools(struct admin_res *r, const int64_t *args)
{
	(void)args;
	admin_defer(r, collect_pools, finish_pools);
}

/* ---- SHOW TOTALS ------------------------------------------------------------------- */

static const struct admin_col stats_cols[] = {
	{ "node", ADMIN_INT4 },
	{ "statements", ADMIN_INT8 },
	{ "transactions", ADMIN_INT8 },
	{ "units", ADMIN_INT8 },
	{ "commits_2pc", ADMIN_INT8 },
	{ "aborts", ADMIN_INT8 },
	{ "errors", ADMIN_INT8 },
	{ "avg_unit_ms", ADMIN_FLOAT8 },
	{ "p99_unit_ms", ADMIN_FLOAT8 },
};

static uint64_t load(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Sum over the workers of the counter at OFFSET in struct worker_stats. */
static uint64_t sum_stat(size_t offset)
{
	uint64_t v = 0;

	for (int i = 0; i < pgc_runtime.n_workers; i++)
		v += load((const _Atomic uint64_t *)((const char *)&pgc_runtime.workers[i].stats + offset));
	return v;
}

#define SUM(field) sum_stat(offsetof(struct worker_stats, field))
#define SUM_AT(field, i) sum_stat(offsetof(struct worker_stats, field) + (size_t)(i) * sizeof(_Atomic uint64_t))

/* The upper bound (ms) of the bucket of LAT where 99% of the COUNT are
 * reached; -1 beyond the last bound. */
static double p99_ms(const uint64_t *lat, uint64_t count)
{
	uint64_t cum = 0;

	for (int b = 0; b < STAT_LAT_BUCKETS; b++) {
		cum += lat[b];
		if ((double)cum >= 0.99 * (double)count)
			return stat_lat_bounds[b] * 1000.0;
	}
	return -1;
}

static void show_totals(struct admin_res *r, const int64_t *args)
{
	uint64_t buckets[STAT_LAT_BUCKETS + 1], count = 0, errors = 0, statements = 0;
	int n_nodes = nodes_count();

	(void)args;
	if (n_nodes > 64)
		n_nodes = 64;
	for (int i = 0; i <= STAT_LAT_BUCKETS; i++) {
		buckets[i] = SUM_AT(lat_bucket, i);
		count += buckets[i];
	}
	for (int i = 0; i < 36 * 36; i++)
		errors += SUM_AT(errors, i);
	/* Per node only the statements are counted (the rest is per worker):
	 * one row per node, then the totals (node NULL). */
	for (int i = 0; i < n_nodes && !r->failed; i++) {
		uint64_t st = SUM_AT(node_statements, i);

		statements += st;
		admin_row_begin(r);
		admin_put_int(r, i);
		admin_put_int(r, (int64_t)st);
		for (int c = 2; c < r->cmd->n_cols; c++)
			admin_put_null(r);
		admin_row_end(r);
	}
	admin_row_begin(r);
	admin_put_null(r);
	admin_put_int(r, (int64_t)statements);
	admin_put_int(r, (int64_t)SUM(transactions));
	admin_put_int(r, (int64_t)SUM(units));
	admin_put_int(r, (int64_t)SUM(commits_2pc));
	admin_put_int(r, (int64_t)SUM(aborts));
	admin_put_int(r, (int64_t)errors);
	if (count) {
		double p99 = p99_ms(buckets, count);

		admin_put_float(r, (double)SUM(lat_sum_us) / 1000.0 / (double)count);
		if (p99 >= 0)
			admin_put_float(r, p99);
		else
			admin_put_null(r); /* beyond the last bound */
	} else {
		admin_put_null(r);
		admin_put_null(r);
	}
	admin_row_end(r);
}

/* ---- SHOW STATS: per database and node ------------------------------------------- */

static const struct admin_col db_stats_cols[] = {
	{ "database", ADMIN_TEXT },
	{ "node", ADMIN_INT4 },
	{ "transactions", ADMIN_INT8 },
	{ "queries", ADMIN_INT8 },
	{ "bytes_received", ADMIN_INT8 },
	{ "bytes_sent", ADMIN_INT8 },
	{ "avg_ms", ADMIN_FLOAT8 },
	{ "p99_ms", ADMIN_FLOAT8 },
};

/* One (database, node) summed over the workers. */
struct db_sum {
	uint64_t transactions, queries, bytes_in, bytes_out, time_us;
	uint64_t lat[STAT_LAT_BUCKETS + 1];
};

static void db_sum_add(struct db_sum *d, const struct stat_db_node *c)
{
	d->transactions += load(&c->transactions);
	d->queries += load(&c->queries);
	d->bytes_in += load(&c->bytes_in);
	d->bytes_out += load(&c->bytes_out);
	d->time_us += load(&c->time_us);
	for (int b = 0; b <= STAT_LAT_BUCKETS; b++)
		d->lat[b] += load(&c->lat_bucket[b]);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void show_db_stats(struct admin_res *r, const int64_t *args)
{
	/* the names of every worker's rows, each once (at most n_workers * STAT_DBS) */
	int n_workers = pgc_runtime.n_workers, n_names = 0, n_nodes = nodes_count();
	const char **names = calloc((size_t)(n_workers > 0 ? n_workers : 1) * STAT_DBS, sizeof(*names));

	(void)args;
	if (!names) {
		admin_error(r, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (n_nodes > STAT_DB_NODES)
		n_nodes = STAT_DB_NODES;
	for (int w = 0; w < n_workers; w++) {
		struct stat_db *dbs = pgc_runtime.workers[w].stats.dbs;

		for (int i = 0; i < STAT_DBS; i++) {
			bool seen = false;

			if (i < STAT_DBS - 1 && !atomic_load_explicit(&dbs[i].used, memory_order_acquire))
				break;
			for (int k = 0; k < n_names && !seen; k++)
				seen = strcmp(names[k], i < STAT_DBS - 1 ? dbs[i].name : STAT_DB_OTHER) == 0;
			if (!seen)
				names[n_names++] = i < STAT_DBS - 1 ? dbs[i].name : STAT_DB_OTHER;
		}
	}
	qsort(names, (size_t)n_names, sizeof(*names), name_cmp);
	for (int k = 0; k < n_names && !r->failed; k++) {
		for (int node = 0; node < n_nodes && !r->failed; node++) {
			struct db_sum d;

			memset(&d, 0, sizeof(d));
			for (int w = 0; w < n_workers; w++) {
				struct stat_db *dbs = pgc_runtime.workers[w].stats.dbs;

				for (int i = 0; i < STAT_DBS; i++) {
					const char *name = i < STAT_DBS - 1 ? dbs[i].name : STAT_DB_OTHER;

					if (i < STAT_DBS - 1 && !atomic_load_explicit(&dbs[i].used, memory_order_acquire))
						break;
					if (strcmp(name, names[k]) == 0)
						db_sum_add(&d, &dbs[i].node[node]);
				}
			}
			if (!d.transactions && !d.queries && !d.bytes_in && !d.bytes_out)
				continue; /* nothing ran there (the other row is mostly empty) */
			admin_row_begin(r);
			admin_put_text(r, names[k]);
			admin_put_int(r, node);
			admin_put_int(r, (int64_t)d.transactions);
			admin_put_int(r, (int64_t)d.queries);
			admin_put_int(r, (int64_t)d.bytes_in);
			admin_put_int(r, (int64_t)d.bytes_out);
			if (d.transactions) {
				double p99 = p99_ms(d.lat, d.transactions);

				admin_put_float(r, (double)d.time_us / 1000.0 / (double)d.transactions);
				if (p99 >= 0)
					admin_put_float(r, p99);
				else
					admin_put_null(r);
			} else {
				admin_put_null(r);
				admin_put_null(r);
			}
			admin_row_end(r);
		}
	}
	free(names);
}

static const struct admin_cmd show_cmds[] = {
	{ "SHOW POOLS", "SHOW POOLS", "SHOW", COLS(pools_cols), show_pools },
	{ "SHOW CLIENTS", "SHOW CLIENTS", "SHOW", COLS(clients_cols), show_clients },
	{ "SHOW SERVERS", "SHOW SERVERS", "SHOW", COLS(servers_cols), show_servers },
	{ "SHOW STATS", "SHOW STATS", "SHOW", COLS(db_stats_cols), show_db_stats },
	{ "SHOW TOTALS", "SHOW TOTALS", "SHOW", COLS(stats_cols), show_totals },
};

const struct admin_cmd_set admin_cmds_show = { show_cmds, sizeof(show_cmds) / sizeof(show_cmds[0]) };
