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
#   WARMUP     seconds of unrecorded select-only load before each target (2; 0 = none)
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
# stderr, bench/results/pool-<stamp>.csv and bench/results/pool-<stamp>.png.
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
WARMUP=${WARMUP:-2}
PGCHORUS=${PGCHORUS:-$TOP/pgchorus}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
PGPOOL=${PGPOOL:-/usr/sbin/pgpool}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}

for v in DURATION CLIENTS JOBS SCALE POOL_SIZE WARMUP; do
	case ${!v} in
	'' | *[!0-9]*) bench_die "$v must be a non-negative integer (got '${!v}')" ;;
	esac
done
[ "$DURATION" -ge 1 ] && [ "$CLIENTS" -ge 1 ] && [ "$JOBS" -ge 1 ] && [ "$SCALE" -ge 1 ] ||
	bench_die "DURATION, CLIENTS, JOBS and SCALE must be at least 1"
[ "$JOBS" -le "$CLIENTS" ] || JOBS=$CLIENTS
for t in $TARGETS; do
	case $t in direct | pgbouncer | pgpool | pgchorus) ;; *) bench_die "unknown target '$t'" ;; esac
done
for p in $PROTOCOLS; do
	case $p in simple | extended | prepared) ;; *) bench_die "unknown protocol '$p'" ;; esac
done
[ -x "$PGBIN/pgbench" ] && [ -x "$PGBIN/initdb" ] || bench_die "no PostgreSQL 15 binaries in $PGBIN"
command -v perl >/dev/null || bench_die "perl is needed (free-port check)"

# Connection settings must come from the command line only.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGOPTIONS \
	PGSERVICEFILE PGPASSFILE PGAPPNAME PGTARGETSESSIONATTRS 2>/dev/null

STAMP=$(date +%Y%m%d-%H%M%S)

# ---------------------------------------------------------------------------
# Work directory and cleanup
# ---------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/pgchorus-bench-pool.XXXXXX) || bench_die "mktemp failed"
chmod 0755 "$WORK"
mkdir -p "$WORK/out"
bench_chown "$WORK"

PROXY_PID=
PROXY_SIG=TERM
PGBENCH_PID=

stop_proxy() {
	if [ -n "$PROXY_PID" ]; then
		bench_stop_pid "$PROXY_PID" "$PROXY_SIG" 10
		PROXY_PID=
	fi
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$PGBENCH_PID" ]; then
		kill -TERM "$PGBENCH_PID" 2>/dev/null
		wait "$PGBENCH_PID" 2>/dev/null
	fi
	stop_proxy
	bench_node_down
	if [ -n "${KEEP_WORK:-}" ]; then
		bench_log "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'bench_warn "interrupted"; exit 130' INT
trap 'bench_warn "terminated"; exit 143' TERM HUP

# ---------------------------------------------------------------------------
# Machine and versions
# ---------------------------------------------------------------------------
first_line() { head -n 1 | tr -d '\r'; }

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[ -n "$cpu_model" ] || cpu_model=$(uname -m)
mem_total=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)

ver_pg=$("$PGBIN/postgres" --version 2>/dev/null | first_line)
ver_pgbench=$("$PGBIN/pgbench" --version 2>/dev/null | first_line)
ver_pgbouncer=$("$PGBOUNCER" --version 2>&1 | first_line)
ver_pgpool=$("$PGPOOL" --version 2>&1 | first_line) # pgpool prints it on stderr
[ -x "$PGBOUNCER" ] || ver_pgbouncer=
[ -x "$PGPOOL" ] || ver_pgpool=
ver_git=$(git -C "$TOP" describe --always --dirty --tags 2>/dev/null)
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
workload:  pgbench -n -S -M <protocol> -c $CLIENTS -j $JOBS -T $DURATION, scale $SCALE, 127.0.0.1 TCP
pools:     pgbouncer transaction mode, default_pool_size=$POOL_SIZE;
           pgpool raw mode, num_init_children=$(( CLIENTS > 32 ? CLIENTS : 32 )), max_pool=1, connection_cache=on;
           pgchorus transaction mode, pool_size=$POOL_SIZE, workers=0 (= cores)
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

