/*
 * relay.c - client messages to the server.  Only the 5-byte header of most
 * messages is looked at; they are forwarded straight from the read buffer
 * (large ones in pieces as they arrive).  Messages that name prepared
 * statements are seen whole in transaction pooling (prepared.c).  Every
 * message that the server will answer is recorded in the server's
 * response tracker.
 */
#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/outv.h"
#include "pgchorus/pipeline.h"
#include "pgchorus/pool.h"
#include "pgchorus/prepared.h"
#include "pgchorus/rsess.h"
#include "pgchorus/server.h"
#include "pgchorus/worker.h"

bool relay_emit_synth(struct client *c, struct server *s)
{
	uint8_t k;

	while ((k = rt_pop_synth(&s->rt)) != 0) {
		if (!msg_empty(&c->scratch, k == RT_SYNTH_PARSE ? '1' : '3')) {
			client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return false;
		}
	}
	return client_flush_scratch(c);
}

/* PostgreSQL's limit for messages other than the ones that carry data. */
#define RELAY_SMALL_MESSAGE_LIMIT 10000

static bool relay_large_type(uint8_t type)
{
	return type == 'Q' || type == 'P' || type == 'B' || type == 'F' || type == 'd' || type == 'f';
}

static bool relay_valid_type(uint8_t type)
{
	switch (type) {
	case 'Q': case 'P': case 'B': case 'D': case 'E': case 'C': case 'S': case 'F':
	case 'H': case 'd': case 'c': case 'f':
		return true;
	default:
		return false;
	}
}

bool client_frame_ok(enum codec_frame f, uint8_t type, uint32_t len)
{
	if (f != FRAME_OK || !relay_valid_type(type))
		return false;
	/* Control messages are small; a huge one is an attack or a bug. */
	return len - 1 <= RELAY_SMALL_MESSAGE_LIMIT || relay_large_type(type);
}

void client_close_bad_frame(struct client *c, enum codec_frame f, uint8_t type, uint32_t declared)
{
	if (f == FRAME_TOO_LARGE)
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "message of %u bytes exceeds max_message_size", declared);
	else if (f != FRAME_OK)
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid message length");
	else if (type == 'X')
		client_close(c, NULL, "client sent Terminate");
	else if (relay_valid_type(type))
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid message length");
	else
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid frontend message type %d", type);
}

/* A message of LEN bytes must be seen whole: send what came before it and
 * make room for it; processing resumes when more bytes arrive. */
static int relay_wait_whole(struct client *c, struct outv *ov, uint32_t len)
{
	int r = outv_flush(ov);

	if (r < 0)
		return r;
	if (!iobuf_grow_toward(&c->in, &c->w->bp, len))
		return UV_ENOMEM;
	ov->pos = c->in.start; /* growing may have moved the unprocessed bytes */
	return 0;
}

