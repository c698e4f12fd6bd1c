/*
 * scram.h - SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) the
 * way PostgreSQL 15 speaks them, as two pure state machines:
 *
 *   - struct scram_server: pgchorus authenticating a client;
 *   - struct scram_client: pgchorus authenticating to a node.
 *
 * Neither does I/O: each step takes the SASL payload received (the data of
 * SASLInitialResponse / SASLResponse, or of AuthenticationSASLContinue /
 * AuthenticationSASLFinal) and writes the payload to send as a
 * NUL-terminated string.  Framing the PostgreSQL messages is the caller's
 * job.  The structs are plain memory owned by the caller (no allocation, no
 * cleanup needed); they hold key material, so callers should wipe them with
 * scram_server_wipe() / scram_client_wipe() when done.
 *
 * PostgreSQL specifics honoured here:
 *   - the user name in client-first-message is ignored (libpq sends "n=");
 *     the user is the one of the startup packet;
 *   - the only channel binding type is "tls-server-end-point" (RFC 5929:
 *     the hash of the server certificate, computed by the TLS layer);
 *   - gs2 headers: "n,," no binding, "y,," the client could bind but the
 *     server did not offer PLUS, "p=tls-server-end-point,," binding in use;
 *     an authorization identity ("a=") and mandatory extensions ("m=") are
 *     refused;
 *   - nonces are 18 random bytes in base64 (24 characters);
 *   - a new verifier has a 16-byte salt and 4096 iterations.
 *
 * SASLprep (RFC 4013) is implemented only as far as PostgreSQL's fallback
 * goes: an ASCII password is used as is (PostgreSQL does the same), any
 * other password is used as raw bytes, which is what PostgreSQL does when
 * the password is not valid UTF-8 or normalization fails.  A non-ASCII
 * password that NFKC normalization or the RFC 4013 mappings would change
 * therefore does not match a verifier PostgreSQL made from it.
 *
 * Return conventions: int functions return SCRAM_OK (0) or a negative
 * SCRAM_ERR_*; bool functions return false on failure.  After any error a
 * state machine is dead: every further step returns SCRAM_ERR_STATE.
 * On error the out buffer holds "" (when outlen > 0).
 *
 * Cost: deriving keys from a password (PBKDF2, 4096 HMACs by default) is
 * CPU work of the order of a millisecond inside the call.  The server side
 * never derives (it works from the verifier); the client side derives only
 * when it is given a password and no matching keys.
 *
 * Thread safety: the functions touch only their arguments, except the
 * per-process random key of the mock authentication, initialized once.
 */
#ifndef PGCHORUS_SCRAM_H
#define PGCHORUS_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN 32
#define SCRAM_MAX_SALT_LEN 64
#define SCRAM_DEFAULT_SALT_LEN 16
#define SCRAM_DEFAULT_ITERATIONS 4096
#define SCRAM_MAX_CBIND_LEN 64     /* tls-server-end-point: up to a SHA-512 hash */
#define SCRAM_NONCE_LEN 24         /* the nonce part we generate, base64 of 18 bytes */
#define SCRAM_MAX_OWN_NONCE_LEN 64 /* our nonce part when set for a test */
#define SCRAM_MAX_NONCE_LEN 256    /* client nonce + server nonce */
#define SCRAM_MAX_MESSAGE 1024     /* longest SASL payload accepted from a peer */
#define SCRAM_MAX_OUTPUT 512       /* an out buffer of this size is always enough */
#define SCRAM_MAX_VERIFIER_LEN 256 /* buffer size for scram_make/format_verifier */
#define SCRAM_MAX_PASSWORD_LEN 1024
#define SCRAM_MAX_SERVER_ERROR 64

#define SCRAM_MECHANISM "SCRAM-SHA-256"
#define SCRAM_MECHANISM_PLUS "SCRAM-SHA-256-PLUS"

enum scram_status {
	SCRAM_OK = 0,
	SCRAM_ERR_PROTOCOL = -1, /* malformed or out-of-place message from the peer */
	SCRAM_ERR_AUTH = -2,     /* wrong password / proof / server signature, unknown user
				  * (mock), unusable keys, or "e=" from the server */
	SCRAM_ERR_CBIND = -3,    /* channel binding mismatch, required, or unsupported */
	SCRAM_ERR_STATE = -4,    /* called out of order, or after an earlier error */
	SCRAM_ERR_ARG = -5,      /* caller mistake: out buffer too small, over-long argument */
	SCRAM_ERR_CRYPTO = -6,
	SCRAM_ERR_UNSUPPORTED = -7, /* valid SCRAM, but a feature PostgreSQL refuses: "a=", "m=" */   /* OpenSSL failure (random generator, digest) */
};

