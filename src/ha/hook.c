/*
 * hook.c - hook scripts (failover_command, failback_command, the recovery
 * commands): placeholder expansion, and running a command with /bin/sh -c,
 * its standard output and error logged line by line.
 *
 * Two ways to run one:
 *  - hook_run_async (any thread): the expanded command is queued (hk_lock)
 *    and an uv_async_t wakes the main loop, which spawns it there and
 *    watches it with handles (process, two pipes, one timer);
 *  - hook_run_wait (the HA thread): posix_spawn and a poll() loop in the
 *    calling thread, which blocks until the script ends.
 *
 * A script runs in a process group of its own, so that the timeout kills
 * what it started too: SIGTERM to the group after hook_timeout seconds,
 * SIGKILL 5 s later if it is still there.
 *
 * Placeholder values are substituted raw, not shell-quoted (as pgpool-II
 * does): a template that may receive an empty value or one with spaces
 * quotes the placeholder itself, e.g. '%D'.
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pgchorus/ha.h"
#include "pgchorus/log.h"

extern char **environ;

#define HOOK_LINE_MAX 1024     /* a longer output line is logged in pieces */
#define HOOK_KILL_DELAY 5.0    /* seconds between SIGTERM and SIGKILL */
#define HOOK_DRAIN_MS 1000     /* after the exit, output still read this long */
#define HOOK_STOP_WAIT_MS 2000 /* hooks_stop: wait this long for a killed hook's exit */

/* ------------------------------------------------------------------------ */
/* Placeholders                                                              */
/* ------------------------------------------------------------------------ */

void hook_args_for(const struct config *cfg, int node, struct hook_args *a)
{
	int primary = node_primary();

	memset(a, 0, sizeof(*a));
	a->node = node;
	a->host = "";
	a->data_dir = "";
	a->primary = primary;
	a->p_host = "";
	a->p_data_dir = "";
	if (node >= 0 && node < cfg->n_nodes) {
		a->host = cfg->nodes[node].host;
		a->port = cfg->nodes[node].port;
		a->data_dir = cfg->nodes[node].data_dir ? cfg->nodes[node].data_dir : "";
	}
	if (primary >= 0 && primary < cfg->n_nodes) {
		a->p_host = cfg->nodes[primary].host;
		a->p_port = cfg->nodes[primary].port;
		a->p_data_dir = cfg->nodes[primary].data_dir ? cfg->nodes[primary].data_dir : "";
	}
}

/* Append S (LEN bytes) at *POS of OUT (N bytes, the last kept for the NUL). */
static void put(char *out, size_t n, size_t *pos, const char *s, size_t len)
{
	if (*pos + 1 < n) {
		size_t room = n - 1 - *pos;

		memcpy(out + *pos, s, len < room ? len : room);
	}
	*pos += len;
}

size_t hook_expand(const char *tmpl, const struct hook_args *a, char *out, size_t n)
{
	size_t pos = 0;

	for (const char *p = tmpl; *p; p++) {
		char num[16];
		const char *v = NULL;

		if (*p != '%') {
			put(out, n, &pos, p, 1);
			continue;
		}
		switch (p[1]) {
		case 'd':
			snprintf(num, sizeof(num), "%d", a->node);
			v = num;
			break;
		case 'h':
			v = a->host ? a->host : "";
			break;
		case 'p':
			snprintf(num, sizeof(num), "%d", a->port);
			v = num;
			break;
		case 'D':
			v = a->data_dir ? a->data_dir : "";
			break;
		case 'm':
			snprintf(num, sizeof(num), "%d", a->primary);
			v = num;
			break;
		case 'H':
			v = a->p_host ? a->p_host : "";
			break;
		case 'P':
			snprintf(num, sizeof(num), "%d", a->p_port);
			v = num;
			break;
		case 'R':
			v = a->p_data_dir ? a->p_data_dir : "";
			break;
		case 'n':
			v = a->peer_name ? a->peer_name : "";
			break;
		case 'v':
			v = a->peer_vip ? a->peer_vip : "";
			break;
		case '%':
			v = "%";
			break;
		default:
			/* unknown (or a final '%'): kept as written */
			put(out, n, &pos, p, 1);
			continue;
		}
		put(out, n, &pos, v, strlen(v));
		p++;
	}
	if (n > 0)
		out[pos < n ? pos : n - 1] = '\0';
	return pos;
}

