/*
 * pipeline.h - several clients' autocommit statements queued on one server
 * connection (transaction pooling, pipeline_depth > 1).
 *
 * When every server of a pool is busy and the pool is at pool_size, a
 * client whose pending messages are exactly one statement that runs in its
 * own implicit transaction (a simple Query, or Parse/Bind/Describe/Execute
 * ending with its Sync, of SELECT, VALUES, TABLE, WITH, INSERT, UPDATE or
 * DELETE) is sent straight behind a busy server's current statement of the
 * same kind instead of waiting for a server to come back.  PostgreSQL
 * answers in order, one ReadyForQuery per unit, so the answers are handed
 * out in order: at the current client's ReadyForQuery the next queued
 * client takes the server.  The node then finds the next statement already
 * in its socket: fewer wake-ups and system calls on both sides.
 *
 * The price is head-of-line blocking: a queued statement waits for the
 * ones before it on that server (at most pipeline_depth - 1 of them), not
 * for the first server of the pool to come back.  doc/configuration.md.
 */
#ifndef PGCHORUS_PIPELINE_H
#define PGCHORUS_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "pgchorus/core-t.h"

/* Is SQL (LEN bytes) one statement that may be queued: see above. */
bool pipe_sql_safe(const char *sql, size_t len);
/* Are C's unprocessed input bytes exactly one such unit, whole? */
bool pipe_unit_safe(struct client *c);
/* C, current on S, sends its first statement there: may others queue behind
 * it?  Not behind a SET of C's parameters that server_link sent first (the
 * queued statements would run with them), nor inside a transaction. */
bool pipe_may_lead(const struct server *s, struct client *c);
/* Sending C's statement to S failed (S's socket, or out of memory with part
 * of it sent between other clients' statements): close S; its current
 * client, if not C, and the queued ones lose it.  C is the caller's. */
void pipe_server_failed(struct server *s, struct client *c, const char *why);
/* Queue C behind a busy server of its pool; the server (linked as C's
 * c->srv, C not its current client) or NULL when C must wait as usual. */
struct server *pipe_join(struct client *c);
/* Clients wait for a server of S's pool while S runs an autocommit statement:
 * queue the first waiters' statements behind it, in their order, while they
 * may be queued and S has room.  A first waiter whose statement may not be
 * queued stops it, and S takes nobody more so that it comes back to the
 * pool for that client. */
void pipe_pull_waiters(struct server *s);
/* S's current client got its ReadyForQuery and clients are queued: the
 * next one becomes current.  Returns the client that finished (NULL if it
 * had left); the caller hands it to pipe_released() once done with S. */
struct client *pipe_next(struct server *s);
/* C, released by pipe_next(), goes on with what it sent meanwhile. */
void pipe_released(struct client *c);
/* C leaves while queued on S or current with others queued behind it: its
 * answer will be dropped and S goes on for the others. */
void pipe_leave(struct client *c);
/* S is closing: the queued clients lose their server (08006). */
void pipe_server_closing(struct server *s);

#endif
