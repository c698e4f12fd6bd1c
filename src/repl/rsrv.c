/*
 * rsrv.c - answers of a server that belongs to a replicated session
 * (rsess.h).  Messages are taken whole.  The step's leader's answers go to
 * the client (except ReadyForQuery, which rsess.c writes); every node's
 * CommandComplete tags and errors are recorded for the comparison.  A node
 * has finished its part of the step when its response tracker is empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/rsess.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

static uint64_t tag_mix(uint64_t h, const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h * 0x9e3779b97f4a7c15ULL + 1;
}

static void rsrv_param(struct server *s, struct client *c, bool to_client, const uint8_t *msg, uint32_t len)
{
	struct msg_reader rd;
	const char *name, *value;

	reader_init(&rd, msg + 5, len - 5);
	name = reader_string(&rd);
	value = reader_string(&rd);
	if (!reader_done(&rd))
		return;
	server_set_param(s, name, value);
	if (to_client) {
		int ti = tracked_param_index(name);

		if (ti >= 0 && s->params[ti]) {
			client_set_param(c, ti, s->params[ti]);
		}
	}
}

static bool rs_outcome_same(const struct rs_outcome *a, const struct rs_outcome *b)
{
	if (a->failed || b->failed)
		return a->failed == b->failed && strcmp(a->sqlstate, b->sqlstate) == 0;
	return a->n_tags == b->n_tags && a->hash == b->hash;
}

/* A write unit this node ran behind the primary has ended: compare. */
static void rsrv_lag_done(struct rsess *rs, struct rs_slot *sl, int node)
{
	const struct rs_outcome *want = &sl->lag[sl->lag_head];

	if (!rs_outcome_same(want, &sl->cur)) {
		log_warning("C-%p: node %d disagrees with the primary on a write (%s %s, %u tags vs %s %s, %u tags)",
			    (void *)rs->c, node, sl->cur.failed ? "error" : "ok", sl->cur.sqlstate, sl->cur.n_tags,
			    want->failed ? "error" : "ok", want->sqlstate, want->n_tags);
		sl->mismatch_ship = want->shipped && (sl->mismatch_ship || !sl->mismatch);
		sl->mismatch = true;
	}
	sl->lag_head = (uint8_t)((sl->lag_head + 1) % RS_LAG_MAX);
	sl->lag_count--;
	memset(&sl->cur, 0, sizeof(sl->cur));
}

