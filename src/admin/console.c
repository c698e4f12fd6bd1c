/*
 * console.c - the admin console's sessions (admin.h, doc/admin.md): the
 * login answered by pgchorus itself, and the protocol: simple Query (one
 * result per command), and the extended protocol with statements (the
 * unnamed one and named ones) and the unnamed portal, enough for libpq's
 * PQexecParams / PQprepare and the drivers built on them.
 *
 * Owns: struct admin_session (c->admin), freed by the client's close
 * callback.  Every message is seen whole before it is trusted (at most
 * ADMIN_MAX_MESSAGE bytes) and read through a bounds-checked reader that
 * must consume it exactly; anything malformed closes the session (08P01).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "config.h"
#include "pgchorus/admin.h"
#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/hmap.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/worker.h"
#include "admin-int.h"

/* Admin commands are short: a longer message is refused whole. */
#define ADMIN_MAX_MESSAGE 65536
/* Named statements one session may keep. */
#define ADMIN_MAX_STATEMENTS 100
/* Answers piled up before they are written out (then, if the client does
 * not read, reading stops until it does). */
#define ADMIN_OUTPUT_CHUNK 65536

#define SQLSTATE_INSUFFICIENT_PRIVILEGE "42501"

/* A prepared statement: one parsed command (call.text points into text). */
struct admin_stmt {
	struct admin_call call;
	char text[];
};

/* A command waiting for the workers' rows (admin_defer): the session
 * reads and answers nothing more until it is answered. */
struct admin_pending {
	struct admin_snapshot *snap;
	struct admin_res r;             /* its result so far (notices) */
	bool describe;
	int32_t max_rows;
	char *sql;                      /* a simple Query: its text, to go on after the command */
	int next;                       /* ... at this command */
};

struct admin_session {
	struct admin_pending *pending;  /* NULL: none */
	struct strmap stmts;            /* named statements: name -> struct admin_stmt */
	struct admin_stmt *unnamed;     /* NULL: none */
	struct admin_stmt *portal;      /* the unnamed portal's command (a copy); NULL: none */
	int16_t formats[ADMIN_MAX_COLS];/* its result formats, one per column */
	bool portal_done;               /* it ran: a second Execute returns nothing more */
	bool skip_to_sync;              /* an error in the extended protocol: ignore up to Sync */
};

bool admin_is_console(const char *database)
{
	return database && strcmp(database, ADMIN_DATABASE) == 0;
}

/* ---- session ----------------------------------------------------------------- */

static void stmt_free_cb(const char *key, void *value, void *arg)
{
	(void)key;
	(void)arg;
	free(value);
}

void admin_session_free(struct admin_session *as)
{
	if (!as)
		return;
	if (as->pending) {
		admin_snapshot_forget(as->pending->snap);
		admin_res_free(&as->pending->r);
		free(as->pending->sql);
		free(as->pending);
	}
	strmap_foreach(&as->stmts, stmt_free_cb, NULL);
	strmap_destroy(&as->stmts);
	free(as->unnamed);
	free(as->portal);
	free(as);
}

/* A statement holding a copy of TEXT (LEN bytes) with CALL re-pointed to it. */
static struct admin_stmt *stmt_new(const struct admin_call *call, const char *text, size_t len)
{
	struct admin_stmt *st = malloc(sizeof(*st) + len + 1);

	if (!st)
		return NULL;
	memcpy(st->text, text, len);
	st->text[len] = 0;
	st->call = *call;
	st->call.text = st->text + (call->cmd ? call->text - text : 0);
	if (!call->cmd)
		st->call.len = 0;
	return st;
}

static struct admin_stmt *stmt_dup(const struct admin_stmt *src)
{
	return stmt_new(&src->call, src->text, strlen(src->text));
}

static void drop_portal(struct admin_session *as)
{
	free(as->portal);
	as->portal = NULL;
	as->portal_done = false;
}

