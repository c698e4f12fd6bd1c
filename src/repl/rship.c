/*
 * rship.c - row shipping in a replicated session (include/pgchorus/ship.h,
 * doc/determinism.md): a write whose effect could differ between nodes
 * runs on the primary only, with its rows returned to pgchorus, and the
 * other nodes apply exactly those rows by primary key.
 *
 *   read time   the statement text gets RETURNING ROW(t.*)::text
 *               (rs_ship_rewrite); Execute/Query/Describe answers of such
 *               statements are trimmed of that column (rs_ship_answer);
 *   routing     rs_ship_route: the table's key, columns and sequences come
 *               from the primary's catalog (RS_LOOKUP, cached per session
 *               until DDL); what runs as text after all (plain INSERTs into
 *               tables without volatile defaults, tables without a key,
 *               views, temporary tables...) loses the RETURNING addition
 *               again (unship_unit) and what can neither be shipped nor run
 *               as text safely is refused (0A000);
 *   primary     the rows and the sequences' values are captured;
 *   others      rs_ship_build: the apply statement and setval()s, sent once
 *               every commit the statement may have seen on the primary is
 *               done everywhere (corder.h; RS_ORDER while waiting).
 *
 * Owns: rs->tables (struct ship_table per "schema\x01table").
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/corder.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/resolver.h"
#include "pgchorus/rsess.h"
#include "pgchorus/rstep.h"
#include "pgchorus/server.h"
#include "pgchorus/ship.h"
#include "pgchorus/worker.h"

/* Bumped by every DDL any session runs: table descriptions are read again. */
static atomic_uint ddl_generation;

void rs_ship_ddl(struct rsess *rs, bool all_sessions)
{
	if (all_sessions)
		atomic_fetch_add(&ddl_generation, 1);
	else
		rs->tables_gen = atomic_load(&ddl_generation) - 1; /* this session only (SET search_path...) */
}

static void table_free(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	ship_table_free(value);
	free(value);
}

static void tables_clear(struct rsess *rs)
{
	strmap_foreach(&rs->tables, table_free, NULL);
	strmap_destroy(&rs->tables);
	strmap_init(&rs->tables);
	strmap_destroy(&rs->fns); /* values are not pointers */
	strmap_init(&rs->fns);
}

/* rs->fns values */
#define FN_USER_VOLATILE ((void *)1)
#define FN_OTHER ((void *)2)

void rs_ship_unwait(struct rsess *rs);

void rs_ship_free(struct rsess *rs)
{
	tables_clear(rs);
	strmap_destroy(&rs->tables);
	strmap_destroy(&rs->fns);
	buf_free(&rs->ship_rows);
	buf_free(&rs->ship_cap);
	buf_free(&rs->ship_pre);
	buf_free(&rs->ship_unit.msgs);
	buf_free(&rs->ship_unit.entries);
	rs_ship_unwait(rs);
}

void rs_ship_unwait(struct rsess *rs)
{
	if (rs->order_waiting) {
		list_del(&rs->order_link);
		corder_wait_add(-1);
		rs->order_waiting = false;
	}
}

void rs_ship_reset_unit(struct rsess *rs)
{
	memset(&rs->ship, 0, sizeof(rs->ship));
	rs->ship_on = false;
	rs->ship_temp = false;
	rs->ship_t = NULL;
	rs->ship_n = 0;
	rs->ship_copy_n = 0;
	buf_reset(&rs->ship_rows);
	buf_reset(&rs->ship_cap);
	buf_reset(&rs->ship_pre);
	buf_reset(&rs->ship_unit.msgs);
	buf_reset(&rs->ship_unit.entries);
}

void rs_ship_restart(struct rsess *rs)
{
	rs->ship_n = 0;
	rs->ship_copy_n = 0;
	rs->ship_oom = false;
	buf_reset(&rs->ship_rows);
	buf_reset(&rs->ship_cap);
	buf_reset(&rs->ship_pre);
	buf_reset(&rs->ship_unit.msgs);
	buf_reset(&rs->ship_unit.entries);
}

static void table_key(const struct ship_stmt *st, char *key, size_t n)
{
	snprintf(key, n, "%s\x01%s", st->schema, st->rel);
}

static struct ship_table *table_cached(struct rsess *rs, const struct ship_stmt *st)
{
	char key[2 * SHIP_NAME_MAX + 2];

	if (rs->tables_gen != atomic_load(&ddl_generation)) {
		tables_clear(rs);
		rs->tables_gen = atomic_load(&ddl_generation);
	}
	table_key(st, key, sizeof(key));
	return strmap_get(&rs->tables, key);
}

/* ---- read time ------------------------------------------------------------- */

/*
 * SQL of a Query or Parse, classified SI: analyse it for shipping into *ST;
 * when its answers must carry the row images, the text with the RETURNING
 * addition goes to OUT (left empty otherwise).  false: out of memory.
 */
/* May a statement of class SI be shipped at all (then it is analysed)? */
bool rs_ship_candidate(const struct stmt_info *si)
{
	if (si->n_stmts != 1 || (si->flags & (STMT_F_TXN_ANY | STMT_F_UNANALYSED)))
		return false;
	return si->cls == STMT_WRITE || (si->cls == STMT_READ && (si->flags & STMT_F_SEQUENCE));
}

