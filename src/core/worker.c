/*
 * worker.c - event-loop threads: startup, inbox, periodic janitor,
 * graceful and fast shutdown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "pgchorus/cancel.h"
#include "pgchorus/client.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/pool.h"
#include "pgchorus/rsess.h"
#include "pgchorus/scram.h"
#include "pgchorus/server.h"
#include "pgchorus/snapshot.h"
#include "pgchorus/worker.h"

#define JANITOR_MS 1000
#define JANITOR_SHUTDOWN_MS 100
#define LISTEN_BACKLOG 4096

struct runtime pgc_runtime;
static uv_async_t *exit_notify;   /* main loop's handle, told when a worker ends */
static atomic_int workers_running;

void worker_remember_scram_keys(struct worker *w, const char *user, const struct scram_secret *keys)
{
	struct scram_secret *copy = malloc(sizeof(*copy));
	void *old = NULL;

	if (!copy)
		return;
	*copy = *keys;
	if (!strmap_put(&w->scram_keys, user, copy, &old)) {
		OPENSSL_cleanse(copy, sizeof(*copy));
		free(copy);
		return;
	}
	if (old) {
		OPENSSL_cleanse(old, sizeof(*copy));
		free(old);
	}
}

const struct scram_secret *worker_scram_keys(const struct worker *w, const char *user)
{
	return strmap_get(&w->scram_keys, user);
}

static void free_keys(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	OPENSSL_cleanse(value, sizeof(struct scram_secret));
	free(value);
}

void workers_post_pool(struct worker *w, enum inbox_kind kind, struct pool_shared *shared)
{
	for (int i = 0; i < pgc_runtime.n_workers; i++) {
		struct inbox_msg *m;

		if (&pgc_runtime.workers[i] == w)
			continue;
		m = calloc(1, sizeof(*m));
		if (!m)
			return;
		m->kind = kind;
		m->shared = shared;
		worker_post(&pgc_runtime.workers[i], m);
	}
}

/* A message W will never handle (W has stopped): freed, after what the
 * sender waits for is settled. */
static void inbox_drop(struct worker *w, struct inbox_msg *m)
{
	if (m->kind == INBOX_ADMIN_SNAPSHOT)
		admin_snapshot_dropped(w, m->snap, m->key);
	if (m->cfg)
		config_unref(m->cfg);
	free(m);
}

void worker_post(struct worker *w, struct inbox_msg *msg)
{
	bool stopped;

	uv_mutex_lock(&w->inbox_lock);
	stopped = w->stopped;
	if (!stopped)
		list_append(&w->inbox, &msg->link);
	uv_mutex_unlock(&w->inbox_lock);
	if (stopped)
		inbox_drop(w, msg); /* its async handle and loop are gone */
	else
		uv_async_send(&w->async);
}

void workers_broadcast(enum inbox_kind kind, struct config *cfg)
{
	for (int i = 0; i < pgc_runtime.n_workers; i++) {
		struct inbox_msg *m = calloc(1, sizeof(*m));

		if (!m) {
			log_error("out of memory posting to worker %d", i);
			continue;
		}
		m->kind = kind;
		m->cfg = cfg ? config_ref(cfg) : NULL;
		worker_post(&pgc_runtime.workers[i], m);
	}
}

bool worker_post_kind(struct worker *w, enum inbox_kind kind, uint32_t pid, uint32_t key)
{
	struct inbox_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return false;
	m->kind = kind;
	m->pid = pid;
	m->key = key;
	worker_post(w, m);
	return true;
}

void workers_post_kind(enum inbox_kind kind, uint32_t pid, uint32_t key)
{
	for (int i = 0; i < pgc_runtime.n_workers; i++)
		if (!worker_post_kind(&pgc_runtime.workers[i], kind, pid, key))
			log_error("out of memory posting to worker %d", i);
}

int worker_stat_db(struct worker *w, const char *database)
{
	struct stat_db *dbs = w->stats.dbs;
	int i;

	for (i = 0; i < STAT_DBS - 1; i++) {
		if (!atomic_load_explicit(&dbs[i].used, memory_order_relaxed))
			break;
		if (strcmp(dbs[i].name, database) == 0)
			return i;
	}
	if (i == STAT_DBS - 1)
		return i; /* full: the STAT_DB_OTHER row */
	snprintf(dbs[i].name, sizeof(dbs[i].name), "%s", database);
	/* readers (SHOW STATS, metrics) see the name once USED is */
	atomic_store_explicit(&dbs[i].used, true, memory_order_release);
	return i;
}

