/*
 * admin.h - the SQL admin console (doc/admin.md): a client that logs in to
 * the virtual database "pgchorus" is answered by pgchorus itself, not by a
 * node.  It authenticates like any other client; then only the users listed
 * in admin_users may stay.  Commands: SHOW NODES, DETACH NODE n, ... (the
 * tables in src/admin/cmd_*.c).
 *
 * Threads: an admin session belongs to its client's worker, like the
 * client.  Commands call the any-thread functions of ha.h and node.h.
 */
#ifndef PGCHORUS_ADMIN_H
#define PGCHORUS_ADMIN_H

#include <stdbool.h>

#define ADMIN_DATABASE "pgchorus"

struct client;
struct admin_session;

/* Does a client that asks for DATABASE want the admin console? */
bool admin_is_console(const char *database);
/*
 * login.c, once C has authenticated (its cancel key assigned): a user not
 * in admin_users is closed with FATAL 42501.  Otherwise C becomes an admin
 * session (c->admin, state CL_IDLE): AuthenticationOk, ParameterStatus,
 * BackendKeyData and ReadyForQuery are sent, and what C already sent is
 * processed.  C may be closed when this returns.
 */
void admin_login(struct client *c);
/* Answer the complete messages buffered in c->in (C is an admin session). */
void admin_process(struct client *c);
/* C's output was written: read (and answer) again. */
void admin_drained(struct client *c);
/* Free a session (the client's close callback); NULL is fine. */
void admin_session_free(struct admin_session *as);

#endif
