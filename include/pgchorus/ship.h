/*
 * ship.h - row shipping: what a write statement touches, and the SQL that
 * applies its effect on the other nodes (doc/determinism.md).
 *
 * A write whose effect could differ between nodes (random(), sequences,
 * volatile defaults, a snapshot-dependent WHERE, LIMIT, SKIP LOCKED...) runs
 * on the primary only, with RETURNING ROW(target.*)::text added; the rows it
 * returns are applied on the other nodes by primary key:
 *
 *   INSERT  -> INSERT INTO t (cols) [OVERRIDING SYSTEM VALUE]
 *              SELECT cols FROM unnest(ARRAY[row,...]::t[])
 *              (ON CONFLICT ... -> ON CONFLICT (pk) DO UPDATE SET every column)
 *   UPDATE  -> UPDATE t SET cols = s.cols FROM unnest(...) s WHERE t.pk = s.pk
 *   DELETE  -> DELETE FROM t USING unnest(...) s WHERE t.pk = s.pk
 *
 * The row images are the primary's text output (record_out), read back with
 * the table's row type (record_in), so every type round-trips exactly.
 *
 * ship_analyze() looks at one statement's parse tree (libpg_query);
 * ship_add_returning() splices the RETURNING column into the text at the
 * statement's end (byte positions from the parser); the ship_*_sql()
 * builders make the apply statements from what the catalog lookup
 * (src/repl/rship.c) told about the table.
 */
#ifndef PGCHORUS_SHIP_H
#define PGCHORUS_SHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgchorus/buf.h"

enum ship_kind {
	SHIP_NO,       /* not a statement pgchorus ships */
	SHIP_INSERT,
	SHIP_UPDATE,
	SHIP_DELETE,
	SHIP_SEQ,      /* a SELECT (or other read) calling nextval/setval on literal names */
	SHIP_COPY,     /* COPY ... FROM STDIN with a column list: omitted columns may get volatile defaults */
	SHIP_LO,       /* SELECT lo_create(0) / lo_from_bytea(0, ...): the other nodes get the primary's OID */
	SHIP_WITH,     /* INSERT/UPDATE/DELETE with a data-modifying WITH: runs as text, refused when
	                * its target has volatile defaults or it calls volatile functions */
};

#define SHIP_F_RETURNING   0x01  /* the client's own RETURNING list */
#define SHIP_F_ON_CONFLICT 0x02  /* INSERT ... ON CONFLICT */
#define SHIP_F_PLAIN       0x04  /* INSERT ... VALUES / DEFAULT VALUES of constants and parameters only */
#define SHIP_F_SEQ_UNKNOWN 0x08  /* nextval/setval of a sequence not named by a literal */
#define SHIP_F_LO_CREATE   0x10  /* creates a large object (lo_create, lo_from_bytea, lo_import...) */
#define SHIP_F_VOLATILE    0x20  /* calls a volatile function (classify.h's lists), or has a subquery */
#define SHIP_F_VOLATILE_FN 0x40  /* calls a volatile function (classify.h's lists) */
#define SHIP_F_TEMP        0x80  /* (rship.c) its target is a temporary table: no two-phase commit */
#define SHIP_F_CURRENT_OF  0x100 /* WHERE CURRENT OF a cursor (which moves on the primary only) */

#define SHIP_NAME_MAX 64         /* identifiers: NAMEDATALEN */
#define SHIP_LIST_MAX 512        /* NUL-separated lists */

struct ship_stmt {
	enum ship_kind kind;
	uint32_t flags;
	char schema[SHIP_NAME_MAX];  /* "" when not qualified */
	char rel[SHIP_NAME_MAX];
	char ref[SHIP_NAME_MAX];     /* alias, or rel: how RETURNING names the target row */
	uint32_t end;                /* byte offset where the RETURNING addition goes */
	char set_cols[SHIP_LIST_MAX];/* UPDATE: assigned columns, each NUL-terminated */
	uint16_t set_len;
	char seqs[SHIP_LIST_MAX];    /* sequence names given to nextval/setval as literals */
	uint16_t seqs_len;
	uint32_t lo_at, lo_len;      /* SHIP_LO: the bytes of the literal 0 to replace by the OID */
};

/* Kinds whose text gets the RETURNING addition (ship_add_returning). */
static inline bool ship_kind_returns(enum ship_kind k)
{
	return k == SHIP_INSERT || k == SHIP_UPDATE || k == SHIP_DELETE;
}

/* Analyse SQL (one statement, NUL-terminated).  false: not shippable
 * (several statements, syntax error, a data-modifying WITH in a SELECT,
 * a name too long, out of memory...); *out is then kind SHIP_NO. */
