/*
 * scram.c - SCRAM-SHA-256(-PLUS) server and client state machines and
 * verifier handling (see scram.h for the contracts and the PostgreSQL
 * specifics).
 *
 * Every message from a peer is hostile until parsed: it is read through a
 * bounds-checked cursor over (pointer, length), never as a C string, and
 * must be consumed exactly.  Outputs are built with a sticky-error string
 * builder.  Secrets on the stack are wiped before returning.
 *
 * Owns the per-process random key of the mock authentication (created on
 * first use, never freed).
 */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "pgchorus/scram.h"

#define VERIFIER_PREFIX "SCRAM-SHA-256$"
#define CBIND_TYPE "tls-server-end-point"
#define GS2_PLUS "p=" CBIND_TYPE ",,"
#define RAW_NONCE_LEN 18 /* base64: SCRAM_NONCE_LEN characters */
/* bare + "," + server-first + "," + client-final-without-proof */
#define AUTH_MESSAGE_MAX (SCRAM_MAX_MESSAGE + 1 + SCRAM_MAX_MESSAGE + 1 + SCRAM_MAX_MESSAGE + 1)

const char *scram_strerror(int rc)
{
	switch (rc) {
	case SCRAM_OK:
		return "success";
	case SCRAM_ERR_UNSUPPORTED:
		return "unsupported SCRAM feature";
	case SCRAM_ERR_PROTOCOL:
		return "malformed SCRAM message";
	case SCRAM_ERR_AUTH:
		return "SCRAM authentication failed";
	case SCRAM_ERR_CBIND:
		return "SCRAM channel binding check failed";
	case SCRAM_ERR_STATE:
		return "SCRAM exchange out of sequence";
	case SCRAM_ERR_ARG:
		return "invalid argument to SCRAM function";
	case SCRAM_ERR_CRYPTO:
		return "cryptographic library failure";
	default:
		return "unknown SCRAM error";
	}
}

/* ------------------------------------------------------------------------ */
/* Base64 (RFC 4648, standard alphabet, padded)                              */
/* ------------------------------------------------------------------------ */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

/* Encode N bytes; OUT must hold b64_encoded_len(N) + 1 bytes. */
static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16;
		size_t left = n - i;

		if (left > 1)
			w |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			w |= in[i + 2];
		out[o++] = b64_alphabet[(w >> 18) & 63];
		out[o++] = b64_alphabet[(w >> 12) & 63];
		out[o++] = left > 1 ? b64_alphabet[(w >> 6) & 63] : '=';
		out[o++] = left > 2 ? b64_alphabet[w & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decode the N characters at IN into OUT (room for OUTMAX bytes).  Returns
 * the number of bytes, or -1 if IN is not padded base64 (blanks included)
 * or decodes to more than OUTMAX bytes.  Like PostgreSQL, the unused bits
 * before the padding are not checked.
 */
static long b64_decode(const char *in, size_t n, uint8_t *out, size_t outmax)
{
	size_t pad = 0, outn, o = 0;

	if (n % 4 != 0)
		return -1;
	if (n == 0)
		return 0;
	if (in[n - 1] == '=')
		pad = in[n - 2] == '=' ? 2 : 1;
	outn = n / 4 * 3 - pad;
	if (outn > outmax)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t w = 0;

		for (size_t j = 0; j < 4; j++) {
			int v = 0;

			if (in[i + j] == '=') {
				/* only as the padding of the last group */
				if (i + 4 != n || j < 4 - pad)
					return -1;
			} else if ((v = b64_value(in[i + j])) < 0) {
				return -1;
			}
			w = (w << 6) | (uint32_t)v;
		}
		out[o++] = (uint8_t)(w >> 16);
		if (o < outn)
			out[o++] = (uint8_t)(w >> 8);
		if (o < outn)
			out[o++] = (uint8_t)w;
	}
	return (long)outn;
}

/* ------------------------------------------------------------------------ */
/* Output builder: appends into a caller's buffer, sticky error on overflow. */
/* ------------------------------------------------------------------------ */

struct sbuild {
	char *p;
	size_t cap;
	size_t len;
	bool err;
};

static void sb_init(struct sbuild *b, char *p, size_t cap)
{
	b->p = p;
	b->cap = cap;
	b->len = 0;
	b->err = p == NULL || cap == 0;
	if (!b->err)
		p[0] = '\0';
}

