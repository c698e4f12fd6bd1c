/*
 * fuzz_codec.c - libFuzzer target for the wire codec (codec.h: codec_frame,
 * msg_reader, msg_builder), the read buffers (buf.h: iobuf, bufpool), the
 * ErrorResponse field lookup and message builders (msg.h) and the response
 * tracker (restrack.h).
 *
 * Input layout (see doc/fuzzing.md; test/fuzz/make_corpus.py writes seeds):
 *
 *   byte 0       flags: bits 0-1 pick max_message_size (1 KiB, 16 KiB,
 *                1 MiB, 1 GiB); bit 2 set: every message is a server
 *                message, bit 3 set: every message is a client message
 *                (else bytes 1-8 decide, message by message)
 *   bytes 1-8    64 direction bits: message i is a server response when bit
 *                i % 64 is set, else a client message
 *   byte 9       seed of the chunk sizes the stream arrives in
 *   bytes 10..   the stream of typed messages
 *
 * The stream is read into an iobuf in chunks, as a connection reads it, and
 * framed as relay.c does: codec_frame, then iobuf_grow_toward until the
 * whole message is in the buffer (the buffer must never grow much beyond
 * the data actually received, whatever length a message declares).  Each
 * body is then walked, from a private heap copy of exactly its length, by
 * a msg_reader with the layout its type has in that direction (Parse: name,
 * query, int16 n, n int32; Bind; ErrorResponse fields; RowDescription...).
 * The reader must never hand out a pointer outside the body nor a string
 * without its NUL inside it.  Where a builder can make the same message
 * (Parse, Query, ParameterStatus, ReadyForQuery, BackendKeyData, ...) it
 * must reproduce the input bytes exactly.  Client messages that the server
 * answers are pushed into a restrack the way relay.c and prepared.c do,
 * server messages are fed to rt_response(), and the tracker's structure is
 * checked after each step.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/buf.h"
#include "pgchorus/codec.h"
#include "pgchorus/msg.h"
#include "pgchorus/restrack.h"

#define FUZZ_HEADER 10
#define FUZZ_MAX_INPUT (1u << 20)

#define FUZZ_REQUIRE(cond)                                                              \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                 \
			abort();                                                        \
		}                                                                       \
	} while (0)

static const uint32_t max_sizes[4] = { 1024u, 16384u, 1u << 20, 1u << 30 };

/* One fuzz run: the input's settings and the state the stream drives. */
struct fuzz_run {
	uint8_t flags;
	uint64_t directions;
	uint32_t rng;          /* xorshift32 state: chunk sizes and tracker flags */
	unsigned msg_no;
	struct restrack rt;
	struct buf out;        /* scratch for builder round trips */
};

static uint32_t fuzz_rand(struct fuzz_run *fr)
{
	uint32_t x = fr->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	fr->rng = x;
	return x;
}

/* ---- checked reads -------------------------------------------------------- */

static void require_reader_sane(const struct msg_reader *r)
{
	FUZZ_REQUIRE(r->pos <= r->len);
}

static const char *fz_string(struct msg_reader *r)
{
	const char *s = reader_string(r);
	const uint8_t *p = (const uint8_t *)s;

	require_reader_sane(r);
	FUZZ_REQUIRE(s != NULL);
	if (r->err) {
		FUZZ_REQUIRE(s[0] == '\0');
		return s;
	}
	/* inside the body, and its NUL too */
	FUZZ_REQUIRE(p >= r->p && p < r->p + r->len);
	FUZZ_REQUIRE(memchr(p, 0, (size_t)(r->p + r->len - p)) != NULL);
	FUZZ_REQUIRE(p + strlen(s) + 1 == r->p + r->pos);
	return s;
}

static const uint8_t *fz_bytes(struct msg_reader *r, size_t n)
{
	size_t before = r->pos;
	bool had_err = r->err;
	const uint8_t *p = reader_bytes(r, n);

	require_reader_sane(r);
	if (!p) {
		FUZZ_REQUIRE(r->err);
		return NULL;
	}
	FUZZ_REQUIRE(!had_err);
	FUZZ_REQUIRE(p == r->p + before && r->pos - before == n && r->pos <= r->len);
	return p;
}