void client_process(struct client *c)
{
	struct worker *w = c->w;
	struct server *s = c->srv;
	struct outv ov;
	int r = 0;

	if (c->rs) {
		rsess_process(c);
		return;
	}
	if (c->state == CL_PIPED || (s && s->client == c && s->n_piped)) {
		/* Its statement is queued, or others are queued behind it
		 * (pipeline.c): what it sends now waits for its ReadyForQuery. */
		client_pause(c);
		return;
	}
	if (s && s->client == c && c->in.data && c->in.start < c->in.end)
		/* the first statement on a server it was just given (a waiter), or a
		 * second one: then nobody may queue behind it */
		s->pipe_ok = pipe_may_lead(s, c);
	outv_init(&ov, &c->in, &w->bp, s ? &s->scratch : NULL, s ? &s->ps : NULL);
	while ((c->state == CL_ACTIVE || c->state == CL_IDLE) && c->in.data && ov.pos < c->in.end) {
		uint32_t avail = outv_avail(&ov);
		uint32_t len;
		uint8_t type, entry;
		enum codec_frame f;

		if (c->fwd_remaining) {
			uint32_t n = avail < c->fwd_remaining ? avail : c->fwd_remaining;

			c->fwd_remaining -= n;
			if (c->fwd_drop)
				outv_skip(&ov, n);
			else if ((r = outv_pass(&ov, n)) < 0)
				break;
			if (!c->fwd_remaining)
				c->fwd_drop = false;
			continue;
		}
		f = codec_frame(outv_cur(&ov), avail, w->cfg->max_message_size, &type, &len);
		if (f == FRAME_NEED_MORE)
			break;
		if (!client_frame_ok(f, type, len)) {
			uint32_t declared = codec_get32(outv_cur(&ov) + 1);

			r = outv_flush(&ov);
			client_close_bad_frame(c, f, type, declared);
			return;
		}
		if (!s && (type == 'c' || type == 'd' || type == 'f')) {
			/* COPY messages outside COPY: the server ignores them, so must we
			 * (taking a server for them would pin it: no answer ever comes). */
			if (avail < len) {
				c->fwd_remaining = len - avail;
				c->fwd_drop = true;
				len = avail;
			}
			outv_skip(&ov, len);
			continue;
		}
		if (!s && c->track_statements && (type == 'P' || type == 'C' || type == 'H' ||
						  (type == 'S' && c->local_batch))) {
			/* No server: answer what can be answered exactly without one, so that a
			 * client blocked in a synchronous prepare never waits for a server. */
			if (avail < len) {
				r = relay_wait_whole(c, &ov, len);
				break;
			}
			r = prep_local_message(c, &ov, type, len);
			if (r < 0)
				break;
			if (r > 0) {
				c->local_batch = type != 'S';
				if (!client_flush_scratch(c))
					return;
				continue;
			}
		}
		if (!s) {
			if ((r = outv_flush(&ov)) < 0)
				break;
			c->local_batch = false;
			if ((s = pipe_join(c)) != NULL) {
				/* queued behind another client's statement: sent now */
				client_set_state(c, CL_ACTIVE);
				if ((r = outv_retarget(&ov, &s->scratch, &s->ps)) < 0)
					break;
				continue;
			}
			client_set_state(c, CL_WAIT);
			s = pool_acquire(c->pool, c);
			if (c->state == CL_CLOSING)
				return;
			if (!s) {
				client_pause(c); /* queued: client_server_ready() resumes */
				return;
			}
			client_set_state(c, CL_ACTIVE);
			/* One autocommit statement: others may queue behind it when the pool is full. */
			s->pipe_ok = pipe_may_lead(s, c);
			if ((r = outv_retarget(&ov, &s->scratch, &s->ps)) < 0)
				break;
			continue;
		}
		entry = rt_entry_for(type);
		if (type == 'Q' || type == 'E')
			stat_inc(&stat_db_cell(&w->stats, s->pool->stat_db, s->pool->node)->queries);
		if (c->track_statements && (type == 'P' || type == 'B' || type == 'D' || type == 'C')) {
			if (avail < len) {
				r = relay_wait_whole(c, &ov, len);
				break;
			}
			r = prep_client_message(c, s, &ov, type, len);
			if (r < 0)
				break;
			if (r > 0)
				return; /* client closed */
			continue;
		}
		if (type == 'Q' && c->track_statements &&
		    prep_query_drops_statements(outv_cur(&ov) + 5, (avail < len ? avail : len) - 5))
			prep_server_forget(s);
		if ((type == 'c' || type == 'f') && !rt_copy_in_end(&s->rt)) {
			r = UV_ENOMEM;
			break;
		}
		if (entry && !rt_push(&s->rt, entry)) {
			r = UV_ENOMEM;
			break;
		}
		if (avail < len) {
			c->fwd_remaining = len - avail;
			len = avail;
		}
		if ((r = outv_pass(&ov, len)) < 0)
			break;
	}
	if (r >= 0)
		r = outv_flush(&ov);
	if (r < 0) {
		if (c->state == CL_CLOSING)
			return;
		if (r == UV_ENOMEM) {
			/* Part of C's statement may have gone out between other
			 * clients' statements: that connection cannot go on. */
			if (s && c->srv == s && (s->client != c || s->n_piped))
				pipe_server_failed(s, c, "out of memory");
			client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		} else if (s && c->srv == s) {
			pipe_server_failed(s, c, "write failed");
			client_server_lost(c, "server connection lost");
		}
		return;
	}
	if (s && c->srv == s && s->client != c) {
		client_set_state(c, CL_PIPED); /* its turn comes at the previous one's ReadyForQuery */
		return;
	}
	if (s && c->srv == s && s->pipe_ok && s->pool->n_waiting)
		pipe_pull_waiters(s); /* clients wait: queue theirs behind this statement */
	if (s && c->srv == s && pstream_busy(&s->ps))
		client_pause(c);      /* backpressure: resumed when the server drains */
	else
		client_resume(c);     /* e.g. after waiting for a server */
}
