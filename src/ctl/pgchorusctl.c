/*
 * pgchorusctl - command line client of pgchorus' control socket
 * (doc/pgchorusctl.md).  Each subcommand sends admin console commands
 * (doc/admin.md), one per line, and reads the answers, which end with an
 * empty line.  With -h HOST / -p PORT it talks to the SQL admin console
 * (database pgchorus) with libpq instead, and writes each answer as the
 * control socket would (tablefmt.c), so that the rest reads both alike.
 *
 * Exit status: 0 ok, 1 the command failed (pgchorus answered an error),
 * 2 usage error, 3 cannot connect (or the connection broke).
 */
#define _GNU_SOURCE /* asprintf */
#include <errno.h>
#include <getopt.h>
#include <libconfig.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "config.h"
#include "pgchorus/tablefmt.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_CONNECT 3
#define DEFAULT_SOCKET "/tmp/pgchorus.ctl"
/* An answer longer than this is a broken server. */
#define MAX_ANSWER (16 * 1024 * 1024)

static int sock = -1;
static bool json;
static const char *sock_path;
/* -h / -p / -U: the admin console instead of the socket */
static const char *pg_host, *pg_port, *pg_user;
static PGconn *pg;
static struct buf pg_notices; /* the notices of the running command, NUL-terminated each */

/* The lines of one answer (the closing empty line left out). */
struct answer {
	char *text;   /* the lines, NUL-terminated each */
	char **lines;
	int n;
	bool error;   /* "ERROR ..." or {"error": ...} */
};

static void usage(FILE *f)
{
	fprintf(f,
		"pgchorusctl - control a running pgchorus\n\n"
		"Usage: pgchorusctl [-s SOCKET | -f CONFIG | -h HOST -p PORT [-U USER]] [--json] COMMAND [ARGS]\n"
		"Commands:\n"
		"  node-info [n]      the nodes (SHOW NODES), or node n\n"
		"  node-count         how many nodes there are\n"
		"  attach-node n      failback: put detached node n back without recovery\n"
		"  promote-node n     make node n (up) the primary (writes paused briefly)\n"
		"  detach-node n [--graceful]  take node n out of service (--graceful: once its\n"
		"                     sessions let go of it)\n"
		"  recover-node n     online recovery of node n, with its progress\n"
		"  pool-status        SHOW POOL_NODES, then SHOW POOLS\n"
		"  pools              the pools (SHOW POOLS)\n"
		"  clients            the client connections (SHOW CLIENTS)\n"
		"  peers              the other pgchorus instances and their heartbeat (SHOW PEERS)\n"
		"  servers            the server connections (SHOW SERVERS)\n"
		"  stats              the counters per database and node (SHOW STATS)\n"
		"  reload             reload the configuration (SIGHUP)\n"
		"  stop [--fast]      graceful shutdown (SIGTERM); --fast: close every\n"
		"                     connection now (SIGINT)\n"
		"  version            pgchorus' version\n"
		"  compare [table...] compare the tables on the nodes that are up (exit 1: divergent)\n"
		"  repair TABLE --from n  copy TABLE from node n to the other nodes that are up\n"
		"Options:\n"
		"  -s, --socket PATH  the control socket (default: control_socket of -f, or %s)\n"
		"  -f, --config FILE  read control_socket from this configuration file\n"
		"  -h, --host HOST    the SQL admin console on HOST (database pgchorus, libpq)\n"
		"  -p, --port PORT    its port (default: PGPORT, else 6432)\n"
		"  -U, --user USER    an admin_users user (default: PGUSER, else postgres);\n"
		"                     the password from PGPASSWORD or ~/.pgpass\n"
		"  -j, --json         answers as JSON\n"
		"      --help         this help\n"
		"  -V, --version      pgchorusctl's version\n",
		DEFAULT_SOCKET);
}

/* ---- talking to pgchorus ---------------------------------------------------------- */

/* The SQL admin console: libpq, database pgchorus. */
static void pg_notice(void *arg, const PGresult *res)
{
	const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	(void)arg;
	if (m && !buf_append(&pg_notices, m, strlen(m) + 1)) {
		fprintf(stderr, "pgchorusctl: out of memory\n");
		exit(EXIT_FAILED);
	}
}

