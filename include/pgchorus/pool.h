/*
 * pool.h - pools of server connections keyed by (database, user, node),
 * one set per worker.  Clients wait in FIFO order for a server.
 */
#ifndef PGCHORUS_POOL_H
#define PGCHORUS_POOL_H

#include "pgchorus/core-t.h"

/* Find or create the pool; NULL on OOM. */
struct pool *pool_get(struct worker *w, const char *database, const char *user, int node);
/*
 * Give C a server of P.  Returns the linked server if one was idle;
 * otherwise queues C (opening a connection if the pool may grow) and
 * returns NULL; client_server_ready() is called when one is linked.
 */
struct server *pool_acquire(struct pool *p, struct client *c);
/* The client that waits longest for a server of P, or NULL. */
struct client *pool_first_waiter(struct pool *p);
/* C no longer waits (it is closing, or got a place another way). */
void pool_cancel_wait(struct client *c);
/* The client is done with S (transaction end or client close); RESET runs
 * server_reset_query first (session pooling). */
void pool_release(struct server *s, bool reset);
/* Stats: client C (NULL if it left) is done with S (its transaction ended). */
void pool_count_txn(struct server *s, struct client *c);
/* S logged in or finished its reset: hand it to a waiter or make it idle. */
void pool_server_ready(struct server *s);
/* S is closing: forget it; open a replacement if clients wait. */
void pool_server_gone(struct server *s);
/* Login to the node failed with error message MSG (a whole ErrorResponse):
 * every waiting client gets it and is closed. */
void pool_login_failed(struct pool *p, const uint8_t *msg, uint32_t len);
/* Connecting failed: waiting clients get SQLSTATE 08006 with REASON. */
void pool_connect_failed(struct pool *p, const char *reason);
/* The parameters a login with tracked startup parameters SIG gets, if known. */
const struct param_list *pool_login_cache_get(const struct pool *p, const char *sig);
/* Remember them (copied); the oldest entry makes room. */
void pool_login_cache_put(struct pool *p, const char *sig, const struct param_list *params);
/* Inbox: another worker needs a server of SHARED's pool; close an idle one. */
void pool_release_idle_for(struct worker *w, struct pool_shared *shared);
/* Inbox: SHARED's pool has room again; open servers for local waiters. */
void pool_room_for(struct worker *w, struct pool_shared *shared);
/* Free the shared pool registry (after the workers ended). */
void pool_shared_destroy_all(void);
/* Periodic: wait timeouts, idle server timeouts. */
void pools_janitor(struct worker *w);
/* Close every idle server (shutdown). */
void pools_close_idle(struct worker *w);
/* Close the idle servers of NODE (it failed or was detached). */
void pools_close_node(struct worker *w, int node);
void pools_destroy(struct worker *w);

#endif