static uint8_t fz_byte(struct msg_reader *r)
{
	uint8_t v = reader_byte(r);

	require_reader_sane(r);
	return v;
}

static uint16_t fz_int16(struct msg_reader *r)
{
	uint16_t v = reader_int16(r);

	require_reader_sane(r);
	return v;
}

static uint32_t fz_int32(struct msg_reader *r)
{
	uint32_t v = reader_int32(r);

	require_reader_sane(r);
	return v;
}

/* A "length, then that many bytes" value; -1 (NULL) has no bytes. */
static void fz_counted_value(struct msg_reader *r)
{
	uint32_t n = fz_int32(r);

	if (!r->err && n != 0xffffffffu)
		fz_bytes(r, n);
}

/* n int16 or int32 values */
static void fz_int16_array(struct msg_reader *r, unsigned n)
{
	for (unsigned i = 0; i < n && !r->err; i++)
		fz_int16(r);
}

static void fz_int32_array(struct msg_reader *r, unsigned n)
{
	for (unsigned i = 0; i < n && !r->err; i++)
		fz_int32(r);
}

/* ---- builder round trips --------------------------------------------------- */

/* The message just built into fr->out must equal the input message MSG. */
static void require_same(struct fuzz_run *fr, bool built, const uint8_t *msg, size_t len)
{
	FUZZ_REQUIRE(built);
	FUZZ_REQUIRE(fr->out.len == len);
	FUZZ_REQUIRE(memcmp(fr->out.data, msg, len) == 0);
	buf_reset(&fr->out);
}

/* ---- client messages ------------------------------------------------------- */

static void client_parse(struct fuzz_run *fr, const uint8_t *msg, uint32_t len, struct msg_reader *r)
{
	const char *name = fz_string(r), *query = fz_string(r);
	size_t types_at = r->pos;
	uint16_t n = fz_int16(r);
	struct msg_reader again;
	struct msg_builder mb;

	fz_int32_array(r, n);
	if (!reader_done(r))
		return;
	/* rebuilt with the builder, it is the same message */
	builder_begin(&mb, &fr->out, 'P');
	builder_string(&mb, name);
	builder_string(&mb, query);
	builder_int16(&mb, n);
	reader_init(&again, r->p + types_at + 2, r->len - types_at - 2);
	for (unsigned i = 0; i < n; i++)
		builder_int32(&mb, fz_int32(&again));
	FUZZ_REQUIRE(reader_done(&again));
	require_same(fr, builder_finish(&mb), msg, len);
}

static void client_bind(struct msg_reader *r)
{
	uint16_t n;

	fz_string(r);            /* portal */
	fz_string(r);            /* statement */
	n = fz_int16(r);         /* parameter formats */
	fz_int16_array(r, n);
	n = fz_int16(r);         /* parameter values */
	for (unsigned i = 0; i < n && !r->err; i++)
		fz_counted_value(r);
	n = fz_int16(r);         /* result formats */
	fz_int16_array(r, n);
	(void)reader_done(r);
}

static void client_function_call(struct msg_reader *r)
{
	uint16_t n;

	fz_int32(r);             /* function oid */
	n = fz_int16(r);
	fz_int16_array(r, n);
	n = fz_int16(r);
	for (unsigned i = 0; i < n && !r->err; i++)
		fz_counted_value(r);
	fz_int16(r);             /* result format */
	(void)reader_done(r);
}

/* 'p' is a password, a SASLInitialResponse or a SASLResponse: try each. */
static void client_password(const uint8_t *body, uint32_t len)
{
	struct msg_reader r;

	reader_init(&r, body, len);
	fz_string(&r);
	(void)reader_done(&r);

	reader_init(&r, body, len);
	fz_string(&r);           /* mechanism */
	fz_counted_value(&r);    /* client-first-message */
	(void)reader_done(&r);

	reader_init(&r, body, len);
	fz_bytes(&r, len);
	FUZZ_REQUIRE(reader_done(&r));
}

