/*
 * client.c - client connection lifecycle: accept, the state machine, the
 * read side, transaction end and close.  The startup packet is handled in
 * login.c, the relay of messages in relay.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "pgchorus/admin.h"
#include "pgchorus/client.h"
#include "pgchorus/intern.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/pipeline.h"
#include "pgchorus/pool.h"
#include "pgchorus/rsess.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

/* A client idle this long gives its message buffer back (clients_janitor). */
#define IDLE_FREE_MS 1000

static const char *const client_state_names[] = {
	[CL_STARTUP] = "startup", [CL_AUTH] = "auth", [CL_LOGIN_WAIT] = "login-wait", [CL_LOGIN] = "login",
	[CL_IDLE] = "idle", [CL_WAIT] = "wait", [CL_ACTIVE] = "active", [CL_PIPED] = "piped",
	[CL_CLOSING] = "closing",
};

void client_set_state(struct client *c, enum client_state st)
{
	static const uint16_t allowed[] = {
		[CL_STARTUP] = 1 << CL_AUTH | 1 << CL_LOGIN_WAIT | 1 << CL_IDLE | 1 << CL_CLOSING,
		[CL_AUTH] = 1 << CL_LOGIN_WAIT | 1 << CL_IDLE | 1 << CL_CLOSING,
		[CL_LOGIN_WAIT] = 1 << CL_LOGIN | 1 << CL_CLOSING,
		[CL_LOGIN] = 1 << CL_IDLE | 1 << CL_ACTIVE | 1 << CL_CLOSING,
		[CL_IDLE] = 1 << CL_WAIT | 1 << CL_ACTIVE | 1 << CL_CLOSING,
		[CL_WAIT] = 1 << CL_ACTIVE | 1 << CL_CLOSING,
		[CL_ACTIVE] = 1 << CL_IDLE | 1 << CL_WAIT | 1 << CL_PIPED | 1 << CL_CLOSING,
		[CL_PIPED] = 1 << CL_ACTIVE | 1 << CL_CLOSING,
		[CL_CLOSING] = 0,
	};

	if (!(allowed[c->state] & (1 << st))) {
		log_error("C-%p: impossible state change %s -> %s", (void *)c, client_state_names[c->state],
			  client_state_names[st]);
		abort();
	}
	c->state = st;
	c->state_since = worker_now(c->w);
}

static void client_free_stmt(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	free(value);
}

void client_free_statements(struct client *c)
{
	strmap_foreach(&c->stmts, client_free_stmt, NULL);
	strmap_destroy(&c->stmts);
}

static void client_close_cb(uv_handle_t *h)
{
	struct client *c = pstream_of(h)->owner;
	struct worker *w = c->w;

	w->open_handles--;
	client_auth_cleanup(c);
	iobuf_release(&c->in, &w->bp);
	buf_free(&c->scratch);
	pstream_cleanup(&c->ps);
	client_free_statements(c);
	rsess_free(c);
	admin_session_free(c->admin);
	for (int i = 0; i < TP_COUNT; i++)
		intern_put(&w->strings, c->params[i]);
	intern_put(&w->strings, c->login_sig);
	intern_put(&w->strings, c->user);
	intern_put(&w->strings, c->database);
	free(c);
}

const char *client_intern(struct client *c, const char *s)
{
	return intern_get(&c->w->strings, s);
}

void client_set_param(struct client *c, int ti, const char *v)
{
	const char *old = c->params[ti];

	c->params[ti] = v ? intern_get(&c->w->strings, v) : NULL;
	intern_put(&c->w->strings, old);
}

bool client_flush_scratch(struct client *c)
{
	uv_buf_t b;
	int r;

	if (!c->scratch.len)
		return true;
	b = uv_buf_init((char *)c->scratch.data, (unsigned int)c->scratch.len);
	r = pstream_send(&c->ps, &b, 1);
	buf_reset(&c->scratch);
	if (r < 0) {
		client_close(c, NULL, "write failed");
		return false;
	}
	return true;
}

/* Detach C from server and pool before it goes away. */
static void client_drop_server(struct client *c)
{
	struct server *s = c->srv;

	if (c->state == CL_WAIT || c->state == CL_LOGIN_WAIT)
		pool_cancel_wait(c);
	if (c->rs && c->state != CL_LOGIN) {
		rsess_release(c);
		return;
	}
	if (!s)
		return;
	if (s->client != c || s->n_piped) {
		pipe_leave(c); /* others' statements are queued on it */
		return;
	}
	if (server_is_clean(s) && c->state != CL_LOGIN) {
		pool_release(s, !c->txn_pooling);
	} else {
		server_unlink(s);
		/* Mid-transaction or mid-message: the connection's state is unknown. */
		server_close(s, "client went away during a transaction");
	}
}

