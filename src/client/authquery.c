/*
 * authquery.c - auth_query: the secret of a user who is not in users_file
 * is fetched from the primary node by running auth_query as auth_user in
 * the client's database.  libpq runs non-blocking on a uv_poll handle, so
 * the worker never waits; the client's authentication resumes when the
 * answer (or an error) arrives.  Each login runs the query afresh, so a
 * password changed on the node applies at the next login.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "pgchorus/client.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/node.h"
#include "pgchorus/users.h"
#include "pgchorus/worker.h"

struct auth_lookup {
	uv_poll_t poll;
	struct client *client;        /* NULL once the client went away */
	struct worker *w;
	PGconn *conn;
	int fd;
	bool connected;
	bool poll_open;
	auth_lookup_cb done;
};

static void lookup_free_cb(uv_handle_t *h)
{
	struct auth_lookup *l = h->data;

	l->w->open_handles--;
	free(l);
}

static void lookup_finish(struct auth_lookup *l, bool ok, const char *secret, const char *error)
{
	struct client *c = l->client;

	if (l->conn) {
		PQfinish(l->conn);
		l->conn = NULL;
	}
	if (l->poll_open) {
		l->poll_open = false;
		uv_close((uv_handle_t *)&l->poll, lookup_free_cb);
	} else {
		l->w->open_handles--;
		free(l);
	}
	if (c) {
		c->auth_lookup = NULL;
		l->done(c, ok, secret, error);
	}
}

static void lookup_poll_cb(uv_poll_t *h, int status, int events);

/* (Re)arm the poll handle for libpq's socket in the direction it wants. */
static bool lookup_arm(struct auth_lookup *l, int events)
{
	int fd = PQsocket(l->conn);

	if (fd < 0)
		return false;
	if (l->poll_open && fd != l->fd) {
		/* libpq moved to another socket (next address): a new handle. */
		uv_poll_stop(&l->poll);
		return false;
	}
	if (!l->poll_open) {
		if (uv_poll_init_socket(&l->w->loop, &l->poll, fd) != 0)
			return false;
		l->poll.data = l;
		l->poll_open = true;
		l->fd = fd;
	}
	return uv_poll_start(&l->poll, events, lookup_poll_cb) == 0;
}