/* Query text: rebuilt with msg_query, and carried through msg_error. */
static void client_query(struct fuzz_run *fr, const uint8_t *msg, uint32_t len, struct msg_reader *r)
{
	const char *sql = fz_string(r);
	const char *m, *c;
	enum codec_frame f;
	uint32_t elen;
	uint8_t etype;

	if (!reader_done(r))
		return;
	require_same(fr, msg_query(&fr->out, sql), msg, len);

	FUZZ_REQUIRE(msg_error(&fr->out, "FATAL", SQLSTATE_PROTOCOL_VIOLATION, "%s", sql));
	f = codec_frame(fr->out.data, fr->out.len, UINT32_MAX, &etype, &elen);
	FUZZ_REQUIRE(f == FRAME_OK && etype == 'E' && elen == fr->out.len);
	c = msg_error_field(fr->out.data + 5, elen - 5, 'C');
	m = msg_error_field(fr->out.data + 5, elen - 5, 'M');
	FUZZ_REQUIRE(c && strcmp(c, SQLSTATE_PROTOCOL_VIOLATION) == 0);
	/* msg_error keeps at most 1023 bytes of text */
	FUZZ_REQUIRE(m && strncmp(m, sql, 1023) == 0);
	FUZZ_REQUIRE(strlen(m) == (strlen(sql) < 1023 ? strlen(sql) : 1023));
	buf_reset(&fr->out);
}

static void require_rt_sane(const struct restrack *rt)
{
	FUZZ_REQUIRE(rt->count <= rt->cap);
	FUZZ_REQUIRE((rt->cap & (rt->cap - 1)) == 0);
	FUZZ_REQUIRE(rt->cap == 0 || rt->ring != NULL);
	FUZZ_REQUIRE(rt->cap == 0 || rt->head < rt->cap);
	/* skipping is only ever set once the queue ran empty */
	FUZZ_REQUIRE(!rt->skipping || rt->count == 0);
	for (uint32_t i = 0; i < rt->count; i++) {
		uint8_t e = rt->ring[(rt->head + i) & (rt->cap - 1)];

		FUZZ_REQUIRE(RT_KIND(e) >= RT_PARSE && RT_KIND(e) <= RT_COPY_MARK);
		/* a COPY mark never waits at the head: nothing would ever take it */
		FUZZ_REQUIRE(i != 0 || RT_KIND(e) != RT_COPY_MARK);
		/* no Sync is waiting behind a COPY FROM STDIN in progress */
		FUZZ_REQUIRE(!rt->copy_in || i == 0 || RT_KIND(e) != RT_SYNC);
	}
}

/* Like relay_emit_synth(): answer synthesized entries that reached the head. */
static void drain_synth(struct restrack *rt)
{
	uint8_t k;

	while ((k = rt_pop_synth(rt)) != 0)
		FUZZ_REQUIRE(k == RT_SYNTH_PARSE || k == RT_SYNTH_CLOSE);
	FUZZ_REQUIRE(rt->count == 0 || (RT_KIND(rt->ring[rt->head]) != RT_SYNTH_PARSE &&
					 RT_KIND(rt->ring[rt->head]) != RT_SYNTH_CLOSE));
}

