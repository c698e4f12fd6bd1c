/*
 * prepared.c - protocol-level prepared statements across pooled server
 * connections (see prepared.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pgchorus/client.h"
#include "pgchorus/codec.h"
#include "pgchorus/log.h"
#include "pgchorus/msg.h"
#include "pgchorus/prepared.h"
#include "pgchorus/worker.h"

enum { STMT_SENT = 1, STMT_READY = 2 };

/* "pgc_" and the hash in 16 hex digits: OUT holds at least 21 bytes.  Made
 * for every Bind, so no snprintf. */
static void stmt_server_name(uint64_t hash, char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	if (n < 21)
		return;
	memcpy(out, "pgc_", 4);
	for (int i = 0; i < 16; i++)
		out[4 + i] = hex[(hash >> (60 - 4 * i)) & 0xf];
	out[20] = '\0';
}

static uint64_t stmt_hash(const uint8_t *p, size_t n)
{
	uint64_t h = hash_bytes(p, n);

	return h ? h : 1; /* 0 is reserved by u64map */
}

/* Remember client statement NAME with Parse body BODY; NULL on OOM. */
static struct client_stmt *client_stmt_store(struct client *c, const char *name, const uint8_t *body,
					     uint32_t len)
{
	struct client_stmt *stmt = malloc(sizeof(*stmt) + len);
	void *old = NULL;

	if (!stmt)
		return NULL;
	stmt->body_len = len;
	stmt->pipe_safe = 0; /* not known yet (pipeline.c) */
	memcpy(stmt->body, body, len);
	stmt->hash = stmt_hash(stmt->body, len);
	if (!strmap_put(&c->stmts, name, stmt, &old)) {
		free(stmt);
		return NULL;
	}
	free(old);
	return stmt;
}

static bool pending_push(struct server *s, uint64_t hash)
{
	if (s->n_pending == s->cap_pending) {
		uint32_t cap = s->cap_pending ? s->cap_pending * 2 : 8;
		struct pending_parse *p = realloc(s->pending, cap * sizeof(*p));

		if (!p)
			return false;
		s->pending = p;
		s->cap_pending = cap;
	}
	s->pending[s->n_pending].hash = hash;
	s->pending[s->n_pending].sync_no = s->rt.syncs_queued;
	s->n_pending++;
	return true;
}

static void pending_pop(struct server *s)
{
	memmove(s->pending, s->pending + 1, (s->n_pending - 1) * sizeof(*s->pending));
	s->n_pending--;
}

void prep_server_forget(struct server *s)
{
	u64map_clear(&s->stmts);
	s->n_pending = 0;
}

#define MAX_VALID_STMTS 10000

void prep_server_response(struct server *s, uint8_t type, uint8_t entry)
{
	if (type == '1' && (entry & RT_NAMED) && s->n_pending) {
		struct u64map *valid = &s->pool->valid_stmts;

		if (!u64map_put(&s->stmts, s->pending[0].hash, STMT_READY))
			u64map_remove(&s->stmts, s->pending[0].hash);
		if (valid->count >= MAX_VALID_STMTS)
			u64map_clear(valid);
		if (!u64map_put(valid, s->pending[0].hash, 1))
			u64map_clear(valid);
		pending_pop(s);
	} else if (type == 'Z') {
		/* Parses before this sync point that never completed failed or were skipped. */
		while (s->n_pending && s->pending[0].sync_no < s->rt.syncs_done) {
			u64map_remove(&s->stmts, s->pending[0].hash);
			pending_pop(s);
		}
	}
}

