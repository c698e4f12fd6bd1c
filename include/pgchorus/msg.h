/*
 * msg.h - construction of the protocol messages pgchorus itself sends, and
 * extraction of fields from ErrorResponse/NoticeResponse.
 * Every function appends one complete message to B and returns false if
 * memory ran out (B is then unchanged).
 */
#ifndef PGCHORUS_MSG_H
#define PGCHORUS_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include "pgchorus/buf.h"

/* SQLSTATE codes used by pgchorus itself. */
#define SQLSTATE_PROTOCOL_VIOLATION "08P01"
#define SQLSTATE_CONNECTION_FAILURE "08006"
#define SQLSTATE_TOO_MANY_CONNECTIONS "53300"
#define SQLSTATE_OUT_OF_MEMORY "53200"
#define SQLSTATE_ADMIN_SHUTDOWN "57P01"
#define SQLSTATE_INVALID_AUTH "28000"
#define SQLSTATE_INVALID_PASSWORD "28P01"
#define SQLSTATE_FEATURE_NOT_SUPPORTED "0A000"
#define SQLSTATE_INTERNAL "XX000"
#define SQLSTATE_PROGRAM_LIMIT "54000"
#define SQLSTATE_QUERY_CANCELED "57014"
#define SQLSTATE_IDLE_SESSION_TIMEOUT "57P05"
#define SQLSTATE_IDLE_IN_TXN_TIMEOUT "25P03"
#define SQLSTATE_READ_ONLY_TXN "25006"

bool msg_error(struct buf *b, const char *severity, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), warn_unused_result));
bool msg_auth_ok(struct buf *b) __attribute__((warn_unused_result));
bool msg_param_status(struct buf *b, const char *name, const char *value) __attribute__((warn_unused_result));
bool msg_backend_key(struct buf *b, uint32_t pid, uint32_t key) __attribute__((warn_unused_result));
bool msg_ready(struct buf *b, char status) __attribute__((warn_unused_result));
/* An empty message of TYPE (ParseComplete '1', CloseComplete '3', ...). */
bool msg_empty(struct buf *b, uint8_t type) __attribute__((warn_unused_result));
bool msg_query(struct buf *b, const char *sql) __attribute__((warn_unused_result));
/* CommandComplete with TAG ("BEGIN"). */
bool msg_command_complete(struct buf *b, const char *tag) __attribute__((warn_unused_result));
/* StartupMessage v3 with user and database (and NULL-terminated extra name/value pairs). */
bool msg_startup(struct buf *b, const char *user, const char *database, const char *const *extra)
	__attribute__((warn_unused_result));
bool msg_cancel_request(struct buf *b, uint32_t pid, uint32_t key) __attribute__((warn_unused_result));
bool msg_ssl_request(struct buf *b) __attribute__((warn_unused_result));
/* NegotiateProtocolVersion: newest minor version supported and the unrecognized options. */
bool msg_negotiate_version(struct buf *b, uint32_t minor, const char *const *options, int n_options)
	__attribute__((warn_unused_result));

/*
 * Look up field CODE (e.g. 'C' for SQLSTATE, 'M' for message) in the body of
 * an ErrorResponse or NoticeResponse.  Returns NULL if absent or malformed.
 */
const char *msg_error_field(const uint8_t *body, uint32_t len, char code);

#endif
