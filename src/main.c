/*
 * main.c - pgchorus daemon: arguments, configuration, listening sockets,
 * daemonizing, signals (SIGHUP reload, SIGTERM graceful, SIGINT fast
 * shutdown) and the lifetime of the worker threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "pgchorus/compare.h"
#include "pgchorus/config.h"
#include "pgchorus/ctlsock.h"
#include "pgchorus/ha.h"
#include "pgchorus/listen.h"
#include "pgchorus/log.h"
#include "pgchorus/metrics.h"
#include "pgchorus/node.h"
#include "pgchorus/pool.h"
#include "pgchorus/resolver.h"
#include "pgchorus/runtime.h"
#include "pgchorus/worker.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static struct config *cur_cfg;
static uv_signal_t sig_hup, sig_term, sig_int;
static uv_async_t worker_exit;
static int shutdown_level; /* 0 running, 1 graceful, 2 fast */

static void usage(FILE *fp)
{
	fprintf(fp,
		"pgchorus - synchronous multi-master connection-pooling proxy for PostgreSQL\n\n"
		"Usage: pgchorus [OPTIONS]\n"
		"  -f, --config FILE   configuration file (default %s/pgchorus.conf)\n"
		"  -n, --foreground    do not detach from the terminal\n"
		"  -t, --test          check the configuration and exit\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          this help\n",
		SYSCONFDIR);
}

static void on_reload(void)
{
	char err[1024];
	struct config *cfg = config_load(cur_cfg->path, err, sizeof(err));

	if (!cfg) {
		log_error("reload failed, keeping the running configuration: %s", err);
		return;
	}
	if (!config_reload_compatible(cur_cfg, cfg, err, sizeof(err))) {
		log_error("reload refused, keeping the running configuration: %s", err);
		config_unref(cfg);
		return;
	}
	if (runtime_prepare(cfg, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		config_unref(cfg);
		return;
	}
	log_set_level(cfg->log_level);
	log_reopen();
	workers_broadcast(INBOX_CONFIG, cfg);
	resolver_reload(cfg);
	nodestate_reload(cfg);
	health_reload(cfg);
	recovery_reload(cfg);
	hb_reload(cfg);
	config_unref(cur_cfg);
	cur_cfg = cfg;
	log_info("configuration reloaded from %s", cfg->path);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	switch (signum) {
	case SIGHUP:
		log_info("SIGHUP: reloading configuration");
		on_reload();
		break;
	case SIGTERM:
		if (shutdown_level >= 1)
			break;
		log_info("SIGTERM: graceful shutdown (no new connections, transactions may finish)");
		shutdown_level = 1;
		recovery_stop(); /* while the workers still run: it may resume paused writes */
		workers_broadcast(INBOX_SHUTDOWN, NULL);
		break;
	case SIGINT:
		if (shutdown_level >= 2)
			break;
		log_info("SIGINT: fast shutdown");
		shutdown_level = 2;
		recovery_stop();
		workers_broadcast(INBOX_FAST_SHUTDOWN, NULL);
		break;
	}
}

static void main_handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void on_worker_exit(uv_async_t *a)
{
	(void)a;
	if (workers_running_count() > 0)
		return;
	ctlsock_stop();
	metrics_stop();
	health_stop();
	hb_stop(); /* before hooks_stop(): de_escalation_command runs */
	hooks_stop();
	uv_close((uv_handle_t *)&sig_hup, main_handle_closed);
	uv_close((uv_handle_t *)&sig_term, main_handle_closed);
	uv_close((uv_handle_t *)&sig_int, main_handle_closed);
	uv_close((uv_handle_t *)&worker_exit, main_handle_closed);
}

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (cur_cfg->logfile[0])
			dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

static void raise_fd_limit(int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < (rlim_t)want) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < (rlim_t)want)
		log_warning("open file limit is %lu, below what max_client_conn may need (%d); "
			    "raise it with ulimit -n or LimitNOFILE=",
			    (unsigned long)rl.rlim_cur, want);
}

