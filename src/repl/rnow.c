/*
 * rnow.c - transaction time in replication mode: now(), CURRENT_TIMESTAMP
 * and the other transaction-time expressions must read, on every node, the
 * time of the primary's transaction, which is also what the primary's
 * column defaults (DEFAULT now()) and functions see.
 *
 *   primary:       runs the client's text as it is (simple Query), or binds
 *                  the extra time parameter to 'now' (extended protocol):
 *                  its own transaction time;
 *   the others:    get a copy of the unit (rs_now_unit) with the primary's
 *                  time as a literal  '2026-11-21 08:40:00.123456+00'::timestamptz
 *                  (simple Query) or as the value of that parameter;
 *   Parse:         an extra parameter $K::timestamptz (the statement may be
 *                  executed in many transactions), the same text everywhere.
 *
 * The primary's time is read when it joins the transaction: pgchorus's BEGIN
 * there is followed by a SELECT of now() in the same Query (rstep.c,
 * rs_time_capture).  A unit that every node runs at once before that time is
 * known (session state...) uses pgchorus's clock for the whole transaction.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "pgchorus/codec.h"
#include "pgchorus/log.h"
#include "pgchorus/rewrite.h"
#include "pgchorus/rsess.h"
#include "pgchorus/worker.h"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

const char *rs_txn_time(struct rsess *rs)
{
	if (!rs->txn_time[0]) {
		struct timeval tv;
		struct tm tm;

		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		snprintf(rs->txn_time, sizeof(rs->txn_time), "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (long)tv.tv_usec);
	}
	return rs->txn_time;
}

/* The primary's answer to rs_time_capture's SELECT: "YYYY-MM-DD HH24:MI:SS.US" in UTC. */
void rs_time_captured(struct rsess *rs, const char *v, size_t n)
{
	rs->time_wait = false;
	if (rs->txn_time[0] || n < 19 || n > 40)
		return; /* fixed already for this transaction */
	memcpy(rs->txn_time, v, n);
	memcpy(rs->txn_time + n, "+00", 4);
}

/* Query text SQL with the transaction time as a literal into OUT (a Query message). */
static bool rs_rewrite_query(struct rsess *rs, const char *sql, struct buf *out)
{
	char ref[96];
	struct rewrite_result rr;
	struct msg_builder mb;
	bool ok = true;

	snprintf(ref, sizeof(ref), "'%s'::timestamptz", rs_txn_time(rs));
	rewrite_now(sql, ref, &rr);
	builder_begin(&mb, out, 'Q');
	builder_string(&mb, rr.sql ? rr.sql : sql);
	ok = builder_finish(&mb);
	rewrite_result_free(&rr);
	return ok;
}

/* Bind MSG (built by rs_rewrite_bind: its last parameter is the time) with the
 * transaction time as that parameter, into OUT. */
static bool rs_bind_time(struct rsess *rs, const uint8_t *msg, uint32_t len, struct buf *out)
{
	struct bind_layout b;
	const char *t = rs_txn_time(rs);
	struct msg_builder mb;

	if (!bind_layout_read(msg, len, &b) || !b.nparams)
		return buf_append(out, msg, len);
	builder_begin(&mb, out, 'B');
	builder_bytes(&mb, msg + 5, b.last_param_at);
	builder_int32(&mb, (uint32_t)strlen(t));
	builder_bytes(&mb, t, strlen(t));
	builder_bytes(&mb, msg + 5 + b.params_end, len - 5 - b.params_end);
	return builder_finish(&mb);
}

/*
 * The unit as the nodes other than the primary run it: &rs->unit when no
 * message of it reads the transaction time, else rs->now_unit, built once
 * per unit with the transaction time (fixed now if still unknown).
 */
