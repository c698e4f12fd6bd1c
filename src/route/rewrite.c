/*
 * rewrite.c - replace transaction-time expressions by one shared value.
 *
 * The text is scanned (pg_query_scan: tokens with byte offsets) and parsed
 * (pg_query_parse_protobuf, unpacked with protobuf-c).  A walk over the
 * statements that run now finds the expressions to replace; each one starts
 * at its node's location, and the tokens from there give where it ends
 * (the ')' of now(), the "(p)" of CURRENT_TIMESTAMP(p), the end of a
 * literal).  The edits are then spliced into a copy of the text, so that
 * everything else - quoting, comments, dollar quotes - is kept byte for
 * byte.  include/pgchorus/rewrite.h lists what is and is not replaced.
 *
 * Owns: nothing beyond each call (the result text belongs to the caller).
 */
#define _GNU_SOURCE   /* asprintf */
#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "pgchorus/classify.h"
#include "pgchorus/pgq_walk.h"
#include "pgchorus/rewrite.h"

/*
 * Texts at least this long are checked with classify_sql() first: a
 * shorter text cannot nest deep enough to threaten the stack while it is
 * parsed, unpacked and walked (about one level per byte at worst).
 */
#define DEPTH_CHECK_LEN 512

struct edit {
	int32_t start, end;      /* byte range of the original text */
	char *text;              /* replacement (malloc'd) */
};

struct rw {
	const char *sql;
	const char *ref;
	const PgQuery__ScanResult *toks;
	struct edit *v;
	size_t n, cap;
	int n_left;
	bool error;
	const void *name_node;   /* FuncCall/SQLValueFunction that names a result column */
};

/* ---- tokens ---------------------------------------------------------------- */

static bool is_comment(const PgQuery__ScanToken *t)
{
	return t->token == PG_QUERY__TOKEN__SQL_COMMENT || t->token == PG_QUERY__TOKEN__C_COMMENT;
}

/* Index of the token starting at byte loc, or -1 (tokens are in text order). */
static long tok_at(const PgQuery__ScanResult *r, int32_t loc)
{
	size_t lo = 0, hi = r->n_tokens;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->tokens[mid]->start < loc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n_tokens && r->tokens[lo]->start == loc ? (long)lo : -1;
}

/* The next token after i that is not a comment, or -1. */
static long tok_next(const PgQuery__ScanResult *r, long i)
{
	if (i < 0)
		return -1;
	for (size_t k = (size_t)i + 1; k < r->n_tokens; k++) {
		if (!is_comment(r->tokens[k]))
			return (long)k;
	}
	return -1;
}

static bool tok_is(const PgQuery__ScanResult *r, long i, PgQuery__Token t)
{
	return i >= 0 && r->tokens[i]->token == t;
}

/* From the '(' at i, the index of its matching ')', or -1. */
static long tok_close(const PgQuery__ScanResult *r, long i)
{
	int depth = 0;

	for (; i >= 0; i = tok_next(r, i)) {
		if (tok_is(r, i, PG_QUERY__TOKEN__ASCII_40))
			depth++;
		else if (tok_is(r, i, PG_QUERY__TOKEN__ASCII_41) && --depth == 0)
			return i;
	}
	return -1;
}

/* Highest PARAM token ($n) of the scan. */
static int scan_max_param(const char *sql, const PgQuery__ScanResult *r)
{
	int max = 0;

	for (size_t i = 0; i < r->n_tokens; i++) {
		const PgQuery__ScanToken *t = r->tokens[i];
		long v = 0;

		if (t->token != PG_QUERY__TOKEN__PARAM)
			continue;
		/* the token is '$' and digits: its text is its number */
		for (int32_t k = t->start + 1; k < t->end && isdigit((unsigned char)sql[k]); k++) {
			v = v * 10 + (sql[k] - '0');
			if (v > INT_MAX)
				v = INT_MAX;
		}
		if (v > max)
			max = (int)v;
	}
	return max;
}

static PgQuery__ScanResult *scan(const char *sql, PgQueryScanResult *sr)
{
	*sr = pg_query_scan(sql);
	if (sr->error)
		return NULL;
	return pg_query__scan_result__unpack(NULL, sr->pbuf.len, (const uint8_t *)sr->pbuf.data);
}

static void scan_free(PgQuery__ScanResult *r, PgQueryScanResult sr)
{
	if (r)
		pg_query__scan_result__free_unpacked(r, NULL);
	pg_query_free_scan_result(sr);
}

