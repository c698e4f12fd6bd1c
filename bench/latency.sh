#!/usr/bin/env bash
# bench/latency.sh - latency a proxy adds at one client: pgbench -c 1 -j 1
# select-only through PostgreSQL direct, pgbouncer, pgpool-II and pgchorus
# (transaction pooling), simple and prepared protocols, with every
# transaction's latency logged (pgbench -l); reports p50 and p99 and what
# each proxy adds to direct's.
#
# Usage:  bench/latency.sh              (as root or as a user that can run PG)
#         DURATION=3 bench/latency.sh
#
# Environment (all optional):
#   DURATION   seconds per pgbench run                       (10)
#   SCALE      pgbench -i scale factor                       (10)
#   TARGETS    subset/order of: direct pgbouncer pgpool pgchorus
#   PROTOCOLS  subset/order of: simple extended prepared     (simple prepared)
#   POOL_SIZE  server connections per pool, pgbouncer and pgchorus (20)
#   WARMUP     seconds of unrecorded load before each target (2; 0 = none)
#   HANG_GRACE seconds past DURATION after which a stuck pgbench is killed (30)
#   PGCHORUS, PGBOUNCER, PGPOOL, PGBIN, RESULTS_DIR, BENCH_OWN_NODE, KEEP_WORK
#              as for pool.sh
#
# Output: a report on stdout, progress on stderr,
# bench/results/latency-<stamp>.csv and bench/results/latency-<stamp>.png.
# The whole script is one { ... } block (see pool.sh).
{
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
BENCH_TOP=$TOP
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

DURATION=${DURATION:-10}
SCALE=${SCALE:-10}
TARGETS=${TARGETS:-"direct pgbouncer pgpool pgchorus"}
PROTOCOLS=${PROTOCOLS:-"simple prepared"}
POOL_SIZE=${POOL_SIZE:-20}
WARMUP=${WARMUP:-2}
HANG_GRACE=${HANG_GRACE:-30}
PGCHORUS=${PGCHORUS:-$TOP/pgchorus}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
PGPOOL=${PGPOOL:-/usr/sbin/pgpool}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
# one client, one thread: that is the point of this benchmark
CLIENTS=1
JOBS=1

bench_check_knobs DURATION SCALE POOL_SIZE WARMUP HANG_GRACE
for t in $TARGETS; do
	case $t in direct | pgbouncer | pgpool | pgchorus) ;; *) bench_die "unknown target '$t'" ;; esac
done
for p in $PROTOCOLS; do
	case $p in simple | extended | prepared) ;; *) bench_die "unknown protocol '$p'" ;; esac
done
bench_check_pg ''
bench_check_env

STAMP=$(date +%Y%m%d-%H%M%S)
bench_setup_work latency
BENCH_NODES_DOWN=bench_node_down

bench_versions
ver_pgbouncer=
[ -x "$PGBOUNCER" ] && ver_pgbouncer=$("$PGBOUNCER" --version 2>&1 | first_line)
bench_pgchorus_version

cat <<EOF
== pgchorus single-client latency benchmark (bench/latency.sh) ==
date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')
machine:   $(nproc) CPUs, $cpu_model, $mem_total RAM
kernel:    $(uname -sr)
postgres:  ${ver_pg:-?}
pgbench:   ${ver_pgbench:-?}
pgbouncer: ${ver_pgbouncer:-not installed}
pgpool:    ${ver_pgpool:-not installed}
pgchorus:  $ver_pgchorus
workload:  pgbench -n -S -M <protocol> -c 1 -j 1 -T $DURATION -l, scale $SCALE, 127.0.0.1 TCP
pools:     pgbouncer pool_mode=transaction, default_pool_size=$POOL_SIZE;
           pgpool raw mode, num_init_children=32, max_pool=1, connection_cache=on;
           pgchorus pool_mode="transaction", pool_size=$POOL_SIZE, workers=0 (= cores)