static void sb_put(struct sbuild *b, const void *s, size_t n)
{
	if (b->err || b->cap - b->len <= n) {
		b->err = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuild *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_b64(struct sbuild *b, const uint8_t *d, size_t n)
{
	if (b->err || b->cap - b->len <= b64_encoded_len(n)) {
		b->err = true;
		return;
	}
	b->len += b64_encode(d, n, b->p + b->len);
}

static void sb_int(struct sbuild *b, int v)
{
	char digits[16];
	int n = 0;

	/* v >= 1 everywhere it is used */
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < (int)sizeof(digits));
	while (n > 0)
		sb_put(b, &digits[--n], 1);
}

/* ------------------------------------------------------------------------ */
/* Parsing cursor over an untrusted (pointer, length) message                */
/* ------------------------------------------------------------------------ */

struct cursor {
	const char *p;
	size_t len;
	size_t pos;
};

static bool cur_end(const struct cursor *c)
{
	return c->pos == c->len;
}

static bool cur_char(struct cursor *c, char ch)
{
	if (c->pos < c->len && c->p[c->pos] == ch) {
		c->pos++;
		return true;
	}
	return false;
}

static bool cur_peek(const struct cursor *c, char ch)
{
	return c->pos < c->len && c->p[c->pos] == ch;
}

/* "NAME=" then a value running to the next ',' or the end (may be empty). */
static bool cur_attr(struct cursor *c, char name, const char **val, size_t *vlen)
{
	size_t start;

	if (c->len - c->pos < 2 || c->p[c->pos] != name || c->p[c->pos + 1] != '=')
		return false;
	c->pos += 2;
	start = c->pos;
	while (c->pos < c->len && c->p[c->pos] != ',')
		c->pos++;
	*val = c->p + start;
	*vlen = c->pos - start;
	return true;
}

/* Any attribute (an ASCII letter, '=', a value); its letter, or 0. */
static char cur_any_attr(struct cursor *c, const char **val, size_t *vlen)
{
	char a;

	if (c->pos >= c->len)
		return 0;
	a = c->p[c->pos];
	if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')))
		return 0;
	return cur_attr(c, a, val, vlen) ? a : 0;
}

/* RFC 5802 "printable": %x21-2B / %x2D-7E, at least one character. */
static bool nonce_chars_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

/* A decimal count 1..INT_MAX, digits only. */
static bool parse_iterations(const char *s, size_t n, int *out)
{
	long long v = 0;

	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

/* A message from a peer: bounded, and no NUL (it would cut C-string views). */
static bool message_ok(const char *msg, size_t len)
{
	return msg != NULL && len > 0 && len <= SCRAM_MAX_MESSAGE && memchr(msg, '\0', len) == NULL;
}

/* ------------------------------------------------------------------------ */
/* Crypto helpers                                                            */
/* ------------------------------------------------------------------------ */

static bool hmac256(const uint8_t *key, size_t keylen, const void *data, size_t n,
		    uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int len = 0;

	return HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len) != NULL &&
	       len == SCRAM_KEY_LEN;
}

static bool sha256(const uint8_t *data, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int len = 0;

	return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == SCRAM_KEY_LEN;
}

static int random_nonce(char out[SCRAM_MAX_OWN_NONCE_LEN + 1])
{
	uint8_t raw[RAW_NONCE_LEN];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return SCRAM_ERR_CRYPTO;
	b64_encode(raw, sizeof(raw), out);
	return SCRAM_OK;
}

static bool secret_ok(const struct scram_secret *s)
{
	return s->iterations >= 1 && s->salt_len >= 1 && s->salt_len <= SCRAM_MAX_SALT_LEN;
}

/*
 * SASLprep as described in scram.h reduces to using the password bytes as
 * they are: unchanged if ASCII (what PostgreSQL does too), raw otherwise
 * (PostgreSQL's fallback when normalization is impossible).
 */
bool scram_secret_from_password(const char *password, const uint8_t *salt, int salt_len,
				int iterations, struct scram_secret *out)
{
	uint8_t salted[SCRAM_KEY_LEN];
	size_t pwlen;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (!password || !salt || salt_len < 1 || salt_len > SCRAM_MAX_SALT_LEN || iterations < 1)
		return false;
	pwlen = strlen(password);
	if (pwlen > INT_MAX)
		return false;
	ok = PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, salt_len, iterations, EVP_sha256(),
			       SCRAM_KEY_LEN, salted) == 1 &&
	     hmac256(salted, SCRAM_KEY_LEN, "Client Key", 10, out->client_key) &&
	     hmac256(salted, SCRAM_KEY_LEN, "Server Key", 10, out->server_key) &&
	     sha256(out->client_key, SCRAM_KEY_LEN, out->stored_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	if (!ok) {
		OPENSSL_cleanse(out, sizeof(*out));
		return false;
	}
	out->iterations = iterations;
	memcpy(out->salt, salt, (size_t)salt_len);
	out->salt_len = salt_len;
	out->has_client_key = true;
	return true;
}

/* ------------------------------------------------------------------------ */
/* Verifiers                                                                 */
/* ------------------------------------------------------------------------ */

bool scram_parse_verifier(const char *s, struct scram_secret *out)
{
	const char *p, *colon1, *dollar, *colon2;
	long n;

	memset(out, 0, sizeof(*out));
	if (!s || strncmp(s, VERIFIER_PREFIX, strlen(VERIFIER_PREFIX)) != 0)
		return false;
	p = s + strlen(VERIFIER_PREFIX);
	/* base64 has neither ':' nor '$', so the separators are unambiguous */
	colon1 = strchr(p, ':');
	dollar = colon1 ? strchr(colon1 + 1, '$') : NULL;
	colon2 = dollar ? strchr(dollar + 1, ':') : NULL;
	if (!colon2 || !parse_iterations(p, (size_t)(colon1 - p), &out->iterations))
		goto bad;
	n = b64_decode(colon1 + 1, (size_t)(dollar - colon1 - 1), out->salt, SCRAM_MAX_SALT_LEN);
	if (n < 1)
		goto bad;
	out->salt_len = (int)n;
	if (b64_decode(dollar + 1, (size_t)(colon2 - dollar - 1), out->stored_key,
		       SCRAM_KEY_LEN) != SCRAM_KEY_LEN ||
	    b64_decode(colon2 + 1, strlen(colon2 + 1), out->server_key, SCRAM_KEY_LEN) !=
		    SCRAM_KEY_LEN)
		goto bad;
	return true;
bad:
	memset(out, 0, sizeof(*out));
	return false;
}

bool scram_format_verifier(const struct scram_secret *secret, char *out, size_t outlen)
{
	struct sbuild b;

	sb_init(&b, out, outlen);
	if (!secret_ok(secret)) {
		if (!b.err)
			out[0] = '\0';
		return false;
	}
	sb_str(&b, VERIFIER_PREFIX);
	sb_int(&b, secret->iterations);
	sb_str(&b, ":");
	sb_b64(&b, secret->salt, (size_t)secret->salt_len);
	sb_str(&b, "$");
	sb_b64(&b, secret->stored_key, SCRAM_KEY_LEN);
	sb_str(&b, ":");
	sb_b64(&b, secret->server_key, SCRAM_KEY_LEN);
	if (b.err && out && outlen)
		out[0] = '\0';
	return !b.err;
}

bool scram_make_verifier(const char *password, char *out, size_t outlen)
{
	uint8_t salt[SCRAM_DEFAULT_SALT_LEN];
	struct scram_secret secret;
	bool ok;

	if (out && outlen)
		out[0] = '\0';
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return false;
	ok = scram_secret_from_password(password, salt, sizeof(salt), SCRAM_DEFAULT_ITERATIONS,
					&secret) &&
	     scram_format_verifier(&secret, out, outlen);
	OPENSSL_cleanse(&secret, sizeof(secret));
	return ok;
}

/* ------------------------------------------------------------------------ */
/* Shared by both sides                                                      */
/* ------------------------------------------------------------------------ */

static void clear_out(char *out, size_t outlen)
{
	if (out && outlen)
		out[0] = '\0';
}

static bool copy_cbind(const uint8_t *data, size_t len, uint8_t dst[SCRAM_MAX_CBIND_LEN],
		       size_t *dst_len)
{
	*dst_len = 0;
	if (!data)
		return len == 0;
	if (len == 0 || len > SCRAM_MAX_CBIND_LEN)
		return false;
	memcpy(dst, data, len);
	*dst_len = len;
	return true;
}

static const char *gs2_header(char flag)
{
	switch (flag) {
	case 'p':
		return GS2_PLUS;
	case 'y':
		return "y,,";
	default:
		return "n,,";
	}
}

static bool own_nonce_ok(const char *nonce)
{
	size_t n;

	if (!nonce)
		return false;
	n = strnlen(nonce, SCRAM_MAX_OWN_NONCE_LEN + 1);
	return n <= SCRAM_MAX_OWN_NONCE_LEN && nonce_chars_ok(nonce, n);
}

/* The AuthMessage of RFC 5802: the three messages joined by commas. */
static bool auth_message(struct sbuild *b, char *buf, size_t cap, const char *first_bare,
			 size_t first_bare_len, const char *server_first, size_t server_first_len,
			 const char *final_wo_proof, size_t final_wo_proof_len)
{
	sb_init(b, buf, cap);
	sb_put(b, first_bare, first_bare_len);
	sb_put(b, ",", 1);
	sb_put(b, server_first, server_first_len);
	sb_put(b, ",", 1);
	sb_put(b, final_wo_proof, final_wo_proof_len);
	return !b->err;
}

/* ------------------------------------------------------------------------ */
/* Server side                                                               */
/* ------------------------------------------------------------------------ */

static int server_fail(struct scram_server *st, int rc)
{
	st->state = SCRAM_SERVER_FAILED;
	OPENSSL_cleanse(st->client_key, sizeof(st->client_key));
	return rc;
}

static int server_start(struct scram_server *st, const uint8_t *cbind_data, size_t cbind_len)
{
	int rc;

	if (!copy_cbind(cbind_data, cbind_len, st->cbind, &st->cbind_len))
		return server_fail(st, SCRAM_ERR_ARG);
	st->has_cbind = st->cbind_len > 0;
	rc = random_nonce(st->server_nonce);
	if (rc != SCRAM_OK)
		return server_fail(st, rc);
	st->state = SCRAM_SERVER_WAIT_FIRST;
	return SCRAM_OK;
}

int scram_server_init(struct scram_server *st, const struct scram_secret *secret,
		      const uint8_t *cbind_data, size_t cbind_len)
{
	memset(st, 0, sizeof(*st));
	if (!secret || !secret_ok(secret))
		return server_fail(st, SCRAM_ERR_ARG);
	st->secret = *secret;
	/* the server needs only StoredKey and ServerKey */
	st->secret.has_client_key = false;
	OPENSSL_cleanse(st->secret.client_key, sizeof(st->secret.client_key));
	return server_start(st, cbind_data, cbind_len);
}

static pthread_once_t mock_once = PTHREAD_ONCE_INIT;
static uint8_t mock_key[SCRAM_KEY_LEN];
static bool mock_key_ready;

static void mock_key_init(void)
{
	mock_key_ready = RAND_bytes(mock_key, sizeof(mock_key)) == 1;
}

/* HMAC(HMAC(mock key, LABEL), NAME): stable per name, unguessable. */
static bool mock_derive(const char *label, const char *name, uint8_t out[SCRAM_KEY_LEN])
{
	uint8_t sub[SCRAM_KEY_LEN];
	bool ok;

	ok = hmac256(mock_key, sizeof(mock_key), label, strlen(label), sub) &&
	     hmac256(sub, sizeof(sub), name, strlen(name), out);
	OPENSSL_cleanse(sub, sizeof(sub));
	return ok;
}

int scram_server_init_mock(struct scram_server *st, const char *username,
			   const uint8_t *cbind_data, size_t cbind_len)
{
	uint8_t salt[SCRAM_KEY_LEN];

	memset(st, 0, sizeof(*st));
	if (!username)
		return server_fail(st, SCRAM_ERR_ARG);
	if (pthread_once(&mock_once, mock_key_init) != 0 || !mock_key_ready)
		return server_fail(st, SCRAM_ERR_CRYPTO);
	/* Keys too, so that the final step costs what a real one does. */
	if (!mock_derive("salt", username, salt) ||
	    !mock_derive("stored", username, st->secret.stored_key) ||
	    !mock_derive("server", username, st->secret.server_key))
		return server_fail(st, SCRAM_ERR_CRYPTO);
	memcpy(st->secret.salt, salt, SCRAM_DEFAULT_SALT_LEN);
	st->secret.salt_len = SCRAM_DEFAULT_SALT_LEN;
	st->secret.iterations = SCRAM_DEFAULT_ITERATIONS;
	st->mock = true;
	return server_start(st, cbind_data, cbind_len);
}

bool scram_server_offers_plus(const struct scram_server *st)
{
	return st->has_cbind;
}

int scram_server_set_nonce_for_test(struct scram_server *st, const char *nonce)
{
	if (st->state != SCRAM_SERVER_WAIT_FIRST)
		return server_fail(st, SCRAM_ERR_STATE);
	if (!own_nonce_ok(nonce))
		return SCRAM_ERR_ARG;
	strcpy(st->server_nonce, nonce);
	return SCRAM_OK;
}

/*
 * gs2-header = cbind-flag "," [authzid] ","  with
 * cbind-flag = "n" / "y" / "p=" cb-name.  Sets st->cbind_flag.
 */
static int server_parse_gs2(struct scram_server *st, struct cursor *c)
{
	const char *name;
	size_t nlen;

	if (cur_char(c, 'n')) {
		st->cbind_flag = 'n';
	} else if (cur_char(c, 'y')) {
		st->cbind_flag = 'y';
	} else if (cur_attr(c, 'p', &name, &nlen)) {
		if (nlen != strlen(CBIND_TYPE) || memcmp(name, CBIND_TYPE, nlen) != 0)
			return SCRAM_ERR_CBIND; /* unsupported binding type */
		st->cbind_flag = 'p';
	} else {
		return SCRAM_ERR_PROTOCOL;
	}
	if (!cur_char(c, ','))
		return SCRAM_ERR_PROTOCOL;
	/* PostgreSQL refuses an authorization identity ("a="). */
	if (cur_peek(c, 'a'))
		return SCRAM_ERR_UNSUPPORTED;
	if (!cur_char(c, ','))
		return SCRAM_ERR_PROTOCOL;

	switch (st->cbind_flag) {
	case 'n':
		if (st->plus_selected)
			return SCRAM_ERR_PROTOCOL; /* PLUS chosen, binding not used */
		break;
	case 'y':
		if (st->plus_selected)
			return SCRAM_ERR_PROTOCOL;
		/* the client could bind and thinks we cannot: a downgrade */
		if (st->has_cbind)
			return SCRAM_ERR_CBIND;
		break;
	default:
		if (!st->has_cbind)
			return SCRAM_ERR_CBIND;
		if (!st->plus_selected)
			return SCRAM_ERR_PROTOCOL; /* binding data without PLUS */
		break;
	}
	return SCRAM_OK;
}

int scram_server_handle_first(struct scram_server *st, const char *mechanism,
			      const char *msg, size_t len, char *out, size_t outlen)
{
	struct cursor c = { msg, len, 0 };
	struct sbuild b;
	const char *val, *cnonce;
	size_t vlen, cnonce_len, bare_start;
	int rc;

	clear_out(out, outlen);
	if (st->state != SCRAM_SERVER_WAIT_FIRST)
		return server_fail(st, SCRAM_ERR_STATE);
	if (!mechanism || !out || outlen == 0)
		return server_fail(st, SCRAM_ERR_ARG);
	if (!message_ok(msg, len))
		return server_fail(st, SCRAM_ERR_PROTOCOL);
	if (strcmp(mechanism, SCRAM_MECHANISM) == 0)
		st->plus_selected = false;
	else if (strcmp(mechanism, SCRAM_MECHANISM_PLUS) == 0 && st->has_cbind)
		st->plus_selected = true;
	else
		return server_fail(st, SCRAM_ERR_PROTOCOL); /* not offered */

	rc = server_parse_gs2(st, &c);
	if (rc != SCRAM_OK)
		return server_fail(st, rc);

	/* client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions] */
	bare_start = c.pos;
	if (cur_peek(&c, 'm'))
		return server_fail(st, SCRAM_ERR_UNSUPPORTED); /* mandatory extension */
	if (!cur_attr(&c, 'n', &val, &vlen) || !cur_char(&c, ','))
		return server_fail(st, SCRAM_ERR_PROTOCOL); /* the user name itself is ignored */
	if (!cur_attr(&c, 'r', &cnonce, &cnonce_len) || !nonce_chars_ok(cnonce, cnonce_len) ||
	    cnonce_len + strlen(st->server_nonce) > SCRAM_MAX_NONCE_LEN)
		return server_fail(st, SCRAM_ERR_PROTOCOL);
	while (!cur_end(&c))
		if (!cur_char(&c, ',') || !cur_any_attr(&c, &val, &vlen))
			return server_fail(st, SCRAM_ERR_PROTOCOL);

	st->client_first_bare_len = len - bare_start;
	memcpy(st->client_first_bare, msg + bare_start, st->client_first_bare_len);
	st->client_first_bare[st->client_first_bare_len] = '\0';

	sb_init(&b, st->nonce, sizeof(st->nonce));
	sb_put(&b, cnonce, cnonce_len);
	sb_str(&b, st->server_nonce);
	st->nonce_len = b.len;

	sb_init(&b, st->server_first, sizeof(st->server_first));
	sb_str(&b, "r=");
	sb_str(&b, st->nonce);
	sb_str(&b, ",s=");
	sb_b64(&b, st->secret.salt, (size_t)st->secret.salt_len);
	sb_str(&b, ",i=");
	sb_int(&b, st->secret.iterations);
	if (b.err)
		return server_fail(st, SCRAM_ERR_ARG); /* cannot happen with the limits above */
	st->server_first_len = b.len;

	sb_init(&b, out, outlen);
	sb_put(&b, st->server_first, st->server_first_len);
	if (b.err)
		return server_fail(st, SCRAM_ERR_ARG);
	st->state = SCRAM_SERVER_WAIT_FINAL;
	return SCRAM_OK;
}

/* "c=" must carry exactly the gs2 header sent, plus the binding data with "p". */
static int server_check_cbind(const struct scram_server *st, const char *b64, size_t b64len)
{
	uint8_t got[SCRAM_MAX_MESSAGE];
	uint8_t want[sizeof(GS2_PLUS) + SCRAM_MAX_CBIND_LEN];
	const char *hdr = gs2_header(st->cbind_flag);
	size_t want_len = strlen(hdr);
	long n;

	n = b64_decode(b64, b64len, got, sizeof(got));
	if (n < 0)
		return SCRAM_ERR_PROTOCOL;
	memcpy(want, hdr, want_len);
	if (st->cbind_flag == 'p') {
		memcpy(want + want_len, st->cbind, st->cbind_len);
		want_len += st->cbind_len;
	}
	if ((size_t)n != want_len || memcmp(got, want, want_len) != 0)
		return SCRAM_ERR_CBIND;
	return SCRAM_OK;
}

int scram_server_handle_final(struct scram_server *st, const char *msg, size_t len,
			      char *out, size_t outlen)
{
	struct cursor c = { msg, len, 0 };
	struct sbuild b;
	char am[AUTH_MESSAGE_MAX];
	uint8_t proof[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], key[SCRAM_KEY_LEN];
	uint8_t hashed[SCRAM_KEY_LEN], server_sig[SCRAM_KEY_LEN];
	const char *val;
	size_t vlen, wo_proof_len;
	char attr;
	bool crypto_ok, proof_ok;
	int rc;

	clear_out(out, outlen);
	if (st->state != SCRAM_SERVER_WAIT_FINAL)
		return server_fail(st, SCRAM_ERR_STATE);
	if (!out || outlen == 0)
		return server_fail(st, SCRAM_ERR_ARG);
	if (!message_ok(msg, len))
		return server_fail(st, SCRAM_ERR_PROTOCOL);

	/* c=<binding> , r=<nonce> [, extensions] , p=<proof> */
	if (!cur_attr(&c, 'c', &val, &vlen))
		return server_fail(st, SCRAM_ERR_PROTOCOL);
	rc = server_check_cbind(st, val, vlen);
	if (rc != SCRAM_OK)
		return server_fail(st, rc);
	if (!cur_char(&c, ',') || !cur_attr(&c, 'r', &val, &vlen))
		return server_fail(st, SCRAM_ERR_PROTOCOL);
	if (vlen != st->nonce_len || memcmp(val, st->nonce, vlen) != 0)
		return server_fail(st, SCRAM_ERR_PROTOCOL);
	do {
		wo_proof_len = c.pos;
		if (!cur_char(&c, ',') || !(attr = cur_any_attr(&c, &val, &vlen)))
			return server_fail(st, SCRAM_ERR_PROTOCOL);
	} while (attr != 'p');
	if (!cur_end(&c) || b64_decode(val, vlen, proof, sizeof(proof)) != SCRAM_KEY_LEN)
		return server_fail(st, SCRAM_ERR_PROTOCOL);

	if (!auth_message(&b, am, sizeof(am), st->client_first_bare, st->client_first_bare_len,
			  st->server_first, st->server_first_len, msg, wo_proof_len))
		return server_fail(st, SCRAM_ERR_PROTOCOL);

	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) == StoredKey? */
	crypto_ok = hmac256(st->secret.stored_key, SCRAM_KEY_LEN, am, b.len, sig);
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	crypto_ok = crypto_ok && sha256(key, SCRAM_KEY_LEN, hashed) &&
		    hmac256(st->secret.server_key, SCRAM_KEY_LEN, am, b.len, server_sig);
	proof_ok = CRYPTO_memcmp(hashed, st->secret.stored_key, SCRAM_KEY_LEN) == 0;
	OPENSSL_cleanse(sig, sizeof(sig));
	if (!crypto_ok) {
		rc = SCRAM_ERR_CRYPTO;
	} else if (!proof_ok || st->mock) {
		rc = SCRAM_ERR_AUTH;
	} else {
		sb_init(&b, out, outlen);
		sb_str(&b, "v=");
		sb_b64(&b, server_sig, SCRAM_KEY_LEN);
		rc = b.err ? SCRAM_ERR_ARG : SCRAM_OK;
	}
	if (rc == SCRAM_OK) {
		memcpy(st->client_key, key, SCRAM_KEY_LEN);
		st->state = SCRAM_SERVER_DONE;
	} else {
		clear_out(out, outlen);
		server_fail(st, rc);
	}
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(server_sig, sizeof(server_sig));
	return rc;
}

