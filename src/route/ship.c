/*
 * ship.c - row shipping: analysis of a write statement with libpg_query,
 * the RETURNING addition, and the SQL that applies the shipped rows on the
 * other nodes (include/pgchorus/ship.h, doc/determinism.md).
 *
 * Owns: nothing beyond the strings of a struct ship_table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "pgchorus/classify.h"
#include "pgchorus/pgq_walk.h"
#include "pgchorus/ship.h"

static bool buf_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

static const char *node_str(const PgQuery__Node *n)
{
	return n && n->node_case == PG_QUERY__NODE__NODE_STRING ? n->string->sval : NULL;
}

static bool copy_name(char *dst, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= SHIP_NAME_MAX)
		return false;
	memcpy(dst, src ? src : "", n + 1);
	return true;
}

static bool list_add(char *list, uint16_t *len, const char *s)
{
	size_t n = strlen(s) + 1;

	if (*len + n > SHIP_LIST_MAX)
		return false;
	memcpy(list + *len, s, n);
	*len = (uint16_t)(*len + n);
	return true;
}

/* ---- analysis -------------------------------------------------------------- */

static void find_dml(void *arg, const ProtobufCMessage *m);

/* A WITH that writes (WITH d AS (DELETE ...) INSERT ...): its writes would
 * happen on the primary only; such statements run as text everywhere. */
static bool with_writes(const PgQuery__WithClause *w)
{
	bool dml = false;

	if (w)
		for (size_t i = 0; i < w->n_ctes; i++)
			find_dml(&dml, &w->ctes[i]->base);
	return dml;
}

struct scan {
	struct ship_stmt *st;
	bool plain;       /* no function call, subquery or column reference met */
	bool ok;
};

/* The sequence named by nextval/setval's first argument: 'name' or 'name'::regclass. */
static const char *seq_literal(const PgQuery__FuncCall *fc)
{
	const PgQuery__Node *a = fc->n_args ? fc->args[0] : NULL;

	if (a && a->node_case == PG_QUERY__NODE__NODE_TYPE_CAST)
		a = a->type_cast->arg;
	if (a && a->node_case == PG_QUERY__NODE__NODE_A_CONST && a->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL)
		return a->a_const->sval->sval;
	return NULL;
}

/* now() and transaction_timestamp(): every node reads the primary's transaction time (rnow.c). */
static bool is_txn_time(const PgQuery__FuncCall *fc, const char *name, const char *schema)
{
	return fc->n_args == 0 && (!schema || strcmp(schema, "pg_catalog") == 0) &&
	       (strcmp(name, "now") == 0 || strcmp(name, "transaction_timestamp") == 0);
}

static void scan_func(struct scan *s, const PgQuery__FuncCall *fc)
{
	const char *name = fc->n_funcname ? node_str(fc->funcname[fc->n_funcname - 1]) : NULL;
	const char *schema = fc->n_funcname >= 2 ? node_str(fc->funcname[fc->n_funcname - 2]) : NULL;

	/* Only what the operator declared immutable (immutable_functions)
	 * keeps an INSERT ... VALUES plain: any other function may be volatile. */
	if (!name || (!classify_fn_immutable(schema, name, fc->n_args) && !is_txn_time(fc, name, schema)))
		s->plain = false;
	if (name && classify_fn_volatile(schema, name, fc->n_args) && !is_txn_time(fc, name, schema))
		s->st->flags |= SHIP_F_VOLATILE | SHIP_F_VOLATILE_FN;
	if (name && (strcmp(name, "lo_create") == 0 || strcmp(name, "lo_creat") == 0 ||
		     strcmp(name, "lo_from_bytea") == 0 || strcmp(name, "lo_import") == 0))
		s->st->flags |= SHIP_F_LO_CREATE;
	if (!name || (strcmp(name, "nextval") != 0 && strcmp(name, "setval") != 0))
		return;
	const char *seq = seq_literal(fc);

	if (!seq) {
		s->st->flags |= SHIP_F_SEQ_UNKNOWN;
		return;
	}
	/* the same name twice is captured once */
	for (uint16_t at = 0; at < s->st->seqs_len; at += (uint16_t)(strlen(s->st->seqs + at) + 1))
		if (strcmp(s->st->seqs + at, seq) == 0)
			return;
	if (!list_add(s->st->seqs, &s->st->seqs_len, seq))
		s->ok = false;
}