const struct rs_unit *rs_now_unit(struct rsess *rs)
{
	const uint8_t *p = rs->unit.msgs.data, *end = p + rs->unit.msgs.len;
	const uint32_t *marks = (const uint32_t *)rs->now_marks.data;
	size_t n_marks = rs->now_marks.len / sizeof(uint32_t), m = 0;

	if (!n_marks)
		return &rs->unit;
	if (rs->now_unit.msgs.len)
		return &rs->now_unit;
	for (; p < end; p += 1 + codec_get32(p + 1)) {
		uint32_t len = 1 + codec_get32(p + 1);
		bool ok;

		if (m < n_marks && (size_t)(p - rs->unit.msgs.data) == marks[m]) {
			m++;
			if (p[0] == 'Q')
				ok = rs_rewrite_query(rs, (const char *)p + 5, &rs->now_unit.msgs);
			else
				ok = rs_bind_time(rs, p, len, &rs->now_unit.msgs);
		} else {
			ok = buf_append(&rs->now_unit.msgs, p, len);
		}
		if (!ok) {
			buf_reset(&rs->now_unit.msgs);
			return NULL;
		}
	}
	buf_reset(&rs->now_unit.entries);
	if (!buf_append(&rs->now_unit.entries, rs->unit.entries.data, rs->unit.entries.len)) {
		buf_reset(&rs->now_unit.msgs);
		return NULL;
	}
	return &rs->now_unit;
}

static bool rs_rewrite_parse(struct rsess *rs, const uint8_t *msg, uint32_t len, struct buf *out)
{
	struct msg_reader r;
	const char *name, *sql;
	uint16_t ntypes;
	const uint8_t *rest;
	size_t rest_len;
	int k;
	char ref[40];
	struct rewrite_result rr;
	struct msg_builder mb;
	bool ok = true;

	reader_init(&r, msg + 5, len - 5);
	name = reader_string(&r);
	sql = reader_string(&r);
	if (r.err)
		return true; /* rs_note() reports the malformed message */
	rest = msg + 5 + r.pos;
	rest_len = len - 5 - r.pos;
	ntypes = reader_int16(&r);
	if (r.err)
		return true;
	k = rewrite_max_param(sql);
	if (k < 0 || k >= 65535)
		return true;
	if (ntypes > k)
		k = ntypes;
	k++;
	snprintf(ref, sizeof(ref), "$%d::timestamptz", k);
	rewrite_now(sql, ref, &rr);
	if (rr.sql) {
		builder_begin(&mb, out, 'P');
		builder_string(&mb, name);
		builder_string(&mb, rr.sql);
		builder_bytes(&mb, rest, rest_len);
		ok = builder_finish(&mb);
		rs->rw_now_param = k;
	}
	rewrite_result_free(&rr);
	return ok;
}

/*
 * Bind of a statement whose Parse got parameter K for the time (0: none):
 * append it; EXTRA_RESULT: the statement returns one more column (row
 * shipping), which needs a format code when the client gave one per column.
 */
static bool rs_rewrite_bind(struct rsess *rs, const uint8_t *msg, uint32_t len, int k, bool extra_result,
			    struct buf *out)
{
	struct bind_layout b;
	const char *t = "now"; /* the primary's own transaction time; rs_bind_time() for the others */
	struct msg_builder mb;

	(void)rs;
	if (!bind_layout_read(msg, len, &b))
		return true; /* malformed: the node reports it */
	if (k && (b.nparams + 1 != k || (b.nfmt != 0 && b.nfmt != 1 && b.nfmt != b.nparams)))
		k = 0; /* not what the statement expects: the node reports it */
	if (!k && !(extra_result && b.nres > 1))
		return true;
	builder_begin(&mb, out, 'B');
	builder_string(&mb, b.portal);
	builder_string(&mb, b.stmt);
	if (!k || b.nfmt == 0 || (b.nfmt == 1 && b.fmt0 == 0)) {
		builder_bytes(&mb, msg + 5 + b.fmts_at, 2 + 2 * (size_t)b.nfmt);
	} else {
		/* Per-parameter formats, the new one in text. */
		builder_int16(&mb, (uint16_t)(b.nparams + 1));
		for (uint16_t i = 0; i < b.nparams; i++)
			builder_int16(&mb, b.nfmt == 1 ? b.fmt0 : get16(msg + 5 + b.fmts_at + 2 + 2 * (size_t)i));
		builder_int16(&mb, 0);
	}
	builder_int16(&mb, (uint16_t)(b.nparams + (k ? 1 : 0)));
	builder_bytes(&mb, msg + 5 + b.params_at, b.params_end - b.params_at);
	if (k) {
		builder_int32(&mb, (uint32_t)strlen(t));
		builder_bytes(&mb, t, strlen(t));
	}
	if (extra_result && b.nres > 1) {
		builder_int16(&mb, (uint16_t)(b.nres + 1));
		builder_bytes(&mb, msg + 5 + b.res_at, 2 * (size_t)b.nres);
		builder_int16(&mb, 0); /* the row image, as text */
	} else {
		builder_int16(&mb, b.nres);
		builder_bytes(&mb, msg + 5 + b.res_at, 2 * (size_t)b.nres);
	}
	return builder_finish(&mb);
}

