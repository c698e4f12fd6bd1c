#!/usr/bin/env bash
# bench/pool.sh - connection-pooling benchmark: PostgreSQL direct vs
# pgbouncer vs pgpool-II vs pgchorus, select-only pgbench over the simple,
# extended and prepared query protocols.
#
# Usage:  bench/pool.sh                 (as root or as a user that can run PG)
#         DURATION=5 TARGETS="direct pgbouncer" bench/pool.sh
#
# Environment (all optional):
#   DURATION   seconds per pgbench run                       (15)
#   CLIENTS    pgbench clients (-c)                          (32)
#   JOBS       pgbench threads (-j)                          (2)
#   SCALE      pgbench -i scale factor                       (10)
#   TARGETS    subset/order of: direct pgbouncer pgpool pgchorus
#   PROTOCOLS  subset/order of: simple extended prepared
#   POOL_SIZE  server connections per pool for pgbouncer/pgchorus (20)
#   PGCHORUS_POOL_SIZE  pgchorus' pool_size when it should differ ($POOL_SIZE)
#   WARMUP     seconds of unrecorded select-only load before each target (2; 0 = none)
#   CONNECT=1  a new connection per transaction (pgbench -C): login cost
#   BACKEND    how the proxies reach the node: tcp (127.0.0.1) or unix (its
#              socket directory, as on a database machine)      (tcp)
#   PGCHORUS_WORKERS  pgchorus' workers (0 = one per core, the default): scaling runs
#   PGCHORUS_PIPELINE pgchorus' pipeline_depth (1 = off, the default; doc/configuration.md)
#   HANG_GRACE seconds past DURATION after which a stuck pgbench is killed (30)
#   PGCHORUS   pgchorus binary                               ($TOP/pgchorus)
#   PGBOUNCER  pgbouncer binary                              (/usr/sbin/pgbouncer)
#   PGPOOL     pgpool binary                                 (/usr/sbin/pgpool)
#   PGBIN      PostgreSQL 15 bin directory                   (/usr/lib/postgresql/15/bin)
#   RESULTS_DIR  where the CSV and PNG go                    (bench/results)
#   BENCH_OWN_NODE=1  do not use scripts/cluster.sh even if it exists
#   KEEP_WORK=1       keep the temporary directory (logs, configs) at exit
#
# Output: a report on stdout (machine, versions, results table), progress on
# stderr, bench/results/pool-c<clients>[-C]-<stamp>.csv and .png.
# The whole script is one { ... } block: bash parses it completely before
# running anything, so editing the file during a run cannot derail that run.
{
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
BENCH_TOP=$TOP
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-32}
JOBS=${JOBS:-2}
SCALE=${SCALE:-10}
TARGETS=${TARGETS:-"direct pgbouncer pgpool pgchorus"}
PROTOCOLS=${PROTOCOLS:-"simple extended prepared"}
POOL_SIZE=${POOL_SIZE:-20}
PGCHORUS_POOL_SIZE=${PGCHORUS_POOL_SIZE:-$POOL_SIZE}
WARMUP=${WARMUP:-2}
PGCHORUS=${PGCHORUS:-$TOP/pgchorus}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
PGPOOL=${PGPOOL:-/usr/sbin/pgpool}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

bench_check_knobs DURATION CLIENTS JOBS SCALE POOL_SIZE PGCHORUS_POOL_SIZE WARMUP
for t in $TARGETS; do
	case $t in direct | pgbouncer | pgpool | pgchorus) ;; *) bench_die "unknown target '$t'" ;; esac
done
for p in $PROTOCOLS; do
	case $p in simple | extended | prepared) ;; *) bench_die "unknown protocol '$p'" ;; esac
done
bench_check_pg ''
bench_check_env

STAMP=$(date +%Y%m%d-%H%M%S)

# ---------------------------------------------------------------------------
# Work directory and cleanup (bench/lib.sh: bench_cleanup)
# ---------------------------------------------------------------------------
bench_setup_work pool
BENCH_NODES_DOWN=bench_node_down

