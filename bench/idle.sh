#!/usr/bin/env bash
# bench/idle.sh - memory of idle client connections: the proxy's resident
# memory before and after CLIENTS clients have logged in and stay idle, for
# pgbouncer (transaction pooling), pgpool-II (when it can take that many
# clients) and pgchorus (pool_mode "transaction").
#
# Usage:  bench/idle.sh                 (as root or as a user that can run PG)
#         CLIENTS=500 bench/idle.sh
#
# Environment (all optional):
#   CLIENTS    idle client connections                       (10000)
#   TARGETS    subset/order of: pgbouncer pgpool pgchorus
#   POOL_SIZE  server connections per pool, pgbouncer and pgchorus (20)
#   BATCH      connections being set up at the same time     (200)
#   LOGIN_TIMEOUT  seconds for all clients to log in         (300)
#   SETTLE     seconds to wait before each RSS reading       (2)
#   PGPOOL_MAX_CHILDREN  pgpool-II is only tried up to this many clients
#              (one process per client)                      (2000)
#   PGCHORUS, PGBOUNCER, PGPOOL, PGBIN, PYTHON  binaries
#   RESULTS_DIR, BENCH_OWN_NODE, KEEP_WORK      as for pool.sh
#
# Output: a report on stdout, progress on stderr,
# bench/results/idle-<stamp>.csv and bench/results/idle-<stamp>.png.
# The whole script is one { ... } block (see pool.sh).
{
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
BENCH_TOP=$TOP
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

CLIENTS=${CLIENTS:-10000}
TARGETS=${TARGETS:-"pgbouncer pgpool pgchorus"}
POOL_SIZE=${POOL_SIZE:-20}
BATCH=${BATCH:-200}
LOGIN_TIMEOUT=${LOGIN_TIMEOUT:-300}
SETTLE=${SETTLE:-2}
PGPOOL_MAX_CHILDREN=${PGPOOL_MAX_CHILDREN:-2000}
PGCHORUS=${PGCHORUS:-$TOP/pgchorus}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
PGPOOL=${PGPOOL:-/usr/sbin/pgpool}
PYTHON=${PYTHON:-/usr/bin/python3}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
# bench_check_knobs wants these four
DURATION=1 JOBS=1 SCALE=1

bench_check_knobs CLIENTS POOL_SIZE BATCH LOGIN_TIMEOUT SETTLE PGPOOL_MAX_CHILDREN
[ "$BATCH" -ge 1 ] && [ "$LOGIN_TIMEOUT" -ge 1 ] || bench_die "BATCH and LOGIN_TIMEOUT must be at least 1"
for t in $TARGETS; do
	case $t in pgbouncer | pgpool | pgchorus) ;; *) bench_die "unknown target '$t'" ;; esac
done
bench_check_pg ''
bench_check_env
[ -x "$PYTHON" ] || bench_die "$PYTHON not found (PYTHON=... to use another Python 3)"
CLIENT_PY=$HERE/idle_clients.py
[ -f "$CLIENT_PY" ] || bench_die "$CLIENT_PY is missing"

# ---------------------------------------------------------------------------
# Open files.  Every process inherits this shell's limit: the client script
# holds CLIENTS sockets, pgbouncer needs max_client_conn plus its server
# connections (it does not raise its own limit), pgchorus raises its soft
# limit at start to what max_client_conn needs, but only up to the hard
# limit.  So: hard and soft limit at least CLIENTS + 1024.
# ---------------------------------------------------------------------------
FD_WANT=$(( CLIENTS + 1024 ))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$FD_WANT" ]; then
	ulimit -Hn "$FD_WANT" 2>/dev/null ||
		bench_warn "cannot raise the hard open-file limit ($(ulimit -Hn)) to $FD_WANT (needs root; see bench/README.md)"
fi
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$FD_WANT" ]; then
	ulimit -Sn "$FD_WANT" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
