/*
 * tls.h - TLS over libuv streams with OpenSSL memory BIOs, so that TLS
 * never blocks an event loop: ciphertext read from the socket is fed into
 * the read BIO and decrypted into the connection's plaintext buffer; what
 * the connection sends is encrypted into the write BIO, whose bytes are
 * then written to the socket like any other output.
 *
 * A struct tls_ctx (an SSL_CTX plus what we derived from its certificate)
 * is built by the main thread from a configuration snapshot and shared by
 * all workers (reference counted); SIGHUP builds a new one, connections
 * keep the one they started with.
 */
#ifndef PGCHORUS_TLS_H
#define PGCHORUS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "pgchorus/buf.h"

struct config;

#define TLS_RAW_BUF 16384
#define TLS_CBIND_MAX 64

struct tls_ctx;

struct tls_conn {
	void *ssl;                 /* SSL * */
	void *rbio;                /* BIO *: ciphertext from the peer */
	void *wbio;                /* BIO *: ciphertext for the peer */
	struct tls_ctx *ctx;
	bool handshake_done;
	bool peer_closed;          /* close_notify received */
	char err[160];             /* last error, for logs and client messages */
	struct buf out;            /* ciphertext on its way to the socket (stream.c) */
	uint8_t raw[TLS_RAW_BUF];  /* socket reads land here */
};

/* Context for clients connecting to pgchorus (cert and key required).
 * NULL with ERR set on failure; NULL without error if TLS is not configured. */
struct tls_ctx *tls_ctx_new_server(const struct config *cfg, char *err, size_t errlen);
/* Context for pgchorus connecting to nodes (server_tls); NULL on failure (ERR set). */
struct tls_ctx *tls_ctx_new_client(const struct config *cfg, char *err, size_t errlen);
struct tls_ctx *tls_ctx_ref(struct tls_ctx *c);
void tls_ctx_unref(struct tls_ctx *c);

/* A TLS session on a connection; SERVER selects the accepting side.
 * HOST (client side) is checked against the certificate for verify-full and
 * sent as SNI.  NULL on failure. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, bool server, const char *host);
void tls_conn_free(struct tls_conn *t);

/*
 * N ciphertext bytes were read into t->raw: decrypt everything available
 * into PLAIN (grown as needed).  Returns the number of plaintext bytes
 * added, or -1 on a TLS error (t->err says why).  Handshake records to send
 * back are left in the write BIO: call tls_conn_output.
 */
int tls_conn_read(struct tls_conn *t, size_t n, struct iobuf *plain, struct bufpool *bp);
/* Encrypt BUFS; the ciphertext waits in the write BIO.  0 or -1. */
int tls_conn_write(struct tls_conn *t, const uv_buf_t *bufs, unsigned int n);
/* Start (client side) or continue the handshake.  1 done, 0 in progress, -1 error. */
int tls_conn_handshake(struct tls_conn *t);
/* Move the ciphertext waiting in the write BIO to OUT.  false on OOM. */
bool tls_conn_output(struct tls_conn *t, struct buf *out) __attribute__((warn_unused_result));
/*
 * tls-server-end-point channel binding data (RFC 5929): the hash of the
 * server's certificate (ours on the accepting side, the peer's otherwise).
 * Returns its length, 0 if unavailable.
 */
size_t tls_conn_cbind(struct tls_conn *t, uint8_t out[TLS_CBIND_MAX]);
/* "TLSv1.3" etc., and the cipher name, for logs. */
const char *tls_conn_version(const struct tls_conn *t);
const char *tls_conn_cipher(const struct tls_conn *t);

#endif