bool scram_server_get_keys(const struct scram_server *st, struct scram_secret *out)
{
	memset(out, 0, sizeof(*out));
	if (st->state != SCRAM_SERVER_DONE)
		return false;
	*out = st->secret;
	memcpy(out->client_key, st->client_key, SCRAM_KEY_LEN);
	out->has_client_key = true;
	return true;
}

void scram_server_wipe(struct scram_server *st)
{
	OPENSSL_cleanse(st, sizeof(*st));
	st->state = SCRAM_SERVER_FAILED;
}

/* ------------------------------------------------------------------------ */
/* Client side                                                               */
/* ------------------------------------------------------------------------ */

static int client_fail(struct scram_client *st, int rc)
{
	st->state = SCRAM_CLIENT_FAILED;
	OPENSSL_cleanse(st->password, sizeof(st->password));
	OPENSSL_cleanse(&st->keys, sizeof(st->keys));
	return rc;
}

int scram_client_init(struct scram_client *st, const char *password,
		      const struct scram_secret *keys, const uint8_t *cbind_data, size_t cbind_len,
		      bool use_plus)
{
	int rc;

	memset(st, 0, sizeof(*st));
	if (password) {
		size_t n = strnlen(password, SCRAM_MAX_PASSWORD_LEN + 1);

		if (n > SCRAM_MAX_PASSWORD_LEN)
			return client_fail(st, SCRAM_ERR_ARG);
		memcpy(st->password, password, n);
		st->has_password = true;
	}
	if (keys) {
		if (!keys->has_client_key || !secret_ok(keys))
			return client_fail(st, SCRAM_ERR_ARG);
		st->keys = *keys;
		st->has_keys = true;
	}
	if (!st->has_password && !st->has_keys)
		return client_fail(st, SCRAM_ERR_ARG);
	if (!copy_cbind(cbind_data, cbind_len, st->cbind, &st->cbind_len))
		return client_fail(st, SCRAM_ERR_ARG);
	if (use_plus && st->cbind_len == 0)
		return client_fail(st, SCRAM_ERR_CBIND);
	st->use_plus = use_plus;
	st->cbind_flag = use_plus ? 'p' : st->cbind_len > 0 ? 'y' : 'n';
	rc = random_nonce(st->nonce);
	if (rc != SCRAM_OK)
		return client_fail(st, rc);
	st->state = SCRAM_CLIENT_INIT;
	return SCRAM_OK;
}

