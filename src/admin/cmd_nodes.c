/*
 * cmd_nodes.c - admin console commands about the nodes (doc/admin.md):
 * SHOW NODES, SHOW POOL_NODES, SHOW RECOVERY, SHOW PEERS, DETACH NODE [GRACEFUL],
 * ATTACH NODE, RECOVER NODE, PROMOTE NODE.  They read and change node states through ha.h; attach
 * and recovery only start here (they run in the HA thread).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>

#include "pgchorus/ha.h"
#include "pgchorus/node.h"
#include "admin-int.h"

#define SQLSTATE_OBJECT_NOT_IN_STATE "55000"
#define SQLSTATE_INVALID_PARAMETER "22023"

/* Two administrators detaching the last two nodes at once must not both
 * pass the "another node stays up" check. */
static pthread_mutex_t detach_lock = PTHREAD_MUTEX_INITIALIZER;

/* Is ARG a node id?  Else the 22023 error is set. */
static bool node_arg(struct admin_res *r, int64_t arg)
{
	int n = nodes_count();

	if (arg == INT64_MAX || arg == INT64_MIN) {
		/* beyond int64 (match_int): its digits are not kept */
		admin_error(r, SQLSTATE_INVALID_PARAMETER, "node id out of range (node ids are 0 to %d)", n - 1);
		return false;
	}
	if (arg < 0 || arg >= n) {
		admin_error(r, SQLSTATE_INVALID_PARAMETER, "node %" PRId64 " does not exist (node ids are 0 to %d)",
			    arg, n - 1);
		return false;
	}
	return true;
}

static double node_weight(const struct config *cfg, int id)
{
	return id < cfg->n_nodes ? cfg->nodes[id].weight : 0;
}

static const char *node_role(int id)
{
	return id == node_primary() ? "primary" : "standby";
}

/* ---- SHOW NODES ---------------------------------------------------------- */

static const struct admin_col nodes_cols[] = {
	{ "id", ADMIN_INT4 },
	{ "host", ADMIN_TEXT },
	{ "port", ADMIN_INT4 },
	{ "status", ADMIN_TEXT },
	{ "role", ADMIN_TEXT },
	{ "weight", ADMIN_FLOAT8 },
	{ "last_error", ADMIN_TEXT },
	{ "last_status_change", ADMIN_TEXT },
	{ "health_check_ms", ADMIN_FLOAT8 },
};

static void show_nodes(struct admin_res *r, const int64_t *args)
{
	(void)args;
	for (int i = 0; i < nodes_count() && !r->failed; i++) {
		struct node *n = node_get(i);
		char last_error[256];
		double ms = health_last_ms(i);

		node_last_error(i, last_error, sizeof(last_error));
		admin_row_begin(r);
		admin_put_int(r, i);
		admin_put_text(r, n->host);
		admin_put_int(r, n->port);
		admin_put_text(r, node_state_name(atomic_load(&n->state)));
		admin_put_text(r, node_role(i));
		admin_put_float(r, node_weight(r->cfg, i));
		admin_put_text(r, last_error);
		admin_put_time(r, node_changed_at(i));
		if (ms < 0)
			admin_put_null(r);
		else
			admin_put_float(r, ms);
		admin_row_end(r);
	}
}

/* ---- SHOW POOL_NODES (pgpool-II's names) ---------------------------------- */

static const struct admin_col pool_nodes_cols[] = {
	{ "node_id", ADMIN_INT4 },
	{ "hostname", ADMIN_TEXT },
	{ "port", ADMIN_INT4 },
	{ "status", ADMIN_TEXT },
	{ "lb_weight", ADMIN_FLOAT8 },
	{ "role", ADMIN_TEXT },
};

static void show_pool_nodes(struct admin_res *r, const int64_t *args)
{
	(void)args;
	for (int i = 0; i < nodes_count() && !r->failed; i++) {
		struct node *n = node_get(i);

		admin_row_begin(r);
		admin_put_int(r, i);
		admin_put_text(r, n->host);
		admin_put_int(r, n->port);
		admin_put_text(r, node_state_name(atomic_load(&n->state)));
		admin_put_float(r, node_weight(r->cfg, i));
		admin_put_text(r, node_role(i));
		admin_row_end(r);
	}
}

/* ---- SHOW RECOVERY ----------------------------------------------------------- */

static const struct admin_col recovery_cols[] = {
	{ "node", ADMIN_INT4 },
	{ "phase", ADMIN_TEXT },
	{ "running", ADMIN_BOOL },
	{ "bytes_copied", ADMIN_INT8 },
	{ "bytes_total", ADMIN_INT8 },
	{ "lag_bytes", ADMIN_INT8 },
	{ "pause_ms", ADMIN_FLOAT8 },
	{ "started", ADMIN_TEXT },
	{ "ended", ADMIN_TEXT },
	{ "error", ADMIN_TEXT },
};

