/*
 * server.c - one connection to a PostgreSQL node: connect, log in, relay
 * responses to the linked client through the response tracker, reset and
 * close.  Memory is freed only in the libuv close callback.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/outv.h"
#include "pgchorus/pipeline.h"
#include "pgchorus/pool.h"
#include "pgchorus/prepared.h"
#include "pgchorus/rsess.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

static const char *const tracked_names[TP_COUNT] = {
	[TP_CLIENT_ENCODING] = "client_encoding",
	[TP_DATESTYLE] = "DateStyle",
	[TP_TIMEZONE] = "TimeZone",
	[TP_INTERVALSTYLE] = "IntervalStyle",
	[TP_STANDARD_CONFORMING_STRINGS] = "standard_conforming_strings",
	[TP_APPLICATION_NAME] = "application_name",
};

int tracked_param_index(const char *name)
{
	for (int i = 0; i < TP_COUNT; i++)
		if (strcasecmp(name, tracked_names[i]) == 0)
			return i;
	return -1;
}

const char *tracked_param_name(int i)
{
	return tracked_names[i];
}

static const char *const server_state_names[] = {
	[SV_CONNECTING] = "connecting", [SV_LOGIN] = "login", [SV_IDLE] = "idle",
	[SV_ACTIVE] = "active", [SV_RESET] = "reset", [SV_CLOSING] = "closing",
};

/* The one place a server changes state; refuses transitions that cannot happen. */
static void server_set_state(struct server *s, enum server_state st)
{
	static const uint8_t allowed[] = {
		[SV_CONNECTING] = 1 << SV_LOGIN | 1 << SV_CLOSING,
		[SV_LOGIN] = 1 << SV_IDLE | 1 << SV_ACTIVE | 1 << SV_CLOSING,
		[SV_IDLE] = 1 << SV_ACTIVE | 1 << SV_CLOSING,
		[SV_ACTIVE] = 1 << SV_IDLE | 1 << SV_ACTIVE | 1 << SV_RESET | 1 << SV_CLOSING,
		[SV_RESET] = 1 << SV_IDLE | 1 << SV_ACTIVE | 1 << SV_CLOSING,
		[SV_CLOSING] = 0,
	};

	if (!(allowed[s->state] & (1 << st))) {
		log_error("S-%p: impossible state change %s -> %s", (void *)s,
			  server_state_names[s->state], server_state_names[st]);
		abort();
	}
	s->state = st;
	s->state_since = worker_now(s->w);
}

void server_set_idle(struct server *s)
{
	server_unlink(s);
	server_set_state(s, SV_IDLE);
}

void server_set_param(struct server *s, const char *name, const char *value)
{
	const char *v = param_list_set(&s->all_params, name, value);
	int ti = tracked_param_index(name);

	if (v && ti >= 0)
		s->params[ti] = v;
}

static void server_free(struct server *s)
{
	param_list_free(&s->all_params);
	iobuf_release(&s->in, &s->w->bp);
	buf_free(&s->scratch);
	rt_free(&s->rt);
	u64map_destroy(&s->stmts);
	free(s->pending);
	server_auth_cleanup(s);
	tls_ctx_unref(s->tls_ctx);
	pstream_cleanup(&s->ps);
	free(s);
}

static void server_close_cb(uv_handle_t *h)
{
	struct server *s = pstream_of(h)->owner;

	s->w->open_handles--;
	server_free(s);
}

void server_close(struct server *s, const char *reason)
{
	if (s->state == SV_CLOSING)
		return;
	log_debug("S-%p node %d %s/%s: closing: %s", (void *)s, s->pool->node, s->pool->database,
		  s->pool->user, reason);
	pipe_server_closing(s);
	server_unlink(s);
	pool_server_gone(s); /* looks at the state the server was in */
	server_set_state(s, SV_CLOSING);
	if (s->ps.open)
		pstream_close(&s->ps, server_close_cb);
}

void server_pause(struct server *s)
{
	if (s->reading) {
		uv_read_stop(&s->ps.u.stream);
		s->reading = false;
	}
}

static void server_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void server_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

void server_resume(struct server *s)
{
	if (!s->reading && s->state != SV_CLOSING && s->ps.open) {
		if (uv_read_start(&s->ps.u.stream, server_alloc_cb, server_read_cb) == 0)
			s->reading = true;
	}
}

bool server_is_clean(const struct server *s)
{
	return s->state == SV_ACTIVE && s->txn_status == 'I' && rt_idle(&s->rt) && !s->fwd_remaining &&
	       !pstream_busy(&s->ps) && !(s->client && s->client->fwd_remaining);
}

