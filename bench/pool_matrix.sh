#!/usr/bin/env bash
# bench/pool_matrix.sh - bench/pool.sh at several client counts and with a
# connection per transaction, then one table of every run.
#
# Usage:  bench/pool_matrix.sh
#         CLIENT_COUNTS="1 32" DURATION=5 bench/pool_matrix.sh
#
# Environment: CLIENT_COUNTS (default "1 32 256"), CONNECT_CLIENTS (the
# clients of the pgbench -C run, default 32; "" = no -C run), and everything
# bench/pool.sh reads (DURATION, TARGETS, PROTOCOLS, PGCHORUS...).  JOBS is
# lowered to the client count when it is larger.
#
# Output: each run's own report and files (bench/results/pool-c<N>[-C]-<stamp>.*),
# then a table: one line per run, pgbench TPS of each target and protocol,
# pgchorus / pgbouncer and pgchorus / direct, and pgchorus' CPU seconds per
# 10,000 transactions next to pgbouncer's.
{
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
export RESULTS_DIR
CLIENT_COUNTS=${CLIENT_COUNTS:-"1 32 256"}
CONNECT_CLIENTS=${CONNECT_CLIENTS-32}
JOBS_WANTED=${JOBS:-2}
csvs=()

run() { # CLIENTS CONNECT
	local before after jobs=$JOBS_WANTED
	[ "$1" -lt "$jobs" ] && jobs=$1
	before=$(ls "$RESULTS_DIR"/pool-c"$1"*.csv 2>/dev/null | sort | tail -n 1)
	CLIENTS=$1 JOBS=$jobs CONNECT=$2 "$HERE/pool.sh" || echo "pool.sh failed (CLIENTS=$1 CONNECT=$2)" >&2
	if [ "$2" = 1 ]; then
		after=$(ls "$RESULTS_DIR"/pool-c"$1"-C-*.csv 2>/dev/null | sort | tail -n 1)
	else
		after=$(ls "$RESULTS_DIR"/pool-c"$1"-[0-9]*.csv 2>/dev/null | sort | tail -n 1)
	fi
	[ -n "$after" ] && [ "$after" != "$before" ] && csvs+=("$after")
}

for c in $CLIENT_COUNTS; do
	run "$c" 0
done
[ -n "$CONNECT_CLIENTS" ] && run "$CONNECT_CLIENTS" 1

echo
echo "== all runs: TPS (pgchorus / pgbouncer, pgchorus / direct; CPU s per 10k transactions pgchorus / pgbouncer) =="
printf '%-14s %-9s %10s %10s %10s %10s %8s %8s %13s\n' run protocol direct pgbouncer pgpool pgchorus "x pgb" "x direct" "cpu/10k c/b"
for f in "${csvs[@]}"; do
	name=$(basename "$f" .csv)
	run_name=${name%-*}
	run_name=${run_name%-*}
	run_name=${run_name#pool-}
	# date,target,protocol,clients,jobs,duration_s,scale,tps,...,cpu_s_per_10k_tx(16)
	awk -F, -v run="$run_name" '
		NR > 1 { tps[$2 "," $3] = $8; cpu[$2 "," $3] = $16; if (!($3 in seen)) { seen[$3] = 1; order[n++] = $3 } }
		function v(t, p) { return ((t "," p) in tps) ? tps[t "," p] : "n/a" }
		function r(a, b) { return (a + 0 > 0 && b + 0 > 0) ? sprintf("%.2f", a / b) : "-" }
		END {
			for (i = 0; i < n; i++) {
				p = order[i]
				printf "%-14s %-9s %10.0f %10s %10s %10.0f %8s %8s %6s/%-6s\n", run, p, v("direct", p),
					v("pgbouncer", p) == "n/a" ? "n/a" : sprintf("%.0f", v("pgbouncer", p)),
					v("pgpool", p) == "n/a" ? "n/a" : sprintf("%.0f", v("pgpool", p)), v("pgchorus", p),
					r(v("pgchorus", p), v("pgbouncer", p)), r(v("pgchorus", p), v("direct", p)),
					cpu["pgchorus," p], cpu["pgbouncer," p]
			}
		}' "$f"
done
}
