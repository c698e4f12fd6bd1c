/*
 * ctlsock.c - the control socket (ctlsock.h, doc/admin.md): a unix socket
 * on the main thread's loop where a local client sends admin console
 * commands, one per line, and reads the answers as aligned text or JSON.
 *
 * The commands, their parser and their results are the console's
 * (command.c); this file only turns a result into text.  Owns the
 * listening pipe and struct ctl_conn per connection (freed in the close
 * callback).  Who may connect is decided by the file's mode (0600: the
 * user pgchorus runs as, and root).
 *
 * Commands answered by every worker (SHOW CLIENTS...: admin_defer) do not
 * block the loop: the connection starts a snapshot request (cmd_show.c),
 * stops reading and running lines, and goes on when the last worker posts
 * the request to DONE_INBOX (an async handle of the main loop).  A
 * connection that closes meanwhile forgets the request; the request is
 * freed here when it comes back, whatever became of the connection.
 */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "pgchorus/buf.h"
#include "pgchorus/ctlsock.h"
#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/worker.h"
#include "admin-int.h"

/* A command line longer than this is refused and the connection closed. */
#define CTL_MAX_LINE 8192
/* Answers not yet written beyond this: reading stops until they are (a
 * client that sends without reading does not pile up memory). */
#define CTL_MAX_QUEUED (1024 * 1024)

/* A command of a line waiting for the workers' rows. */
struct ctl_pending {
	struct admin_snapshot *snap;
	struct admin_res r;
	bool json;
	int next;                 /* the line's next command */
	char *line;               /* the commands (without --json), to go on after it */
};

struct ctl_conn {
	uv_pipe_t pipe;
	struct ctl_conn *next;
	struct ctl_conn **prevp;
	bool closing;
	bool paused;              /* reading stopped: too much output queued */
	bool eof;                 /* the client is done sending (seen while pending) */
	bool reading;             /* uv_read_start is in force */
	struct ctl_pending *pending; /* NULL: none; else nothing more is read or run */
	char user[32];            /* "uid N" of the peer, for the log */
	size_t len;               /* bytes of LINE held */
	char line[CTL_MAX_LINE];
};

struct ctl_write {
	uv_write_t req;
	struct buf b;
};

static uv_pipe_t server;
static bool listening;
static char *sock_path;
static struct ctl_conn *conns;

/* Snapshot requests whose parts are all in (struct inbox_msg, snap set),
 * posted by the workers.  DONE_OPEN (under DONE_LOCK): DONE_ASYNC may be
 * signalled; once false, requests are freed by whoever posts them. */
static uv_mutex_t done_lock;
static uv_async_t done_async;
static struct list done_inbox;
static bool done_open;

/* ---- answers (tablefmt.c) ------------------------------------------------------ */

static bool res_next_row(const void *src, size_t *pos, struct tf_value *vals)
{
	return admin_res_next_row(src, pos, vals);
}

static const char *res_next_notice(const void *src, size_t *pos)
{
	return admin_res_next_notice(src, pos);
}

/* R's answer (not an error) as text or JSON into O. */
static void answer(struct tf_out *o, const struct admin_res *r, bool json)
{
	struct tf_table t = {
		.tag = r->cmd->tag,
		.n_cols = r->cmd->n_cols < TF_MAX_COLS ? r->cmd->n_cols : TF_MAX_COLS,
		.src = r,
		.next_row = res_next_row,
		.next_notice = res_next_notice,
	};

	for (int i = 0; i < t.n_cols && i < TF_MAX_COLS; i++) {
		t.col_name[i] = r->cmd->cols[i].name;
		t.col_type[i] = (unsigned)r->cmd->cols[i].type;
	}
	if (json)
		tf_json(o, &t);
	else
		tf_text(o, &t);
}

static void answer_error(struct tf_out *o, const struct admin_err *e, bool json)
{
	tf_error(o, e->sqlstate, e->message, e->hint, json);
}

/* ---- running a line ---------------------------------------------------------------- */

static void pending_free(struct ctl_pending *p)
{
	admin_res_free(&p->r);
	free(p->line);
	free(p);
}

/* Run the commands CALLS[FROM..N) of LINE, answers into O, up to an error
 * or a command that waits for the workers (cc->pending set: the rest of
 * the line runs when it is answered).  The answer to a line ends with an
 * empty line, added once its last command ran. */
