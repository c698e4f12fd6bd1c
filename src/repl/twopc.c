/*
 * twopc.c - two-phase commit: gids, the decision table, the set of gids in
 * flight and the resolver of prepared transactions left behind
 * (doc/replication.md, "Atomic commit"; the contracts are in twopc.h).
 *
 * The resolver is plain blocking libpq: it runs at start-up and then in a
 * thread of its own.  Every connection gets a statement and a lock timeout
 * and TCP keepalives, so that a run cannot hang on a stuck node for long.
 *
 * Why the rules are safe (the data path inserts the decision row inside the
 * transaction, immediately before PREPARE, and commits the prepared
 * transactions only after every node prepared it):
 *   - a decision row on any node means that some COMMIT PREPARED succeeded,
 *     so committing everywhere is the only consistent outcome;
 *   - no decision row on ANY node (every node answered) means no COMMIT
 *     PREPARED ever succeeded, so no client was told "committed": rolling
 *     back is safe.  If a node could not answer, it might be the one that
 *     committed: the gid stays prepared until it can;
 *   - a decision row may be deleted once no node has its gid prepared.  The
 *     union of the nodes' listings is taken within a few minutes, far less
 *     than the rows' minimum age: a transaction prepared on a node after
 *     that node was listed has a decision row younger than the listing.
 *
 * Owns: the in-flight sets; during twopc_resolve(), its connections and the
 * list of prepared gids.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "pgchorus/log.h"
#include "pgchorus/twopc.h"

#define GID_PREFIX "pgc_"
#define GID_PREFIX_LEN 4

/* Connection defaults, used when the node's conninfo does not set them. */
static const char *const conn_defaults[][2] = {
	{ "connect_timeout", "5" },
	{ "keepalives", "1" },
	{ "keepalives_idle", "10" },
	{ "keepalives_interval", "5" },
	{ "keepalives_count", "3" },
	{ "fallback_application_name", "pgchorus_resolver" },
};
#define N_CONN_DEFAULTS (sizeof(conn_defaults) / sizeof(conn_defaults[0]))

/* Run on every connection: no statement or lock wait may block a run for long. */
#define SESSION_SETUP \
	"SET statement_timeout = '30s'; SET lock_timeout = '10s'; SET client_min_messages = warning"

/*
 * Listings older than this do not allow garbage collection: well below
 * TWOPC_DECISION_KEEP_SECONDS (see the file header).
 */
#define GC_MAX_WINDOW_SECONDS 300.0
#define GC_BATCH "100000"

/* SQLSTATEs */
#define SQLSTATE_UNDEFINED_TABLE "42P01"
#define SQLSTATE_INVALID_SCHEMA "3F000"
#define SQLSTATE_UNDEFINED_OBJECT "42704" /* prepared transaction does not exist */

/* ---- gids ------------------------------------------------------------------ */

static bool instance_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool instance_valid_n(const char *s, size_t len)
{
	if (len == 0 || len > TWOPC_INSTANCE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!instance_char(s[i]))
			return false;
	}
	return true;
}

bool twopc_instance_valid(const char *name)
{
	return name && instance_valid_n(name, strnlen(name, TWOPC_INSTANCE_MAX + 1));
}

bool twopc_make_gid(char *out, size_t n, const char *instance, uint64_t boot, uint64_t counter)
{
	int len;

	if (!out || n == 0)
		return false;
	out[0] = '\0';
	if (!twopc_instance_valid(instance))
		return false;
	len = snprintf(out, n, GID_PREFIX "%s_%" PRIu64 "_%" PRIu64, instance, boot, counter);
	if (len < 0 || (size_t)len >= n || len >= TWOPC_GID_SIZE) {
		out[0] = '\0';
		return false;
	}
	return true;
}

