/* recovery.c - STUB, being written (ha.h) */
#include <stdio.h>
#include <string.h>
#include "pgchorus/ha.h"

int recovery_init(const struct config *cfg, char *err, size_t errlen) { (void)cfg; (void)err; (void)errlen; return 0; }
void recovery_reload(const struct config *cfg) { (void)cfg; }
void recovery_stop(void) {}
int ha_recover_node(int node, char *err, size_t errlen) { (void)node; snprintf(err, errlen, "not implemented"); return -1; }
int ha_attach_node(int node, char *err, size_t errlen) { (void)node; snprintf(err, errlen, "not implemented"); return -1; }
void recovery_get_progress(struct recovery_progress *out) { memset(out, 0, sizeof(*out)); out->node = -1; }
