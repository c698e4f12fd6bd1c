#!/usr/bin/env bash
# 59_replication_crash: mode = "replication" in front of three nodes, pgbench
# tpcb-like through pgchorus, and pgchorus killed with SIGKILL at a random
# instant, ten times, then six more times as soon as a prepared pgc_
# transaction was seen on a node (the window the resolver exists for).  After each restart the resolver must leave no prepared
# pgc_ transaction on any node within 15 s; at the end the nodes must be
# identical, the bank invariants hold on every node, and pgbench runs cleanly.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_repl.sh
. "$(dirname "$0")/lib_repl.sh"

START=$SECONDS
ROUNDS=${ROUNDS:-10}
TARGETED=${TARGETED:-6}

# how many prepared transactions (gid LIKE PATTERN) all nodes hold together
count_prepared() {
	local k n total=0
	for ((k = 0; k < NODE_COUNT; k++)); do
		n=$(node_sql "$k" "select count(*) from pg_prepared_xacts where gid like '$1'") || return 1
		total=$((total + n))
	done
	echo "$total"
}

none_prepared() {
	[ "$(count_prepared "$1")" = 0 ]
}

cluster_up 3
chorus_conf 'mode = "replication";' 'pool_mode = "session";' 'pool_size = 20;' 'instance_name = "t59";' \
	'load_balance = "statement";' 'on_mismatch = "detach_minority";' 'resolver_period = 1;' 'resolver_grace = 2;'
chorus_start

if with_timeout 60 pgbench -i -s 1 -q -h 127.0.0.1 -p "$CHORUS_PORT" postgres >"$TEST_TMP/pgbench-init.log" 2>&1; then
	ok "pgbench -i -s 1 through pgchorus"
else
	diag_file "$TEST_TMP/pgbench-init.log"
	bail "pgbench -i -s 1 through pgchorus"
fi
check_eq "pgbench_accounts has 100000 rows on every node" "$(same3 100000)" \
	"$(per_node q 'select count(*) from pgbench_accounts')"

modes=(simple extended prepared)
left_total=0
rounds_left=0
for ((round = 1; round <= ROUNDS + TARGETED; round++)); do
	mode=${modes[$((round % 3))]}
	with_timeout 40 pgbench -n -h 127.0.0.1 -p "$CHORUS_PORT" -M "$mode" -c 8 -j 2 -T 30 postgres \
		>"$TEST_TMP/pgbench-$round.out" 2>&1 &
	pb=$!
	bg_track "$pb"
	pause=$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.3 + 1.7 * r / 32767 }')
	sleep "$pause"
	how="killed after ${pause}s"
	if [ "$round" -gt "$ROUNDS" ]; then
		# kill as soon as a node shows a prepared pgc_ transaction (3 s at most)
		how+=" + $(with_timeout 10 "$PY" - "$CHORUS_PID" "$(node_dsn 1)" "$(node_dsn 2)" "$(node_dsn 0)" 2>&1 <<'PYEOF'
import os, signal, sys, time
import psycopg

pid = int(sys.argv[1])
conns = [psycopg.connect(d, autocommit=True) for d in sys.argv[2:]]
deadline = time.monotonic() + 3
polls = 0
while time.monotonic() < deadline:
    for c in conns:
        polls += 1
        if c.execute(r"select count(*) from pg_prepared_xacts where gid like 'pgc\_%'").fetchone()[0]:
            os.kill(pid, signal.SIGKILL)
            print(f"killed when a prepared pgc_ transaction was seen (poll {polls})")
            sys.exit(0)
os.kill(pid, signal.SIGKILL)
print(f"no prepared pgc_ transaction seen in {polls} polls")
PYEOF
)"
	fi
	chorus_kill9
	left=$(count_prepared 'pgc\_%')
	left_total=$((left_total + ${left:-0}))
	[ "${left:-0}" -gt 0 ] && rounds_left=$((rounds_left + 1))
	# pgbench loses its connections; give it 10 s to notice
	for ((i = 0; i < 100; i++)); do
		pid_alive "$pb" || break
		sleep 0.1
	done
	kill "$pb" 2>/dev/null
	wait "$pb" 2>/dev/null
	committed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TEST_TMP/pgbench-$round.out")
	diag "round $round: -M $mode, $how, $left prepared pgc_ transactions on the nodes, pgbench processed '${committed:-?}'"
	chorus_start
	t0=$SECONDS
	if wait_until 15 none_prepared 'pgc\_%'; then
		ok "round $round: within 15 s of the restart no pgc_ prepared transaction is left (took $((SECONDS - t0)) s)"
	else
		diag "prepared: $(per_node prepared_list)"
		# they hold their locks: the next rounds and the final checks would only hang
		bail "round $round: within 15 s of the restart no pgc_ prepared transaction is left (remaining rounds skipped)"
	fi
done
diag "$rounds_left of $((ROUNDS + TARGETED)) crashes left prepared pgc_ transactions ($left_total in all)"

# pgchorus works normally after the crashes (no lock or transaction left behind)
out=$TEST_TMP/pgbench-final.out
with_timeout 40 pgbench -n -h 127.0.0.1 -p "$CHORUS_PORT" -M prepared -c 8 -j 2 -T 3 postgres >"$out" 2>&1
rc=$?
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
if [ "$rc" -eq 0 ] && [ "${processed:-0}" -gt 0 ] && [ "$failed" = 0 ]; then
	ok "after the crashes pgbench tpcb-like runs: $processed transactions, 0 failed"
else
	not_ok "after the crashes pgbench tpcb-like runs (exit $rc, processed '${processed:-}', failed '${failed:-}')"
	grep -v '^progress' "$out" | tail -n 25 | sed 's/^/#   /'
fi

if wait_until 15 none_prepared '%'; then
	ok "no prepared transaction on any node at the end"
else
	not_ok "no prepared transaction on any node at the end"
	diag "prepared: $(per_node prepared_list)"
fi
check_identical "pgbench_accounts is identical on every node" pgbench_accounts 'aid, bid, abalance, filler'
check_identical "pgbench_branches is identical on every node" pgbench_branches 'bid, bbalance, filler'
check_identical "pgbench_tellers is identical on every node" pgbench_tellers 'tid, bid, tbalance, filler'
# mtime is CURRENT_TIMESTAMP: pgchorus gives every node the same value
check_identical "pgbench_history is identical on every node (mtime included)" pgbench_history 'tid, bid, aid, delta, mtime'
hist=$(per_node q 'select count(*) from pgbench_history')
check_match "pgbench_history has as many rows on every node" '^([1-9][0-9]*)\|\1\|\1$' "$hist" || diag "counts: $hist"
check_eq "bank invariant sum(abalance) = sum(delta) = sum(bbalance) = sum(tbalance) on every node" \
	"$(same3 t)" "$(per_node bank_ok)" || diag "sums: $(per_node sums)"
dec=$(per_node q "select count(*) from pgchorus.decisions where gid like 'pgc\_t59\_%'")
check_match "decision rows of pgc_t59_...: as many on every node" '^([1-9][0-9]*)\|\1\|\1$' "$dec" || diag "counts: $dec"

chorus_stop TERM
diag "test time: $((SECONDS - START)) s"