/* The expansion, malloc'ed (NULL: out of memory). */
static char *expand_alloc(const char *tmpl, const struct hook_args *a)
{
	size_t len = hook_expand(tmpl, a, NULL, 0);
	char *s = malloc(len + 1);

	if (s)
		hook_expand(tmpl, a, s, len + 1);
	return s;
}

/* ------------------------------------------------------------------------ */
/* Output, line by line                                                      */
/* ------------------------------------------------------------------------ */

struct linebuf {
	char buf[HOOK_LINE_MAX];
	size_t len;
};

static void line_emit(struct linebuf *lb, const char *what, int pid)
{
	if (lb->len > 0 && lb->buf[lb->len - 1] == '\r')
		lb->len--;
	log_info("%s (pid %d): %.*s", what, pid, (int)lb->len, lb->buf);
	lb->len = 0;
}

/* Feed LEN bytes of output: every complete line is logged. */
static void line_feed(struct linebuf *lb, const char *what, int pid, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			line_emit(lb, what, pid);
			continue;
		}
		if (lb->len == sizeof(lb->buf))
			line_emit(lb, what, pid);
		lb->buf[lb->len++] = data[i];
	}
}

/* The output ended: a last line without a newline is logged too. */
static void line_flush(struct linebuf *lb, const char *what, int pid)
{
	if (lb->len > 0)
		line_emit(lb, what, pid);
}

/* ------------------------------------------------------------------------ */
/* hook_run_async: on the main loop                                          */
/* ------------------------------------------------------------------------ */

struct hook_req {
	struct hook_req *next;
	char *what;
	char *cmd;
	double timeout;
};

enum hook_phase {
	HP_RUNNING,  /* the timer is the timeout (if any) */
	HP_TERMED,   /* SIGTERM sent; the timer sends SIGKILL */
	HP_KILLED,   /* SIGKILL sent; waiting for the exit */
	HP_DRAINING, /* exited; the timer ends the wait for the rest of the output */
	HP_CLOSING,  /* handles being closed */
};

struct hook_proc;

struct hook_pipe {
	uv_pipe_t pipe;       /* first: the handle is the struct */
	struct hook_proc *hp;
	bool open;            /* still read (no EOF yet) */
	struct linebuf lines;
	char rbuf[4096];
};

struct hook_proc {
	struct hook_proc *next;
	struct hook_proc **pprev;
	uv_process_t proc;
	struct hook_pipe out[2]; /* stdout, stderr */
	uv_timer_t timer;
	enum hook_phase phase;
	char *what;
	int pid;
	double timeout;
	bool exited;
	bool timed_out;          /* killed by the timeout */
	bool stop_killed;        /* killed by hooks_stop */
	int handles;             /* handles not closed yet: freed at 0 */
};

static pthread_mutex_t hk_lock = PTHREAD_MUTEX_INITIALIZER;
static bool hk_open;                 /* hk_lock: hk_async may be sent */
static struct hook_req *hk_queue;    /* hk_lock */
static struct hook_req **hk_tail = &hk_queue;
static uv_loop_t *hk_loop;           /* main thread only, from here on */
static uv_async_t hk_async;
static struct hook_proc *hk_running;
static bool hk_stopping;

static void req_free(struct hook_req *r)
{
	free(r->what);
	free(r->cmd);
	free(r);
}

/* The data of every handle of a hook_proc is the hook_proc. */
static void proc_handle_closed(uv_handle_t *h)
{
	struct hook_proc *hp = h->data;

	if (--hp->handles > 0)
		return;
	free(hp->what);
	free(hp);
}

/* Close every handle of HP (its memory goes with the last one). */
static void proc_finish(struct hook_proc *hp)
{
	if (hp->phase == HP_CLOSING)
		return;
	hp->phase = HP_CLOSING;
	if (hp->pprev) {
		*hp->pprev = hp->next;
		if (hp->next)
			hp->next->pprev = hp->pprev;
		hp->pprev = NULL;
	}
	for (int i = 0; i < 2; i++) {
		if (hp->out[i].open)
			line_flush(&hp->out[i].lines, hp->what, hp->pid);
		hp->out[i].open = false;
		uv_close((uv_handle_t *)&hp->out[i].pipe, proc_handle_closed);
	}
	uv_close((uv_handle_t *)&hp->timer, proc_handle_closed);
	uv_close((uv_handle_t *)&hp->proc, proc_handle_closed);
}

static void proc_maybe_done(struct hook_proc *hp)
{
	if (hp->exited && !hp->out[0].open && !hp->out[1].open)
		proc_finish(hp);
}

static void proc_signal(struct hook_proc *hp, int sig)
{
	/* the whole process group: what the script started goes too */
	if (uv_kill(-hp->pid, sig) != 0)
		uv_kill(hp->pid, sig);
}