int rewrite_max_param(const char *sql)
{
	PgQueryScanResult sr;
	PgQuery__ScanResult *r = scan(sql, &sr);
	int max = r ? scan_max_param(sql, r) : -1;

	scan_free(r, sr);
	return max;
}

/* ---- edits ----------------------------------------------------------------- */

/* Take text (malloc'd, NULL: out of memory) as the replacement of [start, end). */
static void add_edit(struct rw *w, int32_t start, int32_t end, char *text)
{
	if (!text || start < 0 || end <= start) {
		free(text);
		w->error = true;
		return;
	}
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 8;
		struct edit *v = realloc(w->v, cap * sizeof(*v));

		if (!v) {
			free(text);
			w->error = true;
			return;
		}
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = (struct edit){ .start = start, .end = end, .text = text };
}

/*
 * The replacement of a call: (REF), or ((REF)::cast) when cast is not NULL;
 * wrapped in a scalar subquery that keeps the result column name when the
 * call named one.
 */
static char *replacement(const struct rw *w, const char *cast, int typmod, const char *colname)
{
	char *expr = NULL, *s = NULL;
	int rc;

	if (!cast)
		rc = asprintf(&expr, "(%s)", w->ref);
	else if (typmod >= 0)
		rc = asprintf(&expr, "((%s)::%s(%d))", w->ref, cast, typmod);
	else
		rc = asprintf(&expr, "((%s)::%s)", w->ref, cast);
	if (rc < 0)
		return NULL;
	if (!colname)
		return expr;
	rc = asprintf(&s, "(SELECT %s AS \"%s\")", expr, colname);
	free(expr);
	return rc < 0 ? NULL : s;
}

static int edit_cmp(const void *a, const void *b)
{
	const struct edit *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/* The text with the edits applied, or NULL (overlapping edits, out of memory). */
static char *splice(const char *sql, struct edit *v, size_t n)
{
	size_t len = strlen(sql), out_len = len, pos = 0;
	char *out, *p;

	qsort(v, n, sizeof(*v), edit_cmp);
	for (size_t i = 0; i < n; i++) {
		if ((size_t)v[i].end > len || (i > 0 && v[i].start < v[i - 1].end))
			return NULL;
		out_len += strlen(v[i].text) - (size_t)(v[i].end - v[i].start);
	}
	if (!(out = p = malloc(out_len + 1)))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t tl = strlen(v[i].text);

		memcpy(p, sql + pos, (size_t)v[i].start - pos);
		p += (size_t)v[i].start - pos;
		memcpy(p, v[i].text, tl);
		p += tl;
		pos = (size_t)v[i].end;
	}
	memcpy(p, sql + pos, len - pos);
	p[len - pos] = '\0';
	return out;
}

/* ---- what is replaced ------------------------------------------------------ */

static const char *node_str(const PgQuery__Node *n)
{
	return n && n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval : NULL;
}

/* now(), transaction_timestamp(): the name, or NULL.  statement_timestamp()
 * is left alone: it differs per statement, so writes using it are shipped. */
static const char *now_call(const PgQuery__FuncCall *fc)
{
	static const char *const names[] = { "now", "transaction_timestamp" };
	const char *name, *schema;

	if (fc->n_funcname < 1 || fc->n_funcname > 2 || fc->n_args || fc->n_agg_order ||
	    fc->agg_filter || fc->over || fc->agg_within_group || fc->agg_star ||
	    fc->agg_distinct || fc->func_variadic)
		return NULL;
	name = node_str(fc->funcname[fc->n_funcname - 1]);
	schema = fc->n_funcname == 2 ? node_str(fc->funcname[0]) : NULL;
	if (!name || (fc->n_funcname == 2 && (!schema || strcmp(schema, "pg_catalog") != 0)))
		return NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0)
			return names[i];
	}
	return NULL;
}

struct svf_kind {
	const char *colname;     /* the result column name PostgreSQL gives it */
	const char *cast;        /* NULL: REF as it is (timestamptz) */
	bool precision;          /* written with (p) */
};

