/*
 * pool.c - server connection pools, one per (database, user, node) and
 * worker.  pool_size limits the servers of all workers together: they
 * share an atomic count (struct pool_shared).  A worker whose clients wait
 * while the limit is reached asks the other workers to close an idle
 * server of that pool; a worker that closes one while clients wait
 * elsewhere tells the others there is room.  Waiting clients are served
 * in FIFO order within a worker.
 */
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/client.h"
#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/pool.h"
#include "pgchorus/rsess.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct strmap shared_pools; /* key -> struct pool_shared, lives until exit */

static struct pool_shared *pool_shared_get(const char *key)
{
	struct pool_shared *ps;

	pthread_mutex_lock(&shared_lock);
	ps = strmap_get(&shared_pools, key);
	if (!ps) {
		ps = calloc(1, sizeof(*ps) + strlen(key) + 1);
		if (ps) {
			atomic_init(&ps->n_servers, 0);
			atomic_init(&ps->n_waiting, 0);
			atomic_init(&ps->n_starved, 0);
			strcpy(ps->key, key);
			if (!strmap_put(&shared_pools, key, ps, NULL)) {
				free(ps);
				ps = NULL;
			}
		}
	}
	pthread_mutex_unlock(&shared_lock);
	return ps;
}

static void shared_free(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	free(value);
}

void pool_shared_destroy_all(void)
{
	pthread_mutex_lock(&shared_lock);
	strmap_foreach(&shared_pools, shared_free, NULL);
	strmap_destroy(&shared_pools);
	pthread_mutex_unlock(&shared_lock);
}

/* Take one unit of the shared limit; false if pool_size is reached. */
static bool pool_reserve(struct pool *p)
{
	int n = atomic_load(&p->shared->n_servers);

	while (n < p->w->cfg->pool_size)
		if (atomic_compare_exchange_weak(&p->shared->n_servers, &n, n + 1))
			return true;
	return false;
}

/* Starved: clients wait beyond the servers we are opening, and pool_size forbids
 * opening more.  Other workers then hand over their idle servers (ours that are
 * busy may take a whole transaction to come back). */
static void pool_set_starved(struct pool *p, bool starved)
{
	if (p->starved == starved)
		return;
	p->starved = starved;
	atomic_fetch_add(&p->shared->n_starved, starved ? 1 : -1);
	if (starved && pgc_runtime.n_workers > 1)
		workers_post_pool(p->w, INBOX_POOL_RELEASE, p->shared);
}

/* A server idle this long is not just between two transactions of a busy pool. */
#define HAND_OVER_IDLE_MS 200

/*
 * An idle server of P that another worker could use instead: P has no waiters,
 * another worker starves, and the server has been idle a while (under load
 * servers are never idle that long, so saturated workers do not trade
 * servers back and forth).  NULL if none.
 */
static struct server *pool_idle_for_elsewhere(const struct pool *p)
{
	struct server *s;

	if (p->n_waiting || list_empty(&p->idle) || atomic_load(&p->shared->n_starved) == 0)
		return NULL;
	s = list_entry(p->idle.prev, struct server, link); /* least recently used */
	return worker_now(p->w) - s->state_since >= HAND_OVER_IDLE_MS ? s : NULL;
}

/* Stats: a wait for a server of P ended (C got one, or left). */
static void pool_wait_ended(struct pool *p, struct client *c)
{
	uint64_t now = worker_now(p->w);

	if (c->wait_since && now > c->wait_since)
		stat_add(&p->w->stats.node_wait_us[p->node & (STAT_NODES - 1)], (now - c->wait_since) * 1000);
}

static void pool_wait_add(struct pool *p, struct client *c)
{
	stat_inc(&p->w->stats.node_waits[p->node & (STAT_NODES - 1)]);
	list_append(&p->waiters, &c->wait_link);
	p->n_waiting++;
	atomic_fetch_add(&p->shared->n_waiting, 1);
}

static struct client *pool_wait_pop(struct pool *p)
{
	struct list *it = list_pop_first(&p->waiters);