# wait for the proxy to answer; on failure stop it and fill START_ERR from its log
proxy_wait() {
	local name=$1 log=$2
	if bench_wait_pg 127.0.0.1 "$TARGET_PORT" 15 "$PROXY_PID"; then
		return 0
	fi
	if kill -0 "$PROXY_PID" 2>/dev/null; then
		START_ERR="$name did not accept connections within 15 s"
	else
		START_ERR="$name exited at start-up"
	fi
	stop_proxy
	bench_warn "$START_ERR; last lines of $log:"
	tail -n 15 "$log" 2>/dev/null | sed 's/^/    /' >&2
	return 1
}

start_pgbouncer() {
	local d=$WORK/pgbouncer
	[ -x "$PGBOUNCER" ] || { START_ERR="$PGBOUNCER not found"; return 1; }
	mkdir -p "$d"
	bench_free_port TARGET_PORT
	printf '"postgres" ""\n' >"$d/userlist.txt"
	cat >"$d/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$NODE_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $TARGET_PORT
unix_socket_dir = $d
pidfile = $d/pgbouncer.pid
logfile = $d/pgbouncer.log
auth_type = trust
auth_file = $d/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = 1000
log_connections = 0
log_disconnections = 0
EOF
	bench_chown "$d"
	as_pg_exec "$PGBOUNCER" "$d/pgbouncer.ini" >"$d/stderr.log" 2>&1 &
	PROXY_PID=$!
	PROXY_SIG=TERM # pgbouncer: SIGTERM = immediate shutdown
	proxy_wait pgbouncer "$d/pgbouncer.log"
}

start_pgpool() {
	local d=$WORK/pgpool pcp_port children
	[ -x "$PGPOOL" ] || { START_ERR="$PGPOOL not found"; return 1; }
	children=$(( CLIENTS > 32 ? CLIENTS : 32 ))
	mkdir -p "$d/oiddir"
	bench_free_port TARGET_PORT
	bench_free_port pcp_port
	: >"$d/pcp.conf"
	: >"$d/pool_passwd"
	printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$d/pool_hba.conf"
	cat >"$d/pgpool.conf" <<EOF
backend_clustering_mode = 'raw'
listen_addresses = '127.0.0.1'
port = $TARGET_PORT
socket_dir = '$d'
pcp_listen_addresses = '127.0.0.1'
pcp_port = $pcp_port
pcp_socket_dir = '$d'
wd_ipc_socket_dir = '$d'
pid_file_name = '$d/pgpool.pid'
logdir = '$d'
memqcache_oiddir = '$d/oiddir'

backend_hostname0 = '127.0.0.1'
backend_port0 = $NODE_PORT
backend_weight0 = 1
backend_flag0 = 'DISALLOW_TO_FAILOVER'

enable_pool_hba = off
pool_passwd = ''
num_init_children = $children
reserved_connections = 0
max_pool = 1
connection_cache = on
child_life_time = 0
child_max_connections = 0
connection_life_time = 0
client_idle_limit = 0

load_balance_mode = off
memory_cache_enabled = off
use_watchdog = off
health_check_period = 0
sr_check_period = 0
failover_on_backend_error = off

log_destination = 'stderr'
logging_collector = off
log_min_messages = warning
log_connections = off
log_disconnections = off
EOF
	bench_chown "$d"
	as_pg_exec "$PGPOOL" -n -D -f "$d/pgpool.conf" -F "$d/pcp.conf" -a "$d/pool_hba.conf" \
		>"$d/pgpool.log" 2>&1 &
	PROXY_PID=$!
	PROXY_SIG=INT # pgpool: SIGINT = fast shutdown (SIGTERM waits for clients)
	proxy_wait pgpool "$d/pgpool.log"
}

