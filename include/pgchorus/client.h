/*
 * client.h - client connections: the session state machine (startup,
 * login, idle, waiting, active) and the relay of client messages.
 */
#ifndef PGCHORUS_CLIENT_H
#define PGCHORUS_CLIENT_H

#include "pgchorus/codec.h"
#include "pgchorus/core-t.h"

struct worker;

/* Accept a connection from LISTENER (a listening stream of worker W). */
void client_accept(struct worker *w, uv_stream_t *listener, bool is_tcp);
/* Send a FATAL error with SQLSTATE (unless NULL) and close C. */
void client_close(struct client *c, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Send MSG (a whole ErrorResponse from a node) and close C. */
void client_close_with_msg(struct client *c, const uint8_t *msg, uint32_t len);
/* The pool linked a server to C, which was waiting. */
void client_server_ready(struct client *c, struct server *s);
/* The linked server finished a transaction (ReadyForQuery, nothing outstanding). */
void client_txn_done(struct client *c);
/* Stats: add what was sent to C since the last call to its database's row. */
void client_stat_bytes(struct client *c);
/* The linked server answered the login-time parameter setup. */
void client_login_done(struct client *c);
/* Send the client its parameters PL, its BackendKeyData and ReadyForQuery. */
/* The client's value of tracked parameter TI becomes V (NULL: unset). */
void client_set_param(struct client *c, int ti, const char *v);
/* A shared copy of S for C (intern.h); NULL when out of memory.  S may be freed afterwards. */
const char *client_intern(struct client *c, const char *s);
void client_login_finish(struct client *c, const struct param_list *pl);
/* The linked server is gone. */
void client_server_lost(struct client *c, const char *reason);
void client_pause(struct client *c);
void client_resume(struct client *c);
/* Queue bytes in c->scratch to the client now.  false if the client closed. */
bool client_flush_scratch(struct client *c);
/* Change state through the one transition function (refuses impossible ones). */
void client_set_state(struct client *c, enum client_state st);

/* login.c: handle the startup packet (or authentication messages) in c->in. */
void client_startup(struct client *c);
/* login.c: authentication succeeded: AuthenticationOk, parameters, ready. */
void client_auth_done(struct client *c);
/* login.c: replication mode, the login node cannot be reached (and is no longer
 * up): log in through the new primary. */
void client_login_retry(struct client *c);
/* auth.c: choose the method and start the exchange (or call client_auth_done). */
void client_auth_begin(struct client *c);
/* auth.c: a message of TYPE arrived in state CL_AUTH. */
void client_auth_message(struct client *c, uint8_t type, const uint8_t *body, uint32_t len);
void client_auth_cleanup(struct client *c);
/* authquery.c: fetch C's secret with auth_query; DONE runs later with ok=false
 * and ERROR on failure, or ok=true and SECRET (NULL: no such user).  false if
 * no lookup could be started (DONE will not run). */
typedef void (*auth_lookup_cb)(struct client *c, bool ok, const char *secret, const char *error);
bool client_auth_lookup(struct client *c, auth_lookup_cb done);
/* The client is going away: the lookup will not call back. */
void client_auth_lookup_cancel(struct client *c);
/* relay.c: process buffered client messages. */
void client_process(struct client *c);
/* relay.c: is a client message framed as F (codec_frame) with TYPE and LEN
 * acceptable after login?  Terminate is not (the caller closes). */
bool client_frame_ok(enum codec_frame f, uint8_t type, uint32_t len);
/* Close C for a message client_frame_ok() refused (DECLARED: its length field). */
void client_close_bad_frame(struct client *c, enum codec_frame f, uint8_t type, uint32_t declared);
/* relay.c: synthesized responses that reached the head of the server's queue. */
bool relay_emit_synth(struct client *c, struct server *s);

/* Graceful shutdown: close C now if idle, else at its transaction end. */
void client_shutdown(struct client *c);
void client_free_statements(struct client *c);
/* Periodic: authentication, idle and idle-in-transaction timeouts. */
void clients_janitor(struct worker *w);

#endif
