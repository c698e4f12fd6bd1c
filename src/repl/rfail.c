/*
 * rfail.c - a replicated session survives the failure of a node
 * (doc/failover.md, "Failover that keeps sessions").
 *
 * The writes of an open transaction ran (or wait to run) on every live
 * node, so losing one node loses nothing the others do not have: the
 * session lets go of the node's server and goes on.  What the lost node was
 * doing in the current step decides the rest:
 *
 *   not busy in the step, or not its leader   the step goes on without it;
 *   leader, nothing of its answer reached     the unit runs again on another
 *     the client yet                          node: a read on the next read
 *                                             target, a write on the new
 *                                             primary (which first runs the
 *                                             writes it had deferred), the
 *                                             client's COMMIT is answered by
 *                                             pgchorus once a node committed;
 *   leader, the client has part of the        the transaction is rolled back
 *     answer                                  everywhere and the client gets
 *                                             40003 (completion unknown).
 *
 * The pause of writes used by online recovery and failback is here too:
 * a session about to open a write transaction waits (RS_GATE) while writes
 * are paused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/client.h"
#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/pool.h"
#include "pgchorus/restrack.h"
#include "pgchorus/rsess.h"
#include "pgchorus/rstep.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

#define SQLSTATE_COMPLETION_UNKNOWN "40003"

/* The leader's answer cannot be completed: roll back, tell the client. */
static void rs_fail_unit(struct rsess *rs, int node)
{
	char text[200];

	snprintf(text, sizeof(text),
		 "node %d failed while it answered the statement; the transaction was rolled back on every node", node);
	buf_reset(&rs->err);
	if (!msg_error(&rs->err, "ERROR", SQLSTATE_COMPLETION_UNKNOWN, "%s", text)) {
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	rs->send_err = true;
	rs->abort_in_block = rs->txn != 'I' && !rs->wrap && !rs->client_commit;
	rs->leader = -1;
	rs_drop_pending(rs);
	rs_abort(rs);
}

/* A node of the step that has not answered anything yet (-1: none). */
static int rs_fresh_node(const struct rsess *rs)
{
	for (int i = 0; i < rs->n_nodes; i++)
		if (rs->slot[i].srv && rs->slot[i].busy && !rs->slot[i].answered)
			return i;
	return -1;
}

/* The unit runs again on NODE, which now leads the step. */
static bool rs_rerun_on(struct rsess *rs, int node, const struct rs_unit *u)
{
	rs->leader = node;
	rs->client_got = false;
	if (!rs_send(rs, node, NULL, u, true))
		return false;
	return rs->c->state != CL_CLOSING;
}

/* The leader NODE was lost in the middle of the step (nothing reached the client). */
static void rs_leader_lost(struct rsess *rs, int node)
{
	int primary = node_primary();

	switch (rs->step) {
	case RS_READ: {
		int to = rs_read_target(rs);

		if (rs->u_state || to < 0) {
			rs_fail_unit(rs, node);
			return;
		}
		log_info("C-%p: node %d failed; the read runs again on node %d", (void *)rs->c, node, to);
		rs_rerun_on(rs, to, &rs->unit);
		return;
	}
	case RS_PRIMARY:
		if (primary < 0) {
			rs_fail_unit(rs, node);
			return;
		}
		/* Routed again: to the new primary once the writes other sessions
		 * ran behind the old one are done there (the failover barrier). */
		if (rs->time_wait && !rs->txn_time[0])
			rs->time_wait = false; /* the new primary's BEGIN reads it again */
		if (rs->ship_on)
			rs_ship_restart(rs);
		rs->primary_moved = rs->txn != 'I' || rs->wrap;
		log_info("C-%p: primary node %d failed; the statement runs again on node %d", (void *)rs->c, node,
			 primary);
		rs->leader = -1;
		rs->busy_mask = 0;
		rs->step = RS_NONE;
		rs->u_ready = true;
		return;
	case RS_PARALLEL: {
		int to = rs->copy_in ? -1 : rs_fresh_node(rs);

		if (to < 0) {
			rs_fail_unit(rs, node);
			return;
		}
		/* Another node runs the same unit and has not answered yet: its answers go to the client. */
		rs->leader = to;
		return;
	}
	case RS_COMMIT:
		/* COMMIT PREPARED went to every node: answer the client here once one committed. */
		rs->leader = -1;
		if (rs_answer_locally(rs, "COMMIT", true)) {
			rs->commit_local = true;
			return;
		}
		rs_fail_unit(rs, node);
		return;
	case RS_LOOKUP:
		/* a catalog read of row shipping: the unit is routed again (new primary) */
		rs->leader = -1;
		rs->busy_mask = 0;
		rs->step = RS_NONE;
		rs->u_ready = true;
		return;
	default:
		rs->leader = -1;
		return;
	}
}

void rsess_server_failed(struct client *c, struct server *s, const char *why)
{
	struct rsess *rs = c->rs;
	int node = s->pool->node;
	struct rs_slot *sl;
	bool busy, leader, got;
	enum rs_step step;

	if (node < 0 || node >= rs->n_nodes || rs->slot[node].srv != s || !c->w->cfg->failover_on_backend_error) {
		server_close(s, why);
		client_server_lost(c, "server connection to a node was lost");
		return;
	}
	sl = &rs->slot[node];
	busy = sl->busy;
	leader = rs->leader == node;
	got = rs->client_got;
	step = rs->step;
	node_fail(node, why);
	server_close(s, why); /* rsess_server_gone() clears the slot */
	if (rs->read_node == node)
		rs->read_node = -1;
	if (rs->err_node == node) {
		rs->err_node = -1;
		rs->err_lost = true;
	}
	if (c->state == CL_CLOSING)
		return;
	if (node_primary() < 0) {
		client_close(c, SQLSTATE_CONNECTION_FAILURE, "no PostgreSQL node is available");
		return;
	}
	if (step == RS_NONE || step == RS_ACQUIRE || step == RS_ORDER || step == RS_GATE || !busy)
		return;
	if (leader) {
		if (got) {
			rs_fail_unit(rs, node);
			return;
		}
		rs_leader_lost(rs, node);
		if (c->state == CL_CLOSING)
			return;
		if (rs->step == RS_NONE && rs->u_ready) {
			/* routed again from the start */
			if (!rs->in_process)
				rsess_process(c);
			return;
		}
	}
	if (rs->step != RS_NONE && !rs->busy_mask)
		rsess_step_done(rs);
}

static void rs_fo_flush(struct rsess *rs);

void rsess_node_down(struct worker *w, int node, bool was_primary)
{
	struct list *it, *tmp;

	list_for_each_safe(it, tmp, &w->clients) {
		struct client *c = list_entry(it, struct client, link);
		struct server *s;

		if (!c->rs || c->state == CL_CLOSING || node >= c->rs->n_nodes)
			continue;
		if (c->rs->step == RS_ACQUIRE && c->state == CL_WAIT && c->pool && c->pool->node == node) {
			/* waiting for a server of the node: go on without it */
			pool_cancel_wait(c);
			client_set_state(c, CL_ACTIVE);
			c->rs->step = RS_NONE;
			rsess_process(c);
			continue;
		}
		s = c->rs->slot[node].srv;
		if (s)
			rsess_server_failed(c, s, "node is no longer up");
	}
	if (!was_primary)
		return;
	list_for_each_safe(it, tmp, &w->clients) {
		struct client *c = list_entry(it, struct client, link);

		if (c->rs && c->state != CL_CLOSING)
			rs_fo_flush(c->rs);
	}
	rfail_barrier_add(-1); /* this worker's part is done */
}

void rs_pool_connect_failed(struct client *c, int node, const char *why)
{
	struct rsess *rs = c->rs;

	if (!c->w->cfg->failover_on_backend_error) {
		client_close(c, SQLSTATE_CONNECTION_FAILURE, "%s", why);
		return;
	}
	node_fail(node, why);
	if (node_primary() < 0) {
		client_close(c, SQLSTATE_CONNECTION_FAILURE, "no PostgreSQL node is available");
		return;
	}
	/* The session goes on without the node (rs_ensure_servers skips it now). */
	client_set_state(c, CL_ACTIVE);
	if (rs->step == RS_ACQUIRE)
		rs->step = RS_NONE;
	rsess_process(c);
}

/* ---- the failover barrier ---- */

#define FO_BARRIER_MAX_MS 10000

static atomic_int fo_hold;           /* workers and slots holding it */
static atomic_uint_fast64_t fo_since; /* uv_hrtime() in ms when it was raised */

void rfail_barrier_add(int n)
{
	int v = atomic_fetch_add(&fo_hold, n) + n;

	if (n > 0 && v == n)
		atomic_store(&fo_since, uv_hrtime() / 1000000);
	if (n < 0 && v == 0)
		workers_post_kind(INBOX_WRITES_RESUMED, 0, 0);
}

void rs_fo_release(struct rs_slot *sl)
{
	if (!sl->fo_hold)
		return;
	sl->fo_hold = false;
	rfail_barrier_add(-1);
}

/* Must new writes wait for the barrier?  Not for ever: after
 * FO_BARRIER_MAX_MS they go on (logged once). */
static bool fo_blocked(void)
{
	static atomic_bool warned;
	uint64_t since;

	if (atomic_load(&fo_hold) <= 0)
		return false;
	since = atomic_load(&fo_since);
	if (uv_hrtime() / 1000000 - since < FO_BARRIER_MAX_MS)
		return true;
	if (!atomic_exchange(&warned, true))
		log_warning("failover: writes that ran behind the old primary are still not done after %d ms; new "
			    "writes go on", FO_BARRIER_MAX_MS);
	return false;
}

/* A primary was lost: the writes RS ran behind it go to the nodes left now,
 * and hold the barrier until they are done. */
static void rs_fo_flush(struct rsess *rs)
{
	if (rs->step == RS_ORDER && !rs->fo_order) {
		/* Rows the old primary gave wait for commits to end before they
		 * go out: the barrier waits for them too (rs_fo_order_done). */
		rs->fo_order = true;
		rfail_barrier_add(1);
	}
	for (int i = 0; i < rs->n_nodes; i++) {
		struct rs_slot *sl = &rs->slot[i];

		if (!sl->srv || sl->fo_hold)
			continue;
		if (!sl->pend.msgs.len && (rt_idle(&sl->srv->rt) || (!rs->gate_in && !rs->wrote)))
			continue;
		if (!rs_flush_pending(rs, i) || rs->c->state == CL_CLOSING)
			return;
		if (!sl->srv || rt_idle(&sl->srv->rt))
			continue;
		sl->fo_hold = true;
		rfail_barrier_add(1);
	}
}

void rs_fo_order_done(struct rsess *rs)
{
	if (!rs->fo_order)
		return;
	rs->fo_order = false;
	if (rs->c->state != CL_CLOSING) {
		for (int i = 0; i < rs->n_nodes; i++) {
			struct rs_slot *sl = &rs->slot[i];

			if (!sl->srv || sl->fo_hold)
				continue;
			if (!rs_flush_pending(rs, i) || rs->c->state == CL_CLOSING)
				break;
			if (sl->srv && !rt_idle(&sl->srv->rt)) {
				sl->fo_hold = true;
				rfail_barrier_add(1);
			}
		}
	}
	rfail_barrier_add(-1);
}

/* ---- pause of writes ---- */

bool rs_gate(struct rsess *rs, bool commit_only)
{
	if (!commit_only && fo_blocked())
		goto wait;
	if (rs->gate_in)
		return true;
	if (rgate_enter()) {
		rs->gate_in = true;
		return true;
	}
wait:
	rs->step = RS_GATE;
	rs->u_ready = true;
	list_append(&rs->c->w->gate_waiters, &rs->gate_link);
	rs->gate_waiting = true;
	return false;
}

void rs_gate_leave(struct rsess *rs)
{
	if (rs->gate_waiting) {
		list_del(&rs->gate_link);
		rs->gate_waiting = false;
	}
	if (!rs->gate_in)
		return;
	rs->gate_in = false;
	nodes_note_write();
	rgate_leave();
}

/* The barrier is held long: say which sessions of W hold it (janitor). */
static void fo_report(struct worker *w)
{
	struct list *it, *tmp;

	list_for_each_safe(it, tmp, &w->clients) {
		struct client *c = list_entry(it, struct client, link);
		struct rsess *rs = c->rs;

		if (!rs)
			continue;
		for (int i = 0; i < rs->n_nodes; i++) {
			struct rs_slot *sl = &rs->slot[i];

			if (sl->fo_hold)
				log_warning("failover barrier: C-%p holds it on node %d: step %d, txn %c, busy %d, "
					    "tracker idle %d, deferred %zu bytes, in_txn %d, z %c", (void *)c, i,
					    (int)rs->step, rs->txn, sl->busy, sl->srv ? rt_idle(&sl->srv->rt) : -1,
					    sl->pend.msgs.len, sl->in_txn, sl->z);
		}
	}
}

void rs_gate_wake(struct worker *w)
{
	struct list *it;

	if (atomic_load(&fo_hold) > 0 && uv_hrtime() / 1000000 - atomic_load(&fo_since) > 3000 &&
	    uv_hrtime() / 1000000 - atomic_load(&fo_since) < 4100)
		fo_report(w);

	if (repl_writes_paused() || fo_blocked())
		return;
	while ((it = list_pop_first(&w->gate_waiters)) != NULL) {
		struct rsess *rs = list_entry(it, struct rsess, gate_link);

		rs->gate_waiting = false;
		rs->step = RS_NONE;
		rs->u_ready = true;
		if (!rs->in_process)
			rsess_process(rs->c);
	}
}
