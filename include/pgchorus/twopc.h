/*
 * twopc.h - two-phase commit: global transaction ids, the decision table and
 * the resolver of prepared transactions left behind (doc/replication.md,
 * "Atomic commit").
 *
 * A replicated write transaction gets a gid "pgc_<instance>_<boot>_<counter>".
 * Just before PREPARE TRANSACTION, the data path inserts the gid into
 * pgchorus.decisions on every node, inside the transaction itself
 * (twopc_decision_insert_sql()), so the row becomes visible on a node exactly
 * when that node commits the prepared transaction.  A prepared transaction
 * found later on any node is therefore committed when some node has its
 * decision row, and rolled back when no node has it.
 *
 * The resolver is synchronous libpq code: it runs at start-up in the main
 * thread and later in a thread of its own, never on an event loop.  One
 * resolver at a time per instance (the caller serialises the runs).
 */
#ifndef PGCHORUS_TWOPC_H
#define PGCHORUS_TWOPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PostgreSQL's GIDSIZE: a gid holds at most 199 bytes plus the NUL. */
#define TWOPC_GID_SIZE 200
/* Longest instance name: [a-z0-9_]{1,20}. */
#define TWOPC_INSTANCE_MAX 20
/* Buffer large enough for any gid twopc_make_gid() writes: 4 + 20 + 1 + 20 + 1 + 20 + NUL. */
#define TWOPC_GID_BUF 72
/* Decision rows are garbage-collected this long after they were written. */
#define TWOPC_DECISION_KEEP_SECONDS 3600

/* true when NAME is a valid instance name: 1 to 20 characters of [a-z0-9_]. */
bool twopc_instance_valid(const char *name);

/*
 * Write "pgc_<instance>_<boot>_<counter>" (decimal numbers) to OUT (N bytes).
 * false, with OUT set to "" when N > 0, if INSTANCE is not valid or OUT is
 * too small (TWOPC_GID_BUF is always enough).
 */
bool twopc_make_gid(char *out, size_t n, const char *instance, uint64_t boot, uint64_t counter)
	__attribute__((warn_unused_result));

/*
 * Parse a gid written by twopc_make_gid().  Strict: anything else (other
 * prefix, empty or over-long or invalid instance, numbers that are empty,
 * signed, with leading zeros or out of range of uint64_t, trailing bytes) is
 * refused.  The instance is copied to INSTANCE (INSTANCE_SIZE bytes, at least
 * TWOPC_INSTANCE_MAX + 1 for any valid gid).  Outputs are written only when
 * the result is true.
 */
bool twopc_parse_gid(const char *gid, char *instance, size_t instance_size, uint64_t *boot,
	uint64_t *counter) __attribute__((warn_unused_result));

/*
 * SQL that creates the decision table when missing (idempotent, several
 * statements: run it with PQexec).  A static string.
 */
const char *twopc_decisions_ddl(void);

/*
 * Write to BUF (N bytes) the INSERT of GID's decision row that the data path
 * runs inside each write transaction, immediately before PREPARE TRANSACTION
 * (the resolver's garbage collection relies on the row's time being that of
 * the PREPARE: the INSERT sets decided_at to clock_timestamp()).  GID must be
 * 1 to 199 bytes of printable ASCII; it is written as a literal that reads the
 * same whatever standard_conforming_strings is.  false if GID is refused or
 * BUF too small (2 * TWOPC_GID_SIZE + 128 is always enough).
 */
bool twopc_decision_insert_sql(const char *gid, char *buf, size_t n)
	__attribute__((warn_unused_result));

/*
 * The gids the live data path is committing: added before the first PREPARE
 * TRANSACTION is sent, removed only once the data path will send no more
 * COMMIT/ROLLBACK PREPARED for it.  The resolver leaves these alone.  All
 * functions are thread-safe.
 */
struct twopc_inflight;

/* A new empty set, or NULL when out of memory.  Free with twopc_inflight_free(). */
struct twopc_inflight *twopc_inflight_new(void);
void twopc_inflight_free(struct twopc_inflight *set);
/* Add a copy of GID (1 to 199 bytes).  Adding a present gid is a no-op.  false: out of memory or bad gid. */
bool twopc_inflight_add(struct twopc_inflight *set, const char *gid) __attribute__((warn_unused_result));
/* Remove GID; true when it was present. */
bool twopc_inflight_remove(struct twopc_inflight *set, const char *gid);
bool twopc_inflight_contains(const struct twopc_inflight *set, const char *gid);
size_t twopc_inflight_count(const struct twopc_inflight *set);

/* A node as the resolver sees it.  CONNINFO is a libpq connection string or URI. */
struct twopc_node {
	int id;
	const char *conninfo;
	bool skip;             /* not in service (down, detached): counted unreachable, not connected to */
};

/* What one resolver run did.  Gids are counted once each, whatever the number of nodes. */
struct twopc_report {
	int committed;         /* decided COMMIT and COMMIT PREPARED on every reachable node holding it */
	int rolled_back;       /* decided ROLLBACK and ROLLBACK PREPARED on every node holding it */
	int undecided;         /* no decision row found, but a node could not be asked: left for later */
	int unreachable_nodes; /* nodes that could not be connected to or listed */
	int pending;           /* of the running boot, younger than the grace period or in flight */
	int failed;            /* decided, but a COMMIT/ROLLBACK PREPARED failed: retried next run */
	long gc_deleted;       /* decision rows deleted by the garbage collection */
};

/*
 * Resolve the prepared transactions of INSTANCE left on NODES (N of them,
 * all the configured nodes: the safety rule needs to know every node).
 *
 *  1. connect to every node (connect_timeout 5 s unless CONNINFO sets one);
 *     a node that cannot be reached is logged, counted and skipped;
 *  2. run twopc_decisions_ddl() in the node's database;
 *  3. list the prepared transactions whose gid starts with "pgc_";
 *  4. every gid of INSTANCE that is of an earlier boot than CURRENT_BOOT, or
 *     of CURRENT_BOOT but older than GRACE_SECONDS on every node holding it
 *     and not in INFLIGHT (may be NULL), is committed on every node holding
 *     it when some node has its decision row (looked up in the gid's
 *     database), rolled back when every node answered that it has none, and
 *     left undecided otherwise (an unreachable node might have committed it);
 *     COMMIT/ROLLBACK PREPARED run in the gid's database;
 *  5. when every node was reachable: delete decision rows of INSTANCE older
 *     than TWOPC_DECISION_KEEP_SECONDS whose gid no node has prepared, in
 *     every database of every node (at most 100,000 rows per database and run).
 *
 * Actions and problems are logged.  The connections run as CONNINFO's user,
 * which must be a superuser or the owner of the prepared transactions.
 * Fills *REPORT and returns 0; returns -1 with a message in ERR (ERRLEN
 * bytes) on a hard error (invalid arguments or conninfo, out of memory), in
 * which case *REPORT holds what was done before it.
 */
int twopc_resolve(const struct twopc_node *nodes, int n, const char *instance, uint64_t current_boot,
	double grace_seconds, const struct twopc_inflight *inflight, struct twopc_report *report,
	char *err, size_t errlen);

#endif