fi
FD_LIMIT=$(ulimit -Sn)

STAMP=$(date +%Y%m%d-%H%M%S)
bench_setup_work idle
BENCH_NODES_DOWN=bench_node_down

bench_versions
ver_pgbouncer=
[ -x "$PGBOUNCER" ] && ver_pgbouncer=$("$PGBOUNCER" --version 2>&1 | first_line)
bench_pgchorus_version

cat <<EOF
== pgchorus idle-connection memory benchmark (bench/idle.sh) ==
date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')
machine:   $(nproc) CPUs, $cpu_model, $mem_total RAM
kernel:    $(uname -sr)
postgres:  ${ver_pg:-?}
pgbouncer: ${ver_pgbouncer:-not installed}
pgpool:    ${ver_pgpool:-not installed}
pgchorus:  $ver_pgchorus
clients:   $CLIENTS idle connections over 127.0.0.1 TCP (StartupMessage, trust, ReadyForQuery,
           then nothing), $BATCH being set up at a time, by bench/idle_clients.py ($($PYTHON --version 2>&1))
open files: soft limit $FD_LIMIT for the proxies and the client (wanted $FD_WANT)
pools:     pgbouncer pool_mode=transaction, default_pool_size=$POOL_SIZE, max_client_conn=$(( CLIENTS + 100 ));
           pgpool raw mode, num_init_children=$CLIENTS, max_pool=1 (one process and one backend per client);
           pgchorus pool_mode="transaction", pool_size=$POOL_SIZE, max_client_conn=$(( CLIENTS + 100 )), workers=0 (= cores)
EOF

bench_node_up "$WORK"
bench_log "node ready: 127.0.0.1:$NODE_PORT ($BENCH_NODE_KIND)"
node_q() {
	"$PGBIN/psql" -XAtq -h 127.0.0.1 -p "$NODE_PORT" -U postgres -d postgres -c "$1" 2>/dev/null
}
max_conn=$(node_q 'show max_connections')
echo "node:      PostgreSQL on 127.0.0.1:$NODE_PORT, max_connections=${max_conn:-?}"
echo "load:      $(cut -d ' ' -f 1-3 /proc/loadavg) (1/5/15-min load average before the node was set up)"
echo

# ---------------------------------------------------------------------------
# Targets: start_<target> sets TARGET_PORT, PROXY_PID, PROXY_SIG or returns
# non-zero with START_ERR.
# ---------------------------------------------------------------------------
START_ERR=
TARGET_PORT=
BENCH_PGCHORUS_MAX_CLIENT_CONN=$(( CLIENTS + 100 ))

start_pgbouncer() {
	bench_start_pgbouncer "$WORK/pgbouncer" 15 "$NODE_PORT" <<EOF
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_client_conn = $(( CLIENTS + 100 ))
EOF
}

