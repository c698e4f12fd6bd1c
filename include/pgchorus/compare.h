/*
 * compare.h - consistency check of the nodes (COMPARE) and repair of a
 * table from one node (REPAIR TABLE), doc/admin.md.
 *
 * One job at a time, in a thread of its own (compare.c) that blocks on
 * libpq; any thread may start a job or read the results of the last one.
 */
#ifndef PGCHORUS_COMPARE_H
#define PGCHORUS_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keys listed per divergent table. */
#define COMPARE_MAX_KEYS 20

/* One table on one node, as the last COMPARE saw it. */
struct compare_row {
	char table[200];   /* schema.table, quoted where needed */
	int node;
	int64_t rows;
	char checksum[33];
	bool divergent;    /* the table's checksum or count differs between nodes */
	char keys[1024];   /* up to COMPARE_MAX_KEYS differing primary keys, ", "-separated */
};

/* The last (or running) job. */
struct compare_status {
	char job[8];       /* "compare", "repair", "" (none yet) */
	char state[8];     /* "running", "done", "failed" */
	double started;    /* seconds since the epoch */
	double ended;
	int tables;        /* compared (compare), or rows copied (repair) */
	int divergent;     /* divergent tables (compare) */
	char detail[256];  /* repair: what was copied where */
	char error[256];
};

/*
 * Start a compare of TABLES ("a,s.b": names as written in SQL; "" = every
 * ordinary table of resolver_database outside pg_catalog,
 * information_schema and pgchorus).  0 = started, -1 with ERR (a job is
 * running, fewer than one node up...).
 */
int compare_start(const char *tables, char *err, size_t errlen);
/* Start the repair of TABLE from node FROM to every other node that is up.  As compare_start. */
int repair_start(const char *table, int from, char *err, size_t errlen);
void compare_get_status(struct compare_status *out);
/* At shutdown (main thread, before the workers' inboxes go away): cancel a
 * running job's statements, wait for its end (10 s at most); no job starts
 * afterwards. */
void compare_stop(void);
/* A copy of the rows of the last compare into *OUT (the caller frees it); their number. */
size_t compare_get_rows(struct compare_row **out);

#endif