EOF

bench_node_up "$WORK"
bench_log "node ready: 127.0.0.1:$NODE_PORT ($BENCH_NODE_KIND)"
echo "node:      PostgreSQL on 127.0.0.1:$NODE_PORT (set up by $([ "$BENCH_NODE_KIND" = own ] && echo "bench/lib.sh" || echo "scripts/cluster.sh"))"
echo "load:      $(cut -d ' ' -f 1-3 /proc/loadavg) (1/5/15-min load average before the node was set up)"
echo

bench_log "pgbench -i -s $SCALE"
"$PGBIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$NODE_PORT" -U postgres postgres \
	>"$WORK/out/init.log" 2>&1 ||
	{ tail -n 20 "$WORK/out/init.log" >&2; bench_die "pgbench -i failed"; }

# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------
START_ERR=
TARGET_PORT=

start_direct() {
	TARGET_PORT=$NODE_PORT
	PROXY_PID=
}

start_pgbouncer() {
	bench_start_pgbouncer "$WORK/pgbouncer" 15 "$NODE_PORT" <<EOF
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = 100
EOF
}

start_pgpool() {
	[ -x "$PGPOOL" ] || { START_ERR="$PGPOOL not found"; return 1; }
	bench_start_pgpool "$WORK/pgpool" raw 32 15 "$NODE_PORT" <<EOF
load_balance_mode = off
sr_check_period = 0
EOF
}

start_pgchorus() {
	[ -x "$PGCHORUS" ] || { START_ERR="$PGCHORUS not built"; return 1; }
	bench_start_pgchorus "$WORK/pgchorus" 15 "$NODE_PORT" <<EOF
pool_mode = "transaction";
pool_size = $POOL_SIZE;
EOF
}

# ---------------------------------------------------------------------------
# One run.  pgbench -l writes one line per transaction to PREFIX.<pid>:
#   client_id transaction_no latency_us script_no epoch_s epoch_us
# (latency is "failed" or "skipped" for transactions that did not complete).
# ---------------------------------------------------------------------------
pgbench_run() { # PORT PROTOCOL SECONDS LOGFILE [PGBENCH ARGS...]
	local port=$1 proto=$2 secs=$3 log=$4 rc
	shift 4
	BG_PIDS=()
	bench_pgbench_bg "$log" "$port" "$secs" -S -M "$proto" "$@"
	wait "${BG_PIDS[0]}"
	rc=$?
	BG_PIDS=()
	return $rc
}

# percentiles FILE...: "COUNT P50 P99 MEAN" (µs) of the numeric 3rd fields,
# nearest rank; "0 n/a n/a n/a" when there is none.
percentiles() {
	awk '$3 ~ /^[0-9]+$/ { print $3 }' "$@" 2>/dev/null | sort -n | awk '
		{ v[NR] = $1; sum += $1 }
		END {
			if (NR == 0) { print "0 n/a n/a n/a"; exit }
			i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
			i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
			if (i50 < 1) i50 = 1
			if (i99 < 1) i99 = 1
			printf "%d %d %d %.0f\n", NR, v[i50], v[i99], sum / NR
		}'
}

