/*
 * rgate.c - the pause of writes (ha.h): online recovery and failback
 * attach a node at a moment when no write transaction is open.
 *
 * A session that is about to open a write transaction counts itself in
 * `writers` first and looks at `paused` second; the HA thread sets `paused`
 * first and waits for `writers` to reach 0 second.  Both are sequentially
 * consistent atomics, so either the session sees the pause (and waits,
 * uncounted), or the HA thread sees the session (and waits for it).
 *
 * Pauses nest: recovery, COMPARE, the admin's PAUSE and a peer instance's
 * request (heartbeat.c) each hold one; writes resume when the last ends.
 */
#include <stdlib.h>

#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/worker.h"

static atomic_int pauses;
static atomic_int writers;

void repl_pause_writes(void)
{
	atomic_fetch_add(&pauses, 1);
}

void repl_resume_writes(void)
{
	int n = atomic_load(&pauses);

	/* never below 0, whatever a caller does */
	while (n > 0 && !atomic_compare_exchange_weak(&pauses, &n, n - 1))
		;
	if (n == 1)
		workers_post_kind(INBOX_WRITES_RESUMED, 0, 0);
}

bool repl_writes_paused(void)
{
	return atomic_load(&pauses) > 0;
}

int repl_open_writers(void)
{
	return atomic_load(&writers);
}

bool rgate_enter(void)
{
	atomic_fetch_add(&writers, 1);
	if (atomic_load(&pauses) == 0)
		return true;
	atomic_fetch_sub(&writers, 1);
	return false;
}

void rgate_leave(void)
{
	atomic_fetch_sub(&writers, 1);
}