static void pg_connect(void)
{
	const char *keys[] = { "host", "port", "user", "dbname", "application_name", "connect_timeout", NULL };
	const char *vals[] = { pg_host, pg_port ? pg_port : (getenv("PGPORT") ? NULL : "6432"),
			       pg_user ? pg_user : (getenv("PGUSER") ? NULL : "postgres"), "pgchorus", "pgchorusctl",
			       "10", NULL };

	pg = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(pg) != CONNECTION_OK) {
		fprintf(stderr, "pgchorusctl: cannot connect to the admin console: %s", PQerrorMessage(pg));
		exit(EXIT_CONNECT);
	}
	PQsetNoticeReceiver(pg, pg_notice, NULL);
}

static void ctl_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (pg_host || pg_port || pg_user) {
		pg_connect();
		return;
	}

	if (strlen(sock_path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "pgchorusctl: socket path too long: %s\n", sock_path);
		exit(EXIT_CONNECT);
	}
	strcpy(sun.sun_path, sock_path);
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "pgchorusctl: cannot connect to %s: %s\n", sock_path, strerror(errno));
		exit(EXIT_CONNECT);
	}
}

static void lost(const char *why)
{
	fprintf(stderr, "pgchorusctl: connection to %s lost: %s\n", pg ? "the admin console" : sock_path, why);
	exit(EXIT_CONNECT);
}

/* TEXT (LEN bytes, ending with the empty line; malloc'ed, now A's) into A's lines. */
static void answer_split(struct answer *a, char *text, size_t len)
{
	char *p;

	a->text = text;
	a->text[len - 1] = 0; /* the empty line */
	a->lines = calloc(len + 1, sizeof(*a->lines));
	if (!a->lines)
		lost("out of memory");
	for (p = a->text; *p;) {
		char *nl = strchr(p, '\n');

		a->lines[a->n++] = p;
		if (!nl)
			break;
		*nl = 0;
		p = nl + 1;
	}
	for (int i = 0; i < a->n; i++) {
		if (strncmp(a->lines[i], "ERROR ", 6) == 0 || strncmp(a->lines[i], "{\"error\":", 9) == 0)
			a->error = true;
	}
}

static bool pg_next_row(const void *src, size_t *pos, struct tf_value *vals)
{
	const PGresult *res = src;
	int row = (int)*pos;

	if (row >= PQntuples(res))
		return false;
	for (int i = 0; i < PQnfields(res) && i < TF_MAX_COLS; i++) {
		vals[i].p = PQgetvalue(res, row, i);
		vals[i].len = PQgetisnull(res, row, i) ? -1 : PQgetlength(res, row, i);
	}
	(*pos)++;
	return true;
}

static const char *pg_next_notice(const void *src, size_t *pos)
{
	const char *m;

	(void)src;
	if (*pos >= pg_notices.len)
		return NULL;
	m = (const char *)pg_notices.data + *pos;
	*pos += strlen(m) + 1;
	return m;
}

/* LINE on the admin console, its answer written as the control socket's into A. */
static void pg_ask(const char *line, bool as_json, struct answer *a)
{
	struct tf_out o = { .oom = false };
	PGresult *res;

	pg_notices.len = 0;
	res = PQexec(pg, line);
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK: {
		struct tf_table t = {
			.tag = PQcmdStatus(res),
			.n_cols = PQnfields(res) < TF_MAX_COLS ? PQnfields(res) : TF_MAX_COLS,
			.src = res,
			.next_row = pg_next_row,
			.next_notice = pg_next_notice,
		};

		for (int i = 0; i < t.n_cols; i++) {
			t.col_name[i] = PQfname(res, i);
			t.col_type[i] = PQftype(res, i);
		}
		(as_json ? tf_json : tf_text)(&o, &t);
		break;
	}
	default: {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		if (!state || PQstatus(pg) == CONNECTION_BAD)
			lost(PQerrorMessage(pg));
		tf_error(&o, state, msg ? msg : "", PQresultErrorField(res, PG_DIAG_MESSAGE_HINT), as_json);
		break;
	}
	}
	PQclear(res);
	tf_str(&o, "\n");
	if (o.oom)
		lost("out of memory");
	memset(a, 0, sizeof(*a));
	answer_split(a, (char *)o.b.data, o.b.len);
}

