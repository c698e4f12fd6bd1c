/*
 * compare.c - COMPARE and REPAIR TABLE (compare.h, doc/admin.md): one job
 * at a time in a detached thread of its own, which blocks on libpq.
 *
 * Both jobs connect to the nodes that are up as resolver_user to
 * resolver_database.  To see one state of the data everywhere, writes are
 * paused (rgate.c) and the job waits until no write transaction is open
 * (at most recovery_pause_timeout), then:
 *   compare: opens a REPEATABLE READ transaction on every node (the
 *     snapshot is taken by its first query), resumes writes, and computes
 *     per table a count and an md5 of the sorted md5s of the rows on every
 *     node.  Tables that differ and have a primary key get the sets of
 *     (key, md5) of every node merged to name up to COMPARE_MAX_KEYS keys.
 *   repair: with writes still paused, reads the table from the source with
 *     COPY TO, and on every other node deletes its rows and COPYs them in,
 *     PREPARE TRANSACTION everywhere, then COMMIT PREPARED everywhere
 *     (ROLLBACK PREPARED / ROLLBACK everywhere on any failure); resumes.
 *
 * The state below (compare_lock) is what SHOW COMPARE and SHOW COMPARE
 * STATUS read; the job keeps its own data and publishes it at the end.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "pgchorus/compare.h"
#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/node.h"
#include "basebackup.h"

#define CONNECT_TIMEOUT "10"
/* Statements of a job give up after this long (SET statement_timeout). */
#define STATEMENT_TIMEOUT "'300s'"
#define MAX_TABLES 1000

static uv_once_t compare_once = UV_ONCE_INIT;
static uv_mutex_t compare_lock;
/* compare_lock guards the block below. */
static bool job_running;
static struct compare_status status;
static struct compare_row *rows;
static size_t n_rows;
static struct job *cur_job;     /* the running job's cancel handles, for compare_stop() */
static atomic_bool stopping;

struct job {
	bool repair;
	char tables[1024];  /* compare: the names asked for; repair: the table */
	int from;           /* repair: the source node */
	struct config *cfg;
	PGconn *conn[PGC_MAX_NODES];
	PGcancel *cancel[PGC_MAX_NODES]; /* made here, used by compare_stop() under compare_lock */
	int node[PGC_MAX_NODES];
	int n;              /* connections (nodes up) */
	bool paused;        /* this job paused writes */
	bool peers_paused;  /* and asked the peer instances to (heartbeat.c) */
	struct compare_row *rows;
	size_t n_rows, cap_rows;
	char error[256];
};

static void init_lock(void)
{
	if (uv_mutex_init(&compare_lock) != 0)
		abort();
}

