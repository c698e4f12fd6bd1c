#!/usr/bin/env bash
# 78_heartbeat: two pgchorus instances (ta, tb) on one set of three nodes,
# with heartbeats between them (src/ha/heartbeat.c, doc/heartbeat.md).
#  A. each sees the other alive (SHOW PEERS); heartbeats are authenticated.
#  B. DETACH NODE 2 through ta: tb shows it detached at once and no longer
#     writes it; RECOVER NODE 2 through ta while pgbench writes through both
#     instances: 0 failed transactions, node 2 up on both, nodes identical.
#  C. DETACH NODE 1 GRACEFUL through tb; ATTACH NODE 1 through ta works (no
#     write in between); detached again, a write through tb only, then ATTACH
#     NODE 1 through ta is refused (the peer wrote); RECOVER NODE 1.
#  D. in-doubt transactions of ta (one committed on a node, one only
#     prepared), then kill -9 of ta while pgbench writes through both: tb
#     runs escalation_command with the placeholders, resolves ta's prepared
#     transactions (commit / roll back), its pgbench has 0 failed
#     transactions, nodes identical.
#  E. ta restarts: tb runs de_escalation_command; node states agree.
#     E2: ta is killed while it recovers a node: tb puts the node down
#     (it would stay "recovering"), recovers it itself; ta, restarted, agrees.
#  F. SIGTERM of tb: ta hears "leaving" and escalates before the deadtime.
#  G. a forged heartbeat without the right HMAC is ignored.
#  The escalation commands also run the sample scripts
#  scripts/hooks/escalation.sh / de_escalation.sh in a network namespace of
#  the test (when one can be made): tb's address appears there when ta takes
#  it over (F) and is gone after ta's shutdown.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_repl.sh
. "$(dirname "$0")/lib_repl.sh"

cluster_up 3

nodes=$(nodes_with_data_dir)

read -r A_PORT B_PORT A_HB B_HB A_METRICS <<<"$("$CLUSTER_SH" freeport 5 | tr '\n' ' ')"
[ -n "$A_METRICS" ] || bail "five free ports"
ESC=$TEST_TMP/escalations
: >"$ESC"
NS=pgc78_$$
ip netns add "$NS" 2>/dev/null && ip -n "$NS" link set lo up 2>/dev/null || NS=""
[ -z "$NS" ] || trap 'ip netns del "$NS" 2>/dev/null; _lib_exit' EXIT
# the hook: a line into $ESC, and the sample script in the namespace
cat >"$TEST_TMP/esc.sh" <<EOF
#!/bin/sh
echo "\$1 \$2 \$3 \$4 \$5 \$6" >>"$ESC"
[ -z "$NS" ] && exit 0
if [ "\$2" = up ]; then s=escalation.sh; else s=de_escalation.sh; fi
exec ip netns exec "$NS" "$TOP/scripts/hooks/\$s" "\$3" "\$6" lo
EOF
chmod +x "$TEST_TMP/esc.sh"
ns_has() {
	ip -n "$NS" -o addr show dev lo | grep -qF "$1"
}