void client_stat_bytes(struct client *c)
{
	uint64_t out = c->ps.bytes_out;

	if (!c->pool || out <= c->stat_bytes_out)
		return;
	stat_add(&stat_db_cell(&c->w->stats, c->pool->stat_db, c->pool->node)->bytes_out, out - c->stat_bytes_out);
	c->stat_bytes_out = out;
}

static void client_close_common(struct client *c)
{
	struct worker *w = c->w;

	if (c->state == CL_CLOSING)
		return;
	client_stat_bytes(c);
	client_auth_lookup_cancel(c);
	client_drop_server(c);
	if (c->cancel_pid)
		u64map_remove(&w->cancel_keys, c->cancel_pid);
	list_del(&c->link);
	w->n_clients--;
	atomic_fetch_sub(&pgc_runtime.n_clients, 1);
	client_set_state(c, CL_CLOSING);
	pstream_close(&c->ps, client_close_cb);
}

void client_close(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (c->state == CL_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (sqlstate) {
		log_info("C-%p %s/%s@%s: closing: %s", (void *)c, c->database ? c->database : "-",
			 c->user ? c->user : "-", c->addr, text);
		buf_reset(&c->scratch);
		if (msg_error(&c->scratch, "FATAL", sqlstate, "%s", text)) {
			uv_buf_t b = uv_buf_init((char *)c->scratch.data, (unsigned int)c->scratch.len);

			if (pstream_send(&c->ps, &b, 1) < 0)
				log_debug("C-%p: could not send the error", (void *)c);
		}
		buf_reset(&c->scratch);
	} else {
		log_debug("C-%p: closing: %s", (void *)c, text);
	}
	client_close_common(c);
}

void client_close_with_msg(struct client *c, const uint8_t *msg, uint32_t len)
{
	uv_buf_t b = uv_buf_init((char *)msg, len);

	if (c->state == CL_CLOSING)
		return;
	if (pstream_send(&c->ps, &b, 1) < 0)
		log_debug("C-%p: could not send the error", (void *)c);
	client_close_common(c);
}

void client_pause(struct client *c)
{
	if (c->reading) {
		uv_read_stop(&c->ps.u.stream);
		c->reading = false;
	}
}

static void client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void client_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

void client_resume(struct client *c)
{
	if (c->reading || c->state == CL_CLOSING || c->state == CL_WAIT || c->state == CL_LOGIN_WAIT ||
	    c->state == CL_LOGIN || c->state == CL_PIPED)
		return;
	if (c->srv && pstream_busy(&c->srv->ps))
		return;
	if (c->rs && c->state != CL_IDLE && !rsess_may_read(c))
		return;
	if (uv_read_start(&c->ps.u.stream, client_alloc_cb, client_read_cb) == 0)
		c->reading = true;
}

static void client_on_drain(struct pstream *ps)
{
	struct client *c = ps->owner;

	if (c->admin) {
		admin_drained(c);
		return;
	}
	/* The client took our output: the server may send more. */
	if (c->rs) {
		rsess_client_drained(c);
		return;
	}
	if (c->srv && c->srv->client == c) {
		server_resume(c->srv);
		if (c->srv->in.data)
			server_process(c->srv);
	}
}

static void client_on_write_error(struct pstream *ps, int status)
{
	struct client *c = ps->owner;

	client_close(c, NULL, "write failed: %s", uv_strerror(status));
}

void client_server_ready(struct client *c, struct server *s)
{
	(void)s;
	if (c->state == CL_LOGIN_WAIT) {
		client_set_state(c, CL_LOGIN);
		if (rt_idle(&s->rt))
			client_login_done(c); /* nothing to apply */
		return;
	}
	if (c->rs) {
		rsess_server_ready(c, s);
		return;
	}
	client_set_state(c, CL_ACTIVE);
	client_process(c);
	client_resume(c);
}

void client_login_finish(struct client *c, const struct param_list *pl)
{
	/* The client's startup values, as the node spelled them, become its baseline. */
	for (int i = 0; i < TP_COUNT; i++) {
		const char *v = param_list_get(pl, tracked_param_name(i));

		client_set_param(c, i, v);
	}
	for (int i = 0; i < pl->n; i++)
		if (!msg_param_status(&c->scratch, pl->names[i], pl->values[i]))
			goto oom;
	if (!msg_backend_key(&c->scratch, c->cancel_pid, c->cancel_key) || !msg_ready(&c->scratch, 'I'))
		goto oom;
	log_debug("C-%p %s/%s@%s: login complete", (void *)c, c->database, c->user, c->addr);
	/* The login's messages were the buffer's biggest use: freed now, while
	 * the space is reused by the next allocations, not later as a hole. */
	if (client_flush_scratch(c))
		buf_free(&c->scratch);
	return;
oom:
	buf_reset(&c->scratch);
	client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
}

void client_login_done(struct client *c)
{
	struct server *s = c->srv;

	pool_login_cache_put(c->pool, c->login_sig, &s->all_params);
	client_login_finish(c, &s->all_params);
	if (c->state == CL_CLOSING)
		return;
	if (c->txn_pooling) {
		pool_release(s, false);
		client_set_state(c, CL_IDLE);
	} else {
		client_set_state(c, CL_ACTIVE);
		if (c->rs)
			rsess_adopt(c, s);
	}
	client_resume(c);
	if (c->in.data)
		client_process(c);
}

void client_txn_done(struct client *c)
{
	struct server *s = c->srv;

	if (c->txn_pooling || c->close_when_idle) {
		if (!server_is_clean(s))
			return;
		if (c->close_when_idle) {
			client_close(c, SQLSTATE_ADMIN_SHUTDOWN, "pgchorus is shutting down");
			return;
		}
		pool_release(s, false);
		client_set_state(c, CL_IDLE);
		client_resume(c); /* a client that waited for a server and was queued on one (pipeline.c) */
		if (c->in.data && c->in.start < c->in.end)
			client_process(c); /* pipelined: the next transaction is already here */
	}
}

void client_server_lost(struct client *c, const char *reason)
{
	client_close(c, SQLSTATE_CONNECTION_FAILURE, "%s", reason);
}

void client_shutdown(struct client *c)
{
	c->close_when_idle = true;
	if (c->state == CL_IDLE || c->state == CL_STARTUP || c->state == CL_AUTH || c->state == CL_LOGIN_WAIT)
		client_close(c, SQLSTATE_ADMIN_SHUTDOWN, "pgchorus is shutting down");
	else if (c->state == CL_ACTIVE && c->srv && server_is_clean(c->srv))
		client_close(c, SQLSTATE_ADMIN_SHUTDOWN, "pgchorus is shutting down");
	else if (c->state == CL_ACTIVE && c->rs && rsess_idle(c))
		client_close(c, SQLSTATE_ADMIN_SHUTDOWN, "pgchorus is shutting down");
}

static void client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *c = pstream_of(h)->owner;

	(void)suggested;
	pstream_alloc(&c->ps, &c->in, &c->w->bp, buf);
}