/* The canonical decimal S[0..LEN) (no sign, no leading zero) that fits a uint64_t. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

bool twopc_parse_gid(const char *gid, char *instance, size_t instance_size, uint64_t *boot,
	uint64_t *counter)
{
	const char *body, *end, *u1 = NULL, *u2 = NULL;
	uint64_t b, c;
	size_t inst_len;

	if (!gid || strncmp(gid, GID_PREFIX, GID_PREFIX_LEN) != 0)
		return false;
	body = gid + GID_PREFIX_LEN;
	end = body + strnlen(body, TWOPC_GID_SIZE);
	if (end - gid >= TWOPC_GID_SIZE)
		return false;
	/* The numbers hold no '_': the last two '_' end the instance and the boot. */
	for (const char *p = end; p > body; p--) {
		if (p[-1] != '_')
			continue;
		if (!u2) {
			u2 = p - 1;
		} else {
			u1 = p - 1;
			break;
		}
	}
	if (!u1)
		return false;
	inst_len = (size_t)(u1 - body);
	if (!instance_valid_n(body, inst_len) || !parse_u64(u1 + 1, (size_t)(u2 - u1 - 1), &b) ||
		!parse_u64(u2 + 1, (size_t)(end - u2 - 1), &c))
		return false;
	if (!instance || instance_size <= inst_len)
		return false;
	memcpy(instance, body, inst_len);
	instance[inst_len] = '\0';
	if (boot)
		*boot = b;
	if (counter)
		*counter = c;
	return true;
}

/* ---- SQL text -------------------------------------------------------------- */

const char *twopc_decisions_ddl(void)
{
	/*
	 * decided_at defaults to clock_timestamp(), not now(): the garbage
	 * collection needs the time of the PREPARE, not of the transaction's start.
	 * The data path inserts the decision row as the client's own user, so
	 * every user may insert (only insert: reading and deleting rows stay
	 * with the owner, the resolver's user).
	 */
	return "CREATE SCHEMA IF NOT EXISTS pgchorus; "
	       "CREATE TABLE IF NOT EXISTS pgchorus.decisions ("
	       "gid text PRIMARY KEY, "
	       "decided_at timestamptz NOT NULL DEFAULT clock_timestamp()); "
	       "GRANT USAGE ON SCHEMA pgchorus TO PUBLIC; "
	       "GRANT INSERT ON pgchorus.decisions TO PUBLIC";
}

/* A gid as the resolver and the data path accept it: 1 to 199 bytes of printable ASCII. */
static bool gid_acceptable(const char *gid)
{
	size_t len;

	if (!gid)
		return false;
	len = strnlen(gid, TWOPC_GID_SIZE);
	if (len == 0 || len >= TWOPC_GID_SIZE)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (gid[i] < 0x20 || gid[i] > 0x7e)
			return false;
	}
	return true;
}

/*
 * Append S as a string literal to OUT (N bytes) at *POS.  Quotes are doubled;
 * with a backslash the E'' form (backslashes doubled) reads the same whatever
 * standard_conforming_strings is.  S must be printable ASCII, so no client
 * encoding can hide a quote in a multibyte character.
 */
static bool put_literal(char *out, size_t n, size_t *pos, const char *s)
{
	bool esc = strchr(s, '\\') != NULL;
	size_t need = esc ? 3 : 2, p = *pos;

	for (const char *c = s; *c; c++)
		need += (*c == '\'' || (esc && *c == '\\')) ? 2 : 1;
	if (p + need >= n)
		return false;
	if (esc)
		out[p++] = 'E';
	out[p++] = '\'';
	for (const char *c = s; *c; c++) {
		if (*c == '\'' || (esc && *c == '\\'))
			out[p++] = *c;
		out[p++] = *c;
	}
	out[p++] = '\'';
	out[p] = '\0';
	*pos = p;
	return true;
}

static bool put_str(char *out, size_t n, size_t *pos, const char *s)
{
	size_t len = strlen(s);

	if (*pos + len >= n)
		return false;
	memcpy(out + *pos, s, len + 1);
	*pos += len;
	return true;
}

bool twopc_decision_insert_sql(const char *gid, char *buf, size_t n)
{
	size_t pos = 0;

	if (!buf || n == 0)
		return false;
	buf[0] = '\0';
	if (!gid_acceptable(gid) ||
		!put_str(buf, n, &pos, "INSERT INTO pgchorus.decisions (gid, decided_at) VALUES (") ||
		!put_literal(buf, n, &pos, gid) || !put_str(buf, n, &pos, ", clock_timestamp())")) {
		buf[0] = '\0';
		return false;
	}
	return true;
}

