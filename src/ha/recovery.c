/*
 * recovery.c - the HA thread (ha.h): online recovery of a node and
 * failback attach, one job at a time.
 *
 * The HA thread may block (external programs, blocking libpq with
 * deadlines); it never touches worker data: it changes node states
 * (node_set_state), pauses and resumes writes (rgate.c) and runs hooks.
 * A request (ha_recover_node, ha_attach_node: any thread) is checked,
 * queued under rc_lock and picked up by the thread.
 *
 * Online recovery of node N, copied from the primary P (lowest live id):
 *   stage 1, writes go on: recovery_1st_stage_command, or the built-in
 *     (basebackup.c: pg_basebackup, start as a standby of P); then wait
 *     until N's replay position is within CATCHUP_SLACK of P's WAL position.
 *   stage 2: pause writes, wait until no write transaction is open, read
 *     P's WAL position, wait until N has replayed it, promote N
 *     (recovery_2nd_stage_command, or pg_promote), N up, resume writes.
 *     Writes wait at most recovery_pause_timeout for the open write
 *     transactions, as long again for the replay, then the promotion
 *     (hook_timeout for recovery_2nd_stage_command, else PROMOTE_WAIT).
 *   A failure at any point resumes writes and leaves N down.
 * Attach (failback) of N, which missed no write: N answers and is not a
 *   standby; pause writes, wait for open write transactions, N up, resume.
 *
 * libpq connections use resolver_user / resolver_password /
 * resolver_database and server_tls; every connect and query has a
 * deadline and gives up when pgchorus stops.
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/worker.h"
#include "basebackup.h"

/* Stage 1 ends when the standby's replay is this close to the primary's WAL. */
#define CATCHUP_SLACK (4 * 1024 * 1024)
/* Seconds between progress lines in the log. */
#define PROGRESS_LOG_PERIOD 5.0
/* A connection to a node: connect_timeout, and the deadline of one connect. */
#define CONNECT_SECONDS 10
/* Seconds a node may take to leave recovery once promoted. */
#define PROMOTE_WAIT 60.0
/* Seconds for one ordinary query (LSN, pg_is_in_recovery...). */
#define QUERY_SECONDS 30.0

enum job_kind {
	JOB_RECOVER,
	JOB_ATTACH,
	JOB_PROMOTE,
	JOB_DETACH,
};

static uv_thread_t ha_thread;
static uv_mutex_t rc_lock;
static uv_cond_t rc_cond;
static atomic_bool rc_started;
static atomic_bool rc_stop;

/* rc_lock guards the block below. */
static struct config *rc_cfg;
static bool job_busy;      /* queued or running */
static bool job_queued;    /* waiting for the thread */
static enum job_kind job_kind;
static int job_node = -1;
static struct recovery_progress prog = { .node = -1, .lag_bytes = -1 };
static double prog_logged; /* ha_mono_now() of the last progress line */

static double wall_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

bool recovery_stopping(void)
{
	return atomic_load(&rc_stop);
}

/* Sleep MS milliseconds (the HA thread). */
static void sleep_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* ---- progress ---- */

static void prog_phase(const char *phase)
{
	uv_mutex_lock(&rc_lock);
	snprintf(prog.phase, sizeof(prog.phase), "%s", phase);
	uv_mutex_unlock(&rc_lock);
}

/* Log the progress if the last progress line is PROGRESS_LOG_PERIOD old. */
static void prog_log(void)
{
	struct recovery_progress p;
	double now = ha_mono_now();

	uv_mutex_lock(&rc_lock);
	if (now - prog_logged < PROGRESS_LOG_PERIOD) {
		uv_mutex_unlock(&rc_lock);
		return;
	}
	prog_logged = now;
	p = prog;
	uv_mutex_unlock(&rc_lock);
	if (strcmp(p.phase, "basebackup") == 0 && p.bytes_total)
		log_info("recovery of node %d: copied %.1f of %.1f MB (%.0f%%), %.0f s", p.node,
			 (double)p.bytes_copied / 1048576.0, (double)p.bytes_total / 1048576.0,
			 100.0 * (double)p.bytes_copied / (double)p.bytes_total, wall_now() - p.started);
	else if (p.lag_bytes >= 0)
		log_info("recovery of node %d: %s, %" PRId64 " kB behind the primary, %.0f s", p.node, p.phase,
			 p.lag_bytes / 1024, wall_now() - p.started);
	else
		log_info("recovery of node %d: %s, %.0f s", p.node, p.phase, wall_now() - p.started);
}

void recovery_note_copy(uint64_t copied, uint64_t total)
{
	uv_mutex_lock(&rc_lock);
	prog.bytes_copied = copied;
	prog.bytes_total = total;
	uv_mutex_unlock(&rc_lock);
	prog_log();
}

