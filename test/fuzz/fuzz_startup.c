/*
 * fuzz_startup.c - libFuzzer target for the first packets a client sends
 * (startup.c: startup_frame, startup_parse, startup_param).
 *
 * The input is the byte stream a client writes before it is logged in.  It
 * is cut into packets the way login.c does (frame, then parse a private copy
 * of exactly the framed length, so that AddressSanitizer sees any read past
 * the packet), and every parse result is checked against what startup.h
 * promises:
 *   - every string returned lies inside the packet and is NUL-terminated
 *     inside it; parameter names are not empty;
 *   - n_params is within 0..STARTUP_MAX_PARAMS;
 *   - user is set and not empty, database is set (it defaults to user), and
 *     both are what startup_param() finds;
 *   - SSLRequest / GSSENCRequest are 8 bytes, CancelRequest 16 bytes with
 *     the key words it carries, a StartupMessage speaks protocol 3.x;
 *   - an invalid packet carries a 5-character SQLSTATE and a message;
 *   - what msg.c builds from a parsed packet (msg_ssl_request,
 *     msg_cancel_request, msg_startup) parses back to the same thing.
 * The whole input is also parsed once as a single packet, whatever its
 * length word says.  A broken promise aborts (a crash for libFuzzer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/buf.h"
#include "pgchorus/codec.h"
#include "pgchorus/msg.h"
#include "pgchorus/startup.h"

/* The default max_startup_size of the configuration. */
#define FUZZ_MAX_STARTUP 10000u

#define FUZZ_REQUIRE(cond)                                                              \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                 \
			abort();                                                        \
		}                                                                       \
	} while (0)

/* S points into [PKT, PKT + LEN) and is NUL-terminated before the end. */
static void require_inside(const uint8_t *pkt, uint32_t len, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;

	FUZZ_REQUIRE(s != NULL);
	FUZZ_REQUIRE(p >= pkt && p < pkt + len);
	FUZZ_REQUIRE(memchr(p, 0, (size_t)(pkt + len - p)) != NULL);
}

static void check_packet(const uint8_t *pkt, uint32_t len, const struct startup_packet *sp)
{
	switch (sp->kind) {
	case STARTUP_INVALID:
		FUZZ_REQUIRE(sp->sqlstate != NULL && strlen(sp->sqlstate) == 5);
		FUZZ_REQUIRE(sp->error != NULL && sp->error[0] != '\0');
		break;
	case STARTUP_SSL:
		FUZZ_REQUIRE(len == 8 && codec_get32(pkt + 4) == PG_SSL_REQUEST_CODE);
		break;
	case STARTUP_GSSENC:
		FUZZ_REQUIRE(len == 8 && codec_get32(pkt + 4) == PG_GSSENC_REQUEST_CODE);
		break;
	case STARTUP_CANCEL:
		FUZZ_REQUIRE(len == 16 && codec_get32(pkt + 4) == PG_CANCEL_REQUEST_CODE);
		FUZZ_REQUIRE(sp->cancel_pid == codec_get32(pkt + 8));
		FUZZ_REQUIRE(sp->cancel_key == codec_get32(pkt + 12));
		break;
	case STARTUP_MESSAGE:
		FUZZ_REQUIRE(len >= 9 && codec_get32(pkt) == len);
		FUZZ_REQUIRE(sp->version == codec_get32(pkt + 4) && sp->version >> 16 == 3);
		FUZZ_REQUIRE(sp->n_params >= 0 && sp->n_params <= STARTUP_MAX_PARAMS);
		/* the packet ends with the terminating empty name */
		FUZZ_REQUIRE(pkt[len - 1] == 0);
		for (int i = 0; i < sp->n_params; i++) {
			require_inside(pkt + 8, len - 8, sp->params[i].name);
			require_inside(pkt + 8, len - 8, sp->params[i].value);
			FUZZ_REQUIRE(sp->params[i].name[0] != '\0');
		}
		require_inside(pkt + 8, len - 8, sp->user);
		FUZZ_REQUIRE(sp->user[0] != '\0');
		FUZZ_REQUIRE(sp->user == startup_param(sp, "user"));
		require_inside(pkt + 8, len - 8, sp->database);
		FUZZ_REQUIRE(sp->database[0] != '\0');
		FUZZ_REQUIRE(sp->database == sp->user || sp->database == startup_param(sp, "database"));
		break;
	default:
		FUZZ_REQUIRE(!"unknown startup_kind");
	}
}

