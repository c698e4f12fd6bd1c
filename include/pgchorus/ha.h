/*
 * ha.h - failure handling (doc/failover.md): node states and the state
 * file, health checks, hook scripts, the pause of writes, online recovery
 * and failback.
 *
 * Threads: node states are atomics any thread reads (node.h).  Changes go
 * through the functions below, which log them, write the state file, tell
 * the workers (INBOX_NODE_DOWN) and run the hook scripts.  Health checks
 * and hook scripts run on the main thread's loop; recovery and attach run
 * in the HA thread (recovery.c), which may block.
 */
#ifndef PGCHORUS_HA_H
#define PGCHORUS_HA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "pgchorus/config.h"
#include "pgchorus/node.h"

/* ---- node states (src/ha/nodestate.c) ---- */

/* "up", "down", "recovering", "detached". */
const char *node_state_name(int state);
/*
 * Main thread, after nodes_init() and before the workers start: remember
 * CFG (reference taken) and read the state file.  A node the file says is
 * not up stays so (recovering counts as down).  0, or -1 with ERR set (an
 * unreadable or malformed state file; a missing one is fine).
 */
int nodestate_init(const struct config *cfg, char *err, size_t errlen);
/* New settings (main thread). */
void nodestate_reload(const struct config *cfg);
void nodestate_shutdown(void);
/* The settings in force (a reference the caller must config_unref()). */
struct config *nodestate_config(void);
/*
 * Node ID failed (any thread): UP -> DOWN.  Logged with WHY, written to the
 * state file, workers told (their sessions let go of the node), and
 * failover_command run.  true when this call changed the state.
 */
bool node_fail(int id, const char *why);
/* Set ID's state (any thread) without checks: admin detach, recovery, attach.
 * Logged, persisted; workers told when it leaves UP. */
void node_set_state(int id, enum node_state st, const char *why);
/* Last failure text of ID (empty if none). */
void node_last_error(int id, char *out, size_t n);
/* Seconds since the epoch of ID's last state change (0: never changed). */
double node_changed_at(int id);
/* A replicated write committed: nodes not up have missed it (failback is refused then). */
void nodes_note_write(void);
/* Has ID missed writes since it left UP? */
bool node_written_since(int id);
/* Live nodes (UP). */
int nodes_up_count(void);

/* What heartbeats carry of a node (heartbeat.c). */
struct node_view {
	int state;          /* enum node_state */
	uint64_t gen;       /* generation: one more at every change */
	bool written;       /* missed a write since it left up */
};
/* A consistent copy of every node's state (at most MAX), with the PROMOTE
 * choice (-1: none) and its generation.  Returns the count. */
int nodes_view(struct node_view *out, int max, int *preferred, uint64_t *preferred_gen);
/* A peer instance says node ID is ST at generation GEN: taken when GEN is
 * higher than ours, or equal while ours says up and ST does not.  Logged,
 * persisted, workers told; no hook runs (the peer ran it).  true if the
 * state changed. */
bool node_adopt(int id, enum node_state st, uint64_t gen, const char *from_peer);
/* The same for the PROMOTE NODE choice (ID -1: none). */
bool node_adopt_preferred(int id, uint64_t gen, const char *from_peer);
/* Make ID the primary while it is up (kept in the state file).  Only with
 * writes paused and none open (ha_promote_node). */
void node_set_preferred(int id, const char *why);

/* ---- heartbeat between pgchorus instances (src/ha/heartbeat.c) ---- */

/* Main thread, after hooks_start(): bind heartbeat_port, start sending.
 * 0, or -1 with ERR.  Nothing happens without heartbeat_port. */
int hb_start(uv_loop_t *loop, const struct config *cfg, char *err, size_t errlen);
void hb_reload(const struct config *cfg);
/* Main thread, at shutdown: de_escalation_command for the peers taken over. */
void hb_stop(void);
/* Every peer was heard, or heartbeat_deadtime passed since hb_start(): the
 * node states are as the peers see them, clients may be served. */
bool hb_ready(void);
/* A node state changed here: heartbeats go out now (any thread). */
void hb_changed(void);
/*
 * HA or compare thread, with writes paused here and drained: ask every live
 * peer to pause its writes and wait (until DEADLINE on ha_mono_now()'s
 * clock) until each says none is open.  *HELD is set when this caller holds
 * the request (hb_resume_peers(HELD) withdraws it, also after a failure).
 * 0, or -1 with ERR.
 */
int hb_pause_peers(bool *held, double deadline, char *err, size_t errlen);
void hb_resume_peers(bool *held);
/* After hb_pause_peers(): did a live peer write while node ID was not up? */
bool hb_peers_wrote(int id);

