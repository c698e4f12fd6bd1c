/*
 * test_scram.c - SCRAM-SHA-256(-PLUS) state machines and md5 password
 * authentication: published and independently computed vectors, full
 * client <-> server exchanges, channel binding, key reuse, and hostile
 * messages (which must be rejected without crashing; run under ASan).
 *
 * Expected values other than RFC 7677's were computed with Python's
 * hashlib/hmac, independently of this code.
 */
#include <stdlib.h>

#include "pgchorus/md5auth.h"
#include "pgchorus/scram.h"
#include "runner.h"

/* RFC 7677, section 3 */
#define RFC_SALT_B64 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CNONCE
#define RFC_SERVER_FIRST "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT_B64 ",i=4096"
#define RFC_CLIENT_FINAL \
	"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* The verifier PostgreSQL would store for "pencil" with that salt. */
#define PENCIL_VERIFIER \
	"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=" \
	":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
/* The same exchange as PostgreSQL's clients run it: "n=" without a user. */
#define PG_CLIENT_FIRST "n,,n=,r=" RFC_CNONCE
#define PG_CLIENT_FINAL \
	"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k="
#define PG_SERVER_FINAL "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg="
/* ... and bound to the fake tls-server-end-point data 00 01 .. 1f. */
#define PG_PLUS_CLIENT_FIRST "p=tls-server-end-point,,n=,r=" RFC_CNONCE
#define PG_PLUS_CLIENT_FINAL \
	"c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" \
	",r=" RFC_CNONCE RFC_SNONCE ",p=Q8h71kjaoMzNI7dPksDrhRE/5mTUObF0fUHVIgBOWQg="
#define PG_PLUS_SERVER_FINAL "v=ykwoqH8mLqO5AQCeuwwf6lsj9f8zyJZT/CcvAbN4Ssc="

/* base64 of 6 and 66 zero bytes */
#define A8 "AAAAAAAA"
#define A88 A8 A8 A8 A8 A8 A8 A8 A8 A8 A8 A8

static const uint8_t rfc_salt[16] = {
	0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
	0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81,
};

static uint8_t fake_cbind[32];
static uint8_t other_cbind[32];

static void init_cbind(void)
{
	for (int i = 0; i < 32; i++) {
		fake_cbind[i] = (uint8_t)i;
		other_cbind[i] = (uint8_t)(i + 1);
	}
}

/* The verifier of "pencil" with the RFC salt, computed once (PBKDF2 is slow). */
static const struct scram_secret *pencil(void)
{
	static struct scram_secret s;
	static bool done;

	if (!done) {
		done = scram_secret_from_password("pencil", rfc_salt, 16, 4096, &s);
		if (!done)
			abort();
	}
	return &s;
}

static int server_first(struct scram_server *srv, const char *mech, const char *msg, char *out)
{
	return scram_server_handle_first(srv, mech, msg, strlen(msg), out, SCRAM_MAX_OUTPUT);
}

static int server_final(struct scram_server *srv, const char *msg, char *out)
{
	return scram_server_handle_final(srv, msg, strlen(msg), out, SCRAM_MAX_OUTPUT);
}

/* A server with the RFC nonce that has answered CLIENT_FIRST. */
static bool rfc_server_waiting_final(struct scram_server *srv, const uint8_t *cbind,
				     const char *mech, const char *client_first)
{
	char out[SCRAM_MAX_OUTPUT];

	return scram_server_init(srv, pencil(), cbind, cbind ? 32 : 0) == SCRAM_OK &&
	       scram_server_set_nonce_for_test(srv, RFC_SNONCE) == SCRAM_OK &&
	       server_first(srv, mech, client_first, out) == SCRAM_OK &&
	       strcmp(out, RFC_SERVER_FIRST) == 0;
}

/*
 * Run a whole exchange between CLI (initialized) and SRV (initialized);
 * returns the first error, or SCRAM_OK.  *SIDE tells who failed: 's' or 'c'.
 */
static int exchange(struct scram_client *cli, struct scram_server *srv, char *side)
{
	char a[SCRAM_MAX_OUTPUT], b[SCRAM_MAX_OUTPUT];
	int rc;

	*side = 'c';
	if ((rc = scram_client_first(cli, a, sizeof(a))) != SCRAM_OK)
		return rc;
	*side = 's';
	if ((rc = server_first(srv, scram_client_mechanism(cli), a, b)) != SCRAM_OK)
		return rc;
	*side = 'c';
	if ((rc = scram_client_handle_server_first(cli, b, strlen(b), a, sizeof(a))) != SCRAM_OK)
		return rc;
	*side = 's';
	if ((rc = server_final(srv, a, b)) != SCRAM_OK)
		return rc;
	*side = 'c';
	return scram_client_handle_server_final(cli, b, strlen(b));
}

/* ------------------------------------------------------------------------ */

TEST(test_scram_rfc7677_server)
{
	struct scram_server srv;
	struct scram_secret keys;
	char out[SCRAM_MAX_OUTPUT];

	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(!scram_server_offers_plus(&srv));
	REQUIRE(scram_server_set_nonce_for_test(&srv, RFC_SNONCE) == SCRAM_OK);
	/* The RFC sends a user name: accepted, ignored, but part of AuthMessage. */
	REQUIRE(server_first(&srv, SCRAM_MECHANISM, RFC_CLIENT_FIRST, out) == SCRAM_OK);
	CHECK_STREQ(out, RFC_SERVER_FIRST);
	CHECK(!scram_server_get_keys(&srv, &keys));
	REQUIRE(server_final(&srv, RFC_CLIENT_FINAL, out) == SCRAM_OK);
	CHECK_STREQ(out, RFC_SERVER_FINAL);
	REQUIRE(scram_server_get_keys(&srv, &keys));
	CHECK(keys.has_client_key);
	CHECK(memcmp(keys.client_key, pencil()->client_key, SCRAM_KEY_LEN) == 0);
	CHECK(memcmp(keys.stored_key, pencil()->stored_key, SCRAM_KEY_LEN) == 0);
	CHECK(keys.iterations == 4096 && keys.salt_len == 16);
	scram_server_wipe(&srv);
	CHECK(!scram_server_get_keys(&srv, &keys));
}

