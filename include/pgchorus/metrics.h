/*
 * metrics.h - Prometheus metrics over HTTP (metrics_port): node states,
 * health-check latency, clients, the workers' counters and pool gauges
 * (worker.h), the resolver's counts, served from the main thread's loop.
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
/* The resolver of in-doubt transactions finished COMMITTED and ROLLED_BACK
 * of them in one run (any thread). */
void metrics_count_resolved(int committed, int rolled_back);
/* The text exposition of every metric into OUT.  false: out of memory. */
bool metrics_render(struct buf *out);

#endif
