/*
 * tls.c - OpenSSL with memory BIOs (see tls.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "pgchorus/config.h"
#include "pgchorus/tls.h"

struct tls_ctx {
	atomic_int refcnt;
	SSL_CTX *ssl_ctx;
	bool server;
	bool verify_host;          /* client side: verify-full */
	uint8_t cbind[TLS_CBIND_MAX];
	size_t cbind_len;          /* server side: hash of our certificate */
};

static void tls_errstr(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[200];

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		snprintf(buf, sizeof(buf), "unknown error");
	snprintf(err, errlen, "%s: %s", what, buf);
	ERR_clear_error();
}

/* RFC 5929 tls-server-end-point: the certificate's signature hash, with
 * MD5 and SHA-1 replaced by SHA-256. */
static size_t cert_end_point(X509 *cert, uint8_t out[TLS_CBIND_MAX])
{
	int md_nid, pk_nid;
	const EVP_MD *md;
	unsigned int len = 0;

	if (!cert || !OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, &pk_nid))
		return 0;
	if (md_nid == NID_md5 || md_nid == NID_sha1)
		md_nid = NID_sha256;
	md = EVP_get_digestbynid(md_nid);
	if (!md || EVP_MD_get_size(md) > TLS_CBIND_MAX || !X509_digest(cert, md, out, &len))
		return 0;
	return len;
}

/* An SSL_CTX with what both sides share: minimum protocol, no renegotiation
 * or compression, buffers released while idle. */