/* ---- the set of gids in flight ---------------------------------------------- */

struct inflight_item {
	struct inflight_item *next;
	uint64_t hash;
	char gid[];
};

struct twopc_inflight {
	pthread_mutex_t lock;
	struct inflight_item **slots;
	size_t n_slots; /* power of two */
	size_t count;
};

static uint64_t gid_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

struct twopc_inflight *twopc_inflight_new(void)
{
	struct twopc_inflight *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->n_slots = 64;
	set->slots = calloc(set->n_slots, sizeof(*set->slots));
	if (!set->slots || pthread_mutex_init(&set->lock, NULL) != 0) {
		free(set->slots);
		free(set);
		return NULL;
	}
	return set;
}

void twopc_inflight_free(struct twopc_inflight *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n_slots; i++) {
		struct inflight_item *it = set->slots[i], *next;

		for (; it; it = next) {
			next = it->next;
			free(it);
		}
	}
	free(set->slots);
	pthread_mutex_destroy(&set->lock);
	free(set);
}

/* The link pointing at GID's item (or at the NULL ending its chain).  Lock held. */
static struct inflight_item **inflight_find(struct twopc_inflight *set, const char *gid, uint64_t h)
{
	struct inflight_item **link = &set->slots[h & (set->n_slots - 1)];

	for (; *link; link = &(*link)->next) {
		if ((*link)->hash == h && strcmp((*link)->gid, gid) == 0)
			break;
	}
	return link;
}

/* Double the table when it is full; a failed allocation only keeps the chains longer. */
static void inflight_grow(struct twopc_inflight *set)
{
	size_t n = set->n_slots * 2;
	struct inflight_item **slots;

	if (set->count < set->n_slots || n < set->n_slots)
		return;
	slots = calloc(n, sizeof(*slots));
	if (!slots)
		return;
	for (size_t i = 0; i < set->n_slots; i++) {
		struct inflight_item *it = set->slots[i], *next;

		for (; it; it = next) {
			next = it->next;
			it->next = slots[it->hash & (n - 1)];
			slots[it->hash & (n - 1)] = it;
		}
	}
	free(set->slots);
	set->slots = slots;
	set->n_slots = n;
}

bool twopc_inflight_add(struct twopc_inflight *set, const char *gid)
{
	uint64_t h;
	size_t len;
	struct inflight_item **link, *it;
	bool ok = true;

	if (!set || !gid_acceptable(gid))
		return false;
	h = gid_hash(gid);
	len = strlen(gid);
	pthread_mutex_lock(&set->lock);
	link = inflight_find(set, gid, h);
	if (!*link) {
		it = malloc(sizeof(*it) + len + 1);
		if (it) {
			it->next = NULL;
			it->hash = h;
			memcpy(it->gid, gid, len + 1);
			*link = it;
			set->count++;
			inflight_grow(set);
		} else {
			ok = false;
		}
	}
	pthread_mutex_unlock(&set->lock);
	return ok;
}

bool twopc_inflight_remove(struct twopc_inflight *set, const char *gid)
{
	struct inflight_item **link, *it;
	uint64_t h;

	if (!set || !gid)
		return false;
	h = gid_hash(gid);
	pthread_mutex_lock(&set->lock);
	link = inflight_find(set, gid, h);
	it = *link;
	if (it) {
		*link = it->next;
		set->count--;
	}
	pthread_mutex_unlock(&set->lock);
	free(it);
	return it != NULL;
}

/*
 * The set is logically const for readers; only its lock changes.  Sets are
 * always allocated by twopc_inflight_new(), never defined const, so casting
 * the qualifier away to lock is well defined.
 */
static struct twopc_inflight *inflight_unconst(const struct twopc_inflight *set)
{
	return (struct twopc_inflight *)(uintptr_t)set;
}

bool twopc_inflight_contains(const struct twopc_inflight *set, const char *gid)
{
	struct twopc_inflight *s = inflight_unconst(set);
	bool found;
	uint64_t h;

	if (!s || !gid)
		return false;
	h = gid_hash(gid);
	pthread_mutex_lock(&s->lock);
	found = *inflight_find(s, gid, h) != NULL;
	pthread_mutex_unlock(&s->lock);
	return found;
}

