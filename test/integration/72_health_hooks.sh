#!/usr/bin/env bash
# 72_health_hooks: health checks and hook scripts, in replication mode in
# front of three nodes, checked as a user would:
#  - a node whose postmaster is stopped with SIGSTOP (it accepts TCP
#    connections and never answers) is detached by the health check's
#    timeout within a few seconds; failover_command (scripts/hooks/failover.sh)
#    runs with the node's id and port and the new primary;
#  - the state file says it is down, new writes land on the other nodes only
#    and the node is marked as having missed writes; it is not attached again
#    when it answers again, nor after a restart of pgchorus;
#  - a node whose postmaster is killed (kill -9) is detached too, writes go on;
#  - a hook that runs longer than hook_timeout is killed with what it started.
# Only new client connections are used (sessions surviving a node's death
# are tested elsewhere).
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_repl.sh
. "$(dirname "$0")/lib_repl.sh"

START=$SECONDS
HOOKS=$TOP/scripts/hooks
STATE=$TEST_TMP/pgchorus.state
export PGCHORUS_HOOK_LOG=$TEST_TMP/hooks.log # written by failover.sh
FAILOVER="$HOOKS/failover.sh %d '%h' %p '%D' %m '%H' %P '%R'"
SLEEP=1072.5 # a hook's sleep, recognisable among the processes

# conf PERIOD FAILOVER_COMMAND [LINE...]
conf() {
	local period=$1 cmd=$2
	shift 2
	chorus_conf 'mode = "replication";' 'pool_mode = "session";' 'pool_size = 10;' 'instance_name = "t72";' \
		'resolver_period = 1;' 'resolver_grace = 2;' \
		"health_check = { period = $period; timeout = 2; retries = 0; };" \
		"failover_command = \"$cmd\";" "state_file = \"$STATE\";" "$@"
}

# log_since N: the pgchorus log after its first N lines
log_since() {
	tail -n "+$(($1 + 1))" "$CHORUS_LOG"
}

log_has() {
	log_since "$1" | grep -Eq -- "$2"
}

rows_with() {
	per_node q "select count(*) from t72 where id = $1"
}

postmaster_pid() {
	head -n 1 "$CLUSTER_DIR/node$1/postmaster.pid"
}

now() {
	date +%s.%N
}

elapsed() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

cluster_up 3
conf 1 "$FAILOVER"
chorus_start
check_match "health checks are started (period 1 s, timeout 2 s)" 'health checks every 1s \(timeout 2s' \
	"$(cat "$CHORUS_LOG")"
check "create table and a first row through pgchorus" \
	chorus_sql "create table t72 (id int primary key, v text); insert into t72 values (1, 'all nodes')"
check_eq "the first row is on every node" "$(same3 1)" "$(rows_with 1)"

# ---- 1. a stopped postmaster: accepts connections, never answers ---------------
pid2=$(postmaster_pid 2)
mark=$(wc -l <"$CHORUS_LOG")
t0=$(now)
kill -STOP "$pid2"
if wait_until 10 log_has "$mark" 'node 2: up -> down: health check failed: timeout after 2s'; then
	took=$(elapsed "$t0")
	if awk -v t="$took" 'BEGIN { exit !(t <= 5.0) }'; then
		ok "node 2 (postmaster stopped) is detached by the health check timeout within 5 s (${took} s)"
	else
		not_ok "node 2 (postmaster stopped) is detached by the health check timeout within 5 s (${took} s)"
	fi
else
	not_ok "node 2 (postmaster stopped) is detached by the health check timeout"
	diag_file "$CHORUS_LOG" 20
fi
check_match "the failure is logged as a warning with its reason" \
	'WARNING node 2: health check failed \(attempt 1 of 1\): timeout after 2s' "$(log_since "$mark")"
wait_until 5 grep -q 'failover node=2' "$PGCHORUS_HOOK_LOG"
check_match "failover_command ran with node 2, its port, and new primary 0 (node 0's port)" \
	"failover node=2 host=127.0.0.1 port=$NODE2_PORT data_dir= new_primary=0 primary_host=127.0.0.1 primary_port=$NODE0_PORT " \
	"$(cat "$PGCHORUS_HOOK_LOG" 2>/dev/null)"
check_match "the hook's output and exit status are in the pgchorus log" \
	'failover_command \(pid [0-9]+\): .*failover node=2' "$(log_since "$mark")"
