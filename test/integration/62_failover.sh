#!/usr/bin/env bash
# 62_failover: mode = "replication" in front of three nodes under pgbench
# tpcb-like load (16 clients).  Real faults: (a) kill -9 of a non-primary
# node's postmaster, (b) of the primary's, (c) kill -STOP of a node (the
# health check's timeout finds it), (d) pg_ctl stop -m immediate.  Each time:
# the node is detached within the health-check period, pgbench reports 0
# failed transactions and every client session stays connected (pgbench
# exits 0: a lost connection aborts its client), the remaining nodes are
# identical and the bank invariants hold.  After each fault the node is
# recovered online under load (RECOVER NODE on the admin console): it is
# attached again, the nodes are identical afterwards, no prepared
# transaction is left, and the write pause is printed (must be < 1 s).
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_repl.sh
. "$(dirname "$0")/lib_repl.sh"

START=$SECONDS
RECOVER=${RECOVER:-1}

cluster_up 3
nodes=""
for ((k = 0; k < NODE_COUNT; k++)); do
	[ -n "$nodes" ] && nodes+=","
	dirvar=NODE${k}_DIR
	nodes+=$'\n'"  { host = \"127.0.0.1\"; port = $(node_port "$k"); data_dir = \"${!dirvar:-$CLUSTER_DIR/node$k}\"; }"
done
chorus_conf 'mode = "replication";' 'pool_mode = "session";' 'pool_size = 40;' 'instance_name = "t62";' \
	'resolver_period = 1;' 'resolver_grace = 2;' \
	'health_check = { period = 1; timeout = 2; retries = 0; retry_delay = 0.5; };' \
	"state_file = \"$TEST_TMP/pgchorus.state\";" 'recovery_pause_timeout = 10;' \
	"nodes = ($nodes
);"
chorus_start

if with_timeout 60 pgbench -i -s 1 -q -h 127.0.0.1 -p "$CHORUS_PORT" postgres >"$TEST_TMP/pgbench-init.log" 2>&1; then
	ok "pgbench -i -s 1 through pgchorus"
else
	diag_file "$TEST_TMP/pgbench-init.log"
	bail "pgbench -i -s 1 through pgchorus"
fi

postmaster_pid() {
	head -n 1 "$(node_dir "$1")/postmaster.pid"
}

# node_status K: its status in the admin console's SHOW NODES
node_status() {
	with_timeout 10 psql -X -h 127.0.0.1 -p "$CHORUS_PORT" -U postgres -d pgchorus -qAt -F ' ' \
		-c 'SHOW NODES' 2>/dev/null | awk -v k="$1" '$1 == k { print $4 }'
}

node_is() {
	[ "$(node_status "$1")" = "$2" ]
}

# logged_down K FROM: the pgchorus log says node K went down (after line FROM)
logged_down() {
	tail -n "+$2" "$CHORUS_LOG" | grep -Eq "node $1: up -> down"
}

# live_identical DESC: the tables are identical on the nodes that are up
live_identical() {
	local desc=$1 k d ref="" same=1 t
	shift
	for t in "pgbench_accounts:aid,bid,abalance" "pgbench_branches:bid,bbalance" "pgbench_tellers:tid,bid,tbalance" \
		"pgbench_history:tid,bid,aid,delta"; do
		ref=""
		for k in "$@"; do
			d=$(digest "${t%%:*}" "${t#*:}" "$k")
			if [ -z "$ref" ]; then ref=$d; elif [ "$d" != "$ref" ]; then same=0; fi
		done
	done
	if [ "$same" = 1 ]; then ok "$desc"; else not_ok "$desc"; fi
}