static void scan_walk(void *arg, const ProtobufCMessage *m)
{
	struct scan *s = arg;
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (d == &pg_query__func_call__descriptor)
		scan_func(s, (const PgQuery__FuncCall *)m);
	if (d == &pg_query__sub_link__descriptor)
		s->st->flags |= SHIP_F_VOLATILE;
	if (d == &pg_query__current_of_expr__descriptor)
		s->st->flags |= SHIP_F_CURRENT_OF;
	if (d == &pg_query__sub_link__descriptor || d == &pg_query__column_ref__descriptor ||
		 d == &pg_query__select_stmt__descriptor || d == &pg_query__range_var__descriptor)
		s->plain = false;
	pgq_for_each_child(m, scan_walk, arg);
}

static void scan_node(struct scan *s, const PgQuery__Node *n)
{
	if (n)
		scan_walk(s, &n->base);
}

static bool set_target(struct ship_stmt *st, const PgQuery__RangeVar *rv)
{
	if (!rv || !copy_name(st->schema, rv->schemaname) || !copy_name(st->rel, rv->relname))
		return false;
	if (rv->alias && rv->alias->aliasname)
		return copy_name(st->ref, rv->alias->aliasname);
	return copy_name(st->ref, rv->relname);
}

/* INSERT: plain when its rows are VALUES lists of constants and parameters. */
static bool analyze_insert(struct scan *s, const PgQuery__InsertStmt *ins)
{
	struct ship_stmt *st = s->st;

	st->kind = with_writes(ins->with_clause) ? SHIP_WITH : SHIP_INSERT;
	if (!set_target(st, ins->relation))
		return false;
	if (ins->n_returning_list)
		st->flags |= SHIP_F_RETURNING;
	if (ins->on_conflict_clause)
		st->flags |= SHIP_F_ON_CONFLICT;
	s->plain = !ins->with_clause && !ins->on_conflict_clause;
	if (ins->select_stmt) {
		const PgQuery__Node *sel = ins->select_stmt;

		if (sel->node_case == PG_QUERY__NODE__NODE_SELECT_STMT && sel->select_stmt->n_values_lists &&
		    !sel->select_stmt->with_clause) {
			for (size_t i = 0; i < sel->select_stmt->n_values_lists; i++)
				scan_node(s, sel->select_stmt->values_lists[i]);
		} else {
			s->plain = false;
			scan_node(s, sel);
		}
	}
	{
		/* Only looked at for sequences: RETURNING does not change what is written. */
		bool plain = s->plain;

		for (size_t i = 0; i < ins->n_returning_list; i++)
			scan_node(s, ins->returning_list[i]);
		if (ins->on_conflict_clause)
			scan_walk(s, &ins->on_conflict_clause->base);
		if (ins->with_clause)
			scan_walk(s, &ins->with_clause->base);
		s->plain = plain && !ins->with_clause && !ins->on_conflict_clause;
	}
	if (s->plain)
		st->flags |= SHIP_F_PLAIN;
	return true;
}

static bool analyze_update(struct scan *s, const PgQuery__UpdateStmt *up)
{
	struct ship_stmt *st = s->st;

	st->kind = with_writes(up->with_clause) ? SHIP_WITH : SHIP_UPDATE;
	if (!set_target(st, up->relation))
		return false;
	if (up->n_returning_list)
		st->flags |= SHIP_F_RETURNING;
	for (size_t i = 0; i < up->n_target_list; i++) {
		const PgQuery__Node *t = up->target_list[i];

		if (t->node_case != PG_QUERY__NODE__NODE_RES_TARGET || !t->res_target->name ||
		    !list_add(st->set_cols, &st->set_len, t->res_target->name))
			return false;
	}
	scan_walk(s, &up->base);
	return true;
}

