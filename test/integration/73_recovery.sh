#!/usr/bin/env bash
# 73_recovery: online recovery of a node and failback attach (src/ha/recovery.c),
# driven from the admin console, mode = "replication" over three nodes.
#  A. node 2 is down from the start (stopped, and so in the state file); the
#     others get pgbench -i -s 1 and writes; RECOVER NODE 2 (built-in first
#     stage: pg_basebackup, start as a standby, catch up; second stage: write
#     pause, promote) under pgbench tpcb load (8 clients): the recovery ends
#     (SHOW RECOVERY done, node 2 up), the write pause is < 1 s, pgbench has 0
#     failed transactions, the three nodes are identical, bank invariants
#     hold, no prepared transaction is left.
#  B. requests that are refused: recover / attach a node that is up.
#  C. failback: DETACH NODE 1 with no write in between, ATTACH NODE 1 works.
#  D. DETACH NODE 1, one write, ATTACH NODE 1 is refused ("use RECOVER NODE").
#  E. a write transaction stays open longer than recovery_pause_timeout:
#     the recovery fails in its second stage, writes are resumed, node 1
#     stays down, the open transaction commits.
#  F. the sample hook scripts (scripts/hooks/recovery_1st_stage.sh and
#     recovery_2nd_stage.sh) recover node 1 under load.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_repl.sh
. "$(dirname "$0")/lib_repl.sh"

START=$SECONDS
cluster_up 3

nodes=$(nodes_with_data_dir)
STATE=$TEST_TMP/pgchorus.state

# conf [LINE...]: the configuration of this test, with extra lines
conf() {
	chorus_conf 'mode = "replication";' 'pool_mode = "session";' 'pool_size = 40;' 'instance_name = "t73";' \
		'resolver_period = 1;' 'resolver_grace = 2;' 'admin_users = "postgres";' \
		"state_file = \"$STATE\";" 'recovery_timeout = 120;' 'hook_timeout = 60;' \
		"nodes = ($nodes
);" "$@"
}

# admin SQL: one admin console command, unaligned, '|' between columns
admin() {
	with_timeout 15 psql -X -h 127.0.0.1 -p "$CHORUS_PORT" -U postgres -d pgchorus -v ON_ERROR_STOP=1 -qAt \
		-F '|' -c "$1"
}

# node_status K: its status in SHOW NODES
node_status() {
	admin 'SHOW NODES' 2>/dev/null | awk -F'|' -v k="$1" '$1 == k { print $4 }'
}

node_is() {
	[ "$(node_status "$1")" = "$2" ]
}

# recovery_col N: column N of SHOW RECOVERY (1 node, 2 phase, 3 running,
# 4 bytes_copied, 5 bytes_total, 6 lag_bytes, 7 pause_ms, 10 error)
recovery_col() {
	admin 'SHOW RECOVERY' 2>/dev/null | cut -d'|' -f "$1"
}

# recovery_ended: the last recovery is done or failed and no longer running
recovery_ended() {
	local row
	row=$(admin 'SHOW RECOVERY' 2>/dev/null) || return 1
	case $(cut -d'|' -f2,3 <<<"$row") in
	done\|f | failed\|f) return 0 ;;
	esac
	return 1
}

# all_identical DESC: the pgbench tables, the bank invariants, no prepared transaction
all_identical() {
	local what=$1
	check_identical "$what: pgbench_accounts identical on the 3 nodes" pgbench_accounts "aid,bid,abalance"
	check_identical "$what: pgbench_history identical on the 3 nodes" pgbench_history "tid,bid,aid,delta"
	check_identical "$what: pgbench_branches identical on the 3 nodes" pgbench_branches "bid,bbalance"
	check_identical "$what: pgbench_tellers identical on the 3 nodes" pgbench_tellers "tid,bid,tbalance"
	check_eq "$what: bank invariants hold on every node" "$(same3 t)" "$(per_node bank_ok)"
	check_nodes_no_prepared "$what: no prepared transaction left on any node"
}

