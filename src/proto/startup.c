/*
 * startup.c - startup packet parsing (see startup.h).
 */
#include <string.h>

#include "pgchorus/codec.h"
#include "pgchorus/msg.h"
#include "pgchorus/startup.h"

int startup_frame(const uint8_t *p, uint32_t avail, uint32_t max, uint32_t *len)
{
	uint32_t l;

	if (avail < 4)
		return 0;
	l = codec_get32(p);
	if (l < 8 || l > max)
		return -1;
	*len = l;
	return 1;
}

static void startup_invalid(struct startup_packet *sp, const char *sqlstate, const char *error)
{
	sp->kind = STARTUP_INVALID;
	sp->sqlstate = sqlstate;
	sp->error = error;
}

const char *startup_param(const struct startup_packet *sp, const char *name)
{
	for (int i = 0; i < sp->n_params; i++)
		if (strcmp(sp->params[i].name, name) == 0)
			return sp->params[i].value;
	return NULL;
}

static void startup_parse_params(struct msg_reader *r, struct startup_packet *sp)
{
	for (;;) {
		const char *name = reader_string(r);
		const char *value;

		if (r->err) {
			startup_invalid(sp, SQLSTATE_PROTOCOL_VIOLATION,
					"invalid startup packet layout: expected terminator as last byte");
			return;
		}
		if (!*name)
			break;
		value = reader_string(r);
		if (r->err) {
			startup_invalid(sp, SQLSTATE_PROTOCOL_VIOLATION,
					"invalid startup packet layout: expected terminator as last byte");
			return;
		}
		if (sp->n_params == STARTUP_MAX_PARAMS) {
			startup_invalid(sp, SQLSTATE_PROTOCOL_VIOLATION,
					"invalid startup packet: too many parameters");
			return;
		}
		sp->params[sp->n_params].name = name;
		sp->params[sp->n_params].value = value;
		sp->n_params++;
	}
	if (!reader_done(r)) {
		startup_invalid(sp, SQLSTATE_PROTOCOL_VIOLATION,
				"invalid startup packet layout: expected terminator as last byte");
		return;
	}
	sp->user = startup_param(sp, "user");
	if (!sp->user || !*sp->user) {
		startup_invalid(sp, SQLSTATE_INVALID_AUTH,
				"no PostgreSQL user name specified in startup packet");
		return;
	}
	sp->database = startup_param(sp, "database");
	if (!sp->database || !*sp->database)
		sp->database = sp->user;
	sp->kind = STARTUP_MESSAGE;
}

void startup_parse(const uint8_t *pkt, uint32_t len, struct startup_packet *sp)
{
	struct msg_reader r;
	uint32_t code;

	memset(sp, 0, sizeof(*sp));
	if (len < 8 || codec_get32(pkt) != len) {
		startup_invalid(sp, SQLSTATE_PROTOCOL_VIOLATION, "invalid length of startup packet");
		return;
	}
	reader_init(&r, pkt + 4, len - 4);
	code = reader_int32(&r);
	switch (code) {
	case PG_SSL_REQUEST_CODE:
	case PG_GSSENC_REQUEST_CODE:
		if (len != 8) {
			startup_invalid(sp, SQLSTATE_PROTOCOL_VIOLATION, "invalid length of startup packet");
			return;
		}
		sp->kind = code == PG_SSL_REQUEST_CODE ? STARTUP_SSL : STARTUP_GSSENC;
		return;
	case PG_CANCEL_REQUEST_CODE:
		if (len != 16) {
			startup_invalid(sp, SQLSTATE_PROTOCOL_VIOLATION, "invalid length of cancel request");
			return;
		}
		sp->cancel_pid = reader_int32(&r);
		sp->cancel_key = reader_int32(&r);
		sp->kind = STARTUP_CANCEL;
		return;
	}
	if (code >> 16 != 3) {
		startup_invalid(sp, SQLSTATE_FEATURE_NOT_SUPPORTED,
				"unsupported frontend protocol: server supports 3.0 to 3.0");
		return;
	}
	sp->version = code;
	startup_parse_params(&r, sp);
}
