#!/usr/bin/env bash
# 31_pipeline: pipeline_depth = 8 on a pool of 2 server connections: pgbench
# -S in the simple, extended and prepared protocols and tpcb-like run with 0
# failures and balances that add up; psycopg clients each get their own
# answers, failing statements and clients that leave mid-statement disturb
# nobody, autocommit INSERTs never end up in another client's rolled-back
# transaction block, short statements are not queued behind pg_sleep(3),
# server connections killed on the node under queued statements cost their
# clients an error at most, and pgchorus_pipelined_total counts the queued
# statements.  One worker:
# with two, each owns one of the two servers, and a worker's waiting clients
# cannot use the other worker's busy server (configuration.md, pool_size).
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 1
pgbench -i -s 2 -q -h 127.0.0.1 -p "$NODE0_PORT" postgres >"$TEST_TMP/pgbench-init.log" 2>&1 ||
	{
		diag_file "$TEST_TMP/pgbench-init.log"
		bail "pgbench -i -s 2 on node 0"
	}

MPORT=$("$CLUSTER_SH" freeport 1) || bail "no free port for metrics"
chorus_conf 'workers = 1;' 'pool_mode = "transaction";' 'pool_size = 2;' 'pipeline_depth = 8;' "metrics_port = $MPORT;"
chorus_start

pipelined() { chorus_metric "$MPORT" pgchorus_pipelined_total; }

p0=$(pipelined)
for m in simple extended prepared; do
	run_pgbench "pool of 2, pipeline_depth 8, -M $m -S, 16 clients" -M "$m" -S -c 16 -j 2 -T 3
done
p1=$(pipelined)
check "select-only statements were queued on busy servers (pgchorus_pipelined_total ${p0:-?} -> ${p1:-?})" \
	test "${p1:-0}" -gt "${p0:-0}"

run_pgbench "pool of 2, pipeline_depth 8, tpcb-like -M extended, 8 clients" -M extended -c 8 -j 2 -T 3
sums=$(node_sql 0 "select (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history)
	and (select sum(bbalance) from pgbench_branches) = (select sum(delta) from pgbench_history)
	and (select sum(tbalance) from pgbench_tellers) = (select sum(delta) from pgbench_history)")
check_eq "tpcb-like balances add up (accounts, branches, tellers = history)" "t" "$sums"

with_timeout 180 "$PY" "$(dirname "$0")/py/pipeline_checks.py" "$(chorus_dsn postgres)" "$(node_dsn 0)" \
	"http://127.0.0.1:$MPORT/metrics" 2>"$TEST_TMP/py.err"
rc=$?
[ "$rc" -eq 0 ] || diag_file "$TEST_TMP/py.err"
check_eq "psycopg pipeline checks finished with status 0" "0" "$rc"

check_eq "pgchorus serves after the checks" "1" "$(chorus_sql 'select 1')"
chorus_stop TERM

# The deepest queue on one server connection reached over the node's unix
# socket: 32 clients' statements in flight on one backend (the queued ones
# go out corked, one write per turn of the loop).
chorus_conf 'workers = 1;' 'pool_mode = "transaction";' 'pool_size = 1;' 'pipeline_depth = 32;' \
	"metrics_port = $MPORT;" "nodes = ( { host = \"$SOCKDIR\"; port = $NODE0_PORT; } );"
chorus_start
p0=$(pipelined)
run_pgbench "pool of 1 over the unix socket, pipeline_depth 32, -M prepared -S, 32 clients" -M prepared -S -c 32 -j 2 -T 3
p1=$(pipelined)
n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$TEST_TMP/pgbench.out")
# A client's prepared statement must count as one that may be queued: with
# one server for 32 clients nearly every statement is.
check "most -M prepared statements were queued behind another client's (${p0:-?} -> ${p1:-?} of ${n:-?})" \
	test $(( (${p1:-0} - ${p0:-0}) * 2 )) -ge "${n:-1}"
run_pgbench "pool of 1 over the unix socket, pipeline_depth 32, tpcb-like -M prepared, 16 clients" -M prepared -c 16 -j 2 -T 3
sums=$(node_sql 0 "select (select sum(abalance) from pgbench_accounts) = (select sum(delta) from pgbench_history)
	and (select sum(bbalance) from pgbench_branches) = (select sum(delta) from pgbench_history)
	and (select sum(tbalance) from pgbench_tellers) = (select sum(delta) from pgbench_history)")
check_eq "tpcb-like balances still add up" "t" "$sums"
check_eq "one server connection was used" "1" \
	"$(node_sql 0 "select count(*) from pg_stat_activity where backend_type = 'client backend' and application_name <> 'psql' and client_addr is null and pid <> pg_backend_pid()")"
chorus_stop TERM
