/*
 * listen.c - listening sockets (see listen.h).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "pgchorus/listen.h"

#define BACKLOG 4096

struct fdset {
	int *fds;
	int n;
};

static bool fdset_add(struct fdset *fs, int fd)
{
	int *p = realloc(fs->fds, sizeof(int) * (size_t)(fs->n + 1));

	if (!p)
		return false;
	fs->fds = p;
	fs->fds[fs->n++] = fd;
	return true;
}

static int tcp_socket(const struct addrinfo *ai, char *err, size_t errlen, const char *host, int port)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

	if (fd < 0) {
		snprintf(err, errlen, "listen %s:%d: socket: %s", host, port, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, BACKLOG) < 0) {
		snprintf(err, errlen, "listen %s:%d: %s", host, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* For SO_REUSEPORT: is anybody else (another pgchorus) already on this port? */
static bool tcp_port_taken(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	int one = 1;
	bool taken;

	if (fd < 0)
		return false;
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	taken = bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno == EADDRINUSE;
	close(fd);
	return taken;
}

static int listen_tcp(const struct config *cfg, struct fdset *sets, char *err, size_t errlen)
{
	char *list = strdup(cfg->listen_addresses), *save = NULL, *tok;
	int ret = 0;

	if (!list) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (tok = strtok_r(list, ", ", &save); tok && !ret; tok = strtok_r(NULL, ", ", &save)) {
		struct addrinfo hints = { .ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM }, *res, *ai;
		const char *host = strcmp(tok, "*") == 0 ? "0.0.0.0" : tok;
		char port[16];
		int r;

		snprintf(port, sizeof(port), "%d", cfg->port);
		r = getaddrinfo(host, port, &hints, &res);
		if (r != 0) {
			snprintf(err, errlen, "listen_addresses: cannot resolve \"%s\": %s", host, gai_strerror(r));
			ret = -1;
			break;
		}
		for (ai = res; ai && !ret; ai = ai->ai_next) {
			if (tcp_port_taken(ai)) {
				snprintf(err, errlen, "listen %s:%d: address already in use", host, cfg->port);
				ret = -1;
				break;
			}
			for (int w = 0; w < cfg->workers; w++) {
				int fd = tcp_socket(ai, err, errlen, host, cfg->port);

				if (fd < 0 || !fdset_add(&sets[w], fd)) {
					if (fd >= 0)
						close(fd);
					ret = -1;
					break;
				}
			}
		}
		freeaddrinfo(res);
	}
	free(list);
	return ret;
}

static void unix_path(const struct config *cfg, char *path, size_t n)
{
	snprintf(path, n, "%s/.s.PGSQL.%d", cfg->unix_socket_dir, cfg->port);
}

static int listen_unix(const struct config *cfg, struct fdset *sets, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, probe;

	unix_path(cfg, sun.sun_path, sizeof(sun.sun_path));
	/* A socket file nobody answers on is stale; one that answers is another server's. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		if (connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			snprintf(err, errlen, "unix socket %s is in use by another server", sun.sun_path);
			return -1;
		}
		close(probe);
	}
	unlink(sun.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(sun.sun_path, (mode_t)cfg->unix_socket_mode) < 0 || listen(fd, BACKLOG) < 0) {
		snprintf(err, errlen, "unix socket %s: %s", sun.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (int w = 0; w < cfg->workers; w++) {
		int d = w == 0 ? fd : dup(fd);

		if (d < 0 || !fdset_add(&sets[w], d)) {
			snprintf(err, errlen, "unix socket: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

int listen_create(const struct config *cfg, int ***fds, int *n_fds, char *err, size_t errlen)
{
	struct fdset *sets = calloc(cfg->workers > 0 ? (size_t)cfg->workers : 1, sizeof(*sets));
	int **out;

	if (!sets) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((cfg->listen_addresses[0] && listen_tcp(cfg, sets, err, errlen) < 0) ||
	    (cfg->unix_socket_dir[0] && listen_unix(cfg, sets, err, errlen) < 0)) {
		for (int w = 0; w < cfg->workers; w++) {
			for (int i = 0; i < sets[w].n; i++)
				close(sets[w].fds[i]);
			free(sets[w].fds);
		}
		free(sets);
		return -1;
	}
	out = calloc(cfg->workers > 0 ? (size_t)cfg->workers : 1, sizeof(int *));
	if (!out) {
		snprintf(err, errlen, "out of memory");
		free(sets);
		return -1;
	}
	for (int w = 0; w < cfg->workers; w++)
		out[w] = sets[w].fds;
	*n_fds = sets[0].n;
	*fds = out;
	free(sets);
	return 0;
}

void listen_cleanup(const struct config *cfg)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];

	if (!cfg->unix_socket_dir[0])
		return;
	unix_path(cfg, path, sizeof(path));
	unlink(path);
}