/* The Query or Parse in OUT (or MSG when OUT is empty) with the row-shipping
 * RETURNING addition when its statement needs it (rship.c). */
static bool rs_rewrite_ship(struct rsess *rs, uint8_t type, const uint8_t *msg, uint32_t len, bool analyzed,
			    struct buf *out)
{
	struct msg_reader r;
	const char *name = "", *sql;
	const uint8_t *m = out->len ? out->data : msg;
	uint32_t ml = out->len ? (uint32_t)out->len : len;
	struct buf text = { 0 };
	struct buf tmp = { 0 };
	bool ok;

	reader_init(&r, m + 5, ml - 5);
	if (type == 'P')
		name = reader_string(&r);
	sql = reader_string(&r);
	if (r.err)
		return true;
	/* An analysis of the text before the time parameter was added is stale. */
	if (!rs_ship_rewrite(rs, sql, &rs->rw_info, &rs->rw_ship, analyzed && !out->len, &text))
		return false;
	if (!text.len)
		return true;
	{
		struct msg_builder mb;

		builder_begin(&mb, &tmp, type);
		if (type == 'P')
			builder_string(&mb, name);
		builder_string(&mb, (const char *)text.data);
		if (type == 'P')
			builder_bytes(&mb, m + 5 + r.pos, ml - 5 - r.pos);
		ok = builder_finish(&mb);
	}
	buf_reset(out);
	ok = ok && buf_append(out, tmp.data, tmp.len);
	buf_free(&text);
	buf_free(&tmp);
	return ok;
}

struct ship_pb {
	struct rsess *rs;
	const char *sql;
	bool done;
};

static void ship_pb_cb(void *arg, const struct stmt_info *info, const uint8_t *pb, size_t len)
{
	struct ship_pb *a = arg;

	a->done = true;
	memset(&a->rs->rw_ship, 0, sizeof(a->rs->rw_ship));
	if (rs_ship_candidate(info))
		ship_analyze_pb(a->sql, pb, len, &a->rs->rw_ship);
}

bool rs_rewrite_msg(struct rsess *rs, uint8_t type, const uint8_t *msg, uint32_t len, struct buf *out)
{
	struct classify_cache *cc = &rs->c->w->classify;
	struct msg_reader r;

	rs->rw_now_param = 0;
	rs->rw_has_info = false;
	rs->rw_now = false;
	memset(&rs->rw_ship, 0, sizeof(rs->rw_ship));
	reader_init(&r, msg + 5, len - 5);
	switch (type) {
	case 'Q':
	case 'P': {
		const char *sql;

		if (type == 'P')
			reader_string(&r);
		sql = reader_string(&r);
		if (r.err)
			return true;
		/* Classified once: the rewritten text has the same class.  When the
		 * text is parsed, the row-shipping analysis reads the same tree. */
		struct ship_pb pb = { .rs = rs, .sql = sql };

		rs->rw_info = *classify_cached_cb(cc, sql, strlen(sql), ship_pb_cb, &pb);
		rs->rw_has_info = true;
		/* A Query keeps its text (the primary runs it as it is; rs_now_unit
		 * for the others); a Parse gets the time as a parameter. */
		rs->rw_now = (rs->rw_info.flags & STMT_F_NOW) != 0;
		if (rs->rw_now && type == 'P' && !rs_rewrite_parse(rs, msg, len, out))
			return false;
		return rs_rewrite_ship(rs, type, msg, len, pb.done, out);
	}
	case 'B': {
		const char *stmt;
		const struct rs_named *n;
		const struct ship_stmt *st;
		int k;

		reader_string(&r);
		stmt = reader_string(&r);
		if (r.err)
			return true;
		if (*stmt) {
			n = strmap_get(&rs->stmts, stmt);
			k = n ? n->now_param : 0;
			st = n ? &n->ship : NULL;
		} else {
			k = rs->unnamed_now_param;
			st = &rs->unnamed_ship;
		}
		rs->rw_now = k != 0;
		return rs_rewrite_bind(rs, msg, len, k, st && ship_kind_returns(st->kind), out);
	}
	default:
		return true;
	}
}