TEST(test_scram_verifier_roundtrip)
{
	struct scram_secret s;
	char v[SCRAM_MAX_VERIFIER_LEN];
	struct scram_server srv;
	char out[SCRAM_MAX_OUTPUT];

	REQUIRE(scram_format_verifier(pencil(), v, sizeof(v)));
	CHECK_STREQ(v, PENCIL_VERIFIER);
	CHECK(!scram_format_verifier(pencil(), v, 40)); /* too small */
	CHECK_STREQ(v, "");

	REQUIRE(scram_parse_verifier(PENCIL_VERIFIER, &s));
	CHECK(s.iterations == 4096 && s.salt_len == 16 && !s.has_client_key);
	CHECK(memcmp(s.salt, rfc_salt, 16) == 0);
	CHECK(memcmp(s.stored_key, pencil()->stored_key, SCRAM_KEY_LEN) == 0);
	CHECK(memcmp(s.server_key, pencil()->server_key, SCRAM_KEY_LEN) == 0);

	/* A server knowing only the parsed verifier runs the RFC exchange. */
	REQUIRE(scram_server_init(&srv, &s, NULL, 0) == SCRAM_OK);
	REQUIRE(scram_server_set_nonce_for_test(&srv, RFC_SNONCE) == SCRAM_OK);
	REQUIRE(server_first(&srv, SCRAM_MECHANISM, RFC_CLIENT_FIRST, out) == SCRAM_OK);
	REQUIRE(server_final(&srv, RFC_CLIENT_FINAL, out) == SCRAM_OK);
	CHECK_STREQ(out, RFC_SERVER_FINAL);

	/* scram_make_verifier: random salt, parseable, 4096 iterations */
	{
		char v2[SCRAM_MAX_VERIFIER_LEN];

		REQUIRE(scram_make_verifier("pencil", v, sizeof(v)));
		REQUIRE(scram_make_verifier("pencil", v2, sizeof(v2)));
		CHECK(strcmp(v, v2) != 0);
		REQUIRE(scram_parse_verifier(v, &s));
		CHECK(s.iterations == 4096 && s.salt_len == 16);
	}
}

TEST(test_scram_verifier_rejects)
{
	static const char *const bad[] = {
		"",
		"SCRAM-SHA-256$",
		"SCRAM-SHA-1$4096:" RFC_SALT_B64 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$0:" RFC_SALT_B64 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$2147483648:" RFC_SALT_B64 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$-1:" RFC_SALT_B64 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7so!sUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		/* StoredKey of 31 bytes */
		"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4g=="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		/* ServerKey missing, or followed by garbage */
		"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
		"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU= ",
		"SCRAM-SHA-256$4096:" RFC_SALT_B64 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=:x",
		/* salt of 66 bytes (88 characters): above SCRAM_MAX_SALT_LEN */
		"SCRAM-SHA-256$4096:" A88 "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
		":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"md553f48b7c4b76a86ce72276c5755f217d",
	};
	struct scram_secret s;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool ok = scram_parse_verifier(bad[i], &s);

		if (ok)
			fprintf(stderr, "    accepted: %s\n", bad[i]);
		CHECK(!ok);
		CHECK(s.iterations == 0 && s.salt_len == 0);
	}
	CHECK(!scram_parse_verifier(NULL, &s));
}

TEST(test_scram_pg_client_vector)
{
	struct scram_client cli;
	char out[SCRAM_MAX_OUTPUT];

	REQUIRE(scram_client_init(&cli, "pencil", NULL, NULL, 0, false) == SCRAM_OK);
	CHECK_STREQ(scram_client_mechanism(&cli), "SCRAM-SHA-256");
	REQUIRE(scram_client_set_nonce_for_test(&cli, RFC_CNONCE) == SCRAM_OK);
	REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
	CHECK_STREQ(out, PG_CLIENT_FIRST);
	REQUIRE(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
						 out, sizeof(out)) == SCRAM_OK);
	CHECK_STREQ(out, PG_CLIENT_FINAL);
	CHECK(scram_client_handle_server_final(&cli, PG_SERVER_FINAL, strlen(PG_SERVER_FINAL)) ==
	      SCRAM_OK);
	CHECK(cli.state == SCRAM_CLIENT_DONE);

	/* The server side agrees on the same vector. */
	{
		struct scram_server srv;

		REQUIRE(rfc_server_waiting_final(&srv, NULL, SCRAM_MECHANISM, PG_CLIENT_FIRST));
		REQUIRE(server_final(&srv, PG_CLIENT_FINAL, out) == SCRAM_OK);
		CHECK_STREQ(out, PG_SERVER_FINAL);
	}
}

TEST(test_scram_plus_vector)
{
	struct scram_client cli;
	struct scram_server srv;
	char out[SCRAM_MAX_OUTPUT];

	init_cbind();
	REQUIRE(scram_client_init(&cli, "pencil", NULL, fake_cbind, 32, true) == SCRAM_OK);
	CHECK_STREQ(scram_client_mechanism(&cli), "SCRAM-SHA-256-PLUS");
	REQUIRE(scram_client_set_nonce_for_test(&cli, RFC_CNONCE) == SCRAM_OK);
	REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
	CHECK_STREQ(out, PG_PLUS_CLIENT_FIRST);
	REQUIRE(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
						 out, sizeof(out)) == SCRAM_OK);
	CHECK_STREQ(out, PG_PLUS_CLIENT_FINAL);
	CHECK(scram_client_handle_server_final(&cli, PG_PLUS_SERVER_FINAL,
					       strlen(PG_PLUS_SERVER_FINAL)) == SCRAM_OK);

	REQUIRE(rfc_server_waiting_final(&srv, fake_cbind, SCRAM_MECHANISM_PLUS,
					 PG_PLUS_CLIENT_FIRST));
	CHECK(scram_server_offers_plus(&srv));
	REQUIRE(server_final(&srv, PG_PLUS_CLIENT_FINAL, out) == SCRAM_OK);
	CHECK_STREQ(out, PG_PLUS_SERVER_FINAL);

	/* Same messages, but the server's TLS connection has other binding data. */
	REQUIRE(rfc_server_waiting_final(&srv, other_cbind, SCRAM_MECHANISM_PLUS,
					 PG_PLUS_CLIENT_FIRST));
	CHECK(server_final(&srv, PG_PLUS_CLIENT_FINAL, out) == SCRAM_ERR_CBIND);
	CHECK_STREQ(out, "");
}

