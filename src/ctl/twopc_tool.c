/*
 * twopc_tool.c - a small driver of src/repl/twopc.c for tests and for
 * operators who want to resolve prepared transactions by hand.
 *
 *   twopc_tool make-gid INSTANCE BOOT COUNTER     print the gid
 *   twopc_tool decision-sql GID                   print the INSERT of GID's decision row
 *   twopc_tool ddl                                print the decision table's DDL
 *   twopc_tool resolve [-i GID]... INSTANCE BOOT GRACE CONNINFO...
 *       resolve INSTANCE's prepared transactions on the nodes CONNINFO...
 *       (node ids 0, 1, ... in that order) as the running boot BOOT with a
 *       grace period of GRACE seconds; each -i GID is registered in flight.
 *       Prints one line: committed=N rolled_back=N undecided=N
 *       unreachable_nodes=N pending=N failed=N gc_deleted=N.  The resolver's
 *       log goes to standard error.
 *
 * Exit status: 0 done, 1 refused or hard error, 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/log.h"
#include "pgchorus/twopc.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: twopc_tool make-gid INSTANCE BOOT COUNTER\n"
		"       twopc_tool decision-sql GID\n"
		"       twopc_tool ddl\n"
		"       twopc_tool resolve [-i GID]... INSTANCE BOOT GRACE CONNINFO...\n");
	return 2;
}

static bool parse_u64_arg(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s[0] || s[0] == '-' || s[0] == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = (uint64_t)v;
	return true;
}

static int cmd_make_gid(int argc, char **argv)
{
	uint64_t boot, counter;
	char gid[TWOPC_GID_BUF];

	if (argc != 3)
		return usage();
	if (!parse_u64_arg(argv[1], &boot) || !parse_u64_arg(argv[2], &counter)) {
		fprintf(stderr, "twopc_tool: BOOT and COUNTER must be unsigned numbers\n");
		return 1;
	}
	if (!twopc_make_gid(gid, sizeof(gid), argv[0], boot, counter)) {
		fprintf(stderr, "twopc_tool: invalid instance name \"%s\"\n", argv[0]);
		return 1;
	}
	printf("%s\n", gid);
	return 0;
}

static int cmd_decision_sql(int argc, char **argv)
{
	char sql[2 * TWOPC_GID_SIZE + 128];

	if (argc != 1)
		return usage();
	if (!twopc_decision_insert_sql(argv[0], sql, sizeof(sql))) {
		fprintf(stderr, "twopc_tool: unacceptable gid\n");
		return 1;
	}
	printf("%s\n", sql);
	return 0;
}

static int cmd_resolve(int argc, char **argv)
{
	struct twopc_inflight *inflight = twopc_inflight_new();
	struct twopc_node *nodes = NULL;
	struct twopc_report rep;
	uint64_t boot;
	double grace;
	char *end, err[512];
	int rc = 1, n;

	if (!inflight) {
		fprintf(stderr, "twopc_tool: out of memory\n");
		return 1;
	}
	while (argc >= 2 && strcmp(argv[0], "-i") == 0) {
		if (!twopc_inflight_add(inflight, argv[1])) {
			fprintf(stderr, "twopc_tool: cannot register gid \"%s\"\n", argv[1]);
			goto out;
		}
		argc -= 2;
		argv += 2;
	}
	if (argc < 4) {
		rc = usage();
		goto out;
	}
	if (!parse_u64_arg(argv[1], &boot)) {
		fprintf(stderr, "twopc_tool: BOOT must be an unsigned number\n");
		goto out;
	}
	errno = 0;
	grace = strtod(argv[2], &end);
	if (errno || *end || end == argv[2]) {
		fprintf(stderr, "twopc_tool: GRACE must be a number of seconds\n");
		goto out;
	}
	n = argc - 3;
	nodes = calloc((size_t)n, sizeof(*nodes));
	if (!nodes) {
		fprintf(stderr, "twopc_tool: out of memory\n");
		goto out;
	}
	for (int k = 0; k < n; k++) {
		nodes[k].id = k;
		nodes[k].conninfo = argv[3 + k];
	}
	if (twopc_resolve(nodes, n, argv[0], boot, grace, inflight, &rep, err, sizeof(err)) != 0) {
		fprintf(stderr, "twopc_tool: %s\n", err);
		goto out;
	}
	printf("committed=%d rolled_back=%d undecided=%d unreachable_nodes=%d pending=%d failed=%d "
	       "gc_deleted=%ld\n",
		rep.committed, rep.rolled_back, rep.undecided, rep.unreachable_nodes, rep.pending, rep.failed,
		rep.gc_deleted);
	rc = 0;
out:
	free(nodes);
	twopc_inflight_free(inflight);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	log_set_level(LOG_LVL_INFO);
	if (strcmp(argv[1], "make-gid") == 0)
		return cmd_make_gid(argc - 2, argv + 2);
	if (strcmp(argv[1], "decision-sql") == 0)
		return cmd_decision_sql(argc - 2, argv + 2);
	if (strcmp(argv[1], "ddl") == 0) {
		if (argc != 2)
			return usage();
		printf("%s\n", twopc_decisions_ddl());
		return 0;
	}
	if (strcmp(argv[1], "resolve") == 0)
		return cmd_resolve(argc - 2, argv + 2);
	return usage();
}
