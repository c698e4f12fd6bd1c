/*
 * auth.c - client authentication: choose the method (hba_file, or
 * auth_method), then run the cleartext, md5 or SCRAM-SHA-256(-PLUS)
 * exchange against the secret from users_file.  Unknown users go through
 * the same steps (a mock SCRAM exchange, a dummy md5 comparison), so that
 * neither the messages nor the timing reveal whether a user exists.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/hba.h"
#include "pgchorus/log.h"
#include "pgchorus/md5auth.h"
#include "pgchorus/msg.h"
#include "pgchorus/scram.h"
#include "pgchorus/users.h"
#include "pgchorus/worker.h"

struct client_auth {
	enum hba_method method;
	int step;
	uint8_t salt[MD5_SALT_LEN];
	char *secret;                 /* copy of the users_file entry, NULL if unknown */
	struct scram_server scram;
};

static void auth_free(struct client *c)
{
	struct client_auth *a = c->auth;

	if (!a)
		return;
	scram_server_wipe(&a->scram);
	if (a->secret) {
		OPENSSL_cleanse(a->secret, strlen(a->secret));
		free(a->secret);
	}
	free(a);
	c->auth = NULL;
}

void client_auth_cleanup(struct client *c)
{
	client_auth_lookup_cancel(c);
	auth_free(c);
}

static void auth_failed(struct client *c)
{
	log_info("C-%p %s/%s@%s: password authentication failed", (void *)c, c->database, c->user, c->addr);
	auth_free(c);
	client_close(c, SQLSTATE_INVALID_PASSWORD, "password authentication failed for user \"%s\"", c->user);
}

static bool auth_send_request(struct client *c, uint32_t code, const void *data, size_t len)
{
	struct msg_builder mb;

	builder_begin(&mb, &c->scratch, 'R');
	builder_int32(&mb, code);
	builder_bytes(&mb, data, len);
	if (!builder_finish(&mb)) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	return client_flush_scratch(c);
}

static const char *conn_description(const struct client *c)
{
	return c->ps.tls ? "SSL encryption" : "no encryption";
}

/* Constant-time equality of two strings of possibly different lengths. */
static bool secret_equal(const char *a, const char *b)
{
	uint8_t ha[32], hb[32];
	unsigned int la = 0, lb = 0;

	EVP_Digest(a, strlen(a), ha, &la, EVP_sha256(), NULL);
	EVP_Digest(b, strlen(b), hb, &lb, EVP_sha256(), NULL);
	return la == 32 && lb == 32 && CRYPTO_memcmp(ha, hb, 32) == 0;
}

static bool check_cleartext(const struct client *c, const char *secret, const char *given)
{
	char md5[36];
	struct scram_secret stored, computed;

	if (!secret) {
		(void)secret_equal(given, "pgchorus-no-such-user"); /* same work as a real check */
		return false;
	}
	switch (users_secret_kind(secret)) {
	case USER_SECRET_PLAIN:
		return secret_equal(secret, given);
	case USER_SECRET_MD5:
		return md5_password_hash(c->user, given, md5) && secret_equal(secret, md5);
	case USER_SECRET_SCRAM:
		return scram_parse_verifier(secret, &stored) &&
		       scram_secret_from_password(given, stored.salt, stored.salt_len, stored.iterations, &computed) &&
		       CRYPTO_memcmp(stored.stored_key, computed.stored_key, SCRAM_KEY_LEN) == 0;
	}
	return false;
}

