/*
 * server.h - server connections: connect and log in to a node, relay its
 * responses to the linked client, reset, close.
 */
#ifndef PGCHORUS_SERVER_H
#define PGCHORUS_SERVER_H

#include "pgchorus/core-t.h"

/* Open a new connection for pool P (counted in the pool at once). */
struct server *server_connect(struct pool *p);
/* Close S; a linked client is NOT closed (callers decide).  Safe to call twice. */
void server_close(struct server *s, const char *reason);
/* Link S to C: S becomes SV_ACTIVE and C's tracked parameters are applied. */
void server_link(struct server *s, struct client *c);
/* Unlink S from its client (pool bookkeeping is the caller's). */
void server_unlink(struct server *s);
/* Does C expect a tracked parameter value S does not have? */
bool server_params_differ(const struct server *s, const struct client *c);
/* S goes into its pool's idle list (the pool's bookkeeping is the caller's). */
void server_set_idle(struct server *s);
/* Start the reset query (session pooling) and go idle when done. */
void server_reset(struct server *s);
/* True if S has answered everything and is outside a transaction. */
bool server_is_clean(const struct server *s);
void server_pause(struct server *s);
void server_resume(struct server *s);
/* Process buffered responses (after a client's output drained, or a state change). */
void server_process(struct server *s);
/* SSLRequest answered / TLS handshake data arrived (state SV_CONNECTING). */
void server_tls_progress(struct server *s);
/* auth.c: answer the node's authentication request CODE (rest of the message
 * in R).  0 to go on; -1 with REASON when pgchorus cannot log in. */
struct msg_reader;
int server_auth_request(struct server *s, uint32_t code, struct msg_reader *r, char *reason, size_t rlen);
void server_auth_cleanup(struct server *s);
/* Record a ParameterStatus value. */
void server_set_param(struct server *s, const char *name, const char *value);

/* Tracked parameter names, index enum tracked_param; -1 if NAME is not tracked. */
int tracked_param_index(const char *name);
const char *tracked_param_name(int i);

#endif