TEST(test_scram_exchange_password)
{
	struct scram_client cli;
	struct scram_server srv;
	struct scram_secret s;
	char v[SCRAM_MAX_VERIFIER_LEN], side;

	REQUIRE(scram_make_verifier("correct horse", v, sizeof(v)));
	REQUIRE(scram_parse_verifier(v, &s));
	REQUIRE(scram_server_init(&srv, &s, NULL, 0) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "correct horse", NULL, NULL, 0, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_OK);
	CHECK(srv.state == SCRAM_SERVER_DONE && cli.state == SCRAM_CLIENT_DONE);

	/* A non-ASCII password is used as raw bytes on both sides. */
	REQUIRE(scram_make_verifier("p\xc3\xa4ssw\xc3\xb6rd", v, sizeof(v)));
	REQUIRE(scram_parse_verifier(v, &s));
	REQUIRE(scram_server_init(&srv, &s, NULL, 0) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "p\xc3\xa4ssw\xc3\xb6rd", NULL, NULL, 0, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_OK);
}

TEST(test_scram_wrong_password)
{
	struct scram_client cli;
	struct scram_server srv;
	struct scram_secret keys;
	char side, out[SCRAM_MAX_OUTPUT];

	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "pencil2", NULL, NULL, 0, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_ERR_AUTH);
	CHECK(side == 's');
	CHECK(srv.state == SCRAM_SERVER_FAILED);
	CHECK(!scram_server_get_keys(&srv, &keys));
	/* a dead machine stays dead */
	CHECK(server_final(&srv, "c=biws", out) == SCRAM_ERR_STATE);

	/* A forged server-final: the client refuses a node that does not know the verifier. */
	REQUIRE(scram_client_init(&cli, "pencil", NULL, NULL, 0, false) == SCRAM_OK);
	REQUIRE(scram_client_set_nonce_for_test(&cli, RFC_CNONCE) == SCRAM_OK);
	REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
	REQUIRE(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
						 out, sizeof(out)) == SCRAM_OK);
	CHECK(scram_client_handle_server_final(&cli, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)) ==
	      SCRAM_ERR_AUTH);
}

TEST(test_scram_exchange_cbind)
{
	struct scram_client cli;
	struct scram_server srv;
	char side;

	init_cbind();
	/* PLUS on both sides, same TLS connection */
	REQUIRE(scram_server_init(&srv, pencil(), fake_cbind, 32) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "pencil", NULL, fake_cbind, 32, true) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_OK);

	/* A man in the middle: the two TLS connections differ. */
	REQUIRE(scram_server_init(&srv, pencil(), fake_cbind, 32) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "pencil", NULL, other_cbind, 32, true) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_ERR_CBIND);
	CHECK(side == 's');

	/* A client not using binding at all ("n") is fine even over TLS. */
	REQUIRE(scram_server_init(&srv, pencil(), fake_cbind, 32) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "pencil", NULL, NULL, 0, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_OK);

	/* "y" (could bind, server offered no PLUS): fine without TLS on the server... */
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "pencil", NULL, fake_cbind, 32, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_OK);

	/* ...but a downgrade when the server did offer PLUS. */
	REQUIRE(scram_server_init(&srv, pencil(), fake_cbind, 32) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "pencil", NULL, fake_cbind, 32, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_ERR_CBIND);
	CHECK(side == 's');

	/* PLUS asked of a server without TLS: not offered. */
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "pencil", NULL, fake_cbind, 32, true) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_ERR_PROTOCOL);

	/* PLUS without binding data on the client is a caller error. */
	CHECK(scram_client_init(&cli, "pencil", NULL, NULL, 0, true) == SCRAM_ERR_CBIND);
	CHECK(scram_client_init(&cli, "pencil", NULL, fake_cbind, SCRAM_MAX_CBIND_LEN + 1,
				false) == SCRAM_ERR_ARG);
	CHECK(scram_server_init(&srv, pencil(), fake_cbind, 0) == SCRAM_ERR_ARG);
}

TEST(test_scram_client_key_reuse)
{
	struct scram_client cli;
	struct scram_server srv;
	struct scram_secret keys, s, other;
	static const uint8_t salt2[16] = "another salt 16";
	char side;

	/* A client logs in to pgchorus; pgchorus keeps the recovered ClientKey. */
	REQUIRE(scram_parse_verifier(PENCIL_VERIFIER, &s));
	REQUIRE(scram_server_init(&srv, &s, NULL, 0) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "pencil", NULL, NULL, 0, false) == SCRAM_OK);
	REQUIRE(exchange(&cli, &srv, &side) == SCRAM_OK);
	REQUIRE(scram_server_get_keys(&srv, &keys));
	CHECK(memcmp(keys.client_key, pencil()->client_key, SCRAM_KEY_LEN) == 0);

	/* pgchorus logs in to a node holding the same verifier, without the password. */
	init_cbind();
	REQUIRE(scram_server_init(&srv, &s, fake_cbind, 32) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, NULL, &keys, fake_cbind, 32, true) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_OK);

	/* A node whose verifier has another salt: the keys are useless. */
	REQUIRE(scram_secret_from_password("pencil", salt2, 16, 4096, &other));
	REQUIRE(scram_server_init(&srv, &other, NULL, 0) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, NULL, &keys, NULL, 0, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_ERR_AUTH);
	CHECK(side == 'c');

	/* Another iteration count: useless too. */
	REQUIRE(scram_secret_from_password("pencil", rfc_salt, 16, 4097, &other));
	REQUIRE(scram_server_init(&srv, &other, NULL, 0) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, NULL, &keys, NULL, 0, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_ERR_AUTH);
	CHECK(side == 'c');

	/* With the password as well, the client falls back to it. */
	REQUIRE(scram_server_init(&srv, &other, NULL, 0) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "pencil", &keys, NULL, 0, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_OK);

	/* Keys without a ClientKey (a bare verifier) cannot log in. */
	CHECK(scram_client_init(&cli, NULL, &s, NULL, 0, false) == SCRAM_ERR_ARG);
	CHECK(scram_client_init(&cli, NULL, NULL, NULL, 0, false) == SCRAM_ERR_ARG);
}