static double wall_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static bool fail(struct job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The job fails with this reason (the first one counts); false, for return. */
static bool fail(struct job *j, const char *fmt, ...)
{
	va_list ap;

	if (j->error[0])
		return false;
	va_start(ap, fmt);
	vsnprintf(j->error, sizeof(j->error), fmt, ap);
	va_end(ap);
	return false;
}

/* The error text of a connection, on one line. */
static const char *conn_error(PGconn *c)
{
	static __thread char msg[200];
	char *nl;

	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
	while ((nl = strchr(msg, '\n')))
		*nl = nl[1] ? ' ' : 0;
	return msg;
}

/* Run SQL on connection K with PARAM ($1, NULL: none); a tuples or command result, or NULL (job failed). */
static PGresult *run(struct job *j, int k, const char *sql, const char *param)
{
	PGresult *res = PQexecParams(j->conn[k], sql, param ? 1 : 0, NULL, param ? &param : NULL, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	fail(j, "node %d: %s", j->node[k], conn_error(j->conn[k]));
	PQclear(res);
	return NULL;
}

static bool run_ok(struct job *j, int k, const char *sql)
{
	PGresult *res = run(j, k, sql, NULL);

	PQclear(res);
	return res != NULL;
}

/* Connect to every node that is up (the source first for a repair). */
static bool connect_nodes(struct job *j)
{
	const struct config *cfg = j->cfg;
	int n = nodes_count();

	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			struct node *nd = node_get(i);
			char port[16];
			const char *keys[] = { "host", "port", "user", "password", "dbname", "connect_timeout",
					       "application_name", NULL };
			const char *vals[8];

			/* pass 0: the repair's source; pass 1: the others */
			if (!nd || atomic_load(&nd->state) != NODE_UP || (pass == 0) != (j->repair && i == j->from))
				continue;
			snprintf(port, sizeof(port), "%d", nd->port);
			vals[0] = nd->host;
			vals[1] = port;
			vals[2] = cfg->resolver_user;
			vals[3] = cfg->resolver_password[0] ? cfg->resolver_password : NULL;
			vals[4] = cfg->resolver_database;
			vals[5] = CONNECT_TIMEOUT;
			vals[6] = j->repair ? "pgchorus repair" : "pgchorus compare";
			vals[7] = NULL;
			j->node[j->n] = i;
			j->conn[j->n] = PQconnectdbParams(keys, vals, 0);
			if (PQstatus(j->conn[j->n]) != CONNECTION_OK) {
				fail(j, "node %d: %s", i, conn_error(j->conn[j->n]));
				PQfinish(j->conn[j->n]);
				return false;
			}
			j->n++;
			if (!run_ok(j, j->n - 1, "SET statement_timeout = " STATEMENT_TIMEOUT))
				return false;
		}
	}
	uv_mutex_lock(&compare_lock);
	for (int k = 0; k < j->n; k++)
		j->cancel[k] = PQgetCancel(j->conn[k]);
	cur_job = j;
	uv_mutex_unlock(&compare_lock);
	if (atomic_load(&stopping))
		return fail(j, "pgchorus is stopping");
	if (j->repair && (j->n == 0 || j->node[0] != j->from))
		return fail(j, "node %d is not up", j->from);
	if (j->n == 0)
		return fail(j, "no node is up");
	return true;
}

/* Pause writes and wait until no write transaction is open. */
static bool pause_writes(struct job *j)
{
	char err[256];
	double deadline = wall_now() + j->cfg->recovery_pause_timeout;

	/* pauses nest: one held by PAUSE stays after the job */
	j->paused = true;
	repl_pause_writes();
	while (repl_open_writers() > 0) {
		if (wall_now() > deadline)
			return fail(j, "write transactions still open after recovery_pause_timeout (%gs)",
				    j->cfg->recovery_pause_timeout);
		usleep(10000);
	}
	/* peer instances' writes too: one snapshot per node must see the same writes */
	if (hb_pause_peers(&j->peers_paused, ha_deadline(j->cfg->recovery_pause_timeout), err, sizeof(err)) < 0)
		return fail(j, "%s", err);
	return true;
}

static void resume_writes(struct job *j)
{
	hb_resume_peers(&j->peers_paused);
	if (j->paused)
		repl_resume_writes();
	j->paused = false;
}

/* Quoted schema.table of NAME (as written in SQL) on connection K into OUT. */
static bool resolve_table(struct job *j, int k, const char *name, char *out, size_t n)
{
	PGresult *res = run(j, k,
			    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
			    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass",
			    name);

	if (!res)
		return false;
	snprintf(out, n, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : name);
	PQclear(res);
	return true;
}

/* ---- compare ------------------------------------------------------------------- */

static struct compare_row *add_row(struct job *j)
{
	if (j->n_rows == j->cap_rows) {
		size_t cap = j->cap_rows ? j->cap_rows * 2 : 16;
		struct compare_row *p = realloc(j->rows, cap * sizeof(*p));

		if (!p)
			return NULL;
		j->rows = p;
		j->cap_rows = cap;
	}
	memset(&j->rows[j->n_rows], 0, sizeof(j->rows[0]));
	return &j->rows[j->n_rows++];
}

