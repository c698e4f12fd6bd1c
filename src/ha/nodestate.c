/*
 * nodestate.c - node state changes and the state file (ha.h).
 *
 * A state lives in struct node (an atomic: the data path reads it without a
 * lock).  Changes are rare and serialised here by one mutex, which also
 * guards the state file and the per-node texts.  The file is rewritten
 * whole (temporary file, fsync, rename) on every change, so that a crash
 * leaves the old or the new version, never a mix.
 *
 * File format, one line per node (blank lines and '#' comments ignored):
 *   node <id> <host> <port> <state> <written_since 0|1> <changed_at> <generation>
 *   primary <id> <generation>        (PROMOTE NODE)
 * A line whose host and port do not match the configured node of that id
 * is ignored (the node list changed).
 *
 * Generations: every change of a node's state adds one to its generation;
 * peer instances (heartbeat.c) exchange them, and a higher generation wins
 * (node_adopt).  At equal generations a state other than up wins.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/rsess.h"
#include "pgchorus/worker.h"

struct nstate {
	char last_error[200];
	double changed_at;
	atomic_bool written_since;
	uint64_t gen;
};

static uv_mutex_t ns_lock;
static bool ns_ready;
static struct config *ns_cfg;
static struct nstate *ns;
static int ns_n;
static uint64_t pref_gen;  /* generation of the PROMOTE NODE choice */

static const char *const state_names[] = {
	[NODE_UP] = "up",
	[NODE_DOWN] = "down",
	[NODE_RECOVERING] = "recovering",
	[NODE_DETACHED] = "detached",
};

const char *node_state_name(int state)
{
	return state >= 0 && state <= NODE_DETACHED ? state_names[state] : "unknown";
}