size_t twopc_inflight_count(const struct twopc_inflight *set)
{
	struct twopc_inflight *s = inflight_unconst(set);
	size_t n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- resolver: connections ------------------------------------------------------ */

/* One connection of a node to one database; conn NULL: the connection failed. */
struct dbconn {
	char *dbname;
	PGconn *conn;
};

struct node_state {
	const struct twopc_node *node;
	PQconninfoOption *opts; /* the parsed conninfo */
	bool reachable;         /* connected and listed */
	struct dbconn *dbs;
	size_t n_dbs, cap_dbs;
	const char *base_db;    /* the conninfo's database (points into dbs) */
};

/* One prepared gid (of any instance) and the nodes that hold it. */
struct prepared {
	char gid[TWOPC_GID_SIZE];
	char *db;
	bool ours;        /* a gid of the resolved instance */
	uint64_t boot;
	double min_age;   /* seconds since PREPARE, on the node where it is youngest */
	unsigned char *held; /* [n]: prepared on that node */
};

struct run {
	struct node_state *ns;
	int n;
	const char *instance;
	struct prepared *list;
	size_t n_list, cap_list;
	struct twopc_report *rep;
	bool oom;
};

static void notice_to_log(void *arg, const char *message)
{
	const struct node_state *ns = arg;
	size_t len = strlen(message);

	while (len > 0 && message[len - 1] == '\n')
		len--;
	log_warning("twopc: node %d: %.*s", ns->node->id, (int)len, message);
}

static bool sqlstate_is(const PGresult *res, const char *code)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s && strcmp(s, code) == 0;
}

/* The error of RES (or of CONN when there is no result), one line. */
static const char *error_text(PGconn *conn, const PGresult *res, char *buf, size_t n)
{
	const char *msg = res ? PQresultErrorMessage(res) : NULL;
	size_t len;

	if (!msg || !*msg)
		msg = PQerrorMessage(conn);
	snprintf(buf, n, "%s", msg && *msg ? msg : "unknown error");
	len = strlen(buf);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	for (char *p = buf; *p; p++) {
		if (*p == '\n')
			*p = ' ';
	}
	return buf;
}

/* Connect NS's node to DBNAME (NULL: the conninfo's own database).  NULL on failure (logged). */
static PGconn *node_connect(struct run *r, struct node_state *ns, const char *dbname)
{
	const char *keys[64 + N_CONN_DEFAULTS + 2], *vals[64 + N_CONN_DEFAULTS + 2];
	size_t k = 0;
	PGconn *conn;
	PGresult *res;
	char ebuf[512];

	for (PQconninfoOption *o = ns->opts; o->keyword; o++) {
		if (!o->val || (dbname && strcmp(o->keyword, "dbname") == 0))
			continue;
		if (k >= 64)
			break; /* libpq has fewer options than this */
		keys[k] = o->keyword;
		vals[k++] = o->val;
	}
	for (size_t d = 0; d < N_CONN_DEFAULTS; d++) {
		bool set = false;

		for (size_t i = 0; i < k; i++)
			set = set || strcmp(keys[i], conn_defaults[d][0]) == 0;
		if (!set) {
			keys[k] = conn_defaults[d][0];
			vals[k++] = conn_defaults[d][1];
		}
	}
	if (dbname) {
		keys[k] = "dbname";
		vals[k++] = dbname;
	}
	keys[k] = NULL;
	vals[k] = NULL;

	conn = PQconnectdbParams(keys, vals, 0);
	if (!conn) {
		r->oom = true;
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		log_warning("twopc: node %d: cannot connect%s%s: %s", ns->node->id, dbname ? " to database " : "",
			dbname ? dbname : "", error_text(conn, NULL, ebuf, sizeof(ebuf)));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_to_log, ns);
	res = PQexec(conn, SESSION_SETUP);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_warning("twopc: node %d: session setup failed: %s", ns->node->id,
			error_text(conn, res, ebuf, sizeof(ebuf)));
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	PQclear(res);
	return conn;
}

