/*
 * test_hbmsg.c - unit tests of src/ha/hbmsg.c: the heartbeat datagram built
 * and parsed back, signed and checked, and the datagrams it must refuse.
 */
#include <stdio.h>
#include <string.h>

#include "runner.h"
#include "pgchorus/hbmsg.h"

static void sample(struct hb_msg *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->instance, sizeof(m->instance), "pa");
	m->boot = 1795278570620853u;
	m->seq = 42;
	m->pause = 7;
	m->n_nodes = 3;
	m->nodes[0] = (struct node_view){ NODE_UP, 4, false };
	m->nodes[1] = (struct node_view){ NODE_DETACHED, 9, true };
	m->nodes[2] = (struct node_view){ NODE_RECOVERING, 11, false };
	m->preferred = 1;
	m->preferred_gen = 2;
	m->n_acks = 1;
	snprintf(m->acks[0].instance, sizeof(m->acks[0].instance), "pb");
	m->acks[0].token = 5;
}

/* Parse the text T (copied) with SECRET: NULL or why it was refused. */
static const char *parse_text(const char *t, const char *secret, struct hb_msg *m)
{
	static char buf[HB_MAX_DATAGRAM];
	size_t n = strlen(t);

	memcpy(buf, t, n);
	return hbmsg_parse(buf, n, secret, m);
}

TEST(test_hbmsg_round_trip)
{
	struct hb_msg a, b;
	char out[HB_MAX_DATAGRAM];
	size_t n;

	sample(&a);
	n = hbmsg_build(&a, "", out, sizeof(out));
	REQUIRE(n > 0);
	CHECK(strncmp(out, "PGCHORUS-HB 1\ninstance pa\n", 26) == 0);
	CHECK(hbmsg_parse(out, n, "", &b) == NULL);
	CHECK_STREQ(b.instance, "pa");
	CHECK(b.boot == a.boot && b.seq == 42 && b.pause == 7);
	CHECK(b.n_nodes == 3);
	CHECK(b.nodes[1].state == NODE_DETACHED && b.nodes[1].gen == 9 && b.nodes[1].written);
	CHECK(b.nodes[2].state == NODE_RECOVERING && b.nodes[2].gen == 11 && !b.nodes[2].written);
	CHECK(b.preferred == 1 && b.preferred_gen == 2);
	CHECK(hbmsg_ack_for(&b, "pb") == 5 && hbmsg_ack_for(&b, "pc") == 0);
	CHECK(!b.leaving);
}

TEST(test_hbmsg_signed)
{
	struct hb_msg a, b;
	char out[HB_MAX_DATAGRAM], copy[HB_MAX_DATAGRAM];
	size_t n;

	sample(&a);
	a.leaving = true;
	n = hbmsg_build(&a, "s3cret", out, sizeof(out));
	REQUIRE(n > 0);
	CHECK(strstr(out, "\nhmac ") != NULL);
	memcpy(copy, out, n);
	CHECK(hbmsg_parse(copy, n, "s3cret", &b) == NULL);
	CHECK(b.leaving && b.nodes[1].gen == 9);
	memcpy(copy, out, n);
	CHECK(hbmsg_parse(copy, n, "other", &b) != NULL);     /* another key */
	memcpy(copy, out, n);
	copy[strstr(copy, "detached 9") - copy + 9] = '8';     /* a changed generation */
	CHECK(hbmsg_parse(copy, n, "s3cret", &b) != NULL);
	n = hbmsg_build(&a, "", out, sizeof(out));
	CHECK(hbmsg_parse(out, n, "s3cret", &b) != NULL);      /* unsigned where a key is set */
}

TEST(test_hbmsg_refused)
{
	static const char *const bad[] = {
		"",
		"PGCHORUS-HB 1",                                  /* no newline at the end */
		"PGCHORUS-HB 2\ninstance pa\nseq 1\n",            /* another version */
		"PGCHORUS-HB 1\nseq 1\n",                          /* no instance */
		"PGCHORUS-HB 1\ninstance pa\n",                    /* no seq */
		"PGCHORUS-HB 1\ninstance Pa-X\nseq 1\n",           /* not an instance name */
		"PGCHORUS-HB 1\ninstance pa\nseq -1\n",
		"PGCHORUS-HB 1\ninstance pa\nseq 1 2\n",
		"PGCHORUS-HB 1\ninstance pa\nseq 99999999999999999999999\n",
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nnode 0 up 1 0\n",                  /* node before nodes */
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nnodes 2\nnode 0 up 1 0\n",         /* a node missing */
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nnodes 1\nnode 1 up 1 0\n",         /* id out of range */
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nnodes 1\nnode 0 sleepy 1 0\n",     /* unknown state */
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nnodes 1\nnode 0 up 1 2\n",         /* written not 0/1 */
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nnodes 1\nnode 0 up x 0\n",
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nnodes 2\nnode 1 up 1 0\nnode 0 up 1 0\n", /* out of order */
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nnodes 65\n",
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nnodes 1\nnodes 1\nnode 0 up 1 0\n",
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nprimary 64 1\n",
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nprimary -2 1\n",
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nack pb\n",
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nleaving now\n",
		"PGCHORUS-HB 1\ninstance pa\n\nseq 1\n",          /* a blank line */
		"PGCHORUS-HB 1\ninstance pa\nseq 1\nnodes  1\n",   /* two spaces */
	};
	struct hb_msg m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = parse_text(bad[i], "", &m);

		if (!why)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK(why != NULL);
	}
	/* a NUL byte inside */
	{
		char d[] = "PGCHORUS-HB 1\ninstance pa\nseq 1\n\0nodes 9\n";

		CHECK(hbmsg_parse(d, sizeof(d) - 1, "", &m) != NULL);
	}
	/* a later version's line is skipped */
	CHECK(parse_text("PGCHORUS-HB 1\ninstance pa\nseq 3\nweather sunny\n", "", &m) == NULL);
	CHECK(m.seq == 3 && m.n_nodes == -1 && m.preferred == -1);
}

TEST(test_hbmsg_too_small)
{
	struct hb_msg a;
	char out[64];

	sample(&a);
	CHECK(hbmsg_build(&a, "", out, sizeof(out)) == 0);
	a.n_nodes = PGC_MAX_NODES;
	for (int i = 0; i < PGC_MAX_NODES; i++)
		a.nodes[i] = (struct node_view){ NODE_RECOVERING, UINT64_MAX, true };
	{
		static char big[HB_MAX_DATAGRAM];
		struct hb_msg b;
		size_t n = hbmsg_build(&a, "k", big, sizeof(big));

		REQUIRE(n > 0);
		CHECK(hbmsg_parse(big, n, "k", &b) == NULL);
		CHECK(b.n_nodes == PGC_MAX_NODES && b.nodes[63].gen == UINT64_MAX);
	}
}
