/*
 * buf.h - byte buffers.
 *
 * struct buf: a growable byte array (for building messages and for data
 *   waiting to be written).
 * struct iobuf: a read buffer holding unprocessed bytes [start, end).  Its
 *   memory is a block from a per-worker struct bufpool while data is in
 *   flight and is given back as soon as the buffer is empty, so an idle
 *   connection holds no buffer.  A message larger than a block gets a
 *   private heap buffer while it is being assembled.
 */
#ifndef PGCHORUS_BUF_H
#define PGCHORUS_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
/* Make room for N more bytes; returns false on allocation failure. */
bool buf_reserve(struct buf *b, size_t n) __attribute__((warn_unused_result));
bool buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
static inline void buf_reset(struct buf *b) { b->len = 0; }

#define BUFPOOL_BLOCK 16384

struct bufpool {
	void **free;      /* stack of free blocks */
	size_t n_free;
	size_t max_free;  /* keep at most this many blocks around */
	size_t in_use;    /* blocks handed out, for statistics */
};

void bufpool_init(struct bufpool *bp, size_t max_free);
void bufpool_destroy(struct bufpool *bp);

struct iobuf {
	uint8_t *data;
	uint32_t cap;
	uint32_t start;   /* first unprocessed byte */
	uint32_t end;     /* end of received data */
	bool pooled;      /* data is a bufpool block */
};

static inline uint32_t iobuf_avail(const struct iobuf *ib) { return ib->end - ib->start; }
static inline const uint8_t *iobuf_head(const struct iobuf *ib) { return ib->data + ib->start; }

/* Space to read into: at least some free bytes after end.  NULL on OOM. */
uint8_t *iobuf_space(struct iobuf *ib, struct bufpool *bp, size_t *len);
/* Ensure that NEED unprocessed bytes fit into the buffer (for a message that
 * must be seen whole).  Returns false on allocation failure. */
bool iobuf_ensure(struct iobuf *ib, struct bufpool *bp, size_t need) __attribute__((warn_unused_result));
/* Make room toward a message of NEED bytes, in steps that follow the data
 * actually received (a peer's declared length alone never allocates much). */
bool iobuf_grow_toward(struct iobuf *ib, struct bufpool *bp, size_t need) __attribute__((warn_unused_result));
/* Mark N bytes processed; an emptied buffer goes back to the pool. */
void iobuf_consume(struct iobuf *ib, struct bufpool *bp, uint32_t n);
void iobuf_release(struct iobuf *ib, struct bufpool *bp);

#endif