/* A static English description of a SCRAM_* code. */
const char *scram_strerror(int rc);

/*
 * What a SCRAM verifier holds; with has_client_key also the ClientKey,
 * which is enough to log in (as a client) anywhere this verifier is stored.
 */
struct scram_secret {
	int iterations;
	uint8_t salt[SCRAM_MAX_SALT_LEN];
	int salt_len;
	uint8_t stored_key[SCRAM_KEY_LEN];  /* H(ClientKey) */
	uint8_t server_key[SCRAM_KEY_LEN];
	bool has_client_key;
	uint8_t client_key[SCRAM_KEY_LEN];
};

/*
 * Parse "SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64
 * ServerKey>" (the pg_authid form) into OUT, has_client_key false.  The
 * iteration count is 1..INT_MAX, the salt 1..SCRAM_MAX_SALT_LEN bytes, the
 * keys 32 bytes; base64 must be padded and without blanks.  False (OUT
 * zeroed) if anything is off.
 */
bool scram_parse_verifier(const char *s, struct scram_secret *out)
	__attribute__((warn_unused_result));

/*
 * Derive the full secret of PASSWORD (NUL-terminated; SASLprep as described
 * above) for SALT (1..SCRAM_MAX_SALT_LEN bytes) and ITERATIONS (>= 1), with
 * the ClientKey (has_client_key true).  False on bad arguments or crypto
 * failure.
 */
bool scram_secret_from_password(const char *password, const uint8_t *salt, int salt_len,
				int iterations, struct scram_secret *out)
	__attribute__((warn_unused_result));

/*
 * Write the pg_authid form of SECRET into OUT (OUTLEN bytes,
 * SCRAM_MAX_VERIFIER_LEN is enough).  False if it does not fit or the
 * secret is invalid.
 */