measure() { # TARGET PROTOCOL
	local t=$1 proto=$2 log="$WORK/out/$1-$2.log" prefix="$WORK/out/txlog-$1-$2"
	local t0 t1 pm o0 o1 s0 s1 w0 w1
	R_TPS='' R_TX='' R_N='' R_P50='' R_P99='' R_MEAN='' R_CPU='' R_CPU10K='' R_NOTE='' R_VALID=1 R_OTHER=''
	pm=$(bench_node_pid)
	[ -n "$PROXY_PID" ] && t0=$(bench_cpu_ticks "$PROXY_PID")
	# shellcheck disable=SC2086
	o0=$(bench_cpu_ticks $$ $pm)
	read -r s0 _ <<<"$(bench_sys_ticks)"
	w0=$(bench_now)
	pgbench_run "$TARGET_PORT" "$proto" "$DURATION" "$log" -l --log-prefix="$prefix"
	R_RC=$?
	w1=$(bench_now)
	read -r s1 _ <<<"$(bench_sys_ticks)"
	# shellcheck disable=SC2086
	o1=$(bench_cpu_ticks $$ $pm)
	if [ -n "$PROXY_PID" ]; then
		t1=$(bench_cpu_ticks "$PROXY_PID")
		R_CPU=$(bench_ticks_to_s $(( t1 - t0 )))
	fi
	R_OTHER=$(bench_other_pct "$s0" "$s1" "$o0" "$o1" "$w0" "$w1")
	bench_parse "$log"
	R_TPS=$P_TPS R_TX=$P_TX
	read -r R_N R_P50 R_P99 R_MEAN <<<"$(percentiles "$prefix".*)"
	if [ "$R_RC" -ne 0 ] || [ "$P_ABORTED" -gt 0 ] || [ -z "$R_TPS" ] || [ "$R_N" -eq 0 ]; then
		R_VALID=0
		R_NOTE="pgbench exit $R_RC"
		[ "$R_RC" -eq 124 ] || [ "$R_RC" -eq 137 ] &&
			R_NOTE="pgbench hung: no result $HANG_GRACE s after the end of the run, killed"
		[ -n "$R_TX" ] && R_NOTE="$R_NOTE, $R_TX transactions"
		[ "$P_ABORTED" -gt 0 ] && R_NOTE="$R_NOTE, the client aborted"
		local first
		first=$(bench_first_error "$log" 160)
		[ -n "$first" ] && R_NOTE="$R_NOTE; first error: $first"
	elif [ -n "$R_CPU" ] && [ -n "$R_TX" ] && [ "$R_TX" -gt 0 ]; then
		R_CPU10K=$(bench_per_10k "$R_CPU" "$R_TX")
	fi
	[ -n "$R_TPS" ] || R_TPS=n/a
	[ -n "$R_TX" ] || R_TX=n/a
	[ -n "$R_CPU" ] || R_CPU=n/a
	[ -n "$R_CPU10K" ] || R_CPU10K=n/a
}

declare -A TPS TXN P50 P99 MEAN CPU CPU10K NOTE VALID OTHER
NOTES=()

record_na() { # TARGET PROTOCOL REASON
	local k="$1:$2"
	TPS[$k]=n/a TXN[$k]=n/a P50[$k]=n/a P99[$k]=n/a MEAN[$k]=n/a CPU[$k]=n/a CPU10K[$k]=n/a
	VALID[$k]=0 OTHER[$k]=n/a NOTE[$k]="n/a: $3"
}