static int64_t clamp_u64(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static void show_recovery(struct admin_res *r, const int64_t *args)
{
	struct recovery_progress p;

	(void)args;
	recovery_get_progress(&p);
	p.phase[sizeof(p.phase) - 1] = 0;
	p.error[sizeof(p.error) - 1] = 0;
	/* One row, also before any recovery ran (node NULL then). */
	admin_row_begin(r);
	if (p.node < 0)
		admin_put_null(r);
	else
		admin_put_int(r, p.node);
	admin_put_text(r, p.phase);
	admin_put_bool(r, p.running);
	admin_put_int(r, clamp_u64(p.bytes_copied));
	admin_put_int(r, clamp_u64(p.bytes_total));
	if (p.lag_bytes < 0)
		admin_put_null(r);
	else
		admin_put_int(r, p.lag_bytes);
	admin_put_float(r, p.pause_ms);
	admin_put_time(r, p.started);
	admin_put_time(r, p.ended);
	admin_put_text(r, p.error);
	admin_row_end(r);
}

/* ---- DETACH / ATTACH / RECOVER NODE -------------------------------------- */

static void detach_node(struct admin_res *r, const int64_t *args)
{
	int id, st;

	if (!node_arg(r, args[0]))
		return;
	id = (int)args[0];
	pthread_mutex_lock(&detach_lock);
	st = atomic_load(&node_get(id)->state);
	if (st != NODE_UP)
		admin_error(r, SQLSTATE_OBJECT_NOT_IN_STATE, "node %d is not up (it is %s)", id, node_state_name(st));
	else if (nodes_up_count() <= 1)
		admin_error(r, SQLSTATE_OBJECT_NOT_IN_STATE,
			    "node %d is the only node that is up: it cannot be detached", id);
	else
		node_set_state(id, NODE_DETACHED, "detached by an administrator");
	pthread_mutex_unlock(&detach_lock);
}

/* ---- SHOW PEERS ------------------------------------------------------------ */

static const struct admin_col peers_cols[] = {
	{ "name", ADMIN_TEXT },
	{ "host", ADMIN_TEXT },
	{ "port", ADMIN_INT4 },
	{ "status", ADMIN_TEXT },
	{ "last_heard_s", ADMIN_FLOAT8 },
	{ "boot", ADMIN_TEXT },
	{ "escalated", ADMIN_BOOL },
	{ "pausing_writes", ADMIN_BOOL },
};

static void show_peers(struct admin_res *r, const int64_t *args)
{
	struct hb_peer_info info[PGC_MAX_PEERS];
	int n = hb_peers_info(info, PGC_MAX_PEERS);

	(void)args;
	for (int i = 0; i < n; i++) {
		char boot[24];

		snprintf(boot, sizeof(boot), "%" PRIu64, info[i].boot);
		admin_row_begin(r);
		admin_put_text(r, info[i].name);
		admin_put_text(r, info[i].host);
		admin_put_int(r, info[i].port);
		admin_put_text(r, info[i].status);
		if (info[i].heard_ago < 0)
			admin_put_null(r);
		else
			admin_put_float(r, info[i].heard_ago);
		admin_put_text(r, boot);
		admin_put_bool(r, info[i].escalated);
		admin_put_bool(r, info[i].pausing_us);
		admin_row_end(r);
	}
}

/* ATTACH and RECOVER: START (ha.h) begins the work in the HA thread. */
static void start_ha(struct admin_res *r, int64_t arg, int (*start)(int, char *, size_t), const char *what,
		     const char *watch)
{
	char err[256] = "";

	if (!node_arg(r, arg))
		return;
	if (start((int)arg, err, sizeof(err)) < 0) {
		admin_error(r, SQLSTATE_OBJECT_NOT_IN_STATE, "cannot %s node %d: %s", what, (int)arg,
			    err[0] ? err : "refused");
		return;
	}
	admin_notice(r, "%s of node %d started; %s", what, (int)arg, watch);
}

static void attach_node(struct admin_res *r, const int64_t *args)
{
	start_ha(r, args[0], ha_attach_node, "attach", "SHOW NODES shows when it is up");
}

static void recover_node(struct admin_res *r, const int64_t *args)
{
	start_ha(r, args[0], ha_recover_node, "recover", "SHOW RECOVERY shows its progress");
}

static void detach_node_graceful(struct admin_res *r, const int64_t *args)
{
	start_ha(r, args[0], ha_detach_node_graceful, "graceful detach", "SHOW NODES shows when it is detached");
}

static void promote_node(struct admin_res *r, const int64_t *args)
{
	start_ha(r, args[0], ha_promote_node, "promote", "SHOW NODES shows when it is the primary");
}

#define COLS(a) a, (int)(sizeof(a) / sizeof(a[0]))

static const struct admin_cmd node_cmds[] = {
	{ "SHOW NODES", "SHOW NODES", "SHOW", COLS(nodes_cols), show_nodes },
	{ "SHOW POOL_NODES", "SHOW POOL_NODES", "SHOW", COLS(pool_nodes_cols), show_pool_nodes },
	{ "SHOW RECOVERY", "SHOW RECOVERY", "SHOW", COLS(recovery_cols), show_recovery },
	{ "SHOW PEERS", "SHOW PEERS", "SHOW", COLS(peers_cols), show_peers },
	{ "DETACH NODE %d", "DETACH NODE n", "DETACH NODE", NULL, 0, detach_node },
	{ "DETACH NODE %d GRACEFUL", "DETACH NODE n GRACEFUL", "DETACH NODE", NULL, 0, detach_node_graceful },
	{ "ATTACH NODE %d", "ATTACH NODE n", "ATTACH NODE", NULL, 0, attach_node },
	{ "RECOVER NODE %d", "RECOVER NODE n", "RECOVER NODE", NULL, 0, recover_node },
	{ "PROMOTE NODE %d", "PROMOTE NODE n", "PROMOTE NODE", NULL, 0, promote_node },
};

const struct admin_cmd_set admin_cmds_nodes = { node_cmds, sizeof(node_cmds) / sizeof(node_cmds[0]) };
