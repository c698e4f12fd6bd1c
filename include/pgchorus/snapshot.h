/*
 * snapshot.h - what the workers do for an admin console command that
 * shows every worker's clients, servers or pools (src/admin/cmd_show.c).
 * The console's worker posts INBOX_ADMIN_SNAPSHOT (key 0) to every worker;
 * each fills its own part of the shared request; the last one posts key 1
 * back to the console's worker, which answers the client.
 */
#ifndef PGCHORUS_SNAPSHOT_H
#define PGCHORUS_SNAPSHOT_H

#include <stdint.h>

#define SNAPSHOT_COLLECT 0
#define SNAPSHOT_DONE 1

struct worker;
struct admin_snapshot;

/* Worker W's inbox got INBOX_ADMIN_SNAPSHOT about S with KEY. */
void admin_snapshot_on_inbox(struct worker *w, struct admin_snapshot *s, uint32_t key);
/* Worker W has stopped (its loop ended) and will not handle the message
 * about S with KEY: COLLECT counts W's part as empty, DONE frees S (the
 * requester on W is gone).  Any thread. */
void admin_snapshot_dropped(struct worker *w, struct admin_snapshot *s, uint32_t key);

#endif