void server_unlink(struct server *s)
{
	struct client *c = s->client;

	if (!c)
		return;
	s->client = NULL;
	c->srv = NULL;
	if (c->rs)
		rsess_server_gone(c, s);
}

bool server_params_differ(const struct server *s, const struct client *c)
{
	for (int i = 0; i < TP_COUNT; i++)
		if (c->params[i] && (!s->params[i] || strcmp(c->params[i], s->params[i]) != 0))
			return true;
	return false;
}

/* Append "SET name TO 'value'" for every tracked parameter that differs. */
static bool server_build_set(struct server *s, struct client *c, struct buf *sql)
{
	for (int i = 0; i < TP_COUNT; i++) {
		const char *want = c->params[i];
		const char *p;

		if (!want || (s->params[i] && strcmp(want, s->params[i]) == 0))
			continue;
		if (!buf_append(sql, "SET ", 4) || !buf_append(sql, tracked_names[i], strlen(tracked_names[i])) ||
		    !buf_append(sql, " TO ", 4))
			return false;
		if (strchr(want, '\\') && !buf_append(sql, "E", 1))
			return false;
		if (!buf_append(sql, "'", 1))
			return false;
		for (p = want; *p; p++) {
			if ((*p == '\'' || *p == '\\') && !buf_append(sql, p, 1))
				return false;
			if (!buf_append(sql, p, 1))
				return false;
		}
		if (!buf_append(sql, "';", 2))
			return false;
	}
	return true;
}

void server_link(struct server *s, struct client *c)
{
	struct buf sql;

	s->client = c;
	c->srv = s;
	s->pipe_ok = false;
	server_set_state(s, SV_ACTIVE);
	if (!server_params_differ(s, c)) {
		server_resume(s);
		return;
	}
	buf_init(&sql);
	if (!server_build_set(s, c, &sql) || !buf_append(&sql, "", 1)) {
		buf_free(&sql);
		server_close(s, "out of memory");
		client_server_lost(c, "out of memory");
		return;
	}
	if (sql.len > 1) {
		uv_buf_t b;

		log_debug("S-%p: applying client parameters: %s", (void *)s, (char *)sql.data);
		if (!msg_query(&s->scratch, (char *)sql.data) || !rt_push(&s->rt, RT_QUERY | RT_SWALLOW | RT_INJECTED)) {
			buf_free(&sql);
			server_close(s, "out of memory");
			client_server_lost(c, "out of memory");
			return;
		}
		b = uv_buf_init((char *)s->scratch.data, (unsigned int)s->scratch.len);
		if (pstream_send(&s->ps, &b, 1) < 0) {
			buf_free(&sql);
			buf_reset(&s->scratch);
			server_close(s, "write failed");
			client_server_lost(c, "server connection lost");
			return;
		}
		buf_reset(&s->scratch);
	}
	buf_free(&sql);
	server_resume(s);
}

void server_reset(struct server *s)
{
	const char *q = s->w->cfg->server_reset_query;
	uv_buf_t b;

	server_unlink(s);
	if (!q || !*q) {
		pool_server_ready(s);
		return;
	}
	server_set_state(s, SV_RESET);
	prep_server_forget(s); /* DISCARD ALL drops them; any reset query may */
	if (!msg_query(&s->scratch, q) || !rt_push(&s->rt, RT_QUERY | RT_SWALLOW | RT_INJECTED)) {
		server_close(s, "out of memory");
		return;
	}
	b = uv_buf_init((char *)s->scratch.data, (unsigned int)s->scratch.len);
	if (pstream_send(&s->ps, &b, 1) < 0) {
		buf_reset(&s->scratch);
		server_close(s, "write failed");
		return;
	}
	buf_reset(&s->scratch);
	server_resume(s);
}

/* ---- output side callbacks ---- */

static void server_on_drain(struct pstream *ps)
{
	struct server *s = ps->owner;

	if (s->client)
		client_resume(s->client);
}

static void server_on_write_error(struct pstream *ps, int status)
{
	struct server *s = ps->owner;
	struct client *c = s->client;

	log_warning("S-%p node %d: write failed: %s", (void *)s, s->pool->node, uv_strerror(status));
	if (c && c->rs && s->state == SV_ACTIVE) {
		rsess_server_failed(c, s, "write failed");
		return;
	}
	server_close(s, "write failed");
	if (c)
		client_server_lost(c, "server connection lost");
}