for target in $TARGETS; do
	START_ERR=
	bench_log "starting $target"
	if ! "start_$target"; then
		bench_warn "$target: n/a (${START_ERR:-failed to start})"
		NOTES+=("$target: n/a - ${START_ERR:-failed to start}")
		for proto in $PROTOCOLS; do record_na "$target" "$proto" "${START_ERR:-failed to start}"; done
		continue
	fi
	if [ "$WARMUP" -gt 0 ]; then
		bench_log "$target: warm-up ${WARMUP}s (not recorded)"
		pgbench_run "$TARGET_PORT" simple "$WARMUP" "$WORK/out/$target-warmup.log"
		case $? in
		124 | 137) bench_warn "$target: warm-up pgbench hung and was killed" ;;
		esac
	fi
	for proto in $PROTOCOLS; do
		k="$target:$proto"
		if [ -n "$PROXY_PID" ] && ! kill -0 "$PROXY_PID" 2>/dev/null; then
			record_na "$target" "$proto" "$target exited during the benchmark"
			NOTES+=("$target/$proto: n/a - $target exited during the benchmark")
			continue
		fi
		bench_log "$target/$proto: pgbench -M $proto -c 1 -j 1 -T $DURATION -l"
		measure "$target" "$proto"
		TPS[$k]=$R_TPS TXN[$k]=$R_TX P50[$k]=$R_P50 P99[$k]=$R_P99 MEAN[$k]=$R_MEAN
		CPU[$k]=$R_CPU CPU10K[$k]=$R_CPU10K NOTE[$k]=$R_NOTE VALID[$k]=$R_VALID OTHER[$k]=$R_OTHER
		[ -n "$R_NOTE" ] && NOTES+=("$target/$proto: $R_NOTE")
		bench_log "$target/$proto: tps=$R_TPS p50=${R_P50}us p99=${R_P99}us cpu=${R_CPU}s"
	done
	stop_proxy
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
# valid VAR TARGET PROTOCOL: the value from a valid run, else n/a
valid() {
	local -n _arr=$1
	local k="$2:$3"
	if [ "${VALID[$k]:-0}" = 1 ]; then echo "${_arr[$k]}"; else echo n/a; fi
}
diff_us() { # A B: A - B, or n/a
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a !~ /^[0-9]+$/ || b !~ /^[0-9]+$/) { print "n/a"; exit }
		printf "%+d\n", a - b }'
}

mkdir -p "$RESULTS_DIR"
CSV="$RESULTS_DIR/latency-$STAMP.csv"
PNG="$RESULTS_DIR/latency-$STAMP.png"
DAT="$WORK/out/latency.dat"