bool prep_query_drops_statements(const uint8_t *sql, uint32_t len)
{
	uint32_t i = 0;

	while (i < len && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r'))
		i++;
	len -= i;
	sql += i;
	return (len >= 7 && strncasecmp((const char *)sql, "discard", 7) == 0) ||
	       (len >= 10 && strncasecmp((const char *)sql, "deallocate", 10) == 0);
}

/* Queue a Parse of STMT under its server name; ENTRY says whose answer it is. */
static int send_parse(struct server *s, struct outv *ov, const struct client_stmt *stmt, uint8_t entry)
{
	struct msg_builder mb;
	char name[32];

	stmt_server_name(stmt->hash, name, sizeof(name));
	builder_begin(&mb, ov->gen, 'P');
	builder_string(&mb, name);
	builder_bytes(&mb, stmt->body, stmt->body_len);
	if (!builder_finish(&mb) || !u64map_put(&s->stmts, stmt->hash, STMT_SENT) ||
	    !pending_push(s, stmt->hash) || !rt_push(&s->rt, entry))
		return UV_ENOMEM;
	if (s->stmts.count > (size_t)s->w->cfg->max_prepared_statements)
		s->close_on_release = true; /* bounded: start over on a fresh connection */
	return outv_take_gen(ov);
}

static int ensure_prepared(struct server *s, struct outv *ov, const struct client_stmt *stmt)
{
	if (u64map_get(&s->stmts, stmt->hash, NULL))
		return 0;
	return send_parse(s, ov, stmt, RT_PARSE | RT_NAMED | RT_SWALLOW);
}

static int pass_with(struct server *s, struct outv *ov, uint32_t len, uint8_t entry)
{
	if (!rt_push(&s->rt, entry))
		return UV_ENOMEM;
	return outv_pass(ov, len);
}

static int handle_parse(struct client *c, struct server *s, struct outv *ov, struct msg_reader *r,
			uint32_t len)
{
	const char *name = reader_string(r);
	struct client_stmt *stmt;

	if (r->err || !*name)
		return pass_with(s, ov, len, RT_PARSE); /* unnamed, or malformed: the node decides */
	stmt = client_stmt_store(c, name, r->p + r->pos, (uint32_t)(r->len - r->pos));
	if (!stmt)
		return UV_ENOMEM;
	outv_skip(ov, len);
	if (u64map_get(&s->stmts, stmt->hash, NULL)) {
		/* Already prepared on this server: answer ParseComplete ourselves, in order. */
		if (!rt_push(&s->rt, RT_SYNTH_PARSE))
			return UV_ENOMEM;
		return relay_emit_synth(c, s) ? 0 : 1;
	}
	return send_parse(s, ov, stmt, RT_PARSE | RT_NAMED);
}

static int handle_bind(struct client *c, struct server *s, struct outv *ov, struct msg_reader *r,
		       uint32_t len)
{
	const char *portal = reader_string(r);
	const char *name = reader_string(r);
	const struct client_stmt *stmt;
	struct msg_builder mb;
	char sname[32];
	int ret;

	if (r->err || !*name || !(stmt = strmap_get(&c->stmts, name)))
		return pass_with(s, ov, len, RT_BIND); /* the node reports unknown statements */
	if ((ret = ensure_prepared(s, ov, stmt)) != 0)
		return ret;
	stmt_server_name(stmt->hash, sname, sizeof(sname));
	builder_begin(&mb, ov->gen, 'B');
	builder_string(&mb, portal);
	builder_string(&mb, sname);
	builder_bytes(&mb, r->p + r->pos, r->len - r->pos);
	if (!builder_finish(&mb) || !rt_push(&s->rt, RT_BIND))
		return UV_ENOMEM;
	outv_skip(ov, len);
	return outv_take_gen(ov);
}

static int handle_describe(struct client *c, struct server *s, struct outv *ov, struct msg_reader *r,
			   uint32_t len)
{
	uint8_t kind = reader_byte(r);
	const char *name = reader_string(r);
	const struct client_stmt *stmt;
	struct msg_builder mb;
	char sname[32];
	int ret;

	if (!reader_done(r) || kind != 'S' || !*name || !(stmt = strmap_get(&c->stmts, name)))
		return pass_with(s, ov, len, RT_DESCRIBE);
	if ((ret = ensure_prepared(s, ov, stmt)) != 0)
		return ret;
	stmt_server_name(stmt->hash, sname, sizeof(sname));
	builder_begin(&mb, ov->gen, 'D');
	builder_byte(&mb, 'S');
	builder_string(&mb, sname);
	if (!builder_finish(&mb) || !rt_push(&s->rt, RT_DESCRIBE))
		return UV_ENOMEM;
	outv_skip(ov, len);
	return outv_take_gen(ov);
}

static int handle_close(struct client *c, struct server *s, struct outv *ov, struct msg_reader *r,
			uint32_t len)
{
	uint8_t kind = reader_byte(r);
	const char *name = reader_string(r);

	if (!reader_done(r) || kind != 'S' || !*name)
		return pass_with(s, ov, len, RT_CLOSE);
	/* The statement stays prepared on the server for other clients; the
	 * client only forgets its name.  Closing an unknown name is no error. */
	free(strmap_remove(&c->stmts, name));
	outv_skip(ov, len);
	if (!rt_push(&s->rt, RT_SYNTH_CLOSE))
		return UV_ENOMEM;
	return relay_emit_synth(c, s) ? 0 : 1;
}

int prep_local_message(struct client *c, struct outv *ov, uint8_t type, uint32_t len)
{
	struct msg_reader r;
	const char *name;
	uint8_t kind;

	reader_init(&r, outv_cur(ov) + 5, len - 5);
	switch (type) {
	case 'P':
		name = reader_string(&r);
		if (r.err || !*name)
			return 0;
		if (!u64map_get(&c->pool->valid_stmts, stmt_hash(r.p + r.pos, r.len - r.pos), NULL))
			return 0; /* never seen: let a node check it */
		if (!client_stmt_store(c, name, r.p + r.pos, (uint32_t)(r.len - r.pos)))
			return UV_ENOMEM;
		outv_skip(ov, len);
		return msg_empty(&c->scratch, '1') ? 1 : UV_ENOMEM;
	case 'C':
		kind = reader_byte(&r);
		name = reader_string(&r);
		if (!reader_done(&r) || kind != 'S' || !*name)
			return 0;
		free(strmap_remove(&c->stmts, name));
		outv_skip(ov, len);
		return msg_empty(&c->scratch, '3') ? 1 : UV_ENOMEM;
	case 'S':
		/* Only reached when everything since the last Sync was answered here. */
		outv_skip(ov, len);
		return msg_ready(&c->scratch, 'I') ? 1 : UV_ENOMEM;
	case 'H':
		outv_skip(ov, len);
		return 1;
	default:
		return 0;
	}
}

int prep_client_message(struct client *c, struct server *s, struct outv *ov, uint8_t type, uint32_t len)
{
	struct msg_reader r;

	reader_init(&r, outv_cur(ov) + 5, len - 5);
	switch (type) {
	case 'P':
		return handle_parse(c, s, ov, &r, len);
	case 'B':
		return handle_bind(c, s, ov, &r, len);
	case 'D':
		return handle_describe(c, s, ov, &r, len);
	case 'C':
		return handle_close(c, s, ov, &r, len);
	default:
		return pass_with(s, ov, len, 0);
	}
}