# ---------------------------------------------------------------------------
# Machine and versions
# ---------------------------------------------------------------------------
bench_versions
ver_pgbouncer=$("$PGBOUNCER" --version 2>&1 | first_line)
[ -x "$PGBOUNCER" ] || ver_pgbouncer=
ver_pgchorus=
if [ -x "$PGCHORUS" ]; then
	out=$(cd "$WORK" && timeout 5 "$PGCHORUS" --version 2>/dev/null)
	if [ $? -eq 0 ] && printf '%s' "$out" | grep -q '[0-9]'; then
		ver_pgchorus="$(printf '%s\n' "$out" | first_line)${ver_git:+ (git $ver_git)}"
	fi
	[ -n "$ver_pgchorus" ] || ver_pgchorus="git ${ver_git:-unknown} (no --version)"
else
	ver_pgchorus="not built ($PGCHORUS missing); git ${ver_git:-unknown}"
fi

cat <<EOF
== pgchorus pooling benchmark (bench/pool.sh) ==
date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')
machine:   $(nproc) CPUs, $cpu_model, $mem_total RAM
kernel:    $(uname -sr)
postgres:  ${ver_pg:-?}
pgbench:   ${ver_pgbench:-?}
pgbouncer: ${ver_pgbouncer:-not installed}
pgpool:    ${ver_pgpool:-not installed}
pgchorus:  $ver_pgchorus
workload:  pgbench -n -S -M <protocol> -c $CLIENTS -j $JOBS -T $DURATION$( [ "${CONNECT:-0}" = 1 ] && echo " -C (a connection per transaction)"), scale $SCALE, 127.0.0.1 TCP
backend:   the proxies reach PostgreSQL over $( [ "${BACKEND:-tcp}" = unix ] && echo "its unix socket" || echo "127.0.0.1 TCP")
pools:     pgbouncer transaction mode, default_pool_size=$POOL_SIZE;
           pgpool raw mode, num_init_children=$(( CLIENTS > 32 ? CLIENTS : 32 )), max_pool=1, connection_cache=on;
           pgchorus transaction mode, pool_size=$PGCHORUS_POOL_SIZE, workers=${PGCHORUS_WORKERS:-0} (0 = cores), pipeline_depth=${PGCHORUS_PIPELINE:-1}
EOF

# ---------------------------------------------------------------------------
# PostgreSQL node + pgbench data
# ---------------------------------------------------------------------------
bench_node_up "$WORK"
bench_log "node ready: 127.0.0.1:$NODE_PORT ($BENCH_NODE_KIND)"
node_q() {
	"$PGBIN/psql" -XAtq -h 127.0.0.1 -p "$NODE_PORT" -U postgres -d postgres -c "$1" 2>/dev/null
}
max_conn=$(node_q 'show max_connections')
echo "node:      PostgreSQL on 127.0.0.1:$NODE_PORT (set up by $([ "$BENCH_NODE_KIND" = own ] && echo "bench/lib.sh" || echo "scripts/cluster.sh"))," \
	"shared_buffers=$(node_q 'show shared_buffers'), max_connections=$max_conn, fsync=$(node_q 'show fsync')"
echo "load:      $(cut -d ' ' -f 1-3 /proc/loadavg) (1/5/15-min load average before the node was set up)"
echo

need=$(( (CLIENTS > 32 ? CLIENTS : 32) + 5 ))
if [ -n "$max_conn" ] && [ "$max_conn" -lt "$need" ]; then
	bench_warn "node max_connections=$max_conn < $need; runs with many clients may fail"
fi

bench_log "pgbench -i -s $SCALE"
"$PGBIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "$NODE_PORT" -U postgres postgres \
	>"$WORK/out/init.log" 2>&1 ||
	{ tail -n 20 "$WORK/out/init.log" >&2; bench_die "pgbench -i failed"; }

# ---------------------------------------------------------------------------
# Targets.  start_<target> sets TARGET_PORT and, for proxies, PROXY_PID and
# PROXY_SIG (the signal for a fast shutdown), and returns non-zero on failure
# with the reason in START_ERR.
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
max_client_conn = 1000
EOF
}

start_pgpool() {
	[ -x "$PGPOOL" ] || { START_ERR="$PGPOOL not found"; return 1; }
	bench_start_pgpool "$WORK/pgpool" raw $(( CLIENTS > 32 ? CLIENTS : 32 )) 15 "$NODE_PORT" <<EOF
load_balance_mode = off
sr_check_period = 0
EOF
}

