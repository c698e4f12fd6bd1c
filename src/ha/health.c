/* health.c - STUB, being written (ha.h) */
#include "pgchorus/ha.h"

int health_start(uv_loop_t *loop, const struct config *cfg) { (void)loop; (void)cfg; return 0; }
void health_reload(const struct config *cfg) { (void)cfg; }
void health_stop(void) {}
void health_check_now(int node) { (void)node; }
double health_last_ms(int node) { (void)node; return -1; }