# recover_under_load NAME K: RECOVER NODE K while pgbench runs; the checks
recover_under_load() {
	local name=$1 k=$2 pause bytes from
	from=$(($(wc -l <"$CHORUS_LOG") + 1))
	start_pgbench_db "$name" postgres -c 8 -j 2 -T 12
	sleep 2
	if admin "RECOVER NODE $k" >"$TEST_TMP/recover-$name.out" 2>&1; then
		ok "$name: RECOVER NODE $k accepted"
	else
		not_ok "$name: RECOVER NODE $k accepted"
		diag_file "$TEST_TMP/recover-$name.out"
	fi
	if check "$name: the recovery of node $k ends within 90 s" wait_until 90 recovery_ended; then
		check_eq "$name: SHOW RECOVERY says done" "done|f|" "$(recovery_col 2,3,10)" ||
			diag "$(admin 'SHOW RECOVERY' 2>&1)"
	fi
	check "$name: node $k is up (SHOW NODES)" wait_until 5 node_is "$k" up
	finish_pgbench "$name" "$name: pgbench tpcb 8 clients during the recovery of node $k"
	pause=$(recovery_col 7)
	bytes=$(recovery_col 4)
	diag "$name: write pause ${pause:-?} ms; $(tail -n "+$from" "$CHORUS_LOG" |
		grep -o "recovery of node $k done: .*" | tail -n 1)"
	check "$name: write pause under 1000 ms (${pause:-?} ms)" \
		awk -v p="${pause:-99999}" 'BEGIN { exit !(p + 0 < 1000) }'
	if [ "${3:-}" = builtin ]; then
		check "$name: bytes copied reported (${bytes:-?})" awk -v b="${bytes:-0}" 'BEGIN { exit !(b + 0 > 1000000) }'
		check_fail "$name: the old data directory is removed" test -e "$(node_dir "$k").old"
	fi
	all_identical "$name"
}

# ---- A: node 2 down from the start, recovered under load ----------------------

runuser -u postgres -- "$PGBIN/pg_ctl" -D "$(node_dir 2)" -m immediate -w stop >/dev/null 2>&1 ||
	bail "node 2 stopped"
echo "node 2 127.0.0.1 $(node_port 2) down 1 0" >"$STATE"
conf 'recovery_pause_timeout = 10;'
chorus_start
check_eq "A: node 2 is down at start (state file)" down "$(node_status 2)"

if with_timeout 60 pgbench -i -s 1 -q -h 127.0.0.1 -p "$CHORUS_PORT" postgres >"$TEST_TMP/pgbench-init.log" 2>&1; then
	ok "A: pgbench -i -s 1 through pgchorus (nodes 0 and 1)"
else
	diag_file "$TEST_TMP/pgbench-init.log"
	bail "A: pgbench -i -s 1 through pgchorus"
fi
run_pgbench "A: pgbench tpcb before the recovery" -c 4 -T 2
recover_under_load A 2 builtin
check_all_tables_identical "A: every table identical on the 3 nodes"

# ---- B: refused requests ----------------------------------------------------

out=$(admin 'RECOVER NODE 0' 2>&1)
check_match "B: RECOVER NODE 0 (up) is refused" 'node 0 is up' "$out"
out=$(admin 'ATTACH NODE 2' 2>&1)
check_match "B: ATTACH NODE 2 (up) is refused" 'node 2 is up' "$out"

# ---- C: failback without writes in between -----------------------------------

check "C: DETACH NODE 1" admin 'DETACH NODE 1'
check_eq "C: node 1 is detached" detached "$(node_status 1)"
check "C: ATTACH NODE 1 (no write since the detach)" admin 'ATTACH NODE 1'
check "C: node 1 is up again" wait_until 15 node_is 1 up
check "C: a write through pgchorus" chorus_sql "update pgbench_branches set bbalance = bbalance + 1 where bid = 1; update pgbench_tellers set tbalance = tbalance + 1 where tid = 1; insert into pgbench_history (tid, bid, aid, delta, mtime) values (1, 1, 1, 1, now()); update pgbench_accounts set abalance = abalance + 1 where aid = 1"
all_identical "C"

# ---- D: failback refused after a write ---------------------------------------

check "D: DETACH NODE 1" admin 'DETACH NODE 1'
check "D: one write while node 1 is detached" chorus_sql "update pgbench_accounts set filler = 'd' where aid = 2"
out=$(admin 'ATTACH NODE 1' 2>&1)
check_match "D: ATTACH NODE 1 is refused: it missed writes, use RECOVER NODE" 'missed writes.*RECOVER NODE' "$out"
check_eq "D: node 1 stays detached" detached "$(node_status 1)"

# ---- E: a write transaction open longer than recovery_pause_timeout -----------

conf 'recovery_pause_timeout = 2;'
chorus_reload
check "E: configuration reloaded" wait_until 10 grep -q 'configuration reloaded' "$CHORUS_LOG"
(
	with_timeout 60 psql -X -h 127.0.0.1 -p "$CHORUS_PORT" -v ON_ERROR_STOP=1 -qAt >"$TEST_TMP/longtx.out" 2>&1 <<'SQL'
begin;
update pgbench_accounts set filler = 'e' where aid = 3;
select pg_sleep(12);
commit;
SQL
	echo $? >"$TEST_TMP/longtx.rc"
) &
LONGTX=$!
bg_track $LONGTX
sleep 1
check "E: RECOVER NODE 1 accepted" admin 'RECOVER NODE 1'
if check "E: the recovery ends within 60 s" wait_until 60 recovery_ended; then
	check_eq "E: SHOW RECOVERY says failed" failed "$(recovery_col 2)"
	check_match "E: the error names the open write transaction" 'still open after recovery_pause_timeout' \
		"$(recovery_col 10)"