start_pgchorus() {
	[ -x "$PGCHORUS" ] || { START_ERR="$PGCHORUS not built"; return 1; }
	bench_start_pgchorus "$WORK/pgchorus" 15 "$NODE_PORT" <<EOF
pool_mode = "transaction";
pool_size = $PGCHORUS_POOL_SIZE;
pipeline_depth = ${PGCHORUS_PIPELINE:-1};
EOF
}

# ---------------------------------------------------------------------------
# One pgbench run.  Fills the R_* variables.
# ---------------------------------------------------------------------------
# A stuck pgbench is stopped HANG_GRACE seconds after the duration (exit 124
# or 137 from timeout; see measure() and bench_pgbench_bg in bench/lib.sh).
HANG_GRACE=${HANG_GRACE:-30}
pgbench_run() { # PORT PROTOCOL SECONDS LOGFILE
	BG_PIDS=()
	if [ "${CONNECT:-0}" = 1 ]; then
		bench_pgbench_bg "$4" "$1" "$3" -S -M "$2" -C
	else
		bench_pgbench_bg "$4" "$1" "$3" -S -M "$2"
	fi
	wait "${BG_PIDS[0]}"
	local rc=$?
	BG_PIDS=()
	return $rc
}

measure() { # TARGET PROTOCOL
	local target=$1 proto=$2 log="$WORK/out/$1-$2.log" t0 t1
	local pm o0 o1 s0 s1 w0 w1
	R_TPS='' R_LAT='' R_FAILED='' R_ABORTED='' R_TX='' R_CPU='' R_CPU10K='' R_NOTE='' R_VALID=1 R_OTHER=''
	# "Other" CPU: what the whole machine spent in user+system time during the
	# run minus what the benchmark's own processes spent (this shell and its
	# children: pgbench, the proxy; and the PostgreSQL node).  The benchmark
	# assumes an otherwise idle machine; this shows whether it was.
	pm=$(bench_node_pid)
	if [ -n "$PROXY_PID" ]; then
		t0=$(bench_cpu_ticks "$PROXY_PID")
	fi
	o0=$(bench_cpu_ticks $$ $pm)
	read -r s0 _ <<<"$(bench_sys_ticks)"
	w0=$(bench_now)
	pgbench_run "$TARGET_PORT" "$proto" "$DURATION" "$log"
	R_RC=$?
	w1=$(bench_now)
	read -r s1 _ <<<"$(bench_sys_ticks)"
	o1=$(bench_cpu_ticks $$ $pm)
	if [ -n "$PROXY_PID" ]; then
		t1=$(bench_cpu_ticks "$PROXY_PID")
		R_CPU=$(bench_ticks_to_s $(( t1 - t0 )))
	fi
	R_OTHER=$(bench_other_pct "$s0" "$s1" "$o0" "$o1" "$w0" "$w1")
	bench_parse "$log"
	R_TPS=$P_TPS R_LAT=$P_LAT R_FAILED=$P_FAILED R_TX=$P_TX R_ABORTED=$P_ABORTED
	# A run is valid when pgbench exited 0 and no client aborted.  An aborted
	# run's TPS covers only what happened before the clients gave up: it is
	# reported (marked *) but not used for ratios, CPU per transaction or the
	# chart.
	if [ "$R_RC" -ne 0 ] || [ "$R_ABORTED" -gt 0 ] || [ -z "$R_TPS" ]; then
		R_VALID=0
		R_NOTE="pgbench exit $R_RC"
		[ "$R_RC" -eq 124 ] || [ "$R_RC" -eq 137 ] &&
			R_NOTE="pgbench hung: no result $HANG_GRACE s after the end of the run, killed"
		[ -n "$R_TX" ] && R_NOTE="$R_NOTE, $R_TX transactions"
		[ "$R_ABORTED" -gt 0 ] && R_NOTE="$R_NOTE, $R_ABORTED of $CLIENTS clients aborted"
		local first
		first=$(bench_first_error "$log" 160)
		[ -n "$first" ] && R_NOTE="$R_NOTE; first error: $first"
		if [ "$R_ABORTED" -gt 0 ] && grep -q 'ERROR: *prepared statement .* already exists' "$log"; then
			R_NOTE="$R_NOTE; also: $(grep -c 'ERROR: *prepared statement .* already exists' "$log")x 'prepared statement ... already exists'"
		fi
	elif [ -n "$R_CPU" ] && [ -n "$R_TX" ] && [ "$R_TX" -gt 0 ]; then
		R_CPU10K=$(bench_per_10k "$R_CPU" "$R_TX")
	fi
	[ -n "$R_TPS" ] || R_TPS=n/a
	[ -n "$R_LAT" ] || R_LAT=n/a
	[ -n "$R_FAILED" ] || R_FAILED=n/a
	[ -n "$R_TX" ] || R_TX=n/a
	[ -n "$R_CPU" ] || R_CPU=n/a
	[ -n "$R_CPU10K" ] || R_CPU10K=n/a
}