start_pgchorus() {
	local d=$WORK/pgchorus
	[ -x "$PGCHORUS" ] || { START_ERR="$PGCHORUS not built"; return 1; }
	mkdir -p "$d"
	bench_free_port TARGET_PORT
	cat >"$d/pgchorus.conf" <<EOF
listen_addresses = "127.0.0.1";
port = $TARGET_PORT;
unix_socket_dir = "$d";
workers = 0;
pool_mode = "transaction";
pool_size = $POOL_SIZE;
max_client_conn = 10000;
auth_method = "trust";
control_socket = "$d/pgchorus.ctl";
log_level = "warning";
nodes = ( { host = "127.0.0.1"; port = $NODE_PORT; weight = 1.0; } );
EOF
	bench_chown "$d"
	as_pg_exec "$PGCHORUS" -n -f "$d/pgchorus.conf" >"$d/pgchorus.log" 2>&1 &
	PROXY_PID=$!
	PROXY_SIG=TERM
	proxy_wait pgchorus "$d/pgchorus.log"
}

# ---------------------------------------------------------------------------
# One pgbench run.  Fills the R_* variables.
# ---------------------------------------------------------------------------
# pgbench checks -T only between transactions: against a proxy that stops
# answering it would wait forever, so it gets HANG_GRACE seconds beyond the
# duration and is then stopped (exit 124 from timeout; see measure()).
HANG_GRACE=${HANG_GRACE:-30}
pgbench_run() { # PORT PROTOCOL SECONDS LOGFILE
	timeout -k 5 $(( $3 + HANG_GRACE )) \
		"$PGBIN/pgbench" -n -S -M "$2" -c "$CLIENTS" -j "$JOBS" -T "$3" \
		-h 127.0.0.1 -p "$1" -U postgres postgres >"$4" 2>&1 &
	PGBENCH_PID=$!
	wait "$PGBENCH_PID"
	local rc=$?
	PGBENCH_PID=
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
	R_OTHER=$(awk -v s=$(( s1 - s0 )) -v o=$(( o1 - o0 )) -v w0="$w0" -v w1="$w1" \
		-v hz="$BENCH_CLK_TCK" -v n="$(nproc)" 'BEGIN {
			x = (s - o) / hz / ((w1 - w0) * n) * 100
			if (x < 0) x = 0
			printf "%.0f\n", x }')
	R_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$log" | head -n 1)
	R_LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$log" | head -n 1)
	R_FAILED=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log" | head -n 1)
	R_TX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log" | head -n 1)
	# PG15 pgbench: "client 3 script 0 aborted in command 1 query 0: ERROR: ..."
	R_ABORTED=$(grep -cE '^pgbench: error: client [0-9]+ .*aborted' "$log")
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
		first=$(grep -m 1 -E 'aborted in|ERROR|FATAL|error:' "$log" |
			sed -e 's/^pgbench: error: //' -e 's/  */ /g' | cut -c 1-160)
		[ -n "$first" ] && R_NOTE="$R_NOTE; first error: $first"
		if [ "$R_ABORTED" -gt 0 ] && grep -q 'ERROR: *prepared statement .* already exists' "$log"; then
			R_NOTE="$R_NOTE; also: $(grep -c 'ERROR: *prepared statement .* already exists' "$log")x 'prepared statement ... already exists'"
		fi
	elif [ -n "$R_CPU" ] && [ -n "$R_TX" ] && [ "$R_TX" -gt 0 ]; then
		R_CPU10K=$(awk -v c="$R_CPU" -v n="$R_TX" 'BEGIN { printf "%.3f", c / n * 10000 }')
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
ratio() { # A B -> A/B or n/a
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) { print "n/a"; exit }
		printf "%.2f\n", a / b }'
}
fmt_num() { # NUMBER DECIMALS
	case $1 in
	n/a | '') echo n/a ;;
	*) awk -v x="$1" -v d="$2" 'BEGIN { printf "%.*f\n", d, x }' ;;
	esac
}

mkdir -p "$RESULTS_DIR"
CSV="$RESULTS_DIR/pool-$STAMP.csv"
PNG="$RESULTS_DIR/pool-$STAMP.png"
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
	if gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1; then
		term="pngcairo size 1000,600 font 'sans,10'"
	else
		term="png size 1000,600"
	fi
	gnuplot >"$WORK/out/gnuplot.log" 2>&1 <<EOF && [ -s "$PNG" ] && chart_ok=1
set terminal $term
set output '$PNG'
set title "pgbench -S (select only), $CLIENTS clients, ${DURATION} s per run, scale $SCALE\n$(nproc) CPUs, $cpu_model, $(date -u '+%Y-%m-%d')"
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