/* Pool gauges per node, summed over the pools of W, into w->stats. */
struct gauge_sums {
	uint64_t idle[STAT_NODES], active[STAT_NODES], connecting[STAT_NODES], waiting[STAT_NODES];
};

static void gauge_pool(const char *key, void *value, void *arg)
{
	struct gauge_sums *g = arg;
	struct pool *p = value;
	int n = p->node & (STAT_NODES - 1);
	struct list *it;

	(void)key;
	for (it = p->idle.next; it != &p->idle; it = it->next)
		g->idle[n]++;
	for (it = p->busy.next; it != &p->busy; it = it->next) {
		struct server *s = list_entry(it, struct server, link);

		if (s->state == SV_ACTIVE)
			g->active[n]++;
		else if (s->state == SV_CONNECTING || s->state == SV_LOGIN)
			g->connecting[n]++;
	}
	g->waiting[n] += (uint64_t)p->n_waiting;
}

static void worker_stats_gauges(struct worker *w)
{
	struct gauge_sums g;

	memset(&g, 0, sizeof(g));
	strmap_foreach(&w->pools, gauge_pool, &g);
	for (int i = 0; i < STAT_NODES; i++) {
		atomic_store_explicit(&w->stats.node_idle[i], g.idle[i], memory_order_relaxed);
		atomic_store_explicit(&w->stats.node_active[i], g.active[i], memory_order_relaxed);
		atomic_store_explicit(&w->stats.node_connecting[i], g.connecting[i], memory_order_relaxed);
		atomic_store_explicit(&w->stats.node_waiting[i], g.waiting[i], memory_order_relaxed);
	}
}

static void listener_close_cb(uv_handle_t *h)
{
	(void)h;
}

static void worker_close_listeners(struct worker *w)
{
	for (int i = 0; i < w->n_listen_fds; i++) {
		if (w->listeners[i].open) {
			w->listeners[i].open = false;
			uv_close(&w->listeners[i].u.handle, listener_close_cb);
		}
	}
}

static void worker_accept_cb(uv_stream_t *server, int status)
{
	struct listener *l = server->data;

	if (status < 0) {
		log_warning("accept failed: %s", uv_strerror(status));
		return;
	}
	client_accept(l->w, server, l->is_tcp);
}

static int worker_open_listeners(struct worker *w)
{
	w->listeners = calloc((size_t)(w->n_listen_fds ? w->n_listen_fds : 1), sizeof(*w->listeners));
	if (!w->listeners)
		return -ENOMEM;
	for (int i = 0; i < w->n_listen_fds; i++) {
		struct listener *l = &w->listeners[i];
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int r;

		l->w = w;
		if (getsockname(w->listen_fds[i], (struct sockaddr *)&ss, &sl) < 0)
			return -errno;
		l->is_tcp = ss.ss_family != AF_UNIX;
		if (l->is_tcp) {
			uv_tcp_init(&w->loop, &l->u.tcp);
			r = uv_tcp_open(&l->u.tcp, w->listen_fds[i]);
		} else {
			uv_pipe_init(&w->loop, &l->u.pipe, 0);
			r = uv_pipe_open(&l->u.pipe, w->listen_fds[i]);
		}
		l->u.handle.data = l;
		l->open = true;
		if (r == 0)
			r = uv_listen(&l->u.stream, LISTEN_BACKLOG, worker_accept_cb);
		if (r < 0) {
			log_error("worker %d: cannot listen: %s", w->id, uv_strerror(r));
			return r;
		}
	}
	return 0;
}

static void worker_handle_close_cb(uv_handle_t *h)
{
	(void)h;
}

/* Everything is gone: let the loop end. */
static void worker_maybe_finish(struct worker *w)
{
	if (w->run == WORKER_RUNNING || w->n_clients || w->open_handles)
		return;
	if (!uv_is_closing((uv_handle_t *)&w->janitor)) {
		uv_close((uv_handle_t *)&w->janitor, worker_handle_close_cb);
		uv_close((uv_handle_t *)&w->cork_prepare, worker_handle_close_cb);
		uv_close((uv_handle_t *)&w->cork_check, worker_handle_close_cb);
		uv_close((uv_handle_t *)&w->async, worker_handle_close_cb);
	}
}