static bool svf_kind(const PgQuery__SQLValueFunction *f, struct svf_kind *k)
{
	switch (f->op) {
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_DATE:
		*k = (struct svf_kind){ "current_date", "date", false };
		return true;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIME:
		*k = (struct svf_kind){ "current_time", "timetz", false };
		return true;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIME_N:
		*k = (struct svf_kind){ "current_time", "timetz", true };
		return true;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP:
		*k = (struct svf_kind){ "current_timestamp", NULL, false };
		return true;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP_N:
		*k = (struct svf_kind){ "current_timestamp", "timestamptz", true };
		return true;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIME:
		*k = (struct svf_kind){ "localtime", "time", false };
		return true;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIME_N:
		*k = (struct svf_kind){ "localtime", "time", true };
		return true;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP:
		*k = (struct svf_kind){ "localtimestamp", "timestamp", false };
		return true;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP_N:
		*k = (struct svf_kind){ "localtimestamp", "timestamp", true };
		return true;
	default:
		return false;   /* CURRENT_USER, CURRENT_SCHEMA...: the same on every node */
	}
}

static bool is_time_type(const PgQuery__TypeName *t)
{
	static const char *const types[] = { "timestamp", "timestamptz", "date", "time", "timetz" };
	const char *name;

	if (!t || t->n_names == 0 || t->n_array_bounds || t->setof || t->pct_type ||
	    !(name = node_str(t->names[t->n_names - 1])))
		return false;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(name, types[i]) == 0)
			return true;
	}
	return false;
}

/* The date/time input 'now' (case and surrounding blanks do not matter). */
static bool literal_now(const char *s)
{
	size_t len;

	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	return len == 3 && strncasecmp(s, "now", 3) == 0;
}


static void rewrite_func_call(struct rw *w, const PgQuery__FuncCall *fc)
{
	const PgQuery__ScanResult *r = w->toks;
	const char *name = now_call(fc);
	long i;

	if (!name)
		return;
	/* name [. name] ( ) */
	i = tok_at(r, fc->location);
	for (size_t k = 1; k < fc->n_funcname; k++) {
		i = tok_next(r, i);
		if (!tok_is(r, i, PG_QUERY__TOKEN__ASCII_46)) {
			w->error = true;
			return;
		}
		i = tok_next(r, i);
	}
	i = tok_next(r, i);
	if (!tok_is(r, i, PG_QUERY__TOKEN__ASCII_40) ||
	    !tok_is(r, (i = tok_next(r, i)), PG_QUERY__TOKEN__ASCII_41)) {
		w->error = true;
		return;
	}
	add_edit(w, fc->location, r->tokens[i]->end,
	         replacement(w, NULL, -1, (const void *)fc == w->name_node ? name : NULL));
}

static void rewrite_svf(struct rw *w, const PgQuery__SQLValueFunction *f)
{
	const PgQuery__ScanResult *r = w->toks;
	struct svf_kind k;
	long i;

	if (!svf_kind(f, &k))
		return;
	i = tok_at(r, f->location);
	if (k.precision) {
		i = tok_next(r, i);
		if (!tok_is(r, i, PG_QUERY__TOKEN__ASCII_40) || (i = tok_close(r, i)) < 0 || f->typmod < 0) {
			w->error = true;
			return;
		}
	}
	if (i < 0) {
		w->error = true;
		return;
	}
	add_edit(w, f->location, r->tokens[i]->end,
	         replacement(w, k.cast, k.precision ? f->typmod : -1,
	                     (const void *)f == w->name_node ? k.colname : NULL));
}

/*
 * 'now'::date and CAST('now' AS date): only the literal is replaced, the
 * cast stays.  date 'now' (the type before the literal, which must be a
 * plain literal there): the whole becomes ((REF)::date), the type name
 * copied from the text.
 */
