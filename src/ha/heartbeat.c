/*
 * heartbeat.c - heartbeats between pgchorus instances (ha.h,
 * doc/heartbeat.md).
 *
 * Every heartbeat_interval, and at once after any node state change here,
 * each instance sends every peer one UDP datagram: its name and boot, a
 * sequence number, each node's state with its generation (nodestate.c) and
 * whether it missed a write, the PROMOTE choice, the pause of writes it asks
 * of its peers, and its answers to theirs.  A receiver takes every node
 * state whose generation is higher than its own (node_adopt), so that a node
 * detached by one instance is detached by all.
 *
 * A peer not heard for heartbeat_deadtime is dead: escalation_command runs
 * (e.g. to take over its virtual IP), the resolver finishes its in-doubt
 * transactions, and a pause it asked of us ends.  When it is heard again,
 * de_escalation_command runs.  An instance that stops sends "leaving" so
 * that its peers act at once.
 *
 * The pause: recovery, attach, graceful detach, promote and compare (all in
 * the HA thread or the compare thread) pause writes here first, then ask the
 * live peers with a token; a peer pauses its own writes, waits until none is
 * open, and answers the token.  Until the token is withdrawn (the heartbeat
 * that withdraws it carries the new node states) or the asker dies, the
 * peer's writes wait.
 *
 * The datagram's format and its checks are in hbmsg.c.
 *
 * Threads: the socket, the timers and the peer table live on the main loop.
 * H.lock guards what the HA thread reads (status, names, acknowledgements,
 * written flags) and the token it sets.
 */
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgchorus/ha.h"
#include "pgchorus/hbmsg.h"
#include "pgchorus/log.h"
#include "pgchorus/resolver.h"
#include "pgchorus/twopc.h"
#include "basebackup.h"

/* how often a pause asked of us checks for open write transactions */
#define HB_DRAIN_POLL_MS 2

enum peer_status { PEER_UNKNOWN, PEER_ALIVE, PEER_DEAD };

static const char *const status_names[] = {
	[PEER_UNKNOWN] = "unknown",
	[PEER_ALIVE] = "alive",
	[PEER_DEAD] = "dead",
};

struct peer {
	char *host, *vip;          /* copies of the settings */
	int port;
	struct sockaddr_storage addr;
	bool resolved;

	/* main thread only */
	uint64_t last_seq;
	bool warned_send, warned_nodes;
	double bad_logged;         /* ha_mono_now() of the last "ignored" warning */

	/* written by the main thread under H.lock (others read them) */
	double last_heard;         /* ha_mono_now(); 0 never */
	bool escalated;            /* escalation_command ran, de_escalation not yet */
	uint64_t held;             /* its token we hold a pause of writes for (0 none) */
	enum peer_status status;
	char name[TWOPC_INSTANCE_MAX + 1];
	uint64_t boot;
	uint64_t acked;            /* its token, answered: no write transaction open here */
	uint64_t ack_of_mine;      /* our token, as it answered it */
	bool written[PGC_MAX_NODES];
};

static struct {
	atomic_bool running;        /* hb_changed() reads it from any thread */
	uint64_t boot;              /* the resolver's (the gids'), else the start time in µs */
	uv_loop_t *loop;
	uv_udp_t udp;
	uv_timer_t tick, drain;
	uv_async_t kick;
	struct config *cfg;
	char instance[TWOPC_INSTANCE_MAX + 1];
	uint64_t seq;
	double started;
	bool ready;
	int n;
	struct peer peers[PGC_MAX_PEERS];
	char rbuf[HB_MAX_DATAGRAM];
	double unknown_logged;     /* last "datagram from an unknown address" */
	const struct peer *recovering_by[PGC_MAX_NODES]; /* the peer that said the node is recovering */

	uv_mutex_t lock;
	uint64_t my_token;         /* the pause we ask of the peers (0 none) */
	int pause_users;           /* hb_pause_peers() callers holding it */
	uint64_t token_counter;
} H;

/* ---- datagrams (hbmsg.c) --------------------------------------------------- */