/* Send LINE (with --json if asked and AS_JSON) and read its answer into A. */
static void ctl_ask(const char *line, bool as_json, struct answer *a)
{
	char *req;
	size_t len = 0, cap = 4096, sent = 0, reqlen;
	char *text;

	if (pg) {
		pg_ask(line, as_json, a);
		return;
	}
	if (asprintf(&req, "%s%s\n", as_json ? "--json " : "", line) < 0) {
		fprintf(stderr, "pgchorusctl: out of memory\n");
		exit(EXIT_FAILED);
	}
	reqlen = strlen(req);
	while (sent < reqlen) {
		ssize_t n = write(sock, req + sent, reqlen - sent);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			lost(strerror(errno));
		sent += (size_t)n;
	}
	free(req);
	memset(a, 0, sizeof(*a));
	text = malloc(cap);
	if (!text)
		lost("out of memory");
	/* The answer ends with an empty line: "\n" alone, or "\n\n". */
	for (;;) {
		ssize_t n;

		if ((len == 1 && text[0] == '\n') || (len >= 2 && text[len - 1] == '\n' && text[len - 2] == '\n'))
			break;
		if (len + 1 >= cap) {
			char *bigger;

			if (cap >= MAX_ANSWER)
				lost("answer too long");
			bigger = realloc(text, cap * 2);
			if (!bigger)
				lost("out of memory");
			text = bigger;
			cap *= 2;
		}
		/* one byte at a time would be slow; the server sends nothing after the empty line */
		n = read(sock, text + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			lost(strerror(errno));
		if (n == 0)
			lost("pgchorus closed it before its answer ended");
		len += (size_t)n;
	}
	answer_split(a, text, len);
}

static void answer_free(struct answer *a)
{
	free(a->text);
	free(a->lines);
}

/* Print A: errors to stderr (exit 1); SKIP_TAG leaves out the tag line of
 * a text table.  Returns if it was not an error. */
static void print_answer(const struct answer *a, bool skip_tag)
{
	for (int i = 0; i < a->n; i++) {
		if (!json && skip_tag && i == a->n - 1 && !a->error)
			break;
		fprintf(a->error ? stderr : stdout, "%s%s\n", a->error && !json ? "pgchorusctl: " : "", a->lines[i]);
	}
	if (a->error)
		exit(EXIT_FAILED);
}

/* An error answer: printed to stderr, exit 1. */
static void fail_if_error(const struct answer *a)
{
	if (a->error)
		print_answer(a, false);
}

/* Run COMMAND, print its answer and exit (1 if it failed). */
static int simple(const char *command, bool skip_tag)
{
	struct answer a;

	ctl_ask(command, json, &a);
	print_answer(&a, skip_tag);
	answer_free(&a);
	return 0;
}

/* pool-status: SHOW POOL_NODES, then SHOW POOLS (text: two tables, a
 * blank line between; JSON: {"nodes": answer, "pools": answer}). */
static int pool_status(void)
{
	struct answer nodes, pools;

	ctl_ask("SHOW POOL_NODES", json, &nodes);
	fail_if_error(&nodes);
	ctl_ask("SHOW POOLS", json, &pools);
	fail_if_error(&pools);
	if (json) {
		printf("{\"nodes\":\n");
		print_answer(&nodes, false);
		printf(",\"pools\":\n");
		print_answer(&pools, false);
		printf("}\n");
	} else {
		print_answer(&nodes, true);
		printf("\n");
		print_answer(&pools, true);
	}
	answer_free(&nodes);
	answer_free(&pools);
	return 0;
}

/* ---- reading text tables ------------------------------------------------------------ */

/* Field K (from 0) of a row of the aligned table, blanks trimmed, into OUT. */
static void field(const char *row, int k, char *out, size_t n)
{
	const char *p = row, *end;
	size_t len;

	for (int i = 0; i < k && p; i++) {
		p = strstr(p, " | ");
		if (p)
			p += 3;
	}
	if (!p) {
		snprintf(out, n, "%s", "");
		return;
	}
	end = strstr(p, " | ");
	len = end ? (size_t)(end - p) : strlen(p);
	while (len && *p == ' ') {
		p++;
		len--;
	}
	while (len && p[len - 1] == ' ')
		len--;
	snprintf(out, n, "%.*s", (int)len, p);
}

/* First row line of a text table (after notices, the header and the dashes); -1 if none. */
static int first_row(const struct answer *a)
{
	for (int i = 0; i + 1 < a->n; i++) {
		if (a->lines[i + 1][0] == '-' && strncmp(a->lines[i], "NOTICE: ", 8) != 0)
			return i + 2;
	}
	return -1;
}

/* ---- commands ----------------------------------------------------------------------- */

static int node_arg(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 0 || v > 1000000) {
		fprintf(stderr, "pgchorusctl: not a node id: %s\n", s);
		exit(EXIT_USAGE);
	}
	return (int)v;
}

