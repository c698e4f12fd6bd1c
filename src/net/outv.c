/*
 * outv.c - gather-and-send vector (see outv.h).
 */
#include "pgchorus/outv.h"

void outv_init(struct outv *ov, struct iobuf *src, struct bufpool *bp, struct buf *gen,
	       struct pstream *dest)
{
	ov->src = src;
	ov->bp = bp;
	ov->gen = gen;
	ov->dest = dest;
	ov->pos = src->start;
	ov->gen_start = gen ? (uint32_t)gen->len : 0;
	ov->n = 0;
}

static int outv_add(struct outv *ov, uint32_t off, uint32_t len, bool gen)
{
	if (!len || !ov->dest)
		return 0;
	if (ov->n && ov->e[ov->n - 1].gen == gen && ov->e[ov->n - 1].off + ov->e[ov->n - 1].len == off) {
		ov->e[ov->n - 1].len += len; /* contiguous: extend */
		return 0;
	}
	ov->e[ov->n].off = off;
	ov->e[ov->n].len = len;
	ov->e[ov->n].gen = gen;
	ov->n++;
	/* Everything before pos is decided, so a full vector can go out now. */
	return ov->n == OUTV_MAX ? outv_flush(ov) : 0;
}

int outv_pass(struct outv *ov, uint32_t len)
{
	uint32_t off = ov->pos;

	ov->pos += len;
	return outv_add(ov, off, len, false);
}

int outv_take_gen(struct outv *ov)
{
	uint32_t start = ov->gen_start;

	if (!ov->gen || ov->gen->len == start)
		return 0;
	ov->gen_start = (uint32_t)ov->gen->len;
	return outv_add(ov, start, (uint32_t)ov->gen->len - start, true);
}

int outv_flush(struct outv *ov)
{
	uv_buf_t bufs[OUTV_MAX];
	int r = 0;

	if (ov->n && ov->dest) {
		for (int i = 0; i < ov->n; i++) {
			uint8_t *base = ov->e[i].gen ? ov->gen->data : ov->src->data;

			bufs[i] = uv_buf_init((char *)base + ov->e[i].off, ov->e[i].len);
		}
		r = pstream_send(ov->dest, bufs, (unsigned int)ov->n);
	}
	ov->n = 0;
	if (ov->gen) {
		buf_reset(ov->gen);
		ov->gen_start = 0;
	}
	if (ov->src->data && ov->pos > ov->src->start) {
		uint32_t n = ov->pos - ov->src->start;

		iobuf_consume(ov->src, ov->bp, n);
	}
	ov->pos = ov->src->start;
	return r;
}

int outv_retarget(struct outv *ov, struct buf *gen, struct pstream *dest)
{
	int r = outv_flush(ov);

	ov->gen = gen;
	ov->dest = dest;
	ov->gen_start = gen ? (uint32_t)gen->len : 0;
	return r;
}
