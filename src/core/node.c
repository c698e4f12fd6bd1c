/*
 * node.c - backend node table (see node.h).  Addresses are resolved once
 * in the main thread before workers start; the table is then read-only
 * except for the atomic state.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgchorus/node.h"

static struct node *nodes;
static int n_nodes;
static atomic_int preferred = -1; /* PROMOTE NODE: the primary while it is up */

int nodes_init(const struct config *cfg, char *err, size_t errlen)
{
	nodes = calloc((size_t)cfg->n_nodes, sizeof(*nodes));
	if (!nodes) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n_nodes = cfg->n_nodes;
	for (int i = 0; i < cfg->n_nodes; i++) {
		const struct cfg_node *cn = &cfg->nodes[i];
		struct node *n = &nodes[i];

		n->id = i;
		n->host = strdup(cn->host);
		n->port = cn->port;
		atomic_init(&n->state, NODE_UP);
		if (cn->host[0] == '/') {
			int len = snprintf(n->sock_path, sizeof(n->sock_path), "%s/.s.PGSQL.%d",
					   cn->host, cn->port);

			if (len < 0 || (size_t)len >= sizeof(n->sock_path)) {
				snprintf(err, errlen, "node %d: unix socket path too long", i);
				return -1;
			}
			n->is_unix = true;
		} else {
			struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
			char port[16];
			int r;

			snprintf(port, sizeof(port), "%d", cn->port);
			r = getaddrinfo(cn->host, port, &hints, &res);
			if (r != 0) {
				snprintf(err, errlen, "node %d: cannot resolve \"%s\": %s", i, cn->host,
					 gai_strerror(r));
				return -1;
			}
			memcpy(&n->addr, res->ai_addr, res->ai_addrlen);
			n->addrlen = res->ai_addrlen;
			freeaddrinfo(res);
		}
	}
	return 0;
}

void node_prefer(int id)
{
	atomic_store(&preferred, id >= 0 && id < n_nodes ? id : -1);
}

int node_preferred(void)
{
	return atomic_load(&preferred);
}

void nodes_free(void)
{
	for (int i = 0; i < n_nodes; i++)
		free(nodes[i].host);
	free(nodes);
	nodes = NULL;
	n_nodes = 0;
}

int nodes_count(void)
{
	return n_nodes;
}

struct node *node_get(int id)
{
	return id >= 0 && id < n_nodes ? &nodes[id] : NULL;
}

int node_primary(void)
{
	int p = atomic_load_explicit(&preferred, memory_order_relaxed);

	if (p >= 0 && p < n_nodes && atomic_load(&nodes[p].state) == NODE_UP)
		return p;
	for (int i = 0; i < n_nodes; i++)
		if (atomic_load(&nodes[i].state) == NODE_UP)
			return i;
	return -1;
}