static void proc_timer_cb(uv_timer_t *t)
{
	struct hook_proc *hp = t->data;

	switch (hp->phase) {
	case HP_RUNNING:
		log_warning("%s (pid %d): still running after %gs (hook_timeout): killed (SIGTERM)", hp->what,
			    hp->pid, hp->timeout);
		hp->timed_out = true;
		hp->phase = HP_TERMED;
		proc_signal(hp, SIGTERM);
		uv_timer_start(&hp->timer, proc_timer_cb, (uint64_t)(HOOK_KILL_DELAY * 1000), 0);
		break;
	case HP_TERMED:
		log_warning("%s (pid %d): still running %gs after SIGTERM: killed (SIGKILL)", hp->what, hp->pid,
			    HOOK_KILL_DELAY);
		hp->phase = HP_KILLED;
		proc_signal(hp, SIGKILL);
		if (hk_stopping)
			uv_timer_start(&hp->timer, proc_timer_cb, HOOK_STOP_WAIT_MS, 0);
		break;
	case HP_KILLED:
		/* only when stopping: do not wait for ever */
		log_warning("%s (pid %d): no exit seen after SIGKILL; left behind", hp->what, hp->pid);
		proc_finish(hp);
		break;
	case HP_DRAINING:
		/* something the script started in the background holds its output open */
		proc_finish(hp);
		break;
	case HP_CLOSING:
		break;
	}
}

static void proc_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
	struct hook_proc *hp = p->data;

	hp->exited = true;
	if (hp->stop_killed)
		log_warning("%s (pid %d) was killed: pgchorus is stopping", hp->what, hp->pid);
	else if (hp->timed_out)
		log_warning("%s (pid %d) was killed after %gs (hook_timeout)", hp->what, hp->pid, hp->timeout);
	else if (term_signal)
		log_warning("%s (pid %d) ended by signal %d", hp->what, hp->pid, term_signal);
	else if (status != 0)
		log_warning("%s (pid %d) exited with status %d", hp->what, hp->pid, (int)status);
	else
		log_info("%s (pid %d) exited with status 0", hp->what, hp->pid);
	if (hp->phase == HP_CLOSING)
		return;
	if (hk_stopping) {
		proc_finish(hp);
		return;
	}
	hp->phase = HP_DRAINING;
	uv_timer_start(&hp->timer, proc_timer_cb, HOOK_DRAIN_MS, 0);
	proc_maybe_done(hp);
}

static void pipe_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct hook_pipe *hpipe = (struct hook_pipe *)h;

	(void)suggested;
	*buf = uv_buf_init(hpipe->rbuf, sizeof(hpipe->rbuf));
}

static void pipe_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct hook_pipe *hpipe = (struct hook_pipe *)s;
	struct hook_proc *hp = hpipe->hp;

	if (nread > 0) {
		line_feed(&hpipe->lines, hp->what, hp->pid, buf->base, (size_t)nread);
		return;
	}
	if (nread == 0)
		return;
	/* EOF or an error: this side is done */
	uv_read_stop(s);
	line_flush(&hpipe->lines, hp->what, hp->pid);
	hpipe->open = false;
	proc_maybe_done(hp);
}

/* Main loop: start the command of R. */
static void hook_spawn(struct hook_req *r)
{
	struct hook_proc *hp = calloc(1, sizeof(*hp));
	char *argv[] = { "/bin/sh", "-c", r->cmd, NULL };
	uv_stdio_container_t stdio[3];
	uv_process_options_t opt;
	int err;

	if (!hp) {
		log_error("%s: out of memory, not run: %s", r->what, r->cmd);
		return;
	}
	hp->what = r->what;
	r->what = NULL;
	hp->timeout = r->timeout;
	uv_timer_init(hk_loop, &hp->timer);
	hp->timer.data = hp;
	for (int i = 0; i < 2; i++) {
		hp->out[i].hp = hp;
		uv_pipe_init(hk_loop, &hp->out[i].pipe, 0);
		hp->out[i].pipe.data = hp;
	}
	hp->handles = 4;
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE; /* /dev/null */
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&hp->out[0].pipe;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&hp->out[1].pipe;
	memset(&opt, 0, sizeof(opt));
	opt.file = argv[0];
	opt.args = argv;
	opt.stdio = stdio;
	opt.stdio_count = 3;
	opt.exit_cb = proc_exit_cb;
	opt.flags = UV_PROCESS_DETACHED; /* a process group of its own (setsid) */
	hp->proc.data = hp;
	err = uv_spawn(hk_loop, &hp->proc, &opt);
	if (err != 0) {
		log_error("%s: cannot run /bin/sh: %s", hp->what, uv_strerror(err));
		hp->exited = true;
		proc_finish(hp);
		return;
	}
	hp->pid = hp->proc.pid;
	log_info("%s (pid %d): running: %s", hp->what, hp->pid, r->cmd);
	for (int i = 0; i < 2; i++) {
		hp->out[i].open = true;
		if (uv_read_start((uv_stream_t *)&hp->out[i].pipe, pipe_alloc_cb, pipe_read_cb) != 0)
			hp->out[i].open = false;
	}
	hp->phase = HP_RUNNING;
	if (hp->timeout > 0)
		uv_timer_start(&hp->timer, proc_timer_cb, (uint64_t)(hp->timeout * 1000), 0);
	hp->next = hk_running;
	if (hk_running)
		hk_running->pprev = &hp->next;
	hp->pprev = &hk_running;
	hk_running = hp;
}