static bool auth_start_scram(struct client *c)
{
	struct client_auth *a = c->auth;
	struct scram_secret secret;
	uint8_t cbind[TLS_CBIND_MAX];
	size_t cbind_len = c->ps.tls ? tls_conn_cbind(c->ps.tls, cbind) : 0;
	char mechs[64];
	size_t n = 0;
	int r;

	if (a->secret && users_secret_kind(a->secret) == USER_SECRET_SCRAM &&
	    scram_parse_verifier(a->secret, &secret)) {
		r = scram_server_init(&a->scram, &secret, cbind_len ? cbind : NULL, cbind_len);
	} else if (a->secret && users_secret_kind(a->secret) == USER_SECRET_PLAIN) {
		uint8_t salt[SCRAM_DEFAULT_SALT_LEN];

		if (RAND_bytes(salt, sizeof(salt)) != 1 ||
		    !scram_secret_from_password(a->secret, salt, sizeof(salt), SCRAM_DEFAULT_ITERATIONS, &secret))
			r = SCRAM_ERR_CRYPTO;
		else
			r = scram_server_init(&a->scram, &secret, cbind_len ? cbind : NULL, cbind_len);
	} else {
		/* Unknown user, or an md5 secret (SCRAM impossible): fail at the end, like PostgreSQL. */
		r = scram_server_init_mock(&a->scram, c->user, cbind_len ? cbind : NULL, cbind_len);
	}
	OPENSSL_cleanse(&secret, sizeof(secret));
	if (r != SCRAM_OK) {
		client_close(c, SQLSTATE_INTERNAL, "could not start SCRAM authentication: %s", scram_strerror(r));
		return false;
	}
	if (scram_server_offers_plus(&a->scram)) {
		memcpy(mechs, SCRAM_MECHANISM_PLUS, sizeof(SCRAM_MECHANISM_PLUS));
		n = sizeof(SCRAM_MECHANISM_PLUS);
	}
	memcpy(mechs + n, SCRAM_MECHANISM, sizeof(SCRAM_MECHANISM));
	n += sizeof(SCRAM_MECHANISM);
	mechs[n++] = 0;
	a->method = HBA_SCRAM;
	return auth_send_request(c, 10, mechs, n);
}

static void auth_run_method(struct client *c, enum hba_method method, const char *secret);
static void auth_looked_up(struct client *c, bool ok, const char *secret, const char *error);

void client_auth_begin(struct client *c)
{
	const struct config *cfg = c->w->cfg;
	enum hba_method method;
	const char *secret;
	int line = 0;

	if (!c->is_unix && cfg->client_tls == CLIENT_TLS_REQUIRE && !c->ps.tls) {
		client_close(c, SQLSTATE_INVALID_AUTH,
			     "TLS is required (client_tls = require): connect with sslmode=require");
		return;
	}
	if (cfg->hba) {
		if (!hba_match(cfg->hba, c->is_unix ? HBA_LOCAL : HBA_HOST, c->ps.tls != NULL,
			       c->is_unix ? NULL : &c->peer.sa, c->database, c->user,
			       &method, &line)) {
			if (c->is_unix)
				client_close(c, SQLSTATE_INVALID_AUTH,
					     "no pg_hba.conf entry for local connection, user \"%s\", database \"%s\"",
					     c->user, c->database);
			else
				client_close(c, SQLSTATE_INVALID_AUTH,
					     "no pg_hba.conf entry for host \"%.*s\", user \"%s\", database \"%s\", %s",
					     (int)strcspn(c->addr, ":"), c->addr, c->user, c->database,
					     conn_description(c));
			return;
		}
	} else {
		method = cfg->auth_method == AUTH_MD5 ? HBA_MD5 : cfg->auth_method == AUTH_SCRAM ? HBA_SCRAM : HBA_TRUST;
	}
	log_debug("C-%p %s/%s@%s: authentication method %s (hba line %d)", (void *)c, c->database, c->user,
		  c->addr, hba_method_name(method), line);
	if (method == HBA_TRUST) {
		client_auth_done(c);
		return;
	}
	if (method == HBA_REJECT) {
		client_close(c, SQLSTATE_INVALID_AUTH,
			     "pg_hba.conf rejects connection for host \"%.*s\", user \"%s\", database \"%s\", %s",
			     (int)strcspn(c->addr, ":"), c->addr, c->user, c->database, conn_description(c));
		return;
	}
	secret = users_lookup(cfg->users, c->user);
	client_set_state(c, CL_AUTH);
	if (!secret && cfg->auth_query[0]) {
		/* Not in users_file: ask the node; authentication resumes in auth_looked_up. */
		c->auth_method_pending = method;
		client_pause(c);
		if (!client_auth_lookup(c, auth_looked_up))
			client_close(c, SQLSTATE_CONNECTION_FAILURE, "auth_query: no node available");
		return;
	}
	auth_run_method(c, method, secret);
}