static int node_info(int node)
{
	struct answer a;
	int row, shown = 0;
	char id[32], want[32];

	if (node < 0)
		return simple("SHOW NODES", true);
	ctl_ask("SHOW NODES", json, &a);
	fail_if_error(&a);
	snprintf(want, sizeof(want), "[%d,", node);
	if (json) {
		/* {"tag":...,"rows":[ then a row a line, then ]} */
		printf("%s\n", a.lines[0]);
		for (int i = 1; i + 1 < a.n; i++) {
			size_t len = strlen(a.lines[i]);

			if (len && a.lines[i][len - 1] == ',')
				a.lines[i][len - 1] = 0;
			if (strncmp(a.lines[i], want, strlen(want)) == 0) {
				printf("%s%s", shown ? ",\n" : "", a.lines[i]);
				shown++;
			}
		}
		printf("%s]}\n", shown ? "\n" : "");
	} else {
		row = first_row(&a);
		if (row >= 0) {
			printf("%s\n%s\n", a.lines[row - 2], a.lines[row - 1]);
			snprintf(want, sizeof(want), "%d", node);
			for (int i = row; i + 1 < a.n; i++) {
				field(a.lines[i], 0, id, sizeof(id));
				if (strcmp(id, want) == 0) {
					printf("%s\n", a.lines[i]);
					shown++;
				}
			}
		}
	}
	answer_free(&a);
	if (!shown) {
		fprintf(stderr, "pgchorusctl: node %d does not exist\n", node);
		return EXIT_FAILED;
	}
	return 0;
}

static int node_count(void)
{
	struct answer a;
	int row, n;

	ctl_ask("SHOW NODES", false, &a);
	fail_if_error(&a);
	row = first_row(&a);
	n = row < 0 ? 0 : a.n - 1 - row;
	answer_free(&a);
	if (json)
		printf("{\"count\":%d}\n", n);
	else
		printf("%d\n", n);
	return 0;
}

static int version(void)
{
	struct answer a;
	int row;

	if (json)
		return simple("SHOW VERSION", true);
	ctl_ask("SHOW VERSION", false, &a);
	fail_if_error(&a);
	row = first_row(&a);
	printf("%s\n", row >= 0 && row < a.n ? a.lines[row] : "");
	answer_free(&a);
	return 0;
}

/* SHOW RECOVERY's row: node, phase, running, bytes_copied, bytes_total, lag_bytes, pause_ms, started, ended, error */
struct progress {
	char node[32], phase[32], running[8], copied[32], total[32], lag[32], started[64], error[512];
};

static void read_progress(struct progress *p)
{
	struct answer a;
	int row;

	ctl_ask("SHOW RECOVERY", false, &a);
	fail_if_error(&a);
	row = first_row(&a);
	memset(p, 0, sizeof(*p));
	if (row >= 0 && row < a.n - 1) {
		const char *l = a.lines[row];

		field(l, 0, p->node, sizeof(p->node));
		field(l, 1, p->phase, sizeof(p->phase));
		field(l, 2, p->running, sizeof(p->running));
		field(l, 3, p->copied, sizeof(p->copied));
		field(l, 4, p->total, sizeof(p->total));
		field(l, 5, p->lag, sizeof(p->lag));
		field(l, 7, p->started, sizeof(p->started));
		/* the error is the last column: everything after the 9th separator */
		field(l, 9, p->error, sizeof(p->error));
	}
	answer_free(&a);
}

