/*
 * prepared.h - protocol-level prepared statements in transaction pooling.
 *
 * A client's named statement is prepared on whatever server connection the
 * client gets, under a server-side name derived from its content
 * ("pgc_" + 64-bit hash of query text and parameter types), so that clients
 * running the same statement share it.  Bind / Describe / Close naming a
 * client statement are rewritten; a statement the server lacks is
 * re-prepared (Parse injected, its ParseComplete swallowed).  A statement
 * counts as present on a server only once its ParseComplete arrived.
 */
#ifndef PGCHORUS_PREPARED_H
#define PGCHORUS_PREPARED_H

#include "pgchorus/core-t.h"
#include "pgchorus/outv.h"

/*
 * Handle a whole client message of TYPE 'P', 'B', 'D' or 'C' (LEN bytes at
 * the outv cursor) for a client that tracks statements: forward, rewrite
 * or answer it.  Returns 0, or a negative libuv error (the message may
 * have been consumed), or 1 if the client was closed.
 */
int prep_client_message(struct client *c, struct server *s, struct outv *ov, uint8_t type, uint32_t len);
/*
 * A client without a server sent message TYPE (whole, LEN bytes at the
 * cursor).  Answer it locally if that is exact: a named Parse of a
 * statement already known to be valid in this pool, a Close of a
 * statement, a Sync or Flush after only such messages.  Returns 1 if
 * handled (answers appended to c->scratch), 0 if a server is needed, or a
 * negative libuv error.
 */
int prep_local_message(struct client *c, struct outv *ov, uint8_t type, uint32_t len);
/* Account for server response TYPE that belonged to rt entry ENTRY. */
void prep_server_response(struct server *s, uint8_t type, uint8_t entry);
/* The server forgot all its statements (DISCARD ALL, DEALLOCATE ALL). */
void prep_server_forget(struct server *s);
/* True if SQL (a simple Query) may drop prepared statements. */
bool prep_query_drops_statements(const uint8_t *sql, uint32_t len);

#endif