static void track_client(struct fuzz_run *fr, uint8_t type)
{
	uint8_t entry = rt_entry_for(type);
	uint32_t bits = fuzz_rand(fr);

	if (type == 'c' || type == 'f')
		rt_copy_in_end(&fr->rt);
	if (!entry)
		return;
	/* prepared.c's variants: named Parse, injected (swallowed) messages,
	 * answers synthesized for statements already prepared or only forgotten */
	if (type == 'P' && (bits & 3) == 1)
		entry = RT_SYNTH_PARSE;
	else if (type == 'C' && (bits & 3) == 1)
		entry = RT_SYNTH_CLOSE;
	else if (type == 'P' && (bits & 4))
		entry |= RT_NAMED;
	if ((bits & 0x18) == 0x18)
		entry |= RT_SWALLOW;
	if ((bits & 0x7f0) == 0x7f0)
		rt_reset(&fr->rt);
	FUZZ_REQUIRE(rt_push(&fr->rt, entry));
	require_rt_sane(&fr->rt);
	drain_synth(&fr->rt);
	require_rt_sane(&fr->rt);
}

static void client_message(struct fuzz_run *fr, const uint8_t *msg, uint32_t len)
{
	const uint8_t *body = msg + 5;
	uint32_t blen = len - 5;
	struct msg_reader r;

	reader_init(&r, body, blen);
	switch (msg[0]) {
	case 'P':
		client_parse(fr, msg, len, &r);
		break;
	case 'B':
		client_bind(&r);
		break;
	case 'D': /* Describe */
	case 'C': /* Close */
		fz_byte(&r);
		fz_string(&r);
		(void)reader_done(&r);
		break;
	case 'E': /* Execute */
		fz_string(&r);
		fz_int32(&r);
		(void)reader_done(&r);
		break;
	case 'Q':
		client_query(fr, msg, len, &r);
		break;
	case 'F':
		client_function_call(&r);
		break;
	case 'p':
		client_password(body, blen);
		break;
	case 'f': /* CopyFail */
		fz_string(&r);
		(void)reader_done(&r);
		break;
	case 'd': /* CopyData */
		fz_bytes(&r, blen);
		FUZZ_REQUIRE(reader_done(&r));
		break;
	default:  /* Sync, Flush, CopyDone, Terminate: empty; others unknown */
		FUZZ_REQUIRE(reader_done(&r) == (blen == 0));
		break;
	}
	track_client(fr, msg[0]);
}

/* ---- server messages ------------------------------------------------------- */

/* Walk the fields of an ErrorResponse / NoticeResponse and check that
 * msg_error_field finds exactly the first occurrence of each code. */
static void server_error_fields(const uint8_t *body, uint32_t len)
{
	static const char codes[] = "SVCMDHPpqWstcdnFLR";
	const char *first[256] = { 0 };
	struct msg_reader r;

	reader_init(&r, body, len);
	for (;;) {
		uint8_t code = fz_byte(&r);
		const char *v;

		if (r.err || code == 0)
			break;
		v = fz_string(&r);
		if (r.err)
			break;
		if (!first[code])
			first[code] = v;
	}
	for (const char *c = codes; *c; c++)
		FUZZ_REQUIRE(msg_error_field(body, len, *c) == first[(uint8_t)*c]);
	for (unsigned code = 1; code < 256; code++)
		if (first[code])
			FUZZ_REQUIRE(msg_error_field(body, len, (char)code) == first[code]);
}

static void server_auth(struct msg_reader *r)
{
	uint32_t code = fz_int32(r);

	switch (code) {
	case 5:  /* MD5: salt */
		fz_bytes(r, 4);
		break;
	case 10: /* SASL: mechanism names up to an empty one */
		for (;;) {
			const char *m = fz_string(r);

			if (r->err || !*m)
				break;
		}
		break;
	case 11: /* SASLContinue */
	case 12: /* SASLFinal */
		fz_bytes(r, r->len - r->pos);
		break;
	default:
		break;
	}
	(void)reader_done(r);
}

static void server_row_description(struct msg_reader *r)
{
	uint16_t n = fz_int16(r);

	for (unsigned i = 0; i < n && !r->err; i++) {
		fz_string(r);    /* name */
		fz_int32(r);     /* table oid */
		fz_int16(r);     /* column number */
		fz_int32(r);     /* type oid */
		fz_int16(r);     /* type size */
		fz_int32(r);     /* type modifier */
		fz_int16(r);     /* format */
	}
	(void)reader_done(r);
}

