/*
 * stream.h - a libuv stream (TCP or unix socket) with an output queue.
 *
 * pstream_send() tries to write synchronously (writev through
 * uv_try_write).  Whatever the kernel does not take is copied into the
 * stream's own queue and written asynchronously, so the caller's buffers
 * are free again when pstream_send returns.  While a stream is busy its
 * producers should stop reading (backpressure); on_drain tells them when
 * to resume.
 *
 * A corked stream holds its output in the queue until pstream_uncork, so
 * that what several producers send in one turn of the loop (clients'
 * statements queued on one server connection) goes out in one write.  The
 * owner of the cork list uncorks it before its loop polls again.
 */
#ifndef PGCHORUS_STREAM_H
#define PGCHORUS_STREAM_H

#include <stdbool.h>
#include <uv.h>

#include "pgchorus/buf.h"
#include "pgchorus/list.h"
#include "pgchorus/tls.h"

struct pstream;
typedef void (*pstream_cb)(struct pstream *s);
typedef void (*pstream_err_cb)(struct pstream *s, int status);

struct pstream {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} u;
	bool is_tcp;
	bool writing;          /* a uv_write is in flight */
	bool open;             /* handle initialized and not closing */
	bool corked;           /* output held in next until pstream_uncork */
	struct list cork_link; /* on the owner's cork list while corked */
	struct buf inflight;   /* bytes of the in-flight uv_write */
	struct buf next;       /* bytes queued behind it */
	uv_write_t *wreq;      /* the in-flight uv_write (allocated for it: most writes are uv_try_write) */
	pstream_cb on_drain;   /* all queued output written */
	pstream_err_cb on_error; /* asynchronous write failed */
	void *owner;
	uint64_t bytes_out;
	struct tls_conn *tls;  /* non-NULL once TLS is on: everything passes through it */
};

/* Prepare S (not yet a handle: the caller calls uv_tcp_init/uv_pipe_init on s->u,
 * then pstream_opened). */
void pstream_setup(struct pstream *s, void *owner, pstream_cb on_drain, pstream_err_cb on_error);
/* The handle in s->u has been initialized. */
void pstream_opened(struct pstream *s, bool is_tcp);
/* The pstream that owns HANDLE (any handle initialized through pstream_opened). */
static inline struct pstream *pstream_of(const void *handle)
{
	return ((const uv_handle_t *)handle)->data;
}
/* Returns 0, or a negative libuv error (the stream is then unusable). */
int pstream_send(struct pstream *s, const uv_buf_t *bufs, unsigned int n) __attribute__((warn_unused_result));
static inline bool pstream_busy(const struct pstream *s) { return s->writing; }
/* Hold S's output until pstream_uncork (see above).  S must not be busy;
 * it goes on CORKS, which its owner uncorks before polling. */
void pstream_cork(struct pstream *s, struct list *corks);
/* Write what S held.  0, or a negative libuv error (the stream is then
 * unusable). */
int pstream_uncork(struct pstream *s) __attribute__((warn_unused_result));
/* Uncork every stream on CORKS; a failed write goes to its on_error. */
void pstream_uncork_all(struct list *corks);
/* Read side: the buffer libuv should read into (the TLS record buffer, or
 * free space in IN). */
void pstream_alloc(struct pstream *s, struct iobuf *in, struct bufpool *bp, uv_buf_t *buf);
/*
 * NREAD bytes arrived in the buffer pstream_alloc gave.  Makes them
 * plaintext in IN.  Returns the plaintext bytes added (0: nothing yet, e.g.
 * during a TLS handshake), or a negative libuv error.
 */
int pstream_input(struct pstream *s, ssize_t nread, struct iobuf *in, struct bufpool *bp)
	__attribute__((warn_unused_result));
/* Switch S to TLS (SERVER: the accepting side).  0 or a negative error. */
int pstream_start_tls(struct pstream *s, struct tls_ctx *ctx, bool server, const char *host)
	__attribute__((warn_unused_result));
/* Send whatever TLS has produced (handshake records).  0 or negative. */
int pstream_flush_tls(struct pstream *s) __attribute__((warn_unused_result));
/* Close the handle; CLOSE_CB runs when libuv is done with it. */
void pstream_close(struct pstream *s, uv_close_cb close_cb);
/* Free the queue buffers (call from the close callback). */
void pstream_cleanup(struct pstream *s);

#endif