/* Build the packet again with msg.c and check that it parses the same. */
static void check_rebuilt(const uint8_t *pkt, uint32_t len, const struct startup_packet *sp)
{
	const char *extra[2 * STARTUP_MAX_PARAMS + 1];
	struct startup_packet again;
	const char *db_param;
	struct buf b;
	int n = 0, k = 2;

	buf_init(&b);
	switch (sp->kind) {
	case STARTUP_SSL:
		FUZZ_REQUIRE(msg_ssl_request(&b) && b.len == len && memcmp(b.data, pkt, len) == 0);
		break;
	case STARTUP_CANCEL:
		FUZZ_REQUIRE(msg_cancel_request(&b, sp->cancel_pid, sp->cancel_key));
		FUZZ_REQUIRE(b.len == len && memcmp(b.data, pkt, len) == 0);
		break;
	case STARTUP_MESSAGE:
		/* user and database first, then every other parameter in order */
		db_param = startup_param(sp, "database");
		for (int i = 0; i < sp->n_params; i++) {
			if (sp->params[i].value == sp->user && strcmp(sp->params[i].name, "user") == 0)
				continue;
			if (db_param && sp->params[i].value == db_param && strcmp(sp->params[i].name, "database") == 0)
				continue;
			extra[n++] = sp->params[i].name;
			extra[n++] = sp->params[i].value;
		}
		extra[n] = NULL;
		FUZZ_REQUIRE(msg_startup(&b, sp->user, sp->database, extra));
		FUZZ_REQUIRE(b.len <= UINT32_MAX);
		startup_parse(b.data, (uint32_t)b.len, &again);
		if (n / 2 + 2 > STARTUP_MAX_PARAMS) {
			FUZZ_REQUIRE(again.kind == STARTUP_INVALID);
			break;
		}
		FUZZ_REQUIRE(again.kind == STARTUP_MESSAGE && again.version == PG_PROTOCOL_V3);
		FUZZ_REQUIRE(strcmp(again.user, sp->user) == 0);
		FUZZ_REQUIRE(strcmp(again.database, sp->database) == 0);
		FUZZ_REQUIRE(again.n_params == 2 + n / 2);
		for (int i = 0; i < n; i += 2, k++) {
			FUZZ_REQUIRE(strcmp(again.params[k].name, extra[i]) == 0);
			FUZZ_REQUIRE(strcmp(again.params[k].value, extra[i + 1]) == 0);
		}
		break;
	default:
		break;
	}
	buf_free(&b);
}

/* Parse LEN bytes of DATA from a private heap copy of exactly LEN bytes. */
static void parse_copy(const uint8_t *data, uint32_t len)
{
	struct startup_packet sp;
	uint8_t *pkt = malloc(len ? len : 1);

	if (!pkt)
		return;
	memcpy(pkt, data, len);
	startup_parse(pkt, len, &sp);
	check_packet(pkt, len, &sp);
	check_rebuilt(pkt, len, &sp);
	free(pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	if (size > 1u << 20)
		return 0;

	/* The whole input as one packet, the length word notwithstanding. */
	parse_copy(data, (uint32_t)size);

	/* The input as a stream of packets, as login.c consumes it. */
	while (pos < size) {
		uint32_t avail = (uint32_t)(size - pos), len = 0;
		int r = startup_frame(data + pos, avail, FUZZ_MAX_STARTUP, &len);

		if (r == 0) {
			FUZZ_REQUIRE(avail < 4);
			break;
		}
		if (r < 0) {
			uint32_t declared = codec_get32(data + pos);

			FUZZ_REQUIRE(declared < 8 || declared > FUZZ_MAX_STARTUP);
			break;
		}
		FUZZ_REQUIRE(r == 1 && len >= 8 && len <= FUZZ_MAX_STARTUP);
		FUZZ_REQUIRE(len == codec_get32(data + pos));
		if (avail < len)
			break; /* the proxy would wait for more */
		parse_copy(data + pos, len);
		pos += len;
	}
	return 0;
}