/* Remember CONN (may be NULL: a failed connection is not retried in this run) for DBNAME. */
static struct dbconn *node_add_db(struct run *r, struct node_state *ns, const char *dbname, PGconn *conn)
{
	struct dbconn *d;

	if (ns->n_dbs == ns->cap_dbs) {
		size_t cap = ns->cap_dbs ? ns->cap_dbs * 2 : 4;
		struct dbconn *dbs = realloc(ns->dbs, cap * sizeof(*dbs));

		if (!dbs)
			goto oom;
		ns->dbs = dbs;
		ns->cap_dbs = cap;
	}
	d = &ns->dbs[ns->n_dbs];
	d->dbname = strdup(dbname);
	if (!d->dbname)
		goto oom;
	d->conn = conn;
	ns->n_dbs++;
	return d;
oom:
	r->oom = true;
	PQfinish(conn);
	return NULL;
}

/* The connection of NS's node to DBNAME, made on first use; NULL when it cannot be had. */
static PGconn *node_db(struct run *r, struct node_state *ns, const char *dbname)
{
	struct dbconn *d;

	for (size_t i = 0; i < ns->n_dbs; i++) {
		if (strcmp(ns->dbs[i].dbname, dbname) == 0)
			return ns->dbs[i].conn;
	}
	d = node_add_db(r, ns, dbname, node_connect(r, ns, dbname));
	return d ? d->conn : NULL;
}

static void node_close(struct node_state *ns)
{
	for (size_t i = 0; i < ns->n_dbs; i++) {
		PQfinish(ns->dbs[i].conn);
		free(ns->dbs[i].dbname);
	}
	free(ns->dbs);
	ns->dbs = NULL;
	ns->n_dbs = ns->cap_dbs = 0;
	ns->base_db = NULL;
	if (ns->opts)
		PQconninfoFree(ns->opts);
	ns->opts = NULL;
}

/* ---- resolver: listing -------------------------------------------------------- */

static struct prepared *list_entry(struct run *r, const char *gid, const char *db)
{
	struct prepared *p;

	for (size_t i = 0; i < r->n_list; i++) {
		if (strcmp(r->list[i].gid, gid) == 0 && strcmp(r->list[i].db, db) == 0)
			return &r->list[i];
	}
	if (r->n_list == r->cap_list) {
		size_t cap = r->cap_list ? r->cap_list * 2 : 16;
		struct prepared *list = realloc(r->list, cap * sizeof(*list));

		if (!list)
			goto oom;
		r->list = list;
		r->cap_list = cap;
	}
	p = &r->list[r->n_list];
	memset(p, 0, sizeof(*p));
	snprintf(p->gid, sizeof(p->gid), "%s", gid);
	p->db = strdup(db);
	p->held = calloc((size_t)r->n, 1);
	if (!p->db || !p->held) {
		free(p->db);
		free(p->held);
		goto oom;
	}
	p->min_age = INFINITY;
	{
		char inst[TWOPC_INSTANCE_MAX + 1];
		uint64_t counter;

		p->ours = twopc_parse_gid(gid, inst, sizeof(inst), &p->boot, &counter) &&
			strcmp(inst, r->instance) == 0;
	}
	r->n_list++;
	return p;
oom:
	r->oom = true;
	return NULL;
}

/*
 * Connect node K, create the decision table, list its prepared gids into
 * r->list.  false when the node is unreachable (logged).
 */
