/*
 * resolver.h - replication mode's two-phase-commit bookkeeping at run time:
 * global transaction ids for the data path, the set of gids in flight, and
 * the resolver of prepared transactions left behind (src/repl/twopc.c),
 * run once at start-up and then periodically in a thread of its own.
 * doc/replication.md, "Atomic commit".
 */
#ifndef PGCHORUS_RESOLVER_H
#define PGCHORUS_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>

#include "pgchorus/config.h"

/*
 * Replication mode, in the main thread after nodes_init() and before the
 * workers accept clients: pick the boot number, create the decision table
 * (schema pgchorus, INSERT granted to PUBLIC) in every database of every
 * reachable node (template1 included, so that later databases have it),
 * resolve what earlier boots left, and start the periodic thread.  A node
 * that cannot be reached is logged and skipped (never fatal).  0, or -1 with
 * ERR set on a hard error (out of memory, thread creation).
 */
int resolver_start(const struct config *cfg, char *err, size_t errlen);
/* New settings (reload).  Main thread. */
void resolver_reload(const struct config *cfg);
/* Stop the thread (waits for a run in progress).  Main thread. */
void resolver_stop(void);
/* Ask for a run as soon as possible (e.g. a COMMIT PREPARED failed).  Any thread. */
void resolver_kick(void);
/*
 * The heartbeat declared peer INSTANCE dead; BOOT is the last boot number it
 * announced.  Every run then also resolves its prepared transactions: those
 * of earlier boots at once, of BOOT once older than resolver_grace, never
 * those of a later boot.  resolver_peer_alive() ends it.  Any thread.
 */
void resolver_peer_dead(const char *instance, uint64_t boot);
void resolver_peer_alive(const char *instance);
/* This instance's boot number (gids pgc_<instance>_<boot>_<n>); 0 before resolver_start(). */
uint64_t resolver_boot(void);
/* Shipped writes moved sequences of database DB: the next run's sequence
 * sweep brings the other nodes' sequences up to the primary's.  Thread-safe. */
void resolver_seq_dirty(const char *db);

/*
 * Data path, any worker thread: a new gid "pgc_<instance>_<boot>_<n>" in
 * GID (N >= TWOPC_GID_BUF bytes), already added to the in-flight set so
 * the resolver leaves it alone.  false on out of memory.
 */
bool resolver_gid_begin(char *gid, size_t n) __attribute__((warn_unused_result));
/* The data path will send no more COMMIT/ROLLBACK PREPARED for GID. */
void resolver_gid_end(const char *gid);

#endif