TEST(test_scram_mock)
{
	struct scram_server srv;
	struct scram_client cli;
	char out1[SCRAM_MAX_OUTPUT], out2[SCRAM_MAX_OUTPUT], side;
	const char *s1, *s2;

	/* Stable salt for a name, as a real user has, hence not revealing absence. */
	REQUIRE(scram_server_init_mock(&srv, "ghost", NULL, 0) == SCRAM_OK);
	REQUIRE(scram_server_set_nonce_for_test(&srv, RFC_SNONCE) == SCRAM_OK);
	REQUIRE(server_first(&srv, SCRAM_MECHANISM, PG_CLIENT_FIRST, out1) == SCRAM_OK);
	REQUIRE(scram_server_init_mock(&srv, "ghost", NULL, 0) == SCRAM_OK);
	REQUIRE(scram_server_set_nonce_for_test(&srv, RFC_SNONCE) == SCRAM_OK);
	REQUIRE(server_first(&srv, SCRAM_MECHANISM, PG_CLIENT_FIRST, out2) == SCRAM_OK);
	CHECK_STREQ(out1, out2);
	s1 = strstr(out1, ",s=");
	REQUIRE(s1 != NULL);
	CHECK(strlen(s1) == strlen(",s=" RFC_SALT_B64 ",i=4096")); /* 16-byte salt */
	CHECK(strstr(out1, ",i=4096") != NULL);

	REQUIRE(scram_server_init_mock(&srv, "phantom", NULL, 0) == SCRAM_OK);
	REQUIRE(scram_server_set_nonce_for_test(&srv, RFC_SNONCE) == SCRAM_OK);
	REQUIRE(server_first(&srv, SCRAM_MECHANISM, PG_CLIENT_FIRST, out2) == SCRAM_OK);
	s2 = strstr(out2, ",s=");
	REQUIRE(s2 != NULL);
	CHECK(strcmp(s1, s2) != 0);

	/* Always fails at the end, whatever the password. */
	REQUIRE(scram_server_init_mock(&srv, "ghost", NULL, 0) == SCRAM_OK);
	REQUIRE(scram_client_init(&cli, "pencil", NULL, NULL, 0, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_ERR_AUTH);
	CHECK(side == 's');
	REQUIRE(scram_server_init_mock(&srv, "ghost", NULL, 0) == SCRAM_OK);
	REQUIRE(scram_server_set_nonce_for_test(&srv, RFC_SNONCE) == SCRAM_OK);
	REQUIRE(server_first(&srv, SCRAM_MECHANISM, PG_CLIENT_FIRST, out1) == SCRAM_OK);
	CHECK(server_final(&srv, PG_CLIENT_FINAL, out1) == SCRAM_ERR_AUTH);

	/* Channel binding is checked like for a real user. */
	init_cbind();
	REQUIRE(scram_server_init_mock(&srv, "ghost", fake_cbind, 32) == SCRAM_OK);
	CHECK(scram_server_offers_plus(&srv));
	REQUIRE(scram_client_init(&cli, "x", NULL, fake_cbind, 32, false) == SCRAM_OK);
	CHECK(exchange(&cli, &srv, &side) == SCRAM_ERR_CBIND);
}

TEST(test_scram_server_rejects_bad_first)
{
	static const struct {
		const char *mech;
		const char *msg;
		int rc;
	} cases[] = {
		{ SCRAM_MECHANISM, "", SCRAM_ERR_PROTOCOL },
		{ SCRAM_MECHANISM, "n", SCRAM_ERR_PROTOCOL },
		{ SCRAM_MECHANISM, "n,", SCRAM_ERR_PROTOCOL },
		{ SCRAM_MECHANISM, "n,,", SCRAM_ERR_PROTOCOL },
		{ SCRAM_MECHANISM, "n,,n=", SCRAM_ERR_PROTOCOL },
		{ SCRAM_MECHANISM, "n,,n=,", SCRAM_ERR_PROTOCOL },
		{ SCRAM_MECHANISM, "n,,n=,r=", SCRAM_ERR_PROTOCOL },            /* empty nonce */
		{ SCRAM_MECHANISM, "n,,n=,x=abc", SCRAM_ERR_PROTOCOL },         /* missing r= */
		{ SCRAM_MECHANISM, "n,,r=abc,n=", SCRAM_ERR_PROTOCOL },         /* wrong order */
		{ SCRAM_MECHANISM, "n,,r=abc", SCRAM_ERR_PROTOCOL },            /* missing n= */
		{ SCRAM_MECHANISM, "n,,m=ext,n=,r=abc", SCRAM_ERR_UNSUPPORTED }, /* mandatory ext: 0A000 */
		{ SCRAM_MECHANISM, "n,a=bob,n=,r=abc", SCRAM_ERR_UNSUPPORTED },  /* authzid: 0A000 */
		{ SCRAM_MECHANISM, "x,,n=,r=abc", SCRAM_ERR_PROTOCOL },         /* bad flag */
		{ SCRAM_MECHANISM, " n,,n=,r=abc", SCRAM_ERR_PROTOCOL },
		{ SCRAM_MECHANISM, "n,,n=,r=ab c", SCRAM_ERR_PROTOCOL },        /* not printable */
		{ SCRAM_MECHANISM, "n,,n=,r=ab\x7f", SCRAM_ERR_PROTOCOL },
		{ SCRAM_MECHANISM, "n,,n=,r=abc,", SCRAM_ERR_PROTOCOL },        /* trailing comma */
		{ SCRAM_MECHANISM, "n,,n=,r=abc,1=x", SCRAM_ERR_PROTOCOL },     /* bad extension */
		{ SCRAM_MECHANISM, "n,,n=,r=abc,,", SCRAM_ERR_PROTOCOL },
		{ SCRAM_MECHANISM, "p=tls-unique,,n=,r=abc", SCRAM_ERR_CBIND }, /* unknown type */
		{ SCRAM_MECHANISM, "p=tls-server-end-point,,n=,r=abc", SCRAM_ERR_CBIND }, /* no TLS */
		{ SCRAM_MECHANISM_PLUS, "n,,n=,r=abc", SCRAM_ERR_PROTOCOL },    /* not offered */
		{ "SCRAM-SHA-1", "n,,n=,r=abc", SCRAM_ERR_PROTOCOL },
		{ "", "n,,n=,r=abc", SCRAM_ERR_PROTOCOL },
	};
	struct scram_server srv;
	char out[SCRAM_MAX_OUTPUT];
	char *huge;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
		rc = server_first(&srv, cases[i].mech, cases[i].msg, out);
		if (rc != cases[i].rc)
			fprintf(stderr, "    case %zu \"%s\": got %d\n", i, cases[i].msg, rc);
		CHECK(rc == cases[i].rc);
		CHECK_STREQ(out, "");
		CHECK(srv.state == SCRAM_SERVER_FAILED);
	}

	/* Accepted: a user name (ignored) and optional extensions after the nonce. */
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(server_first(&srv, SCRAM_MECHANISM, "y,,n=bob,r=abc,x=1,Y=", out) == SCRAM_OK);

	/* With TLS: PLUS chosen but "n" or "y", or "p" with the plain mechanism. */
	init_cbind();
	REQUIRE(scram_server_init(&srv, pencil(), fake_cbind, 32) == SCRAM_OK);
	CHECK(server_first(&srv, SCRAM_MECHANISM_PLUS, "n,,n=,r=abc", out) == SCRAM_ERR_PROTOCOL);
	REQUIRE(scram_server_init(&srv, pencil(), fake_cbind, 32) == SCRAM_OK);
	CHECK(server_first(&srv, SCRAM_MECHANISM_PLUS, "y,,n=,r=abc", out) == SCRAM_ERR_PROTOCOL);
	REQUIRE(scram_server_init(&srv, pencil(), fake_cbind, 32) == SCRAM_OK);
	CHECK(server_first(&srv, SCRAM_MECHANISM, "p=tls-server-end-point,,n=,r=abc", out) ==
	      SCRAM_ERR_PROTOCOL);

	/* Every truncation of a valid message fails cleanly or is itself valid. */
	for (size_t n = 0; n <= strlen(PG_PLUS_CLIENT_FIRST); n++) {
		int rc;

		REQUIRE(scram_server_init(&srv, pencil(), fake_cbind, 32) == SCRAM_OK);
		rc = scram_server_handle_first(&srv, SCRAM_MECHANISM_PLUS, PG_PLUS_CLIENT_FIRST, n,
					       out, sizeof(out));
		if (n > strlen("p=tls-server-end-point,,n=,r="))
			CHECK(rc == SCRAM_OK); /* a shorter nonce */
		else
			CHECK(rc < 0);
	}

	/* An embedded NUL, an oversized nonce, an oversized message. */
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(scram_server_handle_first(&srv, SCRAM_MECHANISM, "n,,n=\0,r=abc", 12, out,
					sizeof(out)) == SCRAM_ERR_PROTOCOL);
	huge = malloc(1 << 20);
	REQUIRE(huge != NULL);
	memcpy(huge, "n,,n=,r=", 8);
	memset(huge + 8, 'a', (1 << 20) - 8);
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(scram_server_handle_first(&srv, SCRAM_MECHANISM, huge, 1 << 20, out, sizeof(out)) ==
	      SCRAM_ERR_PROTOCOL);
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(scram_server_handle_first(&srv, SCRAM_MECHANISM, huge, 8 + SCRAM_MAX_NONCE_LEN, out,
					sizeof(out)) == SCRAM_ERR_PROTOCOL);
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(scram_server_handle_first(&srv, SCRAM_MECHANISM, huge,
					8 + SCRAM_MAX_NONCE_LEN - SCRAM_NONCE_LEN, out,
					sizeof(out)) == SCRAM_OK);
	/* a user name that fills the message */
	memset(huge + 5, 'u', SCRAM_MAX_MESSAGE - 11);
	memcpy(huge + SCRAM_MAX_MESSAGE - 6, ",r=abc", 6);
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(scram_server_handle_first(&srv, SCRAM_MECHANISM, huge, SCRAM_MAX_MESSAGE, out,
					sizeof(out)) == SCRAM_OK);
	free(huge);
	/* NULL message */
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(scram_server_handle_first(&srv, SCRAM_MECHANISM, NULL, 0, out, sizeof(out)) ==
	      SCRAM_ERR_PROTOCOL);
}