/* ---- login ---- */

static void server_login_message(struct server *s, uint8_t type, const uint8_t *msg, uint32_t len)
{
	struct msg_reader r;
	const uint8_t *body = msg + 5;
	uint32_t blen = len - 5;

	reader_init(&r, body, blen);
	switch (type) {
	case 'R': {
		uint32_t code = reader_int32(&r);

		if (r.err) {
			pool_connect_failed(s->pool, "invalid authentication message from node");
			server_close(s, "bad auth message");
			return;
		}
		if (code == 0)
			return;
		{
			char reason[400];

			if (server_auth_request(s, code, &r, reason, sizeof(reason)) < 0) {
				log_warning("S-%p node %d %s/%s: %s", (void *)s, s->pool->node, s->pool->database,
					    s->pool->user, reason);
				pool_connect_failed(s->pool, reason);
				server_close(s, "authentication failed");
			}
		}
		return;
	}
	case 'S': {
		const char *name = reader_string(&r);
		const char *value = reader_string(&r);

		if (reader_done(&r))
			server_set_param(s, name, value);
		return;
	}
	case 'K':
		s->be_pid = reader_int32(&r);
		s->be_key = reader_int32(&r);
		return;
	case 'E':
		log_warning("S-%p node %d %s/%s: login failed: %s", (void *)s, s->pool->node,
			    s->pool->database, s->pool->user,
			    msg_error_field(body, blen, 'M') ? msg_error_field(body, blen, 'M') : "?");
		pool_login_failed(s->pool, msg, len);
		server_close(s, "login failed");
		return;
	case 'Z':
		s->txn_status = 'I';
		log_debug("S-%p node %d %s/%s: logged in, backend pid %u", (void *)s, s->pool->node,
			  s->pool->database, s->pool->user, s->be_pid);
		pool_server_ready(s);
		return;
	case 'N':
	case 'v':
		return;
	default:
		pool_connect_failed(s->pool, "unexpected message from node during login");
		server_close(s, "protocol error during login");
		return;
	}
}

/* ---- responses ---- */

/* A message arrived on a server no client uses (idle, or resetting). */
static void server_unlinked_message(struct server *s, uint8_t type, const uint8_t *msg, uint32_t len)
{
	if (type == 'S') {
		struct msg_reader r;
		const char *name, *value;

		reader_init(&r, msg + 5, len - 5);
		name = reader_string(&r);
		value = reader_string(&r);
		if (reader_done(&r))
			server_set_param(s, name, value);
		return;
	}
	if (type == 'N' || type == 'A')
		return;
	if (s->state == SV_RESET) {
		if (type == 'E') {
			server_close(s, "reset query failed");
			return;
		}
		uint8_t entry;

		rt_response(&s->rt, type, &entry);
		if (type == 'Z' && rt_idle(&s->rt)) {
			s->txn_status = len >= 6 ? (char)msg[5] : 'I';
			if (s->txn_status == 'I')
				pool_server_ready(s);
			else
				server_close(s, "reset left a transaction open");
		}
		return;
	}
	/* An idle server sends nothing else unless it is terminating (the node
	 * may be going away: check it now rather than at the next period). */
	if (type == 'E')
		health_check_now(s->pool->node);
	server_close(s, type == 'E' ? "error from idle server" : "unexpected message from idle server");
}

/* Does this response need to be seen whole? */
static inline bool server_needs_whole(const struct server *s, uint8_t type)
{
	if (s->state != SV_ACTIVE)
		return true;
	return type == 'Z' || type == 'S';
}

/* Clients that finished on S while other clients' answers were read (pipeline.c). */
static void server_release_done(struct client **done, int n)
{
	for (int i = 0; i < n; i++)
		pipe_released(done[i]);
}

