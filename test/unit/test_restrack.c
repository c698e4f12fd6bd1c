/*
 * test_restrack.c - the response tracker against realistic response
 * sequences of extended and simple query protocol.
 */
#include "pgchorus/restrack.h"
#include "runner.h"

static enum rt_verdict resp(struct restrack *rt, uint8_t type)
{
	uint8_t e;

	return rt_response(rt, type, &e);
}

TEST(test_restrack_pipeline)
{
	struct restrack rt;

	rt_init(&rt);
	/* Parse/Bind/Describe/Execute/Sync, twice, pipelined. */
	for (int i = 0; i < 2; i++) {
		REQUIRE(rt_push(&rt, RT_PARSE) && rt_push(&rt, RT_BIND) && rt_push(&rt, RT_DESCRIBE));
		REQUIRE(rt_push(&rt, RT_EXECUTE) && rt_push(&rt, RT_SYNC));
	}
	for (int i = 0; i < 2; i++) {
		CHECK(resp(&rt, '1') == RT_FORWARD);
		CHECK(resp(&rt, '2') == RT_FORWARD);
		CHECK(resp(&rt, 'T') == RT_FORWARD);
		CHECK(resp(&rt, 'D') == RT_FORWARD);
		CHECK(resp(&rt, 'C') == RT_FORWARD);
		CHECK(!rt_idle(&rt));
		CHECK(resp(&rt, 'Z') == RT_FORWARD);
	}
	CHECK(rt_idle(&rt));
	CHECK(rt.syncs_queued == 2 && rt.syncs_done == 2);
	rt_free(&rt);
}

TEST(test_restrack_error_skips_to_sync)
{
	struct restrack rt;

	rt_init(&rt);
	REQUIRE(rt_push(&rt, RT_PARSE) && rt_push(&rt, RT_BIND) && rt_push(&rt, RT_EXECUTE));
	REQUIRE(rt_push(&rt, RT_SYNC));
	CHECK(resp(&rt, 'E') == RT_FORWARD); /* Parse failed: Bind, Execute are skipped */
	CHECK(rt.count == 1);
	CHECK(resp(&rt, 'Z') == RT_FORWARD);
	CHECK(rt_idle(&rt));
	/* Error before the client sent Sync: later messages are ignored until Sync. */
	REQUIRE(rt_push(&rt, RT_BIND));
	CHECK(resp(&rt, 'E') == RT_FORWARD);
	CHECK(rt.skipping);
	REQUIRE(rt_push(&rt, RT_EXECUTE));
	CHECK(rt_idle(&rt));
	REQUIRE(rt_push(&rt, RT_SYNC));
	CHECK(!rt.skipping && rt.count == 1);
	CHECK(resp(&rt, 'Z') == RT_FORWARD && rt_idle(&rt));
	rt_free(&rt);
}

TEST(test_restrack_swallow_and_synth)
{
	struct restrack rt;

	rt_init(&rt);
	/* Injected SET (swallowed), then a re-prepare (swallowed), then the client's Bind. */
	REQUIRE(rt_push(&rt, RT_QUERY | RT_SWALLOW));
	REQUIRE(rt_push(&rt, RT_PARSE | RT_SWALLOW | RT_NAMED));
	REQUIRE(rt_push(&rt, RT_SYNTH_PARSE));
	REQUIRE(rt_push(&rt, RT_BIND));
	CHECK(rt_pop_synth(&rt) == 0); /* not at the head yet */
	CHECK(resp(&rt, 'C') == RT_DROP);
	CHECK(resp(&rt, 'S') == RT_DROP);
	CHECK(resp(&rt, 'Z') == RT_DROP);
	CHECK(resp(&rt, '1') == RT_DROP);
	CHECK(rt_pop_synth(&rt) == RT_SYNTH_PARSE);
	CHECK(rt_pop_synth(&rt) == 0);
	CHECK(resp(&rt, '2') == RT_FORWARD);
	CHECK(rt_idle(&rt));
	/* Errors of swallowed entries still reach the client. */
	REQUIRE(rt_push(&rt, RT_PARSE | RT_SWALLOW) && rt_push(&rt, RT_SYNTH_CLOSE) && rt_push(&rt, RT_SYNC));
	CHECK(resp(&rt, 'E') == RT_FORWARD);
	CHECK(rt_pop_synth(&rt) == 0); /* skipped like the server skips */
	CHECK(resp(&rt, 'Z') == RT_FORWARD && rt_idle(&rt));
	/* Notifications are never swallowed. */
	REQUIRE(rt_push(&rt, RT_QUERY | RT_SWALLOW));
	CHECK(resp(&rt, 'A') == RT_FORWARD);
	CHECK(resp(&rt, 'Z') == RT_DROP);
	rt_free(&rt);
}