/* This instance's datagram into OUT; its length, 0 if it did not fit. */
static size_t build(char *out, size_t cap, bool leaving)
{
	static struct hb_msg m; /* main thread only; 8 KB */

	memset(&m, 0, sizeof(m));
	snprintf(m.instance, sizeof(m.instance), "%s", H.instance);
	m.boot = H.boot;
	m.seq = ++H.seq;
	m.leaving = leaving;
	m.n_nodes = nodes_view(m.nodes, PGC_MAX_NODES, &m.preferred, &m.preferred_gen);
	uv_mutex_lock(&H.lock);
	m.pause = H.my_token;
	for (int i = 0; i < H.n; i++) {
		if (H.peers[i].acked && H.peers[i].name[0]) {
			snprintf(m.acks[m.n_acks].instance, sizeof(m.acks[0].instance), "%s", H.peers[i].name);
			m.acks[m.n_acks++].token = H.peers[i].acked;
		}
	}
	uv_mutex_unlock(&H.lock);
	return hbmsg_build(&m, H.cfg->heartbeat_secret, out, cap);
}

/* ---- peers ------------------------------------------------------------------- */

static void send_all(bool leaving)
{
	static char out[HB_MAX_DATAGRAM];
	size_t len = build(out, sizeof(out), leaving);
	uv_buf_t b = uv_buf_init(out, (unsigned)len);

	if (!len) {
		log_error("heartbeat: the datagram does not fit in %d bytes", HB_MAX_DATAGRAM);
		return;
	}
	for (int i = 0; i < H.n; i++) {
		int r;

		if (!H.peers[i].resolved)
			continue;
		r = uv_udp_try_send(&H.udp, &b, 1, (const struct sockaddr *)&H.peers[i].addr);
		if (r < 0 && r != UV_EAGAIN && !H.peers[i].warned_send) {
			log_warning("heartbeat: cannot send to peer %s:%d: %s", H.peers[i].host, H.peers[i].port,
				    uv_strerror(r));
			H.peers[i].warned_send = true;
		} else if (r >= 0) {
			H.peers[i].warned_send = false;
		}
	}
}

static void run_escalation(struct peer *p, bool up)
{
	const char *tmpl = up ? H.cfg->escalation_command : H.cfg->de_escalation_command;
	const char *what = up ? "escalation_command" : "de_escalation_command";
	struct hook_args a;

	uv_mutex_lock(&H.lock);
	p->escalated = up;
	uv_mutex_unlock(&H.lock);
	if (!*tmpl)
		return;
	hook_args_for(H.cfg, -1, &a);
	a.host = p->host;
	a.port = p->port;
	a.peer_name = p->name;
	a.peer_vip = p->vip;
	if (atomic_load(&H.running))
		hook_run_async(what, tmpl, &a, H.cfg->hook_timeout);
	else
		hook_run_wait(what, tmpl, &a, H.cfg->hook_timeout);
}

/* Stop holding the pause of writes P asked for (RESUME: lift it; false once the workers ended). */
static void release(struct peer *p, bool resume)
{
	if (!p->held)
		return;
	uv_mutex_lock(&H.lock);
	p->held = 0;
	p->acked = 0;
	uv_mutex_unlock(&H.lock);
	if (resume)
		repl_resume_writes();
	log_info("heartbeat: peer %s: pause of writes ended", p->name);
}

/* A node a dead peer was recovering would stay "recovering" here for good:
 * it is down again (RECOVER NODE here starts over). */
static void abandon_recoveries(const struct peer *p)
{
	char why[96];

	snprintf(why, sizeof(why), "recovery abandoned: peer %s died", p->name[0] ? p->name : "?");
	for (int i = 0; i < nodes_count() && i < PGC_MAX_NODES; i++) {
		if (H.recovering_by[i] != p)
			continue;
		H.recovering_by[i] = NULL;
		if (atomic_load(&node_get(i)->state) == NODE_RECOVERING)
			node_set_state(i, NODE_DOWN, why);
	}
}

static void declare_dead(struct peer *p, const char *why)
{
	uint64_t boot;

	uv_mutex_lock(&H.lock);
	p->status = PEER_DEAD;
	p->ack_of_mine = 0;
	boot = p->boot;
	uv_mutex_unlock(&H.lock);
	log_warning("heartbeat: peer %s (%s:%d) is dead: %s", p->name[0] ? p->name : "?", p->host, p->port, why);
	release(p, true);
	abandon_recoveries(p);
	if (p->name[0])
		resolver_peer_dead(p->name, boot);
	if (!p->escalated)
		run_escalation(p, true);
}

static void drain_check(uv_timer_t *t)
{
	bool waiting = false, answered = false;

	(void)t;
	if (repl_open_writers() > 0)
		return;
	uv_mutex_lock(&H.lock);
	for (int i = 0; i < H.n; i++) {
		struct peer *p = &H.peers[i];

		if (p->held && p->acked != p->held) {
			p->acked = p->held;
			answered = true;
		}
		waiting |= p->held && p->acked != p->held;
	}
	uv_mutex_unlock(&H.lock);
	if (!waiting)
		uv_timer_stop(&H.drain);
	if (answered)
		send_all(false);
}