static void lookup_read_result(struct auth_lookup *l)
{
	PGresult *res;
	char *secret = NULL;
	bool ok = true;
	char err[256] = "";

	if (!PQconsumeInput(l->conn)) {
		lookup_finish(l, false, NULL, PQerrorMessage(l->conn));
		return;
	}
	if (PQisBusy(l->conn)) {
		lookup_arm(l, UV_READABLE);
		return;
	}
	while ((res = PQgetResult(l->conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			snprintf(err, sizeof(err), "auth_query failed: %s", PQresultErrorMessage(res));
			ok = false;
		} else if (PQntuples(res) > 0 && PQnfields(res) >= 2 && !PQgetisnull(res, 0, 1) && !secret) {
			secret = strdup(PQgetvalue(res, 0, 1));
		}
		PQclear(res);
	}
	lookup_finish(l, ok, ok ? secret : NULL, ok ? NULL : err);
	free(secret);
}

static void lookup_send_query(struct auth_lookup *l)
{
	const char *params[1] = { l->client ? l->client->user : "" };
	int f;

	PQsetnonblocking(l->conn, 1);
	if (!PQsendQueryParams(l->conn, l->w->cfg->auth_query, 1, NULL, params, NULL, NULL, 0)) {
		lookup_finish(l, false, NULL, PQerrorMessage(l->conn));
		return;
	}
	f = PQflush(l->conn);
	if (f < 0) {
		lookup_finish(l, false, NULL, PQerrorMessage(l->conn));
		return;
	}
	lookup_arm(l, f ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void lookup_step(struct auth_lookup *l)
{
	if (!l->connected) {
		switch (PQconnectPoll(l->conn)) {
		case PGRES_POLLING_READING:
			if (!lookup_arm(l, UV_READABLE))
				lookup_finish(l, false, NULL, "auth_query: connection changed socket");
			return;
		case PGRES_POLLING_WRITING:
			if (!lookup_arm(l, UV_WRITABLE))
				lookup_finish(l, false, NULL, "auth_query: connection changed socket");
			return;
		case PGRES_POLLING_OK:
			l->connected = true;
			lookup_send_query(l);
			return;
		default:
			lookup_finish(l, false, NULL, PQerrorMessage(l->conn));
			return;
		}
	}
	if (PQflush(l->conn) > 0) {
		lookup_arm(l, UV_READABLE | UV_WRITABLE);
		return;
	}
	lookup_read_result(l);
}

static void lookup_poll_cb(uv_poll_t *h, int status, int events)
{
	struct auth_lookup *l = h->data;

	(void)events;
	if (status < 0) {
		lookup_finish(l, false, NULL, uv_strerror(status));
		return;
	}
	lookup_step(l);
}

static const char *sslmode_name(enum server_tls_mode m)
{
	switch (m) {
	case SERVER_TLS_DISABLE: return "disable";
	case SERVER_TLS_PREFER: return "prefer";
	case SERVER_TLS_REQUIRE: return "require";
	case SERVER_TLS_VERIFY_CA: return "verify-ca";
	case SERVER_TLS_VERIFY_FULL: return "verify-full";
	}
	return "prefer";
}

static void add_param(const char **keys, const char **vals, int *n, const char *k, const char *v)
{
	if (!v)
		return;
	keys[*n] = k;
	vals[*n] = v;
	(*n)++;
}

bool client_auth_lookup(struct client *c, auth_lookup_cb done)
{
	const struct config *cfg = c->w->cfg;
	struct node *n = node_get(node_primary());
	const char *password = users_lookup(cfg->users, cfg->auth_user);
	char port[16];
	const char *keys[12], *vals[12];
	int np = 0;
	struct auth_lookup *l;

	if (!n || !cfg->auth_query[0])
		return false;
	if (password && users_secret_kind(password) != USER_SECRET_PLAIN)
		password = NULL; /* libpq needs the plain password */
	snprintf(port, sizeof(port), "%d", n->port);
	/* libpq stops at the first NULL value: add only what is set. */
	add_param(keys, vals, &np, "host", n->host);
	add_param(keys, vals, &np, "port", port);
	add_param(keys, vals, &np, "user", cfg->auth_user);
	add_param(keys, vals, &np, "dbname", c->database);
	add_param(keys, vals, &np, "password", password);
	add_param(keys, vals, &np, "sslmode", sslmode_name(cfg->server_tls));
	add_param(keys, vals, &np, "sslrootcert", cfg->server_tls_ca_file[0] ? cfg->server_tls_ca_file : NULL);
	add_param(keys, vals, &np, "application_name", "pgchorus auth_query");
	add_param(keys, vals, &np, "connect_timeout", "10");
	keys[np] = NULL;
	vals[np] = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return false;
	l->client = c;
	l->w = c->w;
	l->done = done;
	l->fd = -1;
	l->conn = PQconnectStartParams(keys, vals, 0);
	c->w->open_handles++;
	c->auth_lookup = l;
	if (!l->conn || PQstatus(l->conn) == CONNECTION_BAD) {
		/* Report asynchronously-equivalent: the caller expects the callback. */
		lookup_finish(l, false, NULL, l->conn ? PQerrorMessage(l->conn) : "out of memory");
		return true;
	}
	lookup_step(l);
	return true;
}

void client_auth_lookup_cancel(struct client *c)
{
	struct auth_lookup *l = c->auth_lookup;

	if (!l)
		return;
	l->client = NULL;
	c->auth_lookup = NULL;
	/* The lookup finishes on its own; it will find nobody to tell. */
}