static void prog_lag(int64_t lag)
{
	uv_mutex_lock(&rc_lock);
	prog.lag_bytes = lag;
	uv_mutex_unlock(&rc_lock);
}

/* ---- libpq with deadlines ---- */

/* ERR = MSG without its trailing newline. */
static void set_pq_error(char *err, size_t errlen, const char *what, const char *msg)
{
	size_t l;

	snprintf(err, errlen, "%s: %s", what, msg && *msg ? msg : "unknown error");
	l = strlen(err);
	while (l && (err[l - 1] == '\n' || err[l - 1] == ' '))
		err[--l] = '\0';
}

/* Wait until SOCK is ready for EVENTS, DEADLINE passes or pgchorus stops: 1, 0 (give up), -1 (error). */
static int wait_socket(int sock, short events, double deadline)
{
	for (;;) {
		struct pollfd p = { .fd = sock, .events = events };
		int r;

		if (recovery_stopping() || ha_mono_now() > deadline)
			return 0;
		r = poll(&p, 1, 100);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static const char *give_up_reason(void)
{
	return recovery_stopping() ? "pgchorus is stopping" : "timed out";
}

/* A libpq keyword and its value, unless the value is unset (libpq stops at the first NULL). */
static void add_kv(const char **keys, const char **vals, int *k, const char *key, const char *val)
{
	if (!val || !*val)
		return;
	keys[*k] = key;
	vals[*k] = val;
	(*k)++;
}

/* Connect to NODE of CFG.  NULL with ERR. */
static PGconn *pq_open(const struct config *cfg, int node, double deadline, char *err, size_t errlen)
{
	const struct cfg_node *n = &cfg->nodes[node];
	const char *keys[16], *vals[16];
	char port[16], what[64], ctimeout[16];
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *c;
	int k = 0;

	snprintf(what, sizeof(what), "connection to node %d", node);
	snprintf(port, sizeof(port), "%d", n->port);
	snprintf(ctimeout, sizeof(ctimeout), "%d", CONNECT_SECONDS);
	add_kv(keys, vals, &k, "host", n->host);
	add_kv(keys, vals, &k, "port", port);
	add_kv(keys, vals, &k, "user", cfg->resolver_user);
	add_kv(keys, vals, &k, "password", cfg->resolver_password);
	add_kv(keys, vals, &k, "dbname", cfg->resolver_database);
	add_kv(keys, vals, &k, "sslmode", config_server_tls_name(cfg->server_tls));
	add_kv(keys, vals, &k, "sslrootcert", cfg->server_tls_ca_file);
	add_kv(keys, vals, &k, "sslcert", cfg->server_tls_cert_file);
	add_kv(keys, vals, &k, "sslkey", cfg->server_tls_key_file);
	add_kv(keys, vals, &k, "application_name", "pgchorus recovery");
	add_kv(keys, vals, &k, "connect_timeout", ctimeout);
	keys[k] = NULL;
	vals[k] = NULL;
	if (ha_mono_now() + CONNECT_SECONDS < deadline)
		deadline = ha_mono_now() + CONNECT_SECONDS;
	c = PQconnectStartParams(keys, vals, 0);
	if (!c) {
		snprintf(err, errlen, "%s: out of memory", what);
		return NULL;
	}
	for (;;) {
		int r;

		if (PQstatus(c) == CONNECTION_BAD || st == PGRES_POLLING_FAILED) {
			set_pq_error(err, errlen, what, PQerrorMessage(c));
			break;
		}
		if (st == PGRES_POLLING_OK)
			return c;
		r = wait_socket(PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
		if (r <= 0) {
			snprintf(err, errlen, "%s: %s", what, r == 0 ? give_up_reason() : strerror(errno));
			break;
		}
		st = PQconnectPoll(c);
	}
	PQfinish(c);
	return NULL;
}

/*
 * Run SQL on C; the first column of the first row into OUT (N bytes; ""
 * when NULL or no row).  0, or -1 with ERR (C may then be unusable: close it).
 */
static int pq_value(PGconn *c, const char *sql, double deadline, char *out, size_t n, char *err, size_t errlen)
{
	PGresult *res = NULL, *r;
	int rc = -1;

	out[0] = '\0';
	if (!PQsendQuery(c, sql)) {
		set_pq_error(err, errlen, sql, PQerrorMessage(c));
		return -1;
	}
	for (;;) {
		for (;;) {
			int f = PQflush(c), w;

			if (f < 0) {
				set_pq_error(err, errlen, sql, PQerrorMessage(c));
				PQclear(res);
				return -1;
			}
			if (f == 0 && !PQisBusy(c))
				break;
			w = wait_socket(PQsocket(c), f ? POLLIN | POLLOUT : POLLIN, deadline);
			if (w <= 0) {
				PGcancel *cn = PQgetCancel(c);
				char ebuf[256];

				if (cn) {
					PQcancel(cn, ebuf, sizeof(ebuf));
					PQfreeCancel(cn);
				}
				snprintf(err, errlen, "%s: %s", sql, w == 0 ? give_up_reason() : strerror(errno));
				PQclear(res);
				return -1;
			}
			if (!PQconsumeInput(c)) {
				set_pq_error(err, errlen, sql, PQerrorMessage(c));
				PQclear(res);
				return -1;
			}
		}
		r = PQgetResult(c);
		if (!r)
			break;
		/* keep the first result, or the first error */
		if (!res || (PQresultStatus(res) == PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_TUPLES_OK)) {
			PQclear(res);
			res = r;
		} else {
			PQclear(r);
		}
	}
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
		if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
			snprintf(out, n, "%s", PQgetvalue(res, 0, 0));
		rc = 0;
	} else {
		set_pq_error(err, errlen, sql, res ? PQresultErrorMessage(res) : PQerrorMessage(c));
	}
	PQclear(res);
	return rc;
}

/* "16/B374D848" -> bytes.  false if TEXT is not an LSN. */
static bool parse_lsn(const char *text, uint64_t *out)
{
	unsigned hi, lo;
	char tail;

	if (sscanf(text, "%X/%X%c", &hi, &lo, &tail) != 2)
		return false;
	*out = ((uint64_t)hi << 32) | lo;
	return true;
}

/* An LSN from SQL on *C (connected to NODE on demand; closed on error).  0, 1 (NULL), or -1 with ERR. */
static int node_lsn(const struct config *cfg, int node, PGconn **c, const char *sql, double deadline,
		    uint64_t *out, char *err, size_t errlen)
{
	char v[64];
	double qdl = ha_deadline(QUERY_SECONDS);

	if (qdl > deadline)
		qdl = deadline;
	if (!*c && !(*c = pq_open(cfg, node, qdl, err, errlen)))
		return -1;
	if (pq_value(*c, sql, qdl, v, sizeof(v), err, errlen) < 0) {
		PQfinish(*c);
		*c = NULL;
		return -1;
	}
	if (!v[0])
		return 1;
	if (!parse_lsn(v, out)) {
		snprintf(err, errlen, "node %d: %s returned \"%s\"", node, sql, v);
		return -1;
	}
	return 0;
}

/* One value from SQL on a fresh or kept connection *C to NODE.  0, or -1 with ERR. */
static int node_value(const struct config *cfg, int node, PGconn **c, const char *sql, double qdl, char *out,
		      size_t n, char *err, size_t errlen)
{
	if (!*c && !(*c = pq_open(cfg, node, qdl, err, errlen)))
		return -1;
	if (pq_value(*c, sql, qdl, out, n, err, errlen) < 0) {
		PQfinish(*c);
		*c = NULL;
		return -1;
	}
	return 0;
}

/* ---- the pause of writes ---- */

/*
 * Resume writes paused by this job.  Not once the workers have ended
 * (recovery_stop() comes after workers_join()): nobody is left to wake,
 * and their inboxes are gone.
 */
/* The HA thread holds a pause of the peers' writes (one job at a time). */
static bool peers_paused;

static void resume_writes(bool *paused)
{
	if (!*paused)
		return;
	*paused = false;
	hb_resume_peers(&peers_paused); /* after the node states changed: their heartbeat carries both */
	if (workers_running_count() == 0) {
		log_info("the pause of writes is not lifted: the workers have ended");
		return;
	}
	repl_resume_writes();
}

/*
 * Pause writes (*PAUSED set) and wait until no write transaction is open,
 * at most recovery_pause_timeout.  0, or -1 with ERR (writes still paused:
 * the caller resumes them).
 */
static int pause_and_drain(const struct config *cfg, bool *paused, char *err, size_t errlen)
{
	double deadline = ha_deadline(cfg->recovery_pause_timeout);
	int open;

	repl_pause_writes();
	*paused = true;
	while ((open = repl_open_writers()) > 0) {
		if (recovery_stopping()) {
			snprintf(err, errlen, "pgchorus is stopping");
			return -1;
		}
		if (ha_mono_now() > deadline) {
			snprintf(err, errlen,
				 "%d write transaction(s) still open after recovery_pause_timeout (%g s); writes resumed",
				 open, cfg->recovery_pause_timeout);
			return -1;
		}
		sleep_ms(2);
	}
	/* the peer instances pause theirs too (heartbeat.c) */
	return hb_pause_peers(&peers_paused, deadline, err, errlen);
}

/* ---- online recovery ---- */

struct rjob {
	struct config *cfg;
	int node;
	int primary;
	PGconn *pconn; /* the primary */
	PGconn *sconn; /* the node, a standby until promoted */
	bool paused;
	char err[256];
};

/* Stage 1, the copy: the hook or the built-in. */
static int stage1_copy(struct rjob *j, double deadline)
{
	const struct config *cfg = j->cfg;
	struct hook_args a;
	int rc;

	if (!*cfg->recovery_1st_stage_command)
		return bb_stage1(cfg, j->node, j->primary, deadline, j->err, sizeof(j->err));
	hook_args_for(cfg, j->node, &a);
	log_info("recovery of node %d: running recovery_1st_stage_command", j->node);
	rc = hook_run_wait("recovery_1st_stage_command", cfg->recovery_1st_stage_command, &a, cfg->recovery_timeout);
	if (recovery_stopping()) {
		snprintf(j->err, sizeof(j->err), "pgchorus is stopping");
		return -1;
	}
	if (rc != 0) {
		if (rc < 0)
			snprintf(j->err, sizeof(j->err),
				 "recovery_1st_stage_command could not run or was killed (timeout %g s)",
				 cfg->recovery_timeout);
		else
			snprintf(j->err, sizeof(j->err), "recovery_1st_stage_command failed (exit status %d)", rc);
		return -1;
	}
	return 0;
}

/* The node is a standby of the primary: in recovery, same system identifier. */
static int check_standby(struct rjob *j, double deadline)
{
	const char *sysid_sql = "SELECT system_identifier::text FROM pg_control_system()";
	char v[64], psys[64], ssys[64];

	/* it may still be starting (a hook): retry the connection until the deadline */
	for (;;) {
		double qdl = ha_deadline(QUERY_SECONDS);

		if (qdl > deadline)
			qdl = deadline;
		if (node_value(j->cfg, j->node, &j->sconn, "SELECT pg_is_in_recovery()", qdl, v, sizeof(v), j->err,
			       sizeof(j->err)) == 0)
			break;
		if (recovery_stopping() || ha_mono_now() > deadline)
			return -1;
		prog_log();
		sleep_ms(500);
	}
	if (strcmp(v, "t") != 0) {
		snprintf(j->err, sizeof(j->err),
			 "node %d is not a standby after the first stage (pg_is_in_recovery() is false)", j->node);
		return -1;
	}
	if (node_value(j->cfg, j->node, &j->sconn, sysid_sql, ha_deadline(QUERY_SECONDS), ssys, sizeof(ssys), j->err,
		       sizeof(j->err)) < 0 ||
	    node_value(j->cfg, j->primary, &j->pconn, sysid_sql, ha_deadline(QUERY_SECONDS), psys, sizeof(psys),
		       j->err, sizeof(j->err)) < 0)
		return -1;
	if (strcmp(ssys, psys) != 0) {
		snprintf(j->err, sizeof(j->err),
			 "node %d (system identifier %s) is not a copy of the primary, node %d (%s)", j->node, ssys,
			 j->primary, psys);
		return -1;
	}
	return 0;
}

/* The primary is still the one the node was copied from. */
static int check_primary(struct rjob *j)
{
	int p = node_primary();

	if (p == j->primary)
		return 0;
	if (p < 0)
		snprintf(j->err, sizeof(j->err), "no node is up any more");
	else
		snprintf(j->err, sizeof(j->err), "the primary changed from node %d to node %d during the recovery",
			 j->primary, p);
	return -1;
}

/* Stage 1, the catch-up: the node's replay within CATCHUP_SLACK of the primary's WAL. */
static int stage1_catchup(struct rjob *j, double deadline)
{
	uint64_t p_lsn = 0, s_lsn = 0;
	char last[128] = "";
	int rc;

	prog_phase("catchup");
	if (check_standby(j, deadline) < 0)
		return -1;
	for (;;) {
		if (recovery_stopping() || ha_mono_now() > deadline) {
			snprintf(j->err, sizeof(j->err),
				 "node %d did not catch up with the primary: %s (recovery_timeout %g s)%s%.100s", j->node,
				 give_up_reason(), j->cfg->recovery_timeout, last[0] ? "; last error: " : "", last);
			return -1;
		}
		if (check_primary(j) < 0)
			return -1;
		if (node_lsn(j->cfg, j->primary, &j->pconn, "SELECT pg_current_wal_lsn()", deadline, &p_lsn, j->err,
			     sizeof(j->err)) != 0 ||
		    (rc = node_lsn(j->cfg, j->node, &j->sconn, "SELECT pg_last_wal_replay_lsn()", deadline, &s_lsn,
				   j->err, sizeof(j->err))) < 0) {
			/* a lost connection is retried until the deadline */
			log_warning("recovery of node %d: %s", j->node, j->err);
			snprintf(last, sizeof(last), "%.120s", j->err);
			sleep_ms(500);
			continue;
		}
		if (rc == 0) {
			int64_t lag = p_lsn > s_lsn ? (int64_t)(p_lsn - s_lsn) : 0;

			prog_lag(lag);
			if (lag <= CATCHUP_SLACK)
				return 0;
		}
		prog_log();
		sleep_ms(200);
	}
}

/* Where the write pause of stage 2 went, in ms. */
struct pause_times {
	double drain;   /* open write transactions ending */
	double replay;  /* the node replaying the rest of the primary's WAL */
	double promote; /* promotion */
	double total;
};

/* Stage 2, writes paused: the node replays all the primary has, is promoted and up. */
static int stage2(struct rjob *j, struct pause_times *pt)
{
	const struct config *cfg = j->cfg;
	double t0 = ha_mono_now(), t1, t2, deadline;
	uint64_t target = 0, replay = 0;
	char v[16];
	int rc;

	prog_phase("pause");
	if (pause_and_drain(cfg, &j->paused, j->err, sizeof(j->err)) < 0 || check_primary(j) < 0)
		return -1;
	t1 = ha_mono_now();
	deadline = ha_deadline(cfg->recovery_pause_timeout);
	if (node_lsn(cfg, j->primary, &j->pconn, "SELECT pg_current_wal_lsn()", deadline, &target, j->err,
		     sizeof(j->err)) != 0)
		return -1;
	for (;;) {
		rc = node_lsn(cfg, j->node, &j->sconn, "SELECT pg_last_wal_replay_lsn()", deadline, &replay, j->err,
			      sizeof(j->err));
		if (rc < 0)
			return -1;
		if (rc == 0) {
			prog_lag(target > replay ? (int64_t)(target - replay) : 0);
			if (replay >= target)
				break;
		}
		if (recovery_stopping() || ha_mono_now() > deadline) {
			snprintf(j->err, sizeof(j->err),
				 "node %d did not replay the primary's WAL up to %X/%X with writes paused: %s "
				 "(recovery_pause_timeout %g s)",
				 j->node, (unsigned)(target >> 32), (unsigned)target, give_up_reason(),
				 cfg->recovery_pause_timeout);
			return -1;
		}
		sleep_ms(2);
	}

	t2 = ha_mono_now();
	prog_phase("promote");
	if (*cfg->recovery_2nd_stage_command) {
		struct hook_args a;

		hook_args_for(cfg, j->node, &a);
		rc = hook_run_wait("recovery_2nd_stage_command", cfg->recovery_2nd_stage_command, &a, cfg->hook_timeout);
		if (rc != 0) {
			snprintf(j->err, sizeof(j->err), "recovery_2nd_stage_command %s (%d)",
				 rc < 0 ? "could not run or was killed" : "failed with exit status", rc);
			return -1;
		}
	} else {
		/*
		 * Not pg_promote(true, N): it looks at the end of recovery every
		 * 100 ms, which would add up to 100 ms to the pause; we poll below.
		 */
		if (node_value(cfg, j->node, &j->sconn, "SELECT pg_promote(false)", ha_deadline(QUERY_SECONDS), v,
			       sizeof(v), j->err, sizeof(j->err)) < 0)
			return -1;
		if (strcmp(v, "t") != 0) {
			snprintf(j->err, sizeof(j->err), "node %d: pg_promote() failed", j->node);
			return -1;
		}
	}
	/* out of recovery: writable */
	deadline = ha_deadline(PROMOTE_WAIT);
	for (;;) {
		if (node_value(cfg, j->node, &j->sconn, "SELECT pg_is_in_recovery()", deadline, v, sizeof(v), j->err,
			       sizeof(j->err)) < 0)
			return -1;
		if (strcmp(v, "f") == 0)
			break;
		if (recovery_stopping() || ha_mono_now() > deadline) {
			snprintf(j->err, sizeof(j->err), "node %d is still in recovery after its promotion: %s", j->node,
				 give_up_reason());
			return -1;
		}
		sleep_ms(2);
	}
	node_set_state(j->node, NODE_UP, "recovered online");
	resume_writes(&j->paused);
	pt->total = (ha_mono_now() - t0) * 1000.0;
	pt->drain = (t1 - t0) * 1000.0;
	pt->replay = (t2 - t1) * 1000.0;
	pt->promote = pt->total - pt->drain - pt->replay;
	return 0;
}

static void job_recover(struct config *cfg, int n)
{
	struct rjob j = { .cfg = cfg, .node = n, .primary = node_primary() };
	double started = ha_mono_now(), deadline = ha_deadline(cfg->recovery_timeout);
	struct pause_times pt = { 0 };
	struct recovery_progress p;
	char why[300];

	log_info("recovery of node %d (%s:%d) started, copied from node %d, %s first stage", n, cfg->nodes[n].host,
		 cfg->nodes[n].port, j.primary, *cfg->recovery_1st_stage_command ? "recovery_1st_stage_command" : "built-in");
	if (j.primary < 0 || j.primary == n) {
		snprintf(j.err, sizeof(j.err), "no node is up to copy node %d from", n);
		goto failed;
	}
	prog_phase("basebackup");
	if (stage1_copy(&j, deadline) < 0 || stage1_catchup(&j, deadline) < 0)
		goto failed;
	log_info("recovery of node %d: caught up with the primary after %.1f s; pausing writes", n,
		 ha_mono_now() - started);
	if (stage2(&j, &pt) < 0)
		goto failed;

	uv_mutex_lock(&rc_lock);
	snprintf(prog.phase, sizeof(prog.phase), "done");
	prog.pause_ms = pt.total;
	prog.lag_bytes = 0;
	prog.ended = wall_now();
	p = prog;
	uv_mutex_unlock(&rc_lock);
	log_info("recovery of node %d done: %.1f MB copied, %.1f s, writes paused %.1f ms (open write transactions "
		 "%.1f ms, replay %.1f ms, promotion %.1f ms)",
		 n, (double)p.bytes_copied / 1048576.0, p.ended - p.started, pt.total, pt.drain, pt.replay, pt.promote);
	PQfinish(j.pconn);
	PQfinish(j.sconn);
	if (*cfg->failback_command) {
		struct hook_args a;

		hook_args_for(cfg, n, &a);
		hook_run_async("failback_command", cfg->failback_command, &a, cfg->hook_timeout);
	}
	if (!*cfg->recovery_1st_stage_command)
		bb_remove_old(cfg, n);
	return;

failed:
	resume_writes(&j.paused);
	PQfinish(j.pconn);
	PQfinish(j.sconn);
	snprintf(why, sizeof(why), "recovery failed: %s", j.err);
	node_set_state(n, NODE_DOWN, why);
	uv_mutex_lock(&rc_lock);
	snprintf(prog.phase, sizeof(prog.phase), "failed");
	snprintf(prog.error, sizeof(prog.error), "%s", j.err);
	prog.ended = wall_now();
	uv_mutex_unlock(&rc_lock);
	log_error("recovery of node %d failed after %.1f s: %s", n, ha_mono_now() - started, j.err);
}

/* ---- failback attach ---- */

static void job_attach(struct config *cfg, int n)
{
	double t0, qdl = ha_deadline(QUERY_SECONDS);
	PGconn *c = NULL;
	bool paused = false;
	char v[16], err[512];

	log_info("attach of node %d (%s:%d) started", n, cfg->nodes[n].host, cfg->nodes[n].port);
	if (node_value(cfg, n, &c, "SELECT pg_is_in_recovery()", qdl, v, sizeof(v), err, sizeof(err)) < 0)
		goto failed;
	PQfinish(c);
	c = NULL;
	if (strcmp(v, "f") != 0) {
		snprintf(err, sizeof(err), "node %d is in recovery (a standby): use RECOVER NODE", n);
		goto failed;
	}
	t0 = ha_mono_now();
	if (pause_and_drain(cfg, &paused, err, sizeof(err)) < 0)
		goto failed;
	/* a write may have committed between the request and the pause, here or in a peer */
	if (node_written_since(n) || hb_peers_wrote(n)) {
		snprintf(err, sizeof(err), "node %d missed writes since it was detached; use RECOVER NODE", n);
		goto failed;
	}
	{
		int st = atomic_load(&node_get(n)->state);

		if (st == NODE_UP || st == NODE_RECOVERING) {
			snprintf(err, sizeof(err), "node %d is %s now", n, node_state_name(st));
			goto failed;
		}
	}
	node_set_state(n, NODE_UP, "attached");
	resume_writes(&paused);
	log_info("attach of node %d done: writes paused %.1f ms", n, (ha_mono_now() - t0) * 1000.0);
	if (*cfg->failback_command) {
		struct hook_args a;

		hook_args_for(cfg, n, &a);
		hook_run_async("failback_command", cfg->failback_command, &a, cfg->hook_timeout);
	}
	return;

failed:
	resume_writes(&paused);
	PQfinish(c);
	log_error("attach of node %d failed (it stays %s): %s", n, node_state_name(atomic_load(&node_get(n)->state)),
		  err);
}

/* ---- promote ---- */

static void job_promote(struct config *cfg, int n)
{
	bool paused = false;
	char err[512];
	double t0 = ha_mono_now();

	log_info("promotion of node %d (%s:%d) to primary started", n, cfg->nodes[n].host, cfg->nodes[n].port);
	if (pause_and_drain(cfg, &paused, err, sizeof(err)) < 0)
		goto failed;
	if (atomic_load(&node_get(n)->state) != NODE_UP) {
		snprintf(err, sizeof(err), "node %d is %s now", n, node_state_name(atomic_load(&node_get(n)->state)));
		goto failed;
	}
	/* No write transaction is open: nothing runs behind the old primary. */
	node_set_preferred(n, "promoted by an administrator");
	resume_writes(&paused);
	log_info("promotion of node %d done: writes paused %.1f ms", n, (ha_mono_now() - t0) * 1000.0);
	return;

failed:
	resume_writes(&paused);
	log_error("promotion of node %d failed: %s", n, err);
}

/* ---- graceful detach ---- */

static void job_detach(struct config *cfg, int n)
{
	bool paused = false;
	char err[512];
	double t0 = ha_mono_now();

	log_info("graceful detach of node %d (%s:%d) started", n, cfg->nodes[n].host, cfg->nodes[n].port);
	if (pause_and_drain(cfg, &paused, err, sizeof(err)) < 0)
		goto failed;
	/* no write transaction is open here or in a live peer: none loses the node midway */
	node_set_state(n, NODE_DETACHED, "detached gracefully by an administrator");
	resume_writes(&paused);
	log_info("graceful detach of node %d done: writes paused %.1f ms", n, (ha_mono_now() - t0) * 1000.0);
	return;

failed:
	resume_writes(&paused);
	log_error("graceful detach of node %d failed (it stays %s): %s", n,
		  node_state_name(atomic_load(&node_get(n)->state)), err);
}

/* ---- the thread and the requests ---- */

static void ha_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct config *cfg;
		enum job_kind kind;
		int n;

		uv_mutex_lock(&rc_lock);
		while (!job_queued && !atomic_load(&rc_stop))
			uv_cond_wait(&rc_cond, &rc_lock);
		if (atomic_load(&rc_stop)) {
			uv_mutex_unlock(&rc_lock);
			break;
		}
		job_queued = false;
		kind = job_kind;
		n = job_node;
		cfg = config_ref(rc_cfg);
		uv_mutex_unlock(&rc_lock);

		if (kind == JOB_RECOVER)
			job_recover(cfg, n);
		else if (kind == JOB_PROMOTE)
			job_promote(cfg, n);
		else if (kind == JOB_DETACH)
			job_detach(cfg, n);
		else
			job_attach(cfg, n);
		config_unref(cfg);

		uv_mutex_lock(&rc_lock);
		job_busy = false;
		if (kind == JOB_RECOVER)
			prog.running = false;
		uv_mutex_unlock(&rc_lock);
	}
}

