/*
 * restrack.h - response tracking for one server connection.
 *
 * Every client message that makes the server answer (Parse, Bind, Describe,
 * Execute, Close, Sync, Query, FunctionCall) is pushed as an entry when it
 * is sent; the server answers in order, so each response message belongs to
 * the entry at the head.  This tells pgchorus
 *   - when a server connection has answered everything (it can be released),
 *   - which responses to swallow (answers to messages pgchorus injected:
 *     re-prepares, SET of tracked parameters, reset queries), and
 *   - where to insert responses it synthesizes itself (ParseComplete for a
 *     statement already prepared on this server, CloseComplete for a client
 *     statement that is only forgotten).
 * After an ErrorResponse the server skips every message up to the next
 * Sync; so does the tracker.  In COPY FROM STDIN mode the server ignores
 * Sync messages (libpq sends one after Execute and another after CopyDone),
 * so those sent before CopyDone are not counted.
 */
#ifndef PGCHORUS_RESTRACK_H
#define PGCHORUS_RESTRACK_H

#include <stdbool.h>
#include <stdint.h>

enum rt_kind {
	RT_PARSE = 1,
	RT_BIND,
	RT_DESCRIBE,
	RT_EXECUTE,
	RT_CLOSE,
	RT_SYNC,
	RT_QUERY,
	RT_FUNCTION,
	RT_SYNTH_PARSE,   /* emit ParseComplete to the client when it reaches the head */
	RT_SYNTH_CLOSE,   /* emit CloseComplete */
	RT_COPY_MARK,     /* the client ended a COPY FROM STDIN whose CopyInResponse is still to come */
};

#define RT_SWALLOW 0x80   /* flag: the responses belong to pgchorus, not the client */
#define RT_NAMED 0x40     /* flag: a named Parse whose ParseComplete confirms a statement */
#define RT_COMPARE 0x40   /* flag, replication mode (no RT_NAMED there): outcome compared between nodes */
#define RT_INJECTED 0x20  /* flag: replication mode, a message pgchorus added (BEGIN, 2PC) */
#define RT_SHIP 0x10      /* flag: replication mode, row shipping: answers carry an extra column
                           * (rows) or belong to a capture query (rship.c) */
#define RT_KIND(e) ((e) & 0x0f)

struct restrack {
	uint8_t *ring;
	uint32_t cap;        /* power of two */
	uint32_t head;
	uint32_t count;
	bool skipping;       /* error seen, no Sync queued yet: entries until Sync are dropped */
	bool copy_in;        /* server is in COPY FROM STDIN mode: it ignores Sync */
	uint32_t syncs_queued; /* entries answered by ReadyForQuery, ever queued */
	uint32_t syncs_done;   /* ReadyForQuery messages received */
};

enum rt_verdict {
	RT_FORWARD,          /* send the message to the client */
	RT_DROP,             /* swallow it */
};

/* The entry a client message of TYPE needs; 0 = the server does not answer it. */
static inline uint8_t rt_entry_for(uint8_t type)
{
	switch (type) {
	case 'Q': return RT_QUERY;
	case 'P': return RT_PARSE;
	case 'B': return RT_BIND;
	case 'D': return RT_DESCRIBE;
	case 'E': return RT_EXECUTE;
	case 'C': return RT_CLOSE;
	case 'S': return RT_SYNC;
	case 'F': return RT_FUNCTION;
	default: return 0;
	}
}

void rt_init(struct restrack *rt);
void rt_free(struct restrack *rt);
void rt_reset(struct restrack *rt);
/* Queue an entry (kind | flags).  false on OOM. */
bool rt_push(struct restrack *rt, uint8_t entry) __attribute__((warn_unused_result));
static inline bool rt_idle(const struct restrack *rt) { return rt->count == 0; }

/*
 * Account for one response message of TYPE.  Returns whether to forward it;
 * *entry is the entry it belonged to (0 if none).
 * ErrorResponse is always forwarded (the client must learn why its next
 * message has no answer), even for swallowed entries.
 */
enum rt_verdict rt_response(struct restrack *rt, uint8_t type, uint8_t *entry);

/*
 * The client sent CopyDone or CopyFail: Sync counts again.  In replication
 * mode a node may not have answered the COPY yet (the client went on after
 * another node's CopyInResponse): a mark in the queue then tells where its
 * COPY will end.  false on OOM.
 */
bool rt_copy_in_end(struct restrack *rt) __attribute__((warn_unused_result));

/*
 * If the head entry is a synthesized one, pop it and return its kind
 * (RT_SYNTH_PARSE / RT_SYNTH_CLOSE); else 0.  Call after rt_push and after
 * rt_response until it returns 0.
 */
uint8_t rt_pop_synth(struct restrack *rt);

#endif
