/*
 * classify.c - statement classification with libpg_query.
 *
 * A string is parsed with pg_query_parse_protobuf(); each of its statements
 * is unpacked with protobuf-c and classified in two steps:
 *   - the kind of the top-level statement gives a base class (a switch on
 *     the node type: this is where PostgreSQL's statement kinds are named);
 *   - a generic walk over the whole tree, driven by the protobuf-c message
 *     descriptors, finds what can hide anywhere: data-modifying CTEs,
 *     locking clauses, calls of writing or non-deterministic functions,
 *     temporary relations.  No node type can be forgotten: every message
 *     field of every node is followed.
 *
 * Deep trees: libpg_query and protobuf-c recurse once per tree level, and
 * protobuf_c_message_unpack() uses about 1 KB of stack per level, so
 * "SELECT 1+1+...+1" with a few thousand terms would overflow a worker's
 * stack.  Before parsing a long string, an upper bound of its tree depth is
 * computed from its tokens (pg_query_scan is iterative); before unpacking a
 * statement, the real depth is measured on the protobuf encoding without
 * recursion.  What is too deep is reported STMT_F_UNANALYSED.
 *
 * Owns: the function lists (global, immutable tables published with an
 * atomic pointer: no lock on the per-statement path) and the caches' memory.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "pgchorus/classify.h"
#include "pgchorus/hmap.h"
#include "pgchorus/pgq_walk.h"

/* ---- limits --------------------------------------------------------------- */

/* Deepest protobuf message nesting unpacked (~1 KB of stack per level). */
#define UNPACK_MAX_DEPTH 2000
/* Largest token-based depth bound handed to libpg_query (~100 B per level). */
#define PARSE_MAX_DEPTH 20000
/*
 * The token bound: each token adds at most DB_TOKEN levels; an item of a
 * comma (or AND/OR) separated list adds DB_ITEM wrapper levels, a
 * parenthesized group DB_GROUP, a statement DB_STMT.  On statements of 40
 * shapes (operators, subqueries, calls, arrays, casts, CASE, joins, set
 * operations...) nested up to 500 deep, the real depth was at most half of
 * the bound.  test_classify_deep_statements runs 15 shapes up to 100,000
 * deep on a 4 MB stack.
 */
#define DB_TOKEN 4
#define DB_ITEM 4
#define DB_GROUP 8
#define DB_STMT 8
/* Strings shorter than this cannot exceed PARSE_MAX_DEPTH: no scan needed. */
#define SCAN_MIN_LEN ((PARSE_MAX_DEPTH - DB_STMT) / (DB_TOKEN + DB_ITEM + DB_GROUP))

/* CURSOR_OPT_HOLD of PostgreSQL's parsenodes.h (DeclareCursorStmt.options). */
#define PG_CURSOR_OPT_HOLD 0x0020

/* ---- function lists ------------------------------------------------------- */

enum {
	FN_WRITE = 1u << 0,      /* the statement becomes a WRITE */
	FN_SESSION = 1u << 1,    /* ...a SESSION statement */
	FN_VOLATILE = 1u << 2,   /* result differs between nodes */
	FN_NOW = 1u << 3,        /* transaction time (implies FN_VOLATILE) */
	FN_NOTIFY = 1u << 4,
	FN_ADVISORY = 1u << 5,
	FN_SEQUENCE = 1u << 6,
	FN_LO = 1u << 7,
	FN_SET_CONFIG = 1u << 8, /* set_config(name, value, is_local) */
	FN_SAFE = 1u << 9,       /* operator's immutable list: drop FN_VOLATILE/FN_NOW */
};

struct fn_entry {
	const char *schema;      /* NULL: any schema */
	const char *name;
	int nargs;               /* -1: any number of arguments */
	unsigned fl;
};

#define W FN_WRITE
#define V FN_VOLATILE
#define NOW (FN_VOLATILE | FN_NOW)
#define LO (FN_WRITE | FN_LO)
#define ADV (FN_WRITE | FN_ADVISORY)
static const struct fn_entry builtin_fns[] = {
	/* sequences: nextval's result depends on the order of the callers */
	{ NULL, "nextval", -1, W | V | FN_SEQUENCE },
	{ NULL, "setval", -1, W | FN_SEQUENCE },
	{ NULL, "currval", -1, V | FN_SEQUENCE },
	{ NULL, "lastval", -1, V | FN_SEQUENCE },
	/* large objects: new OIDs differ between nodes; descriptors are state */
	{ NULL, "lo_creat", -1, LO | V },
	{ NULL, "lo_create", -1, LO | V },
	{ NULL, "lo_import", -1, LO | V },
	{ NULL, "lo_from_bytea", -1, LO | V },
	{ NULL, "lo_export", -1, LO },
	{ NULL, "lo_unlink", -1, LO },
	{ NULL, "lo_put", -1, LO },
	{ NULL, "lo_open", -1, LO },
	{ NULL, "lo_close", -1, LO },
	{ NULL, "loread", -1, LO },
	{ NULL, "lowrite", -1, LO },
	{ NULL, "lo_lseek", -1, LO },
	{ NULL, "lo_lseek64", -1, LO },
	{ NULL, "lo_tell", -1, LO },
	{ NULL, "lo_tell64", -1, LO },
	{ NULL, "lo_truncate", -1, LO },
	{ NULL, "lo_truncate64", -1, LO },
	{ NULL, "lo_get", -1, FN_LO },
	/* advisory locks */
	{ NULL, "pg_advisory_lock", -1, ADV },
	{ NULL, "pg_advisory_lock_shared", -1, ADV },
	{ NULL, "pg_advisory_xact_lock", -1, ADV },
	{ NULL, "pg_advisory_xact_lock_shared", -1, ADV },
	{ NULL, "pg_try_advisory_lock", -1, ADV },
	{ NULL, "pg_try_advisory_lock_shared", -1, ADV },
	{ NULL, "pg_try_advisory_xact_lock", -1, ADV },
	{ NULL, "pg_try_advisory_xact_lock_shared", -1, ADV },
	{ NULL, "pg_advisory_unlock", -1, ADV },
	{ NULL, "pg_advisory_unlock_shared", -1, ADV },
	{ NULL, "pg_advisory_unlock_all", -1, ADV },
	/* other side effects */
	{ NULL, "pg_logical_emit_message", -1, W },
	{ NULL, "pg_notify", -1, FN_SESSION | FN_NOTIFY },
	{ NULL, "set_config", -1, FN_SESSION | FN_SET_CONFIG },
	{ NULL, "setseed", -1, FN_SESSION },
	/* non-deterministic */
	{ NULL, "random", -1, V },
	{ NULL, "random_normal", -1, V },
	{ NULL, "gen_random_uuid", -1, V },
	{ NULL, "uuid_generate_v1", -1, V },
	{ NULL, "uuid_generate_v1mc", -1, V },
	{ NULL, "uuid_generate_v4", -1, V },
	{ NULL, "gen_random_bytes", -1, V },
	{ NULL, "gen_salt", -1, V },
	{ NULL, "clock_timestamp", -1, V },
	{ NULL, "timeofday", -1, V },
	{ NULL, "statement_timestamp", -1, V },
	{ NULL, "age", 1, V },   /* age(x) is relative to the current date or xid */
	{ NULL, "txid_current", -1, V },
	{ NULL, "txid_current_if_assigned", -1, V },
	{ NULL, "txid_current_snapshot", -1, V },
	{ NULL, "pg_current_xact_id", -1, V },
	{ NULL, "pg_current_xact_id_if_assigned", -1, V },
	{ NULL, "pg_current_snapshot", -1, V },
	{ NULL, "pg_current_wal_lsn", -1, V },
	{ NULL, "pg_current_wal_insert_lsn", -1, V },
	{ NULL, "pg_backend_pid", -1, V },
	{ NULL, "pg_my_temp_schema", -1, V },
	{ NULL, "pg_postmaster_start_time", -1, V },
	{ NULL, "pg_conf_load_time", -1, V },
	{ NULL, "inet_client_addr", -1, V },
	{ NULL, "inet_client_port", -1, V },
	{ NULL, "inet_server_addr", -1, V },
	{ NULL, "inet_server_port", -1, V },
	/* transaction time; the last five are SQLValueFunction keywords */
	{ NULL, "now", -1, NOW },
	{ NULL, "transaction_timestamp", -1, NOW },
	{ NULL, "current_date", -1, NOW },
	{ NULL, "current_time", -1, NOW },
	{ NULL, "current_timestamp", -1, NOW },
	{ NULL, "localtime", -1, NOW },
	{ NULL, "localtimestamp", -1, NOW },
};
#undef W
#undef V
#undef NOW
#undef LO
#undef ADV