static bool analyze_delete(struct scan *s, const PgQuery__DeleteStmt *del)
{
	struct ship_stmt *st = s->st;

	st->kind = with_writes(del->with_clause) ? SHIP_WITH : SHIP_DELETE;
	if (!set_target(st, del->relation))
		return false;
	if (del->n_returning_list)
		st->flags |= SHIP_F_RETURNING;
	scan_walk(s, &del->base);
	return true;
}

/* Any data-modifying WITH below a SELECT: not shipped (no RETURNING to add). */
static void find_dml(void *arg, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (d == &pg_query__insert_stmt__descriptor || d == &pg_query__update_stmt__descriptor ||
	    d == &pg_query__delete_stmt__descriptor || d == &pg_query__merge_stmt__descriptor)
		*(bool *)arg = true;
	else
		pgq_for_each_child(m, find_dml, arg);
}

/* SELECT lo_create(0) or SELECT lo_from_bytea(0, ...) alone: the literal's bytes. */
static bool analyze_lo(const char *sql, const PgQuery__SelectStmt *sel, struct ship_stmt *st)
{
	const PgQuery__Node *t, *a;
	const PgQuery__FuncCall *fc;
	const char *name;
	size_t at, end, len = strlen(sql);

	if (sel->n_target_list != 1 || sel->n_from_clause || sel->where_clause || sel->n_values_lists ||
	    (t = sel->target_list[0])->node_case != PG_QUERY__NODE__NODE_RES_TARGET || !t->res_target->val ||
	    t->res_target->val->node_case != PG_QUERY__NODE__NODE_FUNC_CALL)
		return false;
	fc = t->res_target->val->func_call;
	name = fc->n_funcname ? node_str(fc->funcname[fc->n_funcname - 1]) : NULL;
	if (!name || (strcmp(name, "lo_create") != 0 && strcmp(name, "lo_from_bytea") != 0) || !fc->n_args)
		return false;
	a = fc->args[0];
	if (a->node_case != PG_QUERY__NODE__NODE_A_CONST || a->a_const->val_case != PG_QUERY__A__CONST__VAL_IVAL ||
	    a->a_const->ival->ival != 0 || a->a_const->location < 0)
		return false;
	at = (size_t)a->a_const->location;
	for (end = at; end < len && sql[end] >= '0' && sql[end] <= '9'; end++)
		;
	if (end == at || end - at > 20)
		return false;
	st->kind = SHIP_LO;
	st->lo_at = (uint32_t)at;
	st->lo_len = (uint32_t)(end - at);
	return true;
}

static bool analyze_select(struct scan *s, const char *sql, const PgQuery__SelectStmt *sel)
{
	bool dml = false;

	find_dml(&dml, &sel->base);
	if (dml)
		return false;
	scan_walk(s, &sel->base);
	if (!s->st->seqs_len && analyze_lo(sql, sel, s->st))
		return true;
	if (!s->st->seqs_len || (s->st->flags & SHIP_F_SEQ_UNKNOWN))
		return false;
	s->st->kind = SHIP_SEQ;
	return true;
}

bool ship_analyze(const char *sql, struct ship_stmt *out)
{
	PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (!pr.error)
		ok = ship_analyze_pb(sql, (const uint8_t *)pr.parse_tree.data, pr.parse_tree.len, out);
	pg_query_free_protobuf_parse_result(pr);
	return ok;
}

