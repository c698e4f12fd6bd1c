#!/usr/bin/env bash
# bench/workers.sh - does pgchorus's own throughput grow with `workers`?
# pgbench sends "SHOW VERSION" to pgchorus's admin console (database
# pgchorus), which the worker owning the client answers itself: no
# PostgreSQL work, so the proxy's event loops are what is measured.  One run
# per value of WORKERS_LIST, simple and extended protocols.
#
# Usage:  bench/workers.sh                 (as root or as a user that can run PG)
#         WORKERS_LIST="1 2 4" DURATION=5 bench/workers.sh
#
# Environment (all optional):
#   WORKERS_LIST  values of `workers` to run        (1 .. number of CPUs, at least "1 2")
#   DURATION      seconds per pgbench run            (8)
#   CLIENTS       pgbench clients (-c)               (16)
#   JOBS          pgbench threads (-j)               (2)
#   PROTOCOLS     subset/order of: simple extended   (simple extended)
#   PGCHORUS, PGBIN, RESULTS_DIR, BENCH_OWN_NODE, KEEP_WORK as for pool.sh
#
# On a machine where pgbench runs on the same CPUs, pgbench's own CPU use
# caps the result: read the ratios as a lower bound.
# Output: a report on stdout, progress on stderr, bench/results/workers-<stamp>.csv.
# The whole script is one { ... } block (see pool.sh).
{
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
BENCH_TOP=$TOP
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

ncpu=$(nproc)
default_list=1
for ((i = 2; i <= (ncpu > 2 ? ncpu : 2); i++)); do default_list+=" $i"; done
WORKERS_LIST=${WORKERS_LIST:-$default_list}
DURATION=${DURATION:-8}
CLIENTS=${CLIENTS:-16}
JOBS=${JOBS:-2}
PROTOCOLS=${PROTOCOLS:-"simple extended"}
PGCHORUS=${PGCHORUS:-$TOP/pgchorus}
PGPOOL=${PGPOOL:-/usr/sbin/pgpool} # (bench_versions looks at it)
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
HANG_GRACE=${HANG_GRACE:-30}
SCALE=1 # (no pgbench tables: bench_check_knobs wants it)

bench_check_knobs DURATION CLIENTS JOBS HANG_GRACE
for p in $PROTOCOLS; do
	case $p in simple | extended) ;; *) bench_die "unknown protocol '$p' (simple or extended)" ;; esac
done
[ -x "$PGCHORUS" ] || bench_die "$PGCHORUS not built"
bench_check_pg ''
bench_check_env

STAMP=$(date +%Y%m%d-%H%M%S)
bench_setup_work workers
BENCH_NODES_DOWN=bench_node_down
bench_versions
bench_pgchorus_version

cat <<EOF
== pgchorus workers benchmark (bench/workers.sh) ==
date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')
machine:   $ncpu CPUs, $cpu_model, $mem_total RAM
kernel:    $(uname -sr)
pgbench:   ${ver_pgbench:-?}
pgchorus:  $ver_pgchorus
workload:  pgbench -n -f (SHOW VERSION) -M <protocol> -c $CLIENTS -j $JOBS -T $DURATION, database pgchorus
           (the admin console: answered by the client's worker, no PostgreSQL work)
EOF

bench_node_up "$WORK" # pgchorus wants a node in its configuration
echo "SHOW VERSION;" >"$WORK/show.sql"
bench_chown "$WORK"

csv="$RESULTS_DIR/workers-$STAMP.csv"
mkdir -p "$RESULTS_DIR"
echo "workers,protocol,tps,cpu_s,cpu_per_10k" >"$csv"
declare -A TPS
for wk in $WORKERS_LIST; do
	PGCHORUS_WORKERS=$wk bench_start_pgchorus "$WORK/pgchorus-$wk" 15 "$NODE_PORT" <<EOF || bench_die "$START_ERR"
pool_mode = "transaction";
admin_users = "postgres";
EOF
	for proto in $PROTOCOLS; do
		log="$WORK/out/w$wk-$proto.log"
		t0=$(bench_cpu_ticks "$PROXY_PID")
		bench_log "workers=$wk $proto: pgbench -c $CLIENTS -j $JOBS -T $DURATION"
		timeout -k 5 $((DURATION + HANG_GRACE)) "$PGBIN/pgbench" -n -f "$WORK/show.sql" -M "$proto" \
			-c "$CLIENTS" -j "$JOBS" -T "$DURATION" -h 127.0.0.1 -p "$TARGET_PORT" -U postgres pgchorus \
			>"$log" 2>&1
		t1=$(bench_cpu_ticks "$PROXY_PID")
		bench_parse "$log"
		cpu=$(bench_ticks_to_s $((t1 - t0)))
		TPS[$wk.$proto]=${P_TPS:-n/a}
		per=n/a
		[ -n "$P_TX" ] && [ "$P_TX" -gt 0 ] && per=$(bench_per_10k "$cpu" "$P_TX")
		echo "$wk,$proto,${P_TPS:-},$cpu,$per" >>"$csv"
		[ -n "$P_TPS" ] || bench_warn "workers=$wk $proto: no result ($(bench_first_error "$log" 120))"
	done
	stop_proxy
done

echo
printf '%-8s %-9s %12s %10s %12s\n' workers protocol "statements/s" "vs 1" "CPU s/10k"
printf '%-8s %-9s %12s %10s %12s\n' -------- --------- ------------ ---------- ------------
first=${WORKERS_LIST%% *}
while IFS=, read -r wk proto tps cpu per; do
	[ "$wk" = workers ] && continue
	printf '%-8s %-9s %12s %10s %12s\n' "$wk" "$proto" "$(fmt_num "${tps:-n/a}" 0)" \
		"$(ratio "${tps:-}" "${TPS[$first.$proto]:-}")" "$per"
done <"$csv"
echo
echo "vs 1 = statements per second relative to workers=$first, same protocol."
echo "CSV: $csv"
}