	if (!it)
		return NULL;
	p->n_waiting--;
	atomic_fetch_sub(&p->shared->n_waiting, 1);
	if (!p->n_waiting)
		pool_set_starved(p, false);
	pool_wait_ended(p, list_entry(it, struct client, wait_link));
	return list_entry(it, struct client, wait_link);
}

struct pool *pool_get(struct worker *w, const char *database, const char *user, int node)
{
	char key[512];
	struct pool *p;
	int n = snprintf(key, sizeof(key), "%s\x01%s\x01%d", database, user, node);

	if (n < 0 || (size_t)n >= sizeof(key))
		return NULL; /* names are limited to NAMEDATALEN by the startup checks */
	p = strmap_get(&w->pools, key);
	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->w = w;
	p->node = node;
	p->stat_db = worker_stat_db(w, database);
	p->shared = pool_shared_get(key);
	p->database = strdup(database);
	p->user = strdup(user);
	list_init(&p->idle);
	list_init(&p->busy);
	list_init(&p->waiters);
	u64map_init(&p->valid_stmts);
	if (!p->shared || !p->database || !p->user || !strmap_put(&w->pools, key, p, NULL)) {
		free(p->database);
		free(p->user);
		free(p);
		return NULL;
	}
	return p;
}

/* Open connections while clients wait and the pool may grow. */
static void pool_grow(struct pool *p)
{
	while (p->n_connecting < p->n_waiting && p->w->run != WORKER_FAST) {
		if (!pool_reserve(p)) {
			/* At pool_size.  Our own busy servers come back to our waiters;
			 * idle ones of other workers would not: ask for them. */
			pool_set_starved(p, true);
			return;
		}
		if (!server_connect(p))
			return; /* server_connect released the unit */
	}
	pool_set_starved(p, false);
}

struct server *pool_acquire(struct pool *p, struct client *c)
{
	struct list *it = list_pop_first(&p->idle);

	if (it) {
		struct server *s = list_entry(it, struct server, link);

		list_append(&p->busy, &s->link);
		server_link(s, c);
		return s->state == SV_ACTIVE ? s : NULL;
	}
	c->wait_since = worker_now(p->w);
	pool_wait_add(p, c);
	pool_grow(p);
	return NULL;
}

struct client *pool_first_waiter(struct pool *p)
{
	return list_empty(&p->waiters) ? NULL : list_entry(p->waiters.next, struct client, wait_link);
}

void pool_cancel_wait(struct client *c)
{
	if (list_empty(&c->wait_link))
		return;
	list_del(&c->wait_link);
	pool_wait_ended(c->pool, c);
	c->pool->n_waiting--;
	atomic_fetch_sub(&c->pool->shared->n_waiting, 1);
	if (!c->pool->n_waiting)
		pool_set_starved(c->pool, false);
}

void pool_release_idle_for(struct worker *w, struct pool_shared *shared)
{
	struct pool *p = strmap_get(&w->pools, shared->key);
	struct server *s;

	if (p && (s = pool_idle_for_elsewhere(p)) != NULL)
		server_close(s, "released for another worker");
}

void pool_room_for(struct worker *w, struct pool_shared *shared)
{
	struct pool *p = strmap_get(&w->pools, shared->key);

	if (p && p->n_waiting)
		pool_grow(p);
}

void pool_server_ready(struct server *s)
{
	struct pool *p = s->pool;
	struct client *c;

	if (s->state == SV_LOGIN)
		p->n_connecting--;
	list_del(&s->link);
	if (s->close_on_release || s->w->run == WORKER_FAST ||
	    (s->w->run == WORKER_SHUTDOWN && !p->n_waiting)) {
		list_append(&p->busy, &s->link);
		server_close(s, "closed on release");
		return;
	}
	c = pool_wait_pop(p);
	if (c) {
		list_append(&p->busy, &s->link);
		server_link(s, c);
		if (s->state == SV_ACTIVE)
			client_server_ready(c, s);
		return;
	}
	list_prepend(&p->idle, &s->link);
	server_set_idle(s);
	server_resume(s); /* notice a node closing the connection */
}