/* P asks (TOKEN != 0) or no longer asks (0) that our writes pause. */
static void pause_asked(struct peer *p, uint64_t token)
{
	if (token == p->held)
		return;
	release(p, true);
	if (!token)
		return;
	repl_pause_writes();
	uv_mutex_lock(&H.lock);
	p->held = token;
	uv_mutex_unlock(&H.lock);
	log_info("heartbeat: peer %s: writes paused at its request", p->name);
	uv_timer_start(&H.drain, drain_check, 0, HB_DRAIN_POLL_MS);
}

static void apply(struct peer *p, const struct hb_msg *m)
{
	bool was_alive = p->status == PEER_ALIVE;
	char name[TWOPC_INSTANCE_MAX + 1];

	snprintf(name, sizeof(name), "%s", m->instance);
	uv_mutex_lock(&H.lock);
	if (strcmp(p->name, name) != 0 && p->name[0])
		log_warning("heartbeat: peer %s:%d now calls itself %s (was %s)", p->host, p->port, name, p->name);
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->boot = m->boot;
	p->status = PEER_ALIVE;
	p->ack_of_mine = hbmsg_ack_for(m, H.instance);
	for (int i = 0; i < m->n_nodes && i < PGC_MAX_NODES; i++)
		p->written[i] = m->nodes[i].written;
	p->last_heard = ha_mono_now();
	uv_mutex_unlock(&H.lock);
	p->last_seq = m->seq;
	if (!was_alive) {
		log_info("heartbeat: peer %s (%s:%d) is alive, boot %" PRIu64, name, p->host, p->port, m->boot);
		resolver_peer_alive(name);
		if (p->escalated)
			run_escalation(p, false);
	}

	/* node states first: a withdrawn pause comes with the states it was for */
	if (m->n_nodes == nodes_count()) {
		for (int i = 0; i < m->n_nodes; i++) {
			node_adopt(i, (enum node_state)m->nodes[i].state, m->nodes[i].gen, name);
			if (m->nodes[i].state == NODE_RECOVERING)
				H.recovering_by[i] = p; /* who to blame if it stays so */
			else if (H.recovering_by[i] == p)
				H.recovering_by[i] = NULL;
		}
		node_adopt_preferred(m->preferred, m->preferred_gen, name);
	} else if (!p->warned_nodes) {
		log_error("heartbeat: peer %s has %d nodes configured, this instance %d: node states not shared",
			  name, m->n_nodes, nodes_count());
		p->warned_nodes = true;
	}
	pause_asked(p, m->pause);
	if (m->leaving)
		declare_dead(p, "it is stopping");
}

static struct peer *peer_by_addr(const struct sockaddr *sa)
{
	for (int i = 0; i < H.n; i++) {
		const struct sockaddr *pa = (const struct sockaddr *)&H.peers[i].addr;

		if (!H.peers[i].resolved || pa->sa_family != sa->sa_family)
			continue;
		if (sa->sa_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)sa, *b = (const void *)pa;

			if (a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr)
				return &H.peers[i];
		} else if (sa->sa_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const void *)sa, *b = (const void *)pa;

			if (a->sin6_port == b->sin6_port && memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0)
				return &H.peers[i];
		}
	}
	return NULL;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	(void)suggested;
	*b = uv_buf_init(H.rbuf, sizeof(H.rbuf));
}

static void on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *b, const struct sockaddr *from, unsigned flags)
{
	static struct hb_msg m; /* main thread only */
	struct peer *p;
	const char *bad;

	(void)u;
	if (nread <= 0 || !from || (flags & UV_UDP_PARTIAL))
		return;
	p = peer_by_addr(from);
	if (!p) {
		if (ha_mono_now() - H.unknown_logged > 60) {
			char ip[64] = "?";

			uv_ip_name(from, ip, sizeof(ip));
			log_warning("heartbeat: datagram from %s, which is not in peers: ignored", ip);
			H.unknown_logged = ha_mono_now();
		}
		return;
	}
	bad = hbmsg_parse(b->base, (size_t)nread, H.cfg->heartbeat_secret, &m);
	if (!bad && strcmp(m.instance, H.instance) == 0)
		bad = "it has this instance's instance_name";
	if (bad) {
		/* at most one line a minute per peer */
		if (p->bad_logged == 0 || ha_mono_now() - p->bad_logged > 60) {
			log_warning("heartbeat: from peer %s:%d: %s: ignored", p->host, p->port, bad);
			p->bad_logged = ha_mono_now();
		}
		return;
	}
	/* old or replayed datagrams are dropped; a restarted peer has a later boot */
	if (p->status != PEER_DEAD && (m.boot < p->boot || (m.boot == p->boot && m.seq <= p->last_seq)))
		return;
	apply(p, &m);
}

