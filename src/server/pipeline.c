/*
 * pipeline.c - clients' autocommit statements queued on one server
 * connection (see pipeline.h).
 *
 * A server is open to queuing (s->pipe_ok) while its current client runs
 * exactly one such unit; every queued client also sent exactly one, so
 * the server leaves each of them outside a transaction block, as if the
 * clients had taken it one after the other.  A client that sends more
 * while its unit is still queued or others wait behind it is paused until
 * its ReadyForQuery.  A client that leaves keeps its place: its answer is
 * dropped.
 */
#include <string.h>
#include <strings.h>

#include "pgchorus/cancel.h"
#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/pipeline.h"
#include "pgchorus/pool.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

/* Not behind a statement that has run longer than this (loop time, ms):
 * it may be a long one, and the first server to come back is then the
 * better bet. */
#define PIPE_HEAD_MAX_MS 2

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

static bool is_ident(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
	       ch == '$' || (unsigned char)ch >= 0x80;
}

/* Skip white space and comments (block comments nest, as in PostgreSQL);
 * NULL for an unterminated comment. */
static const char *skip_blank(const char *p, const char *end)
{
	while (p < end) {
		if (is_space(*p)) {
			p++;
		} else if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
			while (p < end && *p != '\n')
				p++;
		} else if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
			int depth = 1;

			for (p += 2; depth > 0; p++) {
				if (end - p < 2)
					return NULL;
				if (p[0] == '/' && p[1] == '*') {
					depth++;
					p++;
				} else if (p[0] == '*' && p[1] == '/') {
					depth--;
					p++;
				}
			}
		} else {
			break;
		}
	}
	return p;
}

bool pipe_sql_safe(const char *sql, size_t len)
{
	/* Statements that run in their own implicit transaction and cannot open
	 * a transaction block.  Anything else (BEGIN, SET, COPY, LISTEN, CALL,
	 * DO, DDL...) waits for a server of its own. */
	static const char *const keywords[] = { "select", "values", "table", "with", "insert", "update", "delete" };
	const char *end = sql + len, *p = skip_blank(sql, end), *word, *semi;
	size_t n;

	if (!p || p == end)
		return false;
	for (word = p; p < end && is_ident(*p); p++)
		;
	n = (size_t)(p - word);
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		if (strlen(keywords[i]) != n || strncasecmp(word, keywords[i], n) != 0)
			continue;
		/* One statement: a ';' may only end it (one inside a literal makes
		 * this refuse, which is safe). */
		semi = memchr(p, ';', (size_t)(end - p));
		if (!semi)
			return true;
		for (p = semi; p < end; p++)
			if (*p != ';' && !is_space(*p))
				return false;
		return true;
	}
	return false;
}

/* The query of a Parse body (name, query, ...); NULL if malformed. */
static const char *parse_query(const uint8_t *body, uint32_t len, const char **name, size_t *qlen)
{
	const uint8_t *end = body + len, *nul = memchr(body, 0, len), *q, *qnul;

	if (!nul)
		return NULL;
	q = nul + 1;
	qnul = q < end ? memchr(q, 0, (size_t)(end - q)) : NULL;
	if (!qnul)
		return NULL;
	*name = (const char *)body;
	*qlen = (size_t)(qnul - q);
	return (const char *)q;
}

static bool stmt_safe(struct client_stmt *st)
{
	if (!st->pipe_safe) {
		const uint8_t *nul = memchr(st->body, 0, st->body_len);

		st->pipe_safe = nul && pipe_sql_safe((const char *)st->body, (size_t)(nul - st->body)) ? 1 : 2;
	}
	return st->pipe_safe == 1;
}

bool pipe_unit_safe(struct client *c)
{
	const uint8_t *p, *end;
	const char *named = NULL; /* a statement the unit's own Parse names */
	bool unnamed = false;     /* the unit's own Parse of the unnamed statement */
	int n = 0;

	if (!c->in.data)
		return false;
	p = c->in.data + c->in.start;
	end = c->in.data + c->in.end;
	while (p < end) {
		uint8_t type = p[0];
		uint32_t len, blen;
		const uint8_t *body, *next;

		if (end - p < 5)
			return false;
		len = codec_get32(p + 1);
		if (len < 4 || len > (uint32_t)(end - p - 1))
			return false;
		body = p + 5;
		blen = len - 4;
		next = p + 1 + len;
		switch (type) {
		case 'Q': {
			const uint8_t *nul = memchr(body, 0, blen);

			return n == 0 && next == end && nul && pipe_sql_safe((const char *)body, (size_t)(nul - body));
		}
		case 'P': {
			const char *name, *q;
			size_t qlen;

			q = parse_query(body, blen, &name, &qlen);
			if (!q || !pipe_sql_safe(q, qlen))
				return false;
			if (*name)
				named = name;
			else
				unnamed = true;
			break;
		}
		case 'B': {
			const uint8_t *pnul = memchr(body, 0, blen), *snul;
			const char *stmt;
			struct client_stmt *st;

			if (!pnul || pnul + 1 >= body + blen)
				return false;
			stmt = (const char *)pnul + 1;
			snul = memchr(stmt, 0, (size_t)(body + blen - (const uint8_t *)stmt));
			if (!snul)
				return false;
			if (!*stmt) {
				if (!unnamed)
					return false; /* the unnamed statement of some other transaction */
			} else if (!named || strcmp(named, stmt) != 0) {
				if (!c->track_statements || !(st = strmap_get(&c->stmts, stmt)) || !stmt_safe(st))
					return false;
			}
			break;
		}
		case 'D':
		case 'E':
			break;
		case 'S':
			return n > 0 && next == end;
		default:
			return false; /* Flush, Close, FunctionCall, COPY data... */
		}
		n++;
		p = next;
	}
	return false; /* no Sync yet */
}