TEST(test_scram_server_rejects_bad_final)
{
#define NONCE RFC_CNONCE RFC_SNONCE
#define PROOF "qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k="
	static const struct {
		const char *msg;
		int rc;
	} cases[] = {
		{ "", SCRAM_ERR_PROTOCOL },
		{ "c=biws", SCRAM_ERR_PROTOCOL },
		{ "c=biws,", SCRAM_ERR_PROTOCOL },
		{ "c=biws,r=" NONCE, SCRAM_ERR_PROTOCOL },                      /* no proof */
		{ "c=biws,r=" NONCE ",", SCRAM_ERR_PROTOCOL },
		{ "c=biws,r=" NONCE ",p=", SCRAM_ERR_PROTOCOL },
		{ "r=" NONCE ",c=biws,p=" PROOF, SCRAM_ERR_PROTOCOL },           /* order */
		{ "c=biws,p=" PROOF ",r=" NONCE, SCRAM_ERR_PROTOCOL },
		{ "c=biws,p=" PROOF, SCRAM_ERR_PROTOCOL },                        /* no nonce */
		{ "c=bi!s,r=" NONCE ",p=" PROOF, SCRAM_ERR_PROTOCOL },            /* bad base64 */
		{ "c=biw,r=" NONCE ",p=" PROOF, SCRAM_ERR_PROTOCOL },
		{ "c=eSws,r=" NONCE ",p=" PROOF, SCRAM_ERR_CBIND },               /* "y,," after "n" */
		{ "c=,r=" NONCE ",p=" PROOF, SCRAM_ERR_CBIND },
		{ "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=" NONCE ",p=" PROOF, SCRAM_ERR_CBIND },
		{ "c=biws,r=" RFC_CNONCE ",p=" PROOF, SCRAM_ERR_PROTOCOL },       /* nonce cut */
		{ "c=biws,r=" NONCE "x,p=" PROOF, SCRAM_ERR_PROTOCOL },
		{ "c=biws,r=" NONCE ",p=" PROOF ",x=1", SCRAM_ERR_PROTOCOL },     /* proof not last */
		{ "c=biws,r=" NONCE ",p=" PROOF "AAAA", SCRAM_ERR_PROTOCOL },     /* 35 bytes */
		{ "c=biws,r=" NONCE ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9=",
		  SCRAM_ERR_PROTOCOL },
		{ "c=biws,r=" NONCE ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4", SCRAM_ERR_PROTOCOL },
		{ "c=biws,r=" NONCE ",p=" PROOF " ", SCRAM_ERR_PROTOCOL },
		{ "c=biws,r=" NONCE ",1=x,p=" PROOF, SCRAM_ERR_PROTOCOL },
		/* well formed, an extension before the proof (changes AuthMessage) */
		{ "c=biws,r=" NONCE ",x=ext,p=" PROOF, SCRAM_ERR_AUTH },
		/* well formed, wrong proof */
		{ "c=biws,r=" NONCE ",p=" A8 A8 A8 A8 A8 "AAA=", SCRAM_ERR_AUTH },
		{ "c=biws,r=" NONCE ",p=" PROOF, SCRAM_OK },
	};
	struct scram_server srv;
	char out[SCRAM_MAX_OUTPUT];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		REQUIRE(rfc_server_waiting_final(&srv, NULL, SCRAM_MECHANISM, PG_CLIENT_FIRST));
		rc = server_final(&srv, cases[i].msg, out);
		if (rc != cases[i].rc)
			fprintf(stderr, "    case %zu \"%s\": got %d\n", i, cases[i].msg, rc);
		CHECK(rc == cases[i].rc);
		if (rc != SCRAM_OK)
			CHECK_STREQ(out, "");
	}

	/* Every proper truncation of the valid message fails. */
	for (size_t n = 0; n < strlen(PG_CLIENT_FINAL); n++) {
		REQUIRE(rfc_server_waiting_final(&srv, NULL, SCRAM_MECHANISM, PG_CLIENT_FIRST));
		CHECK(scram_server_handle_final(&srv, PG_CLIENT_FINAL, n, out, sizeof(out)) < 0);
	}

	/* Output buffer too small for "v=...": no success reported. */
	REQUIRE(rfc_server_waiting_final(&srv, NULL, SCRAM_MECHANISM, PG_CLIENT_FIRST));
	CHECK(scram_server_handle_final(&srv, PG_CLIENT_FINAL, strlen(PG_CLIENT_FINAL), out, 10) ==
	      SCRAM_ERR_ARG);
	CHECK(srv.state == SCRAM_SERVER_FAILED);
#undef NONCE
#undef PROOF
}

