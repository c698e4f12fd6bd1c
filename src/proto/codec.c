/*
 * codec.c - message reader and builder (see codec.h).
 */
#include <string.h>

#include "pgchorus/codec.h"

void reader_init(struct msg_reader *r, const uint8_t *body, size_t len)
{
	r->p = body;
	r->len = len;
	r->pos = 0;
	r->err = false;
}

static bool reader_has(struct msg_reader *r, size_t n)
{
	if (r->err || r->len - r->pos < n) {
		r->err = true;
		return false;
	}
	return true;
}

uint8_t reader_byte(struct msg_reader *r)
{
	if (!reader_has(r, 1))
		return 0;
	return r->p[r->pos++];
}

uint16_t reader_int16(struct msg_reader *r)
{
	uint16_t v;

	if (!reader_has(r, 2))
		return 0;
	v = (uint16_t)((r->p[r->pos] << 8) | r->p[r->pos + 1]);
	r->pos += 2;
	return v;
}

uint32_t reader_int32(struct msg_reader *r)
{
	uint32_t v;

	if (!reader_has(r, 4))
		return 0;
	v = codec_get32(r->p + r->pos);
	r->pos += 4;
	return v;
}

const char *reader_string(struct msg_reader *r)
{
	const uint8_t *s, *nul;

	if (r->err || r->pos >= r->len) {
		r->err = true;
		return "";
	}
	s = r->p + r->pos;
	nul = memchr(s, 0, r->len - r->pos);
	if (!nul) {
		r->err = true;
		return "";
	}
	r->pos += (size_t)(nul - s) + 1;
	return (const char *)s;
}

const uint8_t *reader_bytes(struct msg_reader *r, size_t n)
{
	const uint8_t *p;

	if (!reader_has(r, n))
		return NULL;
	p = r->p + r->pos;
	r->pos += n;
	return p;
}

bool bind_layout_read(const uint8_t *msg, uint32_t len, struct bind_layout *b)
{
	struct msg_reader r;

	if (len < 5)
		return false;
	reader_init(&r, msg + 5, len - 5);
	b->portal = reader_string(&r);
	b->stmt = reader_string(&r);
	b->fmts_at = r.pos;
	b->nfmt = reader_int16(&r);
	b->fmt0 = 0;
	for (uint16_t i = 0; i < b->nfmt && !r.err; i++) {
		uint16_t f = reader_int16(&r);

		if (i == 0)
			b->fmt0 = f;
	}
	b->nparams = reader_int16(&r);
	b->params_at = b->last_param_at = r.pos;
	for (uint16_t i = 0; i < b->nparams && !r.err; i++) {
		uint32_t plen;

		b->last_param_at = r.pos;
		plen = reader_int32(&r);
		if (plen != 0xffffffffu)
			reader_bytes(&r, plen);
	}
	b->params_end = r.pos;
	b->nres = reader_int16(&r);
	b->res_at = r.pos;
	reader_bytes(&r, 2 * (size_t)b->nres);
	return reader_done(&r);
}

bool reader_done(const struct msg_reader *r)
{
	return !r->err && r->pos == r->len;
}

void builder_begin(struct msg_builder *mb, struct buf *b, uint8_t type)
{
	static const uint8_t zero[4];

	mb->b = b;
	mb->err = false;
	mb->start = b->len;
	mb->lenpos = b->len + 1;
	if (!buf_append(b, &type, 1) || !buf_append(b, zero, 4))
		mb->err = true;
}

void builder_begin_untyped(struct msg_builder *mb, struct buf *b)
{
	static const uint8_t zero[4];

	mb->b = b;
	mb->err = false;
	mb->start = b->len;
	mb->lenpos = b->len;
	if (!buf_append(b, zero, 4))
		mb->err = true;
}

void builder_bytes(struct msg_builder *mb, const void *p, size_t n)
{
	if (!mb->err && n && !buf_append(mb->b, p, n))
		mb->err = true;
}

void builder_byte(struct msg_builder *mb, uint8_t v)
{
	builder_bytes(mb, &v, 1);
}

void builder_int16(struct msg_builder *mb, uint16_t v)
{
	uint8_t p[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	builder_bytes(mb, p, 2);
}

void builder_int32(struct msg_builder *mb, uint32_t v)
{
	uint8_t p[4];

	codec_put32(p, v);
	builder_bytes(mb, p, 4);
}

void builder_string(struct msg_builder *mb, const char *s)
{
	builder_bytes(mb, s, strlen(s) + 1);
}

bool builder_finish(struct msg_builder *mb)
{
	size_t total = mb->b->len - mb->lenpos;

	if (mb->err || mb->b->len < mb->lenpos + 4 || total > UINT32_MAX) {
		if (mb->b->len > mb->start)
			mb->b->len = mb->start;
		return false;
	}
	codec_put32(mb->b->data + mb->lenpos, (uint32_t)total);
	return true;
}
