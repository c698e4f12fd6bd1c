/*
 * admin-int.h - inside the admin console: the command table, parsed
 * commands and the result a command builds.  Used by console.c (the
 * protocol), command.c (parsing, results) and cmd_*.c (the commands).
 *
 * Adding a command: write its run function and add a line to a table in a
 * cmd_*.c file (a new file: add its table to admin_cmd_sets in command.c).
 */
#ifndef PGCHORUS_ADMIN_INT_H
#define PGCHORUS_ADMIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgchorus/buf.h"
#include "pgchorus/tablefmt.h"
#include "pgchorus/codec.h"
#include "pgchorus/config.h"

#define ADMIN_MAX_ARGS 4
#define ADMIN_MAX_COLS 32
/* Commands in one Query message. */
#define ADMIN_MAX_CALLS 64
/* Bytes of the names of one command (%n, %N), with their separators. */
#define ADMIN_NAMES_LEN 512

/* Column types (PostgreSQL type OIDs). */
enum admin_type {
	ADMIN_BOOL = 16,
	ADMIN_INT8 = 20,
	ADMIN_INT4 = 23,
	ADMIN_TEXT = 25,
	ADMIN_FLOAT8 = 701,
};

struct admin_col {
	const char *name;
	enum admin_type type;
};

struct admin_res;

struct admin_cmd {
	/* Words matched case-insensitively, separated by one space; "%d" is an
	 * integer argument (a node id...), passed to run in ARGS in order;
	 * "%n" a name (words joined by '.', as written: quotes kept) and "%N"
	 * one or more names separated by ',' (at most one %n/%N per pattern),
	 * passed in admin_res.names, separated by ','. */
	const char *pattern;
	const char *usage;            /* for the help: "DETACH NODE n" */
	const char *tag;              /* CommandComplete tag */
	const struct admin_col *cols; /* NULL: no rows (the tag alone) */
	int n_cols;
	void (*run)(struct admin_res *r, const int64_t *args);
};

struct admin_cmd_set {
	const struct admin_cmd *cmds;
	size_t n;
};

/* cmd_nodes.c: SHOW NODES, SHOW POOL_NODES, SHOW RECOVERY, DETACH/ATTACH/RECOVER NODE. */
extern const struct admin_cmd_set admin_cmds_nodes;
/* cmd_show.c: SHOW POOLS, SHOW CLIENTS, SHOW SERVERS, SHOW STATS, SHOW TOTALS. */
extern const struct admin_cmd_set admin_cmds_show;
/* cmd_ops.c: SHOW VERSION, SHOW CONFIG, RELOAD, SHUTDOWN [FAST], PAUSE, RESUME. */
extern const struct admin_cmd_set admin_cmds_ops;
/* cmd_compare.c: COMPARE, SHOW COMPARE, SHOW COMPARE STATUS, REPAIR TABLE. */
extern const struct admin_cmd_set admin_cmds_compare;

/* One parsed command: CMD NULL is an empty statement.  TEXT (LEN bytes, not
 * NUL-terminated) is its source, for the log; it points into the string
 * that was parsed. */
struct admin_call {
	const struct admin_cmd *cmd;
	int64_t args[ADMIN_MAX_ARGS];
	char names[ADMIN_NAMES_LEN]; /* %n / %N: "a,s.b" ("" if none) */
	const char *text;
	int len;
};

/* An error for the client: SQLSTATE, message and an optional hint. */
struct admin_err {
	char sqlstate[6];
	char message[256];
	char hint[512];
};

/*
 * Parse SQL (NUL-terminated): statements separated by ';', each matched
 * against the command table.  Fills CALLS (MAX entries) in order, empty
 * statements left out.  Returns how many (0: nothing but blanks and
 * comments), or -1 with ERR set (42601: not a command; 54000: too many).
 * Nothing is parsed twice and nothing runs: a syntax error anywhere means
 * no command of SQL runs, as in PostgreSQL.
 */
int admin_parse(const char *sql, struct admin_call *calls, int max, struct admin_err *err);

struct admin_res;
struct worker;
/* A command answered from every worker's data (admin_defer). */
typedef void admin_collect_fn(struct admin_res *part, struct worker *w);
typedef void admin_finish_fn(struct admin_res *r, const struct admin_res *parts, int n_parts);

/* The result of one command, built by its run function. */
struct admin_res {
	const struct config *cfg;     /* the worker's settings */
	const char *user;             /* who runs the command (for the log) */
	const char *addr;
	const struct admin_cmd *cmd;
	const char *names;            /* the call's names (%n, %N), "" if none; set by admin_execute */
	const int16_t *formats;       /* per column: 0 text, 1 binary; NULL: all text */
	struct buf rows;              /* DataRow messages */
	struct buf notices;           /* NoticeResponse messages */
	uint64_t n_rows;
	struct msg_builder row;       /* the DataRow being built */
	int col;                      /* its next column */
	bool failed;                  /* ERR is set: the client gets an ErrorResponse */
	struct admin_err err;
	bool can_defer;               /* the caller can wait for admin_defer (the console) */
	admin_collect_fn *collect;    /* admin_defer: the rows come later */
	admin_finish_fn *finish;
};

