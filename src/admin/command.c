/*
 * command.c - the admin console's commands: parsing a query string into
 * calls of the command table, running them, and the result a command
 * builds (DataRows in text or binary format, notices, one error).
 *
 * Parsing: the string is cut into tokens by libpg_query's scanner (so that
 * quotes, comments and ';' inside them are PostgreSQL's), statements end
 * at ';', and the words of each statement are matched against the
 * patterns of the tables listed in admin_cmd_sets.  The commands are not
 * PostgreSQL SQL ("DETACH NODE 2"), so the parser itself cannot be used.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "admin-int.h"

/* Every command table; a new cmd_*.c adds its own here. */
static const struct admin_cmd_set *const admin_cmd_sets[] = {
	&admin_cmds_nodes,
	&admin_cmds_ops,
	&admin_cmds_show,
	&admin_cmds_compare,
};

#define N_SETS (sizeof(admin_cmd_sets) / sizeof(admin_cmd_sets[0]))

/* ---- parsing -------------------------------------------------------------- */

static void set_err(struct admin_err *e, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(struct admin_err *e, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	snprintf(e->sqlstate, sizeof(e->sqlstate), "%s", sqlstate);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	e->hint[0] = 0;
}

/* "Commands: SHOW NODES, ..., DETACH NODE n." into HINT. */
static void commands_hint(char *hint, size_t n)
{
	size_t len = (size_t)snprintf(hint, n, "Commands:");

	for (size_t s = 0; s < N_SETS; s++) {
		for (size_t i = 0; i < admin_cmd_sets[s]->n && len < n; i++)
			len += (size_t)snprintf(hint + len, n - len, "%s %s", s + i ? "," : "",
						admin_cmd_sets[s]->cmds[i].usage);
	}
	if (len < n)
		snprintf(hint + len, n - len, ".");
}

/* The tokens of one statement that matter (comments left out). */
struct stmt_tokens {
	PgQuery__ScanToken **t;
	size_t n;
};

/* Does token T (in SQL) spell WORD (LEN bytes), ignoring case?  A quoted
 * identifier or a string never does: its quotes are part of its text. */
static bool token_is_word(const char *sql, const PgQuery__ScanToken *t, const char *word, size_t len)
{
	return (size_t)(t->end - t->start) == len && strncasecmp(sql + t->start, word, len) == 0;
}

/* An integer argument at tokens [*i...]: an optional '-' and decimal
 * digits.  Values beyond the int64 range become INT64_MIN / INT64_MAX
 * (the commands refuse them as out of range). */
static bool match_int(const char *sql, const struct stmt_tokens *st, size_t *i, int64_t *out)
{
	bool neg = false;
	const PgQuery__ScanToken *t;
	uint64_t v = 0;

	if (*i < st->n && st->t[*i]->token == PG_QUERY__TOKEN__ASCII_45) {
		neg = true;
		(*i)++;
	}
	if (*i >= st->n)
		return false;
	t = st->t[*i];
	if (t->token != PG_QUERY__TOKEN__ICONST && t->token != PG_QUERY__TOKEN__FCONST)
		return false;
	for (int32_t k = t->start; k < t->end; k++) {
		char ch = sql[k];

		if (ch < '0' || ch > '9')
			return false; /* 1.5, 1e3, 0x10 */
		if (v <= (uint64_t)INT64_MAX)
			v = v * 10 + (uint64_t)(ch - '0');
	}
	(*i)++;
	if (v > (uint64_t)INT64_MAX)
		*out = neg ? INT64_MIN : INT64_MAX;
	else
		*out = neg ? -(int64_t)v : (int64_t)v;
	return true;
}

/* A name at tokens [*i...]: words (identifiers or keywords) joined by '.',
 * appended to OUT (N bytes, *LEN used) as written. */
static bool match_name(const char *sql, const struct stmt_tokens *st, size_t *i, char *out, size_t n, size_t *len)
{
	for (;;) {
		const PgQuery__ScanToken *t;
		size_t w;

		if (*i >= st->n)
			return false;
		t = st->t[*i];
		if (t->token != PG_QUERY__TOKEN__IDENT && t->keyword_kind == PG_QUERY__KEYWORD_KIND__NO_KEYWORD)
			return false;
		w = (size_t)(t->end - t->start);
		if (*len + w + 2 >= n)
			return false;
		memcpy(out + *len, sql + t->start, w);
		*len += w;
		out[*len] = 0;
		(*i)++;
		if (*i >= st->n || st->t[*i]->token != PG_QUERY__TOKEN__ASCII_46)
			return true;
		out[(*len)++] = '.';
		(*i)++;
	}
}

/*
 * Match the statement's tokens against CMD's pattern.  Returns the number
 * of pattern words matched before a difference (the whole pattern and
 * nothing left over: a match, *full set).
 */
static int match_cmd(const char *sql, const struct stmt_tokens *st, const struct admin_cmd *cmd,
		     int64_t *args, char *names, bool *full)
{
	const char *p = cmd->pattern;
	size_t i = 0, names_len = 0;
	int words = 0, n_args = 0;

	*full = false;
	names[0] = 0;
	while (*p) {
		size_t len = strcspn(p, " ");

		if (len == 2 && strncmp(p, "%d", 2) == 0) {
			if (n_args >= ADMIN_MAX_ARGS || !match_int(sql, st, &i, &args[n_args]))
				return words;
			n_args++;
		} else if (len == 2 && (strncmp(p, "%n", 2) == 0 || strncmp(p, "%N", 2) == 0)) {
			if (!match_name(sql, st, &i, names, ADMIN_NAMES_LEN, &names_len))
				return words;
			while (p[1] == 'N' && i + 1 < st->n && st->t[i]->token == PG_QUERY__TOKEN__ASCII_44) {
				size_t save = i++;

				names[names_len++] = ',';
				if (!match_name(sql, st, &i, names, ADMIN_NAMES_LEN, &names_len)) {
					i = save;
					break;
				}
			}
		} else {
			if (i >= st->n || !token_is_word(sql, st->t[i], p, len))
				return words;
			i++;
		}
		words++;
		p += len;
		while (*p == ' ')
			p++;
	}
	*full = i == st->n;
	return words;
}

/* Find the command ST spells into CALL, or set ERR. */
static bool match_stmt(const char *sql, const struct stmt_tokens *st, struct admin_call *call,
		       struct admin_err *err)
{
	const struct admin_cmd *best = NULL;
	int best_words = 0;

	for (size_t i = 0; i < st->n; i++) {
		if (st->t[i]->token == PG_QUERY__TOKEN__PARAM) {
			set_err(err, SQLSTATE_FEATURE_NOT_SUPPORTED, "admin commands take no parameters");
			return false;
		}
	}
	for (size_t s = 0; s < N_SETS; s++) {
		for (size_t i = 0; i < admin_cmd_sets[s]->n; i++) {
			const struct admin_cmd *cmd = &admin_cmd_sets[s]->cmds[i];
			bool full;
			int words = match_cmd(sql, st, cmd, call->args, call->names, &full);

			if (full) {
				call->cmd = cmd;
				return true;
			}
			if (words > best_words) {
				best_words = words;
				best = cmd;
			}
		}
	}
	/* Two words right ("DETACH NODE x") is a known command used wrongly. */
	if (best && best_words >= 2) {
		set_err(err, "42601", "syntax error in admin command \"%.*s\"", call->len > 200 ? 200 : call->len,
			call->text);
		snprintf(err->hint, sizeof(err->hint), "Usage: %s.", best->usage);
		return false;
	}
	set_err(err, "42601", "syntax error: unknown admin command \"%.*s\"", call->len > 200 ? 200 : call->len,
		call->text);
	commands_hint(err->hint, sizeof(err->hint));
	return false;
}

int admin_parse(const char *sql, struct admin_call *calls, int max, struct admin_err *err)
{
	PgQueryScanResult sr = pg_query_scan(sql);
	PgQuery__ScanResult *r = NULL;
	struct stmt_tokens st = { NULL, 0 };
	int n = -1, n_calls = 0;
	size_t first = 0;

	if (sr.error) {
		set_err(err, "42601", "syntax error in admin command: %s", sr.error->message);
		goto out;
	}
	r = pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
	st.t = r ? calloc(r->n_tokens + 1, sizeof(*st.t)) : NULL;
	if (!st.t) {
		set_err(err, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		goto out;
	}
	/* One pass more than there are tokens: the end closes the last statement. */
	for (size_t i = 0; i <= r->n_tokens; i++) {
		PgQuery__ScanToken *t = i < r->n_tokens ? r->tokens[i] : NULL;
		struct admin_call *call;

		if (t && (t->token == PG_QUERY__TOKEN__SQL_COMMENT || t->token == PG_QUERY__TOKEN__C_COMMENT))
			continue;
		if (t && t->token != PG_QUERY__TOKEN__ASCII_59) {
			if (!st.n)
				first = i;
			st.t[st.n++] = t;
			continue;
		}
		if (!st.n)
			continue; /* an empty statement */
		if (n_calls >= max) {
			set_err(err, "54000", "too many commands in one query (at most %d)", max);
			goto out;
		}
		call = &calls[n_calls];
		memset(call, 0, sizeof(*call));
		call->text = sql + r->tokens[first]->start;
		call->len = st.t[st.n - 1]->end - r->tokens[first]->start;
		if (!match_stmt(sql, &st, call, err))
			goto out;
		n_calls++;
		st.n = 0;
	}
	n = n_calls;
out:
	free(st.t);
	if (r)
		pg_query__scan_result__free_unpacked(r, NULL);
	pg_query_free_scan_result(sr);
	return n;
}

/* ---- results -------------------------------------------------------------- */

void admin_res_init(struct admin_res *r, const struct config *cfg, const char *user, const char *addr,
		    const struct admin_cmd *cmd, const int16_t *formats)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->user = user;
	r->addr = addr;
	r->cmd = cmd;
	r->formats = formats;
	buf_init(&r->rows);
	buf_init(&r->notices);
}

void admin_res_free(struct admin_res *r)
{
	buf_free(&r->rows);
	buf_free(&r->notices);
}

void admin_execute(const struct admin_call *call, struct admin_res *r)
{
	int len = call->len > 300 ? 300 : call->len;

	log_info("admin %s@%s: %.*s", r->user, r->addr, len, call->text);
	r->names = call->names;
	call->cmd->run(r, call->args);
	if (r->failed)
		log_info("admin %s@%s: %.*s: failed (%s): %s", r->user, r->addr, len, call->text, r->err.sqlstate,
			 r->err.message);
}

void admin_error(struct admin_res *r, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return; /* the first error is the one that counts */
	r->failed = true;
	snprintf(r->err.sqlstate, sizeof(r->err.sqlstate), "%s", sqlstate);
	va_start(ap, fmt);
	vsnprintf(r->err.message, sizeof(r->err.message), fmt, ap);
	va_end(ap);
	r->err.hint[0] = 0;
}

void admin_defer(struct admin_res *r, admin_collect_fn *collect, admin_finish_fn *finish)
{
	if (!r->can_defer) {
		admin_error(r, SQLSTATE_FEATURE_NOT_SUPPORTED, "%s is answered on the SQL admin console only",
			    r->cmd->usage);
		return;
	}
	r->collect = collect;
	r->finish = finish;
}

static void res_oom(struct admin_res *r)
{
	admin_error(r, SQLSTATE_OUT_OF_MEMORY, "out of memory");
}

void admin_notice(struct admin_res *r, const char *fmt, ...)
{
	struct admin_err e = { .sqlstate = "00000" };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	if (!admin_msg_error(&r->notices, "NOTICE", &e))
		res_oom(r);
}

void admin_row_begin(struct admin_res *r)
{
	builder_begin(&r->row, &r->rows, 'D');
	builder_int16(&r->row, (uint16_t)r->cmd->n_cols);
	r->col = 0;
}

/* The type of the next column, or -1 (a bug in a run function: more puts than columns). */
static int next_col_type(struct admin_res *r, bool *binary)
{
	if (r->col >= r->cmd->n_cols) {
		admin_error(r, SQLSTATE_INTERNAL, "admin command %s: more values than columns", r->cmd->usage);
		return -1;
	}
	*binary = r->formats && r->formats[r->col] == 1;
	return (int)r->cmd->cols[r->col++].type;
}

static void put_bytes(struct admin_res *r, const void *p, size_t n)
{
	builder_int32(&r->row, (uint32_t)n);
	builder_bytes(&r->row, p, n);
}

static void wrong_type(struct admin_res *r)
{
	admin_error(r, SQLSTATE_INTERNAL, "admin command %s: value of the wrong type for column %s", r->cmd->usage,
		    r->cmd->cols[r->col - 1].name);
}

void admin_put_null(struct admin_res *r)
{
	bool bin;

	if (next_col_type(r, &bin) >= 0)
		builder_int32(&r->row, UINT32_MAX); /* -1: NULL */
}

void admin_put_text(struct admin_res *r, const char *s)
{
	bool bin;
	int type = next_col_type(r, &bin);

	if (type < 0)
		return;
	if (type != ADMIN_TEXT) {
		wrong_type(r);
		return;
	}
	put_bytes(r, s, strlen(s)); /* text's binary format is its bytes too */
}

void admin_put_int(struct admin_res *r, int64_t v)
{
	bool bin;
	int type = next_col_type(r, &bin);
	char text[24];

	if (type < 0)
		return;
	if (type != ADMIN_INT4 && type != ADMIN_INT8) {
		wrong_type(r);
		return;
	}
	if (type == ADMIN_INT4 && (v < INT32_MIN || v > INT32_MAX)) {
		admin_error(r, "22003", "value %" PRId64 " out of range for column %s", v,
			    r->cmd->cols[r->col - 1].name);
		return;
	}
	if (!bin) {
		snprintf(text, sizeof(text), "%" PRId64, v);
		put_bytes(r, text, strlen(text));
	} else if (type == ADMIN_INT4) {
		builder_int32(&r->row, 4);
		builder_int32(&r->row, (uint32_t)(int32_t)v);
	} else {
		builder_int32(&r->row, 8);
		builder_int32(&r->row, (uint32_t)((uint64_t)v >> 32));
		builder_int32(&r->row, (uint32_t)v);
	}
}

void admin_put_float(struct admin_res *r, double v)
{
	bool bin;
	int type = next_col_type(r, &bin);
	char text[32];
	uint64_t u;

	if (type < 0)
		return;
	if (type != ADMIN_FLOAT8) {
		wrong_type(r);
		return;
	}
	if (!bin) {
		snprintf(text, sizeof(text), "%.15g", v);
		put_bytes(r, text, strlen(text));
		return;
	}
	memcpy(&u, &v, sizeof(u));
	builder_int32(&r->row, 8);
	builder_int32(&r->row, (uint32_t)(u >> 32));
	builder_int32(&r->row, (uint32_t)u);
}

void admin_put_bool(struct admin_res *r, bool v)
{
	bool bin;
	int type = next_col_type(r, &bin);
	uint8_t b = v;

	if (type < 0)
		return;
	if (type != ADMIN_BOOL) {
		wrong_type(r);
		return;
	}
	if (bin)
		put_bytes(r, &b, 1);
	else
		put_bytes(r, v ? "t" : "f", 1);
}

void admin_put_time(struct admin_res *r, double t)
{
	char text[64];
	struct tm tm;
	time_t secs = (time_t)t;
	int ms = (int)((t - (double)secs) * 1000);

	if (t <= 0) {
		admin_put_null(r);
		return;
	}
	if (ms < 0 || ms > 999)
		ms = 0;
	gmtime_r(&secs, &tm);
	/* PostgreSQL's timestamptz text in UTC: it casts back. */
	snprintf(text, sizeof(text), "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	admin_put_text(r, text);
}

void admin_row_end(struct admin_res *r)
{
	if (!r->failed && r->col != r->cmd->n_cols)
		admin_error(r, SQLSTATE_INTERNAL, "admin command %s: %d values for %d columns", r->cmd->usage,
			    r->col, r->cmd->n_cols);
	if (!builder_finish(&r->row)) {
		res_oom(r);
		return;
	}
	r->n_rows++;
}

/* ---- reading a result back ---------------------------------------------- */

bool admin_res_next_row(const struct admin_res *r, size_t *pos, struct tf_value *vals)
{
	const uint8_t *p = r->rows.data;
	size_t end, at = *pos;
	uint32_t len;

	if (!p || at + 7 > r->rows.len || p[at] != 'D')
		return false;
	len = codec_get32(p + at + 1);
	if (len < 6 || len > r->rows.len - at - 1)
		return false;
	end = at + 1 + len;
	if ((int)(((uint16_t)p[at + 5] << 8) | p[at + 6]) != r->cmd->n_cols)
		return false;
	at += 7;
	for (int i = 0; i < r->cmd->n_cols; i++) {
		uint32_t vlen;

		if (at + 4 > end)
			return false;
		vlen = codec_get32(p + at);
		at += 4;
		if (vlen == UINT32_MAX) {
			vals[i].p = NULL;
			vals[i].len = -1;
			continue;
		}
		if (vlen > end - at)
			return false;
		vals[i].p = (const char *)p + at;
		vals[i].len = (int32_t)vlen;
		at += vlen;
	}
	*pos = end;
	return at == end;
}

const char *admin_res_next_notice(const struct admin_res *r, size_t *pos)
{
	const uint8_t *p = r->notices.data;
	size_t at = *pos, end;
	uint32_t len;

	if (!p || at + 5 > r->notices.len)
		return NULL;
	len = codec_get32(p + at + 1);
	if (len < 4 || len > r->notices.len - at - 1 || p[r->notices.len - 1] != 0)
		return NULL;
	end = at + 1 + len;
	*pos = end;
	/* fields: a type byte, then a NUL-terminated string; a 0 type ends them */
	for (at += 5; at < end && p[at]; at += strlen((const char *)p + at + 1) + 2) {
		if (p[at] == 'M')
			return (const char *)p + at + 1;
	}
	return "";
}

/* ---- messages ------------------------------------------------------------- */

bool admin_msg_error(struct buf *b, const char *severity, const struct admin_err *e)
{
	struct msg_builder mb;

	builder_begin(&mb, b, strcmp(severity, "NOTICE") == 0 ? 'N' : 'E');
	builder_byte(&mb, 'S');
	builder_string(&mb, severity);
	builder_byte(&mb, 'V');
	builder_string(&mb, severity);
	builder_byte(&mb, 'C');
	builder_string(&mb, e->sqlstate);
	builder_byte(&mb, 'M');
	builder_string(&mb, e->message);
	if (e->hint[0]) {
		builder_byte(&mb, 'H');
		builder_string(&mb, e->hint);
	}
	builder_byte(&mb, 0);
	return builder_finish(&mb);
}

static int16_t type_len(enum admin_type t)
{
	switch (t) {
	case ADMIN_BOOL:
		return 1;
	case ADMIN_INT4:
		return 4;
	case ADMIN_INT8:
	case ADMIN_FLOAT8:
		return 8;
	case ADMIN_TEXT:
		break;
	}
	return -1;
}

bool admin_msg_row_description(struct buf *b, const struct admin_cmd *cmd, const int16_t *formats)
{
	struct msg_builder mb;

	if (!cmd || !cmd->n_cols)
		return msg_empty(b, 'n'); /* NoData */
	builder_begin(&mb, b, 'T');
	builder_int16(&mb, (uint16_t)cmd->n_cols);
	for (int i = 0; i < cmd->n_cols; i++) {
		builder_string(&mb, cmd->cols[i].name);
		builder_int32(&mb, 0);  /* table */
		builder_int16(&mb, 0);  /* column number */
		builder_int32(&mb, (uint32_t)cmd->cols[i].type);
		builder_int16(&mb, (uint16_t)type_len(cmd->cols[i].type));
		builder_int32(&mb, UINT32_MAX); /* typmod -1 */
		builder_int16(&mb, formats ? (uint16_t)formats[i] : 0);
	}
	return builder_finish(&mb);
}