static void client_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = pstream_of(stream)->owner;
	int r;

	(void)buf;
	if (nread < 0) {
		if (nread == UV_ENOBUFS) {
			client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "input buffer overflow");
			return;
		}
		client_close(c, NULL, "%s", nread == UV_EOF ? "client disconnected" : uv_strerror((int)nread));
		return;
	}
	if (nread == 0) {
		if (c->in.data && c->in.start == c->in.end)
			iobuf_release(&c->in, &c->w->bp);
		return;
	}
	c->last_active = worker_now(c->w);
	r = pstream_input(&c->ps, nread, &c->in, &c->w->bp);
	if (r == UV_EOF) {
		client_close(c, NULL, "client disconnected");
		return;
	}
	if (r < 0) {
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "%s",
			     c->ps.tls && c->ps.tls->err[0] ? c->ps.tls->err : "input error");
		return;
	}
	if (r == 0)
		return;
	if (c->pool) /* logged in to a database: its stats */
		stat_add(&stat_db_cell(&c->w->stats, c->pool->stat_db, c->pool->node)->bytes_in, (uint64_t)r);
	if (c->state == CL_STARTUP || c->state == CL_AUTH)
		client_startup(c);
	else if (c->admin)
		admin_process(c);
	else
		client_process(c);
}

