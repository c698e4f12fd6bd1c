/*
 * rsess.c - a client session in replication mode: its life (create,
 * servers per node, release), the end of each unit, and what the client
 * and server code ask of it (rsess.h explains units and steps; rread.c
 * reads units, rroute.c routes them, rstep.c runs the steps).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgchorus/cancel.h"
#include "pgchorus/client.h"
#include "pgchorus/corder.h"
#include "pgchorus/codec.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/pool.h"
#include "pgchorus/resolver.h"
#include "pgchorus/rsess.h"
#include "pgchorus/rstep.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

/* Bytes of a client's next messages read while a step runs. */
#define RS_READ_AHEAD 4096

static void rs_unit_init(struct rs_unit *u)
{
	buf_init(&u->msgs);
	buf_init(&u->entries);
}

static void rs_unit_free(struct rs_unit *u)
{
	buf_free(&u->msgs);
	buf_free(&u->entries);
}

static void rs_unit_reset(struct rsess *rs)
{
	buf_reset(&rs->unit.msgs);
	buf_reset(&rs->unit.entries);
	buf_reset(&rs->state.msgs);
	buf_reset(&rs->state.entries);
	buf_reset(&rs->u_sql);
	memset(&rs->cls, 0, sizeof(rs->cls));
	rs->cls.cls = STMT_TXN;
	rs->u_exec = 0;
	rs->u_state = false;
	rs->u_ready = false;
	rs->unit_sync = false;
	rs->wrap = false;
	rs->compare = false;
	rs->client_commit = false;
	rs->copy_in = rs->copy_done = rs->copy_need_sync = false;
	rs->copy_mask = 0;
	buf_reset(&rs->now_marks);
	buf_reset(&rs->now_unit.msgs);
	buf_reset(&rs->now_unit.entries);
	rs_ship_reset_unit(rs);
}

bool rsess_create(struct client *c)
{
	struct rsess *rs = calloc(1, sizeof(*rs));

	if (!rs)
		return false;
	rs->n_nodes = nodes_count();
	rs->slot = calloc((size_t)rs->n_nodes, sizeof(*rs->slot));
	if (!rs->slot) {
		free(rs);
		return false;
	}
	for (int i = 0; i < rs->n_nodes; i++)
		rs->slot[i].z = 'I';
	rs->c = c;
	rs->leader = rs->read_node = rs->err_node = -1;
	rs->txn = 'I';
	rs_unit_init(&rs->unit);
	rs_unit_init(&rs->state);
	buf_init(&rs->begin_sql);
	buf_init(&rs->err);
	buf_init(&rs->u_sql);
	buf_init(&rs->rw);
	strmap_init(&rs->stmts);
	strmap_init(&rs->portals);
	strmap_init(&rs->tables);
	strmap_init(&rs->fns);
	rs_unit_reset(rs);
	c->rs = rs;
	return true;
}

static void rs_free_value(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	free(value);
}

void rsess_release(struct client *c)
{
	struct rsess *rs = c->rs;

	rs->step = RS_NONE;
	rs->busy_mask = 0;
	for (int i = 0; i < rs->n_nodes; i++) {
		struct server *s = rs->slot[i].srv;

		if (!s)
			continue;
		rs_fo_release(&rs->slot[i]);
		rs->slot[i].srv = NULL;
		if (server_is_clean(s) && !rs->slot[i].busy && !rs->slot[i].pend.msgs.len) {
			pool_release(s, true);
		} else {
			server_unlink(s);
			server_close(s, "client went away during a transaction");
		}
	}
	corder_end(rs->commit_ticket);
	rs->commit_ticket = 0;
	rs_ship_unwait(rs);
	rs_fo_order_done(rs);
	rs_gate_leave(rs);
	if (rs->gid_live) {
		/* Prepared somewhere, perhaps: the resolver finishes it. */
		resolver_gid_end(rs->gid);
		resolver_kick();
		rs->gid_live = false;
	}
}

void rsess_free(struct client *c)
{
	struct rsess *rs = c->rs;

	if (!rs)
		return;
	rs_unit_free(&rs->unit);
	rs_unit_free(&rs->state);
	buf_free(&rs->begin_sql);
	buf_free(&rs->err);
	buf_free(&rs->u_sql);
	buf_free(&rs->rw);
	strmap_foreach(&rs->stmts, rs_free_value, NULL);
	strmap_destroy(&rs->stmts);
	strmap_foreach(&rs->portals, rs_free_value, NULL);
	strmap_destroy(&rs->portals);
	rs_ship_free(rs);
	buf_free(&rs->now_marks);
	rs_unit_free(&rs->now_unit);
	for (int i = 0; i < rs->n_nodes; i++)
		rs_unit_free(&rs->slot[i].pend);
	free(rs->slot);
	free(rs);
	c->rs = NULL;
}

void rsess_adopt(struct client *c, struct server *s)
{
	struct rsess *rs = c->rs;
	int node = s->pool->node;

	c->srv = NULL;
	if (node < 0 || node >= rs->n_nodes || rs->slot[node].srv) {
		server_unlink(s);
		server_close(s, "unexpected server");
		return;
	}
	s->client = c;
	rs->slot[node].srv = s;
	rs->slot[node].z = s->txn_status ? s->txn_status : 'I';
}

