/*
 * basebackup.c - the built-in first stage of online recovery (basebackup.h):
 * a node's data directory is rebuilt from the primary with pg_basebackup and
 * started as a standby of it, while writes go on.
 *
 * Every step is an external program run with fork + exec and an argument
 * vector (never a shell command with paths pasted in): pg_ctl, test, rm,
 * mv, cp, mkdir, pg_basebackup.  When pgchorus runs as root the programs
 * run as the owner of the data directory's parent (of the data directory
 * itself when the parent belongs to root), because PostgreSQL refuses to
 * run as root.  For a node with ssh_host the same programs run there,
 * through `ssh -o BatchMode=yes ssh_host -- <command>` with every argument
 * shell-quoted: as the ssh login user (ssh_host may be "user@host"), with
 * the remote PATH, and pg_basebackup's password taken from that user's
 * ~/.pgpass (resolver_password is not sent over ssh).
 *
 * A program's output (standard output and error, one pipe) is logged line
 * by line; pg_basebackup -P's "N/M kB" lines feed the progress.  A program
 * still running at the deadline, or when pgchorus stops, is killed with its
 * whole process group (SIGTERM, SIGKILL 3 s later).  Through ssh, killing
 * the local ssh ends the remote command only when it next writes.
 *
 * Runs in the HA thread only; nothing here is shared.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pgchorus/ha.h"
#include "pgchorus/log.h"
#include "basebackup.h"

#define DEFAULT_BINDIR "/usr/lib/postgresql/15/bin"
#define MAX_GROUPS 64
#define MAX_ENV 16
#define OUT_LINE_MAX 1024
#define KILL_GRACE 3.0       /* seconds between SIGTERM and SIGKILL */
#define PROBE_TIMEOUT 30.0   /* pg_config, test: seconds */
#define STOP_TIMEOUT 30      /* pg_ctl stop -m immediate: seconds */
#define START_TIMEOUT 120    /* pg_ctl start: seconds (at most) */
#define CMDLINE_MAX 8192

/* Files of the node's own configuration, put back after the copy. */
static const char *const own_files[] = { "postgresql.conf", "pg_hba.conf", "pg_ident.conf" };

/* How and where the commands of one node's recovery run. */
struct runner {
	int node;
	const struct config *cfg;
	const char *ssh_host; /* NULL: on this machine */
	bool as_user;         /* switch to uid/gid/groups before exec */
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	int n_groups;
	char user[64];
	char home[512];
	char bindir[1024];    /* "" = programs found with PATH */
	char dir[1024];       /* data_dir without trailing '/' */
	char old[1040];       /* dir + ".old" */
};

/* Output lines of a command go to a line_fn (ARG its own). */
typedef void (*line_fn)(const struct runner *r, const char *prog, const char *line, void *arg);

/* Flags of run(). */
#define RUN_QUIET 1 /* the command and its output logged at debug level only */

/* ---- running one program ---- */

/* Append S to OUT (N bytes, *LEN used) as one shell word.  false if it does not fit. */
static bool shq_append(char *out, size_t n, size_t *len, const char *s)
{
	size_t l = *len;

	if (l && l + 1 < n)
		out[l++] = ' ';
	if (l + 1 >= n)
		return false;
	out[l++] = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			if (l + 4 >= n)
				return false;
			memcpy(out + l, "'\\''", 4);
			l += 4;
		} else {
			if (l + 1 >= n)
				return false;
			out[l++] = *s;
		}
	}
	if (l + 2 > n)
		return false;
	out[l++] = '\'';
	out[l] = '\0';
	*len = l;
	return true;
}

/* The path to execute for NAME: itself if it has a '/', else found in PATH.  false if none. */
static bool find_program(const char *name, char *out, size_t n)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(out, n, "%s", name);
		return access(out, X_OK) == 0;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t l = strcspn(path, ":");

		if (l > 0 && (size_t)snprintf(out, n, "%.*s/%s", (int)l, path, name) < n && access(out, X_OK) == 0)
			return true;
		path += l;
		if (*path == ':')
			path++;
	}
	return false;
}

static void env_free(char **env)
{
	for (int i = 0; env[i]; i++)
		free(env[i]);
}

/* Add KEY=VAL to ENV (NULL terminated, MAX_ENV entries at most).  VAL NULL or "": skipped. */
static bool env_add(char **env, int *n, const char *key, const char *val)
{
	size_t len;

	if (!val || !*val)
		return true;
	if (*n >= MAX_ENV)
		return false;
	len = strlen(key) + strlen(val) + 2;
	env[*n] = malloc(len);
	if (!env[*n])
		return false;
	snprintf(env[*n], len, "%s=%s", key, val);
	env[++*n] = NULL;
	return true;
}