int recovery_init(const struct config *cfg, char *err, size_t errlen)
{
	if (rc_started) {
		snprintf(err, errlen, "the HA thread runs already");
		return -1;
	}
	if (uv_mutex_init(&rc_lock) != 0 || uv_cond_init(&rc_cond) != 0) {
		snprintf(err, errlen, "cannot create the HA thread's mutex");
		return -1;
	}
	atomic_store(&rc_stop, false);
	rc_cfg = config_ref((struct config *)cfg);
	if (uv_thread_create(&ha_thread, ha_main, NULL) != 0) {
		config_unref(rc_cfg);
		rc_cfg = NULL;
		snprintf(err, errlen, "cannot start the HA thread");
		return -1;
	}
	rc_started = true;
	return 0;
}

void recovery_reload(const struct config *cfg)
{
	struct config *old;

	if (!rc_started)
		return;
	uv_mutex_lock(&rc_lock);
	old = rc_cfg;
	rc_cfg = config_ref((struct config *)cfg);
	uv_mutex_unlock(&rc_lock);
	config_unref(old);
}

void recovery_stop(void)
{
	if (!rc_started)
		return;
	uv_mutex_lock(&rc_lock);
	atomic_store(&rc_stop, true);
	uv_cond_signal(&rc_cond);
	if (job_busy)
		log_info("stopping the HA thread: the %s of node %d is abandoned",
			 job_kind == JOB_RECOVER ? "recovery" : "attach", job_node);
	uv_mutex_unlock(&rc_lock);
	uv_thread_join(&ha_thread);
	/* a request queued but never picked up */
	if (job_queued && job_kind == JOB_RECOVER) {
		node_set_state(job_node, NODE_DOWN, "recovery abandoned: pgchorus stopped");
		snprintf(prog.phase, sizeof(prog.phase), "failed");
		snprintf(prog.error, sizeof(prog.error), "pgchorus stopped");
	}
	job_queued = false;
	job_busy = false;
	prog.running = false;
	config_unref(rc_cfg);
	rc_cfg = NULL;
	rc_started = false;
	/* rc_lock and rc_cond stay: an admin command may still arrive (it is
	 * refused: the thread is not running) until the workers are gone. */
}