# conf_for NAME PORT HB PEER_HB PEER_NAME PEER_VIP: the configuration of one instance
conf_for() {
	CHORUS_PORT=$2 chorus_conf 'mode = "replication";' 'pool_mode = "transaction";' 'pool_size = 20;' \
		"instance_name = \"$1\";" 'resolver_period = 3600;' 'resolver_grace = 2;' 'admin_users = "postgres";' \
		"state_file = \"$TEST_TMP/$1.state\";" "control_socket = \"$TEST_TMP/$1.ctl\";" \
		'recovery_timeout = 120;' 'recovery_pause_timeout = 10;' \
		"heartbeat_port = $3;" 'heartbeat_address = "127.0.0.1";' 'heartbeat_interval = 0.3;' \
		'heartbeat_deadtime = 2;' 'heartbeat_secret = "s3cret-78";' \
		"peers = ( { host = \"127.0.0.1\"; port = $4; virtual_ip = \"$6\"; } );" \
		"escalation_command = \"$TEST_TMP/esc.sh $1 up '%n' %h %p '%v'\";" \
		"de_escalation_command = \"$TEST_TMP/esc.sh $1 down '%n' %h %p '%v'\";" \
		"nodes = ($nodes
);" "${@:7}"
	cp "$CHORUS_CONF" "$TEST_TMP/$1.conf"
}
VIP_A=10.77.0.11/32
VIP_B=10.77.0.12/32
conf_for tb "$B_PORT" "$B_HB" "$A_HB" ta "$VIP_A"
conf_for ta "$A_PORT" "$A_HB" "$B_HB" tb "$VIP_B" "metrics_port = $A_METRICS;"
CHORUS_PORT=$A_PORT
CHORUS_CONF=$TEST_TMP/ta.conf
B_LOG=$TEST_TMP/tb.log
B_PID=""

b_start() {
	"$PGCHORUS" -n -f "$TEST_TMP/tb.conf" >>"$B_LOG" 2>&1 &
	B_PID=$!
	bg_track "$B_PID"
	wait_until 15 pg_isready -q -h 127.0.0.1 -p "$B_PORT" -t 1 || bail "tb accepts connections"
}

# admin PORT SQL: one admin console command, unaligned, '|' between columns
admin() {
	with_timeout 15 psql -X -h 127.0.0.1 -p "$1" -U postgres -d pgchorus -v ON_ERROR_STOP=1 -qAt -F '|' -c "$2"
}
# node_is PORT K STATE: SHOW NODES of the instance on PORT says node K is STATE
node_is() {
	[ "$(admin "$1" 'SHOW NODES' 2>/dev/null | awk -F'|' -v k="$2" '$1 == k { print $4 }')" = "$3" ]
}
# peer_col PORT N: column N of the first SHOW PEERS row (1 name, 4 status, 6 boot, 7 escalated)
peer_col() {
	admin "$1" 'SHOW PEERS' 2>/dev/null | head -n 1 | cut -d'|' -f "$2"
}
peer_is() {
	[ "$(peer_col "$1" 4)" = "$2" ]
}
recovery_done() {
	case $(admin "$1" 'SHOW RECOVERY' 2>/dev/null | cut -d'|' -f2,3) in
	done\|f) return 0 ;;
	failed\|f) return 2 ;;
	esac
	return 1
}
# sql_on PORT SQL
sql_on() {
	with_timeout "$CLIENT_TIMEOUT" psql -X -h 127.0.0.1 -p "$1" -v ON_ERROR_STOP=1 -qAt -c "$2"
}
all_same() {
	local what=$1
	check_identical "$what: pgbench_accounts identical on the 3 nodes" pgbench_accounts "aid,bid,abalance"
	check_identical "$what: pgbench_history identical on the 3 nodes" pgbench_history "tid,bid,aid,delta"
	check_identical "$what: pgbench_tellers identical on the 3 nodes" pgbench_tellers "tid,bid,tbalance"
	check_eq "$what: bank invariants hold on every node" "$(same3 t)" "$(per_node bank_ok)"
}
recover() { # PORT K WHAT
	local rc
	check "$3: RECOVER NODE $2 accepted" admin "$1" "RECOVER NODE $2"
	wait_until 90 recovery_done "$1"
	recovery_done "$1"
	rc=$?
	check_eq "$3: the recovery of node $2 is done" 0 "$rc" || diag "$(admin "$1" 'SHOW RECOVERY' 2>&1)"
}

# ---- A ------------------------------------------------------------------------