/*
 * The environment of a local program: a small fixed one, so that what
 * pgchorus was started with (PGHOST, PGPORT...) does not leak into the
 * commands.  libpq settings for pg_basebackup: password and TLS as
 * pgchorus connects to the nodes.
 */
static bool build_env(const struct runner *r, char **env)
{
	const struct config *cfg = r->cfg;
	const char *path = getenv("PATH");
	int n = 0;
	bool ok;

	env[0] = NULL;
	ok = env_add(env, &n, "PATH", path && *path ? path : "/usr/local/bin:/usr/bin:/bin") &&
	     env_add(env, &n, "HOME", r->as_user ? r->home : getenv("HOME")) &&
	     env_add(env, &n, "USER", r->as_user ? r->user : getenv("USER")) &&
	     env_add(env, &n, "LOGNAME", r->as_user ? r->user : getenv("LOGNAME")) &&
	     env_add(env, &n, "LANG", getenv("LANG")) &&
	     env_add(env, &n, "LC_MESSAGES", "C") &&
	     env_add(env, &n, "PGCONNECT_TIMEOUT", "10") &&
	     env_add(env, &n, "PGPASSWORD", cfg->resolver_password) &&
	     env_add(env, &n, "PGSSLMODE", config_server_tls_name(cfg->server_tls)) &&
	     env_add(env, &n, "PGSSLROOTCERT", cfg->server_tls_ca_file) &&
	     env_add(env, &n, "PGSSLCERT", cfg->server_tls_cert_file) &&
	     env_add(env, &n, "PGSSLKEY", cfg->server_tls_key_file);
	if (!ok)
		env_free(env);
	return ok;
}

/* Close every descriptor from FIRST up (in the child: async-signal-safe calls only). */
static void close_from(int first)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0)
		return;
#endif
	long max = sysconf(_SC_OPEN_MAX);

	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = first; fd < max; fd++)
		close(fd);
}

static void child_fail(const char *what, const char *path)
{
	/* write(2) only: this is the child of a threaded process */
	ssize_t w = write(2, what, strlen(what));

	w += write(2, path, strlen(path));
	w += write(2, "\n", 1);
	(void)w;
}

/* The child: own process group, output to OUT_FD, default signals, the user switched, exec. */
static void child_exec(const struct runner *r, bool local, const char *path, char *const argv[],
		       char *const envp[], int null_fd, int out_fd)
{
	struct sigaction sa;
	sigset_t none;

	setpgid(0, 0);
	if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
		_exit(126);
	close_from(3);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &sa, NULL); /* SIGPIPE is ignored in pgchorus */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (chdir("/") < 0)
		_exit(126);
	if (local && r->as_user &&
	    (setgroups((size_t)r->n_groups, r->groups) < 0 || setgid(r->gid) < 0 || setuid(r->uid) < 0)) {
		child_fail("pgchorus: cannot switch to the data directory's owner to run ", path);
		_exit(126);
	}
	execve(path, argv, envp);
	child_fail("pgchorus: cannot execute ", path);
	_exit(127);
}

/* Hand over the complete lines of BUF (*USED bytes); keep the rest. */
static void split_lines(const struct runner *r, const char *prog, char *buf, size_t *used, bool flush,
			line_fn on_line, void *arg)
{
	size_t start = 0;

	for (size_t i = 0; i < *used; i++) {
		if (buf[i] != '\n' && buf[i] != '\r')
			continue;
		buf[i] = '\0';
		if (i > start)
			on_line(r, prog, buf + start, arg);
		start = i + 1;
	}
	if (start < *used && (flush || start == 0)) {
		/* a last line without its end, or one longer than the buffer */
		buf[*used] = '\0';
		on_line(r, prog, buf + start, arg);
		start = *used;
	}
	memmove(buf, buf + start, *used - start);
	*used -= start;
}

/* Log a line of a command's output. */
static void log_line(const struct runner *r, const char *prog, const char *line, void *arg)
{
	bool quiet = arg != NULL;

	if (quiet)
		log_debug("recovery of node %d: %s: %s", r->node, prog, line);
	else
		log_info("recovery of node %d: %s: %s", r->node, prog, line);
}