static SSL_CTX *ssl_ctx_new(const SSL_METHOD *method, const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (!ctx) {
		tls_errstr(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, cfg->tls_min_protocol ? cfg->tls_min_protocol : TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

struct tls_ctx *tls_ctx_new_server(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_ctx *c;
	SSL_CTX *ctx;

	err[0] = 0;
	if (!cfg->tls_cert_file[0] || !cfg->tls_key_file[0] || cfg->client_tls == CLIENT_TLS_DISABLE)
		return NULL;
	ctx = ssl_ctx_new(TLS_server_method(), cfg, err, errlen);
	if (!ctx)
		return NULL;
	if (cfg->tls_ciphers[0] && SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
		tls_errstr(err, errlen, "tls_ciphers");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
		tls_errstr(err, errlen, cfg->tls_cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_errstr(err, errlen, cfg->tls_key_file);
		goto fail;
	}
	if (cfg->tls_ca_file[0]) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file, NULL) != 1) {
			tls_errstr(err, errlen, cfg->tls_ca_file);
			goto fail;
		}
		/* Verify a client certificate if one is presented; do not demand one. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	atomic_init(&c->refcnt, 1);
	c->ssl_ctx = ctx;
	c->server = true;
	c->cbind_len = cert_end_point(SSL_CTX_get0_certificate(ctx), c->cbind);
	return c;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_ctx *tls_ctx_new_client(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_ctx *c;
	SSL_CTX *ctx;

	err[0] = 0;
	if (cfg->server_tls == SERVER_TLS_DISABLE)
		return NULL;
	ctx = ssl_ctx_new(TLS_client_method(), cfg, err, errlen);
	if (!ctx)
		return NULL;
	if (cfg->server_tls >= SERVER_TLS_VERIFY_CA) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->server_tls_ca_file, NULL) != 1) {
			tls_errstr(err, errlen, cfg->server_tls_ca_file);
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	if (cfg->server_tls_cert_file[0] &&
	    (SSL_CTX_use_certificate_chain_file(ctx, cfg->server_tls_cert_file) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, cfg->server_tls_key_file, SSL_FILETYPE_PEM) != 1)) {
		tls_errstr(err, errlen, cfg->server_tls_cert_file);
		goto fail;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	atomic_init(&c->refcnt, 1);
	c->ssl_ctx = ctx;
	c->verify_host = cfg->server_tls == SERVER_TLS_VERIFY_FULL;
	return c;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *c)
{
	if (c)
		atomic_fetch_add(&c->refcnt, 1);
	return c;
}

void tls_ctx_unref(struct tls_ctx *c)
{
	if (c && atomic_fetch_sub(&c->refcnt, 1) == 1) {
		SSL_CTX_free(c->ssl_ctx);
		free(c);
	}
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, bool server, const char *host)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	SSL *ssl;
	BIO *rbio, *wbio;

	if (!t)
		return NULL;
	ssl = SSL_new(ctx->ssl_ctx);
	rbio = BIO_new(BIO_s_mem());
	wbio = BIO_new(BIO_s_mem());
	if (!ssl || !rbio || !wbio) {
		SSL_free(ssl);
		BIO_free(rbio);
		BIO_free(wbio);
		free(t);
		return NULL;
	}
	BIO_set_mem_eof_return(rbio, -1); /* empty means "want more", not EOF */
	SSL_set_bio(ssl, rbio, wbio);
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		if (host && host[0] != '/') {
			X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
			bool is_ip = X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1;

			if (!is_ip)
				SSL_set_tlsext_host_name(ssl, host); /* SNI is for names only */
			if (!ctx->verify_host)
				X509_VERIFY_PARAM_set1_ip(vp, NULL, 0);
			else if (!is_ip)
				SSL_set1_host(ssl, host);
		}
	}
	t->ssl = ssl;
	t->rbio = rbio;
	t->wbio = wbio;
	t->ctx = tls_ctx_ref(ctx);
	return t;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* frees the BIOs too */
	buf_free(&t->out);
	tls_ctx_unref(t->ctx);
	free(t);
}

static int tls_fail(struct tls_conn *t, int ret, const char *what)
{
	int e = SSL_get_error(t->ssl, ret);
	unsigned long code = ERR_peek_error();
	char buf[120];

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	if (e == SSL_ERROR_ZERO_RETURN) {
		t->peer_closed = true;
		snprintf(t->err, sizeof(t->err), "TLS connection closed by peer");
		return -1;
	}
	if (code) {
		ERR_error_string_n(code, buf, sizeof(buf));
		snprintf(t->err, sizeof(t->err), "%s: %s", what, buf);
	} else {
		snprintf(t->err, sizeof(t->err), "%s failed (error %d)", what, e);
	}
	if (SSL_get_verify_result(t->ssl) != X509_V_OK)
		snprintf(t->err, sizeof(t->err), "certificate verification failed: %s",
			 X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
	ERR_clear_error();
	return -1;
}

int tls_conn_handshake(struct tls_conn *t)
{
	int r;

	if (t->handshake_done)
		return 1;
	r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		t->handshake_done = true;
		return 1;
	}
	return tls_fail(t, r, "TLS handshake") < 0 ? -1 : 0;
}

int tls_conn_read(struct tls_conn *t, size_t n, struct iobuf *plain, struct bufpool *bp)
{
	int total = 0;

	if (n && BIO_write(t->rbio, t->raw, (int)n) != (int)n) {
		snprintf(t->err, sizeof(t->err), "out of memory");
		return -1;
	}
	if (!t->handshake_done) {
		int h = tls_conn_handshake(t);

		if (h <= 0)
			return h;
	}
	for (;;) {
		size_t space = 0;
		uint8_t *p = iobuf_space(plain, bp, &space);
		int r;

		if (!p) {
			/* Full: grow by a block; what is decrypted must go somewhere. */
			if (!iobuf_ensure(plain, bp, iobuf_avail(plain) + BUFPOOL_BLOCK)) {
				snprintf(t->err, sizeof(t->err), "out of memory");
				return -1;
			}
			continue;
		}
		r = SSL_read(t->ssl, p, (int)(space > INT32_MAX ? INT32_MAX : space));
		if (r <= 0)
			return tls_fail(t, r, "TLS read") < 0 ? -1 : total;
		plain->end += (uint32_t)r;
		total += r;
	}
}

int tls_conn_write(struct tls_conn *t, const uv_buf_t *bufs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (!bufs[i].len)
			continue;
		if (SSL_write(t->ssl, bufs[i].base, (int)bufs[i].len) <= 0) {
			tls_fail(t, -1, "TLS write");
			return -1;
		}
	}
	return 0;
}

bool tls_conn_output(struct tls_conn *t, struct buf *out)
{
	char *data;
	long len = BIO_get_mem_data((BIO *)t->wbio, &data);

	if (len <= 0)
		return true;
	if (!buf_append(out, data, (size_t)len))
		return false;
	(void)BIO_reset((BIO *)t->wbio);
	return true;
}

size_t tls_conn_cbind(struct tls_conn *t, uint8_t out[TLS_CBIND_MAX])
{
	X509 *peer;
	size_t n;

	if (t->ctx->server) {
		memcpy(out, t->ctx->cbind, t->ctx->cbind_len);
		return t->ctx->cbind_len;
	}
	peer = SSL_get1_peer_certificate(t->ssl);
	n = cert_end_point(peer, out);
	X509_free(peer);
	return n;
}

const char *tls_conn_version(const struct tls_conn *t)
{
	return SSL_get_version(t->ssl);
}

const char *tls_conn_cipher(const struct tls_conn *t)
{
	return SSL_get_cipher_name((SSL *)t->ssl);
}