void server_process(struct server *s)
{
	struct client *c = s->client;
	struct client *done[PIPELINE_DEPTH_MAX];
	struct worker *w = s->w;
	struct outv ov;
	bool txn_done = false, rotated = false;
	int n_done = 0;
	int r = 0;

	if (c && c->rs && s->state == SV_ACTIVE && c->state != CL_LOGIN) {
		rsrv_process(s);
		return;
	}
	outv_init(&ov, &s->in, &w->bp, c ? &c->scratch : NULL, c ? &c->ps : NULL);
	while (s->state != SV_CLOSING && s->in.data && ov.pos < s->in.end) {
		uint32_t avail = outv_avail(&ov);
		uint32_t len;
		uint8_t type;
		enum codec_frame f;

		if (s->fwd_remaining) {
			uint32_t n = avail < s->fwd_remaining ? avail : s->fwd_remaining;

			s->fwd_remaining -= n;
			if (s->fwd_drop)
				outv_skip(&ov, n);
			else if ((r = outv_pass(&ov, n)) < 0)
				break;
			continue;
		}
		f = codec_frame(outv_cur(&ov), avail, w->cfg->max_message_size, &type, &len);
		if (f == FRAME_NEED_MORE)
			break;
		if (f < 0) {
			if (outv_flush(&ov) < 0)
				log_debug("S-%p: flush failed", (void *)s);
			server_close(s, "invalid message length from node");
			if (c)
				client_server_lost(c, "protocol error from node");
			return;
		}
		if (s->state == SV_ACTIVE && s->client && s->client->rs && s->client->state != CL_LOGIN) {
			/* Handed to a replicated session: its own reader takes over. */
			if ((r = outv_flush(&ov)) < 0)
				break;
			rsrv_process(s);
			return;
		}
		if (server_needs_whole(s, type) && avail < len) {
			if ((r = outv_flush(&ov)) < 0)
				break;
			if (!iobuf_grow_toward(&s->in, &w->bp, len)) {
				server_close(s, "out of memory");
				if (c)
					client_server_lost(c, "out of memory");
				return;
			}
			return; /* wait for the rest */
		}
		if (s->state != SV_ACTIVE) {
			if (s->state == SV_LOGIN)
				server_login_message(s, type, outv_cur(&ov), len);
			else
				server_unlinked_message(s, type, outv_cur(&ov), len);
			outv_skip(&ov, len);
			if (s->state == SV_ACTIVE && s->client && s->client != c) {
				/* Logged in or reset, and the pool handed us to a waiting client. */
				c = s->client;
				if ((r = outv_retarget(&ov, &c->scratch, &c->ps)) < 0)
					break;
			}
			continue;
		}

		/* Linked to a client. */
		{
			uint8_t entry;
			enum rt_verdict v = rt_response(&s->rt, type, &entry);
			bool whole = avail >= len;

			if (type == '1' || type == 'Z')
				prep_server_response(s, type, entry);

			if (type == 'S') {
				struct msg_reader rd;
				const char *name, *value;

				reader_init(&rd, outv_cur(&ov) + 5, len - 5);
				name = reader_string(&rd);
				value = reader_string(&rd);
				if (reader_done(&rd)) {
					int ti = tracked_param_index(name);

					server_set_param(s, name, value);
					if (v == RT_FORWARD && ti >= 0 && s->params[ti] && c)
						client_set_param(c, ti, s->params[ti]);
				}
			} else if (type == 'Z') {
				s->txn_status = (char)outv_cur(&ov)[5];
			}
			if (v == RT_FORWARD) {
				if ((r = outv_pass(&ov, whole ? len : avail)) < 0)
					break;
			} else {
				outv_skip(&ov, whole ? len : avail);
			}
			if (!whole) {
				s->fwd_remaining = len - avail;
				s->fwd_drop = v != RT_FORWARD;
			}
			if (type == 'Z' && v == RT_FORWARD && s->n_piped) {
				/* The current client's statement is answered; the next queued one's answers follow. */
				if ((r = outv_flush(&ov)) < 0)
					break;
				if (s->txn_status != 'I') {
					/* Cannot happen for the statements pipe_sql_safe() admits.  The queued
					 * ones ran inside this transaction: closing rolls them back. */
					log_error("S-%p: a pipelined statement left a transaction open; closing the connection",
						  (void *)s);
					server_unlink(s);
					server_close(s, "pipelined statement left a transaction open");
					if (c)
						client_server_lost(c, "server connection lost");
					server_release_done(done, n_done);
					return;
				}
				done[n_done] = pipe_next(s);
				if (done[n_done])
					n_done++;
				rotated = true;
				c = s->client;
				if ((r = outv_retarget(&ov, c ? &c->scratch : NULL, c ? &c->ps : NULL)) < 0)
					break;
			}
			if (s->rt.count) {
				uint8_t k;

				while ((k = rt_pop_synth(&s->rt)) != 0) {
					if (!c)
						continue; /* the client left: nobody to answer */
					if (!msg_empty(&c->scratch, k == RT_SYNTH_PARSE ? '1' : '3'))
						break;
					if ((r = outv_take_gen(&ov)) < 0)
						break;
				}
				if (r < 0)
					break;
			}
			if (type == 'Z' && rt_idle(&s->rt)) {
				txn_done = true;
				break;
			}
		}
	}
	if (r >= 0)
		r = outv_flush(&ov);
	if (r < 0) {
		bool others = c && s->client == c && s->n_piped;

		if (others) {
			client_close(c, NULL, "write failed"); /* gives up its place; the others go on */
		} else if (c && s->client == c) {
			server_unlink(s);
			server_close(s, "client write failed");
			client_close(c, NULL, "write failed");
		}
		server_release_done(done, n_done);
		if (others && s->state == SV_ACTIVE && s->in.data && iobuf_avail(&s->in))
			server_process(s);
		return;
	}
	if (c && s->client == c && pstream_busy(&c->ps))
		server_pause(s);
	if (txn_done && s->client == c && c) {
		if (c->state == CL_LOGIN)
			client_login_done(c);
		else
			client_txn_done(c);
	} else if (txn_done && !c && !s->client && s->state == SV_ACTIVE) {
		/* Answered a client that left while its statement was queued. */
		if (server_is_clean(s))
			pool_release(s, false);
		else
			server_close(s, "client went away during a transaction");
	}
	server_release_done(done, n_done);
	if (rotated && s->state == SV_ACTIVE && s->pipe_ok && s->pool->n_waiting)
		pipe_pull_waiters(s); /* the places that opened go to clients that wait */
	/* Released to the pool with bytes still buffered (e.g. a notice): handle them. */
	if (s->state == SV_IDLE && s->in.data && iobuf_avail(&s->in))
		server_process(s);
}