bool ship_analyze_pb(const char *sql, const uint8_t *pb, size_t len_pb, struct ship_stmt *out)
{
	PgQuery__ParseResult *tree;
	struct scan s = { .st = out, .ok = true };
	bool ok = false;

	memset(out, 0, sizeof(*out));
	tree = pg_query__parse_result__unpack(NULL, len_pb, pb);
	if (tree && tree->n_stmts == 1 && tree->stmts[0]->stmt) {
		const PgQuery__RawStmt *raw = tree->stmts[0];
		const PgQuery__Node *n = raw->stmt;
		size_t len = strlen(sql);

		out->end = raw->stmt_len > 0 ? (uint32_t)(raw->stmt_location + raw->stmt_len) : (uint32_t)len;
		if (out->end <= len) {
			switch (n->node_case) {
			case PG_QUERY__NODE__NODE_INSERT_STMT:
				ok = analyze_insert(&s, n->insert_stmt);
				break;
			case PG_QUERY__NODE__NODE_UPDATE_STMT:
				ok = analyze_update(&s, n->update_stmt);
				break;
			case PG_QUERY__NODE__NODE_DELETE_STMT:
				ok = analyze_delete(&s, n->delete_stmt);
				break;
			case PG_QUERY__NODE__NODE_SELECT_STMT:
				ok = analyze_select(&s, sql, n->select_stmt);
				break;
			case PG_QUERY__NODE__NODE_COPY_STMT: {
				const PgQuery__CopyStmt *cp = n->copy_stmt;

				ok = cp->is_from && (!cp->filename || !*cp->filename) && !cp->is_program && cp->n_attlist > 0 &&
				     set_target(out, cp->relation);
				out->kind = SHIP_COPY;
				break;
			}
			default:
				break;
			}
		}
	}
	if (tree)
		pg_query__parse_result__free_unpacked(tree, NULL);
	if (!ok || !s.ok) {
		memset(out, 0, sizeof(*out));
		return false;
	}
	return true;
}

/* ---- text ------------------------------------------------------------------ */

bool ship_quote_ident(struct buf *out, const char *s)
{
	if (!buf_append(out, "\"", 1))
		return false;
	for (; *s; s++)
		if (!buf_append(out, s, 1) || (*s == '"' && !buf_append(out, "\"", 1)))
			return false;
	return buf_append(out, "\"", 1);
}

bool ship_quote_literal(struct buf *out, const char *s, size_t n)
{
	if (!buf_append(out, "E'", 2))
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((s[i] == '\'' || s[i] == '\\') && !buf_append(out, &s[i], 1))
			return false;
		if (!buf_append(out, &s[i], 1))
			return false;
	}
	return buf_append(out, "'", 1);
}

static bool returning_addition(const struct ship_stmt *st, struct buf *out)
{
	return buf_str(out, (st->flags & SHIP_F_RETURNING) ? ", ROW(" : "\nRETURNING ROW(") &&
	       ship_quote_ident(out, st->ref) && buf_str(out, ".*)::text");
}

bool ship_add_returning(const char *sql, const struct ship_stmt *st, struct buf *out)
{
	return buf_append(out, sql, st->end) && returning_addition(st, out) &&
	       buf_append(out, sql + st->end, strlen(sql + st->end) + 1);
}

int ship_remove_returning(const char *sql, const struct ship_stmt *st, struct buf *out)
{
	struct buf a = { 0 };
	size_t len = strlen(sql);
	int r = -1;

	if (returning_addition(st, &a)) {
		r = 0;
		if (st->end + a.len <= len && memcmp(sql + st->end, a.data, a.len) == 0)
			r = buf_append(out, sql, st->end) &&
			    buf_append(out, sql + st->end + a.len, len - st->end - a.len + 1) ? 1 : -1;
	}
	buf_free(&a);
	return r;
}