bool rs_ship_rewrite(struct rsess *rs, const char *sql, const struct stmt_info *si, struct ship_stmt *st,
		     bool analyzed, struct buf *out)
{
	const struct ship_table *t;

	if (!analyzed) {
		memset(st, 0, sizeof(*st));
		if (rs_ship_candidate(si))
			ship_analyze(sql, st);
	}
	if (si->flags & STMT_F_COPY_FROM) {
		/* No text change: whether it is shipped depends on the table. */
		if (st->kind != SHIP_COPY)
			memset(st, 0, sizeof(*st));
		return true;
	}
	if (st->kind == SHIP_COPY)
		memset(st, 0, sizeof(*st));
	if (st->kind == SHIP_NO || st->kind == SHIP_SEQ || st->kind == SHIP_LO || st->kind == SHIP_WITH)
		return true;
	t = table_cached(rs, st);
	if (t && (!t->exists ||
		  (!(st->flags & SHIP_F_CURRENT_OF) &&
		   (t->temp || !t->writable || ((st->flags & SHIP_F_PLAIN) && !t->volatile_def && !st->seqs_len) ||
		    ((st->kind != SHIP_INSERT || (st->flags & SHIP_F_ON_CONFLICT)) && !t->key_cond &&
		     !(st->flags & SHIP_F_VOLATILE_FN)) ||
		    (!t->can_return && !(st->flags & SHIP_F_VOLATILE_FN) &&
		     !(st->kind == SHIP_INSERT && t->volatile_def)))))) {
		if (t->exists && t->temp)
			st->flags |= SHIP_F_TEMP;
		st->kind = SHIP_NO; /* known: runs everywhere as it is */
		return true;
	}
	return ship_add_returning(sql, st, out);
}

/* ---- answers --------------------------------------------------------------- */

/* RowDescription without its last field; false: not one we can read. */
static bool trim_row_description(struct buf *out, const uint8_t *msg, uint32_t len, uint16_t *nfields)
{
	struct msg_reader r;
	uint16_t n;
	size_t last = 0;
	struct msg_builder mb;

	reader_init(&r, msg + 5, len - 5);
	n = reader_int16(&r);
	for (uint16_t i = 0; i < n && !r.err; i++) {
		last = r.pos;
		reader_string(&r);
		reader_bytes(&r, 18);
	}
	if (r.err || n == 0)
		return false;
	*nfields = (uint16_t)(n - 1);
	if (n == 1)
		return true;
	builder_begin(&mb, out, 'T');
	builder_int16(&mb, (uint16_t)(n - 1));
	builder_bytes(&mb, msg + 5 + 2, last - 2);
	return builder_finish(&mb);
}

/* DataRow: the last column (*val, *vlen; NULL for SQL NULL) and the row without it into OUT. */
static bool split_data_row(struct buf *out, const uint8_t *msg, uint32_t len, const char **val, uint32_t *vlen,
			   uint16_t *ncols)
{
	struct msg_reader r;
	uint16_t n;
	size_t last = 0;
	uint32_t l = 0;
	const uint8_t *p = NULL;

	reader_init(&r, msg + 5, len - 5);
	n = reader_int16(&r);
	for (uint16_t i = 0; i < n && !r.err; i++) {
		last = r.pos;
		l = reader_int32(&r);
		p = l == 0xffffffffu ? NULL : reader_bytes(&r, l);
	}
	if (r.err || n == 0)
		return false;
	*val = (const char *)p;
	*vlen = p ? l : 0;
	*ncols = (uint16_t)(n - 1);
	if (n > 1 && out) {
		struct msg_builder mb;

		builder_begin(&mb, out, 'D');
		builder_int16(&mb, (uint16_t)(n - 1));
		builder_bytes(&mb, msg + 5 + 2, last - 2);
		return builder_finish(&mb);
	}
	return true;
}

/* A DataRow of a capture query: its columns as NUL-terminated strings ("" for NULL). */
static bool keep_row(struct buf *cap, const uint8_t *msg, uint32_t len)
{
	struct msg_reader r;
	uint16_t n;

	reader_init(&r, msg + 5, len - 5);
	n = reader_int16(&r);
	for (uint16_t i = 0; i < n && !r.err; i++) {
		uint32_t l = reader_int32(&r);
		const uint8_t *p = l == 0xffffffffu ? NULL : reader_bytes(&r, l);

		if (r.err || !buf_append(cap, p ? (const char *)p : "", p ? l : 0) || !buf_append(cap, "", 1))
			return false;
	}
	return !r.err && buf_append(cap, "\x01", 1); /* end of row */
}

/*
 * A message answering an RT_SHIP entry of the step's leader (LEADER) or of
 * another node.  true: handled here (*fwd: pass MSG on unchanged); false:
 * rsrv.c goes on as usual.
 */