static void rewrite_type_cast(struct rw *w, const PgQuery__TypeCast *tc)
{
	const PgQuery__ScanResult *r = w->toks;
	const PgQuery__Node *a = tc->arg;
	const PgQuery__TypeName *t = tc->type_name;
	int32_t start, end;
	long i, j;
	char *s = NULL;

	if (!a || a->node_case != PG_QUERY__NODE__NODE_A_CONST || a->a_const->isnull ||
	    a->a_const->val_case != PG_QUERY__A__CONST__VAL_SVAL || !is_time_type(t))
		return;
	if (!literal_now(a->a_const->sval->sval)) {
		if (classify_literal_names_now(a->a_const->sval->sval))
			w->n_left++;
		return;
	}
	i = tok_at(r, a->a_const->location);
	if (!tok_is(r, i, PG_QUERY__TOKEN__SCONST) && !tok_is(r, i, PG_QUERY__TOKEN__USCONST)) {
		w->error = true;
		return;
	}
	start = r->tokens[i]->start;
	end = r->tokens[i]->end;
	/* U&'now' UESCAPE '!' is one literal */
	j = tok_next(r, i);
	if (tok_is(r, i, PG_QUERY__TOKEN__USCONST) && tok_is(r, j, PG_QUERY__TOKEN__UESCAPE)) {
		j = tok_next(r, j);
		if (!tok_is(r, j, PG_QUERY__TOKEN__SCONST)) {
			w->error = true;
			return;
		}
		end = r->tokens[j]->end;
	}
	if (t->location >= 0 && t->location < start) {
		if (asprintf(&s, "((%s)::%.*s)", w->ref, (int)(start - t->location), w->sql + t->location) < 0)
			s = NULL;
		add_edit(w, t->location, end, s);
	} else {
		if (asprintf(&s, "(%s)", w->ref) < 0)
			s = NULL;
		add_edit(w, start, end, s);
	}
}

/* ---- the walk -------------------------------------------------------------- */

/*
 * The call that gives an unnamed result column its name, as PostgreSQL's
 * FigureColname() finds it: through casts, COLLATE and subscripts.
 */
static const void *name_source(const PgQuery__Node *v)
{
	while (v) {
		switch (v->node_case) {
		case PG_QUERY__NODE__NODE_TYPE_CAST:
			v = v->type_cast->arg;
			break;
		case PG_QUERY__NODE__NODE_COLLATE_CLAUSE:
			v = v->collate_clause->arg;
			break;
		case PG_QUERY__NODE__NODE_A_INDIRECTION:
			for (size_t i = 0; i < v->a_indirection->n_indirection; i++) {
				if (node_str(v->a_indirection->indirection[i]))
					return NULL;   /* (x).field is named field */
			}
			v = v->a_indirection->arg;
			break;
		case PG_QUERY__NODE__NODE_FUNC_CALL:
			return v->func_call;
		case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION:
			return v->sqlvalue_function;
		default:
			return NULL;
		}
	}
	return NULL;
}

static bool is_now_node(const PgQuery__Node *n)
{
	struct svf_kind k;

	if (!n)
		return false;
	if (n->node_case == PG_QUERY__NODE__NODE_FUNC_CALL)
		return now_call(n->func_call) != NULL;
	if (n->node_case == PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION)
		return svf_kind(n->sqlvalue_function, &k);
	return false;
}

static void walk(void *arg, const ProtobufCMessage *m);

static void walk_node(struct rw *w, const PgQuery__Node *n)
{
	if (n)
		walk(w, &n->base);
}

/* FROM now(): only a function call may stand there; its arguments are walked. */
static void walk_range_function(struct rw *w, const PgQuery__RangeFunction *rf)
{
	for (size_t i = 0; i < rf->n_functions; i++) {
		const PgQuery__Node *f = rf->functions[i];

		if (f && f->node_case == PG_QUERY__NODE__NODE_LIST) {
			for (size_t k = 0; k < f->list->n_items; k++) {
				if (k == 0 && is_now_node(f->list->items[k]))
					w->n_left++;
				else
					walk_node(w, f->list->items[k]);
			}
		} else {
			walk_node(w, f);
		}
	}
	for (size_t i = 0; i < rf->n_coldeflist; i++)
		walk_node(w, rf->coldeflist[i]);
}

/* Whether m was handled here (else its fields are followed). */
static bool visit(struct rw *w, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (d == &pg_query__func_call__descriptor) {
		rewrite_func_call(w, (const PgQuery__FuncCall *)m);
	} else if (d == &pg_query__sqlvalue_function__descriptor) {
		rewrite_svf(w, (const PgQuery__SQLValueFunction *)m);
	} else if (d == &pg_query__type_cast__descriptor) {
		rewrite_type_cast(w, (const PgQuery__TypeCast *)m);
	} else if (d == &pg_query__range_function__descriptor) {
		walk_range_function(w, (const PgQuery__RangeFunction *)m);
		return true;
	} else if (d == &pg_query__res_target__descriptor) {
		const PgQuery__ResTarget *rt = (const PgQuery__ResTarget *)m;
		const void *saved = w->name_node;

		/* a SELECT or RETURNING item without AS: its column is named after it */
		if ((!rt->name || rt->name[0] == '\0') && rt->val)
			w->name_node = name_source(rt->val);
		for (size_t i = 0; i < rt->n_indirection; i++)
			walk_node(w, rt->indirection[i]);
		walk_node(w, rt->val);
		w->name_node = saved;
		return true;
	}
	return false;
}

