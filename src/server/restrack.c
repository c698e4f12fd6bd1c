/*
 * restrack.c - response tracking (see restrack.h).
 */
#include <stdlib.h>
#include <string.h>

#include "pgchorus/restrack.h"

void rt_init(struct restrack *rt)
{
	memset(rt, 0, sizeof(*rt));
}

void rt_free(struct restrack *rt)
{
	free(rt->ring);
	rt_init(rt);
}

void rt_reset(struct restrack *rt)
{
	rt->head = 0;
	rt->count = 0;
	rt->skipping = false;
	rt->copy_in = false;
}

static inline uint8_t rt_at(const struct restrack *rt, uint32_t i)
{
	return rt->ring[(rt->head + i) & (rt->cap - 1)];
}

static void rt_pop(struct restrack *rt)
{
	rt->head = (rt->head + 1) & (rt->cap - 1);
	rt->count--;
}

bool rt_push(struct restrack *rt, uint8_t entry)
{
	if (rt->copy_in && RT_KIND(entry) == RT_SYNC)
		return true;
	if (rt->skipping) {
		/* The server discards everything up to Sync: no answer will come. */
		if (RT_KIND(entry) != RT_SYNC)
			return true;
		rt->skipping = false;
	}
	if (rt->count == rt->cap) {
		uint32_t cap = rt->cap ? rt->cap * 2 : 16;
		uint8_t *ring = malloc(cap);

		if (!ring)
			return false;
		for (uint32_t i = 0; i < rt->count; i++)
			ring[i] = rt_at(rt, i);
		free(rt->ring);
		rt->ring = ring;
		rt->cap = cap;
		rt->head = 0;
	}
	rt->ring[(rt->head + rt->count) & (rt->cap - 1)] = entry;
	rt->count++;
	if (RT_KIND(entry) == RT_SYNC || RT_KIND(entry) == RT_QUERY || RT_KIND(entry) == RT_FUNCTION)
		rt->syncs_queued++;
	return true;
}

/* Does a message of TYPE complete an entry of KIND? */
static bool rt_completes(uint8_t kind, uint8_t type)
{
	switch (kind) {
	case RT_PARSE:
		return type == '1';
	case RT_BIND:
		return type == '2';
	case RT_CLOSE:
		return type == '3';
	case RT_DESCRIBE:
		return type == 'T' || type == 'n';
	case RT_EXECUTE:
		return type == 'C' || type == 'I' || type == 's';
	case RT_SYNC:
	case RT_QUERY:
	case RT_FUNCTION:
		return type == 'Z';
	default:
		return false;
	}
}

/* After an error: the server skips to the next Sync. */
static void rt_skip_to_sync(struct restrack *rt)
{
	while (rt->count && RT_KIND(rt_at(rt, 0)) != RT_SYNC)
		rt_pop(rt);
	if (!rt->count)
		rt->skipping = true;
}

bool rt_copy_in_end(struct restrack *rt)
{
	if (rt->copy_in) {
		rt->copy_in = false;
		return true;
	}
	if (!rt->count)
		return true; /* nothing in flight: CopyDone outside COPY, ignored */
	return rt_push(rt, RT_COPY_MARK);
}

/* A mark at the head belongs to a COPY that ended without CopyInResponse. */
static void rt_drop_marks(struct restrack *rt)
{
	while (rt->count && RT_KIND(rt_at(rt, 0)) == RT_COPY_MARK)
		rt_pop(rt);
}

/*
 * CopyInResponse: Syncs sent behind the COPY before CopyDone will be
 * ignored by the server.  If CopyDone was already sent (a mark), the COPY
 * is over as far as sending goes: the mark goes, copy-in mode never starts.
 */
static void rt_start_copy_in(struct restrack *rt)
{
	uint32_t keep = 1, i;
	bool marked = false;

	for (i = 1; i < rt->count; i++) {
		uint8_t e = rt_at(rt, i);

		if (RT_KIND(e) == RT_COPY_MARK) {
			marked = true;
			i++;
			break;
		}
		if (RT_KIND(e) != RT_SYNC)
			rt->ring[(rt->head + keep++) & (rt->cap - 1)] = e;
	}
	for (; i < rt->count; i++)
		rt->ring[(rt->head + keep++) & (rt->cap - 1)] = rt_at(rt, i);
	rt->count = keep;
	rt->copy_in = !marked;
}

enum rt_verdict rt_response(struct restrack *rt, uint8_t type, uint8_t *entry)
{
	uint8_t e, kind;

	*entry = 0;
	if (type == 'A')
		return RT_FORWARD; /* notifications always belong to the client */
	if (type == 'E')
		rt->copy_in = false;
	if (type == 'Z')
		rt->syncs_done++;
	if (!rt->count) {
		/* Nothing outstanding: asynchronous messages (notices, notifications,
		 * parameter changes) and anything unsolicited go to the client. */
		return RT_FORWARD;
	}
	e = rt_at(rt, 0);
	*entry = e;
	kind = RT_KIND(e);
	if (type == 'E') {
		if (kind != RT_SYNC && kind != RT_QUERY && kind != RT_FUNCTION) {
			rt_pop(rt);
			rt_skip_to_sync(rt);
		}
		return RT_FORWARD;
	}
	if (type == 'G')
		rt_start_copy_in(rt);
	if (rt_completes(kind, type)) {
		rt_pop(rt);
		rt_drop_marks(rt);
	}
	return (e & RT_SWALLOW) ? RT_DROP : RT_FORWARD;
}

uint8_t rt_pop_synth(struct restrack *rt)
{
	uint8_t kind;

	if (!rt->count)
		return 0;
	kind = RT_KIND(rt_at(rt, 0));
	if (kind != RT_SYNTH_PARSE && kind != RT_SYNTH_CLOSE)
		return 0;
	rt_pop(rt);
	rt_drop_marks(rt);
	return kind;
}