#define N_BUILTIN (sizeof(builtin_fns) / sizeof(builtin_fns[0]))

struct fn_table {
	struct fn_entry *v;      /* sorted by name */
	size_t n;
	char **strings;          /* owned copies of the configured names */
	size_t n_strings;
	struct fn_table *retired; /* the tables it replaced (see fn_current) */
};

static struct fn_entry builtin_sorted[N_BUILTIN];
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
/*
 * The configured functions: an immutable table that workers read without a
 * lock (no lock shared between workers on the per-statement path).  A
 * reload that changes the lists publishes a new table; the old one is kept,
 * linked from the new one, because a worker may still be reading it (a
 * few hundred bytes per change, until exit).
 */
static _Atomic(struct fn_table *) fn_current;
static pthread_mutex_t fn_set_lock = PTHREAD_MUTEX_INITIALIZER; /* classify_set_functions callers */
static atomic_uint fn_generation;          /* bumped by classify_set_functions */
static const struct fn_table fn_empty;

static int fn_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fn_entry *)a)->name, ((const struct fn_entry *)b)->name);
}

static void builtin_init(void)
{
	memcpy(builtin_sorted, builtin_fns, sizeof(builtin_fns));
	qsort(builtin_sorted, N_BUILTIN, sizeof(builtin_sorted[0]), fn_cmp);
}

/* The configured functions now (an empty table before the first configuration). */
static const struct fn_table *fn_config(void)
{
	const struct fn_table *t = atomic_load_explicit(&fn_current, memory_order_acquire);

	return t ? t : &fn_empty;
}

