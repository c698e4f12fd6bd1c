#!/usr/bin/env bash
# 75_metrics: Prometheus metrics on metrics_port (replication mode, three
# nodes): per-node series for state, primary and health-check latency,
# counters that move with the traffic (units, two-phase commits, errors by
# SQLSTATE class, statements per node), the latency histogram, a node
# detached through the admin console showing as down, 404 elsewhere; the
# resolver's counts of in-doubt transactions committed and rolled back move
# when prepared transactions of a dead boot are left on the nodes; the pool
# series (servers by state, waits, wait time, transactions and queries per
# node) after a pgbench run with more clients than pool_size in pool mode.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_repl.sh
. "$(dirname "$0")/lib_repl.sh"

cluster_up 3
MPORT=$("$CLUSTER_SH" freeport 1) || bail "no free port for metrics"
chorus_conf 'mode = "replication";' 'pool_mode = "session";' "metrics_port = $MPORT;" \
	'instance_name = "t75";' 'resolver_period = 1;' \
	'health_check = { period = 0.5; timeout = 2; };' "state_file = \"$TEST_TMP/pgchorus.state\";"
chorus_start

# get PATH: the body of GET PATH (HTTP status in $TEST_TMP/status)
get() {
	"$PY" - "$MPORT" "$1" "$TEST_TMP/status" <<'PYEOF'
import sys, urllib.request, urllib.error
port, path, status = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    r = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
    code, body = r.status, r.read().decode()
    ctype = r.headers.get("Content-Type", "")
except urllib.error.HTTPError as e:
    code, body, ctype = e.code, e.read().decode(), e.headers.get("Content-Type", "")
open(status, "w").write(f"{code} {ctype}\n")
sys.stdout.write(body)
PYEOF
}

# metric NAME-WITH-LABELS: its value in a fresh scrape
metric() {
	get /metrics | awk -v m="$1" '$1 == m { print $2 }'
}

chorus_sql 'create table m (id int primary key, v text)' >/dev/null
for i in 1 2 3 4 5; do
	chorus_sql "insert into m values ($i, 'x')" >/dev/null
done
chorus_sql 'select count(*) from m' >/dev/null
chorus_sql 'select * from no_such_table' >/dev/null 2>&1

body=$(get /metrics)
check_match "GET /metrics answers 200 with the Prometheus text format" '^200 text/plain; version=0.0.4' \
	"$(cat "$TEST_TMP/status")"
for k in 0 1 2; do
	check_eq "pgchorus_node_up for node $k is 1" 1 \
		"$(printf '%s\n' "$body" | awk -v m="pgchorus_node_up{node=\"$k\",host=\"127.0.0.1\",port=\"$(node_port "$k")\"}" '$1 == m { print $2 }')"
