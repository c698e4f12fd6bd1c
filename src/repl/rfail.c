/* rfail.c - being written */
#include "pgchorus/rsess.h"
#include "pgchorus/worker.h"

void rsess_node_down(struct worker *w, int node) { (void)w; (void)node; }
void rs_node_failed(struct rsess *rs, int node, const char *why) { (void)rs; (void)node; (void)why; }
void rs_gate_wake(struct worker *w) { (void)w; }
