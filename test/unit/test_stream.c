/*
 * test_stream.c - unit tests of src/net/stream.c's corking: output held
 * while a stream is corked reaches the peer in one piece when it is
 * uncorked, a corked stream that holds too much writes at once, and a
 * stream closed while corked leaves its cork list.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "pgchorus/stream.h"

struct pair {
	uv_loop_t loop;
	struct pstream ps;
	int peer;
	int errors;
};

static void on_error(struct pstream *s, int status)
{
	(void)status;
	((struct pair *)s->owner)->errors++;
}

static int pair_open(struct pair *p)
{
	int sv[2];

	if (uv_loop_init(&p->loop) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return -1;
	pstream_setup(&p->ps, p, NULL, on_error);
	uv_pipe_init(&p->loop, &p->ps.u.pipe, 0);
	if (uv_pipe_open(&p->ps.u.pipe, sv[0]) != 0)
		return -1;
	pstream_opened(&p->ps, false);
	p->peer = sv[1];
	p->errors = 0;
	return 0;
}

static void pair_close(struct pair *p)
{
	pstream_close(&p->ps, NULL);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	pstream_cleanup(&p->ps);
	uv_loop_close(&p->loop);
	close(p->peer);
}

/* Bytes waiting at the peer (one non-blocking read), or -1 if none. */
static ssize_t peer_read(struct pair *p, char *buf, size_t len)
{
	ssize_t n = recv(p->peer, buf, len, MSG_DONTWAIT);

	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : n;
}

static int send_str(struct pstream *s, const char *str)
{
	uv_buf_t b = uv_buf_init((char *)str, (unsigned int)strlen(str));

	return pstream_send(s, &b, 1);
}

TEST(test_stream_cork_holds_until_uncorked)
{
	struct pair p;
	struct list corks;
	char buf[64];
	ssize_t n;

	REQUIRE(pair_open(&p) == 0);
	list_init(&corks);
	pstream_cork(&p.ps, &corks);
	CHECK(!list_empty(&corks));
	CHECK(send_str(&p.ps, "one,") == 0);
	CHECK(send_str(&p.ps, "two,") == 0);
	CHECK(send_str(&p.ps, "three") == 0);
	CHECK(!pstream_busy(&p.ps));
	CHECK(peer_read(&p, buf, sizeof(buf)) == -1); /* nothing written yet */
	pstream_uncork_all(&corks);
	CHECK(list_empty(&corks));
	CHECK(!p.ps.corked);
	n = peer_read(&p, buf, sizeof(buf));
	CHECK(n == 13 && memcmp(buf, "one,two,three", 13) == 0);
	/* uncorked: a send goes out at once */
	CHECK(send_str(&p.ps, "four") == 0);
	n = peer_read(&p, buf, sizeof(buf));
	CHECK(n == 4 && memcmp(buf, "four", 4) == 0);
	CHECK(p.errors == 0);
	pair_close(&p);
}

TEST(test_stream_cork_limit_and_close)
{
	static char big[70000];
	struct pair p;
	struct list corks;
	uv_buf_t b = uv_buf_init(big, sizeof(big));
	char buf[4096];
	ssize_t n, total = 0;

	REQUIRE(pair_open(&p) == 0);
	list_init(&corks);
	memset(big, 'x', sizeof(big));
	pstream_cork(&p.ps, &corks);
	CHECK(pstream_send(&p.ps, &b, 1) == 0); /* more than a cork holds: written now */
	CHECK(!p.ps.corked && list_empty(&corks));
	while ((n = peer_read(&p, buf, sizeof(buf))) > 0) {
		total += n;
		if (pstream_busy(&p.ps))
			uv_run(&p.loop, UV_RUN_NOWAIT);
	}
	CHECK(total == (ssize_t)sizeof(big));
	REQUIRE(!pstream_busy(&p.ps));
	pstream_cork(&p.ps, &corks);
	CHECK(!list_empty(&corks));
	CHECK(send_str(&p.ps, "held") == 0);
	pair_close(&p); /* closing takes it off the cork list */
	CHECK(list_empty(&corks));
	CHECK(p.errors == 0);
}