wait_until 5 log_has "$mark" 'failover_command \(pid [0-9]+\) exited with status 0'
check_match "the hook exited with status 0" 'failover_command \(pid [0-9]+\) exited with status 0' \
	"$(log_since "$mark")"
kill -CONT "$pid2"

# ---- 2. state file, writes without node 2 ---------------------------------------
check_match "the state file says node 2 is down" "^node 2 127\.0\.0\.1 $NODE2_PORT down " "$(cat "$STATE" 2>/dev/null)"
check "a write through a new connection works" chorus_sql "insert into t72 values (2, 'without node 2')"
check_eq "it is on nodes 0 and 1, not on node 2" "1|1|0" "$(rows_with 2)"
if wait_until 5 grep -Eq "^node 2 127\.0\.0\.1 $NODE2_PORT down 1 " "$STATE"; then
	ok "the state file says node 2 missed writes (written_since = 1)"
else
	not_ok "the state file says node 2 missed writes (written_since = 1)"
	diag_file "$STATE"
fi
sleep 2 # two more periods: node 2 answers again but must stay down
check_match "node 2 answers again but stays down (no automatic attach)" \
	"^node 2 127\.0\.0\.1 $NODE2_PORT down 1 " "$(cat "$STATE")"

# ---- 3. restart: node 2 stays down ----------------------------------------------
chorus_stop TERM
mark=$(wc -l <"$CHORUS_LOG")
chorus_start
check_match "after a restart the log says node 2 stays down (state file)" \
	"node 2 \(127\.0\.0\.1:$NODE2_PORT\) stays down \(state file" "$(log_since "$mark")"
check "a write after the restart works" chorus_sql "insert into t72 values (3, 'after the restart')"
check_eq "it is on nodes 0 and 1, not on node 2" "1|1|0" "$(rows_with 3)"

# ---- 4 + 5. kill -9 of node 1's postmaster; a hook that overstays hook_timeout ---
# reloaded: a faster period, and a failover_command that logs, then sleeps
mark=$(wc -l <"$CHORUS_LOG")
conf 0.5 "$FAILOVER; sleep $SLEEP" 'hook_timeout = 1;'
chorus_reload
wait_until 5 log_has "$mark" 'configuration reloaded'
check_match "the reload changes the period of the health checks" 'health checks: period 1s -> 0.5s' \
	"$(log_since "$mark")"
pid1=$(postmaster_pid 1)
t0=$(now)
kill -KILL "$pid1"
if wait_until 10 log_has "$mark" 'node 1: up -> down: health check failed'; then
	ok "node 1 (postmaster killed) is detached by the health check ($(elapsed "$t0") s)"
else
	not_ok "node 1 (postmaster killed) is detached by the health check"
	log_since "$mark" | grep -E 'node 1' | tail -n 5 | sed 's/^/#   /'
fi
check_match "the reason is libpq's own message" 'node 1: up -> down: health check failed: .*Connection refused' \
	"$(log_since "$mark")"
check "a write through a new connection works with node 0 alone" \
	chorus_sql "insert into t72 values (4, 'node 0 alone')"
check_eq "it is on node 0" "1" "$(node_sql 0 'select count(*) from t72 where id = 4')"
check_eq "not on node 2 (down)" "0" "$(node_sql 2 'select count(*) from t72 where id = 4')"
wait_until 5 grep -q 'failover node=1' "$PGCHORUS_HOOK_LOG"
check_match "failover_command ran for node 1, new primary 0" \
	"failover node=1 host=127.0.0.1 port=$NODE1_PORT data_dir= new_primary=0 " "$(cat "$PGCHORUS_HOOK_LOG")"
wait_until 5 log_has "$mark" 'failover_command \(pid [0-9]+\) was killed after 1s'
check_match "the hook still running after hook_timeout = 1 is killed" \
	'failover_command \(pid [0-9]+\): still running after 1s \(hook_timeout\): killed \(SIGTERM\)' "$(log_since "$mark")"
check_match "its end is logged as killed" 'WARNING failover_command \(pid [0-9]+\) was killed after 1s' \
	"$(log_since "$mark")"
check_fail "the sleep it started is gone too (its process group was killed)" pgrep -f "sleep $SLEEP"

chorus_stop TERM
diag "test time: $((SECONDS - START)) s"