bool ship_analyze(const char *sql, struct ship_stmt *out);
/* The same from the parse tree libpg_query packed for SQL (classify_cached_cb). */
bool ship_analyze_pb(const char *sql, const uint8_t *pb, size_t len, struct ship_stmt *out);

/* SQL with ", ROW(ref.*)::text" (or "\nRETURNING ROW(ref.*)::text") spliced
 * in at st->end, into OUT (appended, NUL-terminated).  false: out of memory. */
bool ship_add_returning(const char *sql, const struct ship_stmt *st, struct buf *out);
/* The reverse: SQL (with the addition) without it into OUT.  1: done, 0: the
 * addition is not where ST says, -1: out of memory. */
int ship_remove_returning(const char *sql, const struct ship_stmt *st, struct buf *out);

/* Append s as an SQL identifier in double quotes. */
bool ship_quote_ident(struct buf *out, const char *s);
/* Append s[0..n) as an E'' literal (valid whatever standard_conforming_strings is). */
bool ship_quote_literal(struct buf *out, const char *s, size_t n);

/* A table as the catalog lookup described it (all text is SQL, quoted). */
struct ship_table {
	char *qname;        /* "schema"."table" */
	char *cols;         /* non-generated columns: "a","b" */
	char *set_list;     /* UPDATE: "a" = pgc_s."a", ... (not key, not generated, not identity ALWAYS) */
	char *key_cond;     /* pgc_t."id" = pgc_s."id" AND ...; NULL: no primary key */
	char *conflict_set; /* "a" = EXCLUDED."a", ... */
	char *key_cols;     /* "id","k" */
	char *pk_names;     /* raw key column names, each NUL-terminated, then an empty one */
	char *seqs;         /* sequences its defaults or identity columns use: "s"."seq", each NUL-terminated, then "" */
	char *colspec;      /* every column in order, each NUL-terminated, then "": 3 flags ('g' generated,
	                     * 'a' identity ALWAYS, 'k' key; '-' otherwise) and the quoted name */
	bool ident_always;  /* has GENERATED ALWAYS AS IDENTITY columns */
	bool volatile_def;  /* has a default that is not a constant (or an identity column) */
	bool exists;
	bool temp;          /* a temporary table */
	bool writable;      /* an ordinary or partitioned table (not a view, foreign table...) */
	bool can_return;    /* the user may read it (RETURNING needs that), no row-level security */
};

void ship_table_free(struct ship_table *t);

/* The lookup query for the table ST names (NUL-terminated into OUT). */
bool ship_lookup_sql(const struct ship_stmt *st, struct buf *out);

/* Does the UPDATE st assign a primary key column of t? */
bool ship_sets_key(const struct ship_stmt *st, const struct ship_table *t);

/*
 * The apply statement for KIND on T, appended to OUT NUL-terminated.  ROWS:
 * N row images as the primary printed them (record_out), each
 * NUL-terminated.  One row (or INSERT): a statement with one literal per
 * column, as cheap for the node as the client's own; several rows: one
 * statement over unnest(ARRAY[...]::t[]).  ON_CONFLICT: an upsert by
 * primary key.
 */
bool ship_apply_sql(struct buf *out, enum ship_kind kind, const struct ship_table *t, const char *rows,
		    uint32_t n, bool on_conflict);

/* record_out text S[0..len) into its fields, appended to OUT: each a flag
 * ('n' NULL, 'v' value) and the value, NUL-terminated.  The number of
 * fields, -1 when S is not a record's text. */
int ship_record_fields(const char *s, size_t len, struct buf *out);

/*
 * Bring sequence SEQ (quoted qualified name) up to VALUE/IS_CALLED on a
 * node without ever moving it back (one statement, no lock: two racing on
 * one node may leave the smaller value until the resolver's sweep).
 */
bool ship_setval_sql(struct buf *out, const char *seq, const char *value, bool is_called);

/* The rows a COPY FROM STDIN just inserted into T in the primary's
 * transaction (the newest command id of its transaction's rows there). */
bool ship_copy_capture_sql(struct buf *out, const struct ship_table *t);

/* The names of the functions SQL calls that classify.h knows nothing of
 * (each NUL-terminated, at most MAX of them); false: none, or cannot tell. */
bool ship_other_functions(const char *sql, struct buf *out, int max);
/* The query telling, for each name of the NUL-separated list, whether a
 * volatile function of that name exists outside pg_catalog. */
bool ship_fn_lookup_sql(struct buf *out, const char *names, size_t len);

/* The capture query run on the primary after a shipped statement: one row
 * (name, last_value, is_called) per sequence of the NUL-separated list. */
bool ship_seq_capture_sql(struct buf *out, const char *seqs, size_t len);

#endif