void rsess_server_gone(struct client *c, struct server *s)
{
	struct rsess *rs = c->rs;

	for (int i = 0; i < rs->n_nodes; i++) {
		struct rs_slot *sl = &rs->slot[i];

		if (sl->srv != s)
			continue;
		rs_fo_release(sl);
		sl->srv = NULL;
		sl->in_txn = false;
		sl->prepared = false;
		sl->mismatch = false;
		sl->lag_count = 0;
		buf_reset(&sl->pend.msgs);
		buf_reset(&sl->pend.entries);
		memset(&sl->cur, 0, sizeof(sl->cur));
		if (sl->busy) {
			sl->busy = false;
			rs->busy_mask &= ~(1ULL << i);
		}
	}
}

void rsess_client_drained(struct client *c)
{
	struct rsess *rs = c->rs;

	for (int i = 0; i < rs->n_nodes && c->rs == rs; i++) {
		struct server *s = rs->slot[i].srv;

		if (!s)
			continue;
		server_resume(s);
		if (s->in.data && iobuf_avail(&s->in))
			rsrv_process(s);
		if (c->state == CL_CLOSING)
			return;
	}
}

bool rsess_may_read(const struct client *c)
{
	const struct rsess *rs = c->rs;

	if (rs->step == RS_NONE)
		return true;
	if (!rs->copy_in) {
		/* A step runs: what the client sends next waits in the buffer.
		 * Reading on (up to a little) spares stopping and restarting the
		 * reads around every statement; a client that pipelines more is
		 * held back. */
		return !c->in.data || iobuf_avail(&c->in) < RS_READ_AHEAD;
	}
	for (int i = 0; i < rs->n_nodes; i++)
		if (rs->slot[i].srv && pstream_busy(&rs->slot[i].srv->ps))
			return false;
	return true;
}

bool rsess_between_units(const struct client *c)
{
	return c->rs->step == RS_NONE;
}

bool rsess_idle(const struct client *c)
{
	return c->rs->step == RS_NONE && c->rs->txn == 'I';
}

/* ---- the end of a unit ---- */

const double stat_lat_bounds[STAT_LAT_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1 };

/*
 * Metrics: the unit is answered (units, latency histogram), and SHOW STATS'
 * row of the session's database and the node that answered: a query, its
 * time, and a transaction when none is open any more.
 */
static void rs_stat_unit(struct rsess *rs)
{
	struct worker_stats *st = &rs->c->w->stats;
	struct stat_db_node *cell = NULL;
	double secs;
	int b = 0;

	stat_inc(&st->units);
	if (rs->c->pool) {
		cell = stat_db_cell(st, rs->c->pool->stat_db, rs->leader >= 0 ? rs->leader : node_primary());
		stat_inc(&cell->queries);
	}
	if (rs->unit_t0) {
		secs = (double)(uv_hrtime() - rs->unit_t0) / 1e9;
		rs->unit_t0 = 0;
		while (b < STAT_LAT_BUCKETS && secs > stat_lat_bounds[b])
			b++;
		stat_inc(&st->lat_bucket[b]);
		stat_add(&st->lat_sum_us, (uint64_t)(secs * 1e6));
		rs->txn_us += (uint64_t)(secs * 1e6);
	}
	if (cell && rs->txn == 'I') {
		/* the transaction's time: its units' (not the client's think time in between) */
		stat_inc(&cell->transactions);
		stat_add(&cell->time_us, rs->txn_us);
		stat_lat_add(cell->lat_bucket, rs->txn_us);
		rs->txn_us = 0;
	}
}

static void rs_txn_reset(struct rsess *rs)
{
	rs->wrote = false;
	rs->iso_strict = false;
	rs->no_2pc = false;
	rs->txn_time[0] = '\0';
	rs->time_wait = false;
	rs->order_pend = 0;
	rs->err_node = -1;
	rs->err_lost = false;
	rs->primary_moved = false;
	rs_gate_leave(rs); /* the write transaction (if it was one) ended */
	if (rs->c->w->cfg->load_balance != LB_SESSION)
		rs->read_node = -1;
	for (int i = 0; i < rs->n_nodes; i++) {
		rs->slot[i].in_txn = false;
		rs->slot[i].mismatch = false;
	}
}

void rs_finish(struct rsess *rs)
{
	struct client *c = rs->c;

	if (rs->unit_sync && !msg_ready(&c->scratch, rs->txn)) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (rs->txn == 'I')
		rs_txn_reset(rs);
	rs->units_done++;
	rs_stat_unit(rs);
	corder_end(rs->commit_ticket);
	rs->commit_ticket = 0;
	rs->step = RS_NONE;
	if (c->close_when_idle && rs->txn == 'I') {
		client_flush_scratch(c);
		client_close(c, SQLSTATE_ADMIN_SHUTDOWN, "pgchorus is shutting down");
		return;
	}
	rs->leader = -1;
	rs_unit_reset(rs);
	buf_reset(&rs->err);
	if (!client_flush_scratch(c))
		return;
	if (!rs->in_process)
		rsess_process(c);
}