static bool node_list(struct run *r, int k)
{
	struct node_state *ns = &r->ns[k];
	PGconn *conn = node_connect(r, ns, NULL);
	struct dbconn *d;
	PGresult *res;
	char ebuf[512];

	if (!conn)
		return false;
	d = node_add_db(r, ns, PQdb(conn), conn);
	if (!d)
		return false;
	ns->base_db = d->dbname;

	/* Failing to create the table does not stop resolution: the data path will complain. */
	res = PQexec(conn, twopc_decisions_ddl());
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		log_warning("twopc: node %d: cannot create pgchorus.decisions in database %s: %s", ns->node->id,
			ns->base_db, error_text(conn, res, ebuf, sizeof(ebuf)));
	PQclear(res);

	/* left(): a LIKE pattern's escapes would depend on standard_conforming_strings. */
	res = PQexec(conn,
		"SELECT gid, database, extract(epoch FROM now() - prepared)::float8 "
		"FROM pg_prepared_xacts WHERE left(gid, 4) = '" GID_PREFIX "' ORDER BY prepared, gid");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 3) {
		log_warning("twopc: node %d: cannot list prepared transactions: %s", ns->node->id,
			error_text(conn, res, ebuf, sizeof(ebuf)));
		PQclear(res);
		return false;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *gid = PQgetvalue(res, i, 0), *db = PQgetvalue(res, i, 1);
		double age = strtod(PQgetvalue(res, i, 2), NULL);
		struct prepared *p;

		if (strlen(gid) >= TWOPC_GID_SIZE)
			continue; /* cannot be: PostgreSQL's own limit */
		p = list_entry(r, gid, db);
		if (!p)
			break;
		p->held[k] = 1;
		if (isnan(age))
			age = -1; /* cannot be; treated as young */
		if (age < p->min_age)
			p->min_age = age;
	}
	PQclear(res);
	return !r->oom;
}

/* ---- resolver: decisions ---------------------------------------------------------- */

enum verdict { V_COMMIT, V_ROLLBACK, V_UNKNOWN };

/* Ask every node whether it has P's decision row, in P's database. */
static enum verdict decide(struct run *r, const struct prepared *p)
{
	bool unknown = false;
	char ebuf[512];

	for (int k = 0; k < r->n; k++) {
		struct node_state *ns = &r->ns[k];
		const char *params[1] = { p->gid };
		PGconn *conn;
		PGresult *res;

		if (!ns->reachable || !(conn = node_db(r, ns, p->db))) {
			unknown = true;
			continue;
		}
		res = PQexecParams(conn, "SELECT 1 FROM pgchorus.decisions WHERE gid = $1", 1, NULL, params, NULL,
			NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK) {
			bool found = PQntuples(res) > 0;

			PQclear(res);
			if (found) {
				log_info("twopc: %s: decision row found on node %d: commit", p->gid, ns->node->id);
				return V_COMMIT;
			}
		} else if (sqlstate_is(res, SQLSTATE_UNDEFINED_TABLE) || sqlstate_is(res, SQLSTATE_INVALID_SCHEMA)) {
			PQclear(res); /* no decision table in that database: no decision row */
		} else {
			log_warning("twopc: %s: cannot read the decision on node %d: %s", p->gid, ns->node->id,
				error_text(conn, res, ebuf, sizeof(ebuf)));
			PQclear(res);
			unknown = true;
		}
	}
	return unknown ? V_UNKNOWN : V_ROLLBACK;
}

/* COMMIT or ROLLBACK PREPARED P on every node listing it; the number of failures. */
static int finish(struct run *r, const struct prepared *p, bool commit)
{
	const char *verb = commit ? "COMMIT" : "ROLLBACK";
	char sql[2 * TWOPC_GID_SIZE + 32], ebuf[512];
	size_t pos = 0;
	int failures = 0;

	if (!put_str(sql, sizeof(sql), &pos, verb) || !put_str(sql, sizeof(sql), &pos, " PREPARED ") ||
		!put_literal(sql, sizeof(sql), &pos, p->gid))
		return r->n; /* cannot be: a listed gid is shorter than TWOPC_GID_SIZE */
	for (int k = 0; k < r->n; k++) {
		struct node_state *ns = &r->ns[k];
		PGconn *conn;
		PGresult *res;

		if (!p->held[k])
			continue;
		conn = node_db(r, ns, p->db);
		if (!conn) {
			failures++;
			continue;
		}
		res = PQexec(conn, sql);
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			log_info("twopc: %s: %s PREPARED on node %d (database %s)", p->gid, verb, ns->node->id, p->db);
		} else if (sqlstate_is(res, SQLSTATE_UNDEFINED_OBJECT)) {
			/* Finished meanwhile (by the data path of the running boot). */
			log_info("twopc: %s: already finished on node %d", p->gid, ns->node->id);
		} else {
			log_warning("twopc: %s: %s PREPARED failed on node %d: %s", p->gid, verb, ns->node->id,
				error_text(conn, res, ebuf, sizeof(ebuf)));
			failures++;
		}
		PQclear(res);
	}
	return failures;
}

