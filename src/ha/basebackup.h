/*
 * basebackup.h - private to the HA thread (src/ha/recovery.c and
 * src/ha/basebackup.c): the built-in first stage of online recovery, and
 * what it reports back to recovery.c while it runs.
 */
#ifndef PGCHORUS_HA_BASEBACKUP_H
#define PGCHORUS_HA_BASEBACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pgchorus/config.h"

/* "No deadline" for the waits below (a timeout setting of 0 = disabled). */
#define HA_NO_DEADLINE 1e300

/* Seconds on the monotonic clock: deadlines of the HA thread. */
static inline double ha_mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The deadline SECONDS from now; SECONDS <= 0 means none. */
static inline double ha_deadline(double seconds)
{
	return seconds > 0 ? ha_mono_now() + seconds : HA_NO_DEADLINE;
}

/* ---- implemented by recovery.c ---- */

/* pgchorus is stopping (recovery_stop): the running job gives up at once. */
bool recovery_stopping(void);
/* pg_basebackup's progress: COPIED of TOTAL bytes (logged every few seconds). */
void recovery_note_copy(uint64_t copied, uint64_t total);

/* ---- implemented by basebackup.c ---- */

/*
 * Can the built-in first stage run for NODE (a data_dir that is an absolute
 * path other than "/")?  false with the reason in ERR.
 */
bool bb_usable(const struct config *cfg, int node, char *err, size_t errlen);
/*
 * The built-in first stage of the recovery of NODE from PRIMARY: stop what
 * still runs on NODE's data directory, move that directory aside (to
 * <data_dir>.old), copy PRIMARY into it with pg_basebackup (as a standby,
 * -R), put back the node's own postgresql.conf, pg_hba.conf and
 * pg_ident.conf from the old directory, and start it on its own port.
 * Commands run as the owner of the data directory (pgchorus as root), or
 * through ssh on nodes[NODE].ssh_host.  Gives up at DEADLINE (ha_mono_now()
 * clock) or when recovery_stopping().  0, or -1 with ERR.
 */
int bb_stage1(const struct config *cfg, int node, int primary, double deadline, char *err, size_t errlen);
/* After a successful recovery: remove <data_dir>.old (failures only logged). */
void bb_remove_old(const struct config *cfg, int node);

#endif