/* An ErrorResponse that ends the connection (FATAL or PANIC)? */
static bool rsrv_fatal(const uint8_t *msg, uint32_t len)
{
	const char *sev = msg_error_field(msg + 5, len - 5, 'V');

	if (!sev)
		sev = msg_error_field(msg + 5, len - 5, 'S');
	return sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

/* One whole message of S.  Returns whether it goes to the client. */
static bool rsrv_message(struct server *s, struct rsess *rs, struct rs_slot *sl, int node,
			 const uint8_t *msg, uint32_t len)
{
	uint8_t type = msg[0];
	uint8_t entry;
	enum rt_verdict v = rt_response(&s->rt, type, &entry);
	bool leader = sl->busy && rs->leader == node;
	bool fwd;

	if ((entry & (RT_SHIP | RT_INJECTED)) == (RT_SHIP | RT_INJECTED) && type == 'D' && rs->time_wait &&
	    node == rs->time_node) {
		/* (not node_primary(): the node may have been marked down since
		 * it answered, by another session) */
		struct msg_reader r;
		uint32_t l;
		const uint8_t *t;

		reader_init(&r, msg + 5, len - 5);
		if (reader_int16(&r) == 1 && (l = reader_int32(&r)) != 0xffffffffu && (t = reader_bytes(&r, l)) && !r.err)
			rs_time_captured(rs, (const char *)t, l);
		return false;
	}
	if ((entry & RT_SHIP) && type != 'Z' && rs_ship_answer(rs, entry, leader, msg, len, &fwd))
		return fwd;
	switch (type) {
	case 'C':
		if (leader && rs->ship_on && rs->ship.kind == SHIP_COPY && len > 10 && memcmp(msg + 5, "COPY ", 5) == 0)
			rs->ship_copy_n = strtoull((const char *)msg + 10, NULL, 10);
		/* A BEGIN pgchorus put in front of a Query on some nodes only is not
		 * part of the outcome (nor is any BEGIN: it cannot differ). */
		if ((entry & RT_COMPARE) && !(len == 11 && memcmp(msg + 5, "BEGIN", 6) == 0) &&
		    !(len == 23 && memcmp(msg + 5, "START TRANSACTION", 18) == 0)) {
			sl->cur.n_tags++;
			sl->cur.hash = tag_mix(sl->cur.hash, msg + 5, len - 5);
		}
		break;
	case 'E': {
		const char *st = msg_error_field(msg + 5, len - 5, 'C');

		if (!entry) {
			log_warning("S-%p node %d: error outside a step: %s", (void *)s, node,
				    msg_error_field(msg + 5, len - 5, 'M') ? msg_error_field(msg + 5, len - 5, 'M') : "?");
			return false;
		}
		if (entry & RT_COMPARE) {
			sl->cur.failed = true;
			snprintf(sl->cur.sqlstate, sizeof(sl->cur.sqlstate), "%s", st ? st : "XX000");
		}
		if (!sl->busy)
			return false; /* a lagging write: compared at its end */
		sl->failed = true;
		snprintf(sl->sqlstate, sizeof(sl->sqlstate), "%s", st ? st : "XX000");
		/* Kept for the client when the leader's own error does not reach it. */
		if (!leader && !rs->err.len && !buf_append(&rs->err, msg, len))
			log_warning("out of memory keeping an error");
		/* Errors of the client's own messages, and of pgchorus's additions
		 * on the leader (COMMIT PREPARED...), reach the client. */
		if (leader && (!(entry & RT_SWALLOW) || (entry & RT_INJECTED))) {
			int ci = stat_class_index(st);

			if (ci >= 0)
				stat_inc(&rs->c->w->stats.errors[ci]);
			return true;
		}
		return false;
	}
	case 'Z':
		s->txn_status = len >= 6 ? (char)msg[5] : 'I';
		sl->z = s->txn_status;
		/* Only the last answer tells where the node stands: behind this
		 * one it may still run (or have waiting) a BEGIN of ours. */
		if (rt_idle(&s->rt) && !sl->pend.msgs.len)
			sl->in_txn = sl->z != 'I';
		if ((entry & RT_COMPARE) && sl->lag_count)
			rsrv_lag_done(rs, sl, node);
		return false;
	case 'S':
		rsrv_param(s, rs->c, leader, msg, len);
		break;
	case 'G':
		/* Another COPY FROM STDIN of the same Query ("COPY ...; COPY ..."):
		 * the client's data flows again. */
		if (leader && rs->copy_mask && !rs->copy_in) {
			rs->copy_in = true;
			rs->copy_done = false;
		}
		break;
	case 'D':
		if (leader && rs->ship_on && rs->ship.kind == SHIP_LO)
			rs_ship_lo_value(rs, msg, len);
		break;
	case 'A':
		/* LISTEN ran everywhere: one node's notifications are enough. */
		return node == node_primary();
	case 'N':
		return leader && !(entry & RT_SWALLOW);
	default:
		break;
	}
	return leader && v == RT_FORWARD;
}

void rsrv_process(struct server *s)
{
	struct client *c = s->client;
	struct rsess *rs = c->rs;
	struct worker *w = s->w;
	int node = s->pool->node;
	struct rs_slot *sl = &rs->slot[node];
	struct node *n = node_get(node);
	bool step_end = false;

	if (n && atomic_load(&n->state) != NODE_UP && s->state == SV_ACTIVE) {
		/* Failed (found by another session, or the health check) and this
		 * worker has not heard yet: its answers are not used, the session
		 * lets go of it now as rsess_node_down() would.  A failed primary
		 * goes on running statements while its backends end one by one;
		 * one that ended gave up its transaction's locks there while the
		 * transaction goes on on the other nodes, so a later answer can be
		 * computed without that transaction's changes, and its row images
		 * would undo them on the nodes left.  The statement runs again on
		 * the new primary, behind the failover barrier (rfail.c). */
		rsess_server_failed(c, s, "node is no longer up");
		return;
	}
	while (s->state == SV_ACTIVE && s->in.data && iobuf_avail(&s->in)) {
		uint32_t avail = iobuf_avail(&s->in);
		const uint8_t *p = iobuf_head(&s->in);
		enum codec_frame f;
		uint8_t type;
		uint32_t len;

		f = codec_frame(p, avail, w->cfg->max_message_size, &type, &len);
		if (f == FRAME_NEED_MORE)
			break;
		if (f != FRAME_OK) {
			rsess_server_failed(c, s, "invalid message length from node");
			return;
		}
		if (avail < len) {
			if (!iobuf_grow_toward(&s->in, &w->bp, len)) {
				server_close(s, "out of memory");
				client_server_lost(c, "out of memory");
				return;
			}
			break;
		}
		if (type == 'E' && rsrv_fatal(p, len)) {
			/* The node ends the connection (shutdown, crash, terminated):
			 * the session goes on without it (rfail.c). */
			char why[160];
			const char *m = msg_error_field(p + 5, len - 5, 'M');
			const char *code = msg_error_field(p + 5, len - 5, 'C');

			snprintf(why, sizeof(why), "FATAL %s from node: %s", code ? code : "?", m ? m : "?");
			rsess_server_failed(c, s, why);
			return;
		}
		{
			size_t mark = c->scratch.len;
			bool fwd = rsrv_message(s, rs, sl, node, p, len);

			if (fwd && !buf_append(&c->scratch, p, len)) {
				client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
				return;
			}
			if (sl->busy) {
				sl->answered = true;
				if (node == rs->leader && c->scratch.len != mark)
					rs->client_got = true;
			}
		}
		iobuf_consume(&s->in, &w->bp, len);
		if (sl->fo_hold && rt_idle(&s->rt) && !sl->pend.msgs.len)
			rs_fo_release(sl);
		if (sl->busy && rt_idle(&s->rt)) {
			sl->busy = false;
			rs->busy_mask &= ~(1ULL << node);
			if (!rs->busy_mask)
				step_end = true;
			break;
		}
	}
	/* At the end of a step rs_finish() writes ReadyForQuery: one write for both. */
	if (c->scratch.len && !step_end && !client_flush_scratch(c))
		return;
	if (pstream_busy(&c->ps))
		server_pause(s); /* resumed by rsess_client_drained() */
	if (step_end)
		rsess_step_done(rs);
	/* Bytes behind the end of the step (a notification, the next step's answers). */
	if (s->state == SV_ACTIVE && s->client == c && c->state != CL_CLOSING && s->in.data &&
	    iobuf_avail(&s->in) >= 5 && !pstream_busy(&c->ps) && step_end)
		rsrv_process(s);
}
