/*
 * stream.c - output side of client and server streams (see stream.h).
 */
#include <stdlib.h>
#include <string.h>

#include "pgchorus/stream.h"

void pstream_setup(struct pstream *s, void *owner, pstream_cb on_drain, pstream_err_cb on_error)
{
	memset(s, 0, sizeof(*s));
	list_init(&s->cork_link);
	s->owner = owner;
	s->on_drain = on_drain;
	s->on_error = on_error;
}

void pstream_opened(struct pstream *s, bool is_tcp)
{
	s->u.handle.data = s;
	s->is_tcp = is_tcp;
	s->open = true;
}

static int pstream_start_write(struct pstream *s);

static void pstream_write_cb(uv_write_t *req, int status)
{
	struct pstream *s = req->data;

	free(req);
	s->wreq = NULL;
	s->writing = false;
	buf_reset(&s->inflight);
	if (status < 0) {
		if (status != UV_ECANCELED && s->open && s->on_error)
			s->on_error(s, status);
		return;
	}
	if (s->next.len) {
		struct buf tmp = s->inflight;

		s->inflight = s->next;
		s->next = tmp;
		status = pstream_start_write(s);
		if (status < 0 && s->on_error)
			s->on_error(s, status);
		return;
	}
	/* Drained: do not keep big buffers around for idle connections. */
	buf_free(&s->inflight);
	buf_free(&s->next);
	if (s->on_drain)
		s->on_drain(s);
}

static int pstream_start_write(struct pstream *s)
{
	uv_buf_t b = uv_buf_init((char *)s->inflight.data, (unsigned int)s->inflight.len);
	int r;

	/* Only when the kernel did not take everything at once: not per message. */
	s->wreq = malloc(sizeof(*s->wreq));
	if (!s->wreq)
		return UV_ENOMEM;
	s->wreq->data = s;
	r = uv_write(s->wreq, &s->u.stream, &b, 1, pstream_write_cb);
	if (r == 0) {
		s->writing = true;
	} else {
		free(s->wreq);
		s->wreq = NULL;
	}
	return r;
}

/* A corked stream writes anyway once it holds this much. */
#define PSTREAM_CORK_MAX 65536

static int pstream_send_raw(struct pstream *s, const uv_buf_t *bufs, unsigned int n)
{
	size_t total = 0, done;
	int r;

	if (!s->open)
		return UV_EPIPE;
	if (s->writing || s->corked) {
		for (unsigned int i = 0; i < n; i++)
			if (!buf_append(&s->next, bufs[i].base, bufs[i].len))
				return UV_ENOMEM;
		return s->corked && s->next.len >= PSTREAM_CORK_MAX ? pstream_uncork(s) : 0;
	}
	for (unsigned int i = 0; i < n; i++)
		total += bufs[i].len;
	if (!total)
		return 0;
	r = uv_try_write(&s->u.stream, bufs, n);
	if (r < 0 && r != UV_EAGAIN)
		return r;
	done = r < 0 ? 0 : (size_t)r;
	s->bytes_out += done;
	if (done == total)
		return 0;
	/* Queue the rest. */
	for (unsigned int i = 0; i < n; i++) {
		if (done >= bufs[i].len) {
			done -= bufs[i].len;
			continue;
		}
		if (!buf_append(&s->inflight, bufs[i].base + done, bufs[i].len - done))
			return UV_ENOMEM;
		done = 0;
	}
	s->bytes_out += s->inflight.len;
	return pstream_start_write(s);
}

void pstream_cork(struct pstream *s, struct list *corks)
{
	if (s->corked || s->writing || !s->open)
		return;
	s->corked = true;
	list_append(corks, &s->cork_link);
}

int pstream_uncork(struct pstream *s)
{
	struct buf held;
	int r;

	if (!s->corked)
		return 0;
	s->corked = false;
	list_del(&s->cork_link);
	if (!s->next.len)
		return 0;
	/* Not writing while corked: the held bytes go out as one send. */
	held = s->next;
	buf_init(&s->next);
	r = pstream_send_raw(s, &(uv_buf_t){ .base = (char *)held.data, .len = held.len }, 1);
	/* send_raw queues a rest in inflight, never in next: keep the memory. */
	buf_reset(&held);
	s->next = held;
	return r;
}

void pstream_uncork_all(struct list *corks)
{
	/* pstream_uncork takes each off the list before its write, so an error
	 * handler that closes other streams of the list is harmless. */
	while (!list_empty(corks)) {
		struct pstream *s = list_entry(corks->next, struct pstream, cork_link);
		int r = pstream_uncork(s);

		if (r < 0 && s->on_error)
			s->on_error(s, r);
	}
}

int pstream_flush_tls(struct pstream *s)
{
	uv_buf_t b;
	int r;

	if (!s->tls)
		return 0;
	if (!tls_conn_output(s->tls, &s->tls->out))
		return UV_ENOMEM;
	if (!s->tls->out.len)
		return 0;
	b = uv_buf_init((char *)s->tls->out.data, (unsigned int)s->tls->out.len);
	r = pstream_send_raw(s, &b, 1);
	buf_reset(&s->tls->out);
	return r;
}

int pstream_send(struct pstream *s, const uv_buf_t *bufs, unsigned int n)
{
	if (!s->tls)
		return pstream_send_raw(s, bufs, n);
	if (!s->open)
		return UV_EPIPE;
	if (tls_conn_write(s->tls, bufs, n) < 0)
		return UV_EPROTO;
	return pstream_flush_tls(s);
}

void pstream_alloc(struct pstream *s, struct iobuf *in, struct bufpool *bp, uv_buf_t *buf)
{
	size_t len = 0;
	uint8_t *p;

	if (s->tls) {
		*buf = uv_buf_init((char *)s->tls->raw, TLS_RAW_BUF);
		return;
	}
	p = iobuf_space(in, bp, &len);
	*buf = uv_buf_init((char *)p, (unsigned int)(p ? len : 0));
}

int pstream_input(struct pstream *s, ssize_t nread, struct iobuf *in, struct bufpool *bp)
{
	int r;

	if (!s->tls) {
		in->end += (uint32_t)nread;
		return (int)nread;
	}
	r = tls_conn_read(s->tls, (size_t)nread, in, bp);
	if (pstream_flush_tls(s) < 0 || r < 0)
		return s->tls->peer_closed ? UV_EOF : UV_EPROTO;
	return r;
}

int pstream_start_tls(struct pstream *s, struct tls_ctx *ctx, bool server, const char *host)
{
	s->tls = tls_conn_new(ctx, server, host);
	return s->tls ? 0 : UV_ENOMEM;
}

void pstream_close(struct pstream *s, uv_close_cb close_cb)
{
	if (!s->open)
		return;
	s->open = false;
	s->corked = false;
	list_del(&s->cork_link);
	uv_close(&s->u.handle, close_cb);
}

void pstream_cleanup(struct pstream *s)
{
	buf_free(&s->inflight);
	buf_free(&s->next);
	tls_conn_free(s->tls);
	s->tls = NULL;
}
