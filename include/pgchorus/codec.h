/*
 * codec.h - PostgreSQL wire protocol v3 framing, a bounds-checked message
 * reader and a message builder.
 *
 * Framing is checked before anything is trusted: a message is a type byte
 * and a 4-byte big-endian length that counts itself; lengths below 4 or
 * above the configured maximum are a protocol violation.
 */
#ifndef PGCHORUS_CODEC_H
#define PGCHORUS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgchorus/buf.h"

#define PG_PROTOCOL_V3 196608u         /* 3.0 */
#define PG_CANCEL_REQUEST_CODE 80877102u
#define PG_SSL_REQUEST_CODE 80877103u
#define PG_GSSENC_REQUEST_CODE 80877104u

enum codec_frame {
	FRAME_NEED_MORE = 0,  /* fewer than 5 bytes available */
	FRAME_OK = 1,         /* header parsed */
	FRAME_BAD_LENGTH = -1,
	FRAME_TOO_LARGE = -2,
};

/*
 * Parse the 5-byte header at P (AVAIL bytes available).  On FRAME_OK, *type
 * is the message type and *len the total size including the type byte
 * (i.e. declared length + 1).
 */
static inline enum codec_frame codec_frame(const uint8_t *p, size_t avail, uint32_t max_size,
					   uint8_t *type, uint32_t *len)
{
	uint32_t l;

	*type = 0;
	*len = 0;
	if (avail < 5)
		return FRAME_NEED_MORE;
	l = ((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 8) | p[4];
	if (l < 4)
		return FRAME_BAD_LENGTH;
	if (l > max_size)
		return FRAME_TOO_LARGE;
	*type = p[0];
	*len = l + 1;
	return FRAME_OK;
}

static inline uint32_t codec_get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void codec_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A cursor over a message body; any read past the end sets err. */
struct msg_reader {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool err;
};

void reader_init(struct msg_reader *r, const uint8_t *body, size_t len);
uint8_t reader_byte(struct msg_reader *r);
uint16_t reader_int16(struct msg_reader *r);
uint32_t reader_int32(struct msg_reader *r);
/* A NUL-terminated string inside the body; "" with err set if unterminated. */
const char *reader_string(struct msg_reader *r);
const uint8_t *reader_bytes(struct msg_reader *r, size_t n);
/* true if no error occurred and the whole body was consumed. */
bool reader_done(const struct msg_reader *r);

/* Where the parts of a Bind message are: offsets from the start of its body
 * (after type and length). */
struct bind_layout {
	const char *portal, *stmt;
	size_t fmts_at;       /* int16 count, then the parameter format codes */
	uint16_t nfmt, fmt0;  /* fmt0: the first format code (0 if none) */
	uint16_t nparams;
	size_t params_at;     /* the first parameter (its int32 length) */
	size_t last_param_at; /* the last one (params_at when none) */
	size_t params_end;
	uint16_t nres;
	size_t res_at;        /* the result format codes (after their int16 count) */
};

/* Read the Bind message MSG[0..len) (type and length included); false: malformed. */
bool bind_layout_read(const uint8_t *msg, uint32_t len, struct bind_layout *b);

/* Builds messages into a struct buf: begin, put..., finish (length last).
 * Allocation failures set a sticky error that finish reports. */
struct msg_builder {
	struct buf *b;
	size_t start;   /* first byte of the message (type byte, if any) */
	size_t lenpos;  /* position of the length field */
	bool err;
};

void builder_begin(struct msg_builder *mb, struct buf *b, uint8_t type);
/* A message without type byte (startup packet, cancel request). */
void builder_begin_untyped(struct msg_builder *mb, struct buf *b);
void builder_byte(struct msg_builder *mb, uint8_t v);
void builder_int16(struct msg_builder *mb, uint16_t v);
void builder_int32(struct msg_builder *mb, uint32_t v);
void builder_string(struct msg_builder *mb, const char *s);
void builder_bytes(struct msg_builder *mb, const void *p, size_t n);
/* Writes the length; false if anything failed (the partial message is dropped). */
bool builder_finish(struct msg_builder *mb) __attribute__((warn_unused_result));

#endif
