/*
 * test_codec.c - framing, reader bounds and builder of the wire codec.
 */
#include "pgchorus/codec.h"
#include "pgchorus/msg.h"
#include "runner.h"

TEST(test_codec_frame)
{
	const uint8_t ok[] = { 'Q', 0, 0, 0, 9, 's', 'e', 'l', 0 };
	const uint8_t short_len[] = { 'Q', 0, 0, 0, 3 };
	const uint8_t huge[] = { 'Q', 0x7f, 0xff, 0xff, 0xff };
	uint8_t type = 0;
	uint32_t len = 0;

	CHECK(codec_frame(ok, 4, 1000, &type, &len) == FRAME_NEED_MORE);
	CHECK(codec_frame(ok, sizeof(ok), 1000, &type, &len) == FRAME_OK);
	CHECK(type == 'Q' && len == 10);
	CHECK(codec_frame(short_len, 5, 1000, &type, &len) == FRAME_BAD_LENGTH);
	CHECK(codec_frame(huge, 5, 1000, &type, &len) == FRAME_TOO_LARGE);
}

TEST(test_codec_reader_bounds)
{
	const uint8_t body[] = { 0, 0, 0, 7, 'a', 'b', 0, 'c' };
	struct msg_reader r;

	reader_init(&r, body, sizeof(body));
	CHECK(reader_int32(&r) == 7);
	CHECK_STREQ(reader_string(&r), "ab");
	CHECK(!r.err);
	CHECK(!reader_done(&r));
	reader_string(&r); /* "c" is not terminated */
	CHECK(r.err);
	CHECK(reader_int16(&r) == 0 && r.err);
	reader_init(&r, body, 3);
	CHECK(reader_int32(&r) == 0 && r.err);
	reader_init(&r, body, 0);
	CHECK(reader_byte(&r) == 0 && r.err);
}

TEST(test_codec_builder_roundtrip)
{
	struct buf b;
	struct msg_builder mb;
	struct msg_reader r;
	uint8_t type;
	uint32_t len;

	buf_init(&b);
	builder_begin(&mb, &b, 'B');
	builder_string(&mb, "portal");
	builder_int16(&mb, 2);
	builder_int32(&mb, 0xdeadbeef);
	REQUIRE(builder_finish(&mb));
	REQUIRE(codec_frame(b.data, b.len, 1000, &type, &len) == FRAME_OK);
	CHECK(type == 'B' && len == b.len);
	reader_init(&r, b.data + 5, len - 5);
	CHECK_STREQ(reader_string(&r), "portal");
	CHECK(reader_int16(&r) == 2);
	CHECK(reader_int32(&r) == 0xdeadbeef);
	CHECK(reader_done(&r));
	buf_free(&b);
}

TEST(test_codec_error_fields)
{
	struct buf b;

	buf_init(&b);
	REQUIRE(msg_error(&b, "FATAL", "08P01", "bad %s", "thing"));
	CHECK(b.data[0] == 'E');
	CHECK_STREQ(msg_error_field(b.data + 5, (uint32_t)b.len - 5, 'C'), "08P01");
	CHECK_STREQ(msg_error_field(b.data + 5, (uint32_t)b.len - 5, 'M'), "bad thing");
	CHECK(msg_error_field(b.data + 5, (uint32_t)b.len - 5, 'D') == NULL);
	/* Truncated body: no field found, no overrun. */
	CHECK(msg_error_field(b.data + 5, 4, 'M') == NULL);
	buf_free(&b);
}

TEST(test_codec_startup_message)
{
	struct buf b;
	const char *extra[] = { "application_name", "x", NULL };

	buf_init(&b);
	REQUIRE(msg_startup(&b, "alice", "db", extra));
	CHECK(codec_get32(b.data) == b.len);
	CHECK(codec_get32(b.data + 4) == PG_PROTOCOL_V3);
	CHECK(b.data[b.len - 1] == 0);
	buf_free(&b);
}