bool rs_ship_answer(struct rsess *rs, uint8_t entry, bool leader, const uint8_t *msg, uint32_t len, bool *fwd)
{
	struct client *c = rs->c;
	uint8_t type = msg[0];
	uint8_t kind = RT_KIND(entry);

	*fwd = false;
	if (entry & RT_INJECTED) {
		/* pgchorus's own capture or lookup query: nothing reaches the client,
		 * an error just means nothing is known. */
		if (type == 'D' && leader && !keep_row(&rs->ship_cap, msg, len))
			log_warning("C-%p: out of memory keeping a shipped value", (void *)c);
		return type == 'T' || type == 'D' || type == 'C' || type == 'E' || type == 'I' || type == 'n' ||
		       type == 'N';
	}
	if (!leader)
		return false; /* swallowed by rsrv.c anyway */
	if (type == 'T' && (kind == RT_EXECUTE || kind == RT_QUERY || kind == RT_DESCRIBE)) {
		uint16_t n = 0;
		size_t mark = c->scratch.len;

		if (!trim_row_description(&c->scratch, msg, len, &n)) {
			c->scratch.len = mark;
			*fwd = true;
			return true;
		}
		if (n == 0 && kind == RT_DESCRIBE && !msg_empty(&c->scratch, 'n'))
			log_warning("C-%p: out of memory", (void *)c);
		return true;
	}
	if (type == 'D' && (kind == RT_EXECUTE || kind == RT_QUERY)) {
		const char *v = NULL;
		uint32_t vl = 0;
		uint16_t n = 0;
		size_t mark = c->scratch.len;

		if (!split_data_row(&c->scratch, msg, len, &v, &vl, &n)) {
			c->scratch.len = mark;
			*fwd = true;
			return true;
		}
		if (rs->ship_on && rs->ship_t && v) {
			if (!buf_append(&rs->ship_rows, v, vl) || !buf_append(&rs->ship_rows, "", 1))
				rs->ship_oom = true;
			rs->ship_n++;
		}
		return true;
	}
	return false;
}

/* ---- routing ----------------------------------------------------------------- */

static bool unit_has_parse(const struct rsess *rs);

static char *dup_field(const char **p, const char *end)
{
	const char *s = *p;
	size_t n = strnlen(s, (size_t)(end - s));
	char *d;

	if (s + n >= end)
		return NULL;
	d = malloc(n + 1);
	if (d)
		memcpy(d, s, n + 1);
	*p = s + n + 1;
	return d;
}