/* Start METHOD (password, md5 or SCRAM) against SECRET (NULL: unknown user). */
static void auth_run_method(struct client *c, enum hba_method method, const char *secret)
{
	struct client_auth *a = calloc(1, sizeof(*a));

	if (!a || (secret && !(a->secret = strdup(secret)))) {
		free(a);
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	c->auth = a;
	a->method = method;
	/* md5 with a SCRAM secret is upgraded to SCRAM, as PostgreSQL does. */
	if (method == HBA_SCRAM || (method == HBA_MD5 && a->secret && users_secret_kind(a->secret) == USER_SECRET_SCRAM)) {
		auth_start_scram(c);
	} else if (method == HBA_MD5) {
		if (RAND_bytes(a->salt, sizeof(a->salt)) != 1) {
			client_close(c, SQLSTATE_INTERNAL, "random generator failed");
			return;
		}
		auth_send_request(c, 5, a->salt, sizeof(a->salt));
	} else {
		auth_send_request(c, 3, NULL, 0);
	}
}

static void auth_looked_up(struct client *c, bool ok, const char *secret, const char *error)
{
	if (!ok) {
		log_warning("C-%p %s/%s@%s: %s", (void *)c, c->database, c->user, c->addr, error);
		client_close(c, SQLSTATE_CONNECTION_FAILURE, "could not look up the password: auth_query failed");
		return;
	}
	auth_run_method(c, c->auth_method_pending, secret);
	client_resume(c);
	if (c->state == CL_AUTH && c->in.data)
		client_startup(c);
}

/* SASLInitialResponse: mechanism, int32 length, client-first-message. */
static void auth_scram_initial(struct client *c, struct msg_reader *r)
{
	struct client_auth *a = c->auth;
	const char *mech = reader_string(r);
	uint32_t dlen = reader_int32(r);
	const uint8_t *data = dlen == UINT32_MAX ? NULL : reader_bytes(r, dlen);
	char out[SCRAM_MAX_OUTPUT];
	int rc;

	if (!reader_done(r) || !data) {
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "malformed SASLInitialResponse message");
		return;
	}
	rc = scram_server_handle_first(&a->scram, mech, (const char *)data, dlen, out, sizeof(out));
	if (rc == SCRAM_ERR_CBIND) {
		auth_free(c);
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "SCRAM channel binding negotiation error");
		return;
	}
	if (rc == SCRAM_ERR_UNSUPPORTED) {
		auth_free(c);
		client_close(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
			     "client uses an authorization identity or mandatory extension, which is not supported");
		return;
	}
	if (rc != SCRAM_OK) {
		auth_free(c);
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "malformed SCRAM message (%s)", scram_strerror(rc));
		return;
	}
	a->step = 1;
	auth_send_request(c, 11, out, strlen(out));
}

static void auth_scram_final(struct client *c, struct msg_reader *r)
{
	struct client_auth *a = c->auth;
	size_t len = r->len;
	const uint8_t *data = reader_bytes(r, len);
	char out[SCRAM_MAX_OUTPUT];
	struct scram_secret keys;
	int rc = scram_server_handle_final(&a->scram, (const char *)data, len, out, sizeof(out));

	if (rc == SCRAM_ERR_AUTH) {
		auth_failed(c);
		return;
	}
	if (rc != SCRAM_OK) {
		auth_free(c);
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "SCRAM authentication failed: %s", scram_strerror(rc));
		return;
	}
	/* Keep the recovered ClientKey: with it pgchorus can log in to nodes as this
	 * user even when users_file holds only the verifier. */
	if (scram_server_get_keys(&a->scram, &keys))
		worker_remember_scram_keys(c->w, c->user, &keys);
	OPENSSL_cleanse(&keys, sizeof(keys));
	if (!auth_send_request(c, 12, out, strlen(out)))
		return;
	auth_free(c);
	client_auth_done(c);
}

void client_auth_message(struct client *c, uint8_t type, const uint8_t *body, uint32_t len)
{
	struct client_auth *a = c->auth;
	struct msg_reader r;
	bool ok;

	if (!a) {
		/* auth_query still running: nothing may be sent before our request. */
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "password message before the authentication request");
		return;
	}
	if (type != 'p') {
		auth_free(c);
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION,
			     "expected password response, got message type %d", type);
		return;
	}
	reader_init(&r, body, len);
	if (a->method == HBA_SCRAM) {
		if (a->step == 0)
			auth_scram_initial(c, &r);
		else
			auth_scram_final(c, &r);
		return;
	}
	{
		const char *given = reader_string(&r);

		if (!reader_done(&r)) {
			auth_free(c);
			client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid password packet size");
			return;
		}
		if (a->method == HBA_MD5)
			ok = md5_verify(a->secret ? a->secret : "md500000000000000000000000000000000", c->user,
					a->salt, given) && a->secret;
		else
			ok = check_cleartext(c, a->secret, given);
	}
	if (!ok) {
		auth_failed(c);
		return;
	}
	auth_free(c);
	client_auth_done(c);
}