static void on_tick(uv_timer_t *t)
{
	double now = ha_mono_now();

	(void)t;
	for (int i = 0; i < H.n; i++) {
		struct peer *p = &H.peers[i];

		if (p->status == PEER_ALIVE && now - p->last_heard > H.cfg->heartbeat_deadtime)
			declare_dead(p, "not heard within heartbeat_deadtime");
		else if (p->status == PEER_UNKNOWN && now - H.started > H.cfg->heartbeat_deadtime)
			declare_dead(p, "never heard since start-up");
	}
	if (!H.ready && hb_ready())
		log_info("heartbeat: node states agreed with the peers");
	send_all(false);
}

static void on_kick(uv_async_t *a)
{
	(void)a;
	send_all(false);
}

/* ---- the interface --------------------------------------------------------------- */

static bool resolve_peer(struct peer *p, int family)
{
	struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_DGRAM }, *res = NULL;
	char port[16];
	int r;

	snprintf(port, sizeof(port), "%d", p->port);
	r = getaddrinfo(p->host, port, &hints, &res);
	if (r != 0 || !res) {
		log_error("heartbeat: peer %s: %s", p->host, gai_strerror(r));
		return false;
	}
	memcpy(&p->addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return (p->resolved = true);
}

int hb_start(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen)
{
	const char *addr = *cfg->heartbeat_address ? cfg->heartbeat_address : "0.0.0.0";
	bool v6 = strchr(addr, ':') != NULL;
	struct sockaddr_storage ss;
	int r;

	H.ready = true;
	if (!cfg->heartbeat_port)
		return 0;
	r = v6 ? uv_ip6_addr(addr, cfg->heartbeat_port, (struct sockaddr_in6 *)&ss)
	       : uv_ip4_addr(addr, cfg->heartbeat_port, (struct sockaddr_in *)&ss);
	if (r < 0) {
		snprintf(err, errlen, "heartbeat_address \"%s\": not an IP address", addr);
		return -1;
	}
	if (uv_mutex_init(&H.lock) != 0) {
		snprintf(err, errlen, "heartbeat: cannot create a mutex");
		return -1;
	}
	H.loop = loop;
	H.cfg = config_ref((struct config *)cfg);
	snprintf(H.instance, sizeof(H.instance), "%s", cfg->instance_name);
	uv_udp_init(loop, &H.udp);
	r = uv_udp_bind(&H.udp, (const struct sockaddr *)&ss, 0);
	if (r < 0) {
		snprintf(err, errlen, "heartbeat: cannot bind %s port %d (UDP): %s", addr, cfg->heartbeat_port,
			 uv_strerror(r));
		uv_close((uv_handle_t *)&H.udp, NULL);
		return -1;
	}
	H.n = cfg->n_peers;
	for (int i = 0; i < H.n; i++) {
		struct peer *p = &H.peers[i];

		p->host = strdup(cfg->peers[i].host);
		p->vip = strdup(cfg->peers[i].virtual_ip);
		p->port = cfg->peers[i].port;
		if (!p->host || !p->vip) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		resolve_peer(p, v6 ? AF_INET6 : AF_INET); /* logged; such a peer is never heard */
	}
	uv_udp_recv_start(&H.udp, on_alloc, on_recv);
	uv_timer_init(loop, &H.tick);
	uv_timer_init(loop, &H.drain);
	uv_async_init(loop, &H.kick, on_kick);
	H.started = ha_mono_now();
	H.boot = resolver_boot();
	if (!H.boot) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		H.boot = (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
	}
	H.ready = H.n == 0;
	atomic_store(&H.running, true);
	uv_timer_start(&H.tick, on_tick, 0, (uint64_t)(cfg->heartbeat_interval * 1000));
	log_info("heartbeat: instance %s on %s port %d (UDP), %d peer(s), every %g s, dead after %g s%s",
		 H.instance, addr, cfg->heartbeat_port, H.n, cfg->heartbeat_interval, cfg->heartbeat_deadtime,
		 *cfg->heartbeat_secret ? ", authenticated" : "");
	return 0;
}