/*
 * Visit m and everything below it (arg: the struct rw); the depth is
 * bounded, see DEPTH_CHECK_LEN.
 */
static void walk(void *arg, const ProtobufCMessage *m)
{
	struct rw *w = arg;

	if (w->error || visit(w, m))
		return;
	pgq_for_each_child(m, walk, w);
}

/* A top-level statement: only what runs now is rewritten, stored expressions stay. */
static void rewrite_stmt(struct rw *w, const PgQuery__Node *n)
{
	if (!n)
		return;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_SELECT_STMT:
	case PG_QUERY__NODE__NODE_INSERT_STMT:
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
	case PG_QUERY__NODE__NODE_DELETE_STMT:
	case PG_QUERY__NODE__NODE_MERGE_STMT:
	case PG_QUERY__NODE__NODE_CALL_STMT:
	case PG_QUERY__NODE__NODE_COPY_STMT:
	case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
	case PG_QUERY__NODE__NODE_EXECUTE_STMT:
		walk_node(w, n);
		break;
	case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
		rewrite_stmt(w, n->explain_stmt->query);
		break;
	case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
		/* a materialized view stores its query; CREATE TABLE AS only runs it */
		if (n->create_table_as_stmt->objtype != PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW)
			rewrite_stmt(w, n->create_table_as_stmt->query);
		break;
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		for (size_t i = 0; i < n->alter_table_stmt->n_cmds; i++) {
			const PgQuery__Node *c = n->alter_table_stmt->cmds[i];
			const PgQuery__AlterTableCmd *cmd;
			struct rw count = { .toks = w->toks };

			if (!c || c->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
				continue;
			cmd = c->alter_table_cmd;
			if (cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType) {
				walk_node(w, cmd->def);   /* USING runs now, once */
				continue;
			}
			/* defaults are stored (and fill existing rows now): count them */
			count.sql = w->sql;
			count.ref = w->ref;
			walk_node(&count, cmd->def);
			w->n_left += count.n_left + (int)count.n;
			for (size_t k = 0; k < count.n; k++)
				free(count.v[k].text);
			free(count.v);
		}
		break;
	default:
		break;   /* views, rules, functions, PREPARE...: stored, or nothing to rewrite */
	}
}

/* ---- rewrite_now ----------------------------------------------------------- */

void rewrite_now(const char *sql, const char *ref, struct rewrite_result *out)
{
	PgQueryScanResult sr;
	PgQuery__ScanResult *toks;
	PgQueryProtobufParseResult pr;
	PgQuery__ParseResult *tree = NULL;
	struct rw w = { .sql = sql, .ref = ref };

	memset(out, 0, sizeof(*out));
	toks = scan(sql, &sr);
	if (!toks) {
		scan_free(toks, sr);
		out->error = true;
		return;
	}
	out->max_param = scan_max_param(sql, toks);
	w.toks = toks;
	if (strlen(sql) >= DEPTH_CHECK_LEN) {
		struct stmt_info info;

		classify_sql(sql, &info);
		if (info.flags & STMT_F_UNANALYSED) {
			scan_free(toks, sr);
			out->error = true;
			return;
		}
	}
	pr = pg_query_parse_protobuf(sql);
	if (pr.error || !(tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len,
	                                                        (const uint8_t *)pr.parse_tree.data))) {
		w.error = true;
	} else {
		for (size_t i = 0; i < tree->n_stmts && !w.error; i++)
			rewrite_stmt(&w, tree->stmts[i]->stmt);
	}
	if (!w.error && w.n > 0 && !(out->sql = splice(sql, w.v, w.n)))
		w.error = true;
	out->error = w.error;
	if (!w.error) {
		out->n_replaced = (int)w.n;
		out->n_left = w.n_left;
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.v[i].text);
	free(w.v);
	if (tree)
		pg_query__parse_result__free_unpacked(tree, NULL);
	pg_query_free_protobuf_parse_result(pr);
	scan_free(toks, sr);
}

void rewrite_result_free(struct rewrite_result *r)
{
	free(r->sql);
	memset(r, 0, sizeof(*r));
}
