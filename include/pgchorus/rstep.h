/*
 * rstep.h - steps of a replicated session (src/repl/rstep.c), used by
 * rsess.c.  See rsess.h for the overview.
 */
#ifndef PGCHORUS_RSTEP_H
#define PGCHORUS_RSTEP_H

#include <stdbool.h>
#include <stdint.h>

#include "pgchorus/rsess.h"

/* Nodes that are up and whose server the session holds. */
uint64_t rs_live_mask(const struct rsess *rs);
/* Nodes that take part in the open transaction. */
uint64_t rs_txn_mask(const struct rsess *rs);
/* Start step ST led by LEADER (-1: no answers reach the client). */
void rs_begin_step(struct rsess *rs, enum rs_step st, int leader);
bool rs_send(struct rsess *rs, int node, const char *const *pre, const struct rs_unit *u, bool join);
bool rs_send_ex(struct rsess *rs, int node, const char *const *pre, const struct rs_unit *u, bool join, bool defer);
bool rs_send_mask(struct rsess *rs, uint64_t mask, const char *const *pre, const struct rs_unit *u,
		  const struct rs_unit *others);
/* Send NODE the writes deferred for it now (no step waits for them). */
bool rs_flush_pending(struct rsess *rs, int node);
/* The transaction ends without commit: drop the writes still waiting for other nodes. */
void rs_drop_pending(struct rsess *rs);
bool rs_compare(struct rsess *rs, uint64_t mask, int primary);
bool rs_apply_policy(struct rsess *rs, uint64_t minority, int primary);
bool rs_apply_policy_ex(struct rsess *rs, uint64_t minority, int primary, bool shipped);
void rs_detach_node(int node, const char *why);
void rs_commit_2pc(struct rsess *rs, bool client_commit);
void rs_abort(struct rsess *rs);
/* rsess.c */
/* Answer the unit here with an error. */
void rs_local_error(struct rsess *rs, const char *sqlstate, const char *text);
/* Hold a server of every live node; false: waiting for one, or the client closed. */
bool rs_ensure_servers(struct rsess *rs);
/* rsess.c: prepare the session's named statements on NODE (a server it took later). */
bool rs_replay_statements(struct rsess *rs, int node);
/* rroute.c: run the unit just read (rs->unit) */
void rs_run_unit(struct rsess *rs);
/* rroute.c: the node a read goes to. */
int rs_read_target(struct rsess *rs);
/* rroute.c: answer the unit (one transaction control statement) with TAG, as a node would. */
bool rs_answer_locally(struct rsess *rs, const char *tag, bool dry);
/* rsess.c: the unit is answered; ReadyForQuery, then the next unit. */
void rs_finish(struct rsess *rs);

#endif