const char *scram_client_mechanism(const struct scram_client *st)
{
	return st->use_plus ? SCRAM_MECHANISM_PLUS : SCRAM_MECHANISM;
}

int scram_client_set_nonce_for_test(struct scram_client *st, const char *nonce)
{
	if (st->state != SCRAM_CLIENT_INIT)
		return client_fail(st, SCRAM_ERR_STATE);
	if (!own_nonce_ok(nonce))
		return SCRAM_ERR_ARG;
	strcpy(st->nonce, nonce);
	return SCRAM_OK;
}

int scram_client_first(struct scram_client *st, char *out, size_t outlen)
{
	struct sbuild b;

	clear_out(out, outlen);
	if (st->state != SCRAM_CLIENT_INIT)
		return client_fail(st, SCRAM_ERR_STATE);
	/* PostgreSQL takes the user from the startup packet: "n=" stays empty. */
	sb_init(&b, st->client_first_bare, sizeof(st->client_first_bare));
	sb_str(&b, "n=,r=");
	sb_str(&b, st->nonce);
	if (b.err)
		return client_fail(st, SCRAM_ERR_ARG);
	st->client_first_bare_len = b.len;

	sb_init(&b, out, outlen);
	sb_str(&b, gs2_header(st->cbind_flag));
	sb_put(&b, st->client_first_bare, st->client_first_bare_len);
	if (b.err) {
		clear_out(out, outlen);
		return client_fail(st, SCRAM_ERR_ARG);
	}
	st->state = SCRAM_CLIENT_WAIT_SERVER_FIRST;
	return SCRAM_OK;
}

