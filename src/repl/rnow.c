/*
 * rnow.c - transaction time in replication mode: now(), CURRENT_TIMESTAMP
 * and the other transaction-time expressions of a statement are rewritten
 * (src/route/rewrite.c) to read one timestamp chosen by pgchorus for the
 * transaction, so that every node stores the same value.
 *
 *   simple Query:  a literal  '2026-11-21 08:40:00.123456+00'::timestamptz
 *   Parse:         an extra parameter $K::timestamptz (the statement may be
 *                  executed in many transactions); every Bind of the
 *                  statement gets the transaction's timestamp as parameter K.
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

static bool rs_rewrite_query(struct rsess *rs, const char *sql, struct buf *out)
{
	char ref[96];
	struct rewrite_result rr;
	struct msg_builder mb;
	bool ok = true;

	snprintf(ref, sizeof(ref), "'%s'::timestamptz", rs_txn_time(rs));
	rewrite_now(sql, ref, &rr);
	if (rr.sql) {
		builder_begin(&mb, out, 'Q');
		builder_string(&mb, rr.sql);
		ok = builder_finish(&mb);
	}
	rewrite_result_free(&rr);
	return ok;
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
	struct msg_reader r;
	const char *portal, *stmt;
	uint16_t nfmt, nparams, nres, fmt0 = 0;
	size_t fmts_at, params_at, params_end, res_at;
	const char *t = k ? rs_txn_time(rs) : NULL;
	struct msg_builder mb;

	reader_init(&r, msg + 5, len - 5);
	portal = reader_string(&r);
	stmt = reader_string(&r);
	fmts_at = r.pos;
	nfmt = reader_int16(&r);
	for (uint16_t i = 0; i < nfmt; i++) {
		uint16_t f = reader_int16(&r);

		if (i == 0)
			fmt0 = f;
	}
	nparams = reader_int16(&r);
	params_at = r.pos;
	for (uint16_t i = 0; i < nparams && !r.err; i++) {
		uint32_t plen = reader_int32(&r);

		if (plen != 0xffffffffu)
			reader_bytes(&r, plen);
	}
	params_end = r.pos;
	nres = reader_int16(&r);
	res_at = r.pos;
	reader_bytes(&r, 2 * (size_t)nres);
	if (r.err || !reader_done(&r))
		return true; /* malformed: the node reports it */
	if (k && (nparams + 1 != k || (nfmt != 0 && nfmt != 1 && nfmt != nparams)))
		k = 0; /* not what the statement expects: the node reports it */
	if (!k && !(extra_result && nres > 1))
		return true;
	builder_begin(&mb, out, 'B');
	builder_string(&mb, portal);
	builder_string(&mb, stmt);
	if (!k || nfmt == 0 || (nfmt == 1 && fmt0 == 0)) {
		builder_bytes(&mb, msg + 5 + fmts_at, 2 + 2 * (size_t)nfmt);
	} else {
		/* Per-parameter formats, the new one in text. */
		builder_int16(&mb, (uint16_t)(nparams + 1));
		for (uint16_t i = 0; i < nparams; i++)
			builder_int16(&mb, nfmt == 1 ? fmt0 : get16(msg + 5 + fmts_at + 2 + 2 * (size_t)i));
		builder_int16(&mb, 0);
	}
	builder_int16(&mb, (uint16_t)(nparams + (k ? 1 : 0)));
	builder_bytes(&mb, msg + 5 + params_at, params_end - params_at);
	if (k) {
		builder_int32(&mb, (uint32_t)strlen(t));
		builder_bytes(&mb, t, strlen(t));
	}
	if (extra_result && nres > 1) {
		builder_int16(&mb, (uint16_t)(nres + 1));
		builder_bytes(&mb, msg + 5 + res_at, 2 * (size_t)nres);
		builder_int16(&mb, 0); /* the row image, as text */
	} else {
		builder_int16(&mb, nres);
		builder_bytes(&mb, msg + 5 + res_at, 2 * (size_t)nres);
	}
	return builder_finish(&mb);
}

/* Statements whose text got the row-shipping RETURNING column. */
static bool ship_rewritten(const struct ship_stmt *st)
{
	return st->kind == SHIP_INSERT || st->kind == SHIP_UPDATE || st->kind == SHIP_DELETE;
}

/* The Query or Parse in OUT (or MSG when OUT is empty) with the row-shipping
 * RETURNING addition when its statement needs it (rship.c). */
static bool rs_rewrite_ship(struct rsess *rs, uint8_t type, const uint8_t *msg, uint32_t len, struct buf *out)
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
	if (!rs_ship_rewrite(rs, sql, &rs->rw_info, &rs->rw_ship, &text))
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

bool rs_rewrite_msg(struct rsess *rs, uint8_t type, const uint8_t *msg, uint32_t len, struct buf *out)
{
	struct classify_cache *cc = &rs->c->w->classify;
	struct msg_reader r;

	rs->rw_now_param = 0;
	rs->rw_has_info = false;
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
		/* Classified once: the rewritten text has the same class. */
		rs->rw_info = *classify_cached(cc, sql, strlen(sql));
		rs->rw_has_info = true;
		if ((rs->rw_info.flags & STMT_F_NOW) &&
		    !(type == 'Q' ? rs_rewrite_query(rs, sql, out) : rs_rewrite_parse(rs, msg, len, out)))
			return false;
		return rs_rewrite_ship(rs, type, msg, len, out);
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
		return rs_rewrite_bind(rs, msg, len, k, st && ship_rewritten(st), out);
	}
	default:
		return true;
	}
}