void admin_res_init(struct admin_res *r, const struct config *cfg, const char *user, const char *addr,
		    const struct admin_cmd *cmd, const int16_t *formats);
void admin_res_free(struct admin_res *r);
/* Run CALL (not empty) into R: logged, then CALL->cmd->run. */
void admin_execute(const struct admin_call *call, struct admin_res *r);

/* For run functions.  A row: admin_row_begin, one put per column (of the
 * column's type; put_null for any), admin_row_end. */
void admin_row_begin(struct admin_res *r);
void admin_put_null(struct admin_res *r);
void admin_put_text(struct admin_res *r, const char *s);
void admin_put_int(struct admin_res *r, int64_t v);  /* int4 or int8 */
void admin_put_float(struct admin_res *r, double v); /* float8 */
void admin_put_bool(struct admin_res *r, bool v);
/* Seconds since the epoch as UTC timestamp text (a text column); 0 -> NULL. */
void admin_put_time(struct admin_res *r, double t);
void admin_row_end(struct admin_res *r);
/* The command failed: no rows, an ErrorResponse with SQLSTATE and the message. */
void admin_error(struct admin_res *r, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * The rows of R come from every worker (a run function, instead of putting
 * rows): COLLECT runs on each worker's thread with PART, a result of the
 * same command (in the caller's formats, or in text when FINISH is set);
 * then on the caller's worker FINISH builds R from the parts (in worker
 * order); FINISH NULL: the parts' rows one after the other.  Callers that
 * cannot wait (can_defer false) get 0A000 instead.
 */
void admin_defer(struct admin_res *r, admin_collect_fn *collect, admin_finish_fn *finish);

/* cmd_show.c: gather a deferred result (console.c, ctlsock.c).  Start
 * R's collection on every worker for OWNER (a console session: CONSOLE is
 * its worker; the control socket: CONSOLE NULL, OWNER its connection);
 * NULL if memory ran out.  When every worker is done, the requester's
 * thread gets S: CONSOLE calls admin_deferred_done(OWNER, S) from its
 * inbox; for the control socket, ctlsock_snapshot_post(M) is called on
 * the last worker's thread with M (an inbox message, M->snap is S, taken
 * over), and the main thread then reads admin_snapshot_owner(S) and frees
 * S with admin_snapshot_free.  admin_snapshot_forget(S), on the
 * requester's thread, sets the owner to NULL: the answer is dropped. */
struct admin_snapshot;
struct client;
struct inbox_msg;
struct admin_snapshot *admin_snapshot_start(struct worker *console, void *owner, const struct admin_res *r);
/* The requester is gone: the answer, when it comes, is dropped. */
void admin_snapshot_forget(struct admin_snapshot *s);
void *admin_snapshot_owner(const struct admin_snapshot *s);
void admin_snapshot_free(struct admin_snapshot *s);
/* Build R (as passed to admin_snapshot_start) from the parts of S. */
void admin_snapshot_result(const struct admin_snapshot *s, struct admin_res *r);
void admin_deferred_done(struct client *c, struct admin_snapshot *s);
/* ctlsock.c, any thread: every worker's part of M->snap is in. */
void ctlsock_snapshot_post(struct inbox_msg *m);

/* A NoticeResponse sent before the result. */
void admin_notice(struct admin_res *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reading a result back (the control socket, ctlsock.c): values of a
 * DataRow in text format (struct tf_value, tablefmt.h). */
/* The DataRow of R at *POS (start at 0) into VALS (R->cmd->n_cols entries),
 * *POS moved past it.  false at the end (or on a malformed row, which a
 * run function cannot build). */
bool admin_res_next_row(const struct admin_res *r, size_t *pos, struct tf_value *vals);
/* The message of the NoticeResponse of R at *POS (start at 0), *POS moved
 * past it; the pointer is into R->notices.  NULL at the end. */
const char *admin_res_next_notice(const struct admin_res *r, size_t *pos);

/* Append an ErrorResponse or NoticeResponse (SEVERITY) to B.  false on OOM. */
bool admin_msg_error(struct buf *b, const char *severity, const struct admin_err *e)
	__attribute__((warn_unused_result));
/* Append a RowDescription of CMD's columns with FORMATS (NULL: text), or NoData. */
bool admin_msg_row_description(struct buf *b, const struct admin_cmd *cmd, const int16_t *formats)
	__attribute__((warn_unused_result));

#endif