static void worker_begin_shutdown(struct worker *w, bool fast)
{
	struct list *it, *tmp;

	if (fast)
		w->run = WORKER_FAST;
	else if (w->run == WORKER_RUNNING)
		w->run = WORKER_SHUTDOWN;
	else if (w->run == WORKER_FAST)
		return;
	if (!w->shutdown_started)
		w->shutdown_started = worker_now(w);
	worker_close_listeners(w);
	list_for_each_safe(it, tmp, &w->clients) {
		struct client *c = list_entry(it, struct client, link);

		if (fast)
			client_close(c, SQLSTATE_ADMIN_SHUTDOWN, "terminating connection due to pgchorus shutdown");
		else
			client_shutdown(c);
	}
	pools_close_idle(w);
	worker_maybe_finish(w);
}

static void worker_janitor_cb(uv_timer_t *t);

/* Corked output (stream.h) goes out before the loop can block in poll:
 * prepare runs just before the poll, check just after its callbacks. */
static void worker_cork_prepare_cb(uv_prepare_t *h)
{
	pstream_uncork_all(&((struct worker *)h->data)->corks);
}

static void worker_cork_check_cb(uv_check_t *h)
{
	pstream_uncork_all(&((struct worker *)h->data)->corks);
}

static void worker_inbox_cb(uv_async_t *a)
{
	struct worker *w = a->data;
	struct list batch, *it;

	list_init(&batch);
	uv_mutex_lock(&w->inbox_lock);
	while ((it = list_pop_first(&w->inbox)) != NULL)
		list_append(&batch, it);
	uv_mutex_unlock(&w->inbox_lock);
	while ((it = list_pop_first(&batch)) != NULL) {
		struct inbox_msg *m = list_entry(it, struct inbox_msg, link);

		switch (m->kind) {
		case INBOX_CANCEL:
			cancel_execute(w, m->pid, m->key);
			break;
		case INBOX_CONFIG:
			config_unref(w->cfg);
			w->cfg = m->cfg;
			m->cfg = NULL;
			break;
		case INBOX_POOL_RELEASE:
			pool_release_idle_for(w, m->shared);
			break;
		case INBOX_POOL_ROOM:
			pool_room_for(w, m->shared);
			break;
		case INBOX_NODE_DOWN:
			pools_close_node(w, (int)m->pid);
			rsess_node_down(w, (int)m->pid, m->key != 0);
			break;
		case INBOX_WRITES_RESUMED:
			rs_gate_wake(w);
			break;
		case INBOX_ADMIN_SNAPSHOT:
			admin_snapshot_on_inbox(w, m->snap, m->key);
			break;
		case INBOX_SHUTDOWN:
		case INBOX_FAST_SHUTDOWN:
			if (uv_is_closing((uv_handle_t *)&w->janitor))
				break;
			worker_begin_shutdown(w, m->kind == INBOX_FAST_SHUTDOWN);
			if (!uv_is_closing((uv_handle_t *)&w->janitor))
				uv_timer_start(&w->janitor, worker_janitor_cb, JANITOR_SHUTDOWN_MS, JANITOR_SHUTDOWN_MS);
			break;
		}
		if (m->cfg)
			config_unref(m->cfg);
		free(m);
	}
	rs_ship_order_wake(w);
}

static void worker_janitor_cb(uv_timer_t *t)
{
	struct worker *w = t->data;

	pools_janitor(w);
	clients_janitor(w);
	worker_stats_gauges(w);
	rs_ship_order_wake(w); /* in case a wake-up was missed */
	rs_gate_wake(w);
	if (w->run == WORKER_RUNNING)
		return;
	if (w->run == WORKER_SHUTDOWN && w->cfg->shutdown_timeout > 0 &&
	    worker_now(w) - w->shutdown_started >= (uint64_t)(w->cfg->shutdown_timeout * 1000)) {
		log_warning("worker %d: shutdown_timeout reached, closing %d remaining clients", w->id,
			    w->n_clients);
		worker_begin_shutdown(w, true);
	}
	if (!w->n_clients)
		pools_close_idle(w);
	worker_maybe_finish(w);
}

