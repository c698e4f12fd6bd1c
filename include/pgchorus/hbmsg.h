/*
 * hbmsg.h - the heartbeat datagram between pgchorus instances
 * (src/ha/hbmsg.c; the protocol in doc/heartbeat.md).
 *
 * Lines of text, "PGCHORUS-HB 1" first:
 *   instance <name>          boot <n>          seq <n>          pause <token>
 *   primary <id> <gen>       nodes <count>     node <id> <state> <gen> <0|1>
 *   ack <instance> <token>   leaving
 *   hmac <64 hex digits>     (last, with a secret: HMAC-SHA256 of all before it)
 * Unknown keywords are skipped (a later version's); a malformed known line,
 * a NUL byte or a missing or wrong hmac make the whole datagram refused.
 */
#ifndef PGCHORUS_HBMSG_H
#define PGCHORUS_HBMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgchorus/config.h"
#include "pgchorus/ha.h"
#include "pgchorus/twopc.h"

#define HB_MAX_DATAGRAM 16384

struct hb_ack {
	char instance[TWOPC_INSTANCE_MAX + 1];
	uint64_t token;
};

struct hb_msg {
	char instance[TWOPC_INSTANCE_MAX + 1];
	uint64_t boot, seq;
	uint64_t pause;             /* the pause of writes asked of the peers (0 none) */
	int n_nodes;                /* -1 when the datagram had no nodes line */
	struct node_view nodes[PGC_MAX_NODES];
	int preferred;              /* PROMOTE NODE choice, -1 none */
	uint64_t preferred_gen;
	int n_acks;
	struct hb_ack acks[PGC_MAX_PEERS];
	bool leaving;
};

/* M as a datagram into OUT (CAP bytes), signed when SECRET is not "".
 * Its length, or 0 when it does not fit. */
size_t hbmsg_build(const struct hb_msg *m, const char *secret, char *out, size_t cap);
/* Check and parse datagram D (N bytes, modified) into M.  NULL when it is
 * good, else why it is refused. */
const char *hbmsg_parse(char *d, size_t n, const char *secret, struct hb_msg *m);
/* The token M acknowledges for INSTANCE (0: none). */
uint64_t hbmsg_ack_for(const struct hb_msg *m, const char *instance);

#endif
