/*
 * startup.h - parsing of the first packet a client sends: StartupMessage,
 * SSLRequest, GSSENCRequest or CancelRequest.  Pure functions over a byte
 * array, so that they can be unit-tested and fuzzed.
 */
#ifndef PGCHORUS_STARTUP_H
#define PGCHORUS_STARTUP_H

#include <stdint.h>

#define STARTUP_MAX_PARAMS 64

enum startup_kind {
	STARTUP_INVALID,
	STARTUP_MESSAGE,
	STARTUP_SSL,
	STARTUP_GSSENC,
	STARTUP_CANCEL,
};

struct startup_param {
	const char *name;  /* points into the packet */
	const char *value;
};

struct startup_packet {
	enum startup_kind kind;
	uint32_t version;        /* STARTUP_MESSAGE: major << 16 | minor */
	uint32_t cancel_pid;     /* STARTUP_CANCEL */
	uint32_t cancel_key;
	int n_params;            /* all parameters, user and database included */
	struct startup_param params[STARTUP_MAX_PARAMS];
	const char *user;
	const char *database;    /* defaults to user */
	const char *sqlstate;    /* STARTUP_INVALID: error to report */
	const char *error;
};

/*
 * Framing of an untyped startup packet: returns 0 if more bytes are needed,
 * 1 with *len set (the whole packet, length word included), -1 if the
 * length is below 8 or above MAX.
 */
int startup_frame(const uint8_t *p, uint32_t avail, uint32_t max, uint32_t *len);

/*
 * Parse a complete packet of LEN bytes (length word included).  Strings in
 * SP point into PKT, which must stay alive and be NUL-safe (every string is
 * checked to be terminated inside the packet).  Sets sp->kind; on
 * STARTUP_INVALID sp->sqlstate and sp->error say why.
 */
void startup_parse(const uint8_t *pkt, uint32_t len, struct startup_packet *sp);

const char *startup_param(const struct startup_packet *sp, const char *name);

#endif
