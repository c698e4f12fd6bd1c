/*
 * cancel.h - CancelRequest routing.  The BackendKeyData pgchorus gives a
 * client encodes the worker that owns it; a cancel request arriving on any
 * worker is posted to that worker, which sends a CancelRequest to the node
 * running the client's query (with the node's own backend key).
 */
#ifndef PGCHORUS_CANCEL_H
#define PGCHORUS_CANCEL_H

#include <stdint.h>

struct worker;

#define CANCEL_PID_SHIFT 22

static inline uint32_t cancel_make_pid(int worker_id, uint32_t seq)
{
	return ((uint32_t)(worker_id + 1) << CANCEL_PID_SHIFT) | (seq & ((1u << CANCEL_PID_SHIFT) - 1));
}

/* Called on the worker that received the request. */
void cancel_forward(struct worker *w, uint32_t pid, uint32_t key);
/* Called on the owning worker (from its inbox). */
void cancel_execute(struct worker *w, uint32_t pid, uint32_t key);
/* Send a CancelRequest for backend BE_PID of node NODE_ID (asynchronous). */
void cancel_node_backend(struct worker *w, int node_id, uint32_t be_pid, uint32_t be_key);

#endif
