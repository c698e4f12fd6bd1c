/*
 * login.c - the client's first packets: SSLRequest / GSSENCRequest (refused
 * for now), CancelRequest, and the StartupMessage: parameter checks,
 * authentication, and the first server link that tells the client the
 * server's parameters.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "pgchorus/admin.h"
#include "pgchorus/cancel.h"
#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/pool.h"
#include "pgchorus/rsess.h"
#include "pgchorus/server.h"
#include "pgchorus/startup.h"
#include "pgchorus/worker.h"

#define NAMEDATALEN 64

/* PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes; so do we.  A
 * shared copy (intern.h). */
static const char *dup_name(struct client *c, const char *s)
{
	char d[NAMEDATALEN];
	size_t n = strnlen(s, NAMEDATALEN - 1);

	memcpy(d, s, n);
	d[n] = 0;
	return client_intern(c, d);
}

static bool client_assign_cancel_key(struct client *c)
{
	struct worker *w = c->w;
	uint32_t key;

	if (RAND_bytes((unsigned char *)&key, sizeof(key)) != 1)
		return false;
	for (int tries = 0; tries < 1000; tries++) {
		uint32_t pid = cancel_make_pid(w->id, w->next_pid++);

		if (!u64map_get(&w->cancel_keys, pid, NULL)) {
			if (!u64map_put(&w->cancel_keys, pid, (uintptr_t)c))
				return false;
			c->cancel_pid = pid;
			c->cancel_key = key;
			return true;
		}
	}
	return false;
}

/* Check and store the startup parameters; false if the client was closed. */
static bool client_take_params(struct client *c, const struct startup_packet *sp)
{
	const struct config *cfg = c->w->cfg;
	const char *pq_options[STARTUP_MAX_PARAMS];
	int n_pq = 0;

	for (int i = 0; i < sp->n_params; i++) {
		const char *name = sp->params[i].name;
		int ti;

		if (strcmp(name, "user") == 0 || strcmp(name, "database") == 0)
			continue;
		if (strncmp(name, "_pq_.", 5) == 0) {
			pq_options[n_pq++] = name;
			continue;
		}
		ti = tracked_param_index(name);
		if (ti >= 0) {
			client_set_param(c, ti, sp->params[i].value);
			continue;
		}
		if (config_ignores_startup_param(cfg, name))
			continue;
		if (strcmp(name, "replication") == 0) {
			client_close(c, SQLSTATE_PROTOCOL_VIOLATION,
				     "replication connections are not supported by pgchorus");
			return false;
		}
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION,
			     "unsupported startup parameter: %s (see ignore_startup_parameters)", name);
		return false;
	}
	if ((sp->version & 0xffff) > 0 || n_pq) {
		/* A newer 3.x client: tell it we speak 3.0 and none of its options. */
		if (!msg_negotiate_version(&c->scratch, 0, pq_options, n_pq)) {
			client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return false;
		}
	}
	return true;
}

/* The tracked startup parameters as one string, the key of the pool's login cache. */
static char *login_signature(const struct client *c)
{
	struct buf b;

	buf_init(&b);
	for (int i = 0; i < TP_COUNT; i++) {
		if (!c->params[i])
			continue;
		if (!buf_append(&b, tracked_param_name(i), strlen(tracked_param_name(i))) ||
		    !buf_append(&b, "=", 1) || !buf_append(&b, c->params[i], strlen(c->params[i])) ||
		    !buf_append(&b, "\x01", 1)) {
			buf_free(&b);
			return NULL;
		}
	}
	if (!buf_append(&b, "", 1)) {
		buf_free(&b);
		return NULL;
	}
	return (char *)b.data;
}

static void client_login(struct client *c, const struct startup_packet *sp)
{
	if (c->over_limit) {
		client_close(c, SQLSTATE_TOO_MANY_CONNECTIONS, "sorry, too many clients already");
		return;
	}
	c->user = dup_name(c, sp->user);
	c->database = dup_name(c, sp->database);
	if (!c->user || !c->database) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (!client_take_params(c, sp))
		return;
	client_auth_begin(c); /* continues in client_auth_done() */
}