void hb_reload(const struct config *cfg)
{
	if (!atomic_load(&H.running))
		return;
	config_unref(H.cfg);
	H.cfg = config_ref((struct config *)cfg);
	uv_timer_set_repeat(&H.tick, (uint64_t)(cfg->heartbeat_interval * 1000));
}

bool hb_ready(void)
{
	if (!atomic_load(&H.running) || H.ready)
		return true;
	for (int i = 0; i < H.n; i++)
		if (H.peers[i].status == PEER_UNKNOWN && ha_mono_now() - H.started <= H.cfg->heartbeat_deadtime)
			return false;
	return (H.ready = true);
}

void hb_changed(void)
{
	if (atomic_load(&H.running))
		uv_async_send(&H.kick);
}

void hb_stop(void)
{
	if (!atomic_load(&H.running))
		return;
	send_all(true);
	atomic_store(&H.running, false);
	for (int i = 0; i < H.n; i++) {
		release(&H.peers[i], false); /* the workers have ended */
		if (H.peers[i].escalated)
			run_escalation(&H.peers[i], false);
	}
	uv_timer_stop(&H.tick);
	uv_timer_stop(&H.drain);
	uv_close((uv_handle_t *)&H.tick, NULL);
	uv_close((uv_handle_t *)&H.drain, NULL);
	uv_close((uv_handle_t *)&H.kick, NULL);
	uv_close((uv_handle_t *)&H.udp, NULL);
	for (int i = 0; i < H.n; i++) {
		free(H.peers[i].host);
		free(H.peers[i].vip);
	}
	config_unref(H.cfg);
	H.cfg = NULL;
}

int hb_pause_peers(bool *held, double deadline, char *err, size_t errlen)
{
	char missing[256];

	if (!atomic_load(&H.running) || H.n == 0 || *held)
		return 0;
	/* pauses nest (a recovery and a COMPARE): each new one asks with a new token */
	uv_mutex_lock(&H.lock);
	H.pause_users++;
	H.my_token = ++H.token_counter;
	uv_mutex_unlock(&H.lock);
	*held = true;
	hb_changed();
	for (;;) {
		size_t len = 0;

		missing[0] = '\0';
		uv_mutex_lock(&H.lock);
		for (int i = 0; i < H.n; i++) {
			const struct peer *p = &H.peers[i];

			if (p->status == PEER_ALIVE && p->ack_of_mine != H.my_token && len < sizeof(missing))
				len += (size_t)snprintf(missing + len, sizeof(missing) - len, "%s%s", len ? ", " : "",
							p->name);
		}
		uv_mutex_unlock(&H.lock);
		if (!missing[0])
			return 0;
		if (ha_mono_now() > deadline) {
			snprintf(err, errlen, "peer instance(s) %s did not pause their writes in time", missing);
			return -1;
		}
		usleep(1000);
	}
}

void hb_resume_peers(bool *held)
{
	if (!*held)
		return;
	*held = false;
	uv_mutex_lock(&H.lock);
	if (H.pause_users > 0 && --H.pause_users == 0)
		H.my_token = 0;
	uv_mutex_unlock(&H.lock);
	hb_changed();
}

bool hb_peers_wrote(int id)
{
	bool wrote = false;

	if (!atomic_load(&H.running) || id < 0 || id >= PGC_MAX_NODES)
		return false;
	uv_mutex_lock(&H.lock);
	for (int i = 0; i < H.n; i++)
		wrote |= H.peers[i].status == PEER_ALIVE && H.peers[i].written[id];
	uv_mutex_unlock(&H.lock);
	return wrote;
}

int hb_peers_info(struct hb_peer_info *out, int max)
{
	int n = 0;

	if (!atomic_load(&H.running))
		return 0;
	uv_mutex_lock(&H.lock);
	for (int i = 0; i < H.n && n < max; i++, n++) {
		const struct peer *p = &H.peers[i];

		snprintf(out[n].name, sizeof(out[n].name), "%s", p->name);
		snprintf(out[n].host, sizeof(out[n].host), "%s", p->host);
		out[n].port = p->port;
		out[n].status = status_names[p->status];
		out[n].boot = p->boot;
		out[n].heard_ago = p->last_heard > 0 ? ha_mono_now() - p->last_heard : -1;
		out[n].escalated = p->escalated;
		out[n].pausing_us = p->held != 0;
	}
	uv_mutex_unlock(&H.lock);
	return n;
}