/* Common checks of a request (rc_lock held).  0, or -1 with ERR. */
static int request_check(int node, char *err, size_t errlen)
{
	if (!rc_started || atomic_load(&rc_stop)) {
		snprintf(err, errlen, "the HA thread is not running");
		return -1;
	}
	if (node < 0 || node >= nodes_count()) {
		snprintf(err, errlen, "no node %d (the nodes are 0 to %d)", node, nodes_count() - 1);
		return -1;
	}
	if (job_busy) {
		snprintf(err, errlen, "the %s of node %d is running; one at a time",
			 job_kind == JOB_RECOVER ? "recovery" : "attach", job_node);
		return -1;
	}
	switch (atomic_load(&node_get(node)->state)) {
	case NODE_UP:
		snprintf(err, errlen, "node %d is up", node);
		return -1;
	case NODE_RECOVERING:
		snprintf(err, errlen, "node %d is being recovered", node);
		return -1;
	default:
		return 0;
	}
}

static void queue_job(enum job_kind kind, int node)
{
	job_busy = true;
	job_queued = true;
	job_kind = kind;
	job_node = node;
	uv_cond_signal(&rc_cond);
}

int ha_recover_node(int node, char *err, size_t errlen)
{
	int primary;

	if (!rc_started) {
		snprintf(err, errlen, "the HA thread is not running");
		return -1;
	}
	uv_mutex_lock(&rc_lock);
	if (request_check(node, err, errlen) < 0)
		goto refused;
	primary = node_primary();
	if (primary < 0 || primary == node) {
		snprintf(err, errlen, "no node is up to copy node %d from", node);
		goto refused;
	}
	if (!*rc_cfg->recovery_1st_stage_command && !bb_usable(rc_cfg, node, err, errlen))
		goto refused;
	memset(&prog, 0, sizeof(prog));
	prog.running = true;
	prog.node = node;
	prog.lag_bytes = -1;
	prog.started = wall_now();
	snprintf(prog.phase, sizeof(prog.phase), "basebackup");
	prog_logged = ha_mono_now();
	node_set_state(node, NODE_RECOVERING, "online recovery requested");
	queue_job(JOB_RECOVER, node);
	uv_mutex_unlock(&rc_lock);
	return 0;

refused:
	uv_mutex_unlock(&rc_lock);
	log_warning("recovery of node %d refused: %s", node, err);
	return -1;
}