# Results, keyed "target:protocol"
declare -A TPS LAT FAILED ABORTED TXN CPU CPU10K NOTE VALID OTHER
NOTES=()

record_na() { # TARGET PROTOCOL REASON
	local k="$1:$2"
	TPS[$k]=n/a LAT[$k]=n/a FAILED[$k]=n/a ABORTED[$k]=n/a TXN[$k]=n/a CPU[$k]=n/a CPU10K[$k]=n/a
	VALID[$k]=0 OTHER[$k]=n/a
	NOTE[$k]="n/a: $3"
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
		bench_log "$target/$proto: pgbench -M $proto -c $CLIENTS -j $JOBS -T $DURATION"
		measure "$target" "$proto"
		TPS[$k]=$R_TPS LAT[$k]=$R_LAT FAILED[$k]=$R_FAILED ABORTED[$k]=$R_ABORTED
		TXN[$k]=$R_TX CPU[$k]=$R_CPU CPU10K[$k]=$R_CPU10K NOTE[$k]=$R_NOTE VALID[$k]=$R_VALID
		OTHER[$k]=$R_OTHER
		[ -n "$R_NOTE" ] && NOTES+=("$target/$proto: $R_NOTE")
		bench_log "$target/$proto: tps=$R_TPS lat=${R_LAT}ms failed=$R_FAILED aborted=$R_ABORTED cpu=${R_CPU}"
	done
	stop_proxy
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
# valid_tps TARGET PROTOCOL: the TPS of a valid run, else n/a
valid_tps() {
	local k="$1:$2"
	if [ "${VALID[$k]:-0}" = 1 ]; then echo "${TPS[$k]}"; else echo n/a; fi
}

mkdir -p "$RESULTS_DIR"
NAME=pool-c$CLIENTS$( [ "${CONNECT:-0}" = 1 ] && echo "-C")-$STAMP
CSV="$RESULTS_DIR/$NAME.csv"
PNG="$RESULTS_DIR/$NAME.png"
DAT="$WORK/out/tps.dat"

echo "date,target,protocol,clients,jobs,duration_s,scale,tps,latency_ms,failed,aborted_clients,transactions,valid,other_cpu_pct,proxy_cpu_s,cpu_s_per_10k_tx,ratio_tps_vs_pgbouncer,ratio_tps_vs_direct,note" >"$CSV"

fmt='%-10s %-9s %10s %9s %7s %8s %10s %9s %8s %9s %7s\n'
# shellcheck disable=SC2059
printf "$fmt" target protocol TPS "lat ms" failed aborted "tx" "CPU/10k" "vs pgb" "vs direct" "other%"
# shellcheck disable=SC2059
printf "$fmt" ---------- --------- ---------- --------- ------- -------- ---------- --------- -------- --------- -------
any_invalid=0
for target in $TARGETS; do
	for proto in $PROTOCOLS; do
		k="$target:$proto"
		mine=$(valid_tps "$target" "$proto")
		r_pgb=$(ratio "$mine" "$(valid_tps pgbouncer "$proto")")
		r_dir=$(ratio "$mine" "$(valid_tps direct "$proto")")
		cpu10k=${CPU10K[$k]}
		[ "$target" = direct ] && cpu10k=-
		tps_shown=$(fmt_num "${TPS[$k]}" 0)
		if [ "${VALID[$k]}" != 1 ] && [ "${TPS[$k]}" != n/a ]; then
			tps_shown="$tps_shown*"
			any_invalid=1
		fi
		# shellcheck disable=SC2059
		printf "$fmt" "$target" "$proto" "$tps_shown" "$(fmt_num "${LAT[$k]}" 3)" \
			"${FAILED[$k]}" "${ABORTED[$k]}" "${TXN[$k]}" "$cpu10k" "$r_pgb" "$r_dir" "${OTHER[$k]}"
		note=${NOTE[$k]//\"/\"\"}
		printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,"%s"\n' \
			"$STAMP" "$target" "$proto" "$CLIENTS" "$JOBS" "$DURATION" "$SCALE" \
			"${TPS[$k]}" "${LAT[$k]}" "${FAILED[$k]}" "${ABORTED[$k]}" "${TXN[$k]}" \
			"${VALID[$k]}" "${OTHER[$k]}" "${CPU[$k]}" "$cpu10k" "$r_pgb" "$r_dir" "$note" >>"$CSV"
	done
done
echo
echo "tx       = transactions completed in the run; failed = pgbench's failed-transaction count"
echo "           (serialization/deadlock only); aborted = pgbench clients that stopped on an error."
echo "CPU/10k  = CPU seconds (user+system) used by the proxy per 10,000 transactions"
echo "           (pgpool: parent + all child processes; pgbouncer, pgchorus: the one process)."
echo "vs pgb, vs direct = TPS relative to pgbouncer / direct PostgreSQL, same protocol."
if [ "$any_invalid" = 1 ]; then
	echo "*        = run aborted by pgbench: TPS covers only the transactions before the clients"
	echo "           aborted; not used for ratios, CPU/10k or the chart."
fi
echo "other%   = share of the machine's CPU (all $(nproc) CPUs) used during the run by processes"
echo "           outside the benchmark; above a few % the numbers are disturbed."
omax=$(for k in "${!OTHER[@]}"; do
	[ "${VALID[$k]}" = 1 ] && echo "${OTHER[$k]}"
done | grep -v n/a | sort -n | tail -n 1)
if [ -n "$omax" ] && [ "$omax" -gt 10 ]; then
	NOTES+=("other processes used up to $omax% of the CPUs during some runs: those numbers are not reliable; rerun on a quiet machine")
fi
if [ "${#NOTES[@]}" -gt 0 ]; then
	echo
	echo "Notes:"
	for n in "${NOTES[@]}"; do echo "  - $n"; done
fi

# Grouped bar chart: one group per target, one bar per protocol.  Columns:
# target, one TPS column per protocol (NaN = no valid run), then one tag
# column per protocol ("-", "n/a" or "aborted") printed at the bar's foot.
{
	printf 'target'
	for proto in $PROTOCOLS; do printf ' %s' "$proto"; done
	for proto in $PROTOCOLS; do printf ' tag_%s' "$proto"; done
	echo
	for target in $TARGETS; do
		printf '%s' "$target"
		for proto in $PROTOCOLS; do
			v=$(valid_tps "$target" "$proto")
			[ "$v" = n/a ] && v=NaN
			printf ' %s' "$v"
		done
		for proto in $PROTOCOLS; do
			k="$target:$proto"
			if [ "${VALID[$k]}" = 1 ]; then tag=-
			elif [[ ${NOTE[$k]} == *hung* ]]; then tag=hung
			elif [ "${TPS[$k]}" = n/a ]; then tag=n/a
			else tag=aborted; fi
			printf ' %s' "$tag"
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
set title "pgbench -S (select only)$( [ "${CONNECT:-0}" = 1 ] && echo " -C"), $CLIENTS clients, ${DURATION} s per run, scale $SCALE\n$(nproc) CPUs, $cpu_model, $(date -u '+%Y-%m-%d')"
set ylabel 'transactions per second'
set yrange [0:*]
set xrange [-0.6:$ntarget - 0.4]
set offsets 0, 0, graph 0.08, 0
set grid ytics
set key top right
set key autotitle columnheader
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics nomirror
set datafile missing 'NaN'
n = $nproto
g = 1.0
# x of bar j (1-based) of row r: clusters are centred on r, each bar 1/(n+g) wide
bx(r, j) = r + (j - 1 - (n - 1) / 2.0) / (n + g)
plot for [j=1:n] '$DAT' using j+1:xtic(1), \
     for [j=1:n] '$DAT' using (bx(\$0, j)):(column(j+1)):(sprintf('%.0f', column(j+1))) \
         with labels offset 0,0.7 font ',8' notitle, \
     for [j=1:n] '$DAT' using (bx(\$0, j)):(0):(strcol(j+1+n) eq '-' ? '' : strcol(j+1+n)) \
         with labels rotate by 90 left offset 0,0.5 font ',8' notitle
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
