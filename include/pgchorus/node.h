/*
 * node.h - the backend PostgreSQL nodes: addresses resolved once at start
 * and, later, run-time state (up / down / recovering).
 */
#ifndef PGCHORUS_NODE_H
#define PGCHORUS_NODE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "pgchorus/config.h"

enum node_state {
	NODE_UP,
	NODE_DOWN,
	NODE_RECOVERING,
	NODE_DETACHED,
};

struct node {
	int id;
	char *host;
	int port;
	bool is_unix;
	struct sockaddr_storage addr;    /* TCP */
	socklen_t addrlen;
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix socket */
	atomic_int state;                /* enum node_state */
};

/* Resolve every node of CFG.  Returns 0, or -1 with a message in ERR. */
int nodes_init(const struct config *cfg, char *err, size_t errlen);
void nodes_free(void);
int nodes_count(void);
struct node *node_get(int id);
/* The primary: the node PROMOTE NODE chose while it is up, else the live
 * node with the lowest id. */
int node_primary(void);
/* PROMOTE NODE (ha.h: under the pause of writes, via node_set_preferred): ID, or -1 for none. */
void node_prefer(int id);
int node_preferred(void);

#endif
