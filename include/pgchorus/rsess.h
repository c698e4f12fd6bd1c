/*
 * rsess.h - a client session in replication mode (doc/replication.md).
 *
 * The session holds one server connection per live node (taken from the
 * per-node pools in node order, kept until the client leaves).  Client
 * messages are read whole and grouped into *units*: a simple Query, or the
 * extended-protocol messages up to a Sync or Flush.  Each unit is
 * classified (route/classify.c) and run as one *step*:
 *
 *   RS_READ      one node (chosen by weight) runs it, its answers reach the client;
 *   RS_PARALLEL  every node of a set runs it at once, the leader's answers reach
 *                the client (session state, transaction control, COPY FROM);
 *   RS_PRIMARY   a write: the primary runs it first, its answers reach the client,
 *   RS_OTHERS    ...then every other live node, answers compared and swallowed;
 *   RS_PREPARE   two-phase commit: decision row + PREPARE TRANSACTION everywhere,
 *   RS_COMMIT    ...then COMMIT PREPARED everywhere;
 *   RS_ABORT     rollback everywhere after a failure, then the client hears why.
 *
 * The client's ReadyForQuery is always written by pgchorus at the end of a
 * step, with the transaction status of the replicated transaction.
 * rsess.c drives units and steps; rsrv.c reads the servers' answers.
 */
#ifndef PGCHORUS_RSESS_H
#define PGCHORUS_RSESS_H

#include <stdbool.h>
#include <stdint.h>

#include "pgchorus/buf.h"
#include "pgchorus/classify.h"
#include "pgchorus/core-t.h"
#include "pgchorus/hmap.h"
#include "pgchorus/list.h"
#include "pgchorus/ship.h"
#include "pgchorus/twopc.h"

/* Any transaction control flag (classify.h). */
#define STMT_F_TXN_ANY (STMT_F_TXN_BEGIN | STMT_F_TXN_COMMIT | STMT_F_TXN_ROLLBACK | STMT_F_SAVEPOINT | \
			STMT_F_RELEASE | STMT_F_ROLLBACK_TO | STMT_F_PREPARE_TXN | STMT_F_COMMIT_PREPARED | \
			STMT_F_ROLLBACK_PREPARED)

enum rs_step {
	RS_NONE,      /* between units: client input is read */
	RS_ACQUIRE,   /* waiting for a server of some node */
	RS_READ,
	RS_PARALLEL,
	RS_PRIMARY,
	RS_OTHERS,
	RS_SYNC,      /* waiting for nodes running behind the primary, before a commit */
	RS_PREPARE,
	RS_COMMIT,
	RS_ABORT,
	RS_LOOKUP,    /* reading a table's description from the primary's catalog (rship.c) */
	RS_ORDER,     /* a shipped write waits for commits it saw on the primary (corder.h) */
	RS_GATE,      /* a write transaction waits for the pause of writes to end (rfail.c) */
};

/* A unit: client messages, with the tracker entries their answers need. */
struct rs_unit {
	struct buf msgs;
	struct buf entries;    /* one rt entry kind per message that is answered */
};

/* How a write unit ended on one node: what the nodes must agree on. */
struct rs_outcome {
	uint64_t hash;         /* of its CommandComplete tags, in order */
	uint32_t n_tags;
	bool failed;
	bool shipped;          /* the others applied the primary's rows (rship.c), not the statement */
	char sqlstate[6];
};

/* Deferred writes per node (units, bytes) before they are sent anyway (rstep.c). */
#define RS_DEFER_MAX 16
#define RS_DEFER_BYTES (256u << 10)

/* Write units a node may run behind the primary (rstep.c, "lagging"). */
#define RS_LAG_MAX 32

struct rs_slot {
	struct server *srv;
	bool busy;             /* owes answers for the current step */
	bool answered;         /* sent an answer in the current step */
	bool in_txn;           /* took part in the client's open transaction (BEGIN sent) */
	bool failed;           /* sent an ErrorResponse in this step */
	bool prepared;         /* PREPARE TRANSACTION rs->gid succeeded here */
	bool fo_hold;          /* holds the failover barrier until its writes are done (rfail.c) */
	bool mismatch;         /* a lagging write unit ended otherwise than on the primary */
	bool mismatch_ship;    /* ... every such unit was shipped rows */
	char z;                /* transaction status of its last ReadyForQuery */
	char sqlstate[6];      /* of the error in this step */
	struct rs_outcome cur; /* of the compared unit running here (RT_COMPARE entries) */
	struct rs_outcome lag[RS_LAG_MAX]; /* the primary's outcomes of the units it runs behind */
	uint8_t lag_head;
	uint8_t lag_count;
	struct rs_unit pend;   /* writes deferred until the COMMIT (rs_send_ex) */
	uint8_t pend_units;    /* compared units among them (the newest of lag[]) */
	bool pend_joined;      /* ... and the node's BEGIN is among them */
};