bool ship_lookup_sql(const struct ship_stmt *st, struct buf *out)
{
	struct buf name = { 0 };
	bool ok;

	ok = (!st->schema[0] || (ship_quote_ident(&name, st->schema) && buf_append(&name, ".", 1))) &&
	     ship_quote_ident(&name, st->rel);
	ok = ok &&
	     buf_str(out,
		     "SELECT format('%I.%I', n.nspname, c.relname),"
		     " (SELECT string_agg(format('%I', a.attname), ',' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a"
		     "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),"
		     " (SELECT string_agg(format('%I = pgc_s.%I', a.attname, a.attname), ', ' ORDER BY a.attnum)"
		     "  FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
		     "  AND a.attgenerated = '' AND a.attidentity <> 'a' AND (k.indkey IS NULL OR a.attnum <> ALL (k.indkey))),"
		     " (SELECT string_agg(format('pgc_t.%I = pgc_s.%I', a.attname, a.attname), ' AND ')"
		     "  FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = ANY (k.indkey)),"
		     " (SELECT string_agg(format('%I = EXCLUDED.%I', a.attname, a.attname), ', ' ORDER BY a.attnum)"
		     "  FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
		     "  AND a.attgenerated = '' AND a.attidentity <> 'a'),"
		     " (SELECT string_agg(format('%I', a.attname), ',') FROM pg_catalog.pg_attribute a"
		     "  WHERE a.attrelid = c.oid AND a.attnum = ANY (k.indkey)),"
		     " (SELECT string_agg(a.attname, chr(1)) FROM pg_catalog.pg_attribute a"
		     "  WHERE a.attrelid = c.oid AND a.attnum = ANY (k.indkey)),"
		     " (SELECT string_agg(format('%I.%I', sn.nspname, s.relname), chr(1)) FROM pg_catalog.pg_class s"
		     "  JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace WHERE s.relkind = 'S' AND s.oid IN"
		     "  (SELECT d.refobjid FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass"
		     "   AND d.objid IN (SELECT ad.oid FROM pg_catalog.pg_attrdef ad WHERE ad.adrelid = c.oid)"
		     "   UNION SELECT d.objid FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
		     "   AND d.refobjid = c.oid AND d.deptype IN ('a', 'i'))),"
		     " EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attidentity = 'a'"
		     "  AND NOT a.attisdropped),"
		     " EXISTS (SELECT FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef ad"
		     "  ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum WHERE a.attrelid = c.oid AND a.attnum > 0"
		     "  AND NOT a.attisdropped AND a.attgenerated = '' AND (a.attidentity <> ''"
		     "  OR (ad.adbin IS NOT NULL AND ad.adbin::text NOT LIKE '{CONST %'))),"
		     " (SELECT string_agg(CASE WHEN a.attgenerated <> '' THEN 'g' ELSE '-' END"
		     "  || CASE WHEN a.attidentity = 'a' THEN 'a' ELSE '-' END"
		     "  || CASE WHEN a.attnum = ANY (k.indkey) THEN 'k' ELSE '-' END || format('%I', a.attname), chr(1)"
		     "  ORDER BY a.attnum) FROM pg_catalog.pg_attribute a"
		     "  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
		     " c.relkind, pg_catalog.has_table_privilege(c.oid, 'SELECT') AND NOT c.relrowsecurity"
		     " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		     " LEFT JOIN pg_catalog.pg_index k ON k.indrelid = c.oid AND k.indisprimary"
		     " WHERE c.oid = pg_catalog.to_regclass(") &&
	     ship_quote_literal(out, (const char *)name.data, name.len) && buf_append(out, ")", 2);
	buf_free(&name);
	return ok;
}

void ship_table_free(struct ship_table *t)
{
	free(t->qname);
	free(t->cols);
	free(t->set_list);
	free(t->key_cond);
	free(t->conflict_set);
	free(t->key_cols);
	free(t->pk_names);
	free(t->seqs);
	free(t->colspec);
	memset(t, 0, sizeof(*t));
}

bool ship_sets_key(const struct ship_stmt *st, const struct ship_table *t)
{
	if (!t->pk_names)
		return false;
	for (const char *k = t->pk_names; *k; k += strlen(k) + 1)
		for (uint16_t at = 0; at < st->set_len; at += (uint16_t)(strlen(st->set_cols + at) + 1))
			if (strcmp(st->set_cols + at, k) == 0)
				return true;
	return false;
}

int ship_record_fields(const char *s, size_t len, struct buf *out)
{
	size_t i = 1;
	int n = 0;

	if (len < 2 || s[0] != '(' || s[len - 1] != ')')
		return -1;
	if (len == 2)
		return 0; /* a row of no column */
	for (;;) {
		if (s[i] == ',' || s[i] == ')') {
			if (!buf_append(out, "n", 2))
				return -1;
		} else if (s[i] == '"') {
			if (!buf_append(out, "v", 1))
				return -1;
			for (i++;; i++) {
				if (i >= len - 1)
					return -1;
				if (s[i] == '"' && s[i + 1] == '"') {
					i++;
				} else if (s[i] == '"') {
					i++;
					break;
				} else if (s[i] == '\\') {
					i++;
				}
				if (!buf_append(out, &s[i], 1))
					return -1;
			}
			if (!buf_append(out, "", 1))
				return -1;
		} else {
			size_t st = i;

			while (i < len - 1 && s[i] != ',')
				i++;
			if (!buf_append(out, "v", 1) || !buf_append(out, s + st, i - st) || !buf_append(out, "", 1))
				return -1;
		}
		n++;
		if (i >= len - 1)
			return s[i] == ')' && i == len - 1 ? n : -1;
		if (s[i] != ',')
			return -1;
		i++;
	}
}