static void resolve_one(struct run *r, const struct prepared *p, uint64_t current_boot, double grace,
	const struct twopc_inflight *inflight)
{
	enum verdict v;

	/* a boot newer than the one named is not ours to judge (a peer instance restarted) */
	if (p->boot > current_boot || (p->boot == current_boot &&
		(!(p->min_age >= grace) || (inflight && twopc_inflight_contains(inflight, p->gid))))) {
		r->rep->pending++;
		return;
	}
	v = decide(r, p);
	if (v == V_UNKNOWN) {
		log_warning("twopc: %s: no decision row on the reachable nodes, but not every node could be "
			"asked: left prepared", p->gid);
		r->rep->undecided++;
		return;
	}
	if (finish(r, p, v == V_COMMIT) > 0)
		r->rep->failed++;
	else if (v == V_COMMIT)
		r->rep->committed++;
	else
		r->rep->rolled_back++;
}

/* ---- resolver: garbage collection of decision rows ------------------------------- */

static double elapsed_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A text[] literal of every listed gid (of any instance).  NULL when out of memory. */
static char *listed_gids_array(const struct run *r)
{
	size_t size = 3, pos = 0;
	char *a;

	for (size_t i = 0; i < r->n_list; i++)
		size += 2 * strlen(r->list[i].gid) + 3;
	a = malloc(size);
	if (!a)
		return NULL;
	a[pos++] = '{';
	for (size_t i = 0; i < r->n_list; i++) {
		if (i > 0)
			a[pos++] = ',';
		a[pos++] = '"';
		for (const char *c = r->list[i].gid; *c; c++) {
			if (*c == '"' || *c == '\\')
				a[pos++] = '\\';
			a[pos++] = *c;
		}
		a[pos++] = '"';
	}
	a[pos++] = '}';
	a[pos] = '\0';
	return a;
}

static void gc_node(struct run *r, struct node_state *ns, const char *const params[3],
	const struct timespec *t0)
{
	PGconn *base = node_db(r, ns, ns->base_db);
	PGresult *dbs;
	char ebuf[512];

	if (!base)
		return;
	dbs = PQexec(base, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
		"ORDER BY datname");
	if (PQresultStatus(dbs) != PGRES_TUPLES_OK) {
		log_warning("twopc: node %d: cannot list databases: %s", ns->node->id,
			error_text(base, dbs, ebuf, sizeof(ebuf)));
		PQclear(dbs);
		return;
	}
	for (int i = 0; i < PQntuples(dbs) && !r->oom; i++) {
		const char *db = PQgetvalue(dbs, i, 0);
		PGconn *conn;
		PGresult *res;

		if (elapsed_since(t0) > GC_MAX_WINDOW_SECONDS) {
			log_warning("twopc: the run took over %.0f s: decision rows are collected next time",
				GC_MAX_WINDOW_SECONDS);
			break;
		}
		conn = node_db(r, ns, db);
		if (!conn)
			continue;
		res = PQexecParams(conn,
			"DELETE FROM pgchorus.decisions WHERE gid IN ("
			" SELECT gid FROM pgchorus.decisions"
			" WHERE decided_at < now() - make_interval(secs => $3::float8)"
			" AND gid ~ $1 AND gid <> ALL ($2::text[]) LIMIT " GC_BATCH ")",
			3, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_COMMAND_OK) {
			long deleted = strtol(PQcmdTuples(res), NULL, 10);

			if (deleted > 0)
				log_info("twopc: node %d: deleted %ld old decision rows in database %s", ns->node->id,
					deleted, db);
			r->rep->gc_deleted += deleted;
		} else if (!sqlstate_is(res, SQLSTATE_UNDEFINED_TABLE) && !sqlstate_is(res, SQLSTATE_INVALID_SCHEMA)) {
			log_warning("twopc: node %d: cannot delete old decision rows in database %s: %s", ns->node->id,
				db, error_text(conn, res, ebuf, sizeof(ebuf)));
		}
		PQclear(res);
	}
	PQclear(dbs);
}