/* First entry of v[0..n) named name, or n. */
static size_t fn_first(const struct fn_entry *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * FN_* flags of a call of [schema.]name with nargs arguments (schema NULL
 * when unqualified).
 */
static unsigned fn_lookup(const char *schema, const char *name, size_t nargs)
{
	const struct fn_table *cfg = fn_config();
	unsigned fl = 0, safe = 0;

	for (size_t i = fn_first(builtin_sorted, N_BUILTIN, name);
	     i < N_BUILTIN && strcmp(builtin_sorted[i].name, name) == 0; i++) {
		if (builtin_sorted[i].nargs < 0 || (size_t)builtin_sorted[i].nargs == nargs)
			fl |= builtin_sorted[i].fl;
	}
	for (size_t i = fn_first(cfg->v, cfg->n, name); i < cfg->n && strcmp(cfg->v[i].name, name) == 0; i++) {
		const struct fn_entry *e = &cfg->v[i];
		bool same_schema = schema && e->schema && strcmp(schema, e->schema) == 0;

		if (e->fl & FN_SAFE) {
			if (!e->schema || same_schema)
				safe = 1;
		} else if (!e->schema || !schema || same_schema) {
			fl |= e->fl;
		}
	}
	if (safe)
		fl &= ~(unsigned)(FN_VOLATILE | FN_NOW);
	return fl;
}

static void fn_table_free(struct fn_table *t)
{
	for (size_t i = 0; i < t->n_strings; i++)
		free(t->strings[i]);
	free(t->strings);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static bool fn_table_equal(const struct fn_table *a, const struct fn_table *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct fn_entry *x = &a->v[i], *y = &b->v[i];

		if (x->fl != y->fl || x->nargs != y->nargs || strcmp(x->name, y->name) != 0 ||
		    !x->schema != !y->schema || (x->schema && strcmp(x->schema, y->schema) != 0))
			return false;
	}
	return true;
}

static size_t list_len(const char *const *list)
{
	size_t n = 0;

	while (list && list[n])
		n++;
	return n;
}

/* Append the entries of list with flags fl; "schema.name" is split at the first dot. */
static bool fn_table_add(struct fn_table *t, const char *const *list, unsigned fl)
{
	for (size_t i = 0; list && list[i]; i++) {
		char *s = strdup(list[i]);
		char *dot;
		struct fn_entry *e;

		if (!s)
			return false;
		t->strings[t->n_strings++] = s;
		e = &t->v[t->n++];
		e->schema = NULL;
		e->name = s;
		e->nargs = -1;
		e->fl = fl;
		dot = strchr(s, '.');
		if (dot) {
			*dot = '\0';
			e->schema = s;
			e->name = dot + 1;
		}
	}
	return true;
}

bool classify_fn_volatile(const char *schema, const char *name, size_t nargs)
{
	unsigned fl;

	pthread_once(&builtin_once, builtin_init);
	fl = fn_lookup(schema, name, nargs);
	return (fl & FN_VOLATILE) != 0;
}

bool classify_fn_immutable(const char *schema, const char *name, size_t nargs)
{
	const struct fn_table *cfg = fn_config();
	bool safe = false;

	for (size_t i = fn_first(cfg->v, cfg->n, name); i < cfg->n && strcmp(cfg->v[i].name, name) == 0; i++) {
		const struct fn_entry *e = &cfg->v[i];

		if ((e->fl & FN_SAFE) && (!e->schema || (schema && strcmp(schema, e->schema) == 0)))
			safe = true;
	}
	(void)nargs;
	return safe;
}

bool classify_set_functions(const char *const *writing, const char *const *volatile_fns,
                            const char *const *immutable_fns)
{
	size_t n = list_len(writing) + list_len(volatile_fns) + list_len(immutable_fns);
	struct fn_table t = { 0 }, *old, *nt;

	if (n) {
		t.v = calloc(n, sizeof(*t.v));
		t.strings = calloc(n, sizeof(*t.strings));
		if (!t.v || !t.strings || !fn_table_add(&t, writing, FN_WRITE) ||
		    !fn_table_add(&t, volatile_fns, FN_VOLATILE) ||
		    !fn_table_add(&t, immutable_fns, FN_SAFE)) {
			fn_table_free(&t);
			return false;
		}
		qsort(t.v, t.n, sizeof(t.v[0]), fn_cmp);
	}
	pthread_once(&builtin_once, builtin_init);
	pthread_mutex_lock(&fn_set_lock);
	old = atomic_load_explicit(&fn_current, memory_order_relaxed);
	if (fn_table_equal(old ? old : &fn_empty, &t)) {
		/* a reload that left the lists as they were: nothing to publish */
		pthread_mutex_unlock(&fn_set_lock);
		fn_table_free(&t);
		return true;
	}
	nt = malloc(sizeof(*nt));
	if (!nt) {
		pthread_mutex_unlock(&fn_set_lock);
		fn_table_free(&t);
		return false;
	}
	*nt = t;
	nt->retired = old;
	atomic_store_explicit(&fn_current, nt, memory_order_release);
	atomic_fetch_add(&fn_generation, 1);
	pthread_mutex_unlock(&fn_set_lock);
	return true;
}

/* ---- small helpers on parse nodes ----------------------------------------- */

static const char *node_str(const PgQuery__Node *n)
{
	return n && n->node_case == PG_QUERY__NODE__NODE_STRING && n->string ? n->string->sval : NULL;
}

static bool is_pg_temp(const char *schema)
{
	return schema && (strcmp(schema, "pg_temp") == 0 || strncmp(schema, "pg_temp_", 8) == 0);
}

/* PostgreSQL's boolean spellings: t, true, y, yes, on, 1 (and prefixes), case-insensitive. */
static bool text_true(const char *s)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	size_t len = strlen(s);

	if (len == 0 || (len < 2 && tolower((unsigned char)s[0]) == 'o'))
		return false;   /* "o" is ambiguous: PostgreSQL rejects it */
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (len <= strlen(yes[i]) && strncasecmp(s, yes[i], len) == 0)
			return true;
	}
	return false;
}

/* Value of a boolean constant; def when n is not a recognisable constant. */
static bool const_bool(const PgQuery__Node *n, bool def)
{
	if (!n)
		return def;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_BOOLEAN:
		return n->boolean->boolval;
	case PG_QUERY__NODE__NODE_INTEGER:
		return n->integer->ival != 0;
	case PG_QUERY__NODE__NODE_STRING:
		return text_true(n->string->sval);
	case PG_QUERY__NODE__NODE_A_CONST:
		switch (n->a_const->val_case) {
		case PG_QUERY__A__CONST__VAL_BOOLVAL:
			return n->a_const->boolval->boolval;
		case PG_QUERY__A__CONST__VAL_IVAL:
			return n->a_const->ival->ival != 0;
		case PG_QUERY__A__CONST__VAL_SVAL:
			return text_true(n->a_const->sval->sval);
		default:
			return def;
		}
	case PG_QUERY__NODE__NODE_TYPE_CAST:
		return const_bool(n->type_cast->arg, def);
	default:
		return def;
	}
}

/* The DefElem named name in opts, or NULL. */
static const PgQuery__DefElem *find_option(PgQuery__Node *const *opts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (opts[i]->node_case == PG_QUERY__NODE__NODE_DEF_ELEM &&
		    strcmp(opts[i]->def_elem->defname, name) == 0)
			return opts[i]->def_elem;
	}
	return NULL;
}

/* Option name given and true ("ANALYZE", "ANALYZE true", "ANALYZE 1"...). */
static bool option_on(PgQuery__Node *const *opts, size_t n, const char *name, bool absent)
{
	const PgQuery__DefElem *d = find_option(opts, n, name);

	return d ? const_bool(d->arg, true) : absent;
}

bool classify_literal_names_now(const char *s)
{
	static const char *const words[] = { "now", "today", "tomorrow", "yesterday" };

	while (*s) {
		size_t len = 0;

		while (s[len] && isalpha((unsigned char)s[len]))
			len++;
		for (size_t i = 0; len && i < sizeof(words) / sizeof(words[0]); i++) {
			if (len == strlen(words[i]) && strncasecmp(s, words[i], len) == 0)
				return true;
		}
		s += len ? len : 1;
	}
	return false;
}

static bool is_time_type(const PgQuery__TypeName *t)
{
	static const char *const types[] = { "timestamp", "timestamptz", "date", "time", "timetz" };
	const char *name;

	if (!t || t->n_names == 0 || !(name = node_str(t->names[t->n_names - 1])))
		return false;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(name, types[i]) == 0)
			return true;
	}
	return false;
}

/* ---- the walk -------------------------------------------------------------- */

struct walk {
	enum stmt_class cls;     /* class of the statement so far */
	uint32_t flags;
	uint32_t vol;            /* STMT_F_VOLATILE/NOW seen: kept if the statement runs everywhere */
	bool executed;           /* false: stored bodies (views, rules, functions...), only
	                          * temporary objects are looked for */
};

static void raise_cls(struct walk *w, enum stmt_class cls)
{
	if (cls > w->cls)
		w->cls = cls;
}

static void apply_fn(struct walk *w, unsigned fl)
{
	if (fl & FN_WRITE)
		raise_cls(w, STMT_WRITE);
	if (fl & FN_SESSION)
		raise_cls(w, STMT_SESSION);
	if (fl & FN_VOLATILE)
		w->vol |= STMT_F_VOLATILE;
	if (fl & FN_NOW)
		w->vol |= STMT_F_NOW;
	if (fl & FN_NOTIFY)
		w->flags |= STMT_F_LISTEN_NOTIFY;
	if (fl & FN_ADVISORY)
		w->flags |= STMT_F_ADVISORY_LOCK;
	if (fl & FN_SEQUENCE)
		w->flags |= STMT_F_SEQUENCE;
	if (fl & FN_LO)
		w->flags |= STMT_F_LARGE_OBJECT;
}