TEST(test_restrack_copy_in_extended)
{
	struct restrack rt;

	rt_init(&rt);
	/* libpq: Parse/Bind/Execute/Sync, then after CopyInResponse the data,
	 * CopyDone and another Sync.  The first Sync is ignored by the server. */
	REQUIRE(rt_push(&rt, RT_PARSE) && rt_push(&rt, RT_BIND) && rt_push(&rt, RT_EXECUTE));
	REQUIRE(rt_push(&rt, RT_SYNC));
	CHECK(resp(&rt, '1') == RT_FORWARD);
	CHECK(resp(&rt, '2') == RT_FORWARD);
	CHECK(resp(&rt, 'G') == RT_FORWARD);
	CHECK(rt.count == 1); /* the queued Sync will be ignored */
	REQUIRE(rt_push(&rt, RT_SYNC)); /* a Sync during copy-in: ignored too */
	CHECK(rt.count == 1);
	REQUIRE(rt_copy_in_end(&rt));
	REQUIRE(rt_push(&rt, RT_SYNC));
	CHECK(resp(&rt, 'C') == RT_FORWARD);
	CHECK(resp(&rt, 'Z') == RT_FORWARD);
	CHECK(rt_idle(&rt));
	rt_free(&rt);
}

TEST(test_restrack_copy_done_before_copy_in_response)
{
	struct restrack rt;

	rt_init(&rt);
	/* Replication: the client streamed the data and CopyDone after another
	 * node's CopyInResponse; this node answers the COPY only now. */
	REQUIRE(rt_push(&rt, RT_QUERY | RT_SWALLOW));
	REQUIRE(rt_copy_in_end(&rt));
	CHECK(rt.count == 2); /* the mark */
	CHECK(resp(&rt, 'G') == RT_DROP);
	CHECK(!rt.copy_in);
	REQUIRE(rt_push(&rt, RT_SYNC)); /* a later Sync counts */
	CHECK(rt.count == 2);
	CHECK(resp(&rt, 'C') == RT_DROP);
	CHECK(resp(&rt, 'Z') == RT_DROP);
	CHECK(resp(&rt, 'Z') == RT_FORWARD);
	CHECK(rt_idle(&rt));
	/* Extended: Execute, Sync (ignored in COPY), CopyDone, Sync. */
	REQUIRE(rt_push(&rt, RT_BIND) && rt_push(&rt, RT_EXECUTE) && rt_push(&rt, RT_SYNC));
	REQUIRE(rt_copy_in_end(&rt));
	REQUIRE(rt_push(&rt, RT_SYNC));
	CHECK(resp(&rt, '2') == RT_FORWARD);
	CHECK(resp(&rt, 'G') == RT_FORWARD);
	CHECK(!rt.copy_in && rt.count == 2); /* Execute and the Sync after CopyDone */
	CHECK(resp(&rt, 'C') == RT_FORWARD);
	CHECK(resp(&rt, 'Z') == RT_FORWARD);
	CHECK(rt_idle(&rt));
	/* The COPY fails instead: the mark goes with it. */
	REQUIRE(rt_push(&rt, RT_QUERY));
	REQUIRE(rt_copy_in_end(&rt));
	CHECK(resp(&rt, 'E') == RT_FORWARD);
	CHECK(resp(&rt, 'Z') == RT_FORWARD);
	CHECK(rt_idle(&rt));
	/* CopyDone with nothing in flight: no mark. */
	REQUIRE(rt_copy_in_end(&rt));
	CHECK(rt_idle(&rt));
	rt_free(&rt);
}

TEST(test_restrack_simple_query_error)
{
	struct restrack rt;

	rt_init(&rt);
	REQUIRE(rt_push(&rt, RT_QUERY));
	CHECK(resp(&rt, 'T') == RT_FORWARD);
	CHECK(resp(&rt, 'D') == RT_FORWARD);
	CHECK(resp(&rt, 'C') == RT_FORWARD);
	CHECK(resp(&rt, 'E') == RT_FORWARD); /* second statement failed */
	CHECK(rt.count == 1);
	CHECK(resp(&rt, 'Z') == RT_FORWARD);
	CHECK(rt_idle(&rt));
	/* Many entries: the ring grows. */
	for (int i = 0; i < 1000; i++)
		REQUIRE(rt_push(&rt, RT_SYNC));
	for (int i = 0; i < 1000; i++)
		resp(&rt, 'Z');
	CHECK(rt_idle(&rt));
	rt_free(&rt);
}