static void gc(struct run *r, const struct timespec *t0)
{
	char pattern[64], keep[32];
	const char *params[3];
	char *listed;

	if (r->rep->unreachable_nodes > 0)
		return; /* a node not listed might hold any gid prepared */
	/* The instance is [a-z0-9_]: no regular expression metacharacter. */
	snprintf(pattern, sizeof(pattern), "^" GID_PREFIX "%s_[0-9]+_[0-9]+$", r->instance);
	snprintf(keep, sizeof(keep), "%d", TWOPC_DECISION_KEEP_SECONDS);
	listed = listed_gids_array(r);
	if (!listed) {
		r->oom = true;
		return;
	}
	params[0] = pattern;
	params[1] = listed;
	params[2] = keep;
	for (int k = 0; k < r->n && !r->oom; k++)
		gc_node(r, &r->ns[k], params, t0);
	free(listed);
}

/* ---- resolver ------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *msg, int node_id)
{
	if (err && errlen > 0) {
		if (node_id >= 0)
			snprintf(err, errlen, "node %d: %s", node_id, msg);
		else
			snprintf(err, errlen, "%s", msg);
	}
	return -1;
}

int twopc_resolve(const struct twopc_node *nodes, int n, const char *instance, uint64_t current_boot,
	double grace_seconds, const struct twopc_inflight *inflight, struct twopc_report *report,
	char *err, size_t errlen)
{
	struct run r = { 0 };
	struct timespec t0;
	int rc = 0;

	if (err && errlen > 0)
		err[0] = '\0';
	if (!report)
		return fail(err, errlen, "no report", -1);
	memset(report, 0, sizeof(*report));
	if (!nodes || n <= 0)
		return fail(err, errlen, "no nodes", -1);
	if (!twopc_instance_valid(instance))
		return fail(err, errlen, "invalid instance name (1 to 20 of a-z, 0-9, _)", -1);
	if (!(grace_seconds >= 0) || isinf(grace_seconds))
		return fail(err, errlen, "invalid grace period", -1);

	r.n = n;
	r.instance = instance;
	r.rep = report;
	r.ns = calloc((size_t)n, sizeof(*r.ns));
	if (!r.ns)
		return fail(err, errlen, "out of memory", -1);
	for (int k = 0; k < n; k++) {
		char *msg = NULL;

		r.ns[k].node = &nodes[k];
		r.ns[k].opts = nodes[k].conninfo ? PQconninfoParse(nodes[k].conninfo, &msg) : NULL;
		if (!r.ns[k].opts) {
			char buf[512];

			snprintf(buf, sizeof(buf), "invalid conninfo: %s", msg ? msg : "missing or out of memory");
			PQfreemem(msg);
			rc = fail(err, errlen, buf, nodes[k].id);
			goto out;
		}
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int k = 0; k < n && !r.oom; k++) {
		r.ns[k].reachable = !nodes[k].skip && node_list(&r, k);
		if (!r.ns[k].reachable)
			report->unreachable_nodes++;
	}
	for (size_t i = 0; i < r.n_list && !r.oom; i++) {
		if (r.list[i].ours)
			resolve_one(&r, &r.list[i], current_boot, grace_seconds, inflight);
	}
	if (!r.oom)
		gc(&r, &t0);
	if (r.oom)
		rc = fail(err, errlen, "out of memory", -1);
	if (report->committed || report->rolled_back || report->undecided || report->failed ||
		report->unreachable_nodes)
		log_info("twopc: resolver: %d committed, %d rolled back, %d undecided, %d failed, "
			"%d unreachable nodes", report->committed, report->rolled_back, report->undecided,
			report->failed, report->unreachable_nodes);
out:
	for (size_t i = 0; i < r.n_list; i++) {
		free(r.list[i].db);
		free(r.list[i].held);
	}
	free(r.list);
	for (int k = 0; k < n; k++)
		node_close(&r.ns[k]);
	free(r.ns);
	return rc;
}