void client_accept(struct worker *w, uv_stream_t *listener, bool is_tcp)
{
	struct client *c = calloc(1, sizeof(*c));
	int n;

	if (!c) {
		log_error("out of memory accepting a client");
		return;
	}
	c->w = w;
	c->state = CL_STARTUP;
	c->state_since = worker_now(w);
	list_init(&c->link);
	list_init(&c->wait_link);
	buf_init(&c->scratch);
	strmap_init(&c->stmts);
	pstream_setup(&c->ps, c, client_on_drain, client_on_write_error);
	if (is_tcp)
		uv_tcp_init(&w->loop, &c->ps.u.tcp);
	else
		uv_pipe_init(&w->loop, &c->ps.u.pipe, 0);
	pstream_opened(&c->ps, is_tcp);
	w->open_handles++;
	if (uv_accept(listener, &c->ps.u.stream) < 0) {
		c->state = CL_CLOSING;
		pstream_close(&c->ps, client_close_cb);
		return;
	}
	list_append(&w->clients, &c->link);
	w->n_clients++;
	stat_inc(&w->stats.clients_accepted);
	n = atomic_fetch_add(&pgc_runtime.n_clients, 1) + 1;
	if (is_tcp) {
		struct sockaddr_storage ss;
		int sl = sizeof(ss);
		char host[INET6_ADDRSTRLEN] = "?";
		int port = 0;

		uv_tcp_nodelay(&c->ps.u.tcp, 1);
		if (uv_tcp_getpeername(&c->ps.u.tcp, (struct sockaddr *)&ss, &sl) == 0) {
			if (ss.ss_family == AF_INET) {
				uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
				port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			} else if (ss.ss_family == AF_INET6) {
				uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
				port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
			}
		}
		snprintf(c->addr, sizeof(c->addr), "%s:%d", host, port);
		if (ss.ss_family == AF_INET)
			memcpy(&c->peer.in4, &ss, sizeof(c->peer.in4));
		else if (ss.ss_family == AF_INET6)
			memcpy(&c->peer.in6, &ss, sizeof(c->peer.in6));
	} else {
		snprintf(c->addr, sizeof(c->addr), "unix");
		c->is_unix = true;
	}
	c->last_active = c->connected_at = worker_now(w);
	/* Over max_client_conn: refused once its startup packet is read (a client
	 * that has not sent it yet would not see the error); cancel requests
	 * still work. */
	c->over_limit = n > w->cfg->max_client_conn;
	if (w->run != WORKER_RUNNING) {
		client_close(c, SQLSTATE_ADMIN_SHUTDOWN, "pgchorus is shutting down");
		return;
	}
	client_resume(c);
}

/* Seconds (config) elapsed since loop time SINCE? */
static bool expired(uint64_t now, uint64_t since, double seconds)
{
	return seconds > 0 && now - since >= (uint64_t)(seconds * 1000);
}

void clients_janitor(struct worker *w)
{
	const struct config *cfg = w->cfg;
	uint64_t now = worker_now(w);
	struct list *it, *tmp;

	list_for_each_safe(it, tmp, &w->clients) {
		struct client *c = list_entry(it, struct client, link);
		struct server *s = c->srv;

		switch (c->state) {
		case CL_STARTUP:
		case CL_AUTH:
			if (expired(now, c->connected_at, cfg->auth_timeout))
				client_close(c, SQLSTATE_QUERY_CANCELED, "canceling authentication due to timeout");
			break;
		case CL_IDLE:
			if (expired(now, c->last_active, cfg->client_idle_timeout)) {
				client_close(c, SQLSTATE_IDLE_SESSION_TIMEOUT,
					     "terminating connection due to idle-session timeout");
				break;
			}
			/* Idle for a second: its message buffer goes (idle clients cost
			 * their struct only; a busy one keeps it between messages). */
			if (!c->scratch.len && c->scratch.cap && now - c->last_active >= IDLE_FREE_MS)
				buf_free(&c->scratch);
			break;
		case CL_ACTIVE:
			if (c->rs) {
				if (!rsess_between_units(c))
					break;
				if (!rsess_idle(c)) {
					if (expired(now, c->last_active, cfg->idle_in_transaction_timeout))
						client_close(c, SQLSTATE_IDLE_IN_TXN_TIMEOUT,
							     "terminating connection due to idle-in-transaction timeout");
				} else if (expired(now, c->last_active, cfg->client_idle_timeout)) {
					client_close(c, SQLSTATE_IDLE_SESSION_TIMEOUT,
						     "terminating connection due to idle-session timeout");
				} else if (!c->scratch.len && c->scratch.cap && now - c->last_active >= IDLE_FREE_MS) {
					buf_free(&c->scratch);
				}
				break;
			}
			if (!s)
				break;
			if (c->fwd_remaining && expired(now, c->last_active, cfg->auth_timeout)) {
				/* Stalled in the middle of a message while holding a server. */
				client_close(c, SQLSTATE_PROTOCOL_VIOLATION,
					     "incomplete message: client stalled for more than %g s", cfg->auth_timeout);
			} else if (rt_idle(&s->rt) && (s->txn_status == 'T' || s->txn_status == 'E')) {
				if (expired(now, c->last_active, cfg->idle_in_transaction_timeout))
					client_close(c, SQLSTATE_IDLE_IN_TXN_TIMEOUT,
						     "terminating connection due to idle-in-transaction timeout");
			} else if (server_is_clean(s) && expired(now, c->last_active, cfg->client_idle_timeout)) {
				client_close(c, SQLSTATE_IDLE_SESSION_TIMEOUT,
					     "terminating connection due to idle-session timeout");
			}
			break;
		default:
			break;
		}
	}
}