static int write_pidfile(const char *path)
{
	FILE *fp;

	if (!path[0])
		return 0;
	fp = fopen(path, "w");
	if (!fp)
		return -errno;
	fprintf(fp, "%d\n", (int)getpid());
	return fclose(fp) == 0 ? 0 : -errno;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'f' },
		{ "foreground", no_argument, NULL, 'n' },
		{ "test", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = SYSCONFDIR "/pgchorus.conf";
	bool foreground = false, test_only = false;
	char err[1024];
	int **fds = NULL, n_fds = 0, opt, r;
	uv_loop_t *loop;

	while ((opt = getopt_long(argc, argv, "f:ntVh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			path = optarg;
			break;
		case 'n':
			foreground = true;
			break;
		case 't':
			test_only = true;
			break;
		case 'V':
			printf("pgchorus %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	cur_cfg = config_load(path, err, sizeof(err));
	if (!cur_cfg) {
		fprintf(stderr, "pgchorus: %s\n", err);
		return 1;
	}
	if (runtime_prepare(cur_cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgchorus: %s\n", err);
		config_unref(cur_cfg);
		return 1;
	}
	if (test_only) {
		printf("pgchorus: configuration file %s is valid\n", path);
		config_unref(cur_cfg);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	r = log_open(cur_cfg->logfile);
	if (r < 0) {
		fprintf(stderr, "pgchorus: logfile %s: %s\n", cur_cfg->logfile, strerror(-r));
		return 1;
	}
	log_set_level(cur_cfg->log_level);
	if (nodes_init(cur_cfg, err, sizeof(err)) < 0 || nodestate_init(cur_cfg, err, sizeof(err)) < 0 ||
	    listen_create(cur_cfg, &fds, &n_fds, err, sizeof(err)) < 0) {
		fprintf(stderr, "pgchorus: %s\n", err);
		log_error("%s", err);
		return 1;
	}
	if (!foreground && (r = daemonize()) < 0) {
		fprintf(stderr, "pgchorus: cannot daemonize: %s\n", strerror(-r));
		return 1;
	}
	if ((r = write_pidfile(cur_cfg->pidfile)) < 0)
		log_warning("pidfile %s: %s", cur_cfg->pidfile, strerror(-r));
	raise_fd_limit(cur_cfg->max_client_conn + 2 * cur_cfg->pool_size * cur_cfg->n_nodes + 64);
	/* after daemonize(): its thread would not survive the fork */
	if (resolver_start(cur_cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}

	loop = uv_default_loop();
	uv_async_init(loop, &worker_exit, on_worker_exit);
	uv_signal_init(loop, &sig_hup);
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_hup, on_signal, SIGHUP);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);

	snprintf(err, sizeof(err), "out of resources");
	if (hooks_start(loop) < 0 || health_start(loop, cur_cfg) < 0 ||
	    recovery_init(cur_cfg, err, sizeof(err)) < 0) {
		log_error("cannot start failure handling: %s", err);
		return 1;
	}
	if (hb_start(loop, cur_cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	/* no client is served before the node states are the peers' */
	while (!hb_ready() && uv_run(loop, UV_RUN_ONCE))
		;
	if (ctlsock_start(loop, cur_cfg) < 0)
		return 1;
	if (metrics_start(loop, cur_cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	r = workers_start(cur_cfg, fds, n_fds, &worker_exit);
	free(fds);
	if (r < 0) {
		log_error("cannot start workers: %s", strerror(-r));
		return 1;
	}
	log_info("pgchorus %s listening on %s port %d (unix socket dir \"%s\"), %d workers, %s pooling, "
		 "%d node(s)",
		 PACKAGE_VERSION, cur_cfg->listen_addresses, cur_cfg->port, cur_cfg->unix_socket_dir,
		 cur_cfg->workers, config_pool_mode_name(cur_cfg->pool_mode), cur_cfg->n_nodes);

	uv_run(loop, UV_RUN_DEFAULT);
	workers_join();
	compare_stop();
	recovery_stop();
	resolver_stop();
	nodestate_shutdown();
	pool_shared_destroy_all();
	uv_loop_close(loop);
	listen_cleanup(cur_cfg);
	if (cur_cfg->pidfile[0])
		unlink(cur_cfg->pidfile);
	nodes_free();
	log_info("pgchorus stopped");
	config_unref(cur_cfg);
	return 0;
}
