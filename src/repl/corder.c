/*
 * corder.c - commit tickets shared by all workers (include/pgchorus/corder.h).
 *
 * Owns: the set of tickets in flight (a small sorted array under a mutex;
 * its size is bounded by the sessions committing at the same moment).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "pgchorus/corder.h"
#include "pgchorus/worker.h"

static uv_once_t once = UV_ONCE_INIT;
static uv_mutex_t lock;
static uint64_t issued;
static uint64_t *inflight;   /* ascending */
static size_t n_inflight, cap_inflight;
static atomic_int waiters;

static void corder_init(void)
{
	if (uv_mutex_init(&lock) != 0)
		abort();
}

uint64_t corder_begin(void)
{
	uint64_t t = 0;

	uv_once(&once, corder_init);
	uv_mutex_lock(&lock);
	if (n_inflight == cap_inflight) {
		size_t cap = cap_inflight ? 2 * cap_inflight : 64;
		uint64_t *p = realloc(inflight, cap * sizeof(*p));

		if (!p)
			goto out;
		inflight = p;
		cap_inflight = cap;
	}
	t = ++issued;
	inflight[n_inflight++] = t; /* tickets grow: the array stays sorted */
out:
	uv_mutex_unlock(&lock);
	return t;
}

void corder_end(uint64_t ticket)
{
	if (!ticket)
		return;
	uv_once(&once, corder_init);
	uv_mutex_lock(&lock);
	for (size_t i = 0; i < n_inflight; i++) {
		if (inflight[i] == ticket) {
			memmove(&inflight[i], &inflight[i + 1], (n_inflight - i - 1) * sizeof(*inflight));
			n_inflight--;
			break;
		}
	}
	uv_mutex_unlock(&lock);
	if (atomic_load(&waiters) > 0)
		for (int i = 0; i < pgc_runtime.n_workers; i++)
			uv_async_send(&pgc_runtime.workers[i].async);
}

uint64_t corder_issued(void)
{
	uint64_t t;

	uv_once(&once, corder_init);
	uv_mutex_lock(&lock);
	t = issued;
	uv_mutex_unlock(&lock);
	return t;
}

bool corder_done_through(uint64_t need)
{
	bool done;

	uv_once(&once, corder_init);
	uv_mutex_lock(&lock);
	done = n_inflight == 0 || inflight[0] > need;
	uv_mutex_unlock(&lock);
	return done;
}

void corder_wait_add(int delta)
{
	atomic_fetch_add(&waiters, delta);
}
