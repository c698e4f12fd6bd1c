/*
 * pool.c - server connection pools, one per (database, user, node) and
 * worker.  A worker may hold its share of pool_size (worker_pool_limit),
 * so the total per (database, user, node) never exceeds pool_size when
 * pool_size >= workers.  Waiting clients are served in FIFO order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/client.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/pool.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

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
	p->database = strdup(database);
	p->user = strdup(user);
	list_init(&p->idle);
	list_init(&p->busy);
	list_init(&p->waiters);
	u64map_init(&p->valid_stmts);
	if (!p->database || !p->user || !strmap_put(&w->pools, key, p, NULL)) {
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
	int waiting = 0;
	struct list *it, *tmp;

	list_for_each_safe(it, tmp, &p->waiters)
		waiting++;
	while (p->n_connecting < waiting && p->n_servers < worker_pool_limit(p->w) &&
	       p->w->run != WORKER_FAST) {
		if (!server_connect(p))
			break;
	}
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
	list_append(&p->waiters, &c->wait_link);
	pool_grow(p);
	return NULL;
}

void pool_cancel_wait(struct client *c)
{
	list_del(&c->wait_link);
}

void pool_server_ready(struct server *s)
{
	struct pool *p = s->pool;
	struct list *it;

	if (s->state == SV_LOGIN)
		p->n_connecting--;
	list_del(&s->link);
	if (s->close_on_release || s->w->run == WORKER_FAST) {
		list_append(&p->busy, &s->link);
		server_close(s, "closed on release");
		return;
	}
	it = list_pop_first(&p->waiters);
	if (it) {
		struct client *c = list_entry(it, struct client, wait_link);

		list_append(&p->busy, &s->link);
		server_link(s, c);
		if (s->state == SV_ACTIVE)
			client_server_ready(c, s);
		return;
	}
	list_prepend(&p->idle, &s->link);
	server_set_idle(s);
	if (s->in.data)
		server_process(s); /* anything that arrived meanwhile */
	else
		server_resume(s);  /* notice a node closing the connection */
}

void pool_release(struct server *s)
{
	struct worker *w = s->w;
	uint64_t now = worker_now(w);

	w->stats.transactions++;
	if (w->cfg->server_lifetime > 0 && now - s->created > (uint64_t)(w->cfg->server_lifetime * 1000))
		s->close_on_release = true;
	if (w->cfg->pool_mode == POOL_MODE_SESSION) {
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
	if (!list_empty(&p->waiters))
		pool_grow(p);
}

void pool_login_failed(struct pool *p, const uint8_t *msg, uint32_t len)
{
	struct list *it;

	while ((it = list_pop_first(&p->waiters)) != NULL)
		client_close_with_msg(list_entry(it, struct client, wait_link), msg, len);
}

void pool_connect_failed(struct pool *p, const char *reason)
{
	struct list *it;

	while ((it = list_pop_first(&p->waiters)) != NULL)
		client_close(list_entry(it, struct client, wait_link), SQLSTATE_CONNECTION_FAILURE, "%s", reason);
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
				list_del(&c->wait_link);
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
	/* Pools beyond the configured size after a reload shrink as servers go idle. */
	while (p->n_servers > worker_pool_limit(jc->w) && !list_empty(&p->idle)) {
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

	(void)key;
	(void)arg;
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