static void hook_async_cb(uv_async_t *a)
{
	struct hook_req *q;

	(void)a;
	pthread_mutex_lock(&hk_lock);
	q = hk_queue;
	hk_queue = NULL;
	hk_tail = &hk_queue;
	pthread_mutex_unlock(&hk_lock);
	while (q) {
		struct hook_req *next = q->next;

		hook_spawn(q);
		req_free(q);
		q = next;
	}
}

int hooks_start(uv_loop_t *loop)
{
	if (uv_async_init(loop, &hk_async, hook_async_cb) != 0)
		return -1;
	hk_loop = loop;
	hk_stopping = false;
	pthread_mutex_lock(&hk_lock);
	hk_open = true;
	pthread_mutex_unlock(&hk_lock);
	return 0;
}

static void async_closed(uv_handle_t *h)
{
	(void)h;
}

void hooks_stop(void)
{
	struct hook_req *q;
	bool was_open;

	pthread_mutex_lock(&hk_lock);
	was_open = hk_open;
	hk_open = false;
	q = hk_queue;
	hk_queue = NULL;
	hk_tail = &hk_queue;
	pthread_mutex_unlock(&hk_lock);
	if (!was_open)
		return;
	hk_stopping = true;
	while (q) {
		struct hook_req *next = q->next;

		log_warning("%s not run: pgchorus is stopping (%s)", q->what, q->cmd);
		req_free(q);
		q = next;
	}
	uv_close((uv_handle_t *)&hk_async, async_closed);
	/* running hooks are killed; their exit is awaited (a little) so that none is left a zombie */
	for (struct hook_proc *hp = hk_running; hp; hp = hp->next) {
		if (hp->exited)
			continue;
		log_warning("%s (pid %d): killed (SIGKILL): pgchorus is stopping", hp->what, hp->pid);
		hp->stop_killed = true;
		hp->phase = HP_KILLED;
		proc_signal(hp, SIGKILL);
		uv_timer_start(&hp->timer, proc_timer_cb, HOOK_STOP_WAIT_MS, 0);
	}
	/* the exited ones were only waiting for the rest of their output */
	for (struct hook_proc *hp = hk_running, *next; hp; hp = next) {
		next = hp->next;
		if (hp->exited)
			proc_finish(hp);
	}
}

void hook_run_async(const char *what, const char *tmpl, const struct hook_args *a, double timeout)
{
	struct hook_req *r;

	if (!tmpl || !*tmpl)
		return;
	r = calloc(1, sizeof(*r));
	if (r) {
		r->what = strdup(what);
		r->cmd = expand_alloc(tmpl, a);
		r->timeout = timeout;
	}
	if (!r || !r->what || !r->cmd) {
		log_error("%s: out of memory, not run", what);
		if (r)
			req_free(r);
		return;
	}
	pthread_mutex_lock(&hk_lock);
	if (hk_open) {
		*hk_tail = r;
		hk_tail = &r->next;
		uv_async_send(&hk_async);
		r = NULL;
	}
	pthread_mutex_unlock(&hk_lock);
	if (r) {
		log_warning("%s not run: hooks are not running (%s)", what, r->cmd);
		req_free(r);
	}
}

/* ------------------------------------------------------------------------ */
/* hook_run_wait: in the calling thread                                      */
/* ------------------------------------------------------------------------ */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Start /bin/sh -c CMD in a process group of its own, stdout and stderr
 * into WFD.  The pid, or -1 with errno-like ERR. */