void pool_count_txn(struct server *s, struct client *c)
{
	struct worker *w = s->w;
	uint64_t now = worker_now(w);
	struct stat_db_node *cell = stat_db_cell(&w->stats, s->pool->stat_db, s->pool->node);

	stat_inc(&w->stats.transactions);
	/* replication mode counts its transactions itself (rsess.c); its servers come back at logout */
	if (w->cfg->mode == RUN_MODE_REPLICATION)
		cell = NULL;
	else
		stat_inc(&cell->transactions);
	if (cell && s->state == SV_ACTIVE && now >= s->state_since) {
		/* held since it was linked (loop time: millisecond steps) */
		stat_add(&cell->time_us, (now - s->state_since) * 1000);
		stat_lat_add(cell->lat_bucket, (now - s->state_since) * 1000);
	}
	if (c)
		client_stat_bytes(c);
}

void pool_release(struct server *s, bool reset)
{
	struct worker *w = s->w;
	uint64_t now = worker_now(w);

	pool_count_txn(s, s->client);
	if (w->cfg->server_lifetime > 0 && now - s->created > (uint64_t)(w->cfg->server_lifetime * 1000))
		s->close_on_release = true;
	if (reset) {
		server_reset(s);
		return;
	}
	server_unlink(s);
	pool_server_ready(s);
}

void pool_server_gone(struct server *s)
{
	struct pool *p = s->pool;

	if (s->state == SV_CONNECTING || s->state == SV_LOGIN)
		p->n_connecting--;
	list_del(&s->link);
	p->n_servers--;
	atomic_fetch_sub(&p->shared->n_servers, 1);
	if (p->n_waiting)
		pool_grow(p);
	else if (atomic_load(&p->shared->n_starved) > 0)
		workers_post_pool(p->w, INBOX_POOL_ROOM, p->shared);
}

void pool_login_failed(struct pool *p, const uint8_t *msg, uint32_t len)
{
	struct client *c;

	while ((c = pool_wait_pop(p)) != NULL)
		client_close_with_msg(c, msg, len);
}

void pool_connect_failed(struct pool *p, const char *reason)
{
	struct client *c;

	while ((c = pool_wait_pop(p)) != NULL) {
		if (c->rs && c->state == CL_WAIT) {
			rs_pool_connect_failed(c, p->node, reason); /* the session goes on without the node */
		} else if (c->rs && c->state == CL_LOGIN_WAIT && p->w->cfg->failover_on_backend_error) {
			/* logging in through a node that cannot be reached: another node */
			node_fail(p->node, reason);
			if (node_primary() >= 0 && node_primary() != p->node)
				client_login_retry(c);
			else
				client_close(c, SQLSTATE_CONNECTION_FAILURE, "%s", reason);
		} else {
			client_close(c, SQLSTATE_CONNECTION_FAILURE, "%s", reason);
		}
	}
	if (p->w->cfg->mode == RUN_MODE_REPLICATION)
		health_check_now(p->node);
}

const struct param_list *pool_login_cache_get(const struct pool *p, const char *sig)
{
	for (int i = 0; i < p->n_login_cache; i++)
		if (strcmp(p->login_cache[i].sig, sig) == 0)
			return &p->login_cache[i].params;
	return NULL;
}

void pool_login_cache_put(struct pool *p, const char *sig, const struct param_list *params)
{
	struct login_cache e = { strdup(sig), { 0, NULL, NULL } };

	if (!e.sig || !param_list_copy(&e.params, params)) {
		free(e.sig);
		param_list_free(&e.params);
		return;
	}
	if (p->n_login_cache == POOL_LOGIN_CACHE) {
		free(p->login_cache[0].sig);
		param_list_free(&p->login_cache[0].params);
		memmove(p->login_cache, p->login_cache + 1, sizeof(e) * (POOL_LOGIN_CACHE - 1));
		p->n_login_cache--;
	}
	p->login_cache[p->n_login_cache++] = e;
}