static void server_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct server *s = pstream_of(h)->owner;

	(void)suggested;
	pstream_alloc(&s->ps, &s->in, &s->w->bp, buf);
}

static void server_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct server *s = pstream_of(stream)->owner;
	struct client *c = s->client;
	int r;

	(void)buf;
	if (nread == 0) {
		if (s->in.data && s->in.start == s->in.end)
			iobuf_release(&s->in, &s->w->bp);
		return;
	}
	r = nread < 0 ? (int)nread : pstream_input(&s->ps, nread, &s->in, &s->w->bp);
	if (r < 0) {
		char why[200];

		if (r == UV_EOF)
			snprintf(why, sizeof(why), "connection closed by node");
		else if (s->ps.tls && s->ps.tls->err[0])
			snprintf(why, sizeof(why), "%s", s->ps.tls->err);
		else
			snprintf(why, sizeof(why), "%s", uv_strerror(r));
		if (s->state == SV_LOGIN || s->state == SV_CONNECTING)
			pool_connect_failed(s->pool, why);
		else if (c && c->rs && s->state == SV_ACTIVE) {
			rsess_server_failed(c, s, why); /* the session goes on without the node */
			return;
		} else if (!c)
			health_check_now(s->pool->node);
		server_close(s, why);
		if (c)
			client_server_lost(c, "server connection to the node was lost");
		return;
	}
	if (s->state == SV_CONNECTING) {
		server_tls_progress(s);
		return;
	}
	if (r > 0)
		server_process(s);
}

/* ---- connect ---- */

/* Send the StartupMessage and wait for the node's authentication request. */
static void server_send_startup(struct server *s)
{
	struct pool *p = s->pool;
	const char *extra[] = { NULL };
	uv_buf_t b;

	server_set_state(s, SV_LOGIN);
	if (!msg_startup(&s->scratch, p->user, p->database, extra)) {
		server_close(s, "out of memory");
		return;
	}
	b = uv_buf_init((char *)s->scratch.data, (unsigned int)s->scratch.len);
	if (pstream_send(&s->ps, &b, 1) < 0) {
		buf_reset(&s->scratch);
		pool_connect_failed(p, "could not send startup packet to node");
		server_close(s, "write failed");
		return;
	}
	buf_reset(&s->scratch);
}

static void server_tls_failed(struct server *s, const char *why)
{
	char reason[300];

	snprintf(reason, sizeof(reason), "TLS to node %d failed: %s", s->pool->node, why);
	log_warning("%s", reason);
	pool_connect_failed(s->pool, reason);
	server_close(s, "TLS failed");
}