fi
check_eq "E: node 1 is down after the failed recovery" down "$(node_status 1)"
t0=$(date +%s.%N)
check "E: writes go on after the failed pause" with_timeout 5 psql -X -h 127.0.0.1 -p "$CHORUS_PORT" \
	-v ON_ERROR_STOP=1 -qAt -c "update pgbench_accounts set filler = 'f' where aid = 4"
diag "E: a write took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms after the failed recovery"
wait $LONGTX
check_eq "E: the long write transaction committed" 0 "$(cat "$TEST_TMP/longtx.rc" 2>/dev/null)" ||
	diag_file "$TEST_TMP/longtx.out"

# ---- F: the sample hook scripts ----------------------------------------------

HOOKS=$TOP/scripts/hooks
conf 'recovery_pause_timeout = 10;' \
	"recovery_1st_stage_command = \"$HOOKS/recovery_1st_stage.sh %d %h %p %D %H %P %R\";" \
	"recovery_2nd_stage_command = \"$HOOKS/recovery_2nd_stage.sh %d %h %p %D\";"
from=$(grep -c 'configuration reloaded' "$CHORUS_LOG")
chorus_reload
check "F: configuration reloaded" wait_until 10 \
	awk -v n="$from" '/configuration reloaded/ { c++ } END { exit !(c > n) }' "$CHORUS_LOG"
recover_under_load F 1
check "F: the hook scripts ran" grep -q 'recovery_2nd_stage_command.*exited with status 0' "$CHORUS_LOG"
check_all_tables_identical "F: every table identical on the 3 nodes"

# ---- G: min_nodes ---------------------------------------------------------------

conf 'min_nodes = 3;'
from=$(grep -c 'configuration reloaded' "$CHORUS_LOG")
chorus_reload
check "G: configuration reloaded (min_nodes = 3)" wait_until 10 \
	awk -v n="$from" '/configuration reloaded/ { c++ } END { exit !(c > n) }' "$CHORUS_LOG"
check "G: DETACH NODE 2" admin 'DETACH NODE 2'
out=$(with_timeout 10 psql -X -h 127.0.0.1 -p "$CHORUS_PORT" -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -qAt \
	-c "update pgbench_accounts set filler = 'g' where aid = 5" 2>&1)
check_match "G: 2 of 3 nodes up, min_nodes = 3: a write fails with 25006" '25006' "$out"
check_eq "G: ... and reads go on" 1 "$(chorus_sql 'select count(*) from pgbench_branches')"
check "G: ATTACH NODE 2 (it missed no write)" admin 'ATTACH NODE 2'
check "G: node 2 is up again" wait_until 20 node_is 2 up
check "G: writes work again" chorus_sql "update pgbench_accounts set filler = 'g' where aid = 5"
check_eq "G: the write reached every node" "$(same3 g)" \
	"$(per_node q "select trim(filler) from pgbench_accounts where aid = 5")"

# ---- H: PROMOTE NODE ----------------------------------------------------------

node_role() {
	admin 'SHOW NODES' 2>/dev/null | awk -F'|' -v k="$1" '$1 == k { print $5 }'
}
role_is() {
	[ "$(node_role "$1")" = "$2" ]
}
check "H: PROMOTE NODE 1" admin 'PROMOTE NODE 1'
check "H: node 1 is the primary" wait_until 20 role_is 1 primary
check_eq "H: ... and node 0 is not" standby "$(node_role 0)"
check "H: the state file names the primary" grep -q -E '^primary 1( [0-9]+)?$' "$STATE"
check "H: a write after the promotion" chorus_sql "update pgbench_accounts set filler = 'h' where aid = 6"
check_eq "H: ... reached every node" "$(same3 h)" \
	"$(per_node q "select trim(filler) from pgbench_accounts where aid = 6")"
check_fail "H: PROMOTE NODE 1 again is refused" admin 'PROMOTE NODE 1'
check "H: PROMOTE NODE 0 back" admin 'PROMOTE NODE 0'
check "H: node 0 is the primary again" wait_until 20 role_is 0 primary

chorus_stop TERM 30
diag "73_recovery took $((SECONDS - START)) s"