TEST(test_scram_client_rejects_bad_server_first)
{
#define N RFC_CNONCE RFC_SNONCE
	static const struct {
		const char *msg;
		int rc;
	} cases[] = {
		{ "", SCRAM_ERR_PROTOCOL },
		{ "r=", SCRAM_ERR_PROTOCOL },
		{ "r=" RFC_CNONCE ",s=" RFC_SALT_B64 ",i=4096", SCRAM_ERR_PROTOCOL }, /* no extension */
		{ "r=XX" RFC_SNONCE ",s=" RFC_SALT_B64 ",i=4096", SCRAM_ERR_PROTOCOL }, /* not ours */
		{ "r=" RFC_SNONCE RFC_CNONCE ",s=" RFC_SALT_B64 ",i=4096", SCRAM_ERR_PROTOCOL },
		{ "r=" N "\x01,s=" RFC_SALT_B64 ",i=4096", SCRAM_ERR_PROTOCOL },
		{ "m=x,r=" N ",s=" RFC_SALT_B64 ",i=4096", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",i=4096,s=" RFC_SALT_B64, SCRAM_ERR_PROTOCOL },            /* order */
		{ "s=" RFC_SALT_B64 ",r=" N ",i=4096", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=" RFC_SALT_B64, SCRAM_ERR_PROTOCOL },                    /* no i= */
		{ "r=" N ",i=4096", SCRAM_ERR_PROTOCOL },                            /* no s= */
		{ "r=" N ",s=,i=4096", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=W22ZaJ0SNY7soEsUEjb6g%==,i=4096", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=" RFC_SALT_B64 ",i=", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=" RFC_SALT_B64 ",i=0", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=" RFC_SALT_B64 ",i=-1", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=" RFC_SALT_B64 ",i=+4096", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=" RFC_SALT_B64 ",i=4096x", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=" RFC_SALT_B64 ",i=2147483648", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=" RFC_SALT_B64 ",i=99999999999999999999", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=" RFC_SALT_B64 ",i=4096,", SCRAM_ERR_PROTOCOL },
		{ "r=" N ",s=" RFC_SALT_B64 ",i=4096,x=1", SCRAM_ERR_PROTOCOL },
		{ "e=other-error", SCRAM_ERR_PROTOCOL },
		/* salt of 66 bytes */
		{ "r=" N ",s=" A88 ",i=4096", SCRAM_ERR_PROTOCOL },
		/* well formed, other salt: keys-only client cannot answer */
		{ "r=" N ",s=AAAAAAAAAAAAAAAAAAAAAA==,i=4096", SCRAM_ERR_AUTH },
		{ "r=" N ",s=" RFC_SALT_B64 ",i=2147483647", SCRAM_ERR_AUTH },
		{ RFC_SERVER_FIRST, SCRAM_OK },
	};
	struct scram_client cli;
	char out[SCRAM_MAX_OUTPUT];
	char *huge;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		REQUIRE(scram_client_init(&cli, NULL, pencil(), NULL, 0, false) == SCRAM_OK);
		REQUIRE(scram_client_set_nonce_for_test(&cli, RFC_CNONCE) == SCRAM_OK);
		REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
		rc = scram_client_handle_server_first(&cli, cases[i].msg, strlen(cases[i].msg), out,
						      sizeof(out));
		if (rc != cases[i].rc)
			fprintf(stderr, "    case %zu \"%s\": got %d\n", i, cases[i].msg, rc);
		CHECK(rc == cases[i].rc);
		if (rc == SCRAM_OK)
			CHECK_STREQ(out, PG_CLIENT_FINAL);
		else
			CHECK_STREQ(out, "");
	}

	/* Truncations and an oversized message. */
	for (size_t n = 0; n < strlen(RFC_SERVER_FIRST); n++) {
		REQUIRE(scram_client_init(&cli, NULL, pencil(), NULL, 0, false) == SCRAM_OK);
		REQUIRE(scram_client_set_nonce_for_test(&cli, RFC_CNONCE) == SCRAM_OK);
		REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
		CHECK(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST, n, out, sizeof(out)) <
		      0);
	}
	huge = malloc(1 << 16);
	REQUIRE(huge != NULL);
	memset(huge, 'a', 1 << 16);
	memcpy(huge, "r=" RFC_CNONCE, strlen("r=" RFC_CNONCE));
	REQUIRE(scram_client_init(&cli, NULL, pencil(), NULL, 0, false) == SCRAM_OK);
	REQUIRE(scram_client_set_nonce_for_test(&cli, RFC_CNONCE) == SCRAM_OK);
	REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
	CHECK(scram_client_handle_server_first(&cli, huge, 1 << 16, out, sizeof(out)) ==
	      SCRAM_ERR_PROTOCOL);
	free(huge);
#undef N
}

