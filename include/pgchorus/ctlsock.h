/*
 * ctlsock.h - the control socket (doc/admin.md, doc/pgchorusctl.md): a unix
 * socket at control_socket where pgchorusctl (or any local client) sends
 * admin console commands, one per line, and reads text or JSON answers.
 *
 * Main thread only: the socket lives on the main thread's loop.
 */
#ifndef PGCHORUS_CTLSOCK_H
#define PGCHORUS_CTLSOCK_H

#include <uv.h>

#include "pgchorus/config.h"

/*
 * Listen on CFG->control_socket ("" = none: 0 and nothing happens) on LOOP,
 * mode 0600.  A stale socket file (no one answers on it) is replaced; a
 * socket someone listens on, or a file that is not a socket, is an error.
 * 0, or -1 (logged).
 */
int ctlsock_start(uv_loop_t *loop, const struct config *cfg);
/* Close the socket and every connection on it, unlink the file. */
void ctlsock_stop(void);

#endif
