/*
 * rsess.c - a client session in replication mode: reading the client's
 * messages into units, classifying them and choosing the step that runs
 * each (rsess.h explains units and steps; rstep.c runs them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgchorus/cancel.h"
#include "pgchorus/client.h"
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

/* A unit (client messages up to Sync) larger than this is refused. */
#define RS_MAX_UNIT (64u << 20)

/* What PREPARE TRANSACTION refuses, or what must outlive the transaction. */
#define STMT_F_NO_2PC (STMT_F_TEMP | STMT_F_LISTEN_NOTIFY | STMT_F_WITH_HOLD)

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
		rs->slot[i].srv = NULL;
		if (server_is_clean(s) && !rs->slot[i].busy && !rs->slot[i].pend.msgs.len) {
			pool_release(s, true);
		} else {
			server_unlink(s);
			server_close(s, "client went away during a transaction");
		}
	}
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

/* Where a read goes. */
static int rs_read_target(struct rsess *rs)
{
	int primary = node_primary();
	uint64_t live = rs_live_mask(rs);

	if (rs->txn != 'I') {
		if (rs->wrote || rs->read_node < 0 || !(live & (1ULL << rs->read_node)))
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

/* ---- the end of a unit ---- */

static void rs_txn_reset(struct rsess *rs)
{
	rs->wrote = false;
	rs->no_2pc = false;
	rs->txn_time[0] = '\0';
	rs->err_node = -1;
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
static void rs_local_error(struct rsess *rs, const char *sqlstate, const char *text)
{
	if (!msg_error(&rs->c->scratch, "ERROR", sqlstate, "%s", text)) {
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (rs->txn == 'T')
		rs->txn = 'E'; /* as the server would */
	rs_finish(rs);
}

/* ---- acquiring the servers ---- */

/* Hold a server of every live node (in node order, so that sessions never
 * wait for each other in a cycle).  false: waiting, or the client closed. */
static bool rs_ensure_servers(struct rsess *rs)
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
	}
	if (c->state == CL_IDLE)
		client_set_state(c, CL_ACTIVE);
	return true;
}

void rsess_server_ready(struct client *c, struct server *s)
{
	struct rsess *rs = c->rs;

	client_set_state(c, CL_ACTIVE);
	rsess_adopt(c, s);
	if (rs->step == RS_ACQUIRE)
		rs->step = RS_NONE;
	rsess_process(c);
}

/* ---- routing a unit ---- */

static void rs_step_read(struct rsess *rs, int node)
{
	uint64_t others = rs->u_state ? rs_live_mask(rs) & ~(1ULL << node) : 0;

	rs_begin_step(rs, RS_READ, node);
	if (!rs_send(rs, node, NULL, &rs->unit, true))
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
	if (!rs_send_mask(rs, mask, NULL, &rs->unit, NULL))
		return;
	if (!rs->busy_mask)
		rsess_step_done(rs);
}

/* A write: the primary first (rstep.c sends it to the others when it is done). */
static void rs_step_write(struct rsess *rs, uint64_t targets, bool wrap)
{
	int primary = node_primary();

	rs->wrap = wrap;
	rs->compare = true;
	rs->target_mask = targets;
	if (rs->cls.flags & STMT_F_COPY_FROM) {
		/* The client's data must reach every node while it streams. */
		rs_step_parallel(rs, targets, primary, true);
		return;
	}
	rs_begin_step(rs, RS_PRIMARY, primary);
	if (!rs_send(rs, primary, NULL, &rs->unit, true))
		return;
	if (!rs->busy_mask)
		rsess_step_done(rs);
}

/* In an aborted transaction ('E'): only its end or a rollback to a savepoint do anything. */
static void rs_route_failed(struct rsess *rs, uint32_t fl, bool single)
{
	uint64_t txn = rs_txn_mask(rs);
	int leader = rs->err_node >= 0 && (txn & (1ULL << rs->err_node)) ? rs->err_node : rs_txn_leader(rs);

	if (single && (fl & (STMT_F_TXN_COMMIT | STMT_F_TXN_ROLLBACK))) {
		const char *pre[] = { "ROLLBACK", NULL };

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
	rs->read_node = rs_read_target(rs);
	rs->txn = 'T';
	rs_finish(rs);
	rs_txn_time(rs); /* now() is the time of BEGIN */
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

static void rs_run_unit(struct rsess *rs)
{
	const struct stmt_info *ci = &rs->cls;
	uint32_t fl = ci->flags;
	bool single = rs->u_exec == 1 && ci->n_stmts <= 1;
	bool in_block = rs->txn != 'I';
	uint64_t live;
	int primary;

	rs->u_ready = true;
	if (fl & STMT_F_UNANALYSED) {
		rs_local_error(rs, "54001", "statement is too complex to be replicated safely");
		return;
	}
	if (!rs_ensure_servers(rs))
		return;
	rs->u_ready = false;
	live = rs_live_mask(rs);
	primary = node_primary();
	if (primary < 0 || !(live & (1ULL << primary))) {
		rs_local_error(rs, SQLSTATE_CONNECTION_FAILURE, "no PostgreSQL node is available");
		return;
	}
	buf_reset(&rs->err);
	rs->send_err = false;
	if (rs->txn == 'E') {
		rs_route_failed(rs, fl, single);
		return;
	}
	if (rs->u_exec == 0) {
		/* Parse, Describe, Close, Sync only. */
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
	if (in_block && (fl & STMT_F_NO_2PC))
		rs->no_2pc = true;
	if ((fl & STMT_F_TXN_ANY) || ci->cls == STMT_NO_TXN_BLOCK) {
		/* Transaction control among other statements, or what cannot run
		 * in a block: primary first, no two-phase commit. */
		rs_step_write(rs, in_block && ci->cls == STMT_NO_TXN_BLOCK ? 1ULL << primary : live, false);
		return;
	}
	switch (ci->cls) {
	case STMT_READ:
	case STMT_UNKNOWN:
	case STMT_TXN:
		rs_step_read(rs, ci->cls == STMT_UNKNOWN && !in_block ? primary : rs_read_target(rs));
		return;
	case STMT_SESSION:
		rs_step_parallel(rs, live, primary, false);
		return;
	default:
		rs_step_write(rs, live, !in_block && !(fl & STMT_F_NO_2PC));
		return;
	}
}

/* ---- reading the client's messages ---- */

static bool rs_unit_add(struct rs_unit *u, const uint8_t *msg, uint32_t len)
{
	uint8_t e = rt_entry_for(msg[0]);

	return buf_append(&u->msgs, msg, len) && (!e || buf_append(&u->entries, &e, 1));
}

static void rs_merge(struct stmt_info *acc, const struct stmt_info *si)
{
	if (si->cls > acc->cls)
		acc->cls = si->cls;
	acc->flags |= si->flags;
	acc->n_stmts += si->n_stmts ? si->n_stmts : 1;
}

static bool rs_set_sql(struct rsess *rs, const char *sql)
{
	buf_reset(&rs->u_sql);
	return buf_append(&rs->u_sql, sql, strlen(sql) + 1);
}

static bool rs_put_info(struct strmap *m, const char *name, const struct stmt_info *si, const char *sql,
			int now_param)
{
	size_t n = si->cls == STMT_TXN && sql ? strlen(sql) : 0;
	struct rs_named *v = malloc(sizeof(*v) + n + 1);
	void *old = NULL;

	if (!v)
		return false;
	v->info = *si;
	v->now_param = now_param;
	memcpy(v->sql, n ? sql : "", n + 1);
	if (!strmap_put(m, name, v, &old)) {
		free(v);
		return false;
	}
	free(old);
	return true;
}

static const struct stmt_info unknown_info = { .cls = STMT_UNKNOWN, .n_stmts = 1 };

/* Note what one extended-protocol (or Query) message means for the unit.
 * false: malformed (protocol violation) or out of memory (*oom). */
static bool rs_note(struct rsess *rs, uint8_t type, const uint8_t *msg, uint32_t len, bool *oom)
{
	struct msg_reader r;
	struct classify_cache *cc = &rs->c->w->classify;

	reader_init(&r, msg + 5, len - 5);
	switch (type) {
	case 'Q': {
		const char *sql = reader_string(&r);

		if (r.err)
			return false;
		rs_merge(&rs->cls, rs->rw_has_info ? &rs->rw_info : classify_cached(cc, sql, strlen(sql)));
		rs->u_exec++;
		if (!rs_set_sql(rs, sql))
			return !(*oom = true);
		return true;
	}
	case 'P': {
		const char *name = reader_string(&r);
		const char *sql = reader_string(&r);
		const struct stmt_info *si;

		if (r.err)
			return false;
		si = rs->rw_has_info ? &rs->rw_info : classify_cached(cc, sql, strlen(sql));
		if (!rs_set_sql(rs, sql))
			return !(*oom = true);
		if (!*name) {
			rs->unnamed_stmt = *si;
			rs->unnamed_now_param = rs->rw_now_param;
			return true;
		}
		rs->u_state = true;
		if (!rs_put_info(&rs->stmts, name, si, sql, rs->rw_now_param) || !rs_unit_add(&rs->state, msg, len))
			return !(*oom = true);
		return true;
	}
	case 'B': {
		const char *portal = reader_string(&r);
		const char *name = reader_string(&r);
		const struct stmt_info *si;

		if (r.err)
			return false;
		si = *name ? strmap_get(&rs->stmts, name) : &rs->unnamed_stmt;
		if (!si)
			si = &unknown_info;
		if (*name && si != &unknown_info && ((const struct rs_named *)si)->sql[0] &&
		    !rs_set_sql(rs, ((const struct rs_named *)si)->sql))
			return !(*oom = true);
		if (!*portal)
			rs->unnamed_portal = *si;
		else if (!rs_put_info(&rs->portals, portal, si, NULL, 0))
			return !(*oom = true);
		return true;
	}
	case 'E': {
		const char *portal = reader_string(&r);
		const struct stmt_info *si;

		if (r.err)
			return false;
		si = *portal ? strmap_get(&rs->portals, portal) : &rs->unnamed_portal;
		rs_merge(&rs->cls, si ? si : &unknown_info);
		rs->u_exec++;
		return true;
	}
	case 'C': {
		uint8_t what = reader_byte(&r);
		const char *name = reader_string(&r);

		if (r.err)
			return false;
		if (what == 'S' && *name) {
			free(strmap_remove(&rs->stmts, name));
			rs->u_state = true;
			if (!rs_unit_add(&rs->state, msg, len))
				return !(*oom = true);
		} else if (what == 'P' && *name) {
			free(strmap_remove(&rs->portals, name));
		}
		return true;
	}
	case 'F': {
		static const struct stmt_info fn = { .cls = STMT_WRITE, .n_stmts = 1 };

		rs_merge(&rs->cls, &fn);
		rs->u_exec++;
		return true;
	}
	default:
		return true;
	}
}

static bool rs_valid_type(uint8_t type)
{
	switch (type) {
	case 'Q': case 'P': case 'B': case 'D': case 'E': case 'C': case 'S': case 'F':
	case 'H': case 'd': case 'c': case 'f': case 'X':
		return true;
	default:
		return false;
	}
}

/* COPY FROM STDIN running: the client's data goes to every node of the COPY. */
static bool rs_copy_message(struct rsess *rs, const uint8_t *msg, uint32_t len)
{
	struct rs_unit u;
	uint8_t type = msg[0];
	bool ok;

	if (type == 'c' || type == 'f') {
		rs->copy_done = true;
		for (int i = 0; i < rs->n_nodes; i++)
			if (rs->slot[i].srv && (rs->copy_mask & (1ULL << i)) && !rt_copy_in_end(&rs->slot[i].srv->rt)) {
				client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
				return false;
			}
		if (!rs->copy_need_sync)
			rs->copy_in = false;
	} else if (type == 'S' || type == 'H') {
		if (!rs->copy_done)
			return true; /* ignored by the server during COPY */
		rs->copy_in = false;
	}
	rs_unit_init(&u);
	ok = rs_unit_add(&u, msg, len);
	for (int i = 0; ok && i < rs->n_nodes; i++) {
		struct rs_slot *sl = &rs->slot[i];

		if (!sl->srv || !(rs->copy_mask & (1ULL << i)))
			continue;
		/* A node whose COPY already ended ignores the data. */
		ok = rs_send(rs, i, NULL, &u, false);
	}
	rs_unit_free(&u);
	return ok || rs->c->state == CL_CLOSING;
}

void rsess_process(struct client *c)
{
	struct rsess *rs = c->rs;
	struct worker *w = c->w;

	rs->in_process = true;
	while (c->state == CL_ACTIVE || c->state == CL_IDLE) {
		uint32_t avail, len;
		const uint8_t *p;
		uint8_t type;
		enum codec_frame f;
		bool oom = false, consumed = false;

		if (rs->u_ready && rs->step == RS_NONE) {
			rs_run_unit(rs);
			continue;
		}
		if (rs->step != RS_NONE && !rs->copy_in)
			break;
		if (!c->in.data || iobuf_avail(&c->in) < 5)
			break;
		avail = iobuf_avail(&c->in);
		p = iobuf_head(&c->in);
		f = codec_frame(p, avail, w->cfg->max_message_size, &type, &len);
		if (f != FRAME_OK || !rs_valid_type(type)) {
			if (f == FRAME_TOO_LARGE)
				client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "message of %u bytes exceeds max_message_size",
					     codec_get32(p + 1));
			else if (f != FRAME_OK)
				client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid message length");
			else
				client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid frontend message type %d", type);
			break;
		}
		if (avail < len) {
			if (!iobuf_grow_toward(&c->in, &w->bp, len))
				client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			break;
		}
		if (type == 'X') {
			client_close(c, NULL, "client sent Terminate");
			break;
		}
		if (rs->step != RS_NONE) {
			/* COPY FROM STDIN in progress. */
			if (type != 'd' && type != 'c' && type != 'f' && type != 'S' && type != 'H') {
				client_close(c, SQLSTATE_PROTOCOL_VIOLATION,
					     "unexpected message type 0x%02x during COPY from stdin", type);
				break;
			}
			if (!rs_copy_message(rs, p, len))
				break;
			iobuf_consume(&c->in, &w->bp, len);
			continue;
		}
		if (type == 'd' || type == 'c' || type == 'f') {
			iobuf_consume(&c->in, &w->bp, len); /* outside COPY: ignored, as the server does */
			continue;
		}
		buf_reset(&rs->rw);
		if (!rs_rewrite_msg(rs, type, p, len, &rs->rw)) {
			client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			break;
		}
		if (rs->rw.len) {
			/* From here on the unit carries the rewritten message. */
			iobuf_consume(&c->in, &w->bp, len);
			p = rs->rw.data;
			len = (uint32_t)rs->rw.len;
			consumed = true;
		}
		if (!rs_note(rs, type, p, len, &oom) || !rs_unit_add(&rs->unit, p, len) ||
		    rs->unit.msgs.len > RS_MAX_UNIT) {
			if (oom || rs->unit.msgs.len <= RS_MAX_UNIT)
				client_close(c, oom ? SQLSTATE_OUT_OF_MEMORY : SQLSTATE_PROTOCOL_VIOLATION,
					     oom ? "out of memory" : "invalid message format");
			else
				client_close(c, SQLSTATE_PROGRAM_LIMIT, "more than %u bytes of messages without Sync",
					     RS_MAX_UNIT);
			break;
		}
		if (!consumed)
			iobuf_consume(&c->in, &w->bp, len);
		if (type == 'Q' || type == 'S' || type == 'H' || type == 'F') {
			rs->unit_sync = type != 'H';
			if (rs->u_state && (type == 'S' || type == 'H')) {
				static const uint8_t sync[5] = { 'S', 0, 0, 0, 4 };
				static const uint8_t flush[5] = { 'H', 0, 0, 0, 4 };

				if (!rs_unit_add(&rs->state, type == 'S' ? sync : flush, 5)) {
					client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
					break;
				}
			}
			rs_run_unit(rs);
		}
	}
	rs->in_process = false;
	if (c->state == CL_CLOSING)
		return;
	if (rsess_may_read(c))
		client_resume(c);
	else
		client_pause(c);
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