static double now_seconds(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Write the state file (ns_lock held). */
static void ns_save(void)
{
	const char *path = ns_cfg ? ns_cfg->state_file : "";
	char tmp[4200];
	FILE *f;
	int fd;

	if (!path || !*path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		log_error("cannot write state file %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	fprintf(f, "# pgchorus node states (doc/failover.md); rewritten on every change\n");
	if (node_preferred() >= 0 || pref_gen > 0)
		fprintf(f, "primary %d %" PRIu64 "\n", node_preferred(), pref_gen);
	for (int i = 0; i < ns_n; i++) {
		struct node *n = node_get(i);

		fprintf(f, "node %d %s %d %s %d %.3f %" PRIu64 "\n", i, n->host, n->port,
			node_state_name(atomic_load(&n->state)), atomic_load(&ns[i].written_since) ? 1 : 0,
			ns[i].changed_at, ns[i].gen);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		log_error("cannot write state file %s: %s", tmp, strerror(errno));
		fclose(f);
		return;
	}
	fclose(f);
	if (rename(tmp, path) != 0)
		log_error("cannot rename %s to %s: %s", tmp, path, strerror(errno));
}

static int ns_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int lineno = 0;

	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read state file %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char host[512], state[32];
		int id, port, written = 0, k;
		double changed = 0;
		uint64_t gen = 0;
		struct node *n;

		lineno++;
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (sscanf(line, "primary %d %" SCNu64, &id, &gen) >= 1) {
			if (node_get(id))
				node_prefer(id);
			pref_gen = gen;
			continue;
		}
		k = sscanf(line, "node %d %511s %d %31s %d %lf %" SCNu64, &id, host, &port, state, &written, &changed,
			   &gen);
		if (k < 4) {
			snprintf(err, errlen, "%s:%d: malformed line", path, lineno);
			fclose(f);
			return -1;
		}
		n = node_get(id);
		if (!n || strcmp(n->host, host) != 0 || n->port != port) {
			log_warning("state file %s:%d: node %d %s:%d is not configured any more; ignored", path,
				    lineno, id, host, port);
			continue;
		}
		ns[id].gen = gen;
		if (strcmp(state, "up") == 0)
			continue;
		if (strcmp(state, "detached") == 0)
			atomic_store(&n->state, NODE_DETACHED);
		else if (strcmp(state, "down") == 0 || strcmp(state, "recovering") == 0)
			atomic_store(&n->state, NODE_DOWN);
		else {
			snprintf(err, errlen, "%s:%d: unknown state \"%s\"", path, lineno, state);
			fclose(f);
			return -1;
		}
		atomic_store(&ns[id].written_since, written != 0);
		ns[id].changed_at = changed;
		snprintf(ns[id].last_error, sizeof(ns[id].last_error), "%s in the state file at start-up", state);
		log_warning("node %d (%s:%d) stays %s (state file %s); recover or attach it", id, host, port,
			    node_state_name(atomic_load(&n->state)), path);
	}
	fclose(f);
	return 0;
}

int nodestate_init(const struct config *cfg, char *err, size_t errlen)
{
	ns_n = nodes_count();
	ns = calloc((size_t)ns_n, sizeof(*ns));
	if (!ns) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (uv_mutex_init(&ns_lock) != 0) {
		snprintf(err, errlen, "cannot create a mutex");
		return -1;
	}
	ns_ready = true;
	ns_cfg = config_ref((struct config *)cfg);
	if (*cfg->state_file && ns_load(cfg->state_file, err, errlen) < 0)
		return -1;
	return 0;
}

void nodestate_reload(const struct config *cfg)
{
	struct config *old;

	if (!ns_ready)
		return;
	uv_mutex_lock(&ns_lock);
	old = ns_cfg;
	ns_cfg = config_ref((struct config *)cfg);
	if (!old || strcmp(old->state_file, cfg->state_file) != 0)
		ns_save();
	uv_mutex_unlock(&ns_lock);
	if (old)
		config_unref(old);
}

void nodestate_shutdown(void)
{
	if (!ns_ready)
		return;
	uv_mutex_lock(&ns_lock);
	if (ns_cfg)
		config_unref(ns_cfg);
	ns_cfg = NULL;
	uv_mutex_unlock(&ns_lock);
}

struct config *nodestate_config(void)
{
	struct config *c;

	uv_mutex_lock(&ns_lock);
	c = ns_cfg ? config_ref(ns_cfg) : NULL;
	uv_mutex_unlock(&ns_lock);
	return c;
}

/* Every worker lets go of NODE (its sessions go on without it).  WAS_PRIMARY:
 * it was the primary (the failover barrier is raised first, rfail.c). */
static void tell_workers(int node, bool was_primary)
{
	workers_post_kind(INBOX_NODE_DOWN, (uint32_t)node, was_primary);
}

/* ns_lock held: the change is made; log, persist.  GEN: the generation a
 * peer gave it, 0 = a change made here (one more than the last). */
static void ns_changed(int id, int from, int to, const char *why, uint64_t gen)
{
	ns[id].gen = gen ? gen : ns[id].gen + 1;
	ns[id].changed_at = now_seconds();
	if (to != NODE_UP && why)
		snprintf(ns[id].last_error, sizeof(ns[id].last_error), "%s", why);
	if (to == NODE_UP)
		atomic_store(&ns[id].written_since, false);
	if (to == NODE_DOWN || to == NODE_DETACHED)
		log_warning("node %d: %s -> %s: %s", id, node_state_name(from), node_state_name(to), why ? why : "");
	else
		log_info("node %d: %s -> %s%s%s", id, node_state_name(from), node_state_name(to), why ? ": " : "",
			 why ? why : "");
	ns_save();
}

bool node_fail(int id, const char *why)
{
	struct node *n = node_get(id);
	int expected = NODE_UP;
	struct config *cfg;
	struct hook_args a;
	bool was_primary;

	if (!n || !ns_ready)
		return false;
	uv_mutex_lock(&ns_lock);
	was_primary = node_primary() == id;
	if (was_primary)
		rfail_barrier_add(pgc_runtime.n_workers); /* before anyone can see the new primary */
	if (!atomic_compare_exchange_strong(&n->state, &expected, NODE_DOWN)) {
		if (was_primary)
			rfail_barrier_add(-pgc_runtime.n_workers);
		uv_mutex_unlock(&ns_lock);
		return false;
	}
	ns_changed(id, NODE_UP, NODE_DOWN, why, 0);
	cfg = ns_cfg ? config_ref(ns_cfg) : NULL;
	uv_mutex_unlock(&ns_lock);
	tell_workers(id, was_primary);
	hb_changed();
	if (node_primary() < 0)
		log_error("no node is up any more");
	if (cfg) {
		if (*cfg->failover_command) {
			hook_args_for(cfg, id, &a);
			hook_run_async("failover_command", cfg->failover_command, &a, cfg->hook_timeout);
		}
		config_unref(cfg);
	}
	return true;
}

/* ns_lock held: ID becomes ST; GEN as ns_changed().  Returns its former state. */
static int ns_set(int id, enum node_state st, const char *why, uint64_t gen, bool *was_primary)
{
	struct node *n = node_get(id);
	int from;

	*was_primary = node_primary() == id && st != NODE_UP;
	if (*was_primary)
		rfail_barrier_add(pgc_runtime.n_workers);
	from = atomic_exchange(&n->state, (int)st);
	if (*was_primary && from != NODE_UP) {
		rfail_barrier_add(-pgc_runtime.n_workers);
		*was_primary = false;
	}
	if (from != (int)st || gen > ns[id].gen)
		ns_changed(id, from, (int)st, why, gen);
	return from;
}

void node_set_state(int id, enum node_state st, const char *why)
{
	bool was_primary;
	int from;

	if (!node_get(id) || !ns_ready)
		return;
	uv_mutex_lock(&ns_lock);
	from = ns_set(id, st, why, 0, &was_primary);
	uv_mutex_unlock(&ns_lock);
	if (from == NODE_UP && st != NODE_UP)
		tell_workers(id, was_primary);
	if (from != (int)st)
		hb_changed();
}

bool node_adopt(int id, enum node_state st, uint64_t gen, const char *from_peer)
{
	char why[160];
	bool was_primary, newer;
	int from = -1;

	if (!node_get(id) || !ns_ready || st < NODE_UP || st > NODE_DETACHED)
		return false;
	uv_mutex_lock(&ns_lock);
	newer = gen > ns[id].gen ||
		(gen == ns[id].gen && atomic_load(&node_get(id)->state) == NODE_UP && st != NODE_UP);
	if (newer) {
		snprintf(why, sizeof(why), "%s by peer %s (generation %" PRIu64 ")", node_state_name(st),
			 from_peer, gen);
		from = ns_set(id, st, why, gen, &was_primary);
	}
	uv_mutex_unlock(&ns_lock);
	if (from == NODE_UP && st != NODE_UP)
		tell_workers(id, was_primary);
	return newer && from != (int)st;
}

int nodes_view(struct node_view *out, int max, int *preferred, uint64_t *preferred_gen)
{
	int n;

	if (!ns_ready)
		return 0;
	uv_mutex_lock(&ns_lock);
	n = ns_n < max ? ns_n : max;
	for (int i = 0; i < n; i++) {
		out[i].state = atomic_load(&node_get(i)->state);
		out[i].gen = ns[i].gen;
		out[i].written = atomic_load(&ns[i].written_since);
	}
	*preferred = node_preferred();
	*preferred_gen = pref_gen;
	uv_mutex_unlock(&ns_lock);
	return n;
}

void node_last_error(int id, char *out, size_t n)
{
	if (!n)
		return;
	out[0] = '\0';
	if (!ns_ready || id < 0 || id >= ns_n)
		return;
	uv_mutex_lock(&ns_lock);
	snprintf(out, n, "%s", ns[id].last_error);
	uv_mutex_unlock(&ns_lock);
}

double node_changed_at(int id)
{
	double t;

	if (!ns_ready || id < 0 || id >= ns_n)
		return 0;
	uv_mutex_lock(&ns_lock);
	t = ns[id].changed_at;
	uv_mutex_unlock(&ns_lock);
	return t;
}

void nodes_note_write(void)
{
	bool flipped = false;

	if (!ns_ready)
		return;
	for (int i = 0; i < ns_n; i++) {
		struct node *n = node_get(i);

		if (atomic_load(&n->state) != NODE_UP && !atomic_load(&ns[i].written_since)) {
			atomic_store(&ns[i].written_since, true);
			flipped = true;
		}
	}
	if (flipped) {
		uv_mutex_lock(&ns_lock);
		ns_save();
		uv_mutex_unlock(&ns_lock);
		hb_changed();
	}
}

bool node_written_since(int id)
{
	return ns_ready && id >= 0 && id < ns_n && atomic_load(&ns[id].written_since);
}

void node_set_preferred(int id, const char *why)
{
	if (!ns_ready)
		return;
	uv_mutex_lock(&ns_lock);
	node_prefer(id);
	pref_gen++;
	log_info("node %d is the primary: %s", id, why);
	ns_save();
	uv_mutex_unlock(&ns_lock);
	hb_changed();
}

bool node_adopt_preferred(int id, uint64_t gen, const char *from_peer)
{
	bool newer;

	if (!ns_ready || (id >= 0 && !node_get(id)))
		return false;
	uv_mutex_lock(&ns_lock);
	newer = gen > pref_gen;
	if (newer) {
		node_prefer(id);
		pref_gen = gen;
		if (id >= 0)
			log_info("node %d is the primary: promoted by peer %s (generation %" PRIu64 ")", id,
				 from_peer, gen);
		ns_save();
	}
	uv_mutex_unlock(&ns_lock);
	return newer;
}

int nodes_up_count(void)
{
	int up = 0;

	for (int i = 0; i < nodes_count(); i++)
		up += atomic_load(&node_get(i)->state) == NODE_UP;
	return up;
}