/* Answer the unit here with an error. */
void rs_local_error(struct rsess *rs, const char *sqlstate, const char *text)
{
	int ci = stat_class_index(sqlstate);

	if (ci >= 0)
		stat_inc(&rs->c->w->stats.errors[ci]);
	if (!msg_error(&rs->c->scratch, "ERROR", sqlstate, "%s", text)) {
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (rs->txn == 'T')
		rs->txn = 'E'; /* as the server would */
	rs_finish(rs);
}

/* ---- acquiring the servers ---- */

struct replay_ctx {
	struct server *s;
	uint64_t before; /* statements of earlier units only: the unit's own Parse is in the unit */
	bool ok;
};

static void replay_one(const char *key, void *value, void *arg)
{
	const struct rs_named *v = value;
	struct replay_ctx *rc = arg;

	(void)key;
	if (!rc->ok || !v->parse_len || v->unit_no >= rc->before)
		return;
	rc->ok = buf_append(&rc->s->scratch, v->sql + strlen(v->sql) + 1, v->parse_len) &&
		 rt_push(&rc->s->rt, RT_PARSE | RT_SWALLOW | RT_INJECTED);
}

/*
 * A server of NODE joins the session after it made named statements (the
 * node was attached or recovered since): they are prepared there too, so
 * that the session's Binds work on every node.  Answers swallowed; a Parse
 * that fails there fails alone (the Sync ends the error).
 */
bool rs_replay_statements(struct rsess *rs, int node)
{
	struct server *s = rs->slot[node].srv;
	struct replay_ctx rc = { s, rs->units_done, true };
	size_t mark;
	uv_buf_t b;

	if (!s || !rs->stmts.count)
		return true;
	mark = s->scratch.len;
	strmap_foreach(&rs->stmts, replay_one, &rc);
	if (rc.ok && s->scratch.len == mark)
		return true; /* none of an earlier unit */
	if (!rc.ok || !msg_empty(&s->scratch, 'S') || !rt_push(&s->rt, RT_SYNC | RT_SWALLOW | RT_INJECTED)) {
		buf_reset(&s->scratch);
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	log_debug("C-%p: named statements prepared again on node %d", (void *)rs->c, node);
	b = uv_buf_init((char *)s->scratch.data, (unsigned int)s->scratch.len);
	if (pstream_send(&s->ps, &b, 1) < 0) {
		buf_reset(&s->scratch);
		server_close(s, "write failed");
		return rs->c->state != CL_CLOSING;
	}
	buf_reset(&s->scratch);
	server_resume(s);
	return true;
}

/* Hold a server of every live node (in node order, so that sessions never
 * wait for each other in a cycle).  false: waiting, or the client closed. */
bool rs_ensure_servers(struct rsess *rs)
{
	struct client *c = rs->c;

	for (int i = 0; i < rs->n_nodes; i++) {
		struct node *n = node_get(i);
		struct rs_slot *sl = &rs->slot[i];
		struct server *s;
		struct pool *p;

		if (sl->srv && atomic_load(&n->state) != NODE_UP) {
			/* Detached since: the session no longer uses it. */
			s = sl->srv;
			server_unlink(s);
			server_close(s, "node is no longer up");
		}
		if (sl->srv || atomic_load(&n->state) != NODE_UP)
			continue;
		/* A node attached while this session's write transaction is open
		 * missed its writes: it joins at the next transaction (attaching
		 * waits for open write transactions; see rfail.c). */
		if (rs->gate_in)
			continue;
		p = pool_get(c->w, c->database, c->user, i);
		if (!p) {
			client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return false;
		}
		c->pool = p;
		client_set_state(c, CL_WAIT);
		s = pool_acquire(p, c);
		if (c->state == CL_CLOSING)
			return false;
		if (!s) {
			rs->step = RS_ACQUIRE;
			client_pause(c);
			return false;
		}
		client_set_state(c, CL_ACTIVE);
		rsess_adopt(c, s);
		if (!rs_replay_statements(rs, i))
			return false;
	}
	if (c->state == CL_IDLE)
		client_set_state(c, CL_ACTIVE);
	return true;
}

void rsess_server_ready(struct client *c, struct server *s)
{
	struct rsess *rs = c->rs;
	int node = s->pool->node;

	client_set_state(c, CL_ACTIVE);
	rsess_adopt(c, s);
	if (node >= 0 && node < rs->n_nodes && rs->slot[node].srv == s && !rs_replay_statements(rs, node))
		return;
	if (rs->step == RS_ACQUIRE)
		rs->step = RS_NONE;
	rsess_process(c);
}

void rsess_cancel(struct client *c)
{
	struct rsess *rs = c->rs;

	for (int i = 0; i < rs->n_nodes; i++) {
		struct server *s = rs->slot[i].srv;

		if (s && rs->slot[i].busy && s->be_pid)
			cancel_node_backend(c->w, i, s->be_pid, s->be_key);
	}
}