int ha_attach_node(int node, char *err, size_t errlen)
{
	if (!rc_started) {
		snprintf(err, errlen, "the HA thread is not running");
		return -1;
	}
	uv_mutex_lock(&rc_lock);
	if (request_check(node, err, errlen) < 0)
		goto refused;
	if (node_written_since(node)) {
		snprintf(err, errlen, "node %d missed writes since it was detached; use RECOVER NODE", node);
		goto refused;
	}
	queue_job(JOB_ATTACH, node);
	uv_mutex_unlock(&rc_lock);
	return 0;

refused:
	uv_mutex_unlock(&rc_lock);
	log_warning("attach of node %d refused: %s", node, err);
	return -1;
}

/* Queue KIND (a graceful detach or a promotion) on NODE, which must be up:
 * 0, or -1 with ERR (logged with WHAT). */
static int queue_up_node_job(enum job_kind kind, int node, const char *what, char *err, size_t errlen)
{
	if (!rc_started) {
		snprintf(err, errlen, "the HA thread is not running");
		return -1;
	}
	uv_mutex_lock(&rc_lock);
	if (node < 0 || node >= nodes_count()) {
		snprintf(err, errlen, "no node %d (the nodes are 0 to %d)", node, nodes_count() - 1);
		goto refused;
	}
	if (atomic_load(&rc_stop) || job_busy) {
		snprintf(err, errlen, "another job of the HA thread is running; one at a time");
		goto refused;
	}
	if (atomic_load(&node_get(node)->state) != NODE_UP) {
		snprintf(err, errlen, "node %d is not up", node);
		goto refused;
	}
	if (kind == JOB_DETACH && nodes_up_count() <= 1) {
		snprintf(err, errlen, "node %d is the only node that is up", node);
		goto refused;
	}
	if (kind == JOB_PROMOTE && node_primary() == node) {
		snprintf(err, errlen, "node %d is the primary already", node);
		goto refused;
	}
	queue_job(kind, node);
	uv_mutex_unlock(&rc_lock);
	return 0;

refused:
	uv_mutex_unlock(&rc_lock);
	log_warning("%s of node %d refused: %s", what, node, err);
	return -1;
}

int ha_detach_node_graceful(int node, char *err, size_t errlen)
{
	return queue_up_node_job(JOB_DETACH, node, "graceful detach", err, errlen);
}

int ha_promote_node(int node, char *err, size_t errlen)
{
	return queue_up_node_job(JOB_PROMOTE, node, "promotion", err, errlen);
}

void recovery_get_progress(struct recovery_progress *out)
{
	if (!rc_started) {
		memset(out, 0, sizeof(*out));
		out->node = -1;
		out->lag_bytes = -1;
		return;
	}
	uv_mutex_lock(&rc_lock);
	*out = prog;
	uv_mutex_unlock(&rc_lock);
}
