/*
 * metrics.h - Prometheus metrics over HTTP (metrics_port): node states,
 * health-check latency, clients, and the workers' counters (worker.h),
 * served from the main thread's loop.
 */
#ifndef PGCHORUS_METRICS_H
#define PGCHORUS_METRICS_H

#include <stddef.h>
#include <uv.h>

#include "pgchorus/buf.h"
#include "pgchorus/config.h"

/* Main thread: listen on CFG's listen_addresses at metrics_port (0: nothing).
 * 0, or -1 with ERR set. */
int metrics_start(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen);
void metrics_stop(void);
/* The text exposition of every metric into OUT.  false: out of memory. */
bool metrics_render(struct buf *out);

#endif