struct janitor_ctx {
	struct worker *w;
	uint64_t now;
};

static void pool_janitor_one(const char *key, void *value, void *arg)
{
	struct janitor_ctx *jc = arg;
	struct pool *p = value;
	const struct config *cfg = jc->w->cfg;
	struct list *it, *tmp;

	(void)key;
	if (cfg->query_wait_timeout > 0) {
		uint64_t limit = (uint64_t)(cfg->query_wait_timeout * 1000);

		list_for_each_safe(it, tmp, &p->waiters) {
			struct client *c = list_entry(it, struct client, wait_link);

			if (jc->now - c->wait_since >= limit) {
				pool_cancel_wait(c);
				client_close(c, SQLSTATE_CONNECTION_FAILURE,
					     "query_wait_timeout: no server connection to node %d became "
					     "available within %g s (pool_size %d)",
					     p->node, cfg->query_wait_timeout, cfg->pool_size);
			}
		}
	}
	list_for_each_safe(it, tmp, &p->busy) {
		struct server *s = list_entry(it, struct server, link);

		if ((s->state == SV_CONNECTING || s->state == SV_LOGIN) && cfg->server_connect_timeout > 0 &&
		    jc->now - s->state_since >= (uint64_t)(cfg->server_connect_timeout * 1000)) {
			char reason[160];

			snprintf(reason, sizeof(reason), "server_connect_timeout: node %d did not answer within %g s",
				 p->node, cfg->server_connect_timeout);
			pool_connect_failed(p, reason);
			server_close(s, "connect timeout");
		}
	}
	list_for_each_safe(it, tmp, &p->idle) {
		struct server *s = list_entry(it, struct server, link);

		if ((cfg->server_idle_timeout > 0 &&
		     jc->now - s->state_since >= (uint64_t)(cfg->server_idle_timeout * 1000)) ||
		    (cfg->server_lifetime > 0 &&
		     jc->now - s->created >= (uint64_t)(cfg->server_lifetime * 1000)))
			server_close(s, "idle timeout or lifetime");
	}
	/* Another worker starves: hand over an idle server (one per tick). */
	{
		struct server *s = pool_idle_for_elsewhere(p);

		if (s)
			server_close(s, "released for another worker");
	}
	/* Pools beyond the configured size after a reload shrink as servers go idle. */
	while (atomic_load(&p->shared->n_servers) > cfg->pool_size && !list_empty(&p->idle)) {
		struct server *s = list_entry(p->idle.prev, struct server, link);

		server_close(s, "pool_size reduced");
	}
}

void pools_janitor(struct worker *w)
{
	struct janitor_ctx jc = { w, worker_now(w) };

	strmap_foreach(&w->pools, pool_janitor_one, &jc);
}

static void pool_close_idle_one(const char *key, void *value, void *arg)
{
	struct pool *p = value;
	struct list *it;
	const int *node = arg;

	(void)key;
	if (node && p->node != *node)
		return;
	while ((it = list_pop_first(&p->idle)) != NULL) {
		struct server *s = list_entry(it, struct server, link);

		list_append(&p->busy, &s->link);
		server_close(s, "shutdown");
	}
}

void pools_close_idle(struct worker *w)
{
	strmap_foreach(&w->pools, pool_close_idle_one, NULL);
}

void pools_close_node(struct worker *w, int node)
{
	strmap_foreach(&w->pools, pool_close_idle_one, &node);
}

static void pool_free_one(const char *key, void *value, void *arg)
{
	struct pool *p = value;

	(void)key;
	(void)arg;
	for (int i = 0; i < p->n_login_cache; i++) {
		free(p->login_cache[i].sig);
		param_list_free(&p->login_cache[i].params);
	}
	u64map_destroy(&p->valid_stmts);
	free(p->database);
	free(p->user);
	free(p);
}

void pools_destroy(struct worker *w)
{
	strmap_foreach(&w->pools, pool_free_one, NULL);
	strmap_destroy(&w->pools);
}
