/*
 * cancel.c - CancelRequest routing (see cancel.h).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "pgchorus/cancel.h"
#include "pgchorus/log.h"
#include "pgchorus/rsess.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/worker.h"

/* A short-lived connection that delivers one CancelRequest to a node. */
struct cancel_conn {
	struct pstream ps;
	struct worker *w;
	uv_connect_t creq;
	struct buf msg;
};

void cancel_forward(struct worker *w, uint32_t pid, uint32_t key)
{
	int owner = (int)(pid >> CANCEL_PID_SHIFT) - 1;
	struct inbox_msg *m;

	if (owner < 0 || owner >= pgc_runtime.n_workers)
		return; /* not one of ours: ignore silently, like PostgreSQL */
	if (owner == w->id) {
		cancel_execute(w, pid, key);
		return;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return;
	m->kind = INBOX_CANCEL;
	m->pid = pid;
	m->key = key;
	worker_post(&pgc_runtime.workers[owner], m);
}

static void cancel_close_cb(uv_handle_t *h)
{
	struct cancel_conn *cc = pstream_of(h)->owner;

	cc->w->open_handles--;
	buf_free(&cc->msg);
	pstream_cleanup(&cc->ps);
	free(cc);
}

static void cancel_drained(struct pstream *ps)
{
	pstream_close(ps, cancel_close_cb);
}

static void cancel_write_error(struct pstream *ps, int status)
{
	(void)status;
	pstream_close(ps, cancel_close_cb);
}

static void cancel_connect_cb(uv_connect_t *req, int status)
{
	struct cancel_conn *cc = req->data;
	uv_buf_t b;

	if (status < 0) {
		log_warning("cancel: could not connect to node: %s", uv_strerror(status));
		pstream_close(&cc->ps, cancel_close_cb);
		return;
	}
	b = uv_buf_init((char *)cc->msg.data, (unsigned int)cc->msg.len);
	if (pstream_send(&cc->ps, &b, 1) < 0 || !pstream_busy(&cc->ps))
		pstream_close(&cc->ps, cancel_close_cb); /* sent (or failed): done */
}

void cancel_node_backend(struct worker *w, int node_id, uint32_t be_pid, uint32_t be_key)
{
	struct node *n = node_get(node_id);
	struct cancel_conn *cc = calloc(1, sizeof(*cc));
	int r;

	if (!cc || !n) {
		free(cc);
		return;
	}
	cc->w = w;
	buf_init(&cc->msg);
	if (!msg_cancel_request(&cc->msg, be_pid, be_key)) {
		free(cc);
		return;
	}
	pstream_setup(&cc->ps, cc, cancel_drained, cancel_write_error);
	cc->creq.data = cc;
	w->open_handles++;
	if (n->is_unix) {
		uv_pipe_init(&w->loop, &cc->ps.u.pipe, 0);
		pstream_opened(&cc->ps, false);
		uv_pipe_connect(&cc->creq, &cc->ps.u.pipe, n->sock_path, cancel_connect_cb);
		return;
	}
	uv_tcp_init(&w->loop, &cc->ps.u.tcp);
	pstream_opened(&cc->ps, true);
	r = uv_tcp_connect(&cc->creq, &cc->ps.u.tcp, (const struct sockaddr *)&n->addr, cancel_connect_cb);
	if (r < 0)
		pstream_close(&cc->ps, cancel_close_cb);
}

void cancel_execute(struct worker *w, uint32_t pid, uint32_t key)
{
	uintptr_t v;
	struct client *c;
	struct server *s;

	if (!u64map_get(&w->cancel_keys, pid, &v))
		return;
	c = (struct client *)v;
	if (CRYPTO_memcmp(&c->cancel_key, &key, sizeof(key)) != 0) {
		log_warning("C-%p: cancel request with a wrong key ignored", (void *)c);
		return;
	}
	if (c->rs) {
		rsess_cancel(c);
		return;
	}
	s = c->srv;
	if (c->state == CL_PIPED) {
		c->cancel_pending = true; /* queued behind another client's statement (pipeline.c) */
		return;
	}
	if (!s || s->state != SV_ACTIVE || !s->be_pid)
		return; /* nothing running */
	log_info("C-%p %s/%s: forwarding cancel request to node %d backend %u", (void *)c, c->database,
		 c->user, s->pool->node, s->be_pid);
	cancel_node_backend(w, s->pool->node, s->be_pid, s->be_key);
}
