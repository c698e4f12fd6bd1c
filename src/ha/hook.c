/* hook.c - STUB, being written (ha.h) */
#include <stdio.h>
#include "pgchorus/ha.h"

void hook_args_for(const struct config *cfg, int node, struct hook_args *a) { (void)cfg; (void)node; (void)a; }
size_t hook_expand(const char *tmpl, const struct hook_args *a, char *out, size_t n) { (void)a; return (size_t)snprintf(out, n, "%s", tmpl); }
int hooks_start(uv_loop_t *loop) { (void)loop; return 0; }
void hooks_stop(void) {}
void hook_run_async(const char *what, const char *tmpl, const struct hook_args *a, double timeout) { (void)what; (void)tmpl; (void)a; (void)timeout; }
int hook_run_wait(const char *what, const char *tmpl, const struct hook_args *a, double timeout) { (void)what; (void)tmpl; (void)a; (void)timeout; return -1; }