chorus_start
b_start
check "A: ta sees tb alive (SHOW PEERS)" wait_until 5 peer_is "$A_PORT" alive
check "A: tb sees ta alive (SHOW PEERS)" wait_until 5 peer_is "$B_PORT" alive
check_eq "A: ta knows tb's name" tb "$(peer_col "$A_PORT" 1)"
check_eq "A: tb knows ta's name" ta "$(peer_col "$B_PORT" 1)"
check_fail "A: no heartbeat rejected (same secret)" grep -q 'hmac' "$CHORUS_LOG" "$B_LOG"
out=$(with_timeout 10 "$TOP/pgchorusctl" -s "$TEST_TMP/ta.ctl" peers 2>&1)
check_eq "A: pgchorusctl peers: exit 0" 0 "$?"
check_match "A: pgchorusctl peers lists tb alive" 'tb +\| 127\.0\.0\.1 +\| +[0-9]+ \| alive' "$out"
out=$(curl -s "http://127.0.0.1:$A_METRICS/metrics")
check_match "A: metrics: pgchorus_peer_up of tb is 1" "pgchorus_peer_up\\{peer=\"127.0.0.1:$B_HB\",name=\"tb\"\\} 1" "$out"

with_timeout 60 pgbench -i -s 1 -q -h 127.0.0.1 -p "$A_PORT" postgres >"$TEST_TMP/init.log" 2>&1 ||
	bail "pgbench -i through ta"
check "A: a table through tb" sql_on "$B_PORT" "create table hbmark (id int primary key)"

# ---- B ------------------------------------------------------------------------

t0=$(date +%s%N)
check "B: DETACH NODE 2 through ta" admin "$A_PORT" 'DETACH NODE 2'
check "B: tb shows node 2 detached" wait_until 3 node_is "$B_PORT" 2 detached
diag "B: tb saw the detach after $(((($(date +%s%N) - t0) / 1000000))) ms (polled)"
check "B: a write through tb" sql_on "$B_PORT" "insert into hbmark values (1)"
check_eq "B: it reached nodes 0 and 1, not the detached node 2" "1|1|0" "$(per_node q 'select count(*) from hbmark')"

start_pgbench_db ba postgres -c 4 -j 2 -T 10
CHORUS_PORT=$B_PORT start_pgbench_db bb postgres -c 4 -j 2 -T 10
sleep 2
recover "$A_PORT" 2 "B (pgbench through both)"
check "B: tb shows node 2 up" wait_until 5 node_is "$B_PORT" 2 up
finish_pgbench ba "B: pgbench tpcb through ta during the recovery"
finish_pgbench bb "B: pgbench tpcb through tb during the recovery"
diag "B: $(grep -o 'recovery of node 2 done: .*' "$CHORUS_LOG" | tail -n 1)"
check "B: tb paused its writes at ta's request" grep -q 'peer ta: writes paused at its request' "$B_LOG"
# SHOW STATS in replication mode: database postgres, node 0 (the primary) answered transactions
row=$(admin "$A_PORT" 'SHOW STATS' | awk -F'|' '$1 == "postgres" && $2 == 0')
check_match "B: SHOW STATS of ta: postgres on node 0 with transactions, queries, avg and p99 times" \
	'^postgres\|0\|[1-9][0-9]*\|[1-9][0-9]*\|[0-9]+\|[0-9]+\|[0-9.]+\|[0-9.]+$' "$row"
all_same "B"
check_eq "B: hbmark on every node after the recovery" "1|1|1" "$(per_node q 'select count(*) from hbmark')"

# ---- C ------------------------------------------------------------------------

