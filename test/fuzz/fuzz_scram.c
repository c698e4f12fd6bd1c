/*
 * fuzz_scram.c - libFuzzer target for the SCRAM-SHA-256 state machines
 * (scram.h): the messages a client sends to pgchorus, the messages a node
 * sends to pgchorus, and the verifier parser.
 *
 * Input layout (see doc/fuzzing.md; test/fuzz/make_corpus.py writes seeds):
 *
 *   byte 0       mode % 3: 0 server side, 1 client side, 2 verifier string
 *   byte 1       flags:
 *                  bit 0  the connection is TLS (channel binding data exists)
 *                  bits 1-2 mechanism named by the client: SCRAM-SHA-256,
 *                         SCRAM-SHA-256-PLUS, "", SCRAM-SHA-1
 *                         (client side: bit 1 = use PLUS)
 *                  bit 3  server side: the harness writes "c=...,r=..." in
 *                         front of the fuzzed client-final-message
 *                         client side: the harness writes server-first as
 *                         "r=<our nonce><fuzzed suffix>,s=<salt>,i=4096"
 *                  bit 4  server side: the harness appends a correct
 *                         ",p=<proof>"; client side: it answers a correct
 *                         "v=<signature>" as server-final
 *                  bit 5  server side: unknown user (mock exchange)
 *                  bit 6  out buffers of (byte 2 % 64 + 1) bytes only
 *   bytes 2-3    length of the first fuzzed message (little endian, clipped)
 *   bytes 4..    first message, then the second one
 *
 * The verifier is fixed (password "pencil", 4096 iterations).  Because the
 * harness knows the keys, it can compute with OpenSSL alone what a correct
 * exchange must produce, so besides memory errors it checks that:
 *   - a correct client-final is accepted and answered with exactly the
 *     expected ServerSignature, and the ClientKey recovered is the real one;
 *   - whatever is accepted carries the proof of the real ClientKey (the
 *     answer must sign the AuthMessage of the messages actually sent), and
 *     a mock exchange never succeeds;
 *   - the client side produces exactly the expected client-final-message;
 *   - every out buffer is NUL-terminated inside its size and "" on error;
 *   - a finished or failed exchange refuses every further step.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "pgchorus/scram.h"

#define FUZZ_HEADER 4
#define FUZZ_PASSWORD "pencil"
#define FUZZ_ITERATIONS 4096
#define FUZZ_SERVER_NONCE "fuzzServerNonce0123456789"
#define FUZZ_CLIENT_NONCE "fuzzClientNonce0123456789"
#define GS2_PLUS_HEADER "p=tls-server-end-point,,"
#define BUILD_MAX 4096

#define FUZZ_REQUIRE(cond)                                                              \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
				#cond);                                                 \
			abort();                                                        \
		}                                                                       \
	} while (0)

/* Build with FUZZ_CFLAGS=-DFUZZ_TRACE to see what each step returned. */
#ifdef FUZZ_TRACE
#define TRACE(...) fprintf(stderr, __VA_ARGS__)
#else
#define TRACE(...) ((void)0)
#endif

static const char *const mechanisms[4] = {
	SCRAM_MECHANISM, SCRAM_MECHANISM_PLUS, "", "SCRAM-SHA-1",
};

static struct scram_secret full_secret;   /* with the ClientKey */
static struct scram_secret stored_secret; /* as parsed from the verifier */
static uint8_t cbind_data[32];

/* ---- helpers computed with OpenSSL only ------------------------------------ */

struct text {
	char s[BUILD_MAX];
	size_t len;
};

