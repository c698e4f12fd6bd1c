/*
 * listen.h - creation of the listening sockets before the workers start:
 * one TCP socket per worker and address (SO_REUSEPORT, so the kernel
 * spreads connections over the workers) and one unix socket shared by all
 * workers (each gets its own dup).
 */
#ifndef PGCHORUS_LISTEN_H
#define PGCHORUS_LISTEN_H

#include <stddef.h>

#include "pgchorus/config.h"

/*
 * On success returns 0, *fds[i] is a malloc'd array of *n_fds descriptors
 * for worker i (i < cfg->workers).  On failure -1 with a message in ERR.
 */
int listen_create(const struct config *cfg, int ***fds, int *n_fds, char *err, size_t errlen);
/* Remove the unix socket file (at exit). */
void listen_cleanup(const struct config *cfg);

#endif