check "C: DETACH NODE 1 GRACEFUL through tb" admin "$B_PORT" 'DETACH NODE 1 GRACEFUL'
check "C: tb shows node 1 detached" wait_until 5 node_is "$B_PORT" 1 detached
check "C: ta shows node 1 detached" wait_until 3 node_is "$A_PORT" 1 detached
check "C: ATTACH NODE 1 through ta (nobody wrote)" admin "$A_PORT" 'ATTACH NODE 1'
check "C: ta shows node 1 up" wait_until 5 node_is "$A_PORT" 1 up
check "C: tb shows node 1 up" wait_until 3 node_is "$B_PORT" 1 up
check "C: DETACH NODE 1 through ta" admin "$A_PORT" 'DETACH NODE 1'
check "C: tb shows node 1 detached again" wait_until 3 node_is "$B_PORT" 1 detached
check "C: a write through tb only" sql_on "$B_PORT" "insert into hbmark values (2)"
sleep 1
check "C: ATTACH NODE 1 through ta is accepted (ta wrote nothing)" admin "$A_PORT" 'ATTACH NODE 1'
check "C: ta logs the refusal: the peer wrote" wait_until 5 grep -q 'attach of node 1 failed.*missed writes' "$CHORUS_LOG"
check "C: node 1 stays detached on ta" node_is "$A_PORT" 1 detached
recover "$A_PORT" 1 "C"
check "C: tb shows node 1 up after the recovery" wait_until 5 node_is "$B_PORT" 1 up
check_eq "C: hbmark identical" "2|2|2" "$(per_node q 'select count(*) from hbmark')"

# ---- D ------------------------------------------------------------------------

A_BOOT=$(peer_col "$B_PORT" 6)
check_match "D: tb knows ta's boot number" '^[0-9]+$' "$A_BOOT"
G1="pgc_ta_${A_BOOT}_900001"
G2="pgc_ta_${A_BOOT}_900002"
for k in 0 1 2; do
	node_sql "$k" "begin; insert into hbmark values (900001); insert into pgchorus.decisions (gid) values ('$G1'); prepare transaction '$G1';" >/dev/null ||
		bail "prepare $G1 on node $k"
	node_sql "$k" "begin; insert into hbmark values (900002); insert into pgchorus.decisions (gid) values ('$G2'); prepare transaction '$G2';" >/dev/null ||
		bail "prepare $G2 on node $k"
done
node_sql 0 "commit prepared '$G1'" >/dev/null || bail "commit prepared $G1 on node 0"
check_eq "D: two in-doubt transactions of ta before the crash (one already committed on node 0)" "1|2|2" \
	"$(per_node q "select count(*) from pg_prepared_xacts where gid like 'pgc_ta_%'")"

start_pgbench_db da postgres -c 4 -j 2 -T 8
CHORUS_PORT=$B_PORT start_pgbench_db db postgres -c 4 -j 2 -T 10
sleep 3
: >"$ESC"
t0=$(date +%s%N)
chorus_kill9
check "D: tb runs escalation_command for ta" wait_until 6 grep -q "^tb up ta 127.0.0.1 $A_HB $VIP_A\$" "$ESC"
diag "D: escalation after $(((($(date +%s%N) - t0) / 1000000))) ms (deadtime 2 s)"
check "D: tb shows ta dead" peer_is "$B_PORT" dead
check_eq "D: SHOW PEERS of tb: escalated" t "$(peer_col "$B_PORT" 7)"
wait "$PGBENCH_PID_da" 2>/dev/null # its clients lost their proxy: not checked
finish_pgbench db "D: pgbench tpcb through tb while ta crashes"
check "D: ta's prepared transactions resolved by tb" wait_until 15 _no_prepared_anywhere
check_eq "D: the transaction committed on a node is committed everywhere" "1|1|1" \
	"$(per_node q 'select count(*) from hbmark where id = 900001')"
check_eq "D: the one never committed is rolled back everywhere" "0|0|0" \
	"$(per_node q 'select count(*) from hbmark where id = 900002')"
check "D: tb's log names the dead peer's run" grep -q 'dead peer ta run' "$B_LOG"
all_same "D"

# ---- E ------------------------------------------------------------------------

: >"$ESC"
chorus_start
check "E: tb runs de_escalation_command when ta is back" wait_until 5 grep -q "^tb down ta 127.0.0.1 $A_HB $VIP_A\$" "$ESC"
check "E: tb shows ta alive" wait_until 3 peer_is "$B_PORT" alive
check_eq "E: the node states agree" "$(admin "$A_PORT" 'SHOW NODES' | cut -d'|' -f1,4)" \
	"$(admin "$B_PORT" 'SHOW NODES' | cut -d'|' -f1,4)"