static void server_message(struct fuzz_run *fr, const uint8_t *msg, uint32_t len)
{
	const uint8_t *body = msg + 5;
	uint32_t blen = len - 5;
	struct msg_reader r;
	uint32_t before, n;
	uint8_t entry;
	enum rt_verdict v;

	reader_init(&r, body, blen);
	switch (msg[0]) {
	case 'E':
	case 'N':
		server_error_fields(body, blen);
		break;
	case 'R':
		server_auth(&r);
		break;
	case 'S': { /* ParameterStatus */
		const char *name = fz_string(&r), *value = fz_string(&r);

		if (reader_done(&r))
			require_same(fr, msg_param_status(&fr->out, name, value), msg, len);
		break;
	}
	case 'K': { /* BackendKeyData */
		uint32_t pid = fz_int32(&r), key = fz_int32(&r);

		if (reader_done(&r))
			require_same(fr, msg_backend_key(&fr->out, pid, key), msg, len);
		break;
	}
	case 'Z': { /* ReadyForQuery */
		uint8_t status = fz_byte(&r);

		if (reader_done(&r))
			require_same(fr, msg_ready(&fr->out, (char)status), msg, len);
		break;
	}
	case 'T':
		server_row_description(&r);
		break;
	case 'D': /* DataRow */
		n = fz_int16(&r);
		for (unsigned i = 0; i < n && !r.err; i++)
			fz_counted_value(&r);
		(void)reader_done(&r);
		break;
	case 'C': /* CommandComplete */
		fz_string(&r);
		(void)reader_done(&r);
		break;
	case 'v': { /* NegotiateProtocolVersion */
		const char *opts[64];
		uint32_t minor = fz_int32(&r);

		n = fz_int32(&r);
		for (uint32_t i = 0; i < n && !r.err; i++) {
			const char *o = fz_string(&r);

			if (i < 64)
				opts[i] = o;
		}
		if (reader_done(&r) && n <= 64)
			require_same(fr, msg_negotiate_version(&fr->out, minor, opts, (int)n), msg, len);
		break;
	}
	case 't': /* ParameterDescription */
		fz_int32_array(&r, fz_int16(&r));
		(void)reader_done(&r);
		break;
	case 'A': /* NotificationResponse */
		fz_int32(&r);
		fz_string(&r);
		fz_string(&r);
		(void)reader_done(&r);
		break;
	case 'G': /* CopyInResponse, CopyOutResponse, CopyBothResponse */
	case 'H':
	case 'W':
		fz_byte(&r);
		fz_int16_array(&r, fz_int16(&r));
		(void)reader_done(&r);
		break;
	case 'V': /* FunctionCallResponse */
		fz_counted_value(&r);
		(void)reader_done(&r);
		break;
	case 'd':
		fz_bytes(&r, blen);
		FUZZ_REQUIRE(reader_done(&r));
		break;
	default: /* ParseComplete, BindComplete, NoData...: empty; others unknown */
		if (blen == 0)
			require_same(fr, msg_empty(&fr->out, msg[0]), msg, len);
		break;
	}

	before = fr->rt.count;
	v = rt_response(&fr->rt, msg[0], &entry);
	FUZZ_REQUIRE(v == RT_FORWARD || v == RT_DROP);
	FUZZ_REQUIRE(fr->rt.count <= before);
	if (before == 0 || msg[0] == 'A')
		FUZZ_REQUIRE(entry == 0 && v == RT_FORWARD);
	if (msg[0] == 'E')
		FUZZ_REQUIRE(v == RT_FORWARD);
	if (v == RT_DROP)
		FUZZ_REQUIRE(entry & RT_SWALLOW);
	require_rt_sane(&fr->rt);
	drain_synth(&fr->rt);
	require_rt_sane(&fr->rt);
}

/* ---- the stream ------------------------------------------------------------ */