static void visit_func_call(struct walk *w, const PgQuery__FuncCall *fc)
{
	const char *name = fc->n_funcname ? node_str(fc->funcname[fc->n_funcname - 1]) : NULL;
	const char *schema = fc->n_funcname >= 2 ? node_str(fc->funcname[fc->n_funcname - 2]) : NULL;
	unsigned fl;

	if (!name)
		return;
	if (is_pg_temp(schema))
		w->flags |= STMT_F_TEMP;
	fl = fn_lookup(schema, name, fc->n_args);
	if (!fl)
		w->flags |= STMT_F_OTHER_FN;
	apply_fn(w, fl);
	if ((fl & FN_SET_CONFIG) && fc->n_args == 3 && const_bool(fc->args[2], false))
		w->flags |= STMT_F_SET_LOCAL;
}

static void visit_sql_value_function(struct walk *w, const PgQuery__SQLValueFunction *f)
{
	const char *name;

	switch (f->op) {
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_DATE:
		name = "current_date";
		break;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIME:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIME_N:
		name = "current_time";
		break;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP_N:
		name = "current_timestamp";
		break;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIME:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIME_N:
		name = "localtime";
		break;
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP:
	case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP_N:
		name = "localtimestamp";
		break;
	default:
		return;   /* CURRENT_USER, CURRENT_SCHEMA...: the same on every node */
	}
	apply_fn(w, fn_lookup(NULL, name, 0));
}

/* 'now'::timestamptz, DATE 'today'...: evaluated when parsed, like now(). */
static void visit_type_cast(struct walk *w, const PgQuery__TypeCast *tc)
{
	const PgQuery__Node *a = tc->arg;

	if (a && a->node_case == PG_QUERY__NODE__NODE_A_CONST &&
	    a->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL &&
	    is_time_type(tc->type_name) && classify_literal_names_now(a->a_const->sval->sval))
		apply_fn(w, fn_lookup(NULL, "now", 0) & (FN_VOLATILE | FN_NOW));
}

static void visit_range_var(struct walk *w, const PgQuery__RangeVar *rv)
{
	const char *schema = rv->schemaname ? rv->schemaname : "";

	if (strcmp(rv->relpersistence, "t") == 0 || is_pg_temp(rv->schemaname))
		w->flags |= STMT_F_TEMP;
	/* the system catalogs: OIDs and statistics differ between nodes */
	if (strcmp(schema, "pg_catalog") == 0 || strcmp(schema, "information_schema") == 0 ||
	    (!*schema && rv->relname && strncmp(rv->relname, "pg_", 3) == 0))
		w->flags |= STMT_F_CATALOG;
}

/* Look at one message of the tree (a Node wrapper is followed by its member). */
static void visit(struct walk *w, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	/* temporary objects are looked for everywhere, stored bodies included */
	if (d == &pg_query__range_var__descriptor) {
		visit_range_var(w, (const PgQuery__RangeVar *)m);
	} else if (d == &pg_query__create_function_stmt__descriptor) {
		const PgQuery__CreateFunctionStmt *cf = (const PgQuery__CreateFunctionStmt *)m;

		if (cf->n_funcname >= 2 && is_pg_temp(node_str(cf->funcname[cf->n_funcname - 2])))
			w->flags |= STMT_F_TEMP;
	} else if (d == &pg_query__partition_cmd__descriptor) {
		if (((const PgQuery__PartitionCmd *)m)->concurrent)
			raise_cls(w, STMT_NO_TXN_BLOCK);   /* DETACH PARTITION ... CONCURRENTLY */
	}
	if (!w->executed)
		return;

	if (d == &pg_query__func_call__descriptor) {
		visit_func_call(w, (const PgQuery__FuncCall *)m);
	} else if (d == &pg_query__sqlvalue_function__descriptor) {
		visit_sql_value_function(w, (const PgQuery__SQLValueFunction *)m);
	} else if (d == &pg_query__type_cast__descriptor) {
		visit_type_cast(w, (const PgQuery__TypeCast *)m);
	} else if (d == &pg_query__insert_stmt__descriptor || d == &pg_query__update_stmt__descriptor ||
	           d == &pg_query__delete_stmt__descriptor || d == &pg_query__merge_stmt__descriptor) {
		raise_cls(w, STMT_WRITE);   /* also inside WITH */
	} else if (d == &pg_query__locking_clause__descriptor) {
		raise_cls(w, STMT_WRITE);   /* also in subqueries: rows get locked */
		w->flags |= STMT_F_LOCKING;
		/* SKIP LOCKED skips what other sessions of that node hold */
		if (((const PgQuery__LockingClause *)m)->wait_policy == PG_QUERY__LOCK_WAIT_POLICY__LockWaitSkip)
			w->vol |= STMT_F_VOLATILE;
	} else if (d == &pg_query__select_stmt__descriptor) {
		const PgQuery__SelectStmt *sel = (const PgQuery__SelectStmt *)m;

		/* which rows LIMIT keeps depends on each node's physical order */
		if ((sel->limit_count || sel->limit_offset) && sel->n_sort_clause == 0)
			w->vol |= STMT_F_VOLATILE;
	} else if (d == &pg_query__range_table_sample__descriptor) {
		if (!((const PgQuery__RangeTableSample *)m)->repeatable)
			w->vol |= STMT_F_VOLATILE;
	} else if (d == &pg_query__into_clause__descriptor) {
		raise_cls(w, STMT_DDL);     /* SELECT INTO creates a table */
	} else if (d == &pg_query__execute_stmt__descriptor) {
		raise_cls(w, STMT_WRITE);   /* CREATE TABLE ... AS EXECUTE */
		w->flags |= STMT_F_EXECUTE;
	}
}

/*
 * Visit m and everything below it (arg: the struct walk).  The depth was
 * checked before unpacking (UNPACK_MAX_DEPTH), so the recursion is bounded.
 */
static void walk(void *arg, const ProtobufCMessage *m)
{
	visit(arg, m);
	pgq_for_each_child(m, walk, arg);
}

static void walk_node(struct walk *w, const PgQuery__Node *n, bool executed)
{
	bool saved = w->executed;

	if (!n)
		return;
	w->executed = executed;
	walk(w, &n->base);
	w->executed = saved;
}

/* ---- top-level statements -------------------------------------------------- */

