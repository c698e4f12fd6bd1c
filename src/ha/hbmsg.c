/*
 * hbmsg.c - building and parsing heartbeat datagrams (hbmsg.h).  No state:
 * heartbeat.c owns the socket and what the datagrams mean.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "pgchorus/hbmsg.h"

#define HB_MAGIC "PGCHORUS-HB 1"
#define HB_HMAC_HEX 64

/* HMAC-SHA256 of DATA under SECRET, in hex (OUT: HB_HMAC_HEX + 1 bytes). */
static bool sign(const char *secret, const char *data, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, n, mac, &len) ||
	    len != HB_HMAC_HEX / 2)
		return false;
	for (unsigned int i = 0; i < len; i++) {
		out[2 * i] = digits[mac[i] >> 4];
		out[2 * i + 1] = digits[mac[i] & 15];
	}
	out[HB_HMAC_HEX] = '\0';
	return true;
}

/* Append to OUT (CAP bytes, *LEN used); false when it does not fit. */
static bool put(char *out, size_t cap, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool put(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (*len >= cap)
		return false;
	va_start(ap, fmt);
	w = vsnprintf(out + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= cap - *len)
		return false;
	*len += (size_t)w;
	return true;
}

size_t hbmsg_build(const struct hb_msg *m, const char *secret, char *out, size_t cap)
{
	size_t len = 0;
	bool ok;

	ok = put(out, cap, &len, HB_MAGIC "\ninstance %s\nboot %" PRIu64 "\nseq %" PRIu64 "\npause %" PRIu64
		 "\nprimary %d %" PRIu64 "\nnodes %d\n", m->instance, m->boot, m->seq, m->pause, m->preferred,
		 m->preferred_gen, m->n_nodes);
	for (int i = 0; ok && i < m->n_nodes; i++)
		ok = put(out, cap, &len, "node %d %s %" PRIu64 " %d\n", i, node_state_name(m->nodes[i].state),
			 m->nodes[i].gen, m->nodes[i].written ? 1 : 0);
	for (int i = 0; ok && i < m->n_acks; i++)
		ok = put(out, cap, &len, "ack %s %" PRIu64 "\n", m->acks[i].instance, m->acks[i].token);
	if (ok && m->leaving)
		ok = put(out, cap, &len, "leaving\n");
	if (ok && secret && *secret) {
		char mac[HB_HMAC_HEX + 1];

		ok = sign(secret, out, len, mac) && put(out, cap, &len, "hmac %s\n", mac);
	}
	return ok ? len : 0;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* A decimal int in [LO, HI], the whole of S. */
static bool parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

static int state_from_name(const char *s)
{
	for (int st = NODE_UP; st <= NODE_DETACHED; st++)
		if (strcmp(s, node_state_name(st)) == 0)
			return st;
	return -1;
}

/* Split LINE at its spaces into at most MAX words (W has MAX places); their
 * count, MAX + 1 when there are more (W[MAX] is not written). */
static int words(char *line, char **w, int max)
{
	int n = 0;

	for (char *p = line; *p;) {
		if (n == max)
			return max + 1;
		w[n++] = p;
		p = strchr(p, ' ');
		if (!p)
			break;
		*p++ = '\0';
	}
	return n;
}

/* One line (NUL-terminated, no newline) into M; SEEN counts node lines.  false: malformed. */
static bool parse_line(char *line, struct hb_msg *m, int *seen)
{
	char *w[5];
	int n = words(line, w, 5), id, st, written; /* 6: too many */
	uint64_t gen;

	if (n == 0)
		return false;
	if (strcmp(w[0], "instance") == 0) {
		if (n != 2 || !twopc_instance_valid(w[1]))
			return false;
		snprintf(m->instance, sizeof(m->instance), "%s", w[1]);
		return true;
	}
	if (strcmp(w[0], "boot") == 0)
		return n == 2 && parse_u64(w[1], &m->boot);
	if (strcmp(w[0], "seq") == 0)
		return n == 2 && parse_u64(w[1], &m->seq);
	if (strcmp(w[0], "pause") == 0)
		return n == 2 && parse_u64(w[1], &m->pause);
	if (strcmp(w[0], "leaving") == 0)
		return n == 1 && (m->leaving = true);
	if (strcmp(w[0], "nodes") == 0)
		return n == 2 && m->n_nodes < 0 && parse_int(w[1], 0, PGC_MAX_NODES, &m->n_nodes);
	if (strcmp(w[0], "primary") == 0)
		return n == 3 && parse_int(w[1], -1, PGC_MAX_NODES - 1, &m->preferred) &&
		       parse_u64(w[2], &m->preferred_gen);
	if (strcmp(w[0], "node") == 0) {
		if (n != 5 || !parse_int(w[1], 0, m->n_nodes - 1, &id) || id != *seen ||
		    (st = state_from_name(w[2])) < 0 || !parse_u64(w[3], &gen) || !parse_int(w[4], 0, 1, &written))
			return false;
		m->nodes[id].state = st;
		m->nodes[id].gen = gen;
		m->nodes[id].written = written;
		(*seen)++;
		return true;
	}
	if (strcmp(w[0], "ack") == 0) {
		if (n != 3 || !twopc_instance_valid(w[1]) || !parse_u64(w[2], &gen) || m->n_acks >= PGC_MAX_PEERS)
			return false;
		snprintf(m->acks[m->n_acks].instance, sizeof(m->acks[0].instance), "%s", w[1]);
		m->acks[m->n_acks++].token = gen;
		return true;
	}
	return true; /* a later version's line */
}

const char *hbmsg_parse(char *d, size_t n, const char *secret, struct hb_msg *m)
{
	char *line, *next;
	int seen = 0;

	memset(m, 0, sizeof(*m));
	m->n_nodes = -1;
	m->preferred = -1;
	if (n == 0 || d[n - 1] != '\n' || memchr(d, '\0', n))
		return "not a heartbeat";
	d[n - 1] = '\0';
	if (secret && *secret) {
		char *h = strrchr(d, '\n'), mac[HB_HMAC_HEX + 1];

		if (!h || strncmp(h + 1, "hmac ", 5) != 0 || strlen(h + 6) != HB_HMAC_HEX)
			return "no hmac (heartbeat_secret is set here)";
		if (!sign(secret, d, (size_t)(h + 1 - d), mac) || CRYPTO_memcmp(mac, h + 6, HB_HMAC_HEX) != 0)
			return "wrong hmac (heartbeat_secret differs)";
		*h = '\0';
	}
	next = strchr(d, '\n');
	if (strncmp(d, HB_MAGIC "\n", strlen(HB_MAGIC) + 1) != 0 || !next)
		return "not a heartbeat";
	for (line = next + 1; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!*line && !next)
			break; /* the end */
		if (!parse_line(line, m, &seen))
			return "malformed line";
	}
	if (!m->instance[0] || !m->seq)
		return "instance or seq missing";
	if (m->n_nodes >= 0 && seen != m->n_nodes)
		return "node lines missing";
	return NULL;
}

uint64_t hbmsg_ack_for(const struct hb_msg *m, const char *instance)
{
	for (int i = 0; i < m->n_acks; i++)
		if (strcmp(m->acks[i].instance, instance) == 0)
			return m->acks[i].token;
	return 0;
}
