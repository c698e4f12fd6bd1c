/*
 * tablefmt.h - an admin command's answer as text lines (src/util/tablefmt.c):
 * the control socket writes it for its clients (ctlsock.c), and pgchorusctl
 * writes the same for an answer of the SQL admin console (libpq), so that
 * both read alike (doc/admin.md, "The control socket").
 *
 * Text: "NOTICE: ..." lines, the aligned table (header, dashes, rows; values
 * with control characters escaped so that a row is one line), the command
 * tag.  JSON: {"tag":..., "notices":[...], "columns":[...], "rows":[...]}
 * with one row a line.  Errors: "ERROR SQLSTATE: message" (and "HINT: ...")
 * or {"error":{"sqlstate":...,"message":...,"hint":...}}.
 */
#ifndef PGCHORUS_TABLEFMT_H
#define PGCHORUS_TABLEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgchorus/buf.h"

#define TF_MAX_COLS 32

/* A value in text format: LEN bytes at P (not NUL-terminated); LEN -1: NULL. */
struct tf_value {
	const char *p;
	int32_t len;
};

/* Where the rows and notices come from: iterators over SRC, *POS from 0. */
struct tf_table {
	const char *tag;
	int n_cols;                       /* at most TF_MAX_COLS */
	const char *col_name[TF_MAX_COLS];
	unsigned col_type[TF_MAX_COLS];   /* type OID: 16 bool, 20 and 23 integers, 701 float8; text else */
	const void *src;
	bool (*next_row)(const void *src, size_t *pos, struct tf_value *vals);
	const char *(*next_notice)(const void *src, size_t *pos);
};

/* An answer being built: out of memory is sticky, checked once at the end. */
struct tf_out {
	struct buf b;
	bool oom;
};

void tf_add(struct tf_out *o, const char *p, size_t n);
void tf_str(struct tf_out *o, const char *s);
void tf_text(struct tf_out *o, const struct tf_table *t);
void tf_json(struct tf_out *o, const struct tf_table *t);
/* HINT may be NULL or "". */
void tf_error(struct tf_out *o, const char *sqlstate, const char *message, const char *hint, bool json);

#endif