/* The tables to compare into *NAMES (N of them, quoted), from node 0's catalog. */
static bool list_tables(struct job *j, char (**names)[200], int *n)
{
	PGresult *res;
	int want = 0;

	*n = 0;
	*names = calloc(MAX_TABLES, sizeof(**names));
	if (!*names)
		return fail(j, "out of memory");
	if (!j->tables[0]) {
		res = run(j, 0,
			  "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
			  "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
			  "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgchorus') "
			  "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
			  "ORDER BY 1",
			  NULL);
		if (!res)
			return false;
		for (int i = 0; i < PQntuples(res) && *n < MAX_TABLES; i++)
			snprintf((*names)[(*n)++], sizeof(**names), "%s", PQgetvalue(res, i, 0));
		PQclear(res);
		return true;
	}
	for (char *p = j->tables; *p && want < MAX_TABLES; want++) {
		size_t len = strcspn(p, ",");
		char name[200];

		snprintf(name, sizeof(name), "%.*s", (int)len, p);
		if (!resolve_table(j, 0, name, (*names)[(*n)++], sizeof(**names)))
			return false;
		p += len;
		if (*p == ',')
			p++;
	}
	return true;
}

/* The primary key's columns of TABLE as a key expression into OUT ("" if none). */
static bool key_expr(struct job *j, const char *table, char *out, size_t n)
{
	PGresult *res = run(j, 0,
			    "SELECT count(*), string_agg(format('t.%I', a.attname), ', ' "
			    "ORDER BY array_position(i.indkey::int2[], a.attnum)) "
			    "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
			    "AND a.attnum = ANY (i.indkey::int2[]) WHERE i.indrelid = $1::regclass AND i.indisprimary",
			    table);

	if (!res)
		return false;
	out[0] = 0;
	if (atoi(PQgetvalue(res, 0, 0)) == 1)
		snprintf(out, n, "(%s)::text", PQgetvalue(res, 0, 1));
	else if (atoi(PQgetvalue(res, 0, 0)) > 1)
		snprintf(out, n, "row(%s)::text", PQgetvalue(res, 0, 1));
	PQclear(res);
	return true;
}

/*
 * The keys of TABLE (KEY: key_expr) whose rows differ or are missing on a
 * node, into the KEYS of the table's rows R (one per connection).  Every
 * node sends its (key, md5) sorted by key; the lists are merged.
 */
static bool differing_keys(struct job *j, const char *table, const char *key, struct compare_row **r)
{
	PGresult *res[PGC_MAX_NODES] = { 0 };
	int pos[PGC_MAX_NODES] = { 0 };
	char sql[1024], keys[1024] = "", *cur;
	size_t len = 0;
	int found = 0;
	bool ok = true;

	snprintf(sql, sizeof(sql), "SELECT %s COLLATE \"C\", md5(t::text) FROM %s t ORDER BY 1", key, table);
	for (int k = 0; k < j->n && ok; k++)
		ok = (res[k] = run(j, k, sql, NULL)) != NULL;
	while (ok) {
		const char *min = NULL, *md5 = NULL;
		bool differ = false;

		for (int k = 0; k < j->n; k++) {
			if (pos[k] < PQntuples(res[k]) &&
			    (!min || strcmp(PQgetvalue(res[k], pos[k], 0), min) < 0))
				min = PQgetvalue(res[k], pos[k], 0);
		}
		if (!min)
			break;
		for (int k = 0; k < j->n; k++) {
			if (pos[k] >= PQntuples(res[k]) || strcmp(PQgetvalue(res[k], pos[k], 0), min) != 0) {
				differ = true; /* missing on this node */
				continue;
			}
			if (md5 && strcmp(md5, PQgetvalue(res[k], pos[k], 1)) != 0)
				differ = true;
			md5 = PQgetvalue(res[k], pos[k], 1);
		}
		if (differ && found < COMPARE_MAX_KEYS && len + strlen(min) + 3 < sizeof(keys)) {
			len += (size_t)snprintf(keys + len, sizeof(keys) - len, "%s%s", found ? ", " : "", min);
			found++;
		}
		/* past MIN everywhere (a copy: MIN points into one of the rows passed) */
		cur = strdup(min);
		if (!cur) {
			ok = fail(j, "out of memory");
			break;
		}
		for (int k = 0; k < j->n; k++) {
			if (pos[k] < PQntuples(res[k]) && strcmp(PQgetvalue(res[k], pos[k], 0), cur) == 0)
				pos[k]++;
		}
		free(cur);
	}
	for (int k = 0; k < j->n; k++) {
		if (ok)
			snprintf(r[k]->keys, sizeof(r[k]->keys), "%s", keys);
		PQclear(res[k]);
	}
	return ok;
}

