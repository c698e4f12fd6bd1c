/*
 * rread.c - replication mode: the client's messages, read whole into
 * units (a Query, or extended-protocol messages up to Sync or Flush) and
 * noted for the routing (classes of statements and portals); during COPY
 * FROM STDIN, the client's data to every node of the COPY.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/rsess.h"
#include "pgchorus/rstep.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

/* A unit (client messages up to Sync) larger than this is refused. */
#define RS_MAX_UNIT (64u << 20)

/* ---- reading the client's messages ---- */

static bool rs_unit_add_ex(struct rs_unit *u, const uint8_t *msg, uint32_t len, uint8_t flags)
{
	uint8_t e = rt_entry_for(msg[0]) | flags;

	return buf_append(&u->msgs, msg, len) && (!(e & 0x0f) || buf_append(&u->entries, &e, 1));
}

static bool rs_unit_add(struct rs_unit *u, const uint8_t *msg, uint32_t len)
{
	return rs_unit_add_ex(u, msg, len, 0);
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

/* PARSE (LEN bytes, may be NULL): the Parse message, kept for a node the
 * session takes a server of later (rs_replay_statements). */
static bool rs_put_info(struct rsess *rs, struct strmap *m, const char *name, const struct stmt_info *si,
			const char *sql, int now_param, const struct ship_stmt *ship, const uint8_t *parse, uint32_t len)
{
	size_t n = si->cls == STMT_TXN && sql ? strlen(sql) : 0;
	struct rs_named *v = malloc(sizeof(*v) + n + 1 + (parse ? len : 0));
	void *old = NULL;

	if (!v)
		return false;
	v->info = *si;
	v->now_param = now_param;
	if (ship)
		v->ship = *ship;
	else
		memset(&v->ship, 0, sizeof(v->ship));
	memcpy(v->sql, n ? sql : "", n + 1);
	v->parse_len = parse ? len : 0;
	v->unit_no = rs->units_done;
	if (parse)
		memcpy(v->sql + n + 1, parse, len);
	if (!strmap_put(m, name, v, &old)) {
		free(v);
		return false;
	}
	free(old);
	return true;
}

static const struct stmt_info unknown_info = { .cls = STMT_UNKNOWN, .n_stmts = 1 };
static const struct ship_stmt no_ship;

/* Answers of statements with the row-shipping column carry it (rship.c). */
static uint8_t ship_flag(const struct ship_stmt *st)
{
	return st && ship_kind_returns(st->kind) ? RT_SHIP : 0;
}

static const struct ship_stmt *named_ship(const void *named)
{
	return named ? &((const struct rs_named *)named)->ship : &no_ship;
}

/* Note what one extended-protocol (or Query) message means for the unit.
 * false: malformed (protocol violation) or out of memory (*oom). */
static bool rs_note(struct rsess *rs, uint8_t type, const uint8_t *msg, uint32_t len, bool *oom, uint8_t *eflags)
{
	struct msg_reader r;
	struct classify_cache *cc = &rs->c->w->classify;

	*eflags = 0;
	reader_init(&r, msg + 5, len - 5);
	switch (type) {
	case 'Q': {
		const char *sql = reader_string(&r);

		if (r.err)
			return false;
		rs_merge(&rs->cls, rs->rw_has_info ? &rs->rw_info : classify_cached(cc, sql, strlen(sql)));
		rs->u_exec++;
		rs->ship = rs->rw_ship;
		*eflags = ship_flag(&rs->rw_ship);
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
		if (!rs->u_exec)
			rs->ship = rs->rw_ship; /* a unit that only parses (rs_ship_parse_only) */
		if (!*name) {
			rs->unnamed_stmt = *si;
			rs->unnamed_now_param = rs->rw_now_param;
			rs->unnamed_ship = rs->rw_ship;
			return true;
		}
		rs->u_state = true;
		if (!rs_put_info(rs, &rs->stmts, name, si, sql, rs->rw_now_param, &rs->rw_ship, msg, len) ||
		    !rs_unit_add(&rs->state, msg, len))
			return !(*oom = true);
		return true;
	}
	case 'B': {
		const char *portal = reader_string(&r);
		const char *name = reader_string(&r);
		const struct stmt_info *si;

		if (r.err)
			return false;
		const struct ship_stmt *ship;

		si = *name ? strmap_get(&rs->stmts, name) : &rs->unnamed_stmt;
		ship = *name ? named_ship(si) : &rs->unnamed_ship;
		if (!si)
			si = &unknown_info;
		if (*name && si != &unknown_info && ((const struct rs_named *)si)->sql[0] &&
		    !rs_set_sql(rs, ((const struct rs_named *)si)->sql))
			return !(*oom = true);
		if (!*portal) {
			rs->unnamed_portal = *si;
			rs->unnamed_portal_ship = *ship;
		} else if (!rs_put_info(rs, &rs->portals, portal, si, NULL, 0, ship, NULL, 0))
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
		rs->ship = *(*portal ? named_ship(si) : &rs->unnamed_portal_ship);
		*eflags = ship_flag(&rs->ship);
		return true;
	}
	case 'D': {
		uint8_t what = reader_byte(&r);
		const char *name = reader_string(&r);

		if (r.err)
			return false;
		if (what == 'S')
			*eflags = ship_flag(*name ? named_ship(strmap_get(&rs->stmts, name)) : &rs->unnamed_ship);
		else
			*eflags = ship_flag(*name ? named_ship(strmap_get(&rs->portals, name)) : &rs->unnamed_portal_ship);
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

/* COPY FROM STDIN running: the client's data goes to every node of the COPY. */
static bool rs_copy_message(struct rsess *rs, const uint8_t *msg, uint32_t len)
{
	uint8_t type = msg[0];
	uint8_t entry = rt_entry_for(type);
	/* The message as a unit of its own, read in place (nothing is copied
	 * but into the servers' output). */
	const struct rs_unit u = {
		.msgs = { .data = (uint8_t *)msg, .len = len },
		.entries = { .data = &entry, .len = entry ? 1 : 0 },
	};
	bool ok = true;

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
	for (int i = 0; ok && i < rs->n_nodes; i++) {
		struct rs_slot *sl = &rs->slot[i];

		if (!sl->srv || !(rs->copy_mask & (1ULL << i)))
			continue;
		/* A node whose COPY already ended ignores the data. */
		ok = rs_send(rs, i, NULL, &u, false);
	}
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
		uint8_t eflags = 0;

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
		if (!client_frame_ok(f, type, len)) {
			client_close_bad_frame(c, f, type, codec_get32(p + 1));
			break;
		}
		if (avail < len) {
			if (!iobuf_grow_toward(&c->in, &w->bp, len))
				client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
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
		if (rs->rw_now) {
			uint32_t at = (uint32_t)rs->unit.msgs.len;

			if (!buf_append(&rs->now_marks, &at, sizeof(at))) {
				client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
				break;
			}
		}
		if (!rs_note(rs, type, p, len, &oom, &eflags) || !rs_unit_add_ex(&rs->unit, p, len, eflags) ||
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