/* The literal of field F (flag and value, see ship_record_fields). */
static bool field_literal(struct buf *out, const char *f)
{
	return f[0] == 'n' ? buf_str(out, "NULL") : ship_quote_literal(out, f + 1, strlen(f + 1));
}

/* The fields of row R (one per entry of t->colspec), NUL-separated into
 * FIELDS; false: not a row of this table. */
static bool row_fields(const struct ship_table *t, const char *r, struct buf *fields)
{
	int want = 0;

	for (const char *c = t->colspec; *c; c += strlen(c) + 1)
		want++;
	buf_reset(fields);
	return ship_record_fields(r, strlen(r), fields) == want;
}

/* One statement per row image, with literals (needs t->colspec). */
static bool literal_sql(struct buf *out, enum ship_kind kind, const struct ship_table *t, const char *rows,
			uint32_t n, bool on_conflict)
{
	struct buf fields = { 0 };
	const char *r = rows;
	bool ok = true;

	if (kind == SHIP_INSERT) {
		ok = buf_str(out, "INSERT INTO ") && buf_str(out, t->qname) && buf_str(out, " AS pgc_t (") &&
		     buf_str(out, t->cols) && buf_str(out, t->ident_always ? ") OVERRIDING SYSTEM VALUE VALUES " : ") VALUES ");
		for (uint32_t i = 0; ok && i < n; i++, r += strlen(r) + 1) {
			const char *f;
			bool first = true;

			ok = row_fields(t, r, &fields) && buf_str(out, i ? ", (" : "(");
			f = (const char *)fields.data;
			for (const char *c = t->colspec; ok && *c; c += strlen(c) + 1, f += strlen(f) + 1) {
				if (c[0] == 'g')
					continue;
				ok = (first || buf_str(out, ", ")) && field_literal(out, f);
				first = false;
			}
			ok = ok && buf_str(out, ")");
		}
		if (ok && on_conflict)
			ok = buf_str(out, " ON CONFLICT (") && buf_str(out, t->key_cols) &&
			     buf_str(out, t->conflict_set && *t->conflict_set ? ") DO UPDATE SET " : ") DO NOTHING") &&
			     buf_str(out, t->conflict_set ? t->conflict_set : "");
		buf_free(&fields);
		return ok && buf_append(out, "", 1);
	}
	/* UPDATE or DELETE of one row */
	if (n != 1 || !row_fields(t, rows, &fields)) {
		buf_free(&fields);
		return false;
	}
	{
		const char *f = (const char *)fields.data;
		bool first = true;

		ok = kind == SHIP_UPDATE ? buf_str(out, "UPDATE ") && buf_str(out, t->qname) && buf_str(out, " AS pgc_t SET ")
					 : buf_str(out, "DELETE FROM ") && buf_str(out, t->qname) && buf_str(out, " AS pgc_t");
		for (const char *c = t->colspec; ok && kind == SHIP_UPDATE && *c; c += strlen(c) + 1, f += strlen(f) + 1) {
			if (c[0] == 'g' || c[1] == 'a' || c[2] == 'k')
				continue;
			ok = (first || buf_str(out, ", ")) && buf_str(out, c + 3) && buf_str(out, " = ") && field_literal(out, f);
			first = false;
		}
		ok = ok && buf_str(out, " WHERE ");
		first = true;
		f = (const char *)fields.data;
		for (const char *c = t->colspec; ok && *c; c += strlen(c) + 1, f += strlen(f) + 1) {
			if (c[2] != 'k')
				continue;
			ok = (first || buf_str(out, " AND ")) && buf_str(out, "pgc_t.") && buf_str(out, c + 3) &&
			     buf_str(out, " = ") && field_literal(out, f);
			first = false;
		}
	}
	buf_free(&fields);
	return ok && buf_append(out, "", 1);
}