static void run_calls(struct ctl_conn *cc, const char *line, const struct admin_call *calls, int n, int from,
		      bool json, struct tf_out *o)
{
	struct config *cfg = n > from ? nodestate_config() : NULL;
	int i;

	for (i = from; i < n; i++) {
		struct admin_res r;
		bool failed;

		admin_res_init(&r, cfg, cc->user, "control socket", calls[i].cmd, NULL);
		r.can_defer = true;
		admin_execute(&calls[i], &r);
		if (!r.failed && r.collect) {
			struct ctl_pending *p = calloc(1, sizeof(*p));

			if (p && (p->line = strdup(line)))
				p->snap = admin_snapshot_start(NULL, cc, &r);
			if (p && p->snap) {
				r.cfg = NULL; /* CFG is not kept */
				p->r = r;
				p->json = json;
				p->next = i + 1;
				cc->pending = p;
				break;
			}
			if (p)
				free(p->line);
			free(p);
			admin_error(&r, SQLSTATE_OUT_OF_MEMORY, "out of memory");
		}
		failed = r.failed;
		if (failed)
			answer_error(o, &r.err, json);
		else
			answer(o, &r, json);
		admin_res_free(&r);
		if (failed)
			break; /* as in the console: an error skips the commands after it */
	}
	if (cfg)
		config_unref(cfg);
	if (!cc->pending)
		tf_str(o, "\n");
}

/* LINE (NUL-terminated, no newline): "[--json ]COMMANDS".  The answer,
 * ending with an empty line, into O (unless a command waits). */
static void run_line(struct ctl_conn *cc, char *line, struct tf_out *o)
{
	struct admin_call calls[ADMIN_MAX_CALLS];
	struct admin_err err;
	bool json = false;
	int n;

	while (*line == ' ' || *line == '\t')
		line++;
	if (strncmp(line, "--json", 6) == 0 && (line[6] == 0 || line[6] == ' ' || line[6] == '\t')) {
		json = true;
		line += 6;
	}
	n = admin_parse(line, calls, ADMIN_MAX_CALLS, &err);
	if (n < 0) {
		log_info("admin %s@control socket: refused (%s): %s", cc->user, err.sqlstate, err.message);
		answer_error(o, &err, json);
	}
	run_calls(cc, line, calls, n, 0, json, o);
}

/* ---- connections ------------------------------------------------------------------- */