static void human(const char *bytes, char *out, size_t n)
{
	double v = strtod(bytes, NULL);
	const char *unit[] = { "B", "kB", "MB", "GB", "TB" };
	int u = 0;

	if (!bytes[0]) {
		snprintf(out, n, "?");
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, n, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static int recover_node(int node)
{
	struct progress before, p;
	struct answer a;
	char cmd[64], want[32];
	bool tty = isatty(STDOUT_FILENO);
	int last_len = 0;

	read_progress(&before);
	snprintf(cmd, sizeof(cmd), "RECOVER NODE %d", node);
	ctl_ask(cmd, false, &a);
	print_answer(&a, true);
	answer_free(&a);
	snprintf(want, sizeof(want), "%d", node);
	for (;;) {
		char copied[32], total[32], lag[32], bar[24], line[256];
		double done = 0;
		int w;

		usleep(500000);
		read_progress(&p);
		/* not started yet: the row still tells of the previous recovery */
		if (strcmp(p.node, want) != 0 || (strcmp(p.running, "t") != 0 && strcmp(p.started, before.started) == 0))
			continue;
		human(p.copied, copied, sizeof(copied));
		human(p.total, total, sizeof(total));
		human(p.lag, lag, sizeof(lag));
		if (strtod(p.total, NULL) > 0)
			done = strtod(p.copied, NULL) / strtod(p.total, NULL);
		if (strcmp(p.phase, "basebackup") != 0)
			done = 1;
		if (done > 1)
			done = 1;
		for (int i = 0; i < 20; i++)
			bar[i] = i < (int)(done * 20 + 0.5) ? '#' : '.';
		bar[20] = 0;
		w = snprintf(line, sizeof(line), "node %d [%s] %3.0f%% %-10s %s / %s, lag %s", node, bar, done * 100,
			     p.phase, copied, total, lag);
		if (json)
			printf("{\"node\":%d,\"phase\":\"%s\",\"bytes_copied\":%s,\"bytes_total\":%s,\"lag_bytes\":%s}\n",
			       node, p.phase, p.copied[0] ? p.copied : "null", p.total[0] ? p.total : "null",
			       p.lag[0] ? p.lag : "null");
		else if (tty)
			printf("\r%s%*s", line, last_len > w ? last_len - w : 0, "");
		else
			printf("%s\n", line);
		last_len = w;
		fflush(stdout);
		if (strcmp(p.running, "t") == 0)
			continue;
		if (tty && !json)
			printf("\n");
		if (strcmp(p.phase, "done") == 0)
			return 0;
		fprintf(stderr, "pgchorusctl: recovery of node %d %s: %s\n", node, p.phase,
			p.error[0] ? p.error : "(no reason given)");
		return EXIT_FAILED;
	}
}

/* ---- compare, repair ----------------------------------------------------------------- */

/* SHOW COMPARE STATUS's row: job, status, started, ended, tables, divergent, detail, error */
struct job_status {
	char job[16], state[16], tables[32], divergent[32], detail[512], error[512];
};

/* Poll SHOW COMPARE STATUS until the job is no longer running. */
static void wait_job(struct job_status *s)
{
	for (;;) {
		struct answer a;
		int row;

		ctl_ask("SHOW COMPARE STATUS", false, &a);
		fail_if_error(&a);
		row = first_row(&a);
		memset(s, 0, sizeof(*s));
		if (row >= 0 && row < a.n - 1) {
			const char *l = a.lines[row];

			field(l, 0, s->job, sizeof(s->job));
			field(l, 1, s->state, sizeof(s->state));
			field(l, 4, s->tables, sizeof(s->tables));
			field(l, 5, s->divergent, sizeof(s->divergent));
			field(l, 6, s->detail, sizeof(s->detail));
			field(l, 7, s->error, sizeof(s->error));
		}
		answer_free(&a);
		if (strcmp(s->state, "running") != 0)
			return;
		usleep(200000);
	}
}

/* A table name for the admin console: letters, digits, '_', '$', '.' and double quotes only. */
static const char *table_arg(const char *s)
{
	if (!*s || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$.\"") != strlen(s)) {
		fprintf(stderr, "pgchorusctl: not a table name: %s\n", s);
		exit(EXIT_USAGE);
	}
	return s;
}

/* COMPARE, wait, print the divergent tables (all rows with --json). */
static int compare(char **tables, int n)
{
	struct answer a;
	struct job_status s;
	char line[4096];
	size_t len = (size_t)snprintf(line, sizeof(line), "COMPARE");
	int row, bad = 0;

	for (int i = 0; i < n && len < sizeof(line); i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", i ? ", " : " ", table_arg(tables[i]));
	if (len >= sizeof(line)) {
		fprintf(stderr, "pgchorusctl: too many tables\n");
		return EXIT_USAGE;
	}
	ctl_ask(line, false, &a);
	fail_if_error(&a);
	answer_free(&a);
	wait_job(&s);
	if (strcmp(s.state, "done") != 0) {
		fprintf(stderr, "pgchorusctl: compare %s: %s\n", s.state[0] ? s.state : "lost", s.error);
		return EXIT_FAILED;
	}
	ctl_ask("SHOW COMPARE", json, &a);
	fail_if_error(&a);
	if (json) {
		print_answer(&a, false);
		bad = atoi(s.divergent);
		answer_free(&a);
		return bad ? EXIT_FAILED : 0;
	}
	/* table | node | rows | checksum | divergent | differing_keys */
	row = first_row(&a);
	for (int i = row; row >= 0 && i < a.n - 1; i++) {
		char table[256], node[32], rows[32], divergent[8], keys[2048];

		field(a.lines[i], 0, table, sizeof(table));
		field(a.lines[i], 1, node, sizeof(node));
		field(a.lines[i], 2, rows, sizeof(rows));
		field(a.lines[i], 4, divergent, sizeof(divergent));
		field(a.lines[i], 5, keys, sizeof(keys));
		if (strcmp(divergent, "t") != 0)
			continue;
		printf("divergent: %s node %s: %s rows%s%s\n", table, node, rows, keys[0] ? ", differing keys: " : "",
		       keys);
		bad++;
	}
	answer_free(&a);
	printf("%s tables compared, %s divergent\n", s.tables, s.divergent);
	return bad || atoi(s.divergent) ? EXIT_FAILED : 0;
}

static int repair(const char *table, int from)
{
	struct answer a;
	struct job_status s;
	char line[512];

	snprintf(line, sizeof(line), "REPAIR TABLE %s FROM NODE %d", table_arg(table), from);
	ctl_ask(line, false, &a);
	fail_if_error(&a);
	answer_free(&a);
	wait_job(&s);
	if (strcmp(s.state, "done") != 0) {
		fprintf(stderr, "pgchorusctl: repair %s: %s\n", s.state[0] ? s.state : "lost", s.error);
		return EXIT_FAILED;
	}
	if (json)
		printf("{\"repaired\":\"%s\",\"rows\":%s}\n", table, s.tables[0] ? s.tables : "null");
	else
		printf("repaired %s\n", s.detail);
	return 0;
}

/* control_socket of the configuration file PATH (exit 2 if unreadable). */
static const char *socket_of(const char *path)
{
	static char buf[256];
	config_t c;
	const char *s = DEFAULT_SOCKET;

	config_init(&c);
	if (!config_read_file(&c, path)) {
		fprintf(stderr, "pgchorusctl: %s:%d: %s\n", config_error_file(&c) ? config_error_file(&c) : path,
			config_error_line(&c), config_error_text(&c));
		config_destroy(&c);
		exit(EXIT_USAGE);
	}
	config_lookup_string(&c, "control_socket", &s);
	snprintf(buf, sizeof(buf), "%s", s);
	config_destroy(&c);
	if (!buf[0]) {
		fprintf(stderr, "pgchorusctl: %s has no control socket (control_socket = \"\")\n", path);
		exit(EXIT_USAGE);
	}
	return buf;
}

static bool nargs_ok(const char *cmd, int nargs, int want)
{
	if (nargs == want)
		return true;
	fprintf(stderr, "pgchorusctl: %s takes %d argument%s\n", cmd, want, want == 1 ? "" : "s");
	return false;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' }, { "config", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },         { "help", no_argument, NULL, 'H' },
		{ "host", required_argument, NULL, 'h' },   { "port", required_argument, NULL, 'p' },
		{ "user", required_argument, NULL, 'U' },   { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = NULL, *cmd;
	char line[64];
	int c, nargs;

	/* options only before the command: "-1" is not an option after it */
	while ((c = getopt_long(argc, argv, "+s:f:jh:p:U:V", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock_path = optarg;
			break;
		case 'f':
			conf = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			pg_host = optarg;
			break;
		case 'p':
			pg_port = optarg;
			break;
		case 'U':
			pg_user = optarg;
			break;
		case 'H':
			usage(stdout);
			return 0;
		case 'V':
			printf("pgchorusctl %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "pgchorusctl: no command given\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	nargs = argc - optind - 1;
	/* Check the command and its arguments before connecting. */
	if (strcmp(cmd, "node-info") == 0) {
		if (nargs > 1) {
			fprintf(stderr, "pgchorusctl: node-info takes at most one argument\n");
			return EXIT_USAGE;
		}
		if (nargs)
			node_arg(argv[optind + 1]);
	} else if (!strcmp(cmd, "detach-node") && nargs == 2) {
		if (strcmp(argv[optind + 2], "--graceful") != 0) {
			fprintf(stderr, "pgchorusctl: usage: detach-node n [--graceful]\n");
			return EXIT_USAGE;
		}
		node_arg(argv[optind + 1]);
	} else if (!strcmp(cmd, "stop")) {
		if (nargs > 1 || (nargs == 1 && strcmp(argv[optind + 1], "--fast") != 0)) {
			fprintf(stderr, "pgchorusctl: usage: stop [--fast]\n");
			return EXIT_USAGE;
		}
	} else if (!strcmp(cmd, "attach-node") || !strcmp(cmd, "detach-node") || !strcmp(cmd, "recover-node") ||
		   !strcmp(cmd, "promote-node")) {
		if (!nargs_ok(cmd, nargs, 1))
			return EXIT_USAGE;
		node_arg(argv[optind + 1]);
	} else if (!strcmp(cmd, "compare")) {
		for (int i = 0; i < nargs; i++)
			table_arg(argv[optind + 1 + i]);
	} else if (!strcmp(cmd, "repair")) {
		if (nargs != 3 || strcmp(argv[optind + 2], "--from") != 0) {
			fprintf(stderr, "pgchorusctl: usage: repair TABLE --from n\n");
			return EXIT_USAGE;
		}
		table_arg(argv[optind + 1]);
		node_arg(argv[optind + 3]);
	} else if (!strcmp(cmd, "node-count") || !strcmp(cmd, "pool-status") || !strcmp(cmd, "reload") ||
		   !strcmp(cmd, "version") || !strcmp(cmd, "pools") || !strcmp(cmd, "clients") ||
		   !strcmp(cmd, "servers") || !strcmp(cmd, "stats") || !strcmp(cmd, "peers")) {
		if (!nargs_ok(cmd, nargs, 0))
			return EXIT_USAGE;
	} else {
		fprintf(stderr, "pgchorusctl: unknown command \"%s\"\n", cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((pg_host || pg_port || pg_user) && (sock_path || conf)) {
		fprintf(stderr, "pgchorusctl: -s/-f (control socket) and -h/-p/-U (admin console) exclude each other\n");
		return EXIT_USAGE;
	}
	if (!sock_path)
		sock_path = conf ? socket_of(conf) : DEFAULT_SOCKET;
	ctl_connect();
	if (strcmp(cmd, "node-info") == 0)
		return node_info(nargs ? node_arg(argv[optind + 1]) : -1);
	if (strcmp(cmd, "node-count") == 0)
		return node_count();
	if (strcmp(cmd, "pool-status") == 0)
		return pool_status();
	if (strcmp(cmd, "pools") == 0)
		return simple("SHOW POOLS", true);
	if (strcmp(cmd, "clients") == 0)
		return simple("SHOW CLIENTS", true);
	if (strcmp(cmd, "servers") == 0)
		return simple("SHOW SERVERS", true);
	if (strcmp(cmd, "stats") == 0)
		return simple("SHOW STATS", true);
	if (strcmp(cmd, "peers") == 0)
		return simple("SHOW PEERS", true);
	if (strcmp(cmd, "reload") == 0)
		return simple("RELOAD", false);
	if (strcmp(cmd, "stop") == 0)
		return simple(nargs ? "SHUTDOWN FAST" : "SHUTDOWN", false);
	if (strcmp(cmd, "version") == 0)
		return version();
	if (strcmp(cmd, "compare") == 0)
		return compare(argv + optind + 1, nargs);
	if (strcmp(cmd, "repair") == 0)
		return repair(argv[optind + 1], node_arg(argv[optind + 3]));
	snprintf(line, sizeof(line), "%s NODE %d",
		 !strcmp(cmd, "attach-node") ? "ATTACH" : !strcmp(cmd, "detach-node") ? "DETACH" :
		 !strcmp(cmd, "promote-node") ? "PROMOTE" : "RECOVER",
		 node_arg(argv[optind + 1]));
	if (!strcmp(cmd, "recover-node"))
		return recover_node(node_arg(argv[optind + 1]));
	if (!strcmp(cmd, "detach-node") && nargs == 2)
		snprintf(line, sizeof(line), "DETACH NODE %d GRACEFUL", node_arg(argv[optind + 1]));
	return simple(line, false);
}