void server_tls_progress(struct server *s)
{
	const struct config *cfg = s->w->cfg;
	struct node *n = node_get(s->pool->node);

	if (!s->ps.tls) {
		uint8_t answer;

		if (!s->in.data || iobuf_avail(&s->in) < 1)
			return;
		answer = *iobuf_head(&s->in);
		iobuf_consume(&s->in, &s->w->bp, 1);
		if (s->in.data) {
			server_tls_failed(s, "node sent data before the TLS handshake");
			return;
		}
		if (answer == 'N') {
			if (cfg->server_tls >= SERVER_TLS_REQUIRE) {
				server_tls_failed(s, "node does not accept TLS connections (server_tls requires TLS)");
				return;
			}
			server_send_startup(s); /* prefer: go on without */
			return;
		}
		if (answer != 'S') {
			server_tls_failed(s, "unexpected answer to SSLRequest");
			return;
		}
		if (!s->tls_ctx || pstream_start_tls(&s->ps, s->tls_ctx, false, n ? n->host : NULL) < 0) {
			server_tls_failed(s, "cannot create TLS session");
			return;
		}
	}
	switch (tls_conn_handshake(s->ps.tls)) {
	case -1:
		server_tls_failed(s, s->ps.tls->err);
		return;
	case 0:
		if (pstream_flush_tls(&s->ps) < 0)
			server_tls_failed(s, "write failed");
		return;
	default:
		log_debug("S-%p node %d: %s, cipher %s", (void *)s, s->pool->node,
			  tls_conn_version(s->ps.tls), tls_conn_cipher(s->ps.tls));
		server_send_startup(s);
	}
}

static void server_connect_cb(uv_connect_t *req, int status)
{
	struct server *s = req->data;
	struct pool *p = s->pool;

	if (s->state == SV_CLOSING)
		return;
	if (status < 0) {
		struct node *n = node_get(p->node);
		char reason[256];

		snprintf(reason, sizeof(reason), "could not connect to node %d (%s:%d): %s", p->node,
			 n ? n->host : "?", n ? n->port : 0, uv_strerror(status));
		log_warning("%s", reason);
		pool_connect_failed(p, reason);
		server_close(s, "connect failed");
		return;
	}
	if (s->ps.is_tcp)
		uv_tcp_nodelay(&s->ps.u.tcp, 1);
	s->tls_ctx = s->ps.is_tcp ? tls_ctx_ref(s->w->cfg->tls_client) : NULL;
	if (s->tls_ctx) {
		struct buf req8;
		uv_buf_t b;
		int r;

		buf_init(&req8);
		if (!msg_ssl_request(&req8)) {
			server_close(s, "out of memory");
			return;
		}
		b = uv_buf_init((char *)req8.data, (unsigned int)req8.len);
		r = pstream_send(&s->ps, &b, 1);
		buf_free(&req8);
		if (r < 0) {
			server_tls_failed(s, "cannot send SSLRequest");
			return;
		}
	} else {
		server_send_startup(s);
	}
	if (s->state != SV_CLOSING)
		server_resume(s);
}

struct server *server_connect(struct pool *p)
{
	struct worker *w = p->w;
	struct node *n = node_get(p->node);
	struct server *s = calloc(1, sizeof(*s));
	int r;

	if (!s || !n) {
		free(s);
		atomic_fetch_sub(&p->shared->n_servers, 1); /* the unit pool_grow reserved */
		return NULL;
	}
	s->w = w;
	s->pool = p;
	s->state = SV_CONNECTING;
	s->created = s->state_since = worker_now(w);
	list_init(&s->link);
	buf_init(&s->scratch);
	rt_init(&s->rt);
	u64map_init(&s->stmts);
	pstream_setup(&s->ps, s, server_on_drain, server_on_write_error);
	s->creq.data = s;
	if (n->is_unix) {
		uv_pipe_init(&w->loop, &s->ps.u.pipe, 0);
		pstream_opened(&s->ps, false);
		uv_pipe_connect(&s->creq, &s->ps.u.pipe, n->sock_path, server_connect_cb);
		r = 0;
	} else {
		uv_tcp_init(&w->loop, &s->ps.u.tcp);
		pstream_opened(&s->ps, true);
		r = uv_tcp_connect(&s->creq, &s->ps.u.tcp, (const struct sockaddr *)&n->addr, server_connect_cb);
	}
	w->open_handles++;
	stat_inc(&w->stats.servers_opened);
	list_append(&p->busy, &s->link);
	p->n_servers++;
	p->n_connecting++;
	if (r < 0) {
		/* Report asynchronously-equivalent: fail now, the caller holds no reference. */
		log_warning("could not connect to node %d: %s", p->node, uv_strerror(r));
		server_close(s, "connect failed");
		return NULL;
	}
	return s;
}