bool scram_format_verifier(const struct scram_secret *secret, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * A new verifier for PASSWORD with a random 16-byte salt and 4096
 * iterations, as PostgreSQL's CREATE ROLE ... PASSWORD would store it.
 */
bool scram_make_verifier(const char *password, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/* ------------------------------------------------------------------------ */
/* Server side: a client logs in to pgchorus.                                */
/* ------------------------------------------------------------------------ */

enum scram_server_state {
	SCRAM_SERVER_WAIT_FIRST,  /* initialized, expecting client-first-message */
	SCRAM_SERVER_WAIT_FINAL,  /* server-first sent, expecting client-final */
	SCRAM_SERVER_DONE,        /* authenticated, server-final written */
	SCRAM_SERVER_FAILED,
};

/* All fields are private to scram.c except through the functions below. */
struct scram_server {
	enum scram_server_state state;
	bool mock;                /* unknown user: always fails at the end */
	bool has_cbind;           /* TLS: PLUS offered, cbind holds the data */
	bool plus_selected;       /* the client chose SCRAM-SHA-256-PLUS */
	char cbind_flag;          /* 'n', 'y' or 'p' from the gs2 header */
	struct scram_secret secret;
	uint8_t cbind[SCRAM_MAX_CBIND_LEN];
	size_t cbind_len;
	char server_nonce[SCRAM_MAX_OWN_NONCE_LEN + 1];
	char nonce[SCRAM_MAX_NONCE_LEN + 1];       /* client nonce + server nonce */
	size_t nonce_len;
	char client_first_bare[SCRAM_MAX_MESSAGE + 1];
	size_t client_first_bare_len;
	char server_first[SCRAM_MAX_OUTPUT];
	size_t server_first_len;
	uint8_t client_key[SCRAM_KEY_LEN];         /* recovered on success */
};

/*
 * Start an exchange for a user whose verifier is SECRET (copied; its
 * ClientKey, if any, is not used).  CBIND_DATA/CBIND_LEN is the
 * tls-server-end-point data of the client's TLS connection (copied, at most
 * SCRAM_MAX_CBIND_LEN bytes), or NULL/0 without TLS.  Picks a random server
 * nonce.  A user known only by a plain text password needs a secret from
 * scram_secret_from_password() (any salt, e.g. random); a user with an md5
 * secret, or none, gets scram_server_init_mock() like PostgreSQL does.
 * Returns SCRAM_OK, SCRAM_ERR_ARG or SCRAM_ERR_CRYPTO.
 */
int scram_server_init(struct scram_server *st, const struct scram_secret *secret,
		      const uint8_t *cbind_data, size_t cbind_len)
	__attribute__((warn_unused_result));

/*
 * Start a mock exchange for a user that does not exist (or cannot use
 * SCRAM): indistinguishable from a real one to the client (a salt derived
 * from USERNAME and a per-process random key, so that it is stable for a
 * name across attempts, default iterations) but scram_server_handle_final
 * always returns SCRAM_ERR_AUTH.  Same returns as scram_server_init.
 */
int scram_server_init_mock(struct scram_server *st, const char *username,
			   const uint8_t *cbind_data, size_t cbind_len)
	__attribute__((warn_unused_result));

/*
 * Whether to offer SCRAM-SHA-256-PLUS in AuthenticationSASL (true iff
 * channel binding data was given).  PostgreSQL lists "SCRAM-SHA-256-PLUS"
 * first, then "SCRAM-SHA-256".
 */
bool scram_server_offers_plus(const struct scram_server *st);

/*
 * Handle SASLInitialResponse: MECHANISM is its mechanism name, MSG/LEN its
 * data (client-first-message; need not be NUL-terminated, must not contain
 * NUL).  On SCRAM_OK, OUT holds server-first-message
 * "r=<client nonce><server nonce>,s=<salt>,i=<iterations>" for
 * AuthenticationSASLContinue.  Errors: SCRAM_ERR_PROTOCOL (malformed, "a="
 * or "m=" used, mechanism not offered or inconsistent with the gs2 header),
 * SCRAM_ERR_CBIND (unsupported binding type, or "y" while PLUS was
 * offered: a downgrade), SCRAM_ERR_ARG, SCRAM_ERR_STATE.
 */
int scram_server_handle_first(struct scram_server *st, const char *mechanism,
			      const char *msg, size_t len, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Handle SASLResponse data (client-final-message).  Checks the channel
 * binding ("c=" must be base64 of the gs2 header, plus the binding data
 * with "p"), the nonce, then the ClientProof in constant time.  On
 * SCRAM_OK, OUT holds server-final-message "v=<ServerSignature>" for
 * AuthenticationSASLFinal (followed by AuthenticationOk), and the
 * recovered ClientKey is available through scram_server_get_keys().
 * Errors: SCRAM_ERR_PROTOCOL, SCRAM_ERR_CBIND, SCRAM_ERR_AUTH (wrong
 * password, or mock), SCRAM_ERR_ARG, SCRAM_ERR_STATE.  PostgreSQL answers
 * any error with an ErrorResponse, not with "e=": OUT is then "".
 */
int scram_server_handle_final(struct scram_server *st, const char *msg, size_t len,
			      char *out, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * After a successful exchange: the user's secret with the recovered
 * ClientKey (has_client_key true), fit for scram_client_init() towards
 * nodes holding the same verifier.  False in any other state.
 */
bool scram_server_get_keys(const struct scram_server *st, struct scram_secret *out)
	__attribute__((warn_unused_result));

/*
 * Replace the random server nonce (before scram_server_handle_first) by
 * NONCE: 1..SCRAM_MAX_OWN_NONCE_LEN printable characters other than ','.  Only
 * for reproducing test vectors; never call it in production.
 */
int scram_server_set_nonce_for_test(struct scram_server *st, const char *nonce)
	__attribute__((warn_unused_result));

/* Erase ST (keys included). */
void scram_server_wipe(struct scram_server *st);

/* ------------------------------------------------------------------------ */
/* Client side: pgchorus logs in to a node.                                  */
/* ------------------------------------------------------------------------ */

enum scram_client_state {
	SCRAM_CLIENT_INIT,              /* client-first-message not yet produced */
	SCRAM_CLIENT_WAIT_SERVER_FIRST,
	SCRAM_CLIENT_WAIT_SERVER_FINAL,
	SCRAM_CLIENT_DONE,              /* the node proved it knows the verifier */
	SCRAM_CLIENT_FAILED,
};

/* All fields are private to scram.c except server_error. */
struct scram_client {
	enum scram_client_state state;
	bool use_plus;
	char cbind_flag;                     /* 'n', 'y' or 'p' */
	bool has_password;
	bool has_keys;
	char password[SCRAM_MAX_PASSWORD_LEN + 1];
	struct scram_secret keys;
	uint8_t cbind[SCRAM_MAX_CBIND_LEN];
	size_t cbind_len;
	char nonce[SCRAM_MAX_OWN_NONCE_LEN + 1]; /* our client nonce */
	char client_first_bare[SCRAM_MAX_OUTPUT];
	size_t client_first_bare_len;
	uint8_t server_signature[SCRAM_KEY_LEN]; /* expected in server-final */
	/* After SCRAM_ERR_AUTH from "e=": the server's error, printable ASCII. */
	char server_error[SCRAM_MAX_SERVER_ERROR];
};

/*
 * Prepare a login.  Credentials: PASSWORD (NUL-terminated, copied, may be
 * NULL) and/or KEYS (copied, may be NULL; must have has_client_key).  KEYS
 * are used when the node's salt and iteration count equal theirs (no
 * PBKDF2 needed), the password otherwise; with KEYS only, a node with
 * another salt or count fails with SCRAM_ERR_AUTH.
 * Channel binding: CBIND_DATA/CBIND_LEN is the tls-server-end-point data
 * of the TLS connection to the node (NULL/0 without TLS).  With USE_PLUS
 * (only when the node offered SCRAM-SHA-256-PLUS) the exchange is bound
 * ("p"); without it, cbind data present means "y" (we could bind but the
 * node did not offer PLUS; a node that did offer it then refuses the
 * login as a downgrade), absent means "n".  So pass cbind data with
 * USE_PLUS false only when PLUS was not offered.
 * Picks a random client nonce.  Returns SCRAM_OK, SCRAM_ERR_ARG (no usable
 * credentials, over-long password or cbind data), SCRAM_ERR_CBIND
 * (USE_PLUS without cbind data) or SCRAM_ERR_CRYPTO.
 */
int scram_client_init(struct scram_client *st, const char *password,
		      const struct scram_secret *keys, const uint8_t *cbind_data, size_t cbind_len,
		      bool use_plus)
	__attribute__((warn_unused_result));

/* The mechanism name for SASLInitialResponse: SCRAM_MECHANISM[_PLUS]. */
const char *scram_client_mechanism(const struct scram_client *st);

/*
 * Write client-first-message ("<gs2 header>n=,r=<nonce>") into OUT, the
 * data of SASLInitialResponse.  SCRAM_OK, SCRAM_ERR_ARG or SCRAM_ERR_STATE.
 */
int scram_client_first(struct scram_client *st, char *out, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Handle the data of AuthenticationSASLContinue (server-first-message
 * "r=...,s=...,i=...").  On SCRAM_OK, OUT holds client-final-message with
 * the ClientProof, the data of SASLResponse.  Errors: SCRAM_ERR_PROTOCOL
 * (malformed, nonce not extending ours, salt longer than
 * SCRAM_MAX_SALT_LEN), SCRAM_ERR_AUTH (KEYS only and the node's salt or
 * iteration count differ), SCRAM_ERR_ARG, SCRAM_ERR_CRYPTO, SCRAM_ERR_STATE.
 */
int scram_client_handle_server_first(struct scram_client *st, const char *msg, size_t len,
				     char *out, size_t outlen)
	__attribute__((warn_unused_result));

/*
 * Handle the data of AuthenticationSASLFinal: "v=<ServerSignature>",
 * checked in constant time (SCRAM_OK: the node is authentic, wait for
 * AuthenticationOk), or "e=<error>" (SCRAM_ERR_AUTH, text in
 * st->server_error).  Other errors: SCRAM_ERR_AUTH (wrong signature),
 * SCRAM_ERR_PROTOCOL, SCRAM_ERR_STATE.
 */
int scram_client_handle_server_final(struct scram_client *st, const char *msg, size_t len)
	__attribute__((warn_unused_result));

/* Like scram_server_set_nonce_for_test, for the client nonce; before
 * scram_client_first. */
int scram_client_set_nonce_for_test(struct scram_client *st, const char *nonce)
	__attribute__((warn_unused_result));

/* Erase ST (password and keys included). */
void scram_client_wipe(struct scram_client *st);

#endif