run_pgbench "E: pgbench through ta after its restart" -c 2 -T 2
all_same "E"

# E2: ta dies while it recovers a node: tb puts the node down (not "recovering" for good)
check "E2: DETACH NODE 2 through ta" admin "$A_PORT" 'DETACH NODE 2'
check "E2: RECOVER NODE 2 through ta" admin "$A_PORT" 'RECOVER NODE 2'
check "E2: tb shows node 2 recovering" wait_until 3 node_is "$B_PORT" 2 recovering
chorus_kill9
check "E2: tb puts node 2 down once ta is dead" wait_until 6 node_is "$B_PORT" 2 down
check "E2: tb's log says why" grep -q 'node 2: recovering -> down: recovery abandoned: peer ta died' "$B_LOG"
# what the killed recovery left running: its pg_basebackup, a standby it started
pkill -f pg_basebackup 2>/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$(node_dir 2)" -m immediate -w stop >/dev/null 2>&1
recover "$B_PORT" 2 "E2 (through tb)"
check "E2: tb shows node 2 up" wait_until 5 node_is "$B_PORT" 2 up
chorus_start
check "E2: ta, restarted, shows node 2 up (the peer's newer generation)" wait_until 5 node_is "$A_PORT" 2 up
run_pgbench "E2: pgbench through ta" -c 2 -T 2
all_same "E2"

# ---- F ------------------------------------------------------------------------

: >"$ESC"
kill -TERM "$B_PID"
for ((i = 0; i < 200; i++)); do pid_alive "$B_PID" || break; sleep 0.1; done
wait "$B_PID"
check_eq "F: tb exits with status 0 after SIGTERM" 0 "$?"
t0=$(date +%s%N)
check "F: ta escalates for tb" wait_until 5 grep -q "^ta up tb 127.0.0.1 $B_HB $VIP_B\$" "$ESC"
ms=$(((($(date +%s%N) - t0) / 1000000)))
diag "F: escalation ${ms} ms after tb's exit"
check "F: before the deadtime (tb said it was leaving)" grep -q 'peer tb.*is dead: it is stopping' "$CHORUS_LOG"
if [ -n "$NS" ]; then
	check "F: scripts/hooks/escalation.sh put tb's address on ta's side" ns_has "$VIP_B"
else
	diag "F: no network namespace here: the sample scripts were not run"
fi
if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$B_LOG"; then
	not_ok "no sanitizer report in tb's output"
	grep -E -A 15 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$B_LOG" | head -n 40 | sed 's/^/#   /'
fi

# ---- G ------------------------------------------------------------------------

$PY - "$B_HB" "$A_HB" <<'PY' || bail "send a forged heartbeat"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
msg = "PGCHORUS-HB 1\ninstance tb\nboot 99999999999999999\nseq 1\npause 0\nprimary -1 0\nnodes 3\n" \
      "node 0 detached 999 0\nnode 1 detached 999 0\nnode 2 up 999 0\nhmac " + "0" * 64 + "\n"
s.sendto(msg.encode(), ("127.0.0.1", int(sys.argv[2])))
PY
check "G: the forged heartbeat is rejected (wrong hmac)" wait_until 3 grep -q 'wrong hmac' "$CHORUS_LOG"
check "G: node 0 stays up on ta" node_is "$A_PORT" 0 up

chorus_stop TERM 20
check "ta's shutdown runs de_escalation_command for tb" grep -q "^ta down tb 127.0.0.1 $B_HB $VIP_B\$" "$ESC"
if [ -n "$NS" ]; then
	check_fail "scripts/hooks/de_escalation.sh gave tb's address back" ns_has "$VIP_B"
fi