struct rsess {
	struct client *c;
	int n_nodes;
	struct rs_slot *slot;
	enum rs_step step;
	int leader;            /* node whose answers reach the client; -1 none */
	int read_node;         /* reads of this transaction (or session) go here; -1 = choose */
	uint64_t busy_mask;    /* nodes that owe answers in the step */
	uint64_t step_mask;    /* nodes the step sent something to */
	uint64_t target_mask;  /* nodes a write goes to (primary first) */
	char txn;              /* replicated transaction status: 'I', 'T' or 'E' */
	bool wrote;            /* the open transaction wrote: commit with 2PC */
	bool iso_strict;       /* the open transaction is REPEATABLE READ or SERIALIZABLE: it reads on the
	                        * primary, where its snapshot and serializability checks are */
	bool wrap;             /* a single write outside a block: pgchorus added BEGIN */
	bool client_commit;    /* the unit is the client's COMMIT (2PC path) */
	bool commit_local;     /* ... answered by pgchorus once COMMIT PREPARED is done */
	bool unit_sync;        /* the unit ends with Sync or is a Query: it gets a ReadyForQuery */
	bool copy_in;          /* COPY FROM STDIN: client data goes to every node of the step */
	bool copy_need_sync;   /* ... and after CopyDone a Sync belongs to the step (extended) */
	bool copy_done;
	bool gid_live;         /* gid is in the resolver's in-flight set */
	int err_node;          /* in 'E': a node whose transaction failed */
	struct rs_unit unit;   /* what the client sent */
	struct rs_unit state;  /* its messages that every node must see (named Parse, Close) */
	struct buf begin_sql;  /* the client's BEGIN, replayed on nodes that join later */
	struct buf err;        /* an ErrorResponse to give the client at the end of the step */
	struct strmap stmts;   /* prepared statement name -> struct stmt_info */
	struct strmap portals; /* portal name -> struct stmt_info */
	struct stmt_info unnamed_stmt;
	struct stmt_info unnamed_portal;
	/* the unit being read or run */
	struct stmt_info cls;  /* strongest class of what it executes, flags of all */
	int u_exec;            /* statements it executes (Query, Execute, FunctionCall) */
	bool u_state;          /* it has messages every node must see */
	bool u_ready;          /* complete, waiting for servers */
	bool no_2pc;           /* the open transaction touched what PREPARE refuses (temp, LISTEN...) */
	bool send_err;         /* at the end of RS_ABORT, give the client rs->err */
	bool abort_in_block;   /* RS_ABORT leaves the client's transaction failed ('E') */
	bool compare;          /* compare the nodes' outcomes at the end of the step */
	bool in_process;       /* rsess_process() is on the stack */
	struct buf u_sql;      /* text of the Query or of the unit's last Parse (logs, BEGIN replay) */
	int u_primary;         /* the primary as the unit was routed, read before the failover barrier was
	                        * checked (rs_gate): its write goes there, never to a node that took over
	                        * after the check (rfail.c) */
	uint64_t copy_mask;    /* nodes a COPY FROM STDIN goes to */
	char gid[TWOPC_GID_BUF];
	/* transaction time (rnow.c) */
	char txn_time[64];     /* "" until a statement of the transaction needs it */
	struct buf rw;         /* a client message rewritten to use it */
	int rw_now_param;      /* the Parse just rewritten reads it from parameter $n */
	bool rw_has_info;      /* rw_info: the class of the Query or Parse just read */
	struct stmt_info rw_info;
	int unnamed_now_param; /* ... for the unnamed statement */
	bool rw_now;           /* the message just read (Query, Bind) reads the transaction time */
	bool time_wait;        /* the primary's transaction time is on its way (rs_time_captured) */
	int time_node;         /* ... from this node */
	struct buf now_marks;  /* offsets in unit.msgs of the messages that read the time (uint32_t) */
	struct rs_unit now_unit; /* the unit for the nodes other than the primary (rs_now_unit) */
	/* row shipping (rship.c) */
	struct ship_stmt ship;     /* the unit's statement, analysed at read time */
	struct ship_stmt rw_ship;  /* ... of the Query or Parse just read */
	struct ship_stmt unnamed_ship;        /* of the unnamed statement */
	struct ship_stmt unnamed_portal_ship; /* of the unnamed portal */
	bool ship_on;              /* the unit runs on the primary only; its rows go to the others */
	bool ship_temp;            /* the unit writes a temporary table (no two-phase commit) */
	bool had_temp;             /* the session made temporary objects */
	bool ship_oom;
	struct ship_table *ship_t; /* its table (in rs->tables) */
	uint32_t ship_n;           /* rows captured */
	uint64_t ship_copy_n;      /* rows a shipped COPY inserted on the primary */
	struct buf ship_rows;      /* "E'(...)'::table, ..." */
	struct buf ship_cap;       /* rows of a capture or lookup query */
	struct buf ship_pre;       /* setval()s for the other nodes, NUL-separated */
	struct rs_unit ship_unit;  /* the apply statement for the other nodes */
	struct strmap tables;      /* "schema\x01table" -> struct ship_table */
	struct strmap fns;         /* function name -> FN_USER_VOLATILE / FN_OTHER (rs_fn_volatile) */
	bool lookup_fns;           /* RS_LOOKUP reads functions, not a table */
	unsigned tables_gen;
	uint64_t order_need;       /* RS_ORDER: commit tickets that must have ended */
	uint64_t order_pend;       /* ... before the shipped rows waiting in the others' batches go out */
	bool order_rerun;          /* RS_ORDER then routes the unit (not rs_ship_go) */
	struct list order_link;    /* in the worker's order_waiters */
	bool order_waiting;
	uint64_t commit_ticket;    /* corder ticket of the commit in progress (0: none) */
	/* failover (rfail.c) */
	bool client_got;           /* the leader's answers of the step reached the client (no re-run) */
	bool err_lost;             /* in 'E': the node whose transaction failed was lost */
	bool primary_moved;        /* the primary changed during the open transaction */
	bool fo_order;             /* holds the failover barrier: its shipped rows (RS_ORDER) are not sent yet */
	uint64_t units_done;       /* units answered so far */
	uint64_t unit_t0;          /* uv_hrtime() when the unit was first routed (metrics) */
	uint64_t txn_us;       /* SHOW STATS: time of the transaction's units so far */
	bool gate_in;              /* counted as an open write transaction (rgate.c) */
	bool gate_waiting;         /* in the worker's gate_waiters (RS_GATE) */
	struct list gate_link;
};