# recover K WHAT MODE: RECOVER NODE K under load (pgbench -M MODE), then the checks
recover() {
	local k=$1 what=$2 mode=$3 pause
	if [ "$RECOVER" != 1 ]; then
		return
	fi
	start_pgbench_db "rec$k" postgres -M "$mode" -c 16 -j 2 -T 12
	sleep 2
	if with_timeout 10 psql -X -h 127.0.0.1 -p "$CHORUS_PORT" -U postgres -d pgchorus -qAt -c "RECOVER NODE $k" \
		>"$TEST_TMP/recover-$k.out" 2>&1; then
		ok "$what: RECOVER NODE $k accepted"
	else
		not_ok "$what: RECOVER NODE $k accepted"
		diag_file "$TEST_TMP/recover-$k.out"
	fi
	check "$what: node $k is up again after online recovery (60 s)" wait_until 60 node_is "$k" up ||
		diag "$(with_timeout 10 psql -X -h 127.0.0.1 -p "$CHORUS_PORT" -U postgres -d pgchorus -c 'SHOW RECOVERY' 2>&1)"
	finish_pgbench "rec$k" "$what: pgbench -M $mode tpcb 16 clients during the recovery of node $k"
	pause=$(with_timeout 10 psql -X -h 127.0.0.1 -p "$CHORUS_PORT" -U postgres -d pgchorus -qAt -F ' ' \
		-c 'SHOW RECOVERY' 2>/dev/null | awk '{ print $7 }')
	diag "$what: write pause during the online recovery of node $k: ${pause:-?} ms"
	check "$what: write pause under 1000 ms (${pause:-?} ms)" awk -v p="${pause:-99999}" 'BEGIN { exit !(p + 0 < 1000) }'
	check_identical "$what: pgbench_accounts identical on the 3 nodes after recovery" pgbench_accounts "aid,bid,abalance"
	check_identical "$what: pgbench_history identical on the 3 nodes after recovery" pgbench_history "tid,bid,aid,delta"
	check_identical "$what: pgbench_branches identical on the 3 nodes after recovery" pgbench_branches "bid,bbalance"
	check_eq "$what: bank invariants hold on every node" "$(same3 t)" "$(per_node bank_ok)"
	check_nodes_no_prepared "$what: no prepared transaction left on any node"
}

# fault NAME K HOW MODE RMODE: pgbench -M MODE load, the fault HOW on node K,
# then the checks; then its recovery under pgbench -M RMODE
fault() {
	local name=$1 k=$2 how=$3 mode=$4 rmode=$5 t0 t1 others=() j pid from
	for ((j = 0; j < NODE_COUNT; j++)); do
		[ "$j" != "$k" ] && others+=("$j")
	done
	start_pgbench_db "$name" postgres -M "$mode" -c 16 -j 2 -T 10
	sleep 3
	pid=$(postmaster_pid "$k")
	from=$(($(wc -l <"$CHORUS_LOG") + 1))
	t0=$(date +%s.%N)
	case $how in
	kill9) kill -KILL "$pid" ;;
	stop) kill -STOP "$pid" ;;
	immediate) runuser -u postgres -- "$PGBIN/pg_ctl" -D "$(node_dir "$k")" stop -m immediate >/dev/null 2>&1 ;;
	esac
	if check "$name: node $k detached (log says up -> down) within 5 s" wait_until 5 logged_down "$k" "$from"; then
		t1=$(date +%s.%N)
		diag "$name: node $k detached after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s (health_check period 1 s, timeout 2 s)"
	fi
	finish_pgbench "$name" "$name: pgbench -M $mode tpcb 16 clients across the fault (0 failed, every session kept)"
	[ "$how" = stop ] && kill -CONT "$pid" 2>/dev/null
	check_eq "$name: SHOW NODES says node $k is down" "down" "$(node_status "$k")"
	live_identical "$name: the remaining nodes ${others[*]} are identical" "${others[@]}"
	for j in "${others[@]}"; do
		check_eq "$name: bank invariants hold on node $j" t "$(bank_ok "$j")"
	done
	if [ "$how" = stop ]; then
		# the stopped postmaster still runs (continued): stop it for recovery
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$(node_dir "$k")" stop -m immediate >/dev/null 2>&1
	fi
	recover "$k" "$name" "$rmode"
}

fault "a_kill9_standby" 2 kill9 simple prepared
fault "b_kill9_primary" 0 kill9 extended simple
if [ "$RECOVER" = 1 ]; then
	[ -n "${STOP_AFTER_B:-}" ] && exit 0
	fault "c_stop" 1 stop prepared extended
	fault "d_immediate" 2 immediate simple prepared
fi

# A client that logs in while the primary is dead and not yet detected (no
# health checks) gets the next node: the failed login connection detaches it.
if [ "$RECOVER" = 1 ]; then
	chorus_conf 'mode = "replication";' 'pool_mode = "session";' 'pool_size = 40;' 'instance_name = "t62";' \
		'resolver_period = 1;' 'resolver_grace = 2;' 'health_check = { period = 0; };' \
		"state_file = \"$TEST_TMP/pgchorus.state\";" "nodes = ($nodes
);"
	chorus_stop TERM 30
	chorus_start
	kill -KILL "$(postmaster_pid 0)"
	sleep 0.5
	check_eq "login while the primary is dead and undetected: the query is answered" 1 "$(chorus_sql 'select 1' 2>&1)"
	check_eq "... and node 0 is down" down "$(node_status 0)"
	check "... and a write works" chorus_sql 'update pgbench_branches set filler = filler'
fi

diag "62_failover took $((SECONDS - START)) s"