void client_auth_done(struct client *c)
{
	struct worker *w = c->w;
	const struct param_list *cached;
	struct server *s;
	int node;

	if (w->run != WORKER_RUNNING) {
		client_close(c, SQLSTATE_ADMIN_SHUTDOWN, "pgchorus is shutting down");
		return;
	}
	if (admin_is_console(c->database)) {
		/* The admin console answers itself: no node, no pool (src/admin/). */
		if (!client_assign_cancel_key(c)) {
			client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
		admin_login(c);
		return;
	}
	node = node_primary();
	if (node < 0) {
		client_close(c, SQLSTATE_CONNECTION_FAILURE, "no PostgreSQL node is available");
		return;
	}
	c->pool = pool_get(w, c->database, c->user, node);
	/* The pool mode at login stays the client's for its whole session (a reload
	 * that changes pool_mode applies to clients that log in afterwards). */
	c->txn_pooling = w->cfg->pool_mode == POOL_MODE_TRANSACTION;
	if (w->cfg->mode == RUN_MODE_REPLICATION) {
		/* A replicated session holds a server per node (doc/replication.md). */
		c->txn_pooling = false;
		if (!rsess_create(c)) {
			client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
	}
	c->track_statements = c->txn_pooling;
	if (!c->pool || !client_assign_cancel_key(c) || !msg_auth_ok(&c->scratch)) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	log_debug("C-%p %s/%s@%s: login", (void *)c, c->database, c->user, c->addr);
	{
		char *sig = login_signature(c);

		c->login_sig = sig ? client_intern(c, sig) : NULL;
		free(sig);
	}
	if (!c->login_sig) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	cached = pool_login_cache_get(c->pool, c->login_sig);
	if (cached) {
		/* A server of this pool already told us what such a login reports:
		 * no server is needed until the first query. */
		client_login_finish(c, cached);
		if (c->state == CL_CLOSING)
			return;
		client_set_state(c, CL_IDLE);
		client_resume(c);
		return;
	}
	if (!client_flush_scratch(c))
		return;
	client_set_state(c, CL_LOGIN_WAIT);
	client_pause(c);
	s = pool_acquire(c->pool, c);
	if (s && c->state == CL_LOGIN_WAIT)
		client_server_ready(c, s);
}

/*
 * The login server of C's node could not be reached and the node is no
 * longer up (replication mode): the login goes on with the new primary.
 */
void client_login_retry(struct client *c)
{
	int node = node_primary();
	struct server *s;

	if (node < 0) {
		client_close(c, SQLSTATE_CONNECTION_FAILURE, "no PostgreSQL node is available");
		return;
	}
	c->pool = pool_get(c->w, c->database, c->user, node);
	if (!c->pool) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	s = pool_acquire(c->pool, c);
	if (s && c->state == CL_LOGIN_WAIT)
		client_server_ready(c, s);
}

/*
 * SSLRequest: 'S' and a TLS handshake when TLS is configured, else 'N'.
 * GSSENCRequest: always 'N'.  Like PostgreSQL, a second request is refused,
 * and so are bytes sent behind the request before the answer (they could
 * not be trusted once TLS starts: CVE-2021-23214).
 */
static void client_encryption_request(struct client *c, bool ssl)
{
	struct tls_ctx *ctx = ssl ? c->w->cfg->tls_server : NULL;
	uv_buf_t answer = uv_buf_init(ctx ? "S" : "N", 1);

	if ((ssl && c->ssl_requested) || (!ssl && c->gss_requested) || c->ps.tls) {
		client_close(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
			     "unsupported frontend protocol: second %s request", ssl ? "SSL" : "GSSAPI encryption");
		return;
	}
	if (ssl)
		c->ssl_requested = true;
	else
		c->gss_requested = true;
	if (pstream_send(&c->ps, &answer, 1) < 0) {
		client_close(c, NULL, "write failed");
		return;
	}
	if (c->in.data && iobuf_avail(&c->in)) {
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "received unencrypted data after %s request",
			     ssl ? "SSL" : "GSSAPI encryption");
		return;
	}
	if (ctx && pstream_start_tls(&c->ps, ctx, true, NULL) < 0)
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
}

/* One password / SASL message, seen whole, at most max_startup_size bytes.
 * false: wait for more bytes (or the client was closed). */
static bool client_auth_step(struct client *c)
{
	struct worker *w = c->w;
	uint32_t avail = iobuf_avail(&c->in), len;
	uint8_t type;
	uint8_t *msg;
	enum codec_frame f = codec_frame(iobuf_head(&c->in), avail, w->cfg->max_startup_size, &type, &len);

	if (f == FRAME_NEED_MORE)
		return false;
	if (f != FRAME_OK) {
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid message length during authentication");
		return false;
	}
	if (avail < len) {
		if (!iobuf_ensure(&c->in, &w->bp, len))
			client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	msg = malloc(len);
	if (!msg) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	memcpy(msg, iobuf_head(&c->in), len);
	iobuf_consume(&c->in, &w->bp, len);
	client_auth_message(c, type, msg + 5, len - 5);
	OPENSSL_cleanse(msg, len);
	free(msg);
	return true;
}

/* One startup-phase packet at the head of c->in.  false: wait for more bytes
 * (or the client was closed). */
static bool client_startup_packet(struct client *c)
{
	struct worker *w = c->w;
	uint32_t avail = iobuf_avail(&c->in), len;
	struct startup_packet sp;
	uint8_t *pkt;
	int r = startup_frame(iobuf_head(&c->in), avail, w->cfg->max_startup_size, &len);

	if (r == 0)
		return false;
	if (r < 0) {
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid length of startup packet");
		return false;
	}
	if (avail < len) {
		if (!iobuf_ensure(&c->in, &w->bp, len))
			client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	/* Parse a copy, so that the buffer can be consumed before the
	 * login goes on to read what follows the packet. */
	pkt = malloc(len);
	if (!pkt) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	memcpy(pkt, iobuf_head(&c->in), len);
	iobuf_consume(&c->in, &w->bp, len);
	startup_parse(pkt, len, &sp);
	switch (sp.kind) {
	case STARTUP_SSL:
	case STARTUP_GSSENC:
		client_encryption_request(c, sp.kind == STARTUP_SSL);
		break;
	case STARTUP_CANCEL:
		cancel_forward(w, sp.cancel_pid, sp.cancel_key);
		client_close(c, NULL, "cancel request handled");
		break;
	case STARTUP_INVALID:
		client_close(c, sp.sqlstate, "%s", sp.error);
		break;
	case STARTUP_MESSAGE:
		client_login(c, &sp);
		break;
	}
	free(pkt);
	return true;
}

void client_startup(struct client *c)
{
	/* Packets may arrive together (startup + SASL response + query): go on
	 * with whatever phase the previous one led to. */
	while (c->in.data && iobuf_avail(&c->in)) {
		if (c->state == CL_STARTUP) {
			if (!client_startup_packet(c))
				return;
		} else if (c->state == CL_AUTH) {
			if (!c->auth)
				return; /* auth_query running: resumed by its callback */
			if (!client_auth_step(c))
				return;
		} else {
			if (c->admin)
				admin_process(c);
			else if (c->state == CL_IDLE || c->state == CL_ACTIVE)
				client_process(c);
			return;
		}
	}
}