/* A named statement or portal (rsess.c maps). */
struct rs_named {
	struct stmt_info info; /* first: the map's values are read as struct stmt_info */
	int now_param;         /* Bind appends the transaction time as this parameter (0: no) */
	struct ship_stmt ship; /* row shipping analysis of the statement (kind SHIP_NO: none) */
	uint32_t parse_len;    /* bytes of the Parse message kept after sql (0: none) */
	uint64_t unit_no;      /* rsess.units_done when it was parsed */
	char sql[];            /* text, kept for transaction control (BEGIN replay); then the Parse */
};

/* Replication mode: set up C's session at login (before its first query). */
bool rsess_create(struct client *c);
/* The client is closing: give the servers back (or close them). */
void rsess_release(struct client *c);
/* Free the session (client close callback). */
void rsess_free(struct client *c);
/* The login server of C: it becomes the session's server of its node. */
void rsess_adopt(struct client *c, struct server *s);
/* Client input is there (or may be processed again). */
void rsess_process(struct client *c);
/* A pool linked S to C while C waited. */
void rsess_server_ready(struct client *c, struct server *s);
/* S is going away (closing): forget it. */
void rsess_server_gone(struct client *c, struct server *s);
/* The client took our output: servers may send more. */
void rsess_client_drained(struct client *c);
/* May the client's input be read now? */
bool rsess_may_read(const struct client *c);
/* No step runs (the client's turn to send). */
bool rsess_between_units(const struct client *c);
/* No step runs and no transaction is open. */
bool rsess_idle(const struct client *c);
/* Cancel request: forward it to every node working for C. */
void rsess_cancel(struct client *c);

/* rnow.c: the transaction's timestamp (chosen at its first use), as text. */
const char *rs_txn_time(struct rsess *rs);
/* rnow.c: the unit for the nodes other than the primary (NULL: out of memory). */
const struct rs_unit *rs_now_unit(struct rsess *rs);
/* rnow.c: the primary's transaction time arrived (text in UTC, not terminated). */
void rs_time_captured(struct rsess *rs, const char *v, size_t n);
/* rnow.c: MSG (Query, Parse or Bind) rewritten for the transaction time
 * into OUT (left empty when unchanged).  false: out of memory. */