static pid_t spawn_sh(const char *cmd, int wfd, int *err)
{
	char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	pid_t pid = -1;

	*err = posix_spawn_file_actions_init(&fa);
	if (*err)
		return -1;
	*err = posix_spawnattr_init(&attr);
	if (*err) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	/* pgchorus ignores SIGPIPE and its threads block signals: the script gets neither */
	if (!(*err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) &&
	    !(*err = posix_spawn_file_actions_adddup2(&fa, wfd, 1)) &&
	    !(*err = posix_spawn_file_actions_adddup2(&fa, wfd, 2)) &&
	    !(*err = posix_spawnattr_setpgroup(&attr, 0)) && !(*err = posix_spawnattr_setsigmask(&attr, &none)) &&
	    !(*err = posix_spawnattr_setsigdefault(&attr, &all)) &&
	    !(*err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
							     POSIX_SPAWN_SETSIGDEF)))
		*err = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return *err ? -1 : pid;
}

/* Read what is in FD now; false at EOF or on an error. */
static bool drain_fd(int fd, struct linebuf *lb, const char *what, int pid)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			line_feed(lb, what, pid, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN;
	}
}

int hook_run_wait(const char *what, const char *tmpl, const struct hook_args *a, double timeout)
{
	struct linebuf lb = { .len = 0 };
	double start, deadline;
	bool exited = false, reading = true, timed_out = false, lost = false;
	int fds[2], status = 0, err;
	int termed = 0; /* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
	char *cmd;
	pid_t pid;

	if (!tmpl || !*tmpl)
		return 0;
	cmd = expand_alloc(tmpl, a);
	if (!cmd) {
		log_error("%s: out of memory, not run", what);
		return -1;
	}
	if (pipe2(fds, O_CLOEXEC) != 0) {
		log_error("%s: cannot create a pipe: %s", what, strerror(errno));
		free(cmd);
		return -1;
	}
	pid = spawn_sh(cmd, fds[1], &err);
	close(fds[1]);
	if (pid < 0) {
		log_error("%s: cannot run /bin/sh: %s", what, strerror(err));
		close(fds[0]);
		free(cmd);
		return -1;
	}
	log_info("%s (pid %d): running: %s", what, (int)pid, cmd);
	free(cmd);
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	start = mono_now();
	deadline = timeout > 0 ? start + timeout : 0;

	while (!exited) {
		struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
		pid_t w;

		/* the exit is not signalled by the pipe when something the script
		 * started keeps it open: look at least every 100 ms */
		if (poll(&pfd, reading ? 1 : 0, 100) > 0 && reading)
			reading = drain_fd(fds[0], &lb, what, (int)pid);
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR)) {
			lost = w != pid; /* reaped by someone else (should not happen) */
			exited = true;
			break;
		}
		if (deadline > 0 && mono_now() >= deadline) {
			if (termed == 0) {
				log_warning("%s (pid %d): still running after %gs (hook_timeout): killed (SIGTERM)",
					    what, (int)pid, timeout);
				timed_out = true;
				termed = 1;
				if (kill(-pid, SIGTERM) != 0)
					kill(pid, SIGTERM);
				deadline = mono_now() + HOOK_KILL_DELAY;
			} else if (termed == 1) {
				log_warning("%s (pid %d): still running %gs after SIGTERM: killed (SIGKILL)", what,
					    (int)pid, HOOK_KILL_DELAY);
				termed = 2;
				if (kill(-pid, SIGKILL) != 0)
					kill(pid, SIGKILL);
				deadline = 0;
			}
		}
	}
	/* what the script wrote before it ended */
	if (reading)
		drain_fd(fds[0], &lb, what, (int)pid);
	line_flush(&lb, what, (int)pid);
	close(fds[0]);

	if (timed_out) {
		log_warning("%s (pid %d) was killed after %gs (hook_timeout)", what, (int)pid, timeout);
		return -1;
	}
	if (WIFSIGNALED(status)) {
		log_warning("%s (pid %d) ended by signal %d", what, (int)pid, WTERMSIG(status));
		return -1;
	}
	if (lost || !WIFEXITED(status)) {
		log_warning("%s (pid %d): exit status unknown", what, (int)pid);
		return -1;
	}
	if (WEXITSTATUS(status) != 0)
		log_warning("%s (pid %d) exited with status %d", what, (int)pid, WEXITSTATUS(status));
	else
		log_info("%s (pid %d) exited with status 0 (%.1f s)", what, (int)pid, mono_now() - start);
	return WEXITSTATUS(status);
}