static void worker_main(void *arg)
{
	struct worker *w = arg;
	struct inbox_msg *m;
	struct list *it;

	if (worker_open_listeners(w) < 0) {
		log_error("worker %d cannot start", w->id);
		worker_begin_shutdown(w, true);
		uv_timer_start(&w->janitor, worker_janitor_cb, JANITOR_SHUTDOWN_MS, JANITOR_SHUTDOWN_MS);
	}
	uv_run(&w->loop, UV_RUN_DEFAULT);
	/* Nothing more is handled: later posts are dropped by the sender,
	 * what is in the inbox now is dropped here. */
	uv_mutex_lock(&w->inbox_lock);
	w->stopped = true;
	uv_mutex_unlock(&w->inbox_lock);
	while ((it = list_pop_first(&w->inbox)) != NULL) {
		m = list_entry(it, struct inbox_msg, link);
		inbox_drop(w, m);
	}
	pools_destroy(w);
	strmap_foreach(&w->scram_keys, free_keys, NULL);
	strmap_destroy(&w->scram_keys);
	u64map_destroy(&w->cancel_keys);
	classify_cache_destroy(&w->classify);
	bufpool_destroy(&w->bp);
	strmap_destroy(&w->strings); /* its clients are freed: nothing is held */
	if (uv_loop_close(&w->loop) != 0)
		log_warning("worker %d: loop closed with handles open", w->id);
	free(w->listeners);
	free(w->listen_fds);
	config_unref(w->cfg);
	w->cfg = NULL;
	log_debug("worker %d finished", w->id);
	atomic_fetch_sub(&workers_running, 1);
	uv_async_send(exit_notify);
}

int workers_start(struct config *cfg, int **listen_fds, int n_fds, uv_async_t *on_exit)
{
	pgc_runtime.n_workers = cfg->workers;
	pgc_runtime.workers = calloc((size_t)cfg->workers, sizeof(struct worker));
	if (!pgc_runtime.workers)
		return -ENOMEM;
	exit_notify = on_exit;
	atomic_init(&pgc_runtime.n_clients, 0);
	for (int i = 0; i < cfg->workers; i++) {
		struct worker *w = &pgc_runtime.workers[i];

		w->id = i;
		w->cfg = config_ref(cfg);
		w->listen_fds = listen_fds[i];
		w->n_listen_fds = n_fds;
		list_init(&w->inbox);
		list_init(&w->clients);
		strmap_init(&w->pools);
		strmap_init(&w->scram_keys);
		u64map_init(&w->cancel_keys);
		bufpool_init(&w->bp, 256);
		strmap_init(&w->strings);
		w->next_pid = 1;
		if (!classify_cache_init(&w->classify, 0, 0) || uv_loop_init(&w->loop) != 0 ||
		    uv_mutex_init(&w->inbox_lock) != 0)
			return -ENOMEM;
		list_init(&w->order_waiters);
		list_init(&w->gate_waiters);
		uv_async_init(&w->loop, &w->async, worker_inbox_cb);
		w->async.data = w;
		uv_timer_init(&w->loop, &w->janitor);
		w->janitor.data = w;
		uv_timer_start(&w->janitor, worker_janitor_cb, JANITOR_MS, JANITOR_MS);
		list_init(&w->corks);
		uv_prepare_init(&w->loop, &w->cork_prepare);
		w->cork_prepare.data = w;
		uv_prepare_start(&w->cork_prepare, worker_cork_prepare_cb);
		uv_unref((uv_handle_t *)&w->cork_prepare);
		uv_check_init(&w->loop, &w->cork_check);
		w->cork_check.data = w;
		uv_check_start(&w->cork_check, worker_cork_check_cb);
		uv_unref((uv_handle_t *)&w->cork_check);
	}
	for (int i = 0; i < cfg->workers; i++) {
		atomic_fetch_add(&workers_running, 1);
		if (uv_thread_create(&pgc_runtime.workers[i].thread, worker_main, &pgc_runtime.workers[i]) != 0) {
			atomic_fetch_sub(&workers_running, 1);
			return -EAGAIN;
		}
	}
	return 0;
}

int workers_running_count(void)
{
	return atomic_load(&workers_running);
}

void workers_join(void)
{
	for (int i = 0; i < pgc_runtime.n_workers; i++) {
		uv_thread_join(&pgc_runtime.workers[i].thread);
		uv_mutex_destroy(&pgc_runtime.workers[i].inbox_lock);
	}
	pgc_runtime.n_workers = 0; /* nothing is posted to them any more */
	free(pgc_runtime.workers);
	pgc_runtime.workers = NULL;
}
