#!/usr/bin/env bash
# 30_pgbench: pgbench through pgchorus in transaction pooling (16 clients on a
# pool of 4) with the simple, extended and prepared protocols, connect per
# transaction, and session pooling: every run processes transactions and has
# no failed ones; the pool never opens more than pool_size server connections;
# the tpcb-like balances add up afterwards.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 2
pgbench -i -s 2 -q -h 127.0.0.1 -p "$NODE0_PORT" postgres >"$TEST_TMP/pgbench-init.log" 2>&1 ||
	{
		diag_file "$TEST_TMP/pgbench-init.log"
		bail "pgbench -i -s 2 on node 0"
	}

chorus_conf 'pool_mode = "transaction";' 'pool_size = 4;'
chorus_start

# Highest number of client backends on node 0 seen while a command runs.
max_backends=0
sample_backends() {
	local n
	while sleep 0.3; do
		# pgchorus' own health checks and an earlier sample's psql still exiting are not pooled servers
		n=$(node_sql 0 "select count(*) from pg_stat_activity where backend_type = 'client backend' and datname = 'postgres' and pid <> pg_backend_pid() and application_name not in ('pgchorus_health', 'psql')" 2>/dev/null) || continue
		echo "$n"
	done
}

sample_backends >"$TEST_TMP/backends.txt" &
sampler=$!
bg_track "$sampler"
run_pgbench "transaction pool, -M simple -S" -M simple -S -c 16 -j 2 -T 5
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
max_backends=$(sort -n "$TEST_TMP/backends.txt" | tail -n 1)
if [ -n "$max_backends" ] && [ "$max_backends" -ge 1 ] && [ "$max_backends" -le 4 ]; then
	ok "16 clients used at most pool_size = 4 server connections (max seen: $max_backends)"
else
	not_ok "16 clients used at most pool_size = 4 server connections (max seen: '${max_backends:-none}')"
fi

run_pgbench "transaction pool, -M extended -S" -M extended -S -c 16 -j 2 -T 5
run_pgbench "transaction pool, -M prepared -S" -M prepared -S -c 16 -j 2 -T 5
run_pgbench "transaction pool, -M prepared tpcb-like" -M prepared -c 16 -j 2 -T 5
run_pgbench "transaction pool, -M extended -C (connect per transaction)" -M extended -C -c 8 -j 2 -T 3

# Every tpcb-like transaction applied all of its writes exactly once.
sums=$(node_sql 0 "select (select sum(abalance) from pgbench_accounts) = (select coalesce(sum(delta), 0) from pgbench_history)
	and (select sum(tbalance) from pgbench_tellers) = (select coalesce(sum(delta), 0) from pgbench_history)
	and (select sum(bbalance) from pgbench_branches) = (select coalesce(sum(delta), 0) from pgbench_history)
	and (select count(*) from pgbench_history) > 0")
check_eq "tpcb-like balances equal the history's deltas on node 0" "t" "$sums"
check_eq "node 1 got no pgbench data" "" "$(node_sql 1 "select to_regclass('pgbench_history')")"

chorus_stop TERM

chorus_conf 'pool_mode = "session";' 'pool_size = 20;'
chorus_start
run_pgbench "session pool, -M prepared -S" -M prepared -S -c 16 -j 2 -T 5
run_pgbench "session pool, -M prepared tpcb-like" -M prepared -c 4 -j 2 -T 3
chorus_stop TERM