static void classify_transaction(struct walk *w, const PgQuery__TransactionStmt *t)
{
	raise_cls(w, STMT_TXN);
	switch (t->kind) {
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
		w->flags |= STMT_F_TXN_BEGIN;
		break;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
		w->flags |= STMT_F_TXN_COMMIT | (t->chain ? STMT_F_TXN_BEGIN : 0);
		break;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
		w->flags |= STMT_F_TXN_ROLLBACK | (t->chain ? STMT_F_TXN_BEGIN : 0);
		break;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT:
		w->flags |= STMT_F_SAVEPOINT;
		break;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE:
		w->flags |= STMT_F_RELEASE;
		break;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO:
		w->flags |= STMT_F_ROLLBACK_TO;
		break;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE:
		w->flags |= STMT_F_PREPARE_TXN;
		break;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
		w->flags |= STMT_F_COMMIT_PREPARED;
		break;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
		w->flags |= STMT_F_ROLLBACK_PREPARED;
		break;
	default:
		break;
	}
}

static void classify_copy(struct walk *w, const PgQuery__CopyStmt *c)
{
	raise_cls(w, c->is_from ? STMT_WRITE : STMT_READ);
	w->flags |= c->is_from ? STMT_F_COPY_FROM : STMT_F_COPY_TO;
	if (c->is_program || c->filename[0])
		w->flags |= STMT_F_COPY_FILE;
	if (c->relation)
		visit_range_var(w, c->relation);
	walk_node(w, c->query, true);          /* COPY (query) TO: the query decides */
	walk_node(w, c->where_clause, true);   /* COPY FROM ... WHERE */
}

static void classify_reindex(struct walk *w, const PgQuery__ReindexStmt *r)
{
	bool many = r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SCHEMA ||
	            r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SYSTEM ||
	            r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_DATABASE;

	raise_cls(w, many || option_on(r->params, r->n_params, "concurrently", false) ?
	          STMT_NO_TXN_BLOCK : STMT_DDL);
	if (r->relation)
		visit_range_var(w, r->relation);
}

/* CREATE/ALTER SUBSCRIPTION refuse a transaction block when they touch the publisher. */
static void classify_alter_subscription(struct walk *w, const PgQuery__AlterSubscriptionStmt *s)
{
	switch (s->kind) {
	case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_REFRESH:
		raise_cls(w, STMT_NO_TXN_BLOCK);
		break;
	case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_SET_PUBLICATION:
	case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_ADD_PUBLICATION:
	case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_DROP_PUBLICATION:
		raise_cls(w, option_on(s->options, s->n_options, "refresh", true) ?
		          STMT_NO_TXN_BLOCK : STMT_DDL);
		break;
	default:
		raise_cls(w, STMT_DDL);
		break;
	}
}

/* DROP ... pg_temp.x: the objects are lists of names. */
static void classify_drop(struct walk *w, const PgQuery__DropStmt *d)
{
	raise_cls(w, d->concurrent ? STMT_NO_TXN_BLOCK : STMT_DDL);
	for (size_t i = 0; i < d->n_objects; i++) {
		const PgQuery__Node *o = d->objects[i];

		if (o->node_case == PG_QUERY__NODE__NODE_LIST && o->list->n_items >= 2 &&
		    is_pg_temp(node_str(o->list->items[o->list->n_items - 2])))
			w->flags |= STMT_F_TEMP;
	}
}

static void classify_node(struct walk *w, const PgQuery__Node *n);

static void classify_explain(struct walk *w, const PgQuery__ExplainStmt *e)
{
	/* only EXPLAIN ANALYZE runs the statement */
	if (option_on(e->options, e->n_options, "analyze", false) && e->query)
		classify_node(w, e->query);
	else
		raise_cls(w, STMT_READ);
}