/* Parse server-first-message "r=<nonce>,s=<salt>,i=<iterations>". */
static int client_parse_server_first(const struct scram_client *st, const char *msg, size_t len,
				     uint8_t salt[SCRAM_MAX_SALT_LEN], int *salt_len,
				     int *iterations, const char **nonce, size_t *nonce_len)
{
	struct cursor c = { msg, len, 0 };
	size_t own = strlen(st->nonce), vlen;
	const char *val;
	long n;

	if (!cur_attr(&c, 'r', nonce, nonce_len))
		return SCRAM_ERR_PROTOCOL; /* "m=" (mandatory extension) lands here too */
	if (*nonce_len <= own || *nonce_len > SCRAM_MAX_NONCE_LEN ||
	    !nonce_chars_ok(*nonce, *nonce_len) || memcmp(*nonce, st->nonce, own) != 0)
		return SCRAM_ERR_PROTOCOL;
	if (!cur_char(&c, ',') || !cur_attr(&c, 's', &val, &vlen))
		return SCRAM_ERR_PROTOCOL;
	n = b64_decode(val, vlen, salt, SCRAM_MAX_SALT_LEN);
	if (n < 1)
		return SCRAM_ERR_PROTOCOL;
	*salt_len = (int)n;
	if (!cur_char(&c, ',') || !cur_attr(&c, 'i', &val, &vlen) ||
	    !parse_iterations(val, vlen, iterations) || !cur_end(&c))
		return SCRAM_ERR_PROTOCOL;
	return SCRAM_OK;
}