/* SHOW PEERS */
struct hb_peer_info {
	char name[24];         /* its instance_name, "" until heard */
	char host[64];
	int port;
	const char *status;    /* "unknown", "alive", "dead" */
	double heard_ago;      /* seconds since its last heartbeat, -1 never */
	uint64_t boot;
	bool escalated;        /* escalation_command ran for it */
	bool pausing_us;       /* it holds a pause of our writes */
};
int hb_peers_info(struct hb_peer_info *out, int max);

/* ---- write pause (src/repl/rgate.c) ---- */

/* New write transactions wait (clients stay connected) until resumed.  Any thread. */
void repl_pause_writes(void);
void repl_resume_writes(void);
bool repl_writes_paused(void);
/* Sessions with a write transaction open right now. */
int repl_open_writers(void);
/* A session opens a write transaction: false when writes are paused (it
 * must wait, and is not counted).  rgate_leave() when it ends. */
bool rgate_enter(void);
void rgate_leave(void);

/* ---- hook scripts (src/ha/hook.c) ---- */

struct hook_args {
	int node;              /* %d */
	const char *host;      /* %h */
	int port;              /* %p */
	const char *data_dir;  /* %D ("" if unset) */
	int primary;           /* %m: the new primary (-1: none) */
	const char *p_host;    /* %H */
	int p_port;            /* %P */
	const char *p_data_dir;/* %R */
	/* escalation_command, de_escalation_command: %h %p are the peer's host
	 * and heartbeat port, node -1 */
	const char *peer_name; /* %n: its instance_name */
	const char *peer_vip;  /* %v: its virtual_ip */
};

/* Fill A for node NODE and the current primary, from CFG (strings point into CFG). */
void hook_args_for(const struct config *cfg, int node, struct hook_args *a);
/* Expand the placeholders of TMPL into OUT (N bytes).  Returns the length the
 * whole expansion needs (as snprintf); values are substituted raw, not shell-quoted. */
size_t hook_expand(const char *tmpl, const struct hook_args *a, char *out, size_t n);
/* Main thread, before anything runs hooks / at exit. */
int hooks_start(uv_loop_t *loop);
void hooks_stop(void);
/* Run TMPL (if not "") with /bin/sh on the main loop, killed after TIMEOUT
 * seconds; output logged line by line with WHAT.  Any thread, returns at once. */
void hook_run_async(const char *what, const char *tmpl, const struct hook_args *a, double timeout);
/* The same, waiting for the end (HA thread only, never a worker): the exit
 * status, or -1 (could not run, killed by the timeout or a signal). */
int hook_run_wait(const char *what, const char *tmpl, const struct hook_args *a, double timeout);

/* ---- health checks (src/ha/health.c) ---- */

/* Main thread: check every node every health_check.period on LOOP. */
int health_start(uv_loop_t *loop, const struct config *cfg);
void health_reload(const struct config *cfg);
void health_stop(void);
/* Check NODE now (a data connection failed).  Any thread. */
void health_check_now(int node);
/* Milliseconds the last successful check of NODE took (-1: none yet). */
double health_last_ms(int node);

/* ---- online recovery and failback (src/ha/recovery.c) ---- */

struct recovery_progress {
	bool running;
	int node;              /* -1: none yet */
	char phase[32];        /* "basebackup", "catchup", "pause", "promote", "done", "failed" */
	uint64_t bytes_copied;
	uint64_t bytes_total;
	int64_t lag_bytes;     /* primary's WAL position minus the node's replay position (-1 unknown) */
	double pause_ms;       /* how long writes were paused (stage 2) */
	double started;        /* seconds since the epoch */
	double ended;
	char error[256];
};

/* Main thread: start the HA thread. */
int recovery_init(const struct config *cfg, char *err, size_t errlen);
void recovery_reload(const struct config *cfg);
void recovery_stop(void);
/* Start the online recovery of NODE (down or detached) in the HA thread.
 * 0, or -1 with ERR (node up, another recovery running...). */
int ha_recover_node(int node, char *err, size_t errlen);
/* Failback: attach NODE (detached, not written since) without recovery:
 * writes paused while open write transactions end, then it is up.  Runs in
 * the HA thread; 0 = started, -1 with ERR = refused. */
int ha_attach_node(int node, char *err, size_t errlen);
/* PROMOTE NODE: make NODE (up) the primary, in the HA thread, with writes
 * paused while open write transactions end.  0 = started, -1 with ERR. */
int ha_promote_node(int node, char *err, size_t errlen);
/* DETACH NODE n GRACEFUL: in the HA thread, writes paused here and in the
 * live peers while open write transactions end, then NODE is detached.
 * 0 = started, -1 with ERR. */
int ha_detach_node_graceful(int node, char *err, size_t errlen);
/* A copy of the progress of the last (or running) recovery. */
void recovery_get_progress(struct recovery_progress *out);

#endif