static void classify_node(struct walk *w, const PgQuery__Node *n)
{
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_SELECT_STMT:
		raise_cls(w, STMT_READ);
		walk_node(w, n, true);
		break;
	case PG_QUERY__NODE__NODE_INSERT_STMT:
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
	case PG_QUERY__NODE__NODE_DELETE_STMT:
	case PG_QUERY__NODE__NODE_MERGE_STMT:
	case PG_QUERY__NODE__NODE_CALL_STMT:
	case PG_QUERY__NODE__NODE_DO_STMT:
		raise_cls(w, STMT_WRITE);
		walk_node(w, n, true);
		break;
	case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
		classify_explain(w, n->explain_stmt);
		break;
	case PG_QUERY__NODE__NODE_COPY_STMT:
		classify_copy(w, n->copy_stmt);
		break;
	case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
		classify_transaction(w, n->transaction_stmt);
		break;
	case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
		raise_cls(w, STMT_SESSION);
		/* SET LOCAL, SET TRANSACTION [SNAPSHOT] last until the end of the transaction */
		if (n->variable_set_stmt->is_local || strcmp(n->variable_set_stmt->name, "TRANSACTION") == 0 ||
		    strcmp(n->variable_set_stmt->name, "TRANSACTION SNAPSHOT") == 0)
			w->flags |= STMT_F_SET_LOCAL;
		break;
	case PG_QUERY__NODE__NODE_CONSTRAINTS_SET_STMT:
		raise_cls(w, STMT_SESSION);
		w->flags |= STMT_F_SET_LOCAL;
		break;
	case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
		raise_cls(w, STMT_READ);
		break;
	case PG_QUERY__NODE__NODE_PREPARE_STMT:
	case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
	case PG_QUERY__NODE__NODE_LOAD_STMT:
		raise_cls(w, STMT_SESSION);
		break;
	case PG_QUERY__NODE__NODE_EXECUTE_STMT:
		raise_cls(w, STMT_WRITE);   /* what was prepared is not known here */
		w->flags |= STMT_F_EXECUTE;
		walk_node(w, n, true);      /* the parameters */
		break;
	case PG_QUERY__NODE__NODE_LISTEN_STMT:
	case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
	case PG_QUERY__NODE__NODE_NOTIFY_STMT:
		raise_cls(w, STMT_SESSION);
		w->flags |= STMT_F_LISTEN_NOTIFY;
		break;
	case PG_QUERY__NODE__NODE_DISCARD_STMT:
		switch (n->discard_stmt->target) {
		case PG_QUERY__DISCARD_MODE__DISCARD_ALL:
			raise_cls(w, STMT_NO_TXN_BLOCK);
			w->flags |= STMT_F_TEMP;
			break;
		case PG_QUERY__DISCARD_MODE__DISCARD_TEMP:
			w->flags |= STMT_F_TEMP;
			/* fall through */
		default:
			raise_cls(w, STMT_SESSION);
			break;
		}
		break;
	case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
		raise_cls(w, STMT_SESSION);
		w->flags |= STMT_F_CURSOR;
		if (n->declare_cursor_stmt->options & PG_CURSOR_OPT_HOLD)
			w->flags |= STMT_F_WITH_HOLD;
		walk_node(w, n->declare_cursor_stmt->query, true);
		break;
	case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
		raise_cls(w, STMT_SESSION);
		w->flags |= STMT_F_CURSOR;
		break;
	case PG_QUERY__NODE__NODE_FETCH_STMT:
		raise_cls(w, STMT_READ);
		w->flags |= STMT_F_CURSOR;
		break;
	case PG_QUERY__NODE__NODE_LOCK_STMT:
		raise_cls(w, STMT_WRITE);
		w->flags |= STMT_F_LOCKING;
		walk_node(w, n, true);
		break;
	case PG_QUERY__NODE__NODE_VACUUM_STMT:
		/* VACUUM refuses a transaction block; ANALYZE alone does not */
		raise_cls(w, n->vacuum_stmt->is_vacuumcmd ? STMT_NO_TXN_BLOCK : STMT_WRITE);
		walk_node(w, n, false);
		break;
	case PG_QUERY__NODE__NODE_CREATEDB_STMT:
	case PG_QUERY__NODE__NODE_DROPDB_STMT:
	case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
	case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
	case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
	case PG_QUERY__NODE__NODE_DROP_SUBSCRIPTION_STMT:   /* drops the remote slot */
		raise_cls(w, STMT_NO_TXN_BLOCK);
		break;
	case PG_QUERY__NODE__NODE_ALTER_DATABASE_STMT:
		/* ALTER DATABASE ... SET TABLESPACE moves files */
		raise_cls(w, find_option(n->alter_database_stmt->options, n->alter_database_stmt->n_options,
		                         "tablespace") ? STMT_NO_TXN_BLOCK : STMT_DDL);
		break;
	case PG_QUERY__NODE__NODE_CREATE_SUBSCRIPTION_STMT: {
		const PgQuery__CreateSubscriptionStmt *s = n->create_subscription_stmt;
		bool slot = option_on(s->options, s->n_options, "connect", true) &&
		            option_on(s->options, s->n_options, "create_slot", true);

		raise_cls(w, slot ? STMT_NO_TXN_BLOCK : STMT_DDL);
		break;
	}
	case PG_QUERY__NODE__NODE_ALTER_SUBSCRIPTION_STMT:
		classify_alter_subscription(w, n->alter_subscription_stmt);
		break;
	case PG_QUERY__NODE__NODE_INDEX_STMT:
		raise_cls(w, n->index_stmt->concurrent ? STMT_NO_TXN_BLOCK : STMT_DDL);
		walk_node(w, n, false);
		break;
	case PG_QUERY__NODE__NODE_DROP_STMT:
		classify_drop(w, n->drop_stmt);
		break;
	case PG_QUERY__NODE__NODE_REINDEX_STMT:
		classify_reindex(w, n->reindex_stmt);
		break;
	case PG_QUERY__NODE__NODE_CLUSTER_STMT:
		/* CLUSTER without a table goes through the whole database */
		raise_cls(w, n->cluster_stmt->relation ? STMT_DDL : STMT_NO_TXN_BLOCK);
		walk_node(w, n, false);
		break;
	case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
	case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
		/* the query, the new column defaults and USING expressions run now */
		raise_cls(w, STMT_DDL);
		walk_node(w, n, true);
		break;
	default:
		/* every other utility statement; bodies are stored, not run */
		raise_cls(w, STMT_DDL);
		walk_node(w, n, false);
		break;
	}
}

/* ---- depth guards ---------------------------------------------------------- */

static bool pb_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; shift < 64 && *pos < n; shift += 7) {
		uint8_t b = p[(*pos)++];

		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

/* Skip a field of wire type wt at *pos; *len gets the length of a length-delimited one. */
static bool pb_skip(const uint8_t *p, size_t n, size_t *pos, unsigned wt, uint64_t *len)
{
	uint64_t v;

	*len = 0;
	switch (wt) {
	case 0:
		return pb_varint(p, n, pos, &v);
	case 1:
		if (n - *pos < 8)
			return false;
		*pos += 8;
		return true;
	case 2:
		if (!pb_varint(p, n, pos, len) || *len > n - *pos)
			return false;
		return true;   /* *pos is at the start of the payload */
	case 5:
		if (n - *pos < 4)
			return false;
		*pos += 4;
		return true;
	default:
		return false;
	}
}

/*
 * Whether the message of type d encoded in p[0..n) nests no deeper than
 * limit messages (itself included), measured without recursion.
 */
static bool pb_depth_ok(const uint8_t *p, size_t n, const ProtobufCMessageDescriptor *d, size_t limit)
{
	struct { const ProtobufCMessageDescriptor *d; size_t end; } stack[UNPACK_MAX_DEPTH];
	size_t top = 0, pos = 0;

	if (limit > UNPACK_MAX_DEPTH)
		limit = UNPACK_MAX_DEPTH;
	stack[0].d = d;
	stack[0].end = n;
	for (;;) {
		uint64_t tag, len;
		const ProtobufCFieldDescriptor *f;

		if (pos == stack[top].end) {
			if (top == 0)
				return true;
			top--;
			continue;
		}
		if (!pb_varint(p, stack[top].end, &pos, &tag) ||
		    !pb_skip(p, stack[top].end, &pos, (unsigned)(tag & 7), &len))
			return false;
		if ((tag & 7) != 2)
			continue;
		f = protobuf_c_message_descriptor_get_field(stack[top].d, (unsigned)(tag >> 3));
		if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
			if (top + 1 >= limit)
				return false;
			top++;
			stack[top].d = f->descriptor;
			stack[top].end = pos + len;
		} else {
			pos += len;   /* string, bytes or packed numbers */
		}
	}
}

struct db_frame {
	size_t w;       /* tokens of the current item at this level */
	size_t child;   /* deepest group inside the current item */
	size_t best;    /* deepest item of this group so far */
};

static void db_end_item(struct db_frame *f)
{
	size_t item = DB_TOKEN * f->w + f->child + DB_ITEM;

	if (item > f->best)
		f->best = item;
	f->w = f->child = 0;
}

/* Non-empty statements among the tokens (for a string that is not parsed). */
static int count_stmts(const PgQuery__ScanResult *r)
{
	int n = 0;
	bool empty = true;

	for (size_t i = 0; r && i < r->n_tokens; i++) {
		switch (r->tokens[i]->token) {
		case PG_QUERY__TOKEN__SQL_COMMENT:
		case PG_QUERY__TOKEN__C_COMMENT:
			break;
		case PG_QUERY__TOKEN__ASCII_59:
			n += !empty;
			empty = true;
			break;
		default:
			empty = false;
			break;
		}
	}
	return n + !empty;
}

