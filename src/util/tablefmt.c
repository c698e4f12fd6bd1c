/*
 * tablefmt.c - answers of admin commands as aligned text or JSON lines
 * (tablefmt.h).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/tablefmt.h"

#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT4 23
#define OID_FLOAT8 701

void tf_add(struct tf_out *o, const char *p, size_t n)
{
	if (!o->oom && !buf_append(&o->b, p, n))
		o->oom = true;
}

void tf_str(struct tf_out *o, const char *s)
{
	tf_add(o, s, strlen(s));
}

static void spaces(struct tf_out *o, size_t n)
{
	while (n--)
		tf_add(o, " ", 1);
}

/* A value of the text table: control characters escaped (\n, \t, \xNN) so
 * that one row stays one line.  Appended to O if not NULL; its width. */
static size_t text_value(struct tf_out *o, const char *p, int32_t len)
{
	size_t w = 0;

	for (int32_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		char esc[8];

		if (ch >= 0x20 && ch != 0x7f && ch != '\\') {
			if (o)
				tf_add(o, p + i, 1);
			w++;
			continue;
		}
		if (ch == '\n')
			snprintf(esc, sizeof(esc), "\\n");
		else if (ch == '\t')
			snprintf(esc, sizeof(esc), "\\t");
		else if (ch == '\\')
			snprintf(esc, sizeof(esc), "\\\\");
		else
			snprintf(esc, sizeof(esc), "\\x%02x", ch);
		if (o)
			tf_str(o, esc);
		w += strlen(esc);
	}
	return w;
}

/* A JSON string of P (LEN bytes; UTF-8 passed through). */
static void json_string(struct tf_out *o, const char *p, size_t len)
{
	tf_add(o, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)p[i];
		char esc[8];

		if (ch == '"' || ch == '\\') {
			tf_add(o, "\\", 1);
			tf_add(o, p + i, 1);
		} else if (ch == '\n') {
			tf_str(o, "\\n");
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			tf_str(o, esc);
		} else {
			tf_add(o, p + i, 1);
		}
	}
	tf_add(o, "\"", 1);
}

/* A float8's text as a JSON number when it is one (not NaN or Infinity). */
static bool json_number_ok(const char *p, int32_t len)
{
	char text[64], *end;
	double v;

	if (len <= 0 || (size_t)len >= sizeof(text))
		return false;
	memcpy(text, p, (size_t)len);
	text[len] = 0;
	v = strtod(text, &end);
	return *end == 0 && isfinite(v) && (text[0] == '-' || (text[0] >= '0' && text[0] <= '9'));
}

static void json_value(struct tf_out *o, unsigned type, const struct tf_value *v)
{
	if (v->len < 0) {
		tf_str(o, "null");
		return;
	}
	switch (type) {
	case OID_BOOL:
		tf_str(o, v->len == 1 && v->p[0] == 't' ? "true" : "false");
		return;
	case OID_INT4:
	case OID_INT8:
	case OID_FLOAT8:
		if (json_number_ok(v->p, v->len)) {
			tf_add(o, v->p, (size_t)v->len);
			return;
		}
		break;
	default:
		break;
	}
	json_string(o, v->p, (size_t)v->len);
}

void tf_error(struct tf_out *o, const char *sqlstate, const char *message, const char *hint, bool json)
{
	bool has_hint = hint && *hint;

	if (json) {
		tf_str(o, "{\"error\":{\"sqlstate\":");
		json_string(o, sqlstate, strlen(sqlstate));
		tf_str(o, ",\"message\":");
		json_string(o, message, strlen(message));
		if (has_hint) {
			tf_str(o, ",\"hint\":");
			json_string(o, hint, strlen(hint));
		}
		tf_str(o, "}}\n");
		return;
	}
	tf_str(o, "ERROR ");
	tf_str(o, sqlstate);
	tf_str(o, ": ");
	text_value(o, message, (int32_t)strlen(message));
	tf_str(o, "\n");
	if (has_hint) {
		tf_str(o, "HINT: ");
		text_value(o, hint, (int32_t)strlen(hint));
		tf_str(o, "\n");
	}
}

void tf_json(struct tf_out *o, const struct tf_table *t)
{
	struct tf_value vals[TF_MAX_COLS];
	const char *notice;
	size_t pos = 0;
	bool first = true;

	tf_str(o, "{\"tag\":");
	json_string(o, t->tag, strlen(t->tag));
	while ((notice = t->next_notice(t->src, &pos))) {
		tf_str(o, first ? ",\"notices\":[" : ",");
		json_string(o, notice, strlen(notice));
		first = false;
	}
	if (!first)
		tf_str(o, "]");
	tf_str(o, ",\"columns\":[");
	for (int i = 0; i < t->n_cols; i++) {
		if (i)
			tf_str(o, ",");
		json_string(o, t->col_name[i], strlen(t->col_name[i]));
	}
	tf_str(o, "],\"rows\":[\n");
	pos = 0;
	first = true;
	while (t->n_cols && t->next_row(t->src, &pos, vals)) {
		if (!first)
			tf_str(o, ",\n");
		tf_str(o, "[");
		for (int i = 0; i < t->n_cols; i++) {
			if (i)
				tf_str(o, ",");
			json_value(o, t->col_type[i], &vals[i]);
		}
		tf_str(o, "]");
		first = false;
	}
	tf_str(o, first ? "]}\n" : "\n]}\n");
}

void tf_text(struct tf_out *o, const struct tf_table *t)
{
	struct tf_value vals[TF_MAX_COLS];
	size_t width[TF_MAX_COLS];
	const char *notice;
	size_t pos = 0;

	while ((notice = t->next_notice(t->src, &pos))) {
		tf_str(o, "NOTICE: ");
		text_value(o, notice, (int32_t)strlen(notice));
		tf_str(o, "\n");
	}
	if (t->n_cols) {
		for (int i = 0; i < t->n_cols; i++)
			width[i] = strlen(t->col_name[i]);
		for (pos = 0; t->next_row(t->src, &pos, vals);) {
			for (int i = 0; i < t->n_cols; i++) {
				size_t w = text_value(NULL, vals[i].p, vals[i].len);

				if (w > width[i])
					width[i] = w;
			}
		}
		for (int i = 0; i < t->n_cols; i++) {
			tf_str(o, i ? " | " : "");
			tf_str(o, t->col_name[i]);
			if (i + 1 < t->n_cols)
				spaces(o, width[i] - strlen(t->col_name[i]));
		}
		tf_str(o, "\n");
		for (int i = 0; i < t->n_cols; i++) {
			tf_str(o, i ? "-+-" : "");
			for (size_t k = 0; k < width[i]; k++)
				tf_add(o, "-", 1);
		}
		tf_str(o, "\n");
		for (pos = 0; t->next_row(t->src, &pos, vals);) {
			for (int i = 0; i < t->n_cols; i++) {
				size_t w = text_value(NULL, vals[i].p, vals[i].len);

				tf_str(o, i ? " | " : "");
				text_value(o, vals[i].p, vals[i].len);
				if (i + 1 < t->n_cols)
					spaces(o, width[i] - w);
			}
			tf_str(o, "\n");
		}
	}
	tf_str(o, t->tag);
	tf_str(o, "\n");
}