static void one_message(struct fuzz_run *fr, const uint8_t *head, uint32_t len)
{
	bool server;
	uint8_t *msg = malloc(len);

	FUZZ_REQUIRE(msg != NULL);
	memcpy(msg, head, len);
	if (fr->flags & 4)
		server = true;
	else if (fr->flags & 8)
		server = false;
	else
		server = (fr->directions >> (fr->msg_no % 64)) & 1;
	fr->msg_no++;
	if (server)
		server_message(fr, msg, len);
	else
		client_message(fr, msg, len);
	free(msg);
}

/* Next chunk size: mostly small reads, sometimes a whole buffer. */
static size_t chunk_size(struct fuzz_run *fr)
{
	uint32_t x = fuzz_rand(fr);

	switch (x & 3) {
	case 0: return 1 + (x >> 8) % 7;
	case 1: return 1 + (x >> 8) % 600;
	case 2: return 1 + (x >> 8) % 20000;
	default: return (size_t)-1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_run fr;
	struct bufpool bp;
	struct iobuf in;
	const uint8_t *stream;
	size_t n, fed = 0;
	uint32_t max_size;
	bool closed = false;

	if (size < FUZZ_HEADER || size > FUZZ_MAX_INPUT)
		return 0;
	memset(&fr, 0, sizeof(fr));
	fr.flags = data[0];
	for (int i = 0; i < 8; i++)
		fr.directions |= (uint64_t)data[1 + i] << (8 * i);
	fr.rng = 0x9e3779b9u ^ data[9];
	rt_init(&fr.rt);
	buf_init(&fr.out);
	max_size = max_sizes[fr.flags & 3];
	stream = data + FUZZ_HEADER;
	n = size - FUZZ_HEADER;

	bufpool_init(&bp, 2);
	memset(&in, 0, sizeof(in));
	while (!closed && fed < n) {
		size_t room = 0, take;
		uint8_t *space = iobuf_space(&in, &bp, &room);

		/* after a NEED_MORE or a grow_toward there is always room */
		FUZZ_REQUIRE(space != NULL && room > 0);
		take = chunk_size(&fr);
		if (take > room)
			take = room;
		if (take > n - fed)
			take = n - fed;
		memcpy(space, stream + fed, take);
		in.end += (uint32_t)take;
		fed += take;

		while (in.data) {
			uint32_t avail = iobuf_avail(&in), len = 0;
			uint8_t type = 0;
			enum codec_frame f = codec_frame(iobuf_head(&in), avail, max_size, &type, &len);

			if (f == FRAME_NEED_MORE) {
				FUZZ_REQUIRE(avail < 5);
				break;
			}
			if (f != FRAME_OK) {
				uint32_t declared = codec_get32(iobuf_head(&in) + 1);

				FUZZ_REQUIRE(f == (declared < 4 ? FRAME_BAD_LENGTH : FRAME_TOO_LARGE));
				FUZZ_REQUIRE(declared < 4 || declared > max_size);
				closed = true; /* the proxy closes the connection */
				break;
			}
			FUZZ_REQUIRE(type == iobuf_head(&in)[0]);
			FUZZ_REQUIRE(len == codec_get32(iobuf_head(&in) + 1) + 1 && len >= 5 &&
				     len - 1 <= max_size);
			if (avail < len) {
				FUZZ_REQUIRE(iobuf_grow_toward(&in, &bp, len));
				FUZZ_REQUIRE(in.cap - in.start > avail);
				/* growth follows the data received, not the declared length */
				FUZZ_REQUIRE(in.cap <= 3 * fed + 3 * BUFPOOL_BLOCK);
				break;
			}
			one_message(&fr, iobuf_head(&in), len);
			iobuf_consume(&in, &bp, len);
		}
	}
	FUZZ_REQUIRE(bp.in_use == (in.data && in.pooled ? 1u : 0u));
	iobuf_release(&in, &bp);
	FUZZ_REQUIRE(bp.in_use == 0);
	bufpool_destroy(&bp);
	rt_free(&fr.rt);
	buf_free(&fr.out);
	return 0;
}