static void conn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void conn_close(struct ctl_conn *cc)
{
	if (cc->closing)
		return;
	cc->closing = true;
	if (cc->pending) {
		admin_snapshot_forget(cc->pending->snap);
		pending_free(cc->pending);
		cc->pending = NULL;
	}
	*cc->prevp = cc->next;
	if (cc->next)
		cc->next->prevp = cc->prevp;
	uv_close((uv_handle_t *)&cc->pipe, conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

/* Start reading CC (if it is not); false if that failed (CC is closed then). */
static bool read_on(struct ctl_conn *cc)
{
	if (cc->reading)
		return true;
	if (uv_read_start((uv_stream_t *)&cc->pipe, on_alloc, on_read) < 0) {
		conn_close(cc);
		return false;
	}
	cc->reading = true;
	return true;
}

static void read_off(struct ctl_conn *cc)
{
	uv_read_stop((uv_stream_t *)&cc->pipe);
	cc->reading = false;
}

static void write_done(uv_write_t *req, int status)
{
	struct ctl_write *w = (struct ctl_write *)req;

	struct ctl_conn *cc = req->handle->data;

	(void)status; /* a client that went away: its read side closes the connection */
	buf_free(&w->b);
	free(w);
	if (cc->paused && !cc->closing && !cc->pending &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&cc->pipe) == 0) {
		cc->paused = false;
		read_on(cc);
	}
}

/* Send O (taken over) to CC; false if it could not be (CC is closed then). */
static bool conn_send(struct ctl_conn *cc, struct tf_out *o)
{
	struct ctl_write *w;
	uv_buf_t ub;

	if (o->oom || !(w = malloc(sizeof(*w)))) {
		log_error("control socket: out of memory, connection closed");
		buf_free(&o->b);
		conn_close(cc);
		return false;
	}
	w->b = o->b;
	buf_init(&o->b);
	ub = uv_buf_init((char *)w->b.data, (unsigned int)w->b.len);
	if (uv_write(&w->req, (uv_stream_t *)&cc->pipe, &ub, 1, write_done) < 0) {
		buf_free(&w->b);
		free(w);
		conn_close(cc);
		return false;
	}
	return true;
}

static void shutdown_done(uv_shutdown_t *req, int status)
{
	struct ctl_conn *cc = req->handle->data;

	(void)status;
	free(req);
	conn_close(cc);
}

/* The client is done sending: close once the answers are written. */
static void conn_end(struct ctl_conn *cc)
{
	uv_shutdown_t *req = malloc(sizeof(*req));

	read_off(cc);
	if (!req || uv_shutdown(req, (uv_stream_t *)&cc->pipe, shutdown_done) < 0) {
		free(req);
		conn_close(cc);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct ctl_conn *cc = h->data;

	(void)suggested;
	*b = uv_buf_init(cc->line + cc->len, (unsigned int)(CTL_MAX_LINE - cc->len));
}

/* Run the complete lines held in cc->line, answers into O, until none is
 * left or one waits for the workers; what is left moves to the front. */
static void run_lines(struct ctl_conn *cc, struct tf_out *o)
{
	char *start = cc->line, *nl;

	while (!cc->pending && (nl = memchr(start, '\n', cc->len - (size_t)(start - cc->line)))) {
		*nl = 0;
		if (nl > start && nl[-1] == '\r')
			nl[-1] = 0;
		run_line(cc, start, o);
		start = nl + 1;
	}
	cc->len -= (size_t)(start - cc->line);
	memmove(cc->line, start, cc->len);
}

/* After reading, or after a waiting command was answered: run the lines
 * held, send O (taken over), and read on unless a command waits again,
 * too much output is queued, or the client is done sending. */
static void conn_go_on(struct ctl_conn *cc, struct tf_out *o)
{
	uv_stream_t *s = (uv_stream_t *)&cc->pipe;

	run_lines(cc, o);
	if (!cc->pending && cc->len == CTL_MAX_LINE) {
		struct admin_err e = { .sqlstate = "54000", .hint = "" };

		snprintf(e.message, sizeof(e.message), "command line too long (at most %d bytes)", CTL_MAX_LINE - 1);
		answer_error(o, &e, false);
		tf_str(o, "\n");
		if (conn_send(cc, o))
			conn_end(cc);
		return;
	}
	if (o->b.len && !conn_send(cc, o))
		return;
	buf_free(&o->b);
	if (cc->pending) {
		read_off(cc);
		return;
	}
	if (cc->eof) {
		conn_end(cc);
		return;
	}
	cc->paused = uv_stream_get_write_queue_size(s) > CTL_MAX_QUEUED;
	if (cc->paused)
		read_off(cc);
	else
		read_on(cc);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct ctl_conn *cc = s->data;
	struct tf_out o = { .oom = false };

	(void)b;
	if (nread == UV_EOF && !cc->pending) {
		conn_end(cc);
		return;
	}
	if (nread == UV_EOF) {
		cc->eof = true; /* closed once the waiting command is answered */
		read_off(cc);
		return;
	}
	if (nread < 0) {
		conn_close(cc);
		return;
	}
	if (nread == 0)
		return;
	cc->len += (size_t)nread;
	buf_init(&o.b);
	conn_go_on(cc, &o);
}

/* Every worker's part of S is in: answer the waiting command of CC, then
 * run the rest of its line and the lines after it. */
static void deferred_done(struct ctl_conn *cc, struct admin_snapshot *s)
{
	struct ctl_pending *p = cc->pending;
	struct admin_call calls[ADMIN_MAX_CALLS];
	struct admin_err err;
	struct tf_out o = { .oom = false };
	struct config *cfg;
	int n;

	if (!p || p->snap != s || cc->closing)
		return;
	cc->pending = NULL;
	buf_init(&o.b);
	cfg = nodestate_config();
	p->r.cfg = cfg;
	admin_snapshot_result(s, &p->r);
	p->r.cfg = NULL;
	if (p->r.failed) {
		answer_error(&o, &p->r.err, p->json);
		tf_str(&o, "\n");
	} else {
		answer(&o, &p->r, p->json);
		/* the rest of the line: it parsed before, it parses again */
		n = admin_parse(p->line, calls, ADMIN_MAX_CALLS, &err);
		run_calls(cc, p->line, calls, n > 0 ? n : 0, p->next, p->json, &o);
	}
	if (cfg)
		config_unref(cfg);
	pending_free(p);
	conn_go_on(cc, &o);
}

static void on_done(uv_async_t *a)
{
	struct list batch, *it;

	(void)a;
	list_init(&batch);
	uv_mutex_lock(&done_lock);
	while ((it = list_pop_first(&done_inbox)) != NULL)
		list_append(&batch, it);
	uv_mutex_unlock(&done_lock);
	while ((it = list_pop_first(&batch)) != NULL) {
		struct inbox_msg *m = list_entry(it, struct inbox_msg, link);
		struct admin_snapshot *s = m->snap;
		struct ctl_conn *cc = admin_snapshot_owner(s);

		free(m);
		if (cc)
			deferred_done(cc, s);
		admin_snapshot_free(s);
	}
}

void ctlsock_snapshot_post(struct inbox_msg *m)
{
	struct admin_snapshot *s = m->snap;

	uv_mutex_lock(&done_lock);
	if (done_open) {
		list_append(&done_inbox, &m->link);
		uv_async_send(&done_async);
		m = NULL;
	}
	uv_mutex_unlock(&done_lock);
	if (m) {
		/* the socket is closed: so is every connection that asked */
		free(m);
		admin_snapshot_free(s);
	}
}

static void on_connection(uv_stream_t *srv, int status)
{
	struct ctl_conn *cc;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	uv_os_fd_t fd;

	if (status < 0) {
		log_warning("control socket: accept: %s", uv_strerror(status));
		return;
	}
	cc = calloc(1, sizeof(*cc));
	if (!cc || uv_pipe_init(srv->loop, &cc->pipe, 0) < 0) {
		log_error("control socket: out of memory");
		free(cc);
		return;
	}
	cc->pipe.data = cc;
	cc->next = conns;
	cc->prevp = &conns;
	if (conns)
		conns->prevp = &cc->next;
	conns = cc;
	if (uv_accept(srv, (uv_stream_t *)&cc->pipe) < 0) {
		conn_close(cc);
		return;
	}
	snprintf(cc->user, sizeof(cc->user), "uid ?");
	if (uv_fileno((uv_handle_t *)&cc->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
		snprintf(cc->user, sizeof(cc->user), "uid %u", (unsigned)cred.uid);
	read_on(cc);
}

/* ---- the socket ----------------------------------------------------------------------- */

/* PATH exists: remove it if it is a socket no one listens on.  0 or -1 (logged). */
static int remove_stale(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("control_socket %s exists and is not a socket", path);
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (r == 0) {
		log_error("control_socket %s: another process listens on it (another pgchorus?)", path);
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		log_error("control_socket %s: cannot remove the stale socket: %s", path, strerror(errno));
		return -1;
	}
	log_info("control_socket %s: stale socket removed", path);
	return 0;
}

int ctlsock_start(uv_loop_t *loop, const struct config *cfg)
{
	int r;

	if (!cfg->control_socket[0])
		return 0;
	if (remove_stale(cfg->control_socket) < 0)
		return -1;
	if (uv_mutex_init(&done_lock) < 0 || uv_async_init(loop, &done_async, on_done) < 0) {
		log_error("control socket: cannot create its async handle");
		return -1;
	}
	list_init(&done_inbox);
	done_open = true;
	sock_path = strdup(cfg->control_socket);
	if (!sock_path || uv_pipe_init(loop, &server, 0) < 0) {
		log_error("control socket: out of memory");
		free(sock_path);
		sock_path = NULL;
		return -1;
	}
	listening = true;
	r = uv_pipe_bind(&server, sock_path);
	/* 0600 before listen(): until then a connect is refused anyway */
	if (r == 0 && chmod(sock_path, 0600) < 0)
		r = uv_translate_sys_error(errno);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&server, 16, on_connection);
	if (r < 0) {
		log_error("control_socket %s: %s", sock_path, uv_strerror(r));
		ctlsock_stop();
		return -1;
	}
	log_info("control socket listening on %s", sock_path);
	return 0;
}

void ctlsock_stop(void)
{
	while (conns)
		conn_close(conns);
	if (done_open) {
		/* every connection forgot its request: answers already in are freed */
		uv_mutex_lock(&done_lock);
		done_open = false;
		uv_mutex_unlock(&done_lock);
		uv_close((uv_handle_t *)&done_async, NULL);
		on_done(&done_async);
	}
	if (!listening)
		return;
	listening = false;
	uv_close((uv_handle_t *)&server, NULL);
	unlink(sock_path);
	free(sock_path);
	sock_path = NULL;
}