/*
 * Upper bound of the parse tree depth of sql, from its tokens: list items
 * are siblings (max), what is nested inside parentheses adds up (sum).
 * Returns SIZE_MAX when the bound exceeds PARSE_MAX_DEPTH, with the number
 * of statements in *n_stmts; 0 when the scanner fails (the parser will fail
 * the same way, without going deep).
 */
static size_t depth_bound(const char *sql, int *n_stmts)
{
	PgQueryScanResult sr = pg_query_scan(sql);
	PgQuery__ScanResult *r = NULL;
	struct db_frame *fr = NULL;
	size_t max_frames = PARSE_MAX_DEPTH / DB_TOKEN + 1, top = 0, bound = 0;

	*n_stmts = 0;
	if (sr.error)
		goto out;
	r = pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
	fr = calloc(max_frames, sizeof(*fr));
	if (!r || !fr)
		goto too_deep;   /* out of memory: do not risk the parse */
	for (size_t i = 0; i <= r->n_tokens; i++) {
		PgQuery__Token t = i < r->n_tokens ? r->tokens[i]->token : PG_QUERY__TOKEN__ASCII_59;

		switch (t) {
		case PG_QUERY__TOKEN__SQL_COMMENT:
		case PG_QUERY__TOKEN__C_COMMENT:
			break;
		case PG_QUERY__TOKEN__ASCII_40:   /* ( */
		case PG_QUERY__TOKEN__ASCII_91:   /* [ */
			fr[top].w++;
			if (++top >= max_frames)
				goto too_deep;
			memset(&fr[top], 0, sizeof(fr[top]));
			break;
		case PG_QUERY__TOKEN__ASCII_41:   /* ) */
		case PG_QUERY__TOKEN__ASCII_93:   /* ] */
			if (top > 0) {
				size_t g;

				db_end_item(&fr[top]);
				g = fr[top].best + DB_GROUP;
				top--;
				if (g > fr[top].child)
					fr[top].child = g;
			}
			fr[top].w++;
			break;
		case PG_QUERY__TOKEN__ASCII_44:   /* , */
		case PG_QUERY__TOKEN__AND:        /* flattened into one BoolExpr */
		case PG_QUERY__TOKEN__OR:
			db_end_item(&fr[top]);
			break;
		case PG_QUERY__TOKEN__ASCII_59:   /* ; or the end: close what is open */
			while (top > 0) {
				size_t g;

				db_end_item(&fr[top]);
				g = fr[top].best + DB_GROUP;
				top--;
				if (g > fr[top].child)
					fr[top].child = g;
			}
			db_end_item(&fr[0]);
			if (fr[0].best + DB_STMT > bound)
				bound = fr[0].best + DB_STMT;
			memset(&fr[0], 0, sizeof(fr[0]));
			break;
		default:
			fr[top].w++;
			break;
		}
		if (fr[top].w > PARSE_MAX_DEPTH / DB_TOKEN || fr[top].child > PARSE_MAX_DEPTH ||
		    bound > PARSE_MAX_DEPTH)
			goto too_deep;
	}
	goto out;
too_deep:
	bound = SIZE_MAX;
	*n_stmts = count_stmts(r);
out:
	free(fr);
	if (r)
		pg_query__scan_result__free_unpacked(r, NULL);
	pg_query_free_scan_result(sr);
	return bound;
}

/* ---- classify_sql ---------------------------------------------------------- */

static void add_stmt(struct stmt_info *out, const struct walk *w, int *n_writes)
{
	uint32_t flags = w->flags;

	/* non-determinism matters for what every node runs; transaction time
	 * for reads too (now() is one value for the whole transaction, which
	 * spans nodes) */
	if (w->cls >= STMT_SESSION)
		flags |= w->vol;
	else
		flags |= w->vol & STMT_F_NOW;
	if (w->cls == STMT_NO_TXN_BLOCK)
		flags |= STMT_F_NO_TXN_BLOCK;
	if (w->cls >= STMT_WRITE)
		(*n_writes)++;
	if (out->n_stmts == 0 || w->cls > out->cls)
		out->cls = w->cls;
	out->flags |= flags;
	out->n_stmts++;
}

static const struct walk unanalysed = {
	.cls = STMT_WRITE, .flags = STMT_F_UNANALYSED, .vol = STMT_F_VOLATILE,
};

static void classify_raw_stmt(const uint8_t *p, size_t n, struct stmt_info *out, int *n_writes)
{
	PgQuery__RawStmt *rs;
	struct walk w = { .cls = STMT_TXN, .executed = true };

	if (!pb_depth_ok(p, n, &pg_query__raw_stmt__descriptor, UNPACK_MAX_DEPTH) ||
	    !(rs = pg_query__raw_stmt__unpack(NULL, n, p))) {
		add_stmt(out, &unanalysed, n_writes);
		return;
	}
	if (rs->stmt)
		classify_node(&w, rs->stmt);
	pg_query__raw_stmt__free_unpacked(rs, NULL);
	add_stmt(out, &w, n_writes);
}

/* Each RawStmt of the ParseResult encoded in p[0..n) is checked and unpacked on its own. */
static bool classify_result(const uint8_t *p, size_t n, struct stmt_info *out, int *n_writes)
{
	size_t pos = 0;

	while (pos < n) {
		uint64_t tag, len;
		const ProtobufCFieldDescriptor *f;

		if (!pb_varint(p, n, &pos, &tag) || !pb_skip(p, n, &pos, (unsigned)(tag & 7), &len))
			return false;
		if ((tag & 7) != 2)
			continue;
		f = protobuf_c_message_descriptor_get_field(&pg_query__parse_result__descriptor,
		                                            (unsigned)(tag >> 3));
		if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor == &pg_query__raw_stmt__descriptor)
			classify_raw_stmt(p + pos, (size_t)len, out, n_writes);
		pos += len;
	}
	return true;
}

static void set_unanalysed(struct stmt_info *out, int n_stmts)
{
	out->cls = STMT_WRITE;
	out->n_stmts = n_stmts > 0 ? n_stmts : 1;
	out->flags = STMT_F_UNANALYSED | STMT_F_VOLATILE;
}

/* classify_cached_cb(): who else reads the parse tree of the text being classified. */
static __thread classify_pb_fn *pb_fn;
static __thread void *pb_arg;