echo "date,target,protocol,duration_s,scale,tps,transactions,p50_us,p99_us,mean_us,added_p50_us,added_p99_us,valid,other_cpu_pct,proxy_cpu_s,cpu_s_per_10k_tx,note" >"$CSV"
fmt='%-10s %-9s %8s %8s %8s %8s %8s %9s %9s %8s %7s\n'
# shellcheck disable=SC2059
printf "$fmt" target protocol TPS tx "p50 us" "p99 us" "mean us" "+p50 us" "+p99 us" "CPU/10k" "other%"
# shellcheck disable=SC2059
printf "$fmt" ---------- --------- -------- -------- -------- -------- -------- --------- --------- -------- -------
any_invalid=0
for target in $TARGETS; do
	for proto in $PROTOCOLS; do
		k="$target:$proto"
		p50=$(valid P50 "$target" "$proto")
		p99=$(valid P99 "$target" "$proto")
		add50=$(diff_us "$p50" "$(valid P50 direct "$proto")")
		add99=$(diff_us "$p99" "$(valid P99 direct "$proto")")
		cpu10k=${CPU10K[$k]}
		if [ "$target" = direct ]; then cpu10k=- add50=- add99=-; fi
		tps_shown=$(fmt_num "${TPS[$k]}" 0)
		if [ "${VALID[$k]}" != 1 ] && [ "${TPS[$k]}" != n/a ]; then
			tps_shown="$tps_shown*"
			any_invalid=1
		fi
		# shellcheck disable=SC2059
		printf "$fmt" "$target" "$proto" "$tps_shown" "${TXN[$k]}" "$p50" "$p99" "${MEAN[$k]}" \
			"$add50" "$add99" "$cpu10k" "${OTHER[$k]}"
		note=${NOTE[$k]//\"/\"\"}
		printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,"%s"\n' \
			"$STAMP" "$target" "$proto" "$DURATION" "$SCALE" "${TPS[$k]}" "${TXN[$k]}" \
			"${P50[$k]}" "${P99[$k]}" "${MEAN[$k]}" "$add50" "$add99" "${VALID[$k]}" \
			"${OTHER[$k]}" "${CPU[$k]}" "$cpu10k" "$note" >>"$CSV"
	done
done
echo
echo "p50, p99 = median and 99th percentile of the per-transaction latencies pgbench logged"
echo "           (-l: third field, microseconds; nearest rank); mean = their average."
echo "+p50, +p99 = the same minus direct PostgreSQL's, same protocol: what the proxy adds."
echo "CPU/10k  = CPU seconds (user+system) the proxy used during the run per 10,000 transactions"
echo "           (pgpool: parent + all child processes)."
if [ "$any_invalid" = 1 ]; then
	echo "*        = pgbench failed or its client aborted: not used for percentiles or the chart."
fi
echo "other%   = share of the machine's CPU (all $(nproc) CPUs) used during the run by processes"
echo "           outside the benchmark; above a few % the numbers are disturbed."
omax=$(for k in "${!OTHER[@]}"; do
	[ "${VALID[$k]}" = 1 ] && echo "${OTHER[$k]}"
done | grep -v n/a | sort -n | tail -n 1)
if [ -n "$omax" ] && [ "$omax" -gt 10 ]; then
	NOTES+=("other processes used up to $omax% of the CPUs during some runs: those numbers are not reliable; rerun on a quiet machine")
fi
if [ "$PGCHORUS_SANITIZED" = 1 ]; then
	NOTES+=("$PGCHORUS is built with AddressSanitizer (configure --enable-sanitizers): its latency and CPU figures are not representative; use PGCHORUS=<an -O2 build without sanitizers>")
fi
if [ "${#NOTES[@]}" -gt 0 ]; then
	echo
	echo "Notes:"
	for n in "${NOTES[@]}"; do echo "  - $n"; done
fi

# Chart: one group per target, one bar per protocol (p50), p99 printed above.
{
	printf 'target'
	for proto in $PROTOCOLS; do printf ' %s' "$proto"; done
	for proto in $PROTOCOLS; do printf ' p99_%s' "$proto"; done
	echo
	for target in $TARGETS; do
		printf '%s' "$target"
		for proto in $PROTOCOLS; do
			v=$(valid P50 "$target" "$proto")
			[ "$v" = n/a ] && v=NaN
			printf ' %s' "$v"
		done
		for proto in $PROTOCOLS; do
			v=$(valid P99 "$target" "$proto")
			[ "$v" = n/a ] && v=NaN
			printf ' %s' "$v"
		done
		echo
	done
} >"$DAT"
nproto=$(echo $PROTOCOLS | wc -w)
ntarget=$(echo $TARGETS | wc -w)
chart_ok=0
if command -v gnuplot >/dev/null; then
	term=$(bench_gnuplot_term 1000 600)
	gnuplot >"$WORK/out/gnuplot.log" 2>&1 <<EOF && [ -s "$PNG" ] && chart_ok=1
set terminal $term
set output '$PNG'
set title "pgbench -S, 1 client, ${DURATION} s per run: median latency (label: p50 / p99 us)\n$(nproc) CPUs, $cpu_model, $(date -u '+%Y-%m-%d')"
set ylabel 'p50 latency (microseconds)'
set yrange [0:*]
set xrange [-0.6:$ntarget - 0.4]
set offsets 0, 0, graph 0.1, 0
set grid ytics
set key top left
set key autotitle columnheader
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile missing 'NaN'
n = $nproto
g = 1.0
bx(r, j) = r + (j - 1 - (n - 1) / 2.0) / (n + g)
plot for [j=1:n] '$DAT' using j+1:xtic(1), \
     for [j=1:n] '$DAT' using (bx(\$0, j)):(column(j+1)):(sprintf('%.0f / %.0f', column(j+1), column(j+1+n))) \
         with labels offset 0,0.7 font ',8' notitle
EOF
	if [ "$chart_ok" != 1 ]; then
		bench_warn "gnuplot failed:"
		sed 's/^/    /' "$WORK/out/gnuplot.log" >&2
	fi
else
	bench_warn "gnuplot not installed; no chart"
fi
echo
echo "CSV: $CSV"
[ "$chart_ok" = 1 ] && echo "PNG: $PNG"
exit 0
}