static bool rows_source(struct buf *out, const struct ship_table *t, const char *rows, uint32_t n)
{
	bool ok = buf_str(out, "pg_catalog.unnest(ARRAY[");
	const char *r = rows;

	for (uint32_t i = 0; ok && i < n; i++, r += strlen(r) + 1)
		ok = (!i || buf_str(out, ", ")) && ship_quote_literal(out, r, strlen(r)) && buf_str(out, "::") &&
		     buf_str(out, t->qname);
	return ok && buf_str(out, "]::") && buf_str(out, t->qname) && buf_str(out, "[]) AS pgc_s");
}

bool ship_apply_sql(struct buf *out, enum ship_kind kind, const struct ship_table *t, const char *rows,
		    uint32_t n, bool on_conflict)
{
	bool ok;

	if (t->colspec && *t->colspec && (kind == SHIP_INSERT || n == 1)) {
		size_t mark = out->len;

		if (literal_sql(out, kind, t, rows, n, on_conflict))
			return true;
		out->len = mark; /* a row that does not split as expected: the general form */
	}
	switch (kind) {
	case SHIP_INSERT:
		ok = buf_str(out, "INSERT INTO ") && buf_str(out, t->qname) && buf_str(out, " AS pgc_t (") &&
		     buf_str(out, t->cols) && buf_str(out, t->ident_always ? ") OVERRIDING SYSTEM VALUE SELECT " : ") SELECT ") &&
		     buf_str(out, t->cols) && buf_str(out, " FROM ") && rows_source(out, t, rows, n);
		if (ok && on_conflict)
			ok = buf_str(out, " ON CONFLICT (") && buf_str(out, t->key_cols) &&
			     buf_str(out, t->conflict_set && *t->conflict_set ? ") DO UPDATE SET " : ") DO NOTHING") &&
			     buf_str(out, t->conflict_set ? t->conflict_set : "");
		break;
	case SHIP_UPDATE:
		ok = buf_str(out, "UPDATE ") && buf_str(out, t->qname) && buf_str(out, " AS pgc_t SET ") &&
		     buf_str(out, t->set_list) && buf_str(out, " FROM ") &&
		     rows_source(out, t, rows, n) && buf_str(out, " WHERE ") && buf_str(out, t->key_cond);
		break;
	case SHIP_DELETE:
		ok = buf_str(out, "DELETE FROM ") && buf_str(out, t->qname) && buf_str(out, " AS pgc_t USING ") &&
		     rows_source(out, t, rows, n) && buf_str(out, " WHERE ") && buf_str(out, t->key_cond);
		break;
	default:
		return false;
	}
	return ok && buf_append(out, "", 1);
}

bool ship_setval_sql(struct buf *out, const char *seq, const char *value, bool is_called)
{
	struct buf lit = { 0 };
	bool ok = ship_quote_literal(&lit, seq, strlen(seq)) && buf_append(&lit, "", 1);
	const char *l = (const char *)lit.data;

	/* Never backwards.  Two of these racing on one node may leave the
	 * smaller value; the resolver's sequence sweep settles it (resolver.c). */
	ok = ok && buf_str(out, "SELECT pg_catalog.setval(") && buf_str(out, l) && buf_str(out, ", ") &&
	     buf_str(out, value) && buf_str(out, is_called ? ", true)" : ", false)") &&
	     buf_str(out, " WHERE pg_catalog.has_sequence_privilege(") && buf_str(out, l) &&
	     buf_str(out, ", 'UPDATE') AND COALESCE(pg_catalog.pg_sequence_last_value(") && buf_str(out, l) &&
	     buf_str(out, ") < ") && buf_str(out, value) && buf_str(out, ", true)") && buf_append(out, "", 1);
	buf_free(&lit);
	return ok;
}