static bool compare_table(struct job *j, const char *table, int *divergent)
{
	struct compare_row *r[PGC_MAX_NODES];
	char sql[512], key[512];
	bool differ = false;

	snprintf(sql, sizeof(sql),
		 "SELECT count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)), '')) FROM %s t",
		 table);
	for (int k = 0; k < j->n; k++) {
		PGresult *res = run(j, k, sql, NULL);

		if (!res)
			return false;
		r[k] = add_row(j);
		if (!r[k]) {
			PQclear(res);
			return fail(j, "out of memory");
		}
		snprintf(r[k]->table, sizeof(r[k]->table), "%s", table);
		r[k]->node = j->node[k];
		r[k]->rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		snprintf(r[k]->checksum, sizeof(r[k]->checksum), "%s", PQgetvalue(res, 0, 1));
		PQclear(res);
		if (k && (r[k]->rows != r[0]->rows || strcmp(r[k]->checksum, r[0]->checksum) != 0))
			differ = true;
	}
	if (!differ)
		return true;
	(*divergent)++;
	for (int k = 0; k < j->n; k++)
		r[k]->divergent = true;
	if (!key_expr(j, table, key, sizeof(key)))
		return false;
	return !key[0] || differing_keys(j, table, key, r);
}

static void compare_job(struct job *j, int *tables, int *divergent)
{
	char(*names)[200] = NULL;
	int n = 0;

	if (!pause_writes(j)) {
		resume_writes(j);
		return;
	}
	for (int k = 0; k < j->n; k++) {
		if (!run_ok(j, k, "BEGIN ISOLATION LEVEL REPEATABLE READ") || !run_ok(j, k, "SELECT 1"))
			break;
	}
	resume_writes(j);
	if (j->error[0] || !list_tables(j, &names, &n)) {
		free(names);
		return;
	}
	for (int t = 0; t < n && !atomic_load(&stopping) && compare_table(j, names[t], divergent); t++)
		(*tables)++;
	free(names);
	if (atomic_load(&stopping))
		fail(j, "pgchorus is stopping");
	for (int k = 0; k < j->n && !j->error[0]; k++)
		run_ok(j, k, "COMMIT");
}

/* ---- repair ---------------------------------------------------------------------- */

/* COPY OUT of connection 0 into *DATA (*LEN bytes). */
static bool copy_out(struct job *j, const char *table, char **data, size_t *len)
{
	char sql[300];
	PGresult *res;
	size_t cap = 0;
	char *line;
	int n;

	snprintf(sql, sizeof(sql), "COPY %s TO STDOUT", table);
	res = PQexec(j->conn[0], sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		PQclear(res);
		return fail(j, "node %d: %s", j->node[0], conn_error(j->conn[0]));
	}
	PQclear(res);
	*data = NULL;
	*len = 0;
	while ((n = PQgetCopyData(j->conn[0], &line, 0)) > 0) {
		if (*len + (size_t)n > cap) {
			char *p;

			cap = (*len + (size_t)n) * 2;
			p = realloc(*data, cap);
			if (!p) {
				PQfreemem(line);
				return fail(j, "out of memory");
			}
			*data = p;
		}
		memcpy(*data + *len, line, (size_t)n);
		*len += (size_t)n;
		PQfreemem(line);
	}
	res = PQgetResult(j->conn[0]);
	if (n == -2 || PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		return fail(j, "node %d: %s", j->node[0], conn_error(j->conn[0]));
	}
	PQclear(res);
	return true;
}

/* On connection K: delete TABLE's rows and COPY DATA in. */
static bool copy_in(struct job *j, int k, const char *table, const char *data, size_t len)
{
	char sql[300];
	PGresult *res;

	snprintf(sql, sizeof(sql), "DELETE FROM %s", table);
	if (!run_ok(j, k, sql))
		return false;
	snprintf(sql, sizeof(sql), "COPY %s FROM STDIN", table);
	res = PQexec(j->conn[k], sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		PQclear(res);
		return fail(j, "node %d: %s", j->node[k], conn_error(j->conn[k]));
	}
	PQclear(res);
	if ((len && PQputCopyData(j->conn[k], data, (int)len) != 1) || PQputCopyEnd(j->conn[k], NULL) != 1)
		return fail(j, "node %d: %s", j->node[k], conn_error(j->conn[k]));
	res = PQgetResult(j->conn[k]);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		return fail(j, "node %d: %s", j->node[k], conn_error(j->conn[k]));
	}
	PQclear(res);
	while ((res = PQgetResult(j->conn[k])))
		PQclear(res);
	return true;
}