TEST(test_scram_client_rejects_bad_server_final)
{
	static const struct {
		const char *msg;
		int rc;
	} cases[] = {
		{ "", SCRAM_ERR_PROTOCOL },
		{ "v=", SCRAM_ERR_PROTOCOL },
		{ "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg", SCRAM_ERR_PROTOCOL },
		{ "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=,x=1", SCRAM_ERR_PROTOCOL },
		{ "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg= ", SCRAM_ERR_PROTOCOL },
		{ "x=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=", SCRAM_ERR_PROTOCOL },
		{ "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOgAAAA", SCRAM_ERR_PROTOCOL },
		{ RFC_SERVER_FINAL, SCRAM_ERR_AUTH },       /* signature of another exchange */
		{ "e=invalid-proof", SCRAM_ERR_AUTH },
		{ PG_SERVER_FINAL, SCRAM_OK },
	};
	struct scram_client cli;
	char out[SCRAM_MAX_OUTPUT];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		REQUIRE(scram_client_init(&cli, NULL, pencil(), NULL, 0, false) == SCRAM_OK);
		REQUIRE(scram_client_set_nonce_for_test(&cli, RFC_CNONCE) == SCRAM_OK);
		REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
		REQUIRE(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST,
							 strlen(RFC_SERVER_FIRST), out,
							 sizeof(out)) == SCRAM_OK);
		rc = scram_client_handle_server_final(&cli, cases[i].msg, strlen(cases[i].msg));
		if (rc != cases[i].rc)
			fprintf(stderr, "    case %zu \"%s\": got %d\n", i, cases[i].msg, rc);
		CHECK(rc == cases[i].rc);
	}
	/* the server's error text is kept, made printable */
	REQUIRE(scram_client_init(&cli, NULL, pencil(), NULL, 0, false) == SCRAM_OK);
	REQUIRE(scram_client_set_nonce_for_test(&cli, RFC_CNONCE) == SCRAM_OK);
	REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
	REQUIRE(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
						 out, sizeof(out)) == SCRAM_OK);
	CHECK(scram_client_handle_server_final(&cli, "e=channel-bindings-dont-match\n", 30) ==
	      SCRAM_ERR_AUTH);
	CHECK_STREQ(cli.server_error, "channel-bindings-dont-match?");
}

TEST(test_scram_state_and_args)
{
	struct scram_client cli;
	struct scram_server srv;
	char out[SCRAM_MAX_OUTPUT];
	char longpw[SCRAM_MAX_PASSWORD_LEN + 2];

	/* out of order */
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(server_final(&srv, PG_CLIENT_FINAL, out) == SCRAM_ERR_STATE);
	CHECK(server_first(&srv, SCRAM_MECHANISM, PG_CLIENT_FIRST, out) == SCRAM_ERR_STATE);
	REQUIRE(scram_client_init(&cli, "pencil", NULL, NULL, 0, false) == SCRAM_OK);
	CHECK(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST),
					       out, sizeof(out)) == SCRAM_ERR_STATE);
	CHECK(scram_client_first(&cli, out, sizeof(out)) == SCRAM_ERR_STATE);
	REQUIRE(scram_client_init(&cli, "pencil", NULL, NULL, 0, false) == SCRAM_OK);
	REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
	CHECK(scram_client_first(&cli, out, sizeof(out)) == SCRAM_ERR_STATE);
	CHECK(scram_client_set_nonce_for_test(&cli, "abc") == SCRAM_ERR_STATE);

	/* output buffers too small */
	REQUIRE(scram_client_init(&cli, "pencil", NULL, NULL, 0, false) == SCRAM_OK);
	CHECK(scram_client_first(&cli, out, 8) == SCRAM_ERR_ARG);
	CHECK_STREQ(out, "");
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(scram_server_handle_first(&srv, SCRAM_MECHANISM, PG_CLIENT_FIRST,
					strlen(PG_CLIENT_FIRST), out, 16) == SCRAM_ERR_ARG);
	CHECK_STREQ(out, "");

	/* bad nonces for tests, bad arguments */
	REQUIRE(scram_server_init(&srv, pencil(), NULL, 0) == SCRAM_OK);
	CHECK(scram_server_set_nonce_for_test(&srv, "") == SCRAM_ERR_ARG);
	CHECK(scram_server_set_nonce_for_test(&srv, "a,b") == SCRAM_ERR_ARG);
	CHECK(scram_server_set_nonce_for_test(&srv, "a b") == SCRAM_ERR_ARG);
	memset(longpw, 'x', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	CHECK(scram_server_set_nonce_for_test(&srv, longpw) == SCRAM_ERR_ARG);
	CHECK(scram_client_init(&cli, longpw, NULL, NULL, 0, false) == SCRAM_ERR_ARG);
	longpw[SCRAM_MAX_PASSWORD_LEN] = '\0';
	CHECK(scram_client_init(&cli, longpw, NULL, NULL, 0, false) == SCRAM_OK);
	{
		struct scram_secret bad = *pencil();

		bad.salt_len = 0;
		CHECK(scram_server_init(&srv, &bad, NULL, 0) == SCRAM_ERR_ARG);
		CHECK(server_first(&srv, SCRAM_MECHANISM, PG_CLIENT_FIRST, out) == SCRAM_ERR_STATE);
		CHECK(!scram_secret_from_password("x", rfc_salt, 0, 4096, &bad));
		CHECK(!scram_secret_from_password("x", rfc_salt, 16, 0, &bad));
		CHECK(!scram_secret_from_password("x", rfc_salt, SCRAM_MAX_SALT_LEN + 1, 1, &bad));
	}
	CHECK(scram_server_init_mock(&srv, NULL, NULL, 0) == SCRAM_ERR_ARG);
	CHECK(strcmp(scram_strerror(SCRAM_ERR_CBIND), scram_strerror(SCRAM_ERR_AUTH)) != 0);
}

/* Deterministic random mutations of valid messages: nothing may crash. */
static uint32_t rng_state = 0x12345678u;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static size_t mutate(const char *src, char *dst, size_t cap)
{
	static const char interesting[] = ",=\0 nrpcsiemvy+/AZ09\x7f\x80\xff";
	size_t len = strlen(src);
	int edits = 1 + (int)(rng() % 4);

	memcpy(dst, src, len);
	while (edits--) {
		size_t pos = len ? rng() % len : 0;

		switch (rng() % 4) {
		case 0: /* overwrite */
			if (len)
				dst[pos] = interesting[rng() % (sizeof(interesting) - 1)];
			break;
		case 1: /* truncate */
			len = pos;
			break;
		case 2: /* insert */
			if (len + 1 < cap) {
				memmove(dst + pos + 1, dst + pos, len - pos);
				dst[pos] = interesting[rng() % (sizeof(interesting) - 1)];
				len++;
			}
			break;
		default: /* delete */
			if (len) {
				memmove(dst + pos, dst + pos + 1, len - pos - 1);
				len--;
			}
			break;
		}
	}
	return len;
}