start_pgpool() {
	[ -x "$PGPOOL" ] || { START_ERR="$PGPOOL not found"; return 1; }
	# pgpool-II serves one client per child process, and with max_pool = 1
	# each child holds its own PostgreSQL connection: CLIENTS children and
	# CLIENTS backends.
	if [ -n "$max_conn" ] && [ "$CLIENTS" -gt $(( max_conn - 10 )) ]; then
		START_ERR="pgpool-II needs one PostgreSQL backend per client: $CLIENTS clients > node max_connections $max_conn - 10"
		return 1
	fi
	if [ "$CLIENTS" -gt "$PGPOOL_MAX_CHILDREN" ]; then
		START_ERR="pgpool-II needs one process per client (num_init_children): $CLIENTS > PGPOOL_MAX_CHILDREN=$PGPOOL_MAX_CHILDREN"
		return 1
	fi
	bench_start_pgpool "$WORK/pgpool" raw "$CLIENTS" 15 "$NODE_PORT" <<EOF
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
# One measurement.  Fills the R_* variables.
# ---------------------------------------------------------------------------
CLIENT_PID=
stop_clients() {
	if [ -n "$CLIENT_PID" ]; then
		exec 9>&- # end of file on the client's stdin: it closes its connections
		for _ in $(seq 1 300); do
			kill -0 "$CLIENT_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -TERM "$CLIENT_PID" 2>/dev/null
		wait "$CLIENT_PID" 2>/dev/null
		CLIENT_PID=
		BG_PIDS=()
	fi
}

measure() { # TARGET
	local t=$1 out="$WORK/out/$1-clients.out" err="$WORK/out/$1-clients.err" fifo="$WORK/out/$1-hold"
	local t0 t1 waited=0 limit=$(( LOGIN_TIMEOUT + 30 )) line
	R_PROCS='' R_RSS0='' R_RSS1='' R_PSS0='' R_PSS1='' R_ANON0='' R_ANON1='' R_READY=0 R_FAILED='' R_LOGIN_S='' R_NOTE=''
	# A first client through the proxy, so that one-time set-up (the pool, its
	# first server connection) is in the "before" figure, not spread over the
	# clients.
	"$PGBIN/psql" -XAtq -h 127.0.0.1 -p "$TARGET_PORT" -U postgres -d postgres -c 'select 1' \
		>/dev/null 2>&1 || bench_warn "$t: select 1 through the proxy failed"
	sleep "$SETTLE"
	R_PROCS=$(bench_tree_pids "$PROXY_PID" | sort -u | wc -l)
	R_RSS0=$(bench_mem_kb VmRSS "$PROXY_PID")
	R_PSS0=$(bench_mem_kb Pss "$PROXY_PID")
	R_ANON0=$(bench_mem_kb RssAnon "$PROXY_PID")

	rm -f "$fifo"
	mkfifo "$fifo"
	bench_log "$t: opening $CLIENTS idle connections"
	t0=$(bench_now)
	"$PYTHON" "$CLIENT_PY" --host 127.0.0.1 --port "$TARGET_PORT" --user postgres \
		--database postgres --batch "$BATCH" --timeout "$LOGIN_TIMEOUT" "$CLIENTS" \
		<"$fifo" >"$out" 2>"$err" &
	CLIENT_PID=$!
	BG_PIDS=("$CLIENT_PID")
	exec 9>"$fifo"
	while ! grep -q '^ready ' "$out" 2>/dev/null; do
		kill -0 "$CLIENT_PID" 2>/dev/null || break
		[ "$waited" -ge $(( limit * 10 )) ] && break
		sleep 0.1
		waited=$(( waited + 1 ))
	done
	t1=$(bench_now)
	line=$(grep -m 1 '^ready ' "$out" 2>/dev/null)
	if [ -z "$line" ]; then
		R_NOTE="the client script gave no 'ready' line within $limit s; $(head -c 300 "$err" | tr '\n' ' ')"
		stop_clients
		return 1
	fi
	R_READY=${line#ready }
	R_LOGIN_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	R_FAILED=$(( CLIENTS - R_READY ))
	if [ "$R_FAILED" -gt 0 ]; then
		R_NOTE="$R_FAILED of $CLIENTS clients did not log in: $(sed -n '2,4p' "$err" | sed 's/^ *//' | paste -sd ';' -)"
	fi
	sleep "$SETTLE"
	if ! kill -0 "$PROXY_PID" 2>/dev/null; then
		R_NOTE="$t exited while the clients were connected${R_NOTE:+; $R_NOTE}"
		stop_clients
		return 1
	fi
	R_RSS1=$(bench_mem_kb VmRSS "$PROXY_PID")
	R_PSS1=$(bench_mem_kb Pss "$PROXY_PID")
	R_ANON1=$(bench_mem_kb RssAnon "$PROXY_PID")
	stop_clients
	if grep -q 'lost [1-9]' "$err"; then
		R_NOTE="${R_NOTE:+$R_NOTE; }some connections were closed by the proxy while idle: $(grep -m 1 -A 1 'lost' "$err" | paste -sd ' ' -)"
	fi
	bench_log "$t: ready $R_READY in ${R_LOGIN_S}s, RSS ${R_RSS0} -> ${R_RSS1} kB"
	return 0
}

per_client() { # BEFORE_KB AFTER_KB CLIENTS: bytes per client, or n/a
	awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {
		if (a !~ /^[0-9]+$/ || b !~ /^[0-9]+$/ || n + 0 <= 0) { print "n/a"; exit }
		printf "%.0f\n", (b - a) * 1024 / n }'
}

declare -A PROCS RSS0 RSS1 PSS0 PSS1 ANON0 ANON1 READY FAILED LOGIN NOTE BPC PSSBPC ANONBPC
NOTES=()
for t in $TARGETS; do
	START_ERR=
	PROCS[$t]=n/a RSS0[$t]=n/a RSS1[$t]=n/a PSS0[$t]=n/a PSS1[$t]=n/a READY[$t]=n/a
	FAILED[$t]=n/a LOGIN[$t]=n/a BPC[$t]=n/a PSSBPC[$t]=n/a NOTE[$t]=
	ANON0[$t]=n/a ANON1[$t]=n/a ANONBPC[$t]=n/a
	bench_log "starting $t"
	if ! "start_$t"; then
		bench_warn "$t: n/a (${START_ERR:-failed to start})"
		NOTE[$t]="n/a: ${START_ERR:-failed to start}"
		NOTES+=("$t: ${NOTE[$t]}")
		continue
	fi
	if measure "$t"; then
		PROCS[$t]=$R_PROCS RSS0[$t]=$R_RSS0 RSS1[$t]=$R_RSS1 PSS0[$t]=${R_PSS0:-n/a} PSS1[$t]=${R_PSS1:-n/a}
		READY[$t]=$R_READY FAILED[$t]=$R_FAILED LOGIN[$t]=$R_LOGIN_S
		BPC[$t]=$(per_client "$R_RSS0" "$R_RSS1" "$R_READY")
		PSSBPC[$t]=$(per_client "$R_PSS0" "$R_PSS1" "$R_READY")
		ANON0[$t]=${R_ANON0:-n/a} ANON1[$t]=${R_ANON1:-n/a}
		ANONBPC[$t]=$(per_client "$R_ANON0" "$R_ANON1" "$R_READY")
	fi
	NOTE[$t]=$R_NOTE
	[ -n "$R_NOTE" ] && NOTES+=("$t: $R_NOTE")
	stop_proxy
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
mkdir -p "$RESULTS_DIR"
CSV="$RESULTS_DIR/idle-$STAMP.csv"
PNG="$RESULTS_DIR/idle-$STAMP.png"
DAT="$WORK/out/idle.dat"

echo "date,proxy,clients,ready,failed,login_s,processes,rss_before_kb,rss_after_kb,bytes_per_client,ratio_vs_pgbouncer,anon_before_kb,anon_after_kb,anon_bytes_per_client,pss_before_kb,pss_after_kb,pss_bytes_per_client,note" >"$CSV"
fmt='%-10s %6s %6s %8s %12s %12s %10s %7s %10s %10s %s\n'
# shellcheck disable=SC2059
printf "$fmt" proxy procs ready "login s" "RSS before KB" "RSS after KB" "B/client" "vs pgb" "anon B/cl" "PSS B/cl" ""
# shellcheck disable=SC2059
printf "$fmt" ---------- ------ ------ -------- ------------ ------------ ---------- ------- ---------- ---------- ""
: >"$DAT"
for t in $TARGETS; do
	r=$(ratio "${BPC[$t]}" "${BPC[pgbouncer]:-n/a}")
	mark=
	[ "${FAILED[$t]}" != n/a ] && [ "${FAILED[$t]}" -gt 0 ] && mark='*'
	# shellcheck disable=SC2059
	printf "$fmt" "$t" "${PROCS[$t]}" "${READY[$t]}$mark" "${LOGIN[$t]}" "${RSS0[$t]}" "${RSS1[$t]}" \
		"${BPC[$t]}" "$r" "${ANONBPC[$t]}" "${PSSBPC[$t]}" ""
	note=${NOTE[$t]//\"/\"\"}
	printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,"%s"\n' "$STAMP" "$t" "$CLIENTS" \
		"${READY[$t]}" "${FAILED[$t]}" "${LOGIN[$t]}" "${PROCS[$t]}" "${RSS0[$t]}" "${RSS1[$t]}" \
		"${BPC[$t]}" "$r" "${ANON0[$t]}" "${ANON1[$t]}" "${ANONBPC[$t]}" "${PSS0[$t]}" "${PSS1[$t]}" "${PSSBPC[$t]}" "$note" >>"$CSV"
	v=${BPC[$t]} tag=-
	[ "$v" = n/a ] && v=NaN tag=n/a
	[ -n "$mark" ] && tag="${READY[$t]} of $CLIENTS"
	printf '%s %s "%s"\n' "$t" "$v" "$tag" >>"$DAT"
done
echo
echo "procs     = processes of the proxy (pgpool-II: parent + children); RSS is VmRSS from"
echo "            /proc/PID/status summed over them, read $SETTLE s after the start (and one"
echo "            'select 1' client) and $SETTLE s after the last client got ReadyForQuery."
echo "login s   = time to open all connections and get every ReadyForQuery ($BATCH at a time)."
echo "B/client  = (RSS after - RSS before) / clients logged in, in bytes; vs pgb = that / pgbouncer's."
echo "anon B/cl = the same from RssAnon (/proc/PID/status): heap, stacks and other private"
echo "            memory only, without program text paged in for the first time."
echo "PSS B/cl  = the same from Pss (/proc/PID/smaps_rollup): pages shared with other processes"
echo "            (pgpool-II's children, other processes running the same binary) divided"
echo "            among them."
if printf '%s\n' "${FAILED[@]}" | grep -qv '^0$\|^n/a$'; then
	echo "*         = not every client logged in: per-client figures are over those that did."
fi
if [ "$PGCHORUS_SANITIZED" = 1 ]; then
	NOTES+=("$PGCHORUS is built with AddressSanitizer (configure --enable-sanitizers): its memory figures are not representative; use PGCHORUS=<an -O2 build without sanitizers>")
fi
if [ "${#NOTES[@]}" -gt 0 ]; then
	echo
	echo "Notes:"
	for n in "${NOTES[@]}"; do echo "  - $n"; done
fi

chart_ok=0
if command -v gnuplot >/dev/null; then
	term=$(bench_gnuplot_term 800 500)
	gnuplot >"$WORK/out/gnuplot.log" 2>&1 <<EOF && [ -s "$PNG" ] && chart_ok=1
set terminal $term
set output '$PNG'
set title "Proxy memory per idle client connection ($CLIENTS clients, RSS growth)\n$(nproc) CPUs, $cpu_model, $(date -u '+%Y-%m-%d')"
set ylabel 'bytes per idle client'
set yrange [0:*]
set offsets 0, 0, graph 0.1, 0
set grid ytics
set style fill solid 0.85 border -1
set boxwidth 0.6
set xrange [-0.6:$(echo $TARGETS | wc -w) - 0.4]
set datafile missing 'NaN'
set xtics nomirror
unset key
plot '$DAT' using 0:2:xtic(1) with boxes lc rgb '#4477aa', \
     '$DAT' using 0:2:(sprintf('%.0f', \$2)) with labels offset 0,0.8, \
     '$DAT' using 0:(0):(strcol(3) eq '-' ? '' : strcol(3)) with labels offset 0,0.8
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
