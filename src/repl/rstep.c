/*
 * rstep.c - running the steps of a replicated session (rsess.h): sending a
 * unit to nodes, primary-first writes, the comparison of outcomes, two-phase
 * commit and rollback everywhere.  Which step a unit needs is decided in
 * rsess.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/corder.h"
#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/pool.h"
#include "pgchorus/resolver.h"
#include "pgchorus/rsess.h"
#include "pgchorus/rstep.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

#define SQLSTATE_DATA_CORRUPTED "XX001"

uint64_t rs_live_mask(const struct rsess *rs)
{
	uint64_t m = 0;

	for (int i = 0; i < rs->n_nodes; i++) {
		struct node *n = node_get(i);

		if (n && atomic_load(&n->state) == NODE_UP && rs->slot[i].srv)
			m |= 1ULL << i;
	}
	return m;
}

uint64_t rs_txn_mask(const struct rsess *rs)
{
	uint64_t m = 0;

	for (int i = 0; i < rs->n_nodes; i++)
		if (rs->slot[i].srv && rs->slot[i].in_txn)
			m |= 1ULL << i;
	return m;
}

static void rs_slot_reset(struct rs_slot *sl)
{
	sl->failed = false;
	sl->answered = false;
	sl->sqlstate[0] = '\0';
}

void rs_begin_step(struct rsess *rs, enum rs_step st, int leader)
{
	rs->step = st;
	rs->leader = leader;
	rs->busy_mask = 0;
	rs->step_mask = 0;
	rs->client_got = false;
	for (int i = 0; i < rs->n_nodes; i++)
		rs_slot_reset(&rs->slot[i]);
}

/* The BEGIN a node needs before it can take part in the open transaction. */
static const char *rs_join_sql(struct rsess *rs, int node)
{
	struct rs_slot *sl = &rs->slot[node];

	if (sl->in_txn)
		return NULL;
	if (rs->wrap)
		return "BEGIN";
	if (rs->txn != 'I')
		return rs->begin_sql.len ? (const char *)rs->begin_sql.data : "BEGIN";
	return NULL;
}

/*
 * A write to NODE failed.  The caller may be sending to several nodes: the
 * session lets go of the node later, when the worker hears that it is down
 * (rsess_node_down), not in the middle of the caller's loop.
 */
static void rs_node_lost(struct rsess *rs, int node, const char *why)
{
	struct server *s = rs->slot[node].srv;

	if (!s)
		return;
	if (!rs->c->w->cfg->failover_on_backend_error) {
		server_close(s, why); /* through server_unlink -> rsess_server_gone() */
		client_server_lost(rs->c, "server connection to a node was lost");
		return;
	}
	if (!node_fail(node, why) && !worker_post_kind(rs->c->w, INBOX_NODE_DOWN, (uint32_t)node, 0))
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory"); /* (node_fail told every worker) */
}

/* Queue entry E for a node: in its tracker, or with its deferred messages. */
static bool rs_entry(struct rs_slot *sl, struct server *s, bool defer, uint8_t e)
{
	return defer ? buf_append(&sl->pend.entries, &e, 1) : rt_push(&s->rt, e);
}

/* The deferred messages of a node go in front of what is written to it now. */
static bool rs_take_pending(struct rs_slot *sl, struct server *s)
{
	if (!buf_append(&s->scratch, sl->pend.msgs.data, sl->pend.msgs.len))
		return false;
	for (size_t i = 0; i < sl->pend.entries.len; i++)
		if (!rt_push(&s->rt, sl->pend.entries.data[i]))
			return false;
	buf_reset(&sl->pend.msgs);
	buf_reset(&sl->pend.entries);
	sl->pend_units = 0;
	sl->pend_joined = false;
	return true;
}

void rs_drop_pending(struct rsess *rs)
{
	for (int i = 0; i < rs->n_nodes; i++) {
		struct rs_slot *sl = &rs->slot[i];

		if (!sl->pend.msgs.len)
			continue;
		sl->lag_count = sl->lag_count > sl->pend_units ? (uint8_t)(sl->lag_count - sl->pend_units) : 0;
		if (sl->pend_joined)
			sl->in_txn = false; /* it never began the transaction */
		buf_reset(&sl->pend.msgs);
		buf_reset(&sl->pend.entries);
		sl->pend_units = 0;
		sl->pend_joined = false;
	}
}

