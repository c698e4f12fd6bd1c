/*
 * auth.c - pgchorus logging in to a node as the client's user: cleartext,
 * md5 and SCRAM-SHA-256(-PLUS), with the password from users_file, or,
 * for SCRAM, the ClientKey recovered from a client's own SCRAM login when
 * users_file holds only the verifier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "pgchorus/codec.h"
#include "pgchorus/log.h"
#include "pgchorus/md5auth.h"
#include "pgchorus/scram.h"
#include "pgchorus/server.h"
#include "pgchorus/users.h"
#include "pgchorus/worker.h"

void server_auth_cleanup(struct server *s)
{
	if (s->scram) {
		scram_client_wipe(s->scram);
		free(s->scram);
		s->scram = NULL;
	}
}

static int send_password_msg(struct server *s, const void *data, size_t len, const char *mech)
{
	struct msg_builder mb;
	uv_buf_t b;
	int r;

	builder_begin(&mb, &s->scratch, 'p');
	if (mech) {
		builder_string(&mb, mech);
		builder_int32(&mb, (uint32_t)len);
	}
	builder_bytes(&mb, data, len);
	if (!builder_finish(&mb))
		return -1;
	b = uv_buf_init((char *)s->scratch.data, (unsigned int)s->scratch.len);
	r = pstream_send(&s->ps, &b, 1);
	buf_reset(&s->scratch);
	return r < 0 ? -1 : 0;
}

static int start_scram(struct server *s, struct msg_reader *r, const char *secret, char *reason, size_t rlen)
{
	const struct scram_secret *learned = worker_scram_keys(s->w, s->pool->user);
	struct scram_secret keys;
	bool plus_offered = false, plain_offered = false, have_keys = false;
	uint8_t cbind[TLS_CBIND_MAX];
	size_t cbind_len = s->ps.tls ? tls_conn_cbind(s->ps.tls, cbind) : 0;
	char out[SCRAM_MAX_OUTPUT];
	const char *password = NULL;
	int rc;

	for (;;) {
		const char *m = reader_string(r);

		if (r->err || !*m)
			break;
		if (strcmp(m, SCRAM_MECHANISM_PLUS) == 0)
			plus_offered = true;
		else if (strcmp(m, SCRAM_MECHANISM) == 0)
			plain_offered = true;
	}
	if (!plus_offered && !plain_offered) {
		snprintf(reason, rlen, "node offers no SASL mechanism pgchorus supports");
		return -1;
	}
	if (secret && users_secret_kind(secret) == USER_SECRET_PLAIN)
		password = secret;
	if (learned && learned->has_client_key) {
		keys = *learned;
		have_keys = true;
	}
	if (!password && !have_keys) {
		snprintf(reason, rlen,
			 "node requires SCRAM authentication for user \"%s\": users_file must hold its password, or "
			 "the user must first log in to pgchorus with SCRAM so that pgchorus learns its client key",
			 s->pool->user);
		return -1;
	}
	s->scram = calloc(1, sizeof(*s->scram));
	if (!s->scram) {
		snprintf(reason, rlen, "out of memory");
		return -1;
	}
	rc = scram_client_init(s->scram, password, have_keys ? &keys : NULL,
			       cbind_len ? cbind : NULL, cbind_len, plus_offered && cbind_len);
	OPENSSL_cleanse(&keys, sizeof(keys));
	if (rc == SCRAM_OK)
		rc = scram_client_first(s->scram, out, sizeof(out));
	if (rc != SCRAM_OK) {
		snprintf(reason, rlen, "SCRAM: %s", scram_strerror(rc));
		return -1;
	}
	return send_password_msg(s, out, strlen(out), scram_client_mechanism(s->scram));
}

int server_auth_request(struct server *s, uint32_t code, struct msg_reader *r, char *reason, size_t rlen)
{
	const char *secret = users_lookup(s->w->cfg->users, s->pool->user);
	char out[SCRAM_MAX_OUTPUT];
	const uint8_t *data;
	size_t len;
	int rc;

	switch (code) {
	case 3: /* cleartext */
		if (!secret || users_secret_kind(secret) != USER_SECRET_PLAIN) {
			snprintf(reason, rlen, "node asks for the cleartext password of user \"%s\", which users_file "
				 "does not hold", s->pool->user);
			return -1;
		}
		return send_password_msg(s, secret, strlen(secret) + 1, NULL);
	case 5: /* md5 */
		data = reader_bytes(r, MD5_SALT_LEN);
		if (!data || !reader_done(r)) {
			snprintf(reason, rlen, "malformed md5 authentication request from node");
			return -1;
		}
		if (!secret || users_secret_kind(secret) == USER_SECRET_SCRAM ||
		    !md5_salted_response(secret, s->pool->user, data, out)) {
			snprintf(reason, rlen, "node asks for md5 authentication of user \"%s\": users_file must hold "
				 "its password or md5 hash", s->pool->user);
			return -1;
		}
		return send_password_msg(s, out, strlen(out) + 1, NULL);
	case 10: /* SASL */
		return start_scram(s, r, secret, reason, rlen);
	case 11: /* SASLContinue */
	case 12: /* SASLFinal */
		len = r->len - r->pos;
		data = reader_bytes(r, len);
		if (!s->scram) {
			snprintf(reason, rlen, "unexpected SASL message from node");
			return -1;
		}
		if (code == 11) {
			rc = scram_client_handle_server_first(s->scram, (const char *)data, len, out, sizeof(out));
			if (rc == SCRAM_OK)
				return send_password_msg(s, out, strlen(out), NULL);
		} else {
			rc = scram_client_handle_server_final(s->scram, (const char *)data, len);
			if (rc == SCRAM_OK) {
				server_auth_cleanup(s);
				return 0;
			}
		}
		snprintf(reason, rlen, "SCRAM authentication with node failed: %s", scram_strerror(rc));
		return -1;
	default:
		snprintf(reason, rlen, "node requested authentication method %u, which pgchorus does not support",
			 code);
		return -1;
	}
}