void classify_sql(const char *sql, struct stmt_info *out)
{
	PgQueryProtobufParseResult pr;
	int n_writes = 0, n_scanned = 0;

	out->cls = STMT_READ;
	out->n_stmts = 0;
	out->flags = 0;
	if (strlen(sql) >= SCAN_MIN_LEN && depth_bound(sql, &n_scanned) == SIZE_MAX) {
		set_unanalysed(out, n_scanned);
		return;
	}
	pr = pg_query_parse_protobuf(sql);
	if (pr.error) {
		/* a syntax error is the server's to report; running out of memory is ours */
		if (strncmp(pr.error->message, "out of memory", 13) == 0)
			set_unanalysed(out, 0);
		else
			out->cls = STMT_UNKNOWN;
		pg_query_free_protobuf_parse_result(pr);
		return;
	}
	pthread_once(&builtin_once, builtin_init);
	if (!classify_result((const uint8_t *)pr.parse_tree.data, pr.parse_tree.len, out, &n_writes))
		set_unanalysed(out, out->n_stmts);
	if (n_writes > 1)
		out->flags |= STMT_F_MULTI_WRITE;
	if (out->n_stmts == 0)
		out->cls = STMT_READ;
	if (pb_fn)
		pb_fn(pb_arg, out, (const uint8_t *)pr.parse_tree.data, pr.parse_tree.len);
	pg_query_free_protobuf_parse_result(pr);
}

/* ---- names ----------------------------------------------------------------- */

const char *stmt_class_name(enum stmt_class cls)
{
	static const char *const names[] = {
		[STMT_TXN] = "TXN", [STMT_READ] = "READ", [STMT_SESSION] = "SESSION",
		[STMT_WRITE] = "WRITE", [STMT_DDL] = "DDL", [STMT_NO_TXN_BLOCK] = "NO_TXN_BLOCK",
		[STMT_UNKNOWN] = "UNKNOWN",
	};

	return (unsigned)cls < sizeof(names) / sizeof(names[0]) ? names[cls] : "?";
}

char *stmt_flags_format(uint32_t flags, char *buf, size_t size)
{
	static const char *const names[] = {
		"TXN_BEGIN", "TXN_COMMIT", "TXN_ROLLBACK", "SAVEPOINT", "RELEASE", "ROLLBACK_TO",
		"PREPARE_TXN", "COMMIT_PREPARED", "ROLLBACK_PREPARED", "NO_TXN_BLOCK", "TEMP",
		"LISTEN_NOTIFY", "WITH_HOLD", "SET_LOCAL", "LOCKING", "VOLATILE", "NOW", "EXECUTE",
		"COPY_FROM", "COPY_TO", "COPY_FILE", "MULTI_WRITE", "CURSOR", "ADVISORY_LOCK",
		"SEQUENCE", "LARGE_OBJECT", "UNANALYSED", "CATALOG", "OTHER_FN",
	};
	size_t used = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	for (unsigned i = 0; i < 32; i++) {
		const char *name = i < sizeof(names) / sizeof(names[0]) ? names[i] : "?";
		size_t len;

		if (!(flags & (1u << i)))
			continue;
		len = strlen(name) + (used ? 1 : 0);
		if (used + len >= size)
			break;
		if (used)
			buf[used++] = '|';
		memcpy(buf + used, name, strlen(name) + 1);
		used += strlen(name);
	}
	return buf;
}

/* ---- cache ----------------------------------------------------------------- */

/* Slots looked at from the home slot of a hash; the oldest of them is replaced. */
#define CACHE_WINDOW 8

bool classify_cache_init(struct classify_cache *c, size_t n_entries, size_t max_text)
{
	size_t cap = CACHE_WINDOW;

	memset(c, 0, sizeof(*c));
	if (n_entries == 0)
		n_entries = 1024;
	while (cap < n_entries && cap <= SIZE_MAX / 2 / sizeof(*c->slots))
		cap *= 2;
	c->slots = calloc(cap, sizeof(*c->slots));
	if (!c->slots)
		return false;
	c->cap = cap;
	c->max_text = max_text ? max_text : 16384;
	c->generation = atomic_load(&fn_generation);
	return true;
}

void classify_cache_clear(struct classify_cache *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		free(c->slots[i].text);
		c->slots[i].text = NULL;
	}
	c->count = 0;
}

void classify_cache_destroy(struct classify_cache *c)
{
	if (c->slots)
		classify_cache_clear(c);
	free(c->slots);
	memset(c, 0, sizeof(*c));
}

/* Classify a copy of sql[0..len) made NUL-terminated; NULL when out of memory. */
static char *classify_copy_text(const char *sql, size_t len, struct stmt_info *out)
{
	char *s = malloc(len + 1);

	if (!s) {
		set_unanalysed(out, 0);
		return NULL;
	}
	memcpy(s, sql, len);
	s[len] = '\0';
	classify_sql(s, out);
	return s;
}

const struct stmt_info *classify_cached_cb(struct classify_cache *c, const char *sql, size_t len,
					   classify_pb_fn *fn, void *arg)
{
	const struct stmt_info *si;

	pb_fn = fn;
	pb_arg = arg;
	si = classify_cached(c, sql, len);
	pb_fn = NULL;
	pb_arg = NULL;
	return si;
}

const struct stmt_info *classify_cached(struct classify_cache *c, const char *sql, size_t len)
{
	unsigned gen = atomic_load(&fn_generation);
	uint64_t h;
	size_t home, victim;
	struct classify_cache_entry *e;
	char *text;

	if (gen != c->generation) {
		/* the function lists changed: every entry may be wrong */
		classify_cache_clear(c);
		c->generation = gen;
	}
	if (len > c->max_text) {
		c->misses++;
		free(classify_copy_text(sql, len, &c->scratch));
		return &c->scratch;
	}
	h = hash_bytes(sql, len);
	home = (size_t)h & (c->cap - 1);
	victim = home;
	for (size_t i = 0; i < CACHE_WINDOW; i++) {
		size_t k = (home + i) & (c->cap - 1);

		e = &c->slots[k];
		if (!e->text) {
			if (c->slots[victim].text)
				victim = k;   /* prefer a free slot */
			continue;
		}
		if (e->hash == h && e->len == len && memcmp(e->text, sql, len) == 0) {
			c->hits++;
			e->last_use = ++c->tick;
			return &e->info;
		}
		if (c->slots[victim].text && e->last_use < c->slots[victim].last_use)
			victim = k;
	}
	c->misses++;
	text = classify_copy_text(sql, len, &c->scratch);
	if (!text)
		return &c->scratch;
	e = &c->slots[victim];
	if (e->text) {
		free(e->text);
		c->evictions++;
		c->count--;
	}
	e->text = text;
	e->len = len;
	e->hash = h;
	e->last_use = ++c->tick;
	e->info = c->scratch;
	c->count++;
	return &e->info;
}