static void repair_job(struct job *j, int *copied)
{
	bool prepared[PGC_MAX_NODES] = { false };
	char table[200], gid[64], sql[128];
	char *data = NULL;
	size_t len = 0;
	bool ok;
	PGresult *res;

	snprintf(gid, sizeof(gid), "pgcrepair_%d_%.0f", (int)getpid(), wall_now() * 1000);
	if (j->n < 2) {
		fail(j, "no other node is up");
		return;
	}
	if (!resolve_table(j, 0, j->tables, table, sizeof(table)))
		return;
	snprintf(j->tables, sizeof(j->tables), "%s", table); /* for the log and SHOW COMPARE STATUS */
	ok = pause_writes(j) && run_ok(j, 0, "BEGIN ISOLATION LEVEL REPEATABLE READ") && copy_out(j, table, &data, &len);
	for (int k = 1; k < j->n && ok; k++)
		ok = run_ok(j, k, "BEGIN") && copy_in(j, k, table, data, len);
	for (int k = 1; k < j->n && ok; k++) {
		snprintf(sql, sizeof(sql), "PREPARE TRANSACTION '%s'", gid);
		ok = prepared[k] = run_ok(j, k, sql);
	}
	for (int k = 1; k < j->n; k++) {
		/* after a failure, errors of the clean-up are logged only: the first reason counts */
		if (prepared[k])
			snprintf(sql, sizeof(sql), "%s PREPARED '%s'", ok ? "COMMIT" : "ROLLBACK", gid);
		else
			snprintf(sql, sizeof(sql), "ROLLBACK");
		res = PQexec(j->conn[k], sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			log_error("repair of %s: node %d: %s: %s", table, j->node[k], sql, conn_error(j->conn[k]));
			if (ok)
				fail(j, "node %d: %s: %s", j->node[k], sql, conn_error(j->conn[k]));
		}
		PQclear(res);
	}
	PQclear(PQexec(j->conn[0], "ROLLBACK"));
	resume_writes(j);
	for (size_t i = 0; ok && i < len; i++)
		*copied += data[i] == '\n';
	free(data);
}

/* ---- the thread --------------------------------------------------------------- */

static void job_thread(void *arg)
{
	struct job *j = arg;
	int tables = 0, divergent = 0, copied = 0;
	char table[sizeof(j->tables)] = "";

	if (connect_nodes(j)) {
		if (j->repair) {
			repair_job(j, &copied);
			snprintf(table, sizeof(table), "%s", j->tables);
		} else {
			compare_job(j, &tables, &divergent);
		}
	}
	resume_writes(j);
	uv_mutex_lock(&compare_lock);
	cur_job = NULL;
	for (int k = 0; k < j->n; k++)
		PQfreeCancel(j->cancel[k]);
	uv_mutex_unlock(&compare_lock);
	for (int k = 0; k < j->n; k++)
		PQfinish(j->conn[k]);
	if (j->error[0])
		log_error("%s failed: %s", j->repair ? "repair" : "compare", j->error);
	else if (j->repair)
		log_info("repair of %s from node %d: %d rows copied to %d nodes", table, j->from, copied, j->n - 1);
	else
		log_info("compare: %d tables, %d divergent", tables, divergent);
	uv_mutex_lock(&compare_lock);
	snprintf(status.state, sizeof(status.state), "%s", j->error[0] ? "failed" : "done");
	snprintf(status.error, sizeof(status.error), "%s", j->error);
	status.ended = wall_now();
	if (j->repair) {
		status.tables = copied;
		if (!j->error[0])
			snprintf(status.detail, sizeof(status.detail), "%s from node %d: %d rows to %d nodes", table,
				 j->from, copied, j->n - 1);
	} else {
		status.tables = tables;
		status.divergent = divergent;
		free(rows);
		rows = j->rows;
		n_rows = j->n_rows;
		j->rows = NULL;
	}
	job_running = false;
	uv_mutex_unlock(&compare_lock);
	free(j->rows);
	config_unref(j->cfg);
	free(j);
}