static void text_put(struct text *t, const void *p, size_t n)
{
	FUZZ_REQUIRE(t->len + n < sizeof(t->s));
	memcpy(t->s + t->len, p, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void text_str(struct text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

static void text_b64(struct text *t, const uint8_t *p, size_t n)
{
	char enc[4 * ((BUILD_MAX + 2) / 3) + 1];

	FUZZ_REQUIRE(n <= BUILD_MAX / 2);
	text_put(t, enc, (size_t)EVP_EncodeBlock((unsigned char *)enc, p, (int)n));
}

static void hmac(const uint8_t *key, const void *data, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int outlen = 0;

	FUZZ_REQUIRE(HMAC(EVP_sha256(), key, SCRAM_KEY_LEN, data, n, out, &outlen) != NULL);
	FUZZ_REQUIRE(outlen == SCRAM_KEY_LEN);
}

/* The c= attribute's content: the gs2 header, plus the binding data with "p". */
static void text_cbind_attr(struct text *t, char flag)
{
	uint8_t in[sizeof(GS2_PLUS_HEADER) + sizeof(cbind_data)];
	size_t n;

	if (flag == 'p') {
		n = strlen(GS2_PLUS_HEADER);
		memcpy(in, GS2_PLUS_HEADER, n);
		memcpy(in + n, cbind_data, sizeof(cbind_data));
		n += sizeof(cbind_data);
	} else {
		in[0] = (uint8_t)flag;
		in[1] = in[2] = ',';
		n = 3;
	}
	text_str(t, "c=");
	text_b64(t, in, n);
}

/* out must be a NUL-terminated string inside its OUTLEN bytes. */
static void require_out(const char *out, size_t outlen, int rc)
{
	FUZZ_REQUIRE(memchr(out, 0, outlen) != NULL);
	if (rc != SCRAM_OK)
		FUZZ_REQUIRE(out[0] == '\0');
}

static void require_rc(int rc)
{
	FUZZ_REQUIRE(rc == SCRAM_OK || rc == SCRAM_ERR_PROTOCOL || rc == SCRAM_ERR_AUTH ||
		     rc == SCRAM_ERR_CBIND || rc == SCRAM_ERR_STATE || rc == SCRAM_ERR_ARG ||
		     rc == SCRAM_ERR_UNSUPPORTED);
	FUZZ_REQUIRE(scram_strerror(rc) != NULL);
}

static char *copy_of(const uint8_t *p, size_t n)
{
	char *s = malloc(n ? n : 1);

	FUZZ_REQUIRE(s != NULL);
	memcpy(s, p, n);
	return s;
}

/* ---- the fixed verifier ---------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint8_t salt[16] = "pgchorus-fuzzing";
	char verifier[SCRAM_MAX_VERIFIER_LEN];

	(void)argc;
	(void)argv;
	for (size_t i = 0; i < sizeof(cbind_data); i++)
		cbind_data[i] = (uint8_t)(0xa5 ^ i);
	FUZZ_REQUIRE(scram_secret_from_password(FUZZ_PASSWORD, salt, sizeof(salt), FUZZ_ITERATIONS,
						&full_secret));
	FUZZ_REQUIRE(scram_format_verifier(&full_secret, verifier, sizeof(verifier)));
	FUZZ_REQUIRE(scram_parse_verifier(verifier, &stored_secret));
	FUZZ_REQUIRE(memcmp(stored_secret.stored_key, full_secret.stored_key, SCRAM_KEY_LEN) == 0);
	FUZZ_REQUIRE(memcmp(stored_secret.server_key, full_secret.server_key, SCRAM_KEY_LEN) == 0);
	return 0;
}

/* ---- server side: a client logs in to pgchorus ----------------------------- */

/* Where client-first-message-bare starts: after the gs2 header's 2nd comma. */
static size_t bare_start(const char *first, size_t len)
{
	int commas = 0;

	for (size_t i = 0; i < len; i++)
		if (first[i] == ',' && ++commas == 2)
			return i + 1;
	return len;
}

/* The combined nonce in server-first "r=<nonce>,s=...". */
static void nonce_of(const char *server_first, struct text *nonce)
{
	const char *end = strchr(server_first, ',');

	FUZZ_REQUIRE(strncmp(server_first, "r=", 2) == 0 && end != NULL);
	text_put(nonce, server_first + 2, (size_t)(end - server_first - 2));
	FUZZ_REQUIRE(nonce->len > strlen(FUZZ_SERVER_NONCE));
	FUZZ_REQUIRE(strcmp(nonce->s + nonce->len - strlen(FUZZ_SERVER_NONCE), FUZZ_SERVER_NONCE) == 0);
}

/* Length of client-final-message-without-proof: up to the last ",p=". */
static size_t last_proof_attr(const struct text *fin)
{
	for (size_t i = fin->len; i >= 3; i--)
		if (memcmp(fin->s + i - 3, ",p=", 3) == 0)
			return i - 3;
	return fin->len;
}

static void fuzz_server(uint8_t flags, size_t outlen, const uint8_t *a, size_t alen,
			const uint8_t *b, size_t blen)
{
	const char *mechanism = mechanisms[(flags >> 1) & 3];
	bool tls = flags & 1, mock = flags & 0x20, auto_prefix = flags & 8, auto_proof = flags & 0x10;
	struct scram_server *st = malloc(sizeof(*st));
	struct scram_secret keys;
	char *first = copy_of(a, alen), *final_msg, *out = malloc(outlen);
	char server_first[SCRAM_MAX_OUTPUT];
	struct text fin = { .len = 0 }, nonce = { .len = 0 }, am = { .len = 0 }, want = { .len = 0 };
	uint8_t sig[SCRAM_KEY_LEN] = { 0 }, proof[SCRAM_KEY_LEN] = { 0 }, server_sig[SCRAM_KEY_LEN] = { 0 };
	size_t bare, wo_proof_len;
	int rc;

	FUZZ_REQUIRE(st && out);
	if (mock)
		rc = scram_server_init_mock(st, "nobody", tls ? cbind_data : NULL, tls ? sizeof(cbind_data) : 0);
	else
		rc = scram_server_init(st, &stored_secret, tls ? cbind_data : NULL, tls ? sizeof(cbind_data) : 0);
	FUZZ_REQUIRE(rc == SCRAM_OK);
	FUZZ_REQUIRE(scram_server_offers_plus(st) == tls);
	FUZZ_REQUIRE(scram_server_set_nonce_for_test(st, FUZZ_SERVER_NONCE) == SCRAM_OK);

	rc = scram_server_handle_first(st, mechanism, first, alen, out, outlen);
	TRACE("server first: %s\n", scram_strerror(rc));
	require_rc(rc);
	require_out(out, outlen, rc);
	if (rc != SCRAM_OK) {
		/* a dead exchange stays dead */
		rc = scram_server_handle_final(st, (const char *)b, blen, out, outlen);
		FUZZ_REQUIRE(rc == SCRAM_ERR_STATE);
		require_out(out, outlen, rc);
		goto done;
	}
	/* only a mechanism that was offered gets this far */
	FUZZ_REQUIRE(strcmp(mechanism, SCRAM_MECHANISM) == 0 ||
		     (tls && strcmp(mechanism, SCRAM_MECHANISM_PLUS) == 0));
	FUZZ_REQUIRE(strlen(out) < sizeof(server_first));
	strcpy(server_first, out);
	nonce_of(server_first, &nonce);

	/* client-final-message: [harness prefix] fuzz [harness proof] */
	if (auto_prefix) {
		text_cbind_attr(&fin, first[0]);
		text_str(&fin, ",r=");
		text_put(&fin, nonce.s, nonce.len);
	}
	text_put(&fin, b, blen);
	if (auto_proof)
		wo_proof_len = fin.len;
	else
		wo_proof_len = last_proof_attr(&fin);
	/* The AuthMessage and answer a correct exchange has, computed here */
	bare = bare_start(first, alen);
	text_put(&am, first + bare, alen - bare);
	text_str(&am, ",");
	text_str(&am, server_first);
	text_str(&am, ",");
	text_put(&am, fin.s, wo_proof_len);
	hmac(full_secret.stored_key, am.s, am.len, sig);
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		proof[i] = full_secret.client_key[i] ^ sig[i];
	hmac(full_secret.server_key, am.s, am.len, server_sig);
	text_str(&want, "v=");
	text_b64(&want, server_sig, SCRAM_KEY_LEN);
	if (auto_proof) {
		text_str(&fin, ",p=");
		text_b64(&fin, proof, SCRAM_KEY_LEN);
	}
	final_msg = copy_of((const uint8_t *)fin.s, fin.len);
	rc = scram_server_handle_final(st, final_msg, fin.len, out, outlen);
	TRACE("server final: %s\n", scram_strerror(rc));
	free(final_msg);
	require_rc(rc);
	require_out(out, outlen, rc);
	if (rc == SCRAM_OK) {
		/* a mock never succeeds; the answer signs what the client sent */
		FUZZ_REQUIRE(!mock);
		FUZZ_REQUIRE(strcmp(out, want.s) == 0);
		FUZZ_REQUIRE(scram_server_get_keys(st, &keys));
		FUZZ_REQUIRE(keys.has_client_key);
		FUZZ_REQUIRE(memcmp(keys.client_key, full_secret.client_key, SCRAM_KEY_LEN) == 0);
	} else {
		FUZZ_REQUIRE(!scram_server_get_keys(st, &keys));
		/* a well-formed exchange with the right proof fails only for a mock
		 * user or a too small out buffer */
		if (auto_prefix && auto_proof && blen == 0)
			FUZZ_REQUIRE((mock && rc == SCRAM_ERR_AUTH) ||
				     (outlen <= want.len && rc == SCRAM_ERR_ARG));
		/* only the answer "v=" + 44 base64 characters can be too long */
		if (rc == SCRAM_ERR_ARG)
			FUZZ_REQUIRE(outlen <= 2 + 44);
	}
	/* no step after the last one */
	rc = scram_server_handle_final(st, fin.s, fin.len, out, outlen);
	FUZZ_REQUIRE(rc == SCRAM_ERR_STATE);
	rc = scram_server_handle_first(st, mechanism, first, alen, out, outlen);
	FUZZ_REQUIRE(rc == SCRAM_ERR_STATE);
	require_out(out, outlen, rc);
done:
	scram_server_wipe(st);
	free(st);
	free(first);
	free(out);
}

/* ---- client side: pgchorus logs in to a node ------------------------------- */

/* MSG is "v=" and the base64 of SIG (unused low bits may differ). */
static bool signature_is(const struct text *msg, const uint8_t sig[SCRAM_KEY_LEN])
{
	uint8_t dec[33];

	if (msg->len != 2 + 44 || strncmp(msg->s, "v=", 2) != 0 || msg->s[45] != '=')
		return false;
	if (EVP_DecodeBlock(dec, (const unsigned char *)msg->s + 2, 44) != 33)
		return false;
	return memcmp(dec, sig, SCRAM_KEY_LEN) == 0;
}

static void fuzz_client(uint8_t flags, size_t outlen, const uint8_t *a, size_t alen,
			const uint8_t *b, size_t blen)
{
	bool tls = flags & 1, plus = tls && (flags & 2), auto_first = flags & 8, auto_final = flags & 0x10;
	struct scram_client *st = malloc(sizeof(*st));
	char *out = malloc(outlen), *msg;
	char flag = plus ? 'p' : tls ? 'y' : 'n';
	struct text sfirst = { .len = 0 }, sfinal = { .len = 0 }, am = { .len = 0 };
	struct text want = { .len = 0 }, nonce = { .len = 0 };
	uint8_t sig[SCRAM_KEY_LEN] = { 0 }, proof[SCRAM_KEY_LEN] = { 0 }, server_sig[SCRAM_KEY_LEN] = { 0 };
	bool first_ok;
	int rc;

	FUZZ_REQUIRE(st && out);
	/* keys only: a node's salt or count other than ours fails without PBKDF2 */
	rc = scram_client_init(st, NULL, &full_secret, tls ? cbind_data : NULL, tls ? sizeof(cbind_data) : 0,
			       plus);
	FUZZ_REQUIRE(rc == SCRAM_OK);
	FUZZ_REQUIRE(strcmp(scram_client_mechanism(st), plus ? SCRAM_MECHANISM_PLUS : SCRAM_MECHANISM) == 0);
	FUZZ_REQUIRE(scram_client_set_nonce_for_test(st, FUZZ_CLIENT_NONCE) == SCRAM_OK);
	rc = scram_client_first(st, out, outlen);
	require_out(out, outlen, rc);
	if (rc != SCRAM_OK) {
		FUZZ_REQUIRE(rc == SCRAM_ERR_ARG);
		goto done;
	}

	if (auto_first) {
		text_str(&sfirst, "r=" FUZZ_CLIENT_NONCE);
		text_put(&sfirst, a, alen);
		text_str(&sfirst, ",s=");
		text_b64(&sfirst, full_secret.salt, (size_t)full_secret.salt_len);
		text_str(&sfirst, ",i=4096");
	} else {
		text_put(&sfirst, a, alen);
	}
	msg = copy_of((const uint8_t *)sfirst.s, sfirst.len);
	rc = scram_client_handle_server_first(st, msg, sfirst.len, out, outlen);
	TRACE("client server-first: %s\n", scram_strerror(rc));
	free(msg);
	require_rc(rc);
	require_out(out, outlen, rc);
	first_ok = rc == SCRAM_OK;
	if (first_ok) {
		/* what the client must have answered, byte for byte */
		const char *end = strchr(sfirst.s, ',');

		FUZZ_REQUIRE(end != NULL);
		text_put(&nonce, sfirst.s + 2, (size_t)(end - sfirst.s - 2));
		text_cbind_attr(&want, flag);
		text_str(&want, ",r=");
		text_put(&want, nonce.s, nonce.len);
		text_str(&am, "n=,r=" FUZZ_CLIENT_NONCE ",");
		text_put(&am, sfirst.s, sfirst.len);
		text_str(&am, ",");
		text_put(&am, want.s, want.len);
		{
			uint8_t stored[SCRAM_KEY_LEN];

			SHA256(full_secret.client_key, SCRAM_KEY_LEN, stored);
			hmac(stored, am.s, am.len, sig);
		}
		for (int i = 0; i < SCRAM_KEY_LEN; i++)
			proof[i] = full_secret.client_key[i] ^ sig[i];
		hmac(full_secret.server_key, am.s, am.len, server_sig);
		text_str(&want, ",p=");
		text_b64(&want, proof, SCRAM_KEY_LEN);
		FUZZ_REQUIRE(strcmp(out, want.s) == 0);
	} else if (auto_first && outlen >= SCRAM_MAX_OUTPUT) {
		/* our own nonce with a valid suffix, our salt and count: must work */
		bool suffix_ok = alen > 0 && alen + strlen(FUZZ_CLIENT_NONCE) <= SCRAM_MAX_NONCE_LEN;

		for (size_t i = 0; i < alen; i++)
			if (a[i] < 0x21 || a[i] > 0x7e || a[i] == ',')
				suffix_ok = false;
		FUZZ_REQUIRE(!suffix_ok);
	}

	if (auto_final && first_ok) {
		text_str(&sfinal, "v=");
		text_b64(&sfinal, server_sig, SCRAM_KEY_LEN);
	} else {
		text_put(&sfinal, b, blen);
	}
	msg = copy_of((const uint8_t *)sfinal.s, sfinal.len);
	rc = scram_client_handle_server_final(st, msg, sfinal.len);
	TRACE("client server-final: %s\n", scram_strerror(rc));
	free(msg);
	require_rc(rc);
	if (!first_ok)
		FUZZ_REQUIRE(rc == SCRAM_ERR_STATE);
	else if (auto_final)
		FUZZ_REQUIRE(rc == SCRAM_OK);
	else if (rc == SCRAM_OK)
		/* the fuzzer wrote the signature itself: it must be the real one */
		FUZZ_REQUIRE(signature_is(&sfinal, server_sig));
	FUZZ_REQUIRE(memchr(st->server_error, 0, sizeof(st->server_error)) != NULL);
	for (const char *p = st->server_error; *p; p++)
		FUZZ_REQUIRE(*p >= 0x20 && *p < 0x7f);
	rc = scram_client_handle_server_final(st, sfinal.s, sfinal.len);
	FUZZ_REQUIRE(rc == SCRAM_ERR_STATE);
done:
	scram_client_wipe(st);
	free(st);
	free(out);
}

/* ---- verifiers (users_file) ------------------------------------------------ */

static void fuzz_verifier(const uint8_t *a, size_t alen)
{
	char *s = malloc(alen + 1);
	char formatted[SCRAM_MAX_VERIFIER_LEN];
	struct scram_secret sec, again;
	static const struct scram_secret zero;

	FUZZ_REQUIRE(s != NULL);
	memcpy(s, a, alen);
	s[alen] = '\0';
	if (scram_parse_verifier(s, &sec)) {
		FUZZ_REQUIRE(sec.iterations >= 1 && sec.salt_len >= 1 && sec.salt_len <= SCRAM_MAX_SALT_LEN);
		FUZZ_REQUIRE(!sec.has_client_key);
		FUZZ_REQUIRE(scram_format_verifier(&sec, formatted, sizeof(formatted)));
		FUZZ_REQUIRE(scram_parse_verifier(formatted, &again));
		FUZZ_REQUIRE(memcmp(&sec, &again, sizeof(sec)) == 0);
	} else {
		FUZZ_REQUIRE(memcmp(&sec, &zero, sizeof(sec)) == 0);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t alen, outlen;
	uint8_t flags;

	if (size < FUZZ_HEADER || size > 3 * SCRAM_MAX_MESSAGE)
		return 0;
	flags = data[1];
	outlen = (flags & 0x40) ? (size_t)(data[2] % 64) + 1 : SCRAM_MAX_OUTPUT;
	alen = (size_t)data[2] | (size_t)data[3] << 8;
	if (alen > size - FUZZ_HEADER)
		alen = size - FUZZ_HEADER;
	switch (data[0] % 3) {
	case 0:
		fuzz_server(flags, outlen, data + FUZZ_HEADER, alen, data + FUZZ_HEADER + alen,
			    size - FUZZ_HEADER - alen);
		break;
	case 1:
		fuzz_client(flags, outlen, data + FUZZ_HEADER, alen, data + FUZZ_HEADER + alen,
			    size - FUZZ_HEADER - alen);
		break;
	default:
		fuzz_verifier(data + FUZZ_HEADER, size - FUZZ_HEADER);
		break;
	}
	return 0;
}
