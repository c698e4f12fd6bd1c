/*
 * bufpool.c - growable buffers and pooled read buffers (see buf.h).
 *
 * Read blocks are mapped pages of their own, not malloc's: a burst of
 * reading clients must not leave holes in the heap between the structs of
 * the clients that stay (idle clients would then cost their share of the
 * holes in RSS).  Up to max_free blocks are kept for reuse, so that a
 * worker in its steady state maps nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pgchorus/buf.h"

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

bool buf_reserve(struct buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->len + n <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return false;
	b->data = p;
	b->cap = cap;
	return true;
}

bool buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return true;
	if (!buf_reserve(b, n))
		return false;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

void bufpool_init(struct bufpool *bp, size_t max_free)
{
	bp->free = calloc(max_free ? max_free : 1, sizeof(void *));
	bp->n_free = 0;
	bp->max_free = bp->free ? max_free : 0;
	bp->in_use = 0;
}

void bufpool_destroy(struct bufpool *bp)
{
	while (bp->n_free)
		munmap(bp->free[--bp->n_free], BUFPOOL_BLOCK);
	free(bp->free);
	bp->free = NULL;
	bp->max_free = 0;
}

static void *bufpool_get(struct bufpool *bp)
{
	void *p;

	if (bp->n_free) {
		p = bp->free[--bp->n_free];
	} else {
		p = mmap(NULL, BUFPOOL_BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
	}
	bp->in_use++;
	return p;
}

static void bufpool_put(struct bufpool *bp, void *p)
{
	bp->in_use--;
	if (bp->n_free < bp->max_free)
		bp->free[bp->n_free++] = p;
	else
		munmap(p, BUFPOOL_BLOCK);
}

void iobuf_release(struct iobuf *ib, struct bufpool *bp)
{
	if (ib->data) {
		if (ib->pooled)
			bufpool_put(bp, ib->data);
		else
			free(ib->data);
	}
	memset(ib, 0, sizeof(*ib));
}

uint8_t *iobuf_space(struct iobuf *ib, struct bufpool *bp, size_t *len)
{
	if (!ib->data) {
		ib->data = bufpool_get(bp);
		if (!ib->data)
			return NULL;
		ib->pooled = true;
		ib->cap = BUFPOOL_BLOCK;
		ib->start = ib->end = 0;
	}
	if (ib->end == ib->cap && ib->start > 0) {
		memmove(ib->data, ib->data + ib->start, ib->end - ib->start);
		ib->end -= ib->start;
		ib->start = 0;
	}
	if (ib->end == ib->cap)
		return NULL; /* full: the caller must process or grow first */
	*len = ib->cap - ib->end;
	return ib->data + ib->end;
}

bool iobuf_ensure(struct iobuf *ib, struct bufpool *bp, size_t need)
{
	uint32_t avail = iobuf_avail(ib);
	uint8_t *p;

	if (ib->data && ib->cap - ib->start >= need)
		return true;
	if (ib->data && ib->cap >= need) {
		memmove(ib->data, ib->data + ib->start, avail);
		ib->start = 0;
		ib->end = avail;
		return true;
	}
	/* Grow into a private heap buffer; keep 25% headroom for what follows. */
	p = malloc(need + need / 4);
	if (!p)
		return false;
	if (avail)
		memcpy(p, ib->data + ib->start, avail);
	if (ib->data) {
		if (ib->pooled)
			bufpool_put(bp, ib->data);
		else
			free(ib->data);
	}
	ib->data = p;
	ib->pooled = false;
	ib->cap = (uint32_t)(need + need / 4);
	ib->start = 0;
	ib->end = avail;
	return true;
}

void iobuf_consume(struct iobuf *ib, struct bufpool *bp, uint32_t n)
{
	ib->start += n;
	if (ib->start == ib->end)
		iobuf_release(ib, bp);
}

bool iobuf_grow_toward(struct iobuf *ib, struct bufpool *bp, size_t need)
{
	size_t step = (size_t)iobuf_avail(ib) * 2 + BUFPOOL_BLOCK;

	return iobuf_ensure(ib, bp, need < step ? need : step);
}
