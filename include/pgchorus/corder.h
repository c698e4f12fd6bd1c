/*
 * corder.h - commit order against shipped statements (doc/determinism.md).
 *
 * A statement whose rows are shipped ran on the primary first; on the
 * other nodes its rows must land after every commit it may have seen
 * there.  Every commit that reaches the primary takes a ticket
 * (corder_begin) and gives it back once every node has committed
 * (corder_end).  A shipped statement notes corder_issued() when the
 * primary has answered it and, before its rows go to the other nodes,
 * waits until corder_done_through() says every ticket up to that one is
 * back.  Waiting sessions are woken through their worker's async handle.
 *
 * Thread-safe: tickets are shared by all workers.
 */
#ifndef PGCHORUS_CORDER_H
#define PGCHORUS_CORDER_H

#include <stdbool.h>
#include <stdint.h>

/* A commit is about to be sent to the primary.  0: out of memory (no ticket, no wait). */
uint64_t corder_begin(void);
/* The commit TICKET ended on every node (or will never: failed, session gone). */
void corder_end(uint64_t ticket);
/* The newest ticket handed out. */
uint64_t corder_issued(void);
/* Every ticket up to NEED has ended. */
bool corder_done_through(uint64_t need);
/* A session of a worker waits: count it, so that corder_end() wakes workers. */
void corder_wait_add(int delta);

#endif