/* Is USER in LIST (comma separated, blanks around names ignored)? */
static bool user_listed(const char *list, const char *user)
{
	size_t ulen = strlen(user);
	const char *p = list;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == ulen && strncmp(p, user, len) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* "16.4 (pgchorus 0.1)": the PostgreSQL version of the libpq pgchorus uses
 * (drivers parse the leading number), and what answers. */
static void server_version(char *out, size_t n)
{
	int v = PQlibVersion();

	snprintf(out, n, "%d.%d (pgchorus %s)", v / 10000, v % 10000, PACKAGE_VERSION);
}

void admin_login(struct client *c)
{
	const struct config *cfg = c->w->cfg;
	const char *app = c->params[TP_APPLICATION_NAME];
	char version[64];
	bool ok;

	if (!user_listed(cfg->admin_users, c->user)) {
		log_warning("C-%p %s@%s: not in admin_users: admin console refused", (void *)c, c->user, c->addr);
		client_close(c, SQLSTATE_INSUFFICIENT_PRIVILEGE, "permission denied for the admin console");
		return;
	}
	c->admin = calloc(1, sizeof(*c->admin));
	if (!c->admin) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	strmap_init(&c->admin->stmts);
	server_version(version, sizeof(version));
	/* What libpq, psql and the drivers expect to hear at login; the console
	 * speaks UTF8, ISO dates and UTC. */
	ok = msg_auth_ok(&c->scratch) && msg_param_status(&c->scratch, "server_version", version) &&
	     msg_param_status(&c->scratch, "server_encoding", "UTF8") &&
	     msg_param_status(&c->scratch, "client_encoding", "UTF8") &&
	     msg_param_status(&c->scratch, "DateStyle", "ISO, MDY") &&
	     msg_param_status(&c->scratch, "IntervalStyle", "postgres") &&
	     msg_param_status(&c->scratch, "TimeZone", "UTC") &&
	     msg_param_status(&c->scratch, "integer_datetimes", "on") &&
	     msg_param_status(&c->scratch, "standard_conforming_strings", "on") &&
	     msg_param_status(&c->scratch, "is_superuser", "off") &&
	     msg_param_status(&c->scratch, "session_authorization", c->user) &&
	     msg_param_status(&c->scratch, "application_name", app ? app : "") &&
	     msg_backend_key(&c->scratch, c->cancel_pid, c->cancel_key) && msg_ready(&c->scratch, 'I');
	if (!ok) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	log_info("C-%p %s@%s: admin console login", (void *)c, c->user, c->addr);
	client_set_state(c, CL_IDLE);
	if (!client_flush_scratch(c))
		return;
	client_resume(c);
	if (c->in.data && iobuf_avail(&c->in))
		admin_process(c);
}

/* ---- answers ---------------------------------------------------------------- */

/* An ErrorResponse; false if memory ran out (C is then closed). */
static bool send_error(struct client *c, const struct admin_err *e)
{
	if (admin_msg_error(&c->scratch, "ERROR", e))
		return true;
	client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
	return false;
}

static bool send_verrorf(struct client *c, const char *sqlstate, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static bool send_verrorf(struct client *c, const char *sqlstate, const char *fmt, va_list ap)
{
	struct admin_err e = { .hint = "" };

	snprintf(e.sqlstate, sizeof(e.sqlstate), "%s", sqlstate);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	return send_error(c, &e);
}

static bool send_errorf(struct client *c, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool send_errorf(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = send_verrorf(c, sqlstate, fmt, ap);
	va_end(ap);
	return ok;
}

/* An extended-protocol error: the rest up to Sync is ignored. */
static bool ext_errorf(struct client *c, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool ext_errorf(struct client *c, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	c->admin->skip_to_sync = true;
	va_start(ap, fmt);
	ok = send_verrorf(c, sqlstate, fmt, ap);
	va_end(ap);
	return ok;
}

static bool send_empty(struct client *c, uint8_t type)
{
	if (msg_empty(&c->scratch, type))
		return true;
	client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
	return false;
}

/*
 * Append the answer of R (freed): notices, then the error, or the rows
 * (after a RowDescription if DESCRIBE) and CommandComplete.  Returns 1 if
 * the command ran, 0 if it failed (the client got the error), -1 if C was
 * closed.
 */
static int send_result(struct client *c, struct admin_res *r, bool describe, int32_t max_rows)
{
	const struct admin_cmd *cmd = r->cmd;
	bool ok;
	int ran;

	if (!r->failed && max_rows > 0 && r->n_rows > (uint64_t)max_rows)
		admin_error(r, SQLSTATE_FEATURE_NOT_SUPPORTED,
			    "the admin console cannot return a result in parts (Execute with a row limit)");
	ok = buf_append(&c->scratch, r->notices.data, r->notices.len);
	if (ok && r->failed) {
		ok = admin_msg_error(&c->scratch, "ERROR", &r->err);
	} else if (ok) {
		if (describe && cmd->n_cols)
			ok = admin_msg_row_description(&c->scratch, cmd, r->formats);
		ok = ok && buf_append(&c->scratch, r->rows.data, r->rows.len) &&
		     msg_command_complete(&c->scratch, cmd->tag);
	}
	ran = r->failed ? 0 : 1;
	admin_res_free(r);
	if (!ok) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return -1;
	}
	return ran;
}

/*
 * Run CALL and append its answer (send_result).  Returns 1 if it ran, 0 if
 * it failed (the client got the error), -1 if C was closed, 2 if it waits
 * for the workers (c->admin->pending is set; its answer comes later).
 */
static int run_call(struct client *c, const struct admin_call *call, const int16_t *formats, bool describe,
		    int32_t max_rows)
{
	struct admin_pending *p;
	struct admin_res r;

	if (!call->cmd)
		return send_empty(c, 'I') ? 1 : -1; /* EmptyQueryResponse */
	admin_res_init(&r, c->w->cfg, c->user, c->addr, call->cmd, formats);
	r.can_defer = true;
	admin_execute(call, &r);
	if (r.failed || !r.collect)
		return send_result(c, &r, describe, max_rows);
	p = calloc(1, sizeof(*p));
	if (p)
		p->snap = admin_snapshot_start(c->w, c, &r);
	if (!p || !p->snap) {
		free(p);
		admin_error(&r, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return send_result(c, &r, describe, max_rows);
	}
	p->r = r;
	p->describe = describe;
	p->max_rows = max_rows;
	c->admin->pending = p;
	return 2;
}

/* Run CALLS[FROM..N) of the Query SQL, each with its own result, up to an
 * error, then ReadyForQuery; if one waits for the workers, the rest waits
 * with it.  false if C was closed. */
static bool run_calls(struct client *c, const char *sql, const struct admin_call *calls, int n, int from)
{
	for (int i = from; i < n; i++) {
		int r = run_call(c, &calls[i], NULL, true, 0);

		if (r < 0)
			return false;
		if (r == 0)
			break;
		if (r == 2) {
			c->admin->pending->next = i + 1;
			c->admin->pending->sql = strdup(sql);
			if (c->admin->pending->sql)
				return true;
			client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			return false;
		}
	}
	if (msg_ready(&c->scratch, 'I'))
		return true;
	client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
	return false;
}

void admin_deferred_done(struct client *c, struct admin_snapshot *s)
{
	struct admin_session *as = c->admin;
	struct admin_pending *p = as ? as->pending : NULL;
	struct admin_call calls[ADMIN_MAX_CALLS];
	struct admin_err err;
	bool ok = true;
	int r, n;

	if (!p || p->snap != s)
		return;
	as->pending = NULL; /* S is freed when this returns */
	if (c->state == CL_CLOSING) {
		admin_res_free(&p->r);
		free(p->sql);
		free(p);
		return;
	}
	p->r.cfg = c->w->cfg; /* the one it started with may have been replaced */
	admin_snapshot_result(s, &p->r);
	r = send_result(c, &p->r, p->describe, p->max_rows);
	if (r >= 0 && p->sql) {
		/* the rest of the Query: it parsed before, it parses again */
		n = r == 1 ? admin_parse(p->sql, calls, ADMIN_MAX_CALLS, &err) : 0;
		ok = run_calls(c, p->sql, calls, n > 0 ? n : 0, p->next);
	} else if (r == 0) {
		as->skip_to_sync = true; /* an Execute failed */
	}
	free(p->sql);
	free(p);
	if (r < 0 || !ok)
		return;
	admin_process(c); /* writes the answer, then reads on */
}

/* ---- simple protocol ------------------------------------------------------------ */

/* Query: every command of SQL in order, each with its own result; an error
 * ends the string (the rest does not run), as in PostgreSQL. */
static bool on_query(struct client *c, const char *sql)
{
	struct admin_call calls[ADMIN_MAX_CALLS];
	struct admin_err err;
	int n = admin_parse(sql, calls, ADMIN_MAX_CALLS, &err);

	/* A simple Query ends the unnamed portal and statement. */
	drop_portal(c->admin);
	free(c->admin->unnamed);
	c->admin->unnamed = NULL;
	if (n < 0) {
		log_info("admin %s@%s: refused (%s): %s", c->user, c->addr, err.sqlstate, err.message);
		if (!send_error(c, &err))
			return false;
	} else if (n == 0) {
		if (!send_empty(c, 'I'))
			return false;
	}
	return run_calls(c, sql, calls, n > 0 ? n : 0, 0);
}

/* ---- extended protocol ---------------------------------------------------------- */

static struct admin_stmt *find_stmt(struct admin_session *as, const char *name)
{
	return *name ? strmap_get(&as->stmts, name) : as->unnamed;
}

static bool on_parse(struct client *c, struct msg_reader *rd)
{
	struct admin_session *as = c->admin;
	const char *name = reader_string(rd);
	const char *sql = reader_string(rd);
	uint16_t n_types = reader_int16(rd);
	struct admin_call call;
	struct admin_err err;
	struct admin_stmt *st;
	void *old = NULL;
	int n;

	reader_bytes(rd, 4 * (size_t)n_types);
	if (!reader_done(rd)) {
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Parse message");
		return false;
	}
	if (*name && strmap_get(&as->stmts, name))
		return ext_errorf(c, "42P05", "prepared statement \"%s\" already exists", name);
	if (*name && as->stmts.count >= ADMIN_MAX_STATEMENTS)
		return ext_errorf(c, "54000", "too many prepared statements (at most %d)", ADMIN_MAX_STATEMENTS);
	if (n_types)
		return ext_errorf(c, SQLSTATE_FEATURE_NOT_SUPPORTED, "admin commands take no parameters");
	n = admin_parse(sql, &call, 1, &err);
	if (n < 0 && strcmp(err.sqlstate, "54000") == 0)
		return ext_errorf(c, "42601", "cannot insert multiple commands into a prepared statement");
	if (n < 0) {
		log_info("admin %s@%s: refused (%s): %s", c->user, c->addr, err.sqlstate, err.message);
		as->skip_to_sync = true;
		return send_error(c, &err);
	}
	if (n == 0)
		memset(&call, 0, sizeof(call));
	st = stmt_new(&call, sql, strlen(sql));
	if (!st || (*name && !strmap_put(&as->stmts, name, st, &old))) {
		free(st);
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	if (!*name) {
		free(as->unnamed);
		as->unnamed = st;
	}
	return send_empty(c, '1'); /* ParseComplete */
}

/* Read COUNT result format codes into OUT, one per column of N_COLS (none:
 * text, one: for all).  false when they do not fit or are not 0 / 1. */
static bool read_formats(struct msg_reader *rd, uint16_t count, int n_cols, int16_t *out)
{
	int16_t codes[ADMIN_MAX_COLS];
	bool ok = (count <= 1 || count == n_cols) && n_cols <= ADMIN_MAX_COLS;

	for (uint16_t i = 0; i < count; i++) {
		int16_t f = (int16_t)reader_int16(rd);

		if (i < ADMIN_MAX_COLS)
			codes[i] = f;
		if (f != 0 && f != 1)
			ok = false;
	}
	if (!ok)
		return false;
	for (int i = 0; i < n_cols; i++)
		out[i] = count == 0 ? 0 : count == 1 ? codes[0] : codes[i];
	return true;
}

static bool on_bind(struct client *c, struct msg_reader *rd)
{
	struct admin_session *as = c->admin;
	const char *portal = reader_string(rd);
	const char *name = reader_string(rd);
	uint16_t n_pfmt = reader_int16(rd), n_params, n_res;
	int16_t formats[ADMIN_MAX_COLS];
	struct admin_stmt *st;
	bool formats_ok;
	int n_cols;

	reader_bytes(rd, 2 * (size_t)n_pfmt);
	n_params = reader_int16(rd);
	for (uint16_t i = 0; i < n_params && !rd->err; i++) {
		uint32_t len = reader_int32(rd);

		if (len != UINT32_MAX)
			reader_bytes(rd, len);
	}
	n_res = reader_int16(rd);
	st = find_stmt(as, name);
	n_cols = st && st->call.cmd ? st->call.cmd->n_cols : 0;
	formats_ok = read_formats(rd, n_res, n_cols, formats);
	if (!reader_done(rd)) {
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Bind message");
		return false;
	}
	if (*portal)
		return ext_errorf(c, SQLSTATE_FEATURE_NOT_SUPPORTED,
				  "the admin console has only the unnamed portal (portal \"%s\")", portal);
	if (!st)
		return ext_errorf(c, "26000", "prepared statement \"%s\" does not exist", name);
	if (n_params)
		return ext_errorf(c, SQLSTATE_FEATURE_NOT_SUPPORTED, "admin commands take no parameters");
	if (!formats_ok)
		return ext_errorf(c, SQLSTATE_PROTOCOL_VIOLATION,
				  "bind message has %u result formats but query has %d columns (or a format is not 0 or 1)",
				  n_res, n_cols);
	drop_portal(as);
	as->portal = stmt_dup(st);
	if (!as->portal) {
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	memcpy(as->formats, formats, sizeof(formats[0]) * (size_t)n_cols);
	return send_empty(c, '2'); /* BindComplete */
}

static bool on_describe(struct client *c, struct msg_reader *rd)
{
	struct admin_session *as = c->admin;
	uint8_t kind = reader_byte(rd);
	const char *name = reader_string(rd);
	struct msg_builder mb;
	struct admin_stmt *st;

	if (!reader_done(rd) || (kind != 'S' && kind != 'P')) {
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Describe message");
		return false;
	}
	if (kind == 'P') {
		if (*name || !as->portal)
			return ext_errorf(c, "34000", "portal \"%s\" does not exist", name);
		if (admin_msg_row_description(&c->scratch, as->portal->call.cmd, as->formats))
			return true;
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	st = find_stmt(as, name);
	if (!st)
		return ext_errorf(c, "26000", "prepared statement \"%s\" does not exist", name);
	builder_begin(&mb, &c->scratch, 't'); /* ParameterDescription: no parameters */
	builder_int16(&mb, 0);
	if (builder_finish(&mb) && admin_msg_row_description(&c->scratch, st->call.cmd, NULL))
		return true;
	client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
	return false;
}

static bool on_execute(struct client *c, struct msg_reader *rd)
{
	struct admin_session *as = c->admin;
	const char *portal = reader_string(rd);
	int32_t max_rows = (int32_t)reader_int32(rd);
	int r;

	if (!reader_done(rd)) {
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Execute message");
		return false;
	}
	if (*portal || !as->portal)
		return ext_errorf(c, "34000", "portal \"%s\" does not exist", portal);
	if (as->portal_done) {
		/* Ran to its end already: nothing more (a command runs once). */
		if (!as->portal->call.cmd)
			return send_empty(c, 'I');
		if (msg_command_complete(&c->scratch, as->portal->call.cmd->tag))
			return true;
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	}
	as->portal_done = true;
	r = run_call(c, &as->portal->call, as->formats, false, max_rows);
	if (r == 0)
		as->skip_to_sync = true;
	return r >= 0;
}

static bool on_close(struct client *c, struct msg_reader *rd)
{
	struct admin_session *as = c->admin;
	uint8_t kind = reader_byte(rd);
	const char *name = reader_string(rd);

	if (!reader_done(rd) || (kind != 'S' && kind != 'P')) {
		client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Close message");
		return false;
	}
	/* Closing what does not exist is not an error. */
	if (kind == 'P' && !*name) {
		drop_portal(as);
	} else if (kind == 'S' && !*name) {
		free(as->unnamed);
		as->unnamed = NULL;
	} else if (kind == 'S') {
		free(strmap_remove(&as->stmts, name));
	}
	return send_empty(c, '3'); /* CloseComplete */
}

/* ---- the message loop ------------------------------------------------------------- */

/* One whole message of TYPE (BODY, LEN bytes after the header).  false if C was closed. */
static bool on_message(struct client *c, uint8_t type, const uint8_t *body, uint32_t len)
{
	struct admin_session *as = c->admin;
	struct msg_reader rd;

	reader_init(&rd, body, len);
	if (as->skip_to_sync && type != 'S')
		return true;
	switch (type) {
	case 'Q': {
		const char *sql = reader_string(&rd);

		if (!reader_done(&rd)) {
			client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid Query message");
			return false;
		}
		return on_query(c, sql);
	}
	case 'P':
		return on_parse(c, &rd);
	case 'B':
		return on_bind(c, &rd);
	case 'D':
		return on_describe(c, &rd);
	case 'E':
		return on_execute(c, &rd);
	case 'C':
		return on_close(c, &rd);
	case 'S':
	case 'H':
		if (len) {
			client_close(c, SQLSTATE_PROTOCOL_VIOLATION, "invalid %s message", type == 'S' ? "Sync" : "Flush");
			return false;
		}
		if (type == 'H')
			return true; /* everything is written at the end of the batch anyway */
		as->skip_to_sync = false;
		drop_portal(as); /* the implicit transaction ends */
		if (msg_ready(&c->scratch, 'I'))
			return true;
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	case 'F':
		if (!send_errorf(c, SQLSTATE_FEATURE_NOT_SUPPORTED, "the admin console has no functions to call"))
			return false;
		if (msg_ready(&c->scratch, 'I'))
			return true;
		client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return false;
	default:
		/* CopyData, CopyDone, CopyFail outside COPY: ignored, as PostgreSQL does. */
		return true;
	}
}

void admin_process(struct client *c)
{
	struct worker *w = c->w;

	while (c->state == CL_IDLE && !c->admin->pending && c->in.data && iobuf_avail(&c->in)) {
		uint32_t avail = iobuf_avail(&c->in), len;
		uint8_t type;
		enum codec_frame f = codec_frame(iobuf_head(&c->in), avail, w->cfg->max_message_size, &type, &len);

		if (f == FRAME_NEED_MORE)
			break;
		if (!client_frame_ok(f, type, len)) {
			client_close_bad_frame(c, f, type, codec_get32(iobuf_head(&c->in) + 1));
			return;
		}
		if (len > ADMIN_MAX_MESSAGE) {
			client_close(c, SQLSTATE_PROTOCOL_VIOLATION,
				     "message of %u bytes is too long for the admin console (at most %d)", len,
				     ADMIN_MAX_MESSAGE);
			return;
		}
		if (avail < len) {
			if (!iobuf_ensure(&c->in, &w->bp, len))
				client_close(c, SQLSTATE_OUT_OF_MEMORY, "out of memory");
			break;
		}
		if (!on_message(c, type, iobuf_head(&c->in) + 5, len - 5))
			return;
		iobuf_consume(&c->in, &w->bp, len);
		if (c->scratch.len >= ADMIN_OUTPUT_CHUNK) {
			if (!client_flush_scratch(c))
				return;
			if (pstream_busy(&c->ps))
				break; /* the client does not read: admin_drained() goes on */
		}
	}
	if (c->state != CL_IDLE || !client_flush_scratch(c))
		return;
	if (pstream_busy(&c->ps) || c->admin->pending)
		client_pause(c); /* pending: admin_deferred_done goes on */
	else
		client_resume(c);
}

void admin_drained(struct client *c)
{
	if (c->state != CL_IDLE || c->admin->pending)
		return;
	client_resume(c);
	if (c->in.data && iobuf_avail(&c->in))
		admin_process(c);
}