/*
 * Run ARGS (NULL terminated; ARGS[0] a path or a name found in PATH) as R
 * says, until it ends, DEADLINE passes or pgchorus stops.  Output lines go
 * to ON_LINE (NULL: logged).  Returns the exit status, or -1 with ERR (could
 * not run it, killed at the deadline or by a signal).
 */
static int run(const struct runner *r, const char *const *args, double deadline, int flags, line_fn on_line,
	       void *arg, char *err, size_t errlen)
{
	const char *prog = strrchr(args[0], '/') ? strrchr(args[0], '/') + 1 : args[0];
	const char *argv_ssh[10];
	char cmdline[CMDLINE_MAX], path[1100], buf[OUT_LINE_MAX + 1];
	char *env[MAX_ENV + 1];
	char *const *argv;
	size_t len = 0, used = 0;
	int pipefd[2], null_fd, status = 0;
	bool eof = false, exited = false, sigkilled = false;
	double killed_at = 0;
	const char *why = NULL;
	pid_t pid;

	if (!on_line) {
		on_line = log_line;
		arg = (flags & RUN_QUIET) ? (void *)1 : NULL;
	}
	/* what is logged, and for ssh what runs there */
	if (r->ssh_host)
		snprintf(cmdline, sizeof(cmdline), "LC_MESSAGES=C");
	else
		cmdline[0] = '\0';
	len = strlen(cmdline);
	for (int i = 0; args[i]; i++) {
		if (!shq_append(cmdline, sizeof(cmdline), &len, args[i])) {
			snprintf(err, errlen, "%s: command line too long", prog);
			return -1;
		}
	}
	if (r->ssh_host) {
		int k = 0;

		argv_ssh[k++] = "ssh";
		argv_ssh[k++] = "-o";
		argv_ssh[k++] = "BatchMode=yes";
		argv_ssh[k++] = "-o";
		argv_ssh[k++] = "ConnectTimeout=10";
		argv_ssh[k++] = r->ssh_host;
		argv_ssh[k++] = "--";
		argv_ssh[k++] = cmdline;
		argv_ssh[k] = NULL;
		argv = (char *const *)argv_ssh;
	} else {
		argv = (char *const *)args;
	}
	if (flags & RUN_QUIET)
		log_debug("recovery of node %d: running %s%s%s", r->node, r->ssh_host ? "on " : "",
			  r->ssh_host ? r->ssh_host : "", cmdline);
	else
		log_info("recovery of node %d: running %s%s%s%s", r->node, r->ssh_host ? "on " : "",
			 r->ssh_host ? r->ssh_host : "", r->ssh_host ? ": " : "", cmdline);
	if (!find_program(argv[0], path, sizeof(path))) {
		snprintf(err, errlen, "%s: program not found%s", argv[0],
			 r->ssh_host || strchr(argv[0], '/') ? "" : " in PATH (set pg_bindir?)");
		return -1;
	}
	if (!build_env(r, env)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "%s: %s", prog, strerror(errno));
		if (null_fd >= 0)
			close(null_fd);
		env_free(env);
		return -1;
	}
	pid = fork();
	if (pid == 0)
		child_exec(r, !r->ssh_host, path, argv, env, null_fd, pipefd[1]);
	close(null_fd);
	close(pipefd[1]);
	env_free(env);
	if (pid < 0) {
		snprintf(err, errlen, "%s: fork: %s", prog, strerror(errno));
		close(pipefd[0]);
		return -1;
	}
	setpgid(pid, pid); /* also here: no race with the kill below */
	fcntl(pipefd[0], F_SETFL, fcntl(pipefd[0], F_GETFL) | O_NONBLOCK);

	while (!exited || !eof) {
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		double now;

		if (!eof) {
			/* after the exit, only what is already there (a daemon may hold the pipe) */
			if (poll(&p, 1, exited ? 0 : 50) > 0) {
				ssize_t n = read(pipefd[0], buf + used, OUT_LINE_MAX - used);

				if (n > 0) {
					used += (size_t)n;
					split_lines(r, prog, buf, &used, false, on_line, arg);
					continue;
				}
				if (n == 0 || (errno != EAGAIN && errno != EINTR))
					eof = true;
			} else if (exited) {
				eof = true;
			}
		} else {
			poll(NULL, 0, 10);
		}
		if (!exited) {
			pid_t w = waitpid(pid, &status, WNOHANG);

			if (w == pid || (w < 0 && errno == ECHILD))
				exited = true;
		}
		if (exited)
			continue;
		now = ha_mono_now();
		if (!why && (now > deadline || recovery_stopping())) {
			why = now > deadline ? "timed out" : "pgchorus is stopping";
			log_warning("recovery of node %d: %s: %s, killing it", r->node, prog, why);
			kill(-pid, SIGTERM);
			killed_at = now;
		} else if (why && !sigkilled && now - killed_at > KILL_GRACE) {
			kill(-pid, SIGKILL);
			sigkilled = true;
		}
	}
	close(pipefd[0]);
	if (used)
		split_lines(r, prog, buf, &used, true, on_line, arg);
	if (why) {
		snprintf(err, errlen, "%s: %s", prog, why);
		return -1;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	snprintf(err, errlen, "%s: killed by signal %d", prog, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return -1;
}

/* ---- the runner of a node ---- */

/* Keep the first line of output (pg_config --bindir). */
static void first_line(const struct runner *r, const char *prog, const char *line, void *arg)
{
	char *out = arg;

	log_debug("recovery of node %d: %s: %s", r->node, prog, line);
	if (!out[0])
		snprintf(out, 1024, "%s", line);
}

/* Does DIR hold a pg_basebackup the runner can execute? */
static bool bindir_usable(const struct runner *r, const char *dir, double deadline)
{
	char exe[1100], err[256];
	const char *args[] = { "test", "-x", exe, NULL };

	if ((size_t)snprintf(exe, sizeof(exe), "%s/pg_basebackup", dir) >= sizeof(exe))
		return false;
	return run(r, args, deadline, RUN_QUIET, NULL, NULL, err, sizeof(err)) == 0;
}

/* pg_bindir, else `pg_config --bindir`, else DEFAULT_BINDIR, else "" (PATH). */
static void resolve_bindir(struct runner *r, double deadline)
{
	const char *args[] = { "pg_config", "--bindir", NULL };
	char line[1024] = "", err[256];
	double dl = ha_deadline(PROBE_TIMEOUT);

	if (dl > deadline)
		dl = deadline;
	if (*r->cfg->pg_bindir) {
		snprintf(r->bindir, sizeof(r->bindir), "%s", r->cfg->pg_bindir);
		return;
	}
	if (run(r, args, dl, RUN_QUIET, first_line, line, err, sizeof(err)) == 0 && line[0] == '/' &&
	    bindir_usable(r, line, dl)) {
		snprintf(r->bindir, sizeof(r->bindir), "%s", line);
		return;
	}
	if (bindir_usable(r, DEFAULT_BINDIR, dl)) {
		snprintf(r->bindir, sizeof(r->bindir), "%s", DEFAULT_BINDIR);
		return;
	}
	r->bindir[0] = '\0';
}

/* The path of PostgreSQL program NAME (into OUT, N bytes). */
static const char *pg_prog(const struct runner *r, const char *name, char *out, size_t n)
{
	if (r->bindir[0])
		snprintf(out, n, "%s/%s", r->bindir, name);
	else
		snprintf(out, n, "%s", name);
	return out;
}

/*
 * Run as the owner of the data directory's parent (of the data directory
 * itself if the parent belongs to root) when pgchorus is root.  Local nodes only.
 */
static int resolve_owner(struct runner *r, char *err, size_t errlen)
{
	char parent[1024], pwbuf[4096];
	struct passwd pw, *res = NULL;
	struct stat st;
	char *slash;
	int n;

	if (geteuid() != 0)
		return 0;
	snprintf(parent, sizeof(parent), "%s", r->dir);
	slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	if (stat(parent, &st) != 0) {
		snprintf(err, errlen, "data directory's parent %s: %s", parent, strerror(errno));
		return -1;
	}
	if (st.st_uid == 0) {
		struct stat st2;

		if (stat(r->dir, &st2) == 0)
			st.st_uid = st2.st_uid;
	}
	if (st.st_uid == 0) {
		snprintf(err, errlen,
			 "%s and its data directory belong to root, and PostgreSQL does not run as root: "
			 "give them to the PostgreSQL user",
			 parent);
		return -1;
	}
	if (getpwuid_r(st.st_uid, &pw, pwbuf, sizeof(pwbuf), &res) != 0 || !res) {
		snprintf(err, errlen, "%s belongs to uid %u, which has no user name", parent, (unsigned)st.st_uid);
		return -1;
	}
	r->uid = pw.pw_uid;
	r->gid = pw.pw_gid;
	snprintf(r->user, sizeof(r->user), "%s", pw.pw_name);
	snprintf(r->home, sizeof(r->home), "%s", pw.pw_dir ? pw.pw_dir : "/");
	n = MAX_GROUPS;
	if (getgrouplist(pw.pw_name, pw.pw_gid, r->groups, &n) < 0 || n < 1) {
		r->groups[0] = pw.pw_gid;
		n = 1;
	}
	r->n_groups = n;
	r->as_user = true;
	return 0;
}

/* The data directory of NODE, checked and without trailing '/', into OUT. */
static bool data_dir_of(const struct config *cfg, int node, char *out, size_t n, char *err, size_t errlen)
{
	const char *d = node >= 0 && node < cfg->n_nodes ? cfg->nodes[node].data_dir : NULL;
	size_t l;

	if (!d || !*d) {
		snprintf(err, errlen,
			 "node %d has no data_dir (the built-in recovery needs it; or set recovery_1st_stage_command)",
			 node);
		return false;
	}
	l = strlen(d);
	while (l > 1 && d[l - 1] == '/')
		l--;
	if (d[0] != '/' || l <= 1 || strstr(d, "/../") || (l >= 3 && strncmp(d + l - 3, "/..", 3) == 0) ||
	    (l >= 2 && strncmp(d + l - 2, "/.", 2) == 0)) {
		snprintf(err, errlen, "node %d: data_dir \"%s\" must be an absolute path, not \"/\", without \"..\"",
			 node, d);
		return false;
	}
	if (l + 5 > n) {
		snprintf(err, errlen, "node %d: data_dir is too long", node);
		return false;
	}
	memcpy(out, d, l);
	out[l] = '\0';
	return true;
}

bool bb_usable(const struct config *cfg, int node, char *err, size_t errlen)
{
	char dir[1024];

	return data_dir_of(cfg, node, dir, sizeof(dir), err, errlen);
}

static int runner_init(struct runner *r, const struct config *cfg, int node, char *err, size_t errlen)
{
	const char *ssh = cfg->nodes[node].ssh_host;

	memset(r, 0, sizeof(*r));
	r->node = node;
	r->cfg = cfg;
	r->ssh_host = ssh && *ssh ? ssh : NULL;
	if (!data_dir_of(cfg, node, r->dir, sizeof(r->dir), err, errlen))
		return -1;
	snprintf(r->old, sizeof(r->old), "%s.old", r->dir);
	if (!r->ssh_host && resolve_owner(r, err, errlen) < 0)
		return -1;
	return 0;
}

/* ---- the stage ---- */

/* Parse pg_basebackup -P's "   1234/5678 kB (21%), 0/1 tablespace ..." lines; log the others. */
static void basebackup_line(const struct runner *r, const char *prog, const char *line, void *arg)
{
	uint64_t done, total;

	(void)arg;
	if (sscanf(line, " %" SCNu64 "/%" SCNu64 " kB", &done, &total) == 2) {
		recovery_note_copy(done * 1024, total * 1024);
		log_debug("recovery of node %d: %s: %s", r->node, prog, line);
		return;
	}
	log_info("recovery of node %d: %s: %s", r->node, prog, line);
}

/* Run ARGS; a status other than 0 is an error "WHAT failed (exit N)". */
static int run_ok(const struct runner *r, const char *const *args, double deadline, line_fn on_line,
		  const char *what, char *err, size_t errlen)
{
	int rc = run(r, args, deadline, 0, on_line, NULL, err, errlen);

	if (rc == 0)
		return 0;
	if (rc > 0)
		snprintf(err, errlen, "%s failed (exit status %d; its output is in the log above)", what, rc);
	return -1;
}

int bb_stage1(const struct config *cfg, int node, int primary, double deadline, char *err, size_t errlen)
{
	const struct cfg_node *p = &cfg->nodes[primary];
	char pg_ctl[1100], pg_bb[1100], port[16], pport[16], opt[32], tsecs[16], logf[1100], from[1100], to[1100];
	struct runner r;
	bool existed;
	double left;
	int rc;

	if (runner_init(&r, cfg, node, err, errlen) < 0)
		return -1;
	resolve_bindir(&r, deadline);
	log_info("recovery of node %d: built-in first stage on %s, data directory %s, as %s, programs from %s", node,
		 r.ssh_host ? r.ssh_host : "this machine", r.dir,
		 r.ssh_host ? "the ssh user" : r.as_user ? r.user : "pgchorus' user", r.bindir[0] ? r.bindir : "PATH");
	pg_prog(&r, "pg_ctl", pg_ctl, sizeof(pg_ctl));
	pg_prog(&r, "pg_basebackup", pg_bb, sizeof(pg_bb));
	snprintf(port, sizeof(port), "%d", cfg->nodes[node].port);
	snprintf(pport, sizeof(pport), "%d", p->port);

	/* 1. whatever still runs on the old directory (failure is fine: nothing runs) */
	{
		char t[16];
		const char *args[] = { pg_ctl, "-D", r.dir, "-m", "immediate", "-w", "-t", t, "stop", NULL };

		snprintf(t, sizeof(t), "%d", STOP_TIMEOUT);
		if (run(&r, args, deadline, 0, NULL, NULL, err, errlen) < 0)
			return -1;
	}

	/* 2. the old directory aside (the previous .old removed) */
	{
		const char *test[] = { "test", "-e", r.dir, NULL };
		const char *rm[] = { "rm", "-rf", "--", r.old, NULL };
		const char *mv[] = { "mv", "--", r.dir, r.old, NULL };

		rc = run(&r, test, deadline, RUN_QUIET, NULL, NULL, err, errlen);
		if (rc < 0)
			return -1;
		existed = rc == 0;
		if (existed && (run_ok(&r, rm, deadline, NULL, "removing the previous .old directory", err, errlen) < 0 ||
				run_ok(&r, mv, deadline, NULL, "moving the data directory aside", err, errlen) < 0))
			return -1;
	}

	/* 3. the copy, a standby of the primary (-R) */
	{
		const char *args[] = { pg_bb, "-h", p->host, "-p", pport, "-U", cfg->recovery_user, "-D", r.dir,
				       "-X", "stream", "-R", "-c", "fast", "-P", "-w", NULL };

		log_info("recovery of node %d: copying node %d (%s:%d) with pg_basebackup", node, primary, p->host,
			 p->port);
		if (run_ok(&r, args, deadline, basebackup_line, "pg_basebackup", err, errlen) < 0)
			return -1;
	}

	/* 4. the node's own settings (port, log prefix, ...) instead of the primary's */
	for (size_t i = 0; existed && i < sizeof(own_files) / sizeof(own_files[0]); i++) {
		const char *test[] = { "test", "-f", from, NULL };
		const char *cp[] = { "cp", "-p", "--", from, to, NULL };

		snprintf(from, sizeof(from), "%s/%s", r.old, own_files[i]);
		snprintf(to, sizeof(to), "%s/%s", r.dir, own_files[i]);
		rc = run(&r, test, deadline, RUN_QUIET, NULL, NULL, err, errlen);
		if (rc < 0)
			return -1;
		if (rc == 0 && run_ok(&r, cp, deadline, NULL, "restoring the node's own settings", err, errlen) < 0)
			return -1;
	}

	/* 5. start it, on its own port */
	{
		const char *mkdir_args[] = { "mkdir", "-p", "--", logf, NULL };
		const char *args[] = { pg_ctl, "-D", r.dir, "-w", "-t", tsecs, "-l", logf, "-o", opt, "start", NULL };

		snprintf(logf, sizeof(logf), "%s/log", r.dir);
		if (run_ok(&r, mkdir_args, deadline, NULL, "creating the log directory", err, errlen) < 0)
			return -1;
		snprintf(logf, sizeof(logf), "%s/log/recovered.log", r.dir);
		snprintf(opt, sizeof(opt), "-p %s", port);
		left = deadline - ha_mono_now();
		snprintf(tsecs, sizeof(tsecs), "%d", left >= START_TIMEOUT ? START_TIMEOUT : left > 1 ? (int)left : 1);
		if (run_ok(&r, args, deadline, NULL, "starting the standby (pg_ctl start; see its log)", err, errlen) < 0) {
			size_t l = strlen(err);

			snprintf(err + l, errlen - l, " %s", logf);
			return -1;
		}
	}
	return 0;
}

void bb_remove_old(const struct config *cfg, int node)
{
	struct runner r;
	char err[256];
	int rc;

	if (runner_init(&r, cfg, node, err, sizeof(err)) < 0) {
		log_warning("recovery of node %d: the old data directory is not removed: %s", node, err);
		return;
	}
	{
		const char *rm[] = { "rm", "-rf", "--", r.old, NULL };

		rc = run(&r, rm, ha_deadline(3600), 0, NULL, NULL, err, sizeof(err));
	}
	if (rc != 0)
		log_warning("recovery of node %d: %s not removed: %s", node, r.old, rc < 0 ? err : "rm failed");
}