bool ship_copy_capture_sql(struct buf *out, const struct ship_table *t)
{
	return buf_str(out, "WITH pgc AS (SELECT ROW(t.*)::text AS r, t.cmin::text::int8 AS c FROM ") &&
	       buf_str(out, t->qname) &&
	       buf_str(out, " t WHERE t.xmin = pg_catalog.pg_current_xact_id()::xid)"
			    " SELECT r FROM pgc WHERE c = (SELECT max(c) FROM pgc)") &&
	       buf_append(out, "", 1);
}

struct fn_names {
	struct buf *out;
	int n, max;
	bool ok;
};

static void fn_names_walk(void *arg, const ProtobufCMessage *m)
{
	struct fn_names *f = arg;

	if (m->descriptor == &pg_query__func_call__descriptor) {
		const PgQuery__FuncCall *fc = (const PgQuery__FuncCall *)m;
		const char *name = fc->n_funcname ? node_str(fc->funcname[fc->n_funcname - 1]) : NULL;
		const char *schema = fc->n_funcname >= 2 ? node_str(fc->funcname[fc->n_funcname - 2]) : NULL;
		bool seen = false;

		if (name && !(schema && strcmp(schema, "pg_catalog") == 0) && !classify_fn_volatile(schema, name, fc->n_args) &&
		    !classify_fn_immutable(schema, name, fc->n_args)) {
			for (size_t at = 0; at < f->out->len; at += strlen((const char *)f->out->data + at) + 1)
				if (strcmp((const char *)f->out->data + at, name) == 0)
					seen = true;
			if (!seen && f->n++ < f->max && !buf_append(f->out, name, strlen(name) + 1))
				f->ok = false;
		}
	}
	pgq_for_each_child(m, fn_names_walk, arg);
}

bool ship_other_functions(const char *sql, struct buf *out, int max)
{
	PgQueryProtobufParseResult pr = pg_query_parse_protobuf(sql);
	PgQuery__ParseResult *tree = NULL;
	struct fn_names f = { .out = out, .max = max, .ok = true };

	if (!pr.error)
		tree = pg_query__parse_result__unpack(NULL, pr.parse_tree.len, (const uint8_t *)pr.parse_tree.data);
	if (tree)
		fn_names_walk(&f, &tree->base);
	else
		f.ok = false;
	if (tree)
		pg_query__parse_result__free_unpacked(tree, NULL);
	pg_query_free_protobuf_parse_result(pr);
	return f.ok && f.n > 0 && f.n <= max;
}

bool ship_fn_lookup_sql(struct buf *out, const char *names, size_t len)
{
	bool ok = buf_str(out, "SELECT n, EXISTS (SELECT FROM pg_catalog.pg_proc p WHERE p.proname = n"
			       " AND p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace AND p.provolatile = 'v')"
			       " FROM pg_catalog.unnest(ARRAY[");

	for (size_t at = 0; ok && at < len; at += strlen(names + at) + 1)
		ok = (!at || buf_str(out, ", ")) && ship_quote_literal(out, names + at, strlen(names + at));
	return ok && buf_str(out, "]::pg_catalog.name[]) AS n") && buf_append(out, "", 1);
}

bool ship_seq_capture_sql(struct buf *out, const char *seqs, size_t len)
{
	bool ok = true;
	size_t at = 0;

	for (; ok && at < len; at += strlen(seqs + at) + 1) {
		const char *s = seqs + at;

		/* never an error in the client's transaction: a value it may not read is not shipped */
		ok = buf_str(out, at ? " UNION ALL SELECT " : "SELECT ") && ship_quote_literal(out, s, strlen(s)) &&
		     buf_str(out, ", CASE WHEN pg_catalog.has_sequence_privilege(") &&
		     ship_quote_literal(out, s, strlen(s)) &&
		     buf_str(out, ", 'SELECT, USAGE') THEN pg_catalog.pg_sequence_last_value(") &&
		     ship_quote_literal(out, s, strlen(s)) && buf_str(out, ")::text END");
	}
	return ok && buf_append(out, "", 1);
}
