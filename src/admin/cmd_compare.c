/*
 * cmd_compare.c - admin console commands of the consistency check
 * (doc/admin.md): COMPARE [table, ...], SHOW COMPARE, SHOW COMPARE STATUS,
 * REPAIR TABLE name FROM NODE n.  The jobs run in compare.c's thread; the
 * commands start them and show the results of the last one.
 */
#include <stdio.h>
#include <stdlib.h>

#include "pgchorus/compare.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "admin-int.h"

#define COLS(a) a, (int)(sizeof(a) / sizeof(a[0]))
#define SQLSTATE_OBJECT_NOT_IN_STATE "55000"

static void compare(struct admin_res *r, const int64_t *args)
{
	char err[256] = "";

	(void)args;
	if (compare_start(r->names, err, sizeof(err)) < 0) {
		admin_error(r, SQLSTATE_OBJECT_NOT_IN_STATE, "cannot compare: %s", err);
		return;
	}
	admin_notice(r, "compare started; SHOW COMPARE STATUS shows when it ends, SHOW COMPARE its result");
}

static void repair(struct admin_res *r, const int64_t *args)
{
	char err[256] = "";

	if (args[0] < 0 || args[0] >= nodes_count()) {
		admin_error(r, "22023", "node %lld does not exist (node ids are 0 to %d)", (long long)args[0],
			    nodes_count() - 1);
		return;
	}
	if (repair_start(r->names, (int)args[0], err, sizeof(err)) < 0) {
		admin_error(r, SQLSTATE_OBJECT_NOT_IN_STATE, "cannot repair %s: %s", r->names, err);
		return;
	}
	admin_notice(r, "repair of %s from node %d started; SHOW COMPARE STATUS shows when it ends", r->names,
		     (int)args[0]);
}

static const struct admin_col compare_cols[] = {
	{ "table", ADMIN_TEXT },	{ "node", ADMIN_INT4 },	      { "rows", ADMIN_INT8 },
	{ "checksum", ADMIN_TEXT },	{ "divergent", ADMIN_BOOL }, { "differing_keys", ADMIN_TEXT },
};

static void show_compare(struct admin_res *r, const int64_t *args)
{
	struct compare_row *rows;
	size_t n = compare_get_rows(&rows);

	(void)args;
	for (size_t i = 0; i < n && !r->failed; i++) {
		admin_row_begin(r);
		admin_put_text(r, rows[i].table);
		admin_put_int(r, rows[i].node);
		admin_put_int(r, rows[i].rows);
		admin_put_text(r, rows[i].checksum);
		admin_put_bool(r, rows[i].divergent);
		admin_put_text(r, rows[i].keys);
		admin_row_end(r);
	}
	free(rows);
}

static const struct admin_col status_cols[] = {
	{ "job", ADMIN_TEXT },	    { "status", ADMIN_TEXT }, { "started", ADMIN_TEXT },
	{ "ended", ADMIN_TEXT },    { "tables", ADMIN_INT4 }, { "divergent", ADMIN_INT4 },
	{ "detail", ADMIN_TEXT },   { "error", ADMIN_TEXT },
};

/* One row (none before the first job); "tables" is the rows copied for a repair. */
static void show_status(struct admin_res *r, const int64_t *args)
{
	struct compare_status s;

	(void)args;
	compare_get_status(&s);
	if (!s.job[0])
		return;
	admin_row_begin(r);
	admin_put_text(r, s.job);
	admin_put_text(r, s.state);
	admin_put_time(r, s.started);
	admin_put_time(r, s.ended);
	admin_put_int(r, s.tables);
	admin_put_int(r, s.divergent);
	admin_put_text(r, s.detail);
	admin_put_text(r, s.error);
	admin_row_end(r);
}

static const struct admin_cmd compare_cmds[] = {
	{ "COMPARE", "COMPARE [table, ...]", "COMPARE", NULL, 0, compare },
	{ "COMPARE %N", "COMPARE [table, ...]", "COMPARE", NULL, 0, compare },
	{ "SHOW COMPARE", "SHOW COMPARE", "SHOW", COLS(compare_cols), show_compare },
	{ "SHOW COMPARE STATUS", "SHOW COMPARE STATUS", "SHOW", COLS(status_cols), show_status },
	{ "REPAIR TABLE %n FROM NODE %d", "REPAIR TABLE name FROM NODE n", "REPAIR", NULL, 0, repair },
};

const struct admin_cmd_set admin_cmds_compare = { compare_cmds, sizeof(compare_cmds) / sizeof(compare_cmds[0]) };
