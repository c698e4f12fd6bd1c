/*
 * rroute.c - replication mode: which nodes run a unit, and in which step
 * (rsess.h): reads on one node chosen by weight, writes primary first,
 * transaction control on the nodes of the transaction, 2PC at COMMIT, and
 * what pgchorus answers itself (a lone BEGIN).
 */
#define _GNU_SOURCE /* strcasestr */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/rsess.h"
#include "pgchorus/rstep.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

/* What PREPARE TRANSACTION refuses, or what must outlive the transaction. */
#define STMT_F_NO_2PC (STMT_F_TEMP | STMT_F_LISTEN_NOTIFY | STMT_F_WITH_HOLD)

/* ---- choosing nodes ---- */

static uint64_t rs_rand(void)
{
	static __thread uint64_t x;

	if (!x)
		x = (uint64_t)(uintptr_t)&x ^ (uint64_t)uv_hrtime() ^ 0x9e3779b97f4a7c15ULL;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

/* A live node chosen by weight; the primary when no weight is positive. */
static int rs_pick_by_weight(struct rsess *rs)
{
	const struct config *cfg = rs->c->w->cfg;
	uint64_t live = rs_live_mask(rs);
	double total = 0, r;

	for (int i = 0; i < rs->n_nodes && i < cfg->n_nodes; i++)
		if (live & (1ULL << i))
			total += cfg->nodes[i].weight;
	if (total <= 0)
		return node_primary();
	r = (double)(rs_rand() >> 11) / (double)(1ULL << 53) * total;
	for (int i = 0; i < rs->n_nodes && i < cfg->n_nodes; i++) {
		if (!(live & (1ULL << i)) || cfg->nodes[i].weight <= 0)
			continue;
		if (r < cfg->nodes[i].weight)
			return i;
		r -= cfg->nodes[i].weight;
	}
	return node_primary();
}

/* Does this BEGIN or SET TRANSACTION ask for REPEATABLE READ or SERIALIZABLE? */
static bool rs_iso_strict(const char *sql)
{
	return strcasestr(sql, "serializable") || strcasestr(sql, "repeatable");
}

/* Where a read goes. */
int rs_read_target(struct rsess *rs)
{
	int primary = node_primary();
	uint64_t live = rs_live_mask(rs);

	if (rs->txn != 'I') {
		/* after a write, in REPEATABLE READ / SERIALIZABLE, and in a session with
		 * temporary objects (reading them marks the transaction for PREPARE,
		 * which must then fail on the primary first) */
		if (rs->wrote || rs->iso_strict || rs->had_temp || rs->read_node < 0 ||
		    !(live & (1ULL << rs->read_node)))
			return primary;
		return rs->read_node;
	}
	switch (rs->c->w->cfg->load_balance) {
	case LB_OFF:
		return primary;
	case LB_SESSION:
		if (rs->read_node < 0 || !(live & (1ULL << rs->read_node)))
			rs->read_node = rs_pick_by_weight(rs);
		return rs->read_node;
	default:
		return rs_pick_by_weight(rs);
	}
}

/* The node whose answers the client gets for transaction control. */
static int rs_txn_leader(struct rsess *rs)
{
	int primary = node_primary();
	uint64_t txn = rs_txn_mask(rs);

	if (txn & (1ULL << primary))
		return primary;
	for (int i = 0; i < rs->n_nodes; i++)
		if (txn & (1ULL << i))
			return i;
	return rs_read_target(rs);
}

/* ---- routing a unit ---- */

/*
 * What NODE runs of the unit: the primary runs the client's text, reading
 * its own transaction time, the others the text with the time as a literal
 * (rnow.c).  A primary that took over during the transaction (rfail.c) did
 * not give the time: it gets the literal too.
 */
static const struct rs_unit *rs_primary_unit(struct rsess *rs, int node)
{
	const struct rs_unit *u;

	if (!rs->primary_moved || !rs->txn_time[0] || node != node_primary())
		return &rs->unit;
	u = rs_now_unit(rs);
	return u ? u : &rs->unit;
}

static void rs_step_read(struct rsess *rs, int node)
{
	uint64_t others;

	/* In a transaction, the time is the primary's (rnow.c): read it there. */
	if (rs->now_marks.len && rs->txn != 'I')
		node = node_primary();
	others = rs->u_state ? rs_live_mask(rs) & ~(1ULL << node) : 0;

	rs_begin_step(rs, RS_READ, node);
	if (!rs_send(rs, node, NULL, rs_primary_unit(rs, node), true))
		return;
	if (others && !rs_send_mask(rs, others, NULL, &rs->state, NULL))
		return;
	if (!rs->busy_mask)
		rsess_step_done(rs);
}

static void rs_step_parallel(struct rsess *rs, uint64_t mask, int leader, bool compare)
{
	rs_begin_step(rs, RS_PARALLEL, leader);
	rs->compare = compare;
	if (rs->cls.flags & STMT_F_COPY_FROM) {
		rs->copy_in = true;
		rs->copy_mask = mask;
		rs->copy_need_sync = rs->unit.msgs.len && rs->unit.msgs.data[0] != 'Q'; /* extended */
	}
	{
		/* The others read the primary's transaction time; if it is not known
		 * yet, pgchorus's clock fixes it for everyone (rnow.c). */
		bool known = rs->txn_time[0] != '\0';
		const struct rs_unit *others = rs_now_unit(rs);

		if (!others) {
			client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
		if (!rs_send_mask(rs, mask, NULL, known ? &rs->unit : others, others))
			return;
	}
	if (!rs->busy_mask)
		rsess_step_done(rs);
}

/* A write: the primary first (rstep.c sends it to the others when it is done). */
static void rs_step_write(struct rsess *rs, uint64_t targets, bool wrap)
{
	int primary = rs->u_primary;

	rs->wrap = wrap;
	rs->compare = true;
	rs->target_mask = targets;
	if (rs->cls.flags & STMT_F_COPY_FROM) {
		/* The client's data must reach every node while it streams; a
		 * shipped COPY (rship.c) goes to the primary only. */
		if (rs->ship_on)
			rs_step_parallel(rs, 1ULL << primary, primary, false);
		else
			rs_step_parallel(rs, targets, primary, true);
		return;
	}
	rs_begin_step(rs, RS_PRIMARY, primary);
	if (!rs_send(rs, primary, NULL, rs_primary_unit(rs, primary), true))
		return;
	if (!rs->busy_mask)
		rsess_step_done(rs);
}

/* In an aborted transaction ('E'): only its end or a rollback to a savepoint do anything. */
static void rs_route_failed(struct rsess *rs, uint32_t fl, bool single)
{
	uint64_t txn = rs_txn_mask(rs);
	int leader = rs->err_node >= 0 && (txn & (1ULL << rs->err_node)) ? rs->err_node : rs_txn_leader(rs);

	if (rs->err_lost && !(single && (fl & STMT_F_ROLLBACK_TO))) {
		/* The node whose transaction failed is gone; the others' transaction
		 * did not fail: pgchorus answers as the failed transaction would. */
		if (single && (fl & (STMT_F_TXN_COMMIT | STMT_F_TXN_ROLLBACK)) && rs_answer_locally(rs, "ROLLBACK", false)) {
			rs_drop_pending(rs);
			rs->send_err = false;
			rs->abort_in_block = false;
			rs_abort(rs);
			return;
		}
		rs_local_error(rs, "25P02", "current transaction is aborted, commands ignored until end of transaction block");
		return;
	}
	rs->err_lost = false;

	if (single && (fl & (STMT_F_TXN_COMMIT | STMT_F_TXN_ROLLBACK))) {
		const char *pre[] = { "ROLLBACK", NULL };

		rs_drop_pending(rs);
		txn = rs_txn_mask(rs);

		rs_begin_step(rs, RS_PARALLEL, leader);
		if (!rs_send(rs, leader, NULL, &rs->unit, false))
			return;
		for (int i = 0; i < rs->n_nodes; i++)
			if (i != leader && (txn & (1ULL << i)) && !rs_send(rs, i, pre, NULL, false))
				return;
		if (!rs->busy_mask)
			rsess_step_done(rs);
		return;
	}
	if (single && (fl & STMT_F_ROLLBACK_TO)) {
		rs_begin_step(rs, RS_PARALLEL, leader);
		rs_send_mask(rs, txn, NULL, &rs->unit, NULL);
		if (!rs->busy_mask)
			rsess_step_done(rs);
		return;
	}
	rs_step_read(rs, leader);
}

/*
 * Answer the unit (one transaction control statement) here, as a node
 * would, with command tag TAG.  Only for units whose answers are known
 * exactly: a Query, or an unnamed Parse, Bind, Describe of the portal,
 * Execute, Sync.  false (nothing written) otherwise; DRY: only tell.
 */
bool rs_answer_locally(struct rsess *rs, const char *tag, bool dry)
{
	struct client *c = rs->c;
	const uint8_t *p = rs->unit.msgs.data, *end = p + rs->unit.msgs.len;
	size_t mark = c->scratch.len;

	if (!rs->unit_sync || rs->u_exec != 1)
		return false;
	for (; p < end; p += 1 + codec_get32(p + 1)) {
		bool ok;

		switch (p[0]) {
		case 'Q':
		case 'E':
			ok = msg_command_complete(&c->scratch, tag);
			break;
		case 'P':
			ok = p[5] == '\0' && msg_empty(&c->scratch, '1'); /* unnamed only */
			break;
		case 'B':
			ok = msg_empty(&c->scratch, '2');
			break;
		case 'D':
			ok = p[5] == 'P' && msg_empty(&c->scratch, 'n');
			break;
		case 'S':
			ok = true;
			break;
		default:
			ok = false;
		}
		if (!ok) {
			c->scratch.len = mark;
			return false;
		}
	}
	if (dry)
		c->scratch.len = mark;
	return true;
}

/*
 * A lone BEGIN outside a transaction is answered here: the nodes get it
 * (rs->begin_sql) in front of the first statement each of them runs in
 * the transaction.
 */
static bool rs_local_begin(struct rsess *rs)
{
	struct client *c = rs->c;
	const char *sql = rs->u_sql.len ? (const char *)rs->u_sql.data : NULL;

	if (!sql || rs->cls.flags != STMT_F_TXN_BEGIN)
		return false;
	while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
		sql++;
	if (!rs_answer_locally(rs, strncasecmp(sql, "start", 5) == 0 ? "START TRANSACTION" : "BEGIN", false))
		return false;
	buf_reset(&rs->begin_sql);
	if (!buf_append(&rs->begin_sql, rs->u_sql.data, rs->u_sql.len)) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return true;
	}
	rs->iso_strict = rs_iso_strict(sql);
	rs->read_node = rs_read_target(rs);
	rs->txn = 'T';
	rs_finish(rs);
	return true;
}

static void rs_route_txn(struct rsess *rs, uint32_t fl)
{
	uint64_t live = rs_live_mask(rs);
	uint64_t txn = rs_txn_mask(rs);
	bool in_block = rs->txn != 'I';

	if ((fl & STMT_F_TXN_BEGIN) && !in_block && !(fl & (STMT_F_TXN_COMMIT | STMT_F_TXN_ROLLBACK))) {
		int node = rs_read_target(rs);

		if (rs_local_begin(rs))
			return;
		if (rs->u_sql.len && rs_iso_strict((const char *)rs->u_sql.data)) {
			rs->iso_strict = true;
			node = node_primary();
		}
		buf_reset(&rs->begin_sql);
		if (!buf_append(&rs->begin_sql, rs->u_sql.len ? (const char *)rs->u_sql.data : "BEGIN",
				rs->u_sql.len ? rs->u_sql.len - 1 : 5) ||
		    !buf_append(&rs->begin_sql, "", 1)) {
			client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
		rs->read_node = node;
		rs_step_read(rs, node);
		return;
	}
	if (!in_block) {
		/* Outside a block these only warn or fail: one node answers. */
		if (fl & (STMT_F_COMMIT_PREPARED | STMT_F_ROLLBACK_PREPARED))
			rs_step_write(rs, live, false);
		else
			rs_step_read(rs, rs_read_target(rs));
		return;
	}
	if (fl & STMT_F_TXN_COMMIT) {
		if (rs->wrote)
			rs_commit_2pc(rs, true); /* plain COMMIT everywhere if no_2pc */
		else
			rs_step_parallel(rs, txn ? txn : 1ULL << rs_txn_leader(rs), rs_txn_leader(rs), false);
		return;
	}
	if (fl & (STMT_F_TXN_ROLLBACK | STMT_F_RELEASE | STMT_F_ROLLBACK_TO)) {
		if ((fl & STMT_F_TXN_ROLLBACK) && !(fl & STMT_F_ROLLBACK_TO)) {
			rs_drop_pending(rs); /* the other nodes need not run what is undone */
			txn = rs_txn_mask(rs);
		}
		rs_step_parallel(rs, txn ? txn : 1ULL << rs_txn_leader(rs), rs_txn_leader(rs), false);
		return;
	}
	if (fl & (STMT_F_SAVEPOINT | STMT_F_PREPARE_TXN)) {
		/* Every node joins the transaction, so the savepoint (or the
		 * prepared transaction) exists everywhere. */
		rs_step_write(rs, live, false);
		return;
	}
	/* BEGIN in a block, COMMIT PREPARED in a block...: the server complains. */
	rs_step_read(rs, rs_txn_leader(rs));
}

/* Does the unit write (or commit writes)?  Then min_nodes and the pause of
 * writes apply.  *COMMIT_ONLY: it only commits the transaction's writes. */
static bool rs_unit_writes(const struct rsess *rs, bool *commit_only)
{
	const struct stmt_info *ci = &rs->cls;

	*commit_only = false;
	if (ci->cls == STMT_WRITE || ci->cls == STMT_DDL || ci->cls == STMT_NO_TXN_BLOCK)
		return true;
	if (ci->flags & (STMT_F_SAVEPOINT | STMT_F_PREPARE_TXN | STMT_F_COMMIT_PREPARED | STMT_F_ROLLBACK_PREPARED))
		return true;
	*commit_only = rs->wrote && (ci->flags & STMT_F_TXN_COMMIT);
	return *commit_only;
}

void rs_run_unit(struct rsess *rs)
{
	const struct stmt_info *ci = &rs->cls;
	uint32_t fl = ci->flags;
	bool single = rs->u_exec == 1 && ci->n_stmts <= 1;
	bool in_block = rs->txn != 'I';
	bool commit_only;
	uint64_t live;
	int primary;

	rs->u_ready = true;
	if (!rs->unit_t0)
		rs->unit_t0 = uv_hrtime();
	if (fl & STMT_F_UNANALYSED) {
		rs_local_error(rs, "54001", "statement is too complex to be replicated safely");
		return;
	}
	if (!rs_ensure_servers(rs))
		return;
	rs->u_ready = false;
	live = rs_live_mask(rs);
	/*
	 * Read before the failover barrier is checked (rs_gate), and kept: when
	 * the primary fails, the barrier is raised before the next node becomes
	 * the primary (node_fail), so a write that passed the check goes to the
	 * primary it saw.  Read again after the check, the next primary could
	 * run the write ahead of the rows other sessions still had to send it:
	 * their row images, applied later, would undo it, or the nodes would
	 * wait for each other's locks.  A write sent to a primary that has just
	 * failed runs again on the next one (rfail.c), behind the barrier.
	 */
	primary = node_primary();
	rs->u_primary = primary;
	if (primary < 0 || !(live & (1ULL << primary))) {
		rs_local_error(rs, SQLSTATE_CONNECTION_FAILURE, "no PostgreSQL node is available");
		return;
	}
	buf_reset(&rs->err);
	rs->send_err = false;
	if (!rs_order_before_unit(rs))
		return; /* RS_ORDER: routed when the commits it needs are done */
	if (rs->txn == 'E') {
		rs_route_failed(rs, fl, single);
		return;
	}
	if (rs_unit_writes(rs, &commit_only)) {
		const struct config *cfg = rs->c->w->cfg;
		int up = nodes_up_count();

		if (up < cfg->min_nodes) {
			char text[160];

			snprintf(text, sizeof(text), "cannot write: %d of %d nodes are up and min_nodes is %d", up,
				 rs->n_nodes, cfg->min_nodes);
			if (commit_only && single) {
				/* the transaction's writes would land on too few nodes */
				buf_reset(&rs->err);
				if (!msg_error(&rs->err, "ERROR", SQLSTATE_READ_ONLY_TXN, "%s", text)) {
					client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
					return;
				}
				rs->send_err = true;
				rs->abort_in_block = false;
				rs_drop_pending(rs);
				rs_abort(rs);
				return;
			}
			rs_local_error(rs, SQLSTATE_READ_ONLY_TXN, text);
			return;
		}
		if (!rs_gate(rs, commit_only))
			return; /* routed when the pause of writes ends */
	}
	if (rs->u_exec == 0) {
		/* Parse, Describe, Close, Sync only. */
		if (rs_ship_parse_only(rs))
			return;
		if (rs->u_state)
			rs_step_parallel(rs, live, primary, false);
		else
			rs_step_read(rs, in_block ? rs_txn_leader(rs) : primary);
		return;
	}
	if (ci->cls == STMT_TXN && single) {
		rs_route_txn(rs, fl);
		return;
	}
	if (fl & STMT_F_TEMP)
		rs->had_temp = true;
	/* SET TRANSACTION ISOLATION LEVEL ... in a block: its reads go to the primary */
	if (in_block && ci->cls == STMT_SESSION && rs->u_sql.len && strcasestr((const char *)rs->u_sql.data, "isolation") &&
	    rs_iso_strict((const char *)rs->u_sql.data))
		rs->iso_strict = true;
	/* DDL in a session that made temporary objects may name them (DROP
	 * TABLE t, CREATE INDEX ON t...), which PREPARE TRANSACTION refuses. */
	if (rs->had_temp && ci->cls == STMT_DDL)
		rs->ship_temp = true;
	if (in_block && ((fl & STMT_F_NO_2PC) || rs->ship_temp))
		rs->no_2pc = true;
	/* Table descriptions for row shipping: DDL may change any, SET search_path
	 * what this session's names mean. */
	if (ci->cls >= STMT_DDL && ci->cls != STMT_UNKNOWN)
		rs_ship_ddl(rs, true);
	else if (ci->cls == STMT_SESSION)
		rs_ship_ddl(rs, false);
	if ((fl & STMT_F_TXN_ANY) || ci->cls == STMT_NO_TXN_BLOCK) {
		/* Transaction control among other statements, or what cannot run
		 * in a block: primary first, no two-phase commit. */
		rs_step_write(rs, in_block && ci->cls == STMT_NO_TXN_BLOCK ? 1ULL << primary : live, false);
		return;
	}
	if (single && rs_ship_route(rs, in_block))
		return; /* its rows are shipped (rship.c) */
	if (ci->cls == STMT_READ && single && (fl & STMT_F_OTHER_FN)) {
		/* A user's volatile function may write (pg_proc says, rship.c): then
		 * the "read" runs on every node, primary first. */
		int v = rs_fn_volatile(rs);

		if (v < 0)
			return;
		if (v > 0) {
			if (!rs_gate(rs, false))
				return;
			rs->cls.cls = STMT_WRITE;
			rs_step_write(rs, live, !in_block && !rs->had_temp);
			return;
		}
	}
	switch (ci->cls) {
	case STMT_READ:
	case STMT_UNKNOWN:
	case STMT_TXN:
		/* currval()/lastval() only mean something where nextval() ran, and
		 * OIDs read in the catalogs only on the node that gave them: the primary. */
		/* A cursor moves on the node that FETCHes: always the primary. */
		rs_step_read(rs, (ci->cls == STMT_UNKNOWN && !in_block) ||
					 (fl & (STMT_F_SEQUENCE | STMT_F_CATALOG | STMT_F_CURSOR))
					 ? primary
					 : rs_read_target(rs));
		return;
	case STMT_SESSION:
		rs_step_parallel(rs, live, primary, false);
		return;
	default:
		rs_step_write(rs, live, !in_block && !(fl & STMT_F_NO_2PC) && !rs->ship_temp);
		return;
	}
}

