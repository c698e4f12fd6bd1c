/*
 * test_startup.c - startup packet parsing, including hostile packets.
 */
#include "pgchorus/codec.h"
#include "pgchorus/msg.h"
#include "pgchorus/startup.h"
#include "runner.h"

static uint32_t pkt(uint8_t *out, uint32_t code, const char *params, uint32_t plen)
{
	uint32_t len = 8 + plen;

	codec_put32(out, len);
	codec_put32(out + 4, code);
	memcpy(out + 8, params, plen);
	return len;
}

TEST(test_startup_valid)
{
	uint8_t p[128];
	static const char params[] = "user\0bob\0application_name\0psql\0\0";
	uint32_t len = pkt(p, PG_PROTOCOL_V3, params, sizeof(params) - 1);
	struct startup_packet sp;

	startup_parse(p, len, &sp);
	REQUIRE(sp.kind == STARTUP_MESSAGE);
	CHECK_STREQ(sp.user, "bob");
	CHECK_STREQ(sp.database, "bob"); /* defaults to the user */
	CHECK_STREQ(startup_param(&sp, "application_name"), "psql");
	CHECK(sp.n_params == 2);
}

TEST(test_startup_special_requests)
{
	uint8_t p[32];
	struct startup_packet sp;

	startup_parse(p, pkt(p, PG_SSL_REQUEST_CODE, "", 0), &sp);
	CHECK(sp.kind == STARTUP_SSL);
	startup_parse(p, pkt(p, PG_GSSENC_REQUEST_CODE, "", 0), &sp);
	CHECK(sp.kind == STARTUP_GSSENC);
	pkt(p, PG_CANCEL_REQUEST_CODE, "\0\0\0\x05\0\0\0\x07", 8);
	startup_parse(p, 16, &sp);
	CHECK(sp.kind == STARTUP_CANCEL && sp.cancel_pid == 5 && sp.cancel_key == 7);
	/* A cancel request with the wrong length. */
	startup_parse(p, pkt(p, PG_CANCEL_REQUEST_CODE, "\0\0\0\x05", 4), &sp);
	CHECK(sp.kind == STARTUP_INVALID);
}

TEST(test_startup_hostile)
{
	uint8_t p[256];
	struct startup_packet sp;
	uint32_t frame_len;
	static const char no_term[] = "user\0bob\0";          /* missing final terminator */
	static const char no_user[] = "database\0x\0\0";
	static const char unterminated[] = "user\0bo";

	startup_parse(p, pkt(p, PG_PROTOCOL_V3, no_term, sizeof(no_term) - 1), &sp);
	CHECK(sp.kind == STARTUP_INVALID && strcmp(sp.sqlstate, "08P01") == 0);
	startup_parse(p, pkt(p, PG_PROTOCOL_V3, no_user, sizeof(no_user) - 1), &sp);
	CHECK(sp.kind == STARTUP_INVALID && strcmp(sp.sqlstate, "28000") == 0);
	startup_parse(p, pkt(p, PG_PROTOCOL_V3, unterminated, sizeof(unterminated) - 1), &sp);
	CHECK(sp.kind == STARTUP_INVALID);
	/* Protocol 2.0 is refused. */
	startup_parse(p, pkt(p, 2u << 16, "user\0bob\0\0", 10), &sp);
	CHECK(sp.kind == STARTUP_INVALID && strcmp(sp.sqlstate, "0A000") == 0);
	/* Declared length disagrees with the buffer. */
	pkt(p, PG_PROTOCOL_V3, "user\0bob\0\0", 10);
	startup_parse(p, 12, &sp);
	CHECK(sp.kind == STARTUP_INVALID);
	/* Framing limits. */
	codec_put32(p, 4);
	CHECK(startup_frame(p, 8, 10000, &frame_len) == -1);
	codec_put32(p, 1u << 30);
	CHECK(startup_frame(p, 8, 10000, &frame_len) == -1);
	CHECK(startup_frame(p, 3, 10000, &frame_len) == 0);
}

TEST(test_startup_too_many_params)
{
	uint8_t p[4096];
	char params[3000];
	uint32_t n = 0;
	struct startup_packet sp;

	n += (uint32_t)snprintf(params + n, sizeof(params) - n, "user%cbob%c", 0, 0);
	for (int i = 0; i < STARTUP_MAX_PARAMS + 5; i++)
		n += (uint32_t)snprintf(params + n, sizeof(params) - n, "p%d%cv%c", i, 0, 0);
	params[n++] = 0;
	startup_parse(p, pkt(p, PG_PROTOCOL_V3, params, n), &sp);
	CHECK(sp.kind == STARTUP_INVALID && strcmp(sp.sqlstate, "08P01") == 0);
}