static int start(struct job *j, char *err, size_t errlen)
{
	uv_thread_t t;
	uv_thread_options_t opt = { .flags = UV_THREAD_NO_FLAGS };

	uv_once(&compare_once, init_lock);
	j->cfg = nodestate_config();
	if (!j->cfg) {
		snprintf(err, errlen, "no configuration");
		free(j);
		return -1;
	}
	uv_mutex_lock(&compare_lock);
	if (job_running || atomic_load(&stopping)) {
		uv_mutex_unlock(&compare_lock);
		snprintf(err, errlen, job_running ? "a %s is running" : "pgchorus is stopping", status.job);
		config_unref(j->cfg);
		free(j);
		return -1;
	}
	memset(&status, 0, sizeof(status));
	snprintf(status.job, sizeof(status.job), "%s", j->repair ? "repair" : "compare");
	snprintf(status.state, sizeof(status.state), "running");
	status.started = wall_now();
	job_running = true;
	uv_mutex_unlock(&compare_lock);
	if (uv_thread_create_ex(&t, &opt, job_thread, j) != 0) {
		uv_mutex_lock(&compare_lock);
		job_running = false;
		snprintf(status.state, sizeof(status.state), "failed");
		snprintf(status.error, sizeof(status.error), "cannot start a thread");
		uv_mutex_unlock(&compare_lock);
		snprintf(err, errlen, "cannot start a thread");
		config_unref(j->cfg);
		free(j);
		return -1;
	}
	pthread_detach(t);
	return 0;
}

int compare_start(const char *tables, char *err, size_t errlen)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(j->tables, sizeof(j->tables), "%s", tables ? tables : "");
	return start(j, err, errlen);
}

int repair_start(const char *table, int from, char *err, size_t errlen)
{
	struct job *j;
	struct node *nd = node_get(from);

	if (!nd || atomic_load(&nd->state) != NODE_UP) {
		snprintf(err, errlen, "node %d is not up", from);
		return -1;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	j->repair = true;
	j->from = from;
	snprintf(j->tables, sizeof(j->tables), "%s", table);
	return start(j, err, errlen);
}

void compare_get_status(struct compare_status *out)
{
	uv_once(&compare_once, init_lock);
	uv_mutex_lock(&compare_lock);
	*out = status;
	uv_mutex_unlock(&compare_lock);
}

size_t compare_get_rows(struct compare_row **out)
{
	size_t n;

	uv_once(&compare_once, init_lock);
	uv_mutex_lock(&compare_lock);
	n = n_rows;
	*out = n ? malloc(n * sizeof(**out)) : NULL;
	if (*out)
		memcpy(*out, rows, n * sizeof(**out));
	else
		n = 0;
	uv_mutex_unlock(&compare_lock);
	return n;
}

void compare_stop(void)
{
	char buf[256];
	bool running = true;

	uv_once(&compare_once, init_lock);
	atomic_store(&stopping, true);
	uv_mutex_lock(&compare_lock);
	if (cur_job) {
		log_info("stopping the running %s", status.job);
		for (int k = 0; k < cur_job->n; k++)
			if (cur_job->cancel[k])
				PQcancel(cur_job->cancel[k], buf, sizeof(buf));
	}
	uv_mutex_unlock(&compare_lock);
	/* the job ends at its next statement; its writes pause is lifted by it */
	for (int i = 0; i < 1000 && running; i++) {
		uv_mutex_lock(&compare_lock);
		running = job_running;
		uv_mutex_unlock(&compare_lock);
		if (running)
			usleep(10000);
	}
	uv_mutex_lock(&compare_lock);
	if (running)
		log_warning("the %s did not end within 10 s of the shutdown", status.job);
	free(rows);
	rows = NULL;
	n_rows = 0;
	uv_mutex_unlock(&compare_lock);
}