bool pipe_may_lead(const struct server *s, struct client *c)
{
	return c->w->cfg->pipeline_depth > 1 && c->txn_pooling && rt_idle(&s->rt) && s->txn_status == 'I' &&
	       pipe_unit_safe(c);
}

void pipe_server_failed(struct server *s, struct client *c, const char *why)
{
	struct client *head = s->client;

	server_close(s, why); /* the queued clients: pipe_server_closing() */
	if (head && head != c)
		client_server_lost(head, "server connection lost");
}

/* Queue C's statement on S (C's unit is whole in its input). */
static void pipe_add(struct server *s, struct client *c)
{
	s->piped[s->n_piped++] = c;
	c->srv = s;
	/* Its statement and others queued in this turn of the loop go out in one write. */
	pstream_cork(&s->ps, &c->w->corks);
	stat_inc(&c->w->stats.pipelined);
}

struct server *pipe_join(struct client *c)
{
	struct pool *p = c->pool;
	const struct config *cfg = c->w->cfg;
	struct server *best = NULL;
	uint64_t now = worker_now(c->w);
	struct list *it;

	if (cfg->pipeline_depth < 2 || c->rs || !c->txn_pooling || !p)
		return NULL;
	/* Only when the client would otherwise wait: no idle server, no room
	 * to open one, and nobody already waiting (they go first). */
	if (!list_empty(&p->idle) || p->n_waiting || atomic_load(&p->shared->n_servers) < cfg->pool_size)
		return NULL;
	if (!pipe_unit_safe(c))
		return NULL;
	for (it = p->busy.next; it != &p->busy; it = it->next) {
		struct server *s = list_entry(it, struct server, link);

		if (s->state != SV_ACTIVE || !s->pipe_ok || s->n_piped + 1 >= cfg->pipeline_depth ||
		    s->fwd_remaining || pstream_busy(&s->ps) || now - s->state_since > PIPE_HEAD_MAX_MS ||
		    server_params_differ(s, c))
			continue;
		if (!best || s->n_piped < best->n_piped) {
			best = s;
			if (!s->n_piped)
				break;
		}
	}
	if (!best)
		return NULL;
	pipe_add(best, c);
	return best;
}

void pipe_pull_waiters(struct server *s)
{
	struct pool *p = s->pool;
	const struct config *cfg = s->w->cfg;

	while (s->state == SV_ACTIVE && s->pipe_ok && p->n_waiting && s->n_piped + 1 < cfg->pipeline_depth &&
	       !s->fwd_remaining && !pstream_busy(&s->ps)) {
		struct client *c = pool_first_waiter(p);

		if (!c || c->state != CL_WAIT || c->rs || !c->txn_pooling || !pipe_unit_safe(c) ||
		    server_params_differ(s, c)) {
			s->pipe_ok = false; /* it needs a server of its own: this one comes back soon */
			return;
		}
		pool_cancel_wait(c);
		pipe_add(s, c);
		client_set_state(c, CL_ACTIVE);
		client_process(c); /* sends its statement; it is then CL_PIPED */
		if (c->state != CL_PIPED)
			return; /* closed, or the server failed */
	}
}

struct client *pipe_next(struct server *s)
{
	struct client *done = s->client, *next = s->piped[0];

	memmove(s->piped, s->piped + 1, (size_t)(s->n_piped - 1) * sizeof(s->piped[0]));
	s->piped[--s->n_piped] = NULL;
	if (done) {
		pool_count_txn(s, done);
		done->srv = NULL;
		client_set_state(done, CL_IDLE);
	}
	s->client = next;
	s->state_since = worker_now(s->w);
	if (next) {
		client_set_state(next, CL_ACTIVE);
		if (next->cancel_pending) {
			/* It asked while its statement was queued: now it runs. */
			next->cancel_pending = false;
			cancel_node_backend(s->w, s->pool->node, s->be_pid, s->be_key);
		}
	}
	return done;
}

void pipe_released(struct client *c)
{
	if (c->state != CL_IDLE)
		return;
	if (c->close_when_idle) {
		client_close(c, SQLSTATE_ADMIN_SHUTDOWN, "pgchorus is shutting down");
		return;
	}
	client_resume(c);
	if (c->in.data && c->in.start < c->in.end)
		client_process(c); /* it sent more while its statement was queued */
}

void pipe_leave(struct client *c)
{
	struct server *s = c->srv;

	c->srv = NULL;
	if (s->client == c) {
		s->client = NULL; /* its answer is dropped; then the next one's turn */
		return;
	}
	for (int i = 0; i < s->n_piped; i++)
		if (s->piped[i] == c)
			s->piped[i] = NULL;
}

void pipe_server_closing(struct server *s)
{
	while (s->n_piped) {
		struct client *c = s->piped[--s->n_piped];

		s->piped[s->n_piped] = NULL;
		if (c) {
			c->srv = NULL;
			client_server_lost(c, "server connection lost");
		}
	}
	s->pipe_ok = false;
}