bool rs_rewrite_msg(struct rsess *rs, uint8_t type, const uint8_t *msg, uint32_t len, struct buf *out);

/* rship.c (ship.h, doc/determinism.md) */
bool rs_ship_candidate(const struct stmt_info *si);
/* ANALYZED: *st holds ship_analyze()'s result for SQL already (or SHIP_NO when not a candidate). */
bool rs_ship_rewrite(struct rsess *rs, const char *sql, const struct stmt_info *si, struct ship_stmt *st,
		     bool analyzed, struct buf *out);
bool rs_ship_answer(struct rsess *rs, uint8_t entry, bool leader, const uint8_t *msg, uint32_t len, bool *fwd);
bool rs_ship_route(struct rsess *rs, bool in_block);
bool rs_ship_parse_only(struct rsess *rs);
/* A read calling functions classify.h does not know: 1 when one of them is a
 * user's volatile function (the read is a write), 0 not, -1 a lookup runs. */
int rs_fn_volatile(struct rsess *rs);
void rs_ship_lookup_done(struct rsess *rs);
void rs_ship_copy_done(struct rsess *rs);
void rs_ship_lo_value(struct rsess *rs, const uint8_t *msg, uint32_t len);
bool rs_ship_build(struct rsess *rs);
void rs_ship_pre(struct rsess *rs, const char **pre, int n);
bool rs_ship_order_ok(struct rsess *rs, uint64_t need);
/* rroute.c, before routing a unit: false when it waits (RS_ORDER) because it
 * may send the others' deferred batch before the commits it needs. */
bool rs_order_before_unit(struct rsess *rs);
void rs_ship_order_wake(struct worker *w);
void rs_ship_reset_unit(struct rsess *rs);
void rs_ship_free(struct rsess *rs);
/* The session no longer waits for commits (it is going away). */
void rs_ship_unwait(struct rsess *rs);
/* DDL ran (ALL_SESSIONS) or this session's search_path may have changed. */
void rs_ship_ddl(struct rsess *rs, bool all_sessions);
/* rstep.c: the primary ran a shipped unit and the commit order allows: the others get it. */
void rs_ship_go(struct rsess *rs);
/* rstep.c: send a Query of pgchorus's own to NODE (answers swallowed; FLAGS added to its entry). */
bool rs_send_injected(struct rsess *rs, int node, const char *sql, uint8_t flags);

/* rfail.c (doc/failover.md): NODE is no longer up: every session of W lets go
 * of it and goes on with the other nodes. */
void rsess_node_down(struct worker *w, int node, bool was_primary);
/* rfail.c: the pause of writes ended: sessions of W waiting for it go on. */
void rs_gate_wake(struct worker *w);
/* rfail.c: NODE, which was the primary, is no longer up (any thread, before
 * the workers are told): new writes wait until every session's writes that
 * ran behind the old primary are done on the nodes left (the failover
 * barrier), so that the new primary never runs a statement ahead of rows
 * the old one had already changed. */
void rfail_barrier_add(int n);
/* rfail.c: the slot's writes that held the failover barrier are done. */
void rs_fo_release(struct rs_slot *sl);
/* rfail.c: RS_ORDER ended (the rows went out): the rows hold the barrier
 * on each node instead of the session, until they are applied. */
void rs_fo_order_done(struct rsess *rs);
/* rfail.c: server S of C's session failed (connection lost, FATAL error):
 * its node is failed and the session goes on without it. */
void rsess_server_failed(struct client *c, struct server *s, const char *why);
/* rfail.c: C waited for a server of NODE, which cannot be reached. */
void rs_pool_connect_failed(struct client *c, int node, const char *why);
/* rfail.c: the unit opens (or continues) a write transaction: false when it
 * waits for the pause of writes or the failover barrier to end (RS_GATE;
 * routed again then).  COMMIT_ONLY: the unit only commits (no barrier). */
bool rs_gate(struct rsess *rs, bool commit_only);
/* rfail.c: the write transaction ended (or the session goes away). */
void rs_gate_leave(struct rsess *rs);
/* rship.c: the primary failed while running the shipped unit: forget what it captured. */
void rs_ship_restart(struct rsess *rs);

/* rsrv.c: answers of a server of a replicated session. */
void rsrv_process(struct server *s);
/* rsess.c, called by rsrv.c when every node of the step has answered. */
void rsess_step_done(struct rsess *rs);

#endif