TEST(test_scram_fuzz_no_crash)
{
	struct scram_server srv;
	struct scram_client cli;
	char msg[SCRAM_MAX_MESSAGE], out[SCRAM_MAX_OUTPUT];
	int accepted = 0;

	init_cbind();
	for (int i = 0; i < 3000; i++) {
		size_t n;
		int rc;

		/* server, first message (with TLS, so PLUS paths run too) */
		REQUIRE(scram_server_init(&srv, pencil(), fake_cbind, 32) == SCRAM_OK);
		n = mutate(i % 2 ? PG_PLUS_CLIENT_FIRST : "y,,n=,r=abc", msg, sizeof(msg));
		rc = scram_server_handle_first(&srv, i % 2 ? SCRAM_MECHANISM_PLUS : SCRAM_MECHANISM,
					       msg, n, out, sizeof(out));
		CHECK(rc <= 0);
		accepted += rc == SCRAM_OK;

		/* server, final message */
		REQUIRE(rfc_server_waiting_final(&srv, fake_cbind, SCRAM_MECHANISM_PLUS,
						 PG_PLUS_CLIENT_FIRST));
		n = mutate(PG_PLUS_CLIENT_FINAL, msg, sizeof(msg));
		rc = scram_server_handle_final(&srv, msg, n, out, sizeof(out));
		CHECK(rc <= 0);

		/* client, both server messages (keys only: no PBKDF2 on odd counts) */
		REQUIRE(scram_client_init(&cli, NULL, pencil(), NULL, 0, false) == SCRAM_OK);
		REQUIRE(scram_client_set_nonce_for_test(&cli, RFC_CNONCE) == SCRAM_OK);
		REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
		n = mutate(RFC_SERVER_FIRST, msg, sizeof(msg));
		rc = scram_client_handle_server_first(&cli, msg, n, out, sizeof(out));
		CHECK(rc <= 0);
		REQUIRE(scram_client_init(&cli, NULL, pencil(), NULL, 0, false) == SCRAM_OK);
		REQUIRE(scram_client_set_nonce_for_test(&cli, RFC_CNONCE) == SCRAM_OK);
		REQUIRE(scram_client_first(&cli, out, sizeof(out)) == SCRAM_OK);
		REQUIRE(scram_client_handle_server_first(&cli, RFC_SERVER_FIRST,
							 strlen(RFC_SERVER_FIRST), out,
							 sizeof(out)) == SCRAM_OK);
		n = mutate(PG_SERVER_FINAL, msg, sizeof(msg));
		rc = scram_client_handle_server_final(&cli, msg, n);
		CHECK(rc <= 0);
	}
	CHECK(accepted > 0); /* the mutations do not all break the message */
}

/* ------------------------------------------------------------------------ */
/* md5                                                                       */
/* ------------------------------------------------------------------------ */

#define POSTGRES_SECRET_MD5 "md553f48b7c4b76a86ce72276c5755f217d"

TEST(test_scram_md5_known_values)
{
	static const uint8_t salt[4] = { 1, 2, 3, 4 };
	static const uint8_t salt2[4] = { 0xde, 0xad, 0xbe, 0xef };
	char out[MD5_PASSWD_LEN + 1];

	REQUIRE(md5_password_hash("postgres", "secret", out));
	CHECK_STREQ(out, POSTGRES_SECRET_MD5);
	REQUIRE(md5_password_hash("user", "pencil", out));
	CHECK_STREQ(out, "md520c46e3762c864548e296b33c3406aa9");

	/* from the stored hash and from the plain password alike */
	REQUIRE(md5_salted_response(POSTGRES_SECRET_MD5, "postgres", salt, out));
	CHECK_STREQ(out, "md5bb41a296aab6baccb36ff243a562abff");
	REQUIRE(md5_salted_response("secret", "postgres", salt, out));
	CHECK_STREQ(out, "md5bb41a296aab6baccb36ff243a562abff");
	REQUIRE(md5_salted_response("pencil", "user", salt2, out));
	CHECK_STREQ(out, "md50f5b636d891e9860623ac8ca91fc9dfc");
}

TEST(test_scram_md5_is_hash)
{
	CHECK(md5_is_hash(POSTGRES_SECRET_MD5));
	CHECK(!md5_is_hash("md553F48B7C4B76A86CE72276C5755F217D"));
	CHECK(!md5_is_hash("md553f48b7c4b76a86ce72276c5755f217"));
	CHECK(!md5_is_hash("md553f48b7c4b76a86ce72276c5755f217d0"));
	CHECK(!md5_is_hash("md553f48b7c4b76a86ce72276c5755f217g"));
	CHECK(!md5_is_hash("MD553f48b7c4b76a86ce72276c5755f217d"));
	CHECK(!md5_is_hash("secret"));
	CHECK(!md5_is_hash(""));
}

TEST(test_scram_md5_verify)
{
	static const uint8_t salt[4] = { 1, 2, 3, 4 };
	static const uint8_t salt_other[4] = { 1, 2, 3, 5 };
	const char *good = "md5bb41a296aab6baccb36ff243a562abff";

	CHECK(md5_verify(POSTGRES_SECRET_MD5, "postgres", salt, good));
	CHECK(md5_verify("secret", "postgres", salt, good));
	CHECK(!md5_verify(POSTGRES_SECRET_MD5, "postgres", salt_other, good));
	/* the user only matters when the secret is a plain password */
	CHECK(md5_verify(POSTGRES_SECRET_MD5, "postgre", salt, good));
	CHECK(!md5_verify("secret", "postgre", salt, good));
	CHECK(!md5_verify("secret2", "postgres", salt, good));
	CHECK(!md5_verify(POSTGRES_SECRET_MD5, "postgres", salt, "md5bb41a296aab6baccb36ff243a562abfe"));
	CHECK(!md5_verify(POSTGRES_SECRET_MD5, "postgres", salt, "md5BB41A296AAB6BACCB36FF243A562ABFF"));
	CHECK(!md5_verify(POSTGRES_SECRET_MD5, "postgres", salt, "md5bb41a296aab6baccb36ff243a562abf"));
	CHECK(!md5_verify(POSTGRES_SECRET_MD5, "postgres", salt, "md5bb41a296aab6baccb36ff243a562abff0"));
	CHECK(!md5_verify(POSTGRES_SECRET_MD5, "postgres", salt, ""));
	CHECK(!md5_verify(POSTGRES_SECRET_MD5, "postgres", salt, NULL));
	/* The client sending the stored hash itself (a "pass the hash" attempt). */
	CHECK(!md5_verify(POSTGRES_SECRET_MD5, "postgres", salt, POSTGRES_SECRET_MD5));
	/* A SCRAM verifier cannot answer an md5 challenge. */
	CHECK(!md5_verify(PENCIL_VERIFIER, "user", salt, good));
}