/* chr(1)-separated list -> NUL-separated with an empty string at the end. */
static char *split_list(char *s)
{
	size_t n = s ? strlen(s) : 0;
	char *d = malloc(n + 2);

	if (!d) {
		free(s);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		d[i] = s[i] == '\x01' ? '\0' : s[i];
	d[n] = d[n ? n + 1 : 1] = '\0';
	free(s);
	return d;
}

/* The lookup's row (rs->ship_cap) into a table description. */
static struct ship_table *table_from_lookup(struct rsess *rs)
{
	struct ship_table *t = calloc(1, sizeof(*t));
	const char *p = (const char *)rs->ship_cap.data, *end = p + rs->ship_cap.len;
	char *f[13] = { 0 };
	int n = 0;

	if (!t)
		return NULL;
	while (n < 13 && p && p < end && *p != '\x01')
		if (!(f[n++] = dup_field(&p, end)))
			break;
	if (n == 13 && f[0][0] && f[1][0]) {
		t->exists = true;
		t->qname = f[0];
		t->cols = f[1];
		t->set_list = f[2];
		t->key_cond = f[3][0] ? f[3] : NULL;
		t->conflict_set = f[4];
		t->key_cols = f[5];
		t->pk_names = split_list(f[6]);
		t->seqs = split_list(f[7]);
		t->ident_always = f[8][0] == 't';
		t->volatile_def = f[9][0] == 't';
		t->colspec = split_list(f[10]);
		t->temp = strncmp(t->qname, "pg_temp_", 8) == 0;
		t->writable = f[11][0] == 'r' || f[11][0] == 'p';
		t->can_return = f[12][0] == 't';
		free(f[11]);
		free(f[12]);
		if (!t->key_cond)
			free(f[3]);
		free(f[8]);
		free(f[9]);
		if (!t->pk_names || !t->seqs || !t->colspec) {
			ship_table_free(t);
			free(t);
			return NULL;
		}
		return t;
	}
	for (int i = 0; i < n; i++)
		free(f[i]);
	return t; /* does not exist (or cannot be read): not shipped */
}

/* The function lookup's rows (name, t/f) into rs->fns; false: out of memory. */
static bool fns_from_lookup(struct rsess *rs)
{
	const char *p = (const char *)rs->ship_cap.data, *end = p + rs->ship_cap.len;

	while (p < end) {
		const char *name = p, *v;
		void *old;

		p += strnlen(p, (size_t)(end - p)) + 1;
		if (p >= end)
			break;
		v = p;
		p += strnlen(p, (size_t)(end - p)) + 1;
		if (p >= end || *p != '\x01')
			break;
		p++;
		if (!strmap_put(&rs->fns, name, v[0] == 't' ? FN_USER_VOLATILE : FN_OTHER, &old))
			return false;
	}
	return true;
}

void rs_ship_lookup_done(struct rsess *rs)
{
	char key[2 * SHIP_NAME_MAX + 2];
	struct ship_table *t;
	void *old = NULL;

	if (rs->lookup_fns) {
		rs->lookup_fns = false;
		if (!fns_from_lookup(rs)) {
			client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return;
		}
		buf_reset(&rs->ship_cap);
		rs->step = RS_NONE;
		rs->leader = -1;
		rs->u_ready = true;
		if (!rs->in_process)
			rsess_process(rs->c);
		return;
	}
	t = table_from_lookup(rs);
	buf_reset(&rs->ship_cap);
	table_key(&rs->ship, key, sizeof(key));
	if (!t || !strmap_put(&rs->tables, key, t, &old)) {
		if (t) {
			ship_table_free(t);
			free(t);
		}
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (old) {
		ship_table_free(old);
		free(old);
	}
	/* Route the unit again, now that the table is known. */
	rs->step = RS_NONE;
	rs->leader = -1;
	rs->u_ready = true;
	if (!rs->in_process)
		rsess_process(rs->c);
}

/* Sequences whose values the other nodes must get: the statement's and the table's. */
static bool seq_list(struct rsess *rs, struct buf *out)
{
	if (!buf_append(out, rs->ship.seqs, rs->ship.seqs_len))
		return false;
	if (rs->ship_t && rs->ship_t->seqs)
		for (const char *s = rs->ship_t->seqs; *s; s += strlen(s) + 1)
			if (!buf_append(out, s, strlen(s) + 1))
				return false;
	return true;
}

static bool send_capture(struct rsess *rs, int node)
{
	struct buf names = { 0 }, sql = { 0 };
	bool ok = seq_list(rs, &names);

	if (ok && names.len)
		ok = ship_seq_capture_sql(&sql, (const char *)names.data, names.len) &&
		     rs_send_injected(rs, node, (const char *)sql.data, RT_SHIP);
	buf_free(&names);
	buf_free(&sql);
	return ok;
}

/* MSGS (a unit's messages) with the RETURNING addition of rs->ship taken out
 * of its Query or Parse, and the extra result format out of the Binds of that
 * statement, into OUT.  false: out of memory. */
static bool unship_msgs(struct rsess *rs, const struct buf *msgs, struct buf *out, bool *named_parse, char *pname,
			size_t pname_size)
{
	const uint8_t *p = msgs->data, *end = p + msgs->len;
	bool parsed = false;

	for (; p < end; p += 1 + codec_get32(p + 1)) {
		uint32_t len = 1 + codec_get32(p + 1);
		struct msg_reader r;
		struct buf text = { 0 };
		int rm;

		reader_init(&r, p + 5, len - 5);
		if (p[0] == 'Q' || p[0] == 'P') {
			const char *name = p[0] == 'P' ? reader_string(&r) : "";
			const char *sql = reader_string(&r);
			struct msg_builder mb;

			if (r.err || (rm = ship_remove_returning(sql, &rs->ship, &text)) == 0) {
				buf_free(&text);
				if (!buf_append(out, p, len))
					return false;
				continue;
			}
			if (rm < 0)
				return buf_free(&text), false;
			builder_begin(&mb, out, p[0]);
			if (p[0] == 'P') {
				builder_string(&mb, name);
				snprintf(pname, pname_size, "%s", name);
				*named_parse = *name != '\0';
				parsed = true;
			}
			builder_string(&mb, (const char *)text.data);
			if (p[0] == 'P')
				builder_bytes(&mb, p + 5 + r.pos, len - 5 - r.pos);
			buf_free(&text);
			if (!builder_finish(&mb))
				return false;
			continue;
		}
		if (p[0] == 'B' && parsed) {
			/* one result format per column: drop the one rnow.c added */
			struct bind_layout b;

			if (bind_layout_read(p, len, &b) && b.nres > 1 && strcmp(b.stmt, pname) == 0) {
				struct msg_builder mb;

				builder_begin(&mb, out, 'B');
				builder_bytes(&mb, p + 5, b.res_at - 2);
				builder_int16(&mb, (uint16_t)(b.nres - 1));
				builder_bytes(&mb, p + 5 + b.res_at, 2 * (size_t)(b.nres - 1));
				if (!builder_finish(&mb))
					return false;
				continue;
			}
		}
		if (!buf_append(out, p, len))
			return false;
	}
	return true;
}

static void portal_unship(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	((struct rs_named *)value)->ship.kind = SHIP_NO;
}

/*
 * The unit's statement runs as text after all (its table is not one to ship
 * rows of): it goes to the nodes exactly as the client sent it, without the
 * RETURNING addition made at read time.  Returns false (route it as usual),
 * or true when the session closes (out of memory).  A named statement parsed
 * in an earlier unit keeps the addition (its answers are still trimmed).
 */
static bool unship_unit(struct rsess *rs)
{
	struct buf msgs = { 0 }, state = { 0 };
	char pname[256] = "";
	bool named = false, ok;
	enum ship_kind k = rs->ship.kind;

	if (!ship_kind_returns(k))
		return false;
	if (rs->ship.flags & SHIP_F_CURRENT_OF) {
		/* the cursor moved on the primary only: as text it would fail elsewhere */
		rs_local_error(rs, "0A000",
			       "WHERE CURRENT OF on this table cannot be replicated (no primary key, temporary "
			       "table, view...): cursors move on the primary only");
		return true;
	}
	ok = unship_msgs(rs, &rs->unit.msgs, &msgs, &named, pname, sizeof(pname)) &&
	     unship_msgs(rs, &rs->state.msgs, &state, &named, pname, sizeof(pname));
	if (!ok) {
		buf_free(&msgs);
		buf_free(&state);
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return true;
	}
	{
		/* the offsets of the messages that read the time move with them */
		const uint8_t *o = rs->unit.msgs.data, *oend = o + rs->unit.msgs.len, *nw = msgs.data;
		uint32_t *marks = (uint32_t *)rs->now_marks.data;
		size_t n_marks = rs->now_marks.len / sizeof(uint32_t), m = 0;

		for (; o < oend && m < n_marks; o += 1 + codec_get32(o + 1), nw += 1 + codec_get32(nw + 1))
			if ((size_t)(o - rs->unit.msgs.data) == marks[m])
				marks[m++] = (uint32_t)(nw - msgs.data);
	}
	buf_free(&rs->unit.msgs);
	rs->unit.msgs = msgs;
	buf_free(&rs->state.msgs);
	rs->state.msgs = state;
	for (size_t i = 0; i < rs->unit.entries.len; i++)
		rs->unit.entries.data[i] &= (uint8_t)~RT_SHIP;
	if (named) {
		struct rs_named *n = strmap_get(&rs->stmts, pname);

		if (n)
			n->ship.kind = SHIP_NO;
	} else {
		rs->unnamed_ship.kind = SHIP_NO;
	}
	rs->unnamed_portal_ship.kind = SHIP_NO;
	strmap_foreach(&rs->portals, portal_unship, NULL);
	/* rs->u_sql (logs, BEGIN replay) keeps the text seen at read time */
	rs->ship.kind = SHIP_NO;
	return false;
}

/* The unit runs on the primary only (RS_PRIMARY); rs_ship_build() then makes
 * what the others run.  WRAP: in a BEGIN of pgchorus's; CAPTURE: read the
 * sequences' values afterwards. */
static void run_on_primary(struct rsess *rs, bool wrap, bool compare, bool capture)
{
	int primary = rs->u_primary; /* (not node_primary(): rroute.c, rs_run_unit) */

	rs->ship_on = true;
	rs->wrap = wrap;
	rs->compare = compare;
	rs->target_mask = rs_live_mask(rs);
	rs_begin_step(rs, RS_PRIMARY, primary);
	if (rs_send(rs, primary, NULL, &rs->unit, true) && (!capture || send_capture(rs, primary)) && !rs->busy_mask)
		rsess_step_done(rs);
}

/* RS_LOOKUP: the table of rs->ship from the primary's catalog; the unit is
 * routed again when it is known (rs_ship_lookup_done). */
static void start_lookup(struct rsess *rs)
{
	int primary = node_primary();
	struct buf sql = { 0 };
	bool ok = ship_lookup_sql(&rs->ship, &sql);

	rs_begin_step(rs, RS_LOOKUP, primary);
	buf_reset(&rs->ship_cap);
	if (!ok) {
		buf_free(&sql);
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	/* Inside the client's transaction when the primary is in it: a
	 * table created there is seen. */
	ok = rs_send_injected(rs, primary, (const char *)sql.data, RT_SHIP);
	buf_free(&sql);
	if (ok && !rs->busy_mask)
		rs_ship_lookup_done(rs);
}

int rs_fn_volatile(struct rsess *rs)
{
	struct buf names = { 0 }, missing = { 0 }, sql = { 0 };
	int r = 0;

	if (!rs->u_sql.len || !ship_other_functions((const char *)rs->u_sql.data, &names, 16))
		goto out;
	if (rs->tables_gen != atomic_load(&ddl_generation)) {
		tables_clear(rs);
		rs->tables_gen = atomic_load(&ddl_generation);
	}
	for (size_t at = 0; at < names.len; at += strlen((const char *)names.data + at) + 1) {
		void *v = strmap_get(&rs->fns, (const char *)names.data + at);

		if (v == FN_USER_VOLATILE) {
			r = 1;
			goto out;
		}
		if (!v && !buf_append(&missing, names.data + at, strlen((const char *)names.data + at) + 1)) {
			r = -1;
			client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			goto out;
		}
	}
	if (!missing.len)
		goto out;
	/* Ask the primary once for all of them (outside or inside the client's
	 * transaction, as RS_LOOKUP for tables). */
	r = -1;
	rs_begin_step(rs, RS_LOOKUP, node_primary());
	rs->lookup_fns = true;
	buf_reset(&rs->ship_cap);
	if (!ship_fn_lookup_sql(&sql, (const char *)missing.data, missing.len)) {
		client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		goto out;
	}
	if (rs_send_injected(rs, node_primary(), (const char *)sql.data, RT_SHIP) && !rs->busy_mask)
		rs_ship_lookup_done(rs);
out:
	buf_free(&names);
	buf_free(&missing);
	buf_free(&sql);
	return r;
}

/*
 * A unit that parses a statement without executing it (a prepared
 * statement): its table is looked up first, so that a statement that will
 * run as text is prepared on the nodes without the RETURNING addition.
 * true: a lookup step started (or the session closes).
 */
bool rs_ship_parse_only(struct rsess *rs)
{
	const struct ship_stmt *st = &rs->ship;
	const struct ship_table *t;
	bool keyless;

	if (!ship_kind_returns(st->kind))
		return false;
	t = table_cached(rs, st);
	if (!t) {
		start_lookup(rs);
		return true;
	}
	keyless = ((st->kind != SHIP_INSERT || (st->flags & SHIP_F_ON_CONFLICT)) && !t->key_cond) || !t->can_return;
	if (!t->exists || t->temp || !t->writable ||
	    (st->kind == SHIP_INSERT && (st->flags & SHIP_F_PLAIN) && !t->volatile_def && !st->seqs_len) ||
	    (keyless && !(st->flags & (SHIP_F_VOLATILE_FN | SHIP_F_CURRENT_OF))) ||
	    (st->kind == SHIP_UPDATE && (ship_sets_key(st, t) || !t->set_list || !*t->set_list)))
		return unship_unit(rs);
	return false;
}

/*
 * The unit (one statement, rs->ship analysed at read time) is a write: ship
 * it if that is what it needs.  true: a step started (or the session
 * closes); false: route it as usual.
 */
bool rs_ship_route(struct rsess *rs, bool in_block)
{
	const struct ship_stmt *st = &rs->ship;
	struct ship_table *t;

	if (st->flags & SHIP_F_TEMP) {
		rs->ship_temp = true; /* known at read time (rs_ship_rewrite) */
		if (in_block)
			rs->no_2pc = true;
	}
	if (st->kind == SHIP_NO || !rs->unit_sync || rs->u_exec != 1)
		return false;
	if (st->kind == SHIP_LO) {
		/* The others run the same Query or Parse with the primary's OID
		 * (rs_ship_build): the unit must carry the text. */
		if (!rs->u_sql.len || (rs->unit.msgs.data[0] != 'Q' && !unit_has_parse(rs))) {
			rs_local_error(rs, "0A000",
				       "a prepared statement creating a large object cannot be replicated; "
				       "send its text with each execution (unnamed statement or simple query)");
			return true;
		}
		run_on_primary(rs, !in_block, true, false);
		return true;
	}
	if (st->kind == SHIP_SEQ) {
		run_on_primary(rs, false, false, true);
		return true;
	}
	t = table_cached(rs, st);
	if (!t) {
		start_lookup(rs);
		return true;
	}
	if (!t->exists) {
		rs->ship.flags &= ~SHIP_F_CURRENT_OF; /* the node tells what is wrong */
		return unship_unit(rs);
	}
	if (t->temp) {
		/* Temporary tables: session-local, their schema's name differs
		 * between nodes, and PREPARE TRANSACTION refuses them: they run
		 * as text, without two-phase commit. */
		rs->ship_temp = true;
		rs->had_temp = true;
		if (in_block)
			rs->no_2pc = true;
		return unship_unit(rs);
	}
	if (!t->writable)
		return unship_unit(rs); /* views, foreign tables, RLS...: as text, where their rules and triggers run */
	if (st->kind == SHIP_WITH) {
		/* Its writes cannot be read back as rows: it runs as text, which
		 * is only safe when nothing in it differs between nodes. */
		if (t->volatile_def || (st->flags & (SHIP_F_VOLATILE | SHIP_F_LO_CREATE)) || st->seqs_len) {
			rs_local_error(rs, "0A000",
				       "a statement with a data-modifying WITH cannot be replicated when its target "
				       "table has volatile defaults (serial, identity, random()...) or it calls "
				       "volatile functions; split it into separate statements");
			return true;
		}
		return false;
	}
	if (st->flags & SHIP_F_LO_CREATE) {
		rs_local_error(rs, "0A000",
			       "a large object created inside INSERT, UPDATE or DELETE cannot be replicated; "
			       "create it first with SELECT lo_create(0) or SELECT lo_from_bytea(0, ...)");
		return true;
	}
	if (st->kind == SHIP_COPY) {
		/* Columns left out may get volatile defaults: the COPY runs on the
		 * primary only, its rows are read back and shipped (rs_ship_copy_done). */
		if (!t->volatile_def)
			return false;
		rs->ship_on = true;
		rs->ship_t = t;
		return false; /* rroute.c streams it to the primary */
	}
	if (st->kind == SHIP_INSERT && (st->flags & SHIP_F_PLAIN) && !t->volatile_def && !st->seqs_len)
		return unship_unit(rs);
	if (!t->can_return) {
		/* RETURNING is not allowed (no SELECT privilege, row-level
		 * security): deterministic statements run everywhere as text. */
		if ((st->flags & SHIP_F_VOLATILE_FN) || (st->kind == SHIP_INSERT && t->volatile_def)) {
			rs_local_error(rs, "0A000",
				       "this write's effect may differ between nodes (volatile function or default) and "
				       "its rows cannot be read back: the user needs SELECT on the table, without "
				       "row-level security");
			return true;
		}
		return unship_unit(rs);
	}
	if ((st->kind != SHIP_INSERT || (st->flags & SHIP_F_ON_CONFLICT)) && !t->key_cond) {
		/* No primary key: the rows could not be found again on the other
		 * nodes; deterministic statements run everywhere as text. */
		if (st->flags & (SHIP_F_VOLATILE_FN | SHIP_F_CURRENT_OF)) {
			rs_local_error(rs, "0A000",
				       "table has no primary key: a statement calling a volatile function, or WHERE "
				       "CURRENT OF a cursor, cannot be replicated (its effect would differ between "
				       "nodes); add a primary key");
			return true;
		}
		return unship_unit(rs);
	}
	if (st->kind == SHIP_UPDATE && (ship_sets_key(st, t) || !t->set_list || !*t->set_list))
		return unship_unit(rs);
	rs->ship_t = t;
	run_on_primary(rs, !in_block && !(rs->cls.flags & STMT_F_TEMP), true, true);
	return true;
}

/* ---- after the primary ----------------------------------------------------- */

/*
 * A shipped COPY FROM STDIN ended well on the primary (the client has its
 * answer): read back the rows it inserted, and the sequences' values.
 */
void rs_ship_copy_done(struct rsess *rs)
{
	int primary = rs->leader;
	struct buf sql = { 0 };
	bool ok = true;

	rs_begin_step(rs, RS_PRIMARY, primary);
	buf_reset(&rs->ship_cap);
	if (rs->ship_copy_n)
		ok = ship_copy_capture_sql(&sql, rs->ship_t) &&
		     rs_send_injected(rs, primary, (const char *)sql.data, RT_SHIP);
	buf_free(&sql);
	if (!ok) {
		if (rs->c->state != CL_CLOSING)
			client_close(rs->c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	if (send_capture(rs, primary) && !rs->busy_mask)
		rsess_step_done(rs);
}

/* SHIP_LO: the OID the primary's large object got (its answer's first column). */
void rs_ship_lo_value(struct rsess *rs, const uint8_t *msg, uint32_t len)
{
	struct msg_reader r;
	uint32_t l;
	const uint8_t *p;

	reader_init(&r, msg + 5, len - 5);
	if (reader_int16(&r) != 1)
		return;
	l = reader_int32(&r);
	p = reader_bytes(&r, l);
	if (r.err || l == 0 || l > 20)
		return;
	buf_reset(&rs->ship_rows);
	if (!buf_append(&rs->ship_rows, p, l))
		rs->ship_oom = true;
	rs->ship_n = 1;
}

/* Does the unit carry a Parse (the one whose text rs->u_sql holds)? */
static bool unit_has_parse(const struct rsess *rs)
{
	const uint8_t *p = rs->unit.msgs.data, *end = p + rs->unit.msgs.len;

	for (; p < end; p += 1 + codec_get32(p + 1))
		if (p[0] == 'P')
			return true;
	return false;
}

/* SHIP_LO: the client's unit with the OID in place of the 0 of its Query or Parse. */
static bool lo_unit(struct rsess *rs)
{
	const char *sql = (const char *)rs->u_sql.data;
	const uint8_t *p = rs->unit.msgs.data, *end = p + rs->unit.msgs.len;
	struct buf text = { 0 };
	bool ok;

	if (rs->ship.lo_at + rs->ship.lo_len > strlen(sql))
		return true; /* not the text analysed: nothing is sent */
	ok = buf_append(&text, sql, rs->ship.lo_at) && buf_append(&text, rs->ship_rows.data, rs->ship_rows.len) &&
	     buf_append(&text, sql + rs->ship.lo_at + rs->ship.lo_len,
			strlen(sql + rs->ship.lo_at + rs->ship.lo_len) + 1);
	for (; ok && p < end; p += 1 + codec_get32(p + 1)) {
		uint32_t len = 1 + codec_get32(p + 1);

		if (p[0] == 'Q') {
			ok = msg_query(&rs->ship_unit.msgs, (const char *)text.data);
		} else if (p[0] == 'P') {
			struct msg_reader r;
			const char *name;
			struct msg_builder mb;

			reader_init(&r, p + 5, len - 5);
			name = reader_string(&r);
			reader_string(&r);
			if (r.err)
				break;
			builder_begin(&mb, &rs->ship_unit.msgs, 'P');
			builder_string(&mb, name);
			builder_string(&mb, (const char *)text.data);
			builder_bytes(&mb, p + 5 + r.pos, len - 5 - r.pos);
			ok = builder_finish(&mb);
		} else {
			ok = buf_append(&rs->ship_unit.msgs, p, len);
		}
	}
	ok = ok && buf_append(&rs->ship_unit.entries, rs->unit.entries.data, rs->unit.entries.len);
	buf_free(&text);
	return ok;
}

/*
 * The primary ran the shipped unit: rs->ship_unit gets the apply statement
 * (empty when no row changed) and rs->ship_pre the setval()s (NUL-separated
 * Queries).  false: out of memory.
 */
bool rs_ship_build(struct rsess *rs)
{
	const char *p = (const char *)rs->ship_cap.data, *end = p + rs->ship_cap.len;

	buf_reset(&rs->ship_unit.msgs);
	buf_reset(&rs->ship_unit.entries);
	buf_reset(&rs->ship_pre);
	if (rs->ship_oom)
		return false;
	/* captured rows: fields each NUL-terminated, then \x01; a row image
	 * (COPY) has one field, a sequence two (name, value) */
	while (p < end) {
		const char *f[2] = { NULL, NULL };
		int n = 0;

		while (p < end && *p != '\x01') {
			if (n < 2)
				f[n] = p;
			n++;
			p += strnlen(p, (size_t)(end - p)) + 1;
		}
		if (p >= end)
			break;
		p++;
		if (n == 2 && *f[1] && !ship_setval_sql(&rs->ship_pre, f[0], f[1], true))
			return false;
		if (n == 1 && rs->ship_t && !buf_append(&rs->ship_rows, f[0], strlen(f[0]) + 1))
			return false;
		rs->ship_n += n == 1;
	}
	if (rs->ship_pre.len)
		resolver_seq_dirty(rs->c->database);
	if (rs->ship.kind == SHIP_LO)
		return !rs->ship_n || lo_unit(rs);
	if (rs->ship_n && rs->ship_t) {
		struct buf sql = { 0 };
		uint8_t e = RT_QUERY;
		bool ok = ship_apply_sql(&sql, rs->ship.kind == SHIP_COPY ? SHIP_INSERT : rs->ship.kind, rs->ship_t,
					 (const char *)rs->ship_rows.data, rs->ship_n, rs->ship.flags & SHIP_F_ON_CONFLICT) &&
			  msg_query(&rs->ship_unit.msgs, (const char *)sql.data) &&
			  buf_append(&rs->ship_unit.entries, &e, 1);

		buf_free(&sql);
		if (!ok)
			return false;
	}
	return true;
}

/* The setval()s of rs->ship_pre as a NULL-terminated array (at most N-1). */
void rs_ship_pre(struct rsess *rs, const char **pre, int n)
{
	const char *p = (const char *)rs->ship_pre.data, *end = p + rs->ship_pre.len;
	int k = 0;

	while (p && p < end && k < n - 1) {
		pre[k++] = p;
		p += strlen(p) + 1;
	}
	pre[k] = NULL;
}

/* ---- commit order ---------------------------------------------------------- */

/* A unit that may send the others' deferred batches (anything but a read or
 * a single write, which run on the primary or join the batch) waits until
 * the commits the shipped rows in them saw are done everywhere. */
bool rs_order_before_unit(struct rsess *rs)
{
	bool may_flush = !(rs->cls.cls == STMT_READ ||
			   (rs->cls.cls == STMT_WRITE && !(rs->cls.flags & (STMT_F_COPY_FROM | STMT_F_TXN_ANY))));

	for (int i = 0; i < rs->n_nodes && !may_flush; i++)
		may_flush = rs->slot[i].lag_count >= RS_DEFER_MAX || rs->slot[i].pend.msgs.len >= RS_DEFER_BYTES / 2;
	if (!rs->order_pend || !may_flush || corder_done_through(rs->order_pend))
		return true;
	rs->order_rerun = true;
	if (rs_ship_order_ok(rs, rs->order_pend)) {
		rs->order_rerun = false;
		return true;
	}
	return false;
}

/* true: the others may get the unit now; false: RS_ORDER, rs_ship_go() later. */
bool rs_ship_order_ok(struct rsess *rs, uint64_t need)
{
	enum rs_step prev = rs->step;

	if (corder_done_through(need))
		return true;
	rs->order_need = need;
	rs->step = RS_ORDER;
	rs->order_waiting = true;
	list_append(&rs->c->w->order_waiters, &rs->order_link);
	corder_wait_add(1);
	/* A ticket may have ended between the check and the count. */
	if (corder_done_through(need)) {
		list_del(&rs->order_link);
		corder_wait_add(-1);
		rs->order_waiting = false;
		rs->step = prev;
		return true;
	}
	return false;
}

void rs_ship_order_wake(struct worker *w)
{
	struct list ready, *it;

	list_init(&ready);
	for (it = w->order_waiters.next; it != &w->order_waiters;) {
		struct rsess *rs = list_entry(it, struct rsess, order_link);

		it = it->next;
		if (corder_done_through(rs->order_need)) {
			list_del(&rs->order_link);
			list_append(&ready, &rs->order_link);
		}
	}
	while ((it = list_pop_first(&ready)) != NULL) {
		struct rsess *rs = list_entry(it, struct rsess, order_link);

		corder_wait_add(-1);
		rs->order_waiting = false;
		if (rs->order_rerun) {
			/* the unit that waited is routed now */
			rs->order_rerun = false;
			rs->step = RS_NONE;
			rs->u_ready = true;
			rs_fo_order_done(rs);
			if (!rs->in_process)
				rsess_process(rs->c);
			continue;
		}
		rs->step = RS_PRIMARY;
		rs_ship_go(rs);
		rs_fo_order_done(rs);
	}
}