done
check_eq "node 0 is the primary" 1 "$(metric 'pgchorus_node_primary{node="0"}')"
has_health() {
	[ -n "$(metric "pgchorus_health_check_seconds{node=\"$1\"}")" ]
}
check "a health-check latency for node 2" wait_until 5 has_health 2
check "5 inserts counted as 2PC commits (>= 5)" test "$(metric pgchorus_2pc_commits_total)" -ge 5
check "the unknown table counted in class 42" test "$(metric 'pgchorus_errors_total{class="42"}')" -ge 1
check "statements sent to node 2 are counted" test "$(metric 'pgchorus_node_statements_total{node="2"}')" -ge 5
check "the unit latency histogram has counts" test "$(metric pgchorus_unit_seconds_count)" -ge 7
check_match "HELP and TYPE lines" '# TYPE pgchorus_unit_seconds histogram' "$body"

# ---- the resolver's counts --------------------------------------------------------------
# Two prepared transactions of a pgchorus of instance t75 that died (boot 1):
# pgc_t75_1_1 committed on node 0 (its decision row visible there), prepared
# on node 1: the resolver commits it; pgc_t75_1_2 prepared on node 1 only,
# without a decision anywhere: the resolver rolls it back.
res_c0=$(metric 'pgchorus_2pc_resolved_total{outcome="committed"}')
res_r0=$(metric 'pgchorus_2pc_resolved_total{outcome="rolled_back"}')
for k in 0 1; do
	printf '%s\n' 'BEGIN;' \
		"INSERT INTO pgchorus.decisions (gid, decided_at) VALUES ('pgc_t75_1_1', clock_timestamp());" \
		"PREPARE TRANSACTION 'pgc_t75_1_1';" | node_psql "$k" -qAt >/dev/null ||
		not_ok "prepare pgc_t75_1_1 on node $k"
done
node_sql 0 "COMMIT PREPARED 'pgc_t75_1_1'" >/dev/null || not_ok "commit pgc_t75_1_1 on node 0"
printf '%s\n' 'BEGIN;' "INSERT INTO m VALUES (75, 'in doubt');" "PREPARE TRANSACTION 'pgc_t75_1_2';" |
	node_psql 1 -qAt >/dev/null || not_ok "prepare pgc_t75_1_2 on node 1"
resolved() {
	[ "$(metric 'pgchorus_2pc_resolved_total{outcome="committed"}')" -ge $((res_c0 + 1)) ] &&
		[ "$(metric 'pgchorus_2pc_resolved_total{outcome="rolled_back"}')" -ge $((res_r0 + 1)) ]
}
check "in-doubt transactions: committed and rolled_back counts move (from $res_c0 and $res_r0)" wait_until 20 resolved ||
	diag "$(grep -E 'resolver|twopc' "$CHORUS_LOG" | tail -n 5)"
check_eq "... and node 1 has no prepared transaction left" 0 "$(node_sql 1 'select count(*) from pg_prepared_xacts')"

psql -X -h 127.0.0.1 -p "$CHORUS_PORT" -U postgres -d pgchorus -qAt -c 'DETACH NODE 2' >/dev/null 2>&1
check_eq "after DETACH NODE 2: pgchorus_node_up for node 2 is 0" 0 \
	"$(get /metrics | awk '$1 ~ /^pgchorus_node_up\{node="2"/ { print $2 }')"
check_eq "... and its state series says detached" 1 "$(metric 'pgchorus_node_state{node="2",state="detached"}')"

get /other >/dev/null
check_match "another path answers 404" '^404' "$(cat "$TEST_TMP/status")"

chorus_stop

# ---- pool series: more clients than pool_size -------------------------------------------------
pgbench -i -s 1 -q -h 127.0.0.1 -p "$NODE0_PORT" postgres >"$TEST_TMP/pgbench-init.log" 2>&1 ||
	diag_file "$TEST_TMP/pgbench-init.log"
chorus_conf 'mode = "pool";' 'pool_mode = "transaction";' 'pool_size = 2;' 'workers = 1;' \
	"metrics_port = $MPORT;" "state_file = \"$TEST_TMP/pool.state\";"
chorus_start
run_pgbench "pool mode: 8 clients on pool_size 2" -c 8 -j 2 -t 100
body=$(get /metrics)
val() {
	awk -v m="$1" '$1 == m { print $2 }' <<<"$body"
}
check "pool waits counted for node 0 ($(val 'pgchorus_pool_waits_total{node="0"}'))" \
	test "$(val 'pgchorus_pool_waits_total{node="0"}')" -ge 1
check_match "wait time counted for node 0" '^[0-9]*\.[0-9]*[1-9][0-9]*$' "$(val 'pgchorus_pool_wait_seconds_total{node="0"}')"
check "transactions per node: node 0 got the 800 of pgbench" \
	test "$(val 'pgchorus_node_transactions_total{node="0"}')" -ge 800
check "queries per node: node 0" test "$(val 'pgchorus_node_queries_total{node="0"}')" -ge 800
server_gauges() {
	body=$(get /metrics)
	[ "$(val 'pgchorus_pool_servers{node="0",state="idle"}')" -ge 1 ] &&
		[ "$(val 'pgchorus_pool_clients_waiting{node="0"}')" = 0 ]
}
check "pool gauges: node 0's idle servers, nobody waiting (updated within a second)" wait_until 5 server_gauges
check_match "pool gauges: TYPE gauge" '# TYPE pgchorus_pool_servers gauge' "$body"
check_match "pool gauges: at most pool_size servers" 'pgchorus_pool_servers\{node="0",state="idle"\} [12]$' "$body"