int scram_client_handle_server_first(struct scram_client *st, const char *msg, size_t len,
				     char *out, size_t outlen)
{
	uint8_t salt[SCRAM_MAX_SALT_LEN];
	uint8_t cbind_input[sizeof(GS2_PLUS) + SCRAM_MAX_CBIND_LEN];
	uint8_t stored[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
	struct scram_secret derived;
	const struct scram_secret *k;
	char am[AUTH_MESSAGE_MAX];
	char wo_proof[SCRAM_MAX_OUTPUT];
	struct sbuild b, amb;
	const char *nonce, *hdr;
	size_t nonce_len, cb_len;
	int salt_len, iterations, rc;
	bool ok;

	clear_out(out, outlen);
	memset(&derived, 0, sizeof(derived));
	if (st->state != SCRAM_CLIENT_WAIT_SERVER_FIRST)
		return client_fail(st, SCRAM_ERR_STATE);
	if (!out || outlen == 0)
		return client_fail(st, SCRAM_ERR_ARG);
	if (!message_ok(msg, len))
		return client_fail(st, SCRAM_ERR_PROTOCOL);
	rc = client_parse_server_first(st, msg, len, salt, &salt_len, &iterations, &nonce,
				       &nonce_len);
	if (rc != SCRAM_OK)
		return client_fail(st, rc);

	/* Keys are only good for the salt and count they were made with. */
	if (st->has_keys && st->keys.iterations == iterations && st->keys.salt_len == salt_len &&
	    memcmp(st->keys.salt, salt, (size_t)salt_len) == 0) {
		k = &st->keys;
	} else if (st->has_password) {
		if (!scram_secret_from_password(st->password, salt, salt_len, iterations, &derived))
			return client_fail(st, SCRAM_ERR_CRYPTO);
		k = &derived;
	} else {
		return client_fail(st, SCRAM_ERR_AUTH);
	}

	/* client-final-message-without-proof = c=<base64(gs2 [+ cbind])>,r=<nonce> */
	hdr = gs2_header(st->cbind_flag);
	cb_len = strlen(hdr);
	memcpy(cbind_input, hdr, cb_len);
	if (st->cbind_flag == 'p') {
		memcpy(cbind_input + cb_len, st->cbind, st->cbind_len);
		cb_len += st->cbind_len;
	}
	sb_init(&b, wo_proof, sizeof(wo_proof));
	sb_str(&b, "c=");
	sb_b64(&b, cbind_input, cb_len);
	sb_str(&b, ",r=");
	sb_put(&b, nonce, nonce_len);

	ok = !b.err &&
	     auth_message(&amb, am, sizeof(am), st->client_first_bare, st->client_first_bare_len,
			  msg, len, wo_proof, b.len) &&
	     sha256(k->client_key, SCRAM_KEY_LEN, stored) &&
	     hmac256(stored, SCRAM_KEY_LEN, am, amb.len, sig) &&
	     hmac256(k->server_key, SCRAM_KEY_LEN, am, amb.len, st->server_signature);
	if (ok) {
		for (int i = 0; i < SCRAM_KEY_LEN; i++)
			proof[i] = k->client_key[i] ^ sig[i];
		sb_str(&b, ",p=");
		sb_b64(&b, proof, SCRAM_KEY_LEN);
		rc = b.err ? SCRAM_ERR_ARG : SCRAM_OK;
		if (rc == SCRAM_OK) {
			sb_init(&b, out, outlen);
			sb_str(&b, wo_proof);
			rc = b.err ? SCRAM_ERR_ARG : SCRAM_OK;
		}
	} else {
		rc = SCRAM_ERR_CRYPTO;
	}
	OPENSSL_cleanse(&derived, sizeof(derived));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(wo_proof, sizeof(wo_proof));
	if (rc != SCRAM_OK) {
		clear_out(out, outlen);
		return client_fail(st, rc);
	}
	/* The proof is sent: the credentials are no longer needed. */
	OPENSSL_cleanse(st->password, sizeof(st->password));
	OPENSSL_cleanse(&st->keys, sizeof(st->keys));
	st->state = SCRAM_CLIENT_WAIT_SERVER_FINAL;
	return SCRAM_OK;
}

int scram_client_handle_server_final(struct scram_client *st, const char *msg, size_t len)
{
	struct cursor c = { msg, len, 0 };
	uint8_t sig[SCRAM_KEY_LEN];
	const char *val;
	size_t vlen, n = 0;

	if (st->state != SCRAM_CLIENT_WAIT_SERVER_FINAL)
		return client_fail(st, SCRAM_ERR_STATE);
	if (!message_ok(msg, len))
		return client_fail(st, SCRAM_ERR_PROTOCOL);
	if (cur_attr(&c, 'e', &val, &vlen)) {
		/* keep the whole rest, made printable, for the log */
		vlen = len - 2;
		for (size_t i = 0; i < vlen && n + 1 < sizeof(st->server_error); i++)
			st->server_error[n++] = (val[i] >= 0x20 && val[i] < 0x7f) ? val[i] : '?';
		st->server_error[n] = '\0';
		return client_fail(st, SCRAM_ERR_AUTH);
	}
	if (!cur_attr(&c, 'v', &val, &vlen) || !cur_end(&c) ||
	    b64_decode(val, vlen, sig, sizeof(sig)) != SCRAM_KEY_LEN)
		return client_fail(st, SCRAM_ERR_PROTOCOL);
	if (CRYPTO_memcmp(sig, st->server_signature, SCRAM_KEY_LEN) != 0)
		return client_fail(st, SCRAM_ERR_AUTH);
	st->state = SCRAM_CLIENT_DONE;
	return SCRAM_OK;
}

void scram_client_wipe(struct scram_client *st)
{
	OPENSSL_cleanse(st, sizeof(*st));
	st->state = SCRAM_CLIENT_FAILED;
}