static bool rs_write(struct rsess *rs, int node, struct server *s)
{
	uv_buf_t b;

	if (!s->scratch.len)
		return true;
	b = uv_buf_init((char *)s->scratch.data, (unsigned int)s->scratch.len);
	if (pstream_send(&s->ps, &b, 1) < 0) {
		buf_reset(&s->scratch);
		rs_node_lost(rs, node, "write failed");
		return rs->c->state != CL_CLOSING;
	}
	buf_reset(&s->scratch);
	server_resume(s);
	return true;
}


bool rs_flush_pending(struct rsess *rs, int node)
{
	struct rs_slot *sl = &rs->slot[node];
	struct server *s = sl->srv;

	if (!s || !sl->pend.msgs.len)
		return true;
	if (!rs_take_pending(sl, s)) {
		buf_reset(&s->scratch);
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	return rs_write(rs, node, s);
}


/* Are the outcomes of U compared between the nodes? */
static bool rs_compared(const struct rsess *rs, const struct rs_unit *u)
{
	return rs->compare && (u == &rs->unit || u == &rs->ship_unit || u == &rs->now_unit);
}

/* U is exactly one simple Query. */
static bool rs_one_query(const struct rs_unit *u)
{
	return u && u->entries.len == 1 && u->msgs.len > 5 && u->msgs.data[0] == 'Q' &&
	       u->msgs.len == 1 + (size_t)codec_get32(u->msgs.data + 1);
}

/*
 * Send to NODE: the Queries PRE (NULL-terminated, may be NULL; answers
 * swallowed), then unit U (may be NULL), swallowed unless NODE leads the
 * step.  JOIN: first the BEGIN the node needs to join the open transaction.
 * DEFER: a write the node runs behind the primary: it waits with the node's
 * other deferred writes until something else is sent to the node (the
 * PREPARE at COMMIT, a ROLLBACK...) or RS_DEFER_MAX of them wait; then they
 * all go in one write.  The node's backend then runs the transaction's
 * writes in one go: far fewer round trips, wake-ups and system calls.
 */
bool rs_send_ex(struct rsess *rs, int node, const char *const *pre, const struct rs_unit *u, bool join, bool defer)
{
	struct rs_slot *sl = &rs->slot[node];
	struct server *s = sl->srv;
	const char *js = join ? rs_join_sql(rs, node) : NULL;
	bool swallow = node != rs->leader;
	struct buf *out;

	if (!s)
		return false;
	if (u)
		stat_inc(&rs->c->w->stats.node_statements[node & 63]);
	defer = defer && sl->lag_count <= RS_DEFER_MAX && sl->pend.msgs.len < RS_DEFER_BYTES;
	out = defer ? &sl->pend.msgs : &s->scratch;
	if (!defer && sl->pend.msgs.len && !rs_take_pending(sl, s))
		goto oom;
	if (js && swallow && !(pre && *pre) && rs_one_query(u) && (node != node_primary() || rs->txn_time[0])) {
		/* One Query "BEGIN ...\n;\n<the client's SQL>": the node answers
		 * once.  Not for the leader: its client would see the BEGIN. */
		struct msg_builder mb;
		uint8_t flags = RT_SWALLOW | (rs_compared(rs, u) ? RT_COMPARE : 0);

		builder_begin(&mb, out, 'Q');
		builder_bytes(&mb, js, strlen(js));
		builder_bytes(&mb, "\n;\n", 3);
		builder_bytes(&mb, u->msgs.data + 5, u->msgs.len - 5);
		if (!builder_finish(&mb) || !rs_entry(sl, s, defer, RT_QUERY | flags))
			goto oom;
		sl->in_txn = true;
		sl->pend_joined |= defer;
		sl->pend_units += defer && (flags & RT_COMPARE);
		js = NULL;
		u = NULL;
	}
	if (js && node == node_primary() && !defer && !rs->txn_time[0]) {
		/* The primary's transaction time, for the others (rnow.c). */
		struct msg_builder mb;
		static const char sel[] = "\n;\nSELECT pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', "
					  "'YYYY-MM-DD HH24:MI:SS.US')";

		builder_begin(&mb, out, 'Q');
		builder_bytes(&mb, js, strlen(js));
		builder_string(&mb, sel);
		if (!builder_finish(&mb) || !rs_entry(sl, s, defer, RT_QUERY | RT_SWALLOW | RT_INJECTED | RT_SHIP))
			goto oom;
		rs->time_wait = true;
		rs->time_node = node;
		sl->in_txn = true;
	} else if (js) {
		if (!msg_query(out, js) || !rs_entry(sl, s, defer, RT_QUERY | RT_SWALLOW | RT_INJECTED))
			goto oom;
		sl->in_txn = true;
		sl->pend_joined |= defer;
	}
	for (; pre && *pre; pre++)
		if (!msg_query(out, *pre) || !rs_entry(sl, s, defer, RT_QUERY | RT_SWALLOW | RT_INJECTED))
			goto oom;
	if (u) {
		uint8_t flags = (swallow ? RT_SWALLOW : 0) | (rs_compared(rs, u) ? RT_COMPARE : 0);

		if (!buf_append(out, u->msgs.data, u->msgs.len))
			goto oom;
		for (size_t i = 0; i < u->entries.len; i++)
			if (!rs_entry(sl, s, defer, u->entries.data[i] | flags))
				goto oom;
		sl->pend_units += defer && (flags & RT_COMPARE);
	}
	rs->step_mask |= 1ULL << node;
	if (defer)
		return true;
	sl->busy = !rt_idle(&s->rt);
	if (sl->busy)
		rs->busy_mask |= 1ULL << node;
	return rs_write(rs, node, s);
oom:
	buf_reset(&s->scratch);
	client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
	return false;
}

bool rs_send_injected(struct rsess *rs, int node, const char *sql, uint8_t flags)
{
	struct rs_slot *sl = &rs->slot[node];
	struct server *s = sl->srv;

	if (!s)
		return false;
	if ((sl->pend.msgs.len && !rs_take_pending(sl, s)) || !msg_query(&s->scratch, sql) ||
	    !rt_push(&s->rt, RT_QUERY | RT_SWALLOW | RT_INJECTED | flags)) {
		buf_reset(&s->scratch);
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	rs->step_mask |= 1ULL << node;
	sl->busy = true;
	rs->busy_mask |= 1ULL << node;
	return rs_write(rs, node, s);
}

bool rs_send(struct rsess *rs, int node, const char *const *pre, const struct rs_unit *u, bool join)
{
	return rs_send_ex(rs, node, pre, u, join, false);
}

/* Send U to every node of MASK; the nodes other than the leader get OTHERS
 * instead when it is given.  Joins the open transaction. */
bool rs_send_mask(struct rsess *rs, uint64_t mask, const char *const *pre, const struct rs_unit *u,
		  const struct rs_unit *others)
{
	for (int i = 0; i < rs->n_nodes; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		if (!rs_send(rs, i, pre, i == rs->leader || !others ? u : others, true))
			return false;
		if (rs->c->state == CL_CLOSING)
			return false;
	}
	return true;
}

/* ---- comparison ---- */

static bool rs_same(const struct rs_slot *a, const struct rs_slot *b)
{
	if (a->cur.failed || b->cur.failed)
		return a->cur.failed == b->cur.failed && strcmp(a->cur.sqlstate, b->cur.sqlstate) == 0;
	return a->cur.n_tags == b->cur.n_tags && a->cur.hash == b->cur.hash;
}

static void rs_describe(const struct rs_slot *sl, char *out, size_t n)
{
	if (sl->cur.failed)
		snprintf(out, n, "error %s", sl->cur.sqlstate);
	else
		snprintf(out, n, "%u command(s), tags %016llx", sl->cur.n_tags, (unsigned long long)sl->cur.hash);
}

static void rs_forget_outcomes(struct rsess *rs, uint64_t mask)
{
	for (int i = 0; i < rs->n_nodes; i++)
		if (mask & (1ULL << i))
			memset(&rs->slot[i].cur, 0, sizeof(rs->slot[i].cur));
}

void rs_detach_node(int node, const char *why)
{
	struct node *n = node_get(node);
	int expected = NODE_UP;

	if (n && atomic_compare_exchange_strong(&n->state, &expected, NODE_DOWN))
		log_warning("node %d detached: %s", node, why);
}

static bool rs_set_error(struct rsess *rs, const char *sqlstate, const char *text)
{
	buf_reset(&rs->err);
	if (!msg_error(&rs->err, "ERROR", sqlstate, "%s", text))
		return false;
	rs->send_err = true;
	return true;
}

/*
 * Compare the outcomes of the nodes of MASK (PRIMARY among them).  true: go
 * on (perhaps without some nodes, now detached); false: an abort has been
 * started.
 */
bool rs_compare(struct rsess *rs, uint64_t mask, int primary)
{
	int best = primary, best_votes = 0, primary_votes = 0;
	uint64_t minority = 0;
	const char *sql = rs->u_sql.len ? (const char *)rs->u_sql.data : "(extended protocol)";

	for (int i = 0; i < rs->n_nodes; i++) {
		int votes = 0;

		if (!(mask & (1ULL << i)))
			continue;
		for (int j = 0; j < rs->n_nodes; j++)
			if ((mask & (1ULL << j)) && rs_same(&rs->slot[i], &rs->slot[j]))
				votes++;
		if (i == primary)
			primary_votes = votes;
		if (votes > best_votes) {
			best = i;
			best_votes = votes;
		}
	}
	if (primary_votes == best_votes)
		best = primary; /* the primary wins a tie */
	for (int i = 0; i < rs->n_nodes; i++)
		if ((mask & (1ULL << i)) && !rs_same(&rs->slot[i], &rs->slot[best]))
			minority |= 1ULL << i;
	if (!minority) {
		rs_forget_outcomes(rs, mask);
		return true;
	}
	for (int i = 0; i < rs->n_nodes; i++) {
		char d[96];

		if (!(mask & (1ULL << i)))
			continue;
		rs_describe(&rs->slot[i], d, sizeof(d));
		log_warning("C-%p: nodes disagree on \"%.200s\": node %d: %s%s", (void *)rs->c, sql, i, d,
			    (minority & (1ULL << i)) ? " (minority)" : "");
	}
	rs_forget_outcomes(rs, mask);
	return rs_apply_policy_ex(rs, minority, primary, rs->ship_on);
}

/*
 * Nodes of MINORITY disagree with the others on a write: detach them, or
 * abort the transaction (on_mismatch).  true: go on without them.
 */
bool rs_apply_policy(struct rsess *rs, uint64_t minority, int primary)
{
	return rs_apply_policy_ex(rs, minority, primary, false);
}

/*
 * SHIPPED: the nodes that disagree applied rows the primary gave them: if
 * the primary is on the losing side, what failed is the copy of its rows,
 * not the primary (a value a node does not take back, a pgchorus fault):
 * the transaction is rolled back everywhere, nobody is detached.
 */
bool rs_apply_policy_ex(struct rsess *rs, uint64_t minority, int primary, bool shipped)
{
	/* In a block, the client's transaction stays failed until it ends it, as
	 * after any error; a commit or a single statement just fails. */
	rs->abort_in_block = rs->txn != 'I' && !rs->wrap && !rs->client_commit;
	if (rs->c->w->cfg->on_mismatch == MISMATCH_ABORT || (shipped && (minority & (1ULL << primary)))) {
		if (!rs_set_error(rs, SQLSTATE_DATA_CORRUPTED,
				  "nodes disagree on the result of the statement; the transaction was rolled back on every node"))
			return client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory"), false;
		rs_abort(rs);
		return false;
	}
	for (int i = 0; i < rs->n_nodes; i++) {
		if (!(minority & (1ULL << i)))
			continue;
		rs_detach_node(i, "its result differed from the majority of the nodes");
		if (rs->slot[i].srv) {
			struct server *s = rs->slot[i].srv;

			if (rs->slot[i].prepared) {
				/* Best effort: the resolver would otherwise commit it there. */
				char sql[TWOPC_GID_BUF + 40];
				const char *pre[] = { sql, NULL };

				snprintf(sql, sizeof(sql), "ROLLBACK PREPARED '%s'", rs->gid);
				rs->slot[i].prepared = false;
				if (!rs_send(rs, i, pre, NULL, false) || rs->c->state == CL_CLOSING)
					return false;
				s = rs->slot[i].srv;
			}
			server_unlink(s);
			server_close(s, "node detached");
		}
	}
	if (minority & (1ULL << primary)) {
		/* The client saw the primary's answer, which the others contradict. */
		if (!rs_set_error(rs, SQLSTATE_DATA_CORRUPTED,
				  "the primary's result differed from the other nodes; the primary was detached and the transaction rolled back"))
			return client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory"), false;
		rs_abort(rs);
		return false;
	}
	return true;
}

/* ---- two-phase commit ---- */

/* Nodes that ran writes behind the primary and disagreed: the policy decides. */
static bool rs_settle(struct rsess *rs)
{
	int primary = node_primary();
	uint64_t minority = 0, agree = 0;
	bool shipped = true;

	for (int i = 0; i < rs->n_nodes; i++) {
		struct rs_slot *sl = &rs->slot[i];

		if (!sl->srv)
			continue;
		if (sl->mismatch) {
			minority |= 1ULL << i;
			shipped = shipped && sl->mismatch_ship;
		} else if (sl->in_txn || sl->prepared) {
			agree |= 1ULL << i;
		}
		sl->mismatch = false;
		sl->mismatch_ship = false;
	}
	if (!minority)
		return true;
	if (__builtin_popcountll(minority) > __builtin_popcountll(agree))
		minority = agree | (1ULL << primary); /* the primary's side is the minority */
	return rs_apply_policy_ex(rs, minority, primary, shipped);
}

/* Wait for the nodes still running the transaction's writes behind the primary. */
static bool rs_wait_lagging(struct rsess *rs)
{
	uint64_t lag = 0;

	for (int i = 0; i < rs->n_nodes; i++)
		if (rs->slot[i].srv && (!rt_idle(&rs->slot[i].srv->rt) || rs->slot[i].pend.msgs.len))
			lag |= 1ULL << i;
	if (!lag)
		return false;
	rs_begin_step(rs, RS_SYNC, -1);
	for (int i = 0; i < rs->n_nodes; i++) {
		if (!(lag & (1ULL << i)))
			continue;
		if (rs->slot[i].pend.msgs.len) {
			/* Send the deferred writes (and wait for them). */
			if (!rs_send(rs, i, NULL, NULL, false) || rs->c->state == CL_CLOSING)
				return true;
		} else {
			rs->slot[i].busy = true;
			rs->busy_mask |= 1ULL << i;
		}
	}
	return true;
}

void rs_commit_2pc(struct rsess *rs, bool client_commit)
{
	char sql[2 * TWOPC_GID_SIZE + 200];
	size_t n;
	uint64_t mask;

	rs->client_commit = client_commit;
	if (rs->no_2pc) {
		/* The transaction touched what PREPARE refuses: COMMIT, primary
		 * first, once every node ran its writes and agreed. */
		if (rs_wait_lagging(rs))
			return; /* RS_SYNC: called again when they are done */
		if (!rs_settle(rs))
			return;
		mask = rs_txn_mask(rs);
		rs->compare = true;
		rs->target_mask = mask;
		if (!rs->commit_ticket)
			rs->commit_ticket = corder_begin();
		rs_begin_step(rs, RS_PRIMARY, node_primary());
		if (rs_send(rs, node_primary(), NULL, &rs->unit, false) && !rs->busy_mask)
			rsess_step_done(rs);
		return;
	}
	/*
	 * PREPARE goes out at once, behind the writes the other nodes may still
	 * be running: their outcomes are all known when the PREPAREs are
	 * answered (RS_PREPARE settles them before anything commits).
	 */
	rs->compare = false;
	mask = rs_txn_mask(rs);
	if (!resolver_gid_begin(rs->gid, sizeof(rs->gid)) ||
	    !twopc_decision_insert_sql(rs->gid, sql, sizeof(sql))) {
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	rs->gid_live = true;
	n = strlen(sql);
	snprintf(sql + n, sizeof(sql) - n, "; PREPARE TRANSACTION '%s'", rs->gid);
	rs_begin_step(rs, RS_PREPARE, -1);
	for (int i = 0; i < rs->n_nodes; i++) {
		const char *pre[] = { sql, NULL };

		rs->slot[i].prepared = false;
		if ((mask & (1ULL << i)) && (!rs_send(rs, i, pre, NULL, false) || rs->c->state == CL_CLOSING))
			return;
	}
}

static void rs_commit_prepared(struct rsess *rs)
{
	char sql[TWOPC_GID_BUF + 40];
	const char *pre[] = { sql, NULL, NULL };
	int primary = node_primary();

	snprintf(sql, sizeof(sql), "COMMIT PREPARED '%s'", rs->gid);
	rs_begin_step(rs, RS_COMMIT, -1);
	/* Shipped writes that run from now on wait for this commit (corder.h). */
	if (!rs->commit_ticket)
		rs->commit_ticket = corder_begin();
	rs->commit_local = rs->client_commit && rs_answer_locally(rs, "COMMIT", true);
	for (int i = 0; i < rs->n_nodes; i++) {
		struct rs_slot *sl = &rs->slot[i];
		bool lead = rs->client_commit && !rs->commit_local && i == primary;

		if (!sl->srv || !sl->prepared)
			continue;
		sl->prepared = false;
		if (lead) {
			/* The client's COMMIT itself runs on the primary in an empty
			 * transaction, so that it gets exactly the answers it expects
			 * (simple or extended protocol). */
			rs->leader = i;
			pre[1] = "BEGIN";
		}
		if (!rs_send(rs, i, pre, lead ? &rs->unit : NULL, false) || rs->c->state == CL_CLOSING)
			return;
		pre[1] = NULL;
	}
	if (!rs->busy_mask)
		rsess_step_done(rs);
}

/* Roll back everywhere; rs->err goes to the client at the end if send_err. */
void rs_abort(struct rsess *rs)
{
	char sql[TWOPC_GID_BUF + 40];
	const char *pre[] = { NULL, NULL, NULL, NULL };
	int keep = rs->abort_in_block ? node_primary() : -1;

	snprintf(sql, sizeof(sql), "ROLLBACK PREPARED '%s'", rs->gid);
	rs_begin_step(rs, RS_ABORT, -1);
	for (int i = 0; i < rs->n_nodes; i++) {
		struct rs_slot *sl = &rs->slot[i];

		pre[1] = pre[2] = NULL;
		if (!sl->srv)
			continue;
		if (i == keep) {
			/* An empty failed transaction: the node answers what follows
			 * (25P02, COMMIT -> ROLLBACK) in whatever protocol. */
			pre[0] = "ROLLBACK";
			pre[1] = "BEGIN";
			pre[2] = "SELECT 1/0";
			rs->err_node = i;
			if (!rs_send(rs, i, pre, NULL, false) || rs->c->state == CL_CLOSING)
				return;
			continue;
		}
		if (sl->prepared)
			pre[0] = sql;
		else if (sl->in_txn || sl->z == 'T' || sl->z == 'E')
			pre[0] = "ROLLBACK";
		else
			continue;
		sl->prepared = false;
		if (!rs_send(rs, i, pre, NULL, false) || rs->c->state == CL_CLOSING)
			return;
	}
	if (!rs->busy_mask)
		rsess_step_done(rs);
}

/* ---- end of a step ---- */

static void rs_gid_done(struct rsess *rs, bool kick)
{
	if (!rs->gid_live)
		return;
	resolver_gid_end(rs->gid);
	rs->gid_live = false;
	if (kick)
		resolver_kick();
}

/*
 * A write in a transaction block that succeeded on the primary: the other
 * nodes run it behind the primary while the client goes on (it got the
 * primary's answer).  They run every write in the primary's order (one
 * connection each), their outcomes are compared as they come (rsrv.c) and
 * the commit waits for them (RS_SYNC).  true: done so.
 */
static bool rs_run_behind(struct rsess *rs, uint64_t others, int primary, const struct rs_unit *u,
			  const char *const *pre)
{
	struct rs_slot *p = &rs->slot[primary];

	if (rs->wrap || !rs->unit_sync || p->z != 'T' || rs->cls.cls < STMT_WRITE ||
	    (rs->cls.flags & (STMT_F_COPY_FROM | STMT_F_TXN_ANY)))
		return false;
	for (int i = 0; i < rs->n_nodes; i++)
		if ((others & (1ULL << i)) && rs->slot[i].lag_count >= RS_LAG_MAX)
			return false;
	for (int i = 0; i < rs->n_nodes; i++) {
		struct rs_slot *sl = &rs->slot[i];

		if (!(others & (1ULL << i)))
			continue;
		if (u) {
			sl->lag[(sl->lag_head + sl->lag_count) % RS_LAG_MAX] = p->cur;
			sl->lag[(sl->lag_head + sl->lag_count) % RS_LAG_MAX].shipped = rs->ship_on;
			sl->lag_count++;
		}
		if (!rs_send_ex(rs, i, pre, u, true, true))
			return true;
		sl->busy = false;
		rs->busy_mask &= ~(1ULL << i);
	}
	memset(&p->cur, 0, sizeof(p->cur));
	rs->txn = 'T';
	rs->wrote = true;
	rs_finish(rs);
	return true;
}

static void rs_others_done(struct rsess *rs, int primary)
{
	if (rs->compare && !rs_compare(rs, rs->step_mask & rs_live_mask(rs), primary))
		return;
	rs->txn = rs->slot[primary].srv ? rs->slot[primary].z : rs->txn;
	if (rs->wrap) {
		rs_commit_2pc(rs, false);
		return;
	}
	if (rs->txn != 'I' && rs->cls.cls >= STMT_WRITE)
		rs->wrote = true;
	rs_finish(rs);
}

/*
 * A shipped unit ran on the primary: the others get its rows (and the
 * sequences' values) once every commit it may have seen there is done
 * everywhere.
 */
/*
 * Will the others' copy of the unit just run on the primary wait in their
 * deferred batches (rs_run_behind, rs_send_ex), i.e. not be sent now?
 */
static bool rs_will_defer(const struct rsess *rs, uint64_t others, int primary)
{
	if (rs->wrap || !rs->unit_sync || rs->slot[primary].z != 'T' || rs->cls.cls < STMT_WRITE ||
	    (rs->cls.flags & (STMT_F_COPY_FROM | STMT_F_TXN_ANY)))
		return false;
	for (int i = 0; i < rs->n_nodes; i++) {
		const struct rs_slot *sl = &rs->slot[i];

		if ((others & (1ULL << i)) &&
		    (sl->lag_count >= RS_DEFER_MAX || sl->pend.msgs.len >= RS_DEFER_BYTES / 2))
			return false;
	}
	return true;
}

static void rs_ship_after_primary(struct rsess *rs)
{
	int primary = rs->leader;
	uint64_t need = corder_issued();

	if (!rs_ship_build(rs)) {
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (rs_will_defer(rs, rs->target_mask & rs_live_mask(rs) & ~(1ULL << primary), primary)) {
		/* The rows wait in the others' batches: the commit order is
		 * checked when a batch goes out (rs_order_before_unit). */
		if (need > rs->order_pend)
			rs->order_pend = need;
		rs_ship_go(rs);
		return;
	}
	if (rs_ship_order_ok(rs, need))
		rs_ship_go(rs);
}

void rs_ship_go(struct rsess *rs)
{
	int primary = rs->leader;
	uint64_t others = rs->target_mask & rs_live_mask(rs) & ~(1ULL << primary);
	const char *pre[16];
	const struct rs_unit *u = rs->ship_unit.msgs.len ? &rs->ship_unit : NULL;

	rs_ship_pre(rs, pre, 16);
	if (!u) {
		/* No row changed: nothing to compare. */
		rs->compare = false;
		memset(&rs->slot[primary].cur, 0, sizeof(rs->slot[primary].cur));
		if (!pre[0])
			others = 0;
	}
	if (others && rs_run_behind(rs, others, primary, u, pre))
		return;
	rs->step = RS_OTHERS;
	rs->busy_mask = 0;
	if (others && !rs_send_mask(rs, others, pre, u, NULL))
		return;
	if (!rs->busy_mask)
		rs_others_done(rs, primary);
}

void rsess_step_done(struct rsess *rs)
{
	int leader = rs->leader;

	switch (rs->step) {
	case RS_READ:
	case RS_PARALLEL:
		if (rs->copy_in && !rs->copy_done) {
			/* The COPY ended on every node before the client's data did (errors). */
			rs->copy_in = false;
		}
		if (leader >= 0 && rs->slot[leader].srv && rs->unit_sync)
			rs->txn = rs->slot[leader].z;
		if (leader >= 0 && rs->slot[leader].failed && rs->txn == 'E')
			rs->err_node = leader;
		if (rs->ship_on && rs->ship.kind == SHIP_COPY && leader >= 0 && rs->slot[leader].srv) {
			if (!rs->slot[leader].failed) {
				rs_ship_copy_done(rs);
				return;
			}
			if (rs->wrap) {
				rs->send_err = false;
				rs_abort(rs);
				return;
			}
		}
		if (rs->compare) {
			if (!rs_compare(rs, rs->step_mask & rs_live_mask(rs), leader))
				return;
			if (rs->wrap) {
				if (rs->slot[leader].failed) {
					rs->send_err = false;
					rs_abort(rs);
				} else {
					rs_commit_2pc(rs, false);
				}
				return;
			}
			if (rs->txn != 'I' && !rs->slot[leader].failed && rs->cls.cls >= STMT_WRITE)
				rs->wrote = true;
		}
		rs_finish(rs);
		return;
	case RS_PRIMARY:
		if (!rs->slot[leader].srv) {
			rs_finish(rs);
			return;
		}
		if (rs->slot[leader].failed && rs->cls.cls == STMT_NO_TXN_BLOCK && rs->txn == 'I' && !rs->ship_on &&
		    strncmp(rs->slot[leader].sqlstate, "23", 2) == 0) {
			/* CREATE UNIQUE INDEX CONCURRENTLY, REINDEX CONCURRENTLY... that
			 * fail on a duplicate leave an invalid index behind: the others
			 * run it too and must fail alike. */
		} else if (rs->slot[leader].failed) {
			/* Not run elsewhere: the client has the primary's error. */
			memset(&rs->slot[leader].cur, 0, sizeof(rs->slot[leader].cur));
			if (rs->wrap) {
				rs->send_err = false;
				rs_abort(rs);
				return;
			}
			rs->txn = rs->slot[leader].z;
			if (rs->txn == 'E')
				rs->err_node = leader;
			if (rs->txn == 'I') {
				/* The failure ended the transaction (a PREPARE TRANSACTION
				 * or COMMIT that failed): end it on the others too. */
				rs_drop_pending(rs);
				if (rs_txn_mask(rs) & ~(1ULL << leader)) {
					rs->send_err = false;
					rs->abort_in_block = false;
					rs_abort(rs);
					return;
				}
			}
			rs_finish(rs);
			return;
		}
		{
			uint64_t others = rs->target_mask & rs_live_mask(rs) & ~(1ULL << leader);
			const struct rs_unit *ou;

			if (rs->ship_on) {
				rs_ship_after_primary(rs);
				return;
			}
			ou = rs_now_unit(rs);

			if (!ou) {
				client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
				return;
			}
			if (rs_run_behind(rs, others, leader, ou, NULL))
				return;
			/* Not rs_begin_step(): the primary's outcome stays for the comparison. */
			rs->step = RS_OTHERS;
			rs->busy_mask = 0;
			if (!rs_send_mask(rs, others, NULL, ou, NULL))
				return;
			if (!rs->busy_mask)
				rs_others_done(rs, leader);
		}
		return;
	case RS_OTHERS:
		rs_others_done(rs, leader);
		return;
	case RS_SYNC:
		rs_commit_2pc(rs, rs->client_commit);
		return;
	case RS_LOOKUP:
		rs_ship_lookup_done(rs);
		return;
	case RS_PREPARE: {
		bool ok = true;

		for (int i = 0; i < rs->n_nodes; i++) {
			struct rs_slot *sl = &rs->slot[i];

			if (!sl->srv || !(rs->step_mask & (1ULL << i)))
				continue;
			sl->prepared = !sl->failed;
		}
		/* Writes that ran behind the primary and disagreed: detach or abort. */
		if (!rs_settle(rs))
			return;
		for (int i = 0; i < rs->n_nodes; i++)
			if (rs->slot[i].srv && (rs->step_mask & (1ULL << i)) && !rs->slot[i].prepared)
				ok = false;
		if (!ok) {
			rs->send_err = rs->err.len > 0;
			rs_abort(rs);
			return;
		}
		rs_commit_prepared(rs);
		return;
	}
	case RS_COMMIT: {
		int failed = 0, done = 0;

		for (int i = 0; i < rs->n_nodes; i++) {
			if (rs->slot[i].failed)
				failed++;
			else if (rs->step_mask & (1ULL << i))
				done++;
		}
		if (failed)
			log_warning("C-%p: COMMIT PREPARED '%s' failed on %d node(s); the resolver completes it",
				    (void *)rs->c, rs->gid, failed);
		if (rs->commit_local) {
			/* Committed once a node committed: the decision is durable. */
			bool ok = done ? rs_answer_locally(rs, "COMMIT", false)
				       : buf_append(&rs->c->scratch, rs->err.data, rs->err.len);

			rs->commit_local = false;
			if (!ok) {
				client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
				return;
			}
		}
		rs_gid_done(rs, failed > 0);
		stat_inc(&rs->c->w->stats.commits_2pc);
		rs->txn = 'I';
		rs_finish(rs);
		return;
	}
	case RS_ABORT:
		rs_gid_done(rs, false);
		stat_inc(&rs->c->w->stats.aborts);
		if (rs->send_err && rs->err.len > 5) {
			int ci = stat_class_index(msg_error_field(rs->err.data + 5, (uint32_t)rs->err.len - 5, 'C'));

			if (ci >= 0)
				stat_inc(&rs->c->w->stats.errors[ci]);
		}
		if (rs->send_err && rs->err.len && !buf_append(&rs->c->scratch, rs->err.data, rs->err.len)) {
			client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
		rs->send_err = false;
		rs->txn = rs->abort_in_block && rs->err_node >= 0 && rs->slot[rs->err_node].srv ? 'E' : 'I';
		rs->abort_in_block = false;
		rs_finish(rs);
		return;
	default:
		return;
	}
}
