/* TEMPORARY stub until the real resolver.c lands. */
#include <stdatomic.h>
#include <time.h>
#include "pgchorus/resolver.h"
#include "pgchorus/twopc.h"
static atomic_ullong ctr;
static struct twopc_inflight *infl;
int resolver_start(const struct config *cfg, char *err, size_t errlen) { (void)cfg; (void)err; (void)errlen; infl = twopc_inflight_new(); return 0; }
void resolver_reload(const struct config *cfg) { (void)cfg; }
void resolver_stop(void) {}
void resolver_kick(void) {}
bool resolver_gid_begin(char *gid, size_t n) { return twopc_make_gid(gid, n, "stub", (uint64_t)time(NULL), atomic_fetch_add(&ctr, 1) + 1); }
void resolver_gid_end(const char *gid) { (void)gid; }
