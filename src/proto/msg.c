/*
 * msg.c - builders for the messages pgchorus originates (see msg.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pgchorus/codec.h"
#include "pgchorus/msg.h"

bool msg_error(struct buf *b, const char *severity, const char *sqlstate, const char *fmt, ...)
{
	struct msg_builder mb;
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	builder_begin(&mb, b, 'E');
	builder_byte(&mb, 'S');
	builder_string(&mb, severity);
	builder_byte(&mb, 'V');
	builder_string(&mb, severity);
	builder_byte(&mb, 'C');
	builder_string(&mb, sqlstate);
	builder_byte(&mb, 'M');
	builder_string(&mb, text);
	builder_byte(&mb, 0);
	return builder_finish(&mb);
}

bool msg_auth_ok(struct buf *b)
{
	struct msg_builder mb;

	builder_begin(&mb, b, 'R');
	builder_int32(&mb, 0);
	return builder_finish(&mb);
}

bool msg_param_status(struct buf *b, const char *name, const char *value)
{
	struct msg_builder mb;

	builder_begin(&mb, b, 'S');
	builder_string(&mb, name);
	builder_string(&mb, value);
	return builder_finish(&mb);
}

bool msg_backend_key(struct buf *b, uint32_t pid, uint32_t key)
{
	struct msg_builder mb;

	builder_begin(&mb, b, 'K');
	builder_int32(&mb, pid);
	builder_int32(&mb, key);
	return builder_finish(&mb);
}

bool msg_ready(struct buf *b, char status)
{
	struct msg_builder mb;

	builder_begin(&mb, b, 'Z');
	builder_byte(&mb, (uint8_t)status);
	return builder_finish(&mb);
}

bool msg_empty(struct buf *b, uint8_t type)
{
	struct msg_builder mb;

	builder_begin(&mb, b, type);
	return builder_finish(&mb);
}

bool msg_command_complete(struct buf *b, const char *tag)
{
	struct msg_builder mb;

	builder_begin(&mb, b, 'C');
	builder_string(&mb, tag);
	return builder_finish(&mb);
}

bool msg_query(struct buf *b, const char *sql)
{
	struct msg_builder mb;

	builder_begin(&mb, b, 'Q');
	builder_string(&mb, sql);
	return builder_finish(&mb);
}

bool msg_startup(struct buf *b, const char *user, const char *database, const char *const *extra)
{
	struct msg_builder mb;

	builder_begin_untyped(&mb, b);
	builder_int32(&mb, PG_PROTOCOL_V3);
	builder_string(&mb, "user");
	builder_string(&mb, user);
	builder_string(&mb, "database");
	builder_string(&mb, database);
	for (; extra && extra[0] && extra[1]; extra += 2) {
		builder_string(&mb, extra[0]);
		builder_string(&mb, extra[1]);
	}
	builder_byte(&mb, 0);
	return builder_finish(&mb);
}

bool msg_cancel_request(struct buf *b, uint32_t pid, uint32_t key)
{
	struct msg_builder mb;

	builder_begin_untyped(&mb, b);
	builder_int32(&mb, PG_CANCEL_REQUEST_CODE);
	builder_int32(&mb, pid);
	builder_int32(&mb, key);
	return builder_finish(&mb);
}

bool msg_ssl_request(struct buf *b)
{
	struct msg_builder mb;

	builder_begin_untyped(&mb, b);
	builder_int32(&mb, PG_SSL_REQUEST_CODE);
	return builder_finish(&mb);
}

bool msg_negotiate_version(struct buf *b, uint32_t minor, const char *const *options, int n_options)
{
	struct msg_builder mb;

	builder_begin(&mb, b, 'v');
	builder_int32(&mb, minor);
	builder_int32(&mb, (uint32_t)n_options);
	for (int i = 0; i < n_options; i++)
		builder_string(&mb, options[i]);
	return builder_finish(&mb);
}

const char *msg_error_field(const uint8_t *body, uint32_t len, char code)
{
	struct msg_reader r;

	reader_init(&r, body, len);
	for (;;) {
		uint8_t c = reader_byte(&r);
		const char *v;

		if (r.err || c == 0)
			return NULL;
		v = reader_string(&r);
		if (r.err)
			return NULL;
		if (c == (uint8_t)code)
			return v;
	}
}
