#!/usr/bin/env bash
# bench/replication.sh - replicated write throughput: pgbench tpcb-like on one
# PostgreSQL node (direct), on three nodes at once with two-phase commit and no
# proxy (limit), through pgpool-II in native replication mode and through
# pgchorus in replication mode (both in front of the same three nodes).
#
# Usage:  bench/replication.sh          (as root or as a user that can run PG)
#         DURATION=10 SYSTEMS="direct pgchorus" bench/replication.sh
#
# Environment (all optional):
#   DURATION   seconds per pgbench run                       (20)
#   CLIENTS    pgbench clients (-c), per node for "limit"    (16)
#   JOBS       pgbench threads (-j)                          (2)
#   SCALE      pgbench -i scale factor                       (10)
#   PROTOCOL   pgbench -M: simple, extended or prepared      (simple)
#   SYSTEMS    subset/order of: direct limit pgpool pgchorus
#   POOL_SIZE  pgchorus pool_size (per node)                 (40)
#   LOAD_BALANCE  pgchorus load_balance; "" = leave the setting out     (statement)
#   SETTLE     seconds to wait after a run for prepared transactions to go (10)
#   HANG_GRACE seconds past DURATION after which a stuck pgbench is killed (30)
#   PGCHORUS   pgchorus binary                               ($TOP/pgchorus)
#   PGPOOL     pgpool binary                                 (/usr/sbin/pgpool)
#   PGBIN      PostgreSQL 15 bin directory                   (/usr/lib/postgresql/15/bin)
#   RESULTS_DIR  where the CSV and PNG go                    (bench/results)
#   BACKEND    how the proxies reach the nodes: tcp (127.0.0.1) or unix (their
#              socket directory)                              (tcp)
#   KEEP_WORK=1       keep the temporary directory (logs, configs) at exit
#
# Output: a report on stdout, progress on stderr,
# bench/results/replication-<stamp>.csv and bench/results/replication-<stamp>.png.
# The whole script is one { ... } block, so editing it during a run is safe.
{
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
BENCH_TOP=$TOP
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-16}
JOBS=${JOBS:-2}
SCALE=${SCALE:-10}
PROTOCOL=${PROTOCOL:-simple}
SYSTEMS=${SYSTEMS:-"direct limit pgpool pgchorus"}
POOL_SIZE=${POOL_SIZE:-40}
LOAD_BALANCE=${LOAD_BALANCE-statement}
SETTLE=${SETTLE:-10}
HANG_GRACE=${HANG_GRACE:-30}
PGCHORUS=${PGCHORUS:-$TOP/pgchorus}
PGPOOL=${PGPOOL:-/usr/sbin/pgpool}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
CLUSTER_SH=$TOP/scripts/cluster.sh
NNODES=3

bench_check_knobs DURATION CLIENTS JOBS SCALE POOL_SIZE SETTLE HANG_GRACE
case $PROTOCOL in simple | extended | prepared) ;; *) bench_die "unknown PROTOCOL '$PROTOCOL'" ;; esac
for s in $SYSTEMS; do
	case $s in direct | limit | pgpool | pgchorus) ;; *) bench_die "unknown system '$s'" ;; esac
done
bench_check_pg " (Debian package postgresql-15)"
[ -x "$CLUSTER_SH" ] || bench_die "$CLUSTER_SH is missing"
bench_check_env

STAMP=$(date +%Y%m%d-%H%M%S)

# ---------------------------------------------------------------------------
# Work directory and cleanup (bench/lib.sh: bench_cleanup)
# ---------------------------------------------------------------------------
bench_setup_work repl
destroy_cluster() {
	"$CLUSTER_SH" destroy "$WORK/cluster" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------
# Machine and versions
# ---------------------------------------------------------------------------
bench_versions
if [ -x "$PGCHORUS" ]; then
	ver_pgchorus=$(cd "$WORK" && timeout 5 "$PGCHORUS" --version 2>/dev/null | first_line)
	[ -n "$ver_pgchorus" ] || ver_pgchorus="(no --version)"
	ver_pgchorus="$ver_pgchorus, $PGCHORUS${ver_git:+ (git $ver_git)}"
else
	ver_pgchorus="not built ($PGCHORUS missing)"
fi
children=$(( CLIENTS > 32 ? CLIENTS : 32 ))

cat <<EOF
== pgchorus replication benchmark (bench/replication.sh) ==
date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')
machine:   $(nproc) CPUs, $cpu_model, $mem_total RAM
kernel:    $(uname -sr)
postgres:  ${ver_pg:-?}
pgbench:   ${ver_pgbench:-?}
pgpool:    ${ver_pgpool:-not installed (Debian package pgpool2)}
pgchorus:  $ver_pgchorus
workload:  pgbench -n -b tpcb-like -M $PROTOCOL -c $CLIENTS -j $JOBS -T $DURATION, scale $SCALE, 127.0.0.1 TCP;
           data re-created with pgbench -i on every node before each system
backend:   the proxies reach the nodes over $( [ "${BACKEND:-tcp}" = unix ] && echo "their unix socket" || echo "127.0.0.1 TCP")
systems:   direct   = one node, no proxy (the ceiling)
           limit    = tpcb-like + PREPARE TRANSACTION/COMMIT PREPARED on each of the $NNODES nodes at
                      the same time, $CLIENTS clients per node, no proxy; TPS = the slowest node
           pgpool   = native_replication, $NNODES backends, load_balance_mode on, replicate_select off,
                      num_init_children=$children, max_pool=1
           pgchorus = mode replication, $NNODES nodes, load_balance ${LOAD_BALANCE:-(default)}, pool_mode session,
                      pool_size=$POOL_SIZE
EOF

# ---------------------------------------------------------------------------
# Three PostgreSQL nodes
# ---------------------------------------------------------------------------
bench_log "creating $NNODES nodes with scripts/cluster.sh"
if ! "$CLUSTER_SH" init "$WORK/cluster" "$NNODES" >"$WORK/out/cluster.log" 2>&1; then
	sed 's/^/    /' "$WORK/out/cluster.log" | tail -n 20 >&2
	bench_die "scripts/cluster.sh init failed"
fi
BENCH_NODES_DOWN=destroy_cluster
"$CLUSTER_SH" start "$WORK/cluster" >>"$WORK/out/cluster.log" 2>&1 ||
	{ sed 's/^/    /' "$WORK/out/cluster.log" | tail -n 20 >&2; bench_die "scripts/cluster.sh start failed"; }
# shellcheck disable=SC1091
. "$WORK/cluster/cluster.env"
NODE_SOCKDIR=$SOCKDIR # BACKEND=unix (bench/lib.sh)
NODE_PORTS=()
for ((k = 0; k < NNODES; k++)); do
	v=NODE${k}_PORT
	NODE_PORTS+=("${!v}")
done

node_q() { # K SQL
	"$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "${NODE_PORTS[$1]}" -U postgres \
		-d postgres -c "$2"
}
node_pids() {
	local k
	for ((k = 0; k < NNODES; k++)); do
		head -n 1 "$WORK/cluster/node$k/postmaster.pid" 2>/dev/null
	done
}

mpx=$(node_q 0 'show max_prepared_transactions')
echo "nodes:     $NNODES x PostgreSQL on 127.0.0.1:${NODE_PORTS[*]} (scripts/cluster.sh):" \
	"fsync=$(node_q 0 'show fsync'), synchronous_commit=$(node_q 0 'show synchronous_commit')," \
	"shared_buffers=$(node_q 0 'show shared_buffers'), max_connections=$(node_q 0 'show max_connections')," \
	"max_prepared_transactions=$mpx"
echo "load:      $(cut -d ' ' -f 1-3 /proc/loadavg) (1/5/15-min load average before the runs)"
echo
if [ "${mpx:-0}" -lt "$CLIENTS" ]; then
	bench_warn "max_prepared_transactions=$mpx < CLIENTS=$CLIENTS: 2PC runs will fail"
fi

# Re-create the pgbench tables on every node (identical data: pgbench -i
# generates it deterministically) after rolling back any prepared transaction
# a previous system left behind (it would hold locks on the old tables).
reinit_nodes() {
	local k gid pids=() rc=0
	for ((k = 0; k < NNODES; k++)); do
		for gid in $(node_q "$k" 'SELECT gid FROM pg_prepared_xacts' 2>/dev/null); do
			node_q "$k" "ROLLBACK PREPARED '$gid'" >/dev/null 2>&1
		done
	done
	for ((k = 0; k < NNODES; k++)); do
		"$PGBIN/pgbench" -i -q -s "$SCALE" -h 127.0.0.1 -p "${NODE_PORTS[$k]}" -U postgres postgres \
			>"$WORK/out/init-$1-node$k.log" 2>&1 &
		pids+=($!)
	done
	for k in "${!pids[@]}"; do
		if ! wait "${pids[$k]}"; then
			tail -n 10 "$WORK/out/init-$1-node$k.log" >&2
			rc=1
		fi
	done
	[ "$rc" = 0 ] || bench_die "pgbench -i failed"
	for ((k = 0; k < NNODES; k++)); do
		node_q "$k" 'CHECKPOINT' >/dev/null || bench_die "CHECKPOINT on node$k failed"
	done
}

# ---------------------------------------------------------------------------
# Consistency check: per-table digests on every node.
# ---------------------------------------------------------------------------
SQL_DIGEST="SELECT
 (SELECT md5(string_agg(md5(a::text), '' ORDER BY aid)) FROM pgbench_accounts a) || ' ' ||
 (SELECT md5(string_agg(md5(b::text), '' ORDER BY bid)) FROM pgbench_branches b) || ' ' ||
 (SELECT md5(string_agg(md5(t::text), '' ORDER BY tid)) FROM pgbench_tellers t) || ' ' ||
 (SELECT coalesce(md5(string_agg(md5(h::text), '' ORDER BY tid, bid, aid, delta, mtime, filler)), '-')
    FROM pgbench_history h) || ' ' ||
 (SELECT coalesce(md5(string_agg(md5((tid, bid, aid, delta)::text), '' ORDER BY tid, bid, aid, delta)), '-')
    FROM pgbench_history) || ' ' ||
 (SELECT count(*) FROM pgbench_history) || ' ' ||
 (SELECT sum(abalance) FROM pgbench_accounts)"
TABLE_NAMES=(accounts branches tellers history)

# consistency SYSTEM: sets C_IDENT (yes / no / n/a) and C_NOTE
consistency() {
	local sys=$1 k d ok=1 i t bad=() hist_rows=() sums=()
	local -a dig
	C_IDENT=n/a C_NOTE=
	for ((k = 0; k < NNODES; k++)); do
		if ! d=$(node_q "$k" "$SQL_DIGEST" 2>"$WORK/out/digest-$sys-node$k.err"); then
			C_NOTE="digest query failed on node$k: $(head -n 1 "$WORK/out/digest-$sys-node$k.err")"
			return
		fi
		dig[$k]=$d
		read -r -a f <<<"$d"
		hist_rows+=("${f[5]}")
		sums+=("${f[6]}")
	done
	for i in 0 1 2 3 4; do
		read -r -a f0 <<<"${dig[0]}"
		for ((k = 1; k < NNODES; k++)); do
			read -r -a f <<<"${dig[$k]}"
			if [ "${f[$i]}" != "${f0[$i]}" ]; then
				[ "$i" -lt 4 ] && { ok=0; bad+=("${TABLE_NAMES[$i]}"); }
				[ "$i" = 4 ] && bad+=("history-without-mtime")
				break
			fi
		done
	done
	if [ "$ok" = 1 ]; then
		C_IDENT=yes
		C_NOTE="nodes identical; history rows per node: ${hist_rows[*]}"
	else
		C_IDENT=no
		t="tables that differ: ${bad[*]}"
		case " ${bad[*]} " in
		*" history "*)
			case " ${bad[*]} " in
			*" history-without-mtime "*) ;;
			*)
				t="$t (history differs only in mtime: CURRENT_TIMESTAMP evaluated on each node)"
				[ "${#bad[@]}" = 1 ] && C_IDENT="no(mtime)"
				;;
			esac
			;;
		esac
		C_NOTE="$t; history rows per node: ${hist_rows[*]}; sum(abalance) per node: ${sums[*]}"
	fi
}

# prepared_count: prepared transactions over all nodes
prepared_count() {
	local k n total=0
	for ((k = 0; k < NNODES; k++)); do
		n=$(node_q "$k" 'SELECT count(*) FROM pg_prepared_xacts' 2>/dev/null) || n=0
		total=$(( total + ${n:-0} ))
	done
	echo "$total"
}

# ---------------------------------------------------------------------------
# Proxies.  start_<system> sets TARGET_PORT, PROXY_PID, PROXY_SIG, PROXY_LOG
# and returns non-zero with START_ERR on failure.
# ---------------------------------------------------------------------------
START_ERR=
TARGET_PORT=
PROXY_LOG=

start_pgpool() {
	[ -x "$PGPOOL" ] || { START_ERR="$PGPOOL not found (Debian package pgpool2)"; return 1; }
	PROXY_LOG=$WORK/pgpool/pgpool.log
	bench_start_pgpool "$WORK/pgpool" native_replication "$children" 20 "${NODE_PORTS[@]}" <<EOF
load_balance_mode = on
replicate_select = off
insert_lock = off
replication_stop_on_mismatch = off
failover_if_affected_tuples_mismatch = off
failover_on_backend_shutdown = off
auto_failback = off
EOF
}

start_pgchorus() {
	local lb_line=
	[ -x "$PGCHORUS" ] || { START_ERR="$PGCHORUS not built"; return 1; }
	PROXY_LOG=$WORK/pgchorus/pgchorus.log
	[ -n "$LOAD_BALANCE" ] && lb_line="load_balance = \"$LOAD_BALANCE\";"
	bench_start_pgchorus "$WORK/pgchorus" 20 "${NODE_PORTS[@]}" <<EOF
mode = "replication";
$lb_line
pool_mode = "session";
pool_size = $POOL_SIZE;
EOF
}

# ---------------------------------------------------------------------------
# pgbench
# ---------------------------------------------------------------------------
# The tpcb-like transaction with a two-phase commit, for "limit".  pgbench
# replaces :client_id inside the quotes only with -M simple (with extended and
# prepared it becomes a $1 that PREPARE TRANSACTION cannot take), so "limit"
# always runs with -M simple.  The gid is unique per client of one pgbench.
cat >"$WORK/tpcb-2pc.sql" <<'EOF'
\set aid random(1, 100000 * :scale)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
PREPARE TRANSACTION 'bench_limit_:client_id';
COMMIT PREPARED 'bench_limit_:client_id';
EOF
chmod 0644 "$WORK/tpcb-2pc.sql"

# measure SYSTEM PORT: run the pgbench(es) of SYSTEM, fill the result arrays
measure() {
	local sys=$1 port=$2 k rc pm t0 t1 o0 o1 s0 s1 w0 w1 logs=() rcs=() note=
	local min_tps='' min_k=0 all_tps=() failed=0 aborted=0 tx=0 valid=1 cpu=''
	BG_PIDS=()
	pm=$(node_pids)
	[ -n "$PROXY_PID" ] && t0=$(bench_cpu_ticks "$PROXY_PID")
	# shellcheck disable=SC2086
	o0=$(bench_cpu_ticks $$ $pm)
	read -r s0 _ <<<"$(bench_sys_ticks)"
	w0=$(bench_now)
	if [ "$sys" = limit ]; then
		for ((k = 0; k < NNODES; k++)); do
			logs+=("$WORK/out/limit-node$k.log")
			bench_pgbench_bg "${logs[$k]}" "${NODE_PORTS[$k]}" "$DURATION" -M simple -s "$SCALE" -f "$WORK/tpcb-2pc.sql"
		done
	else
		logs+=("$WORK/out/$sys.log")
		bench_pgbench_bg "${logs[0]}" "$port" "$DURATION" -M "$PROTOCOL" -b tpcb-like
	fi
	for k in "${!BG_PIDS[@]}"; do
		wait "${BG_PIDS[$k]}"
		rcs[$k]=$?
	done
	BG_PIDS=()
	w1=$(bench_now)
	read -r s1 _ <<<"$(bench_sys_ticks)"
	# shellcheck disable=SC2086
	o1=$(bench_cpu_ticks $$ $pm)
	if [ -n "$PROXY_PID" ]; then
		t1=$(bench_cpu_ticks "$PROXY_PID")
		cpu=$(bench_ticks_to_s $(( t1 - t0 )))
	fi
	OTHER[$sys]=$(bench_other_pct "$s0" "$s1" "$o0" "$o1" "$w0" "$w1")
	for k in "${!logs[@]}"; do
		bench_parse "${logs[$k]}"
		rc=${rcs[$k]}
		all_tps+=("${P_TPS:-n/a}")
		failed=$(( failed + ${P_FAILED:-0} ))
		aborted=$(( aborted + P_ABORTED ))
		tx=$(( tx + ${P_TX:-0} ))
		if [ "$rc" -ne 0 ] || [ "$P_ABORTED" -gt 0 ] || [ -z "$P_TPS" ]; then
			valid=0
			local what="pgbench exit $rc"
			[ "$rc" = 124 ] || [ "$rc" = 137 ] &&
				what="pgbench hung: no result $HANG_GRACE s after the end of the run, killed"
			[ "$P_ABORTED" -gt 0 ] && what="$what, $P_ABORTED of $CLIENTS clients aborted"
			[ "$sys" = limit ] && what="node$k: $what"
			local fe
			fe=$(bench_first_error "${logs[$k]}" 200)
			[ -n "$fe" ] && what="$what; first error: $fe"
			note="${note:+$note; }$what"
		fi
		if [ -n "$P_TPS" ] && { [ -z "$min_tps" ] || awk -v a="$P_TPS" -v b="$min_tps" 'BEGIN { exit !(a < b) }'; }; then
			min_tps=$P_TPS min_k=$k LAT[$sys]=${P_LAT:-n/a}
		fi
	done
	TPS[$sys]=${min_tps:-n/a}
	[ -n "$min_tps" ] || LAT[$sys]=n/a
	FAILED[$sys]=$failed ABORTED[$sys]=$aborted TXN[$sys]=$tx VALID[$sys]=$valid
	CPU10K[$sys]=-
	if [ -n "$cpu" ] && [ "$tx" -gt 0 ]; then
		CPU10K[$sys]=$(bench_per_10k "$cpu" "$tx")
	fi
	if [ "$sys" = limit ]; then
		NOTES+=("limit: TPS per node ${all_tps[*]} (the table shows node$min_k, the slowest)")
	fi
	[ -n "$note" ] && NOTES+=("$sys: $note")
	bench_log "$sys: tps=${TPS[$sys]} lat=${LAT[$sys]}ms failed=$failed aborted=$aborted tx=$tx"
}

# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------
declare -A TPS LAT FAILED ABORTED TXN VALID IDENT PREP CPU10K OTHER
NOTES=()

record_na() { # SYSTEM REASON
	TPS[$1]=n/a LAT[$1]=n/a FAILED[$1]=n/a ABORTED[$1]=n/a TXN[$1]=n/a VALID[$1]=0
	IDENT[$1]=n/a PREP[$1]=n/a CPU10K[$1]=n/a OTHER[$1]=n/a
	NOTES+=("$1: n/a - $2")
}

for sys in $SYSTEMS; do
	bench_log "$sys: re-creating the pgbench tables on the $NNODES nodes (scale $SCALE)"
	reinit_nodes "$sys"
	PROXY_PID='' TARGET_PORT=''
	case $sys in
	direct) TARGET_PORT=${NODE_PORTS[0]} ;;
	limit) ;;
	*)
		START_ERR=
		bench_log "starting $sys"
		if ! "start_$sys"; then
			record_na "$sys" "${START_ERR:-failed to start}"
			[ -n "$PROXY_LOG" ] && NOTES+=("$sys log (last lines): $(tail -n 5 "$PROXY_LOG" 2>/dev/null | tr '\n' '|')")
			continue
		fi
		;;
	esac
	bench_log "$sys: pgbench for $DURATION s"
	measure "$sys" "$TARGET_PORT"
	IDENT[$sys]=- PREP[$sys]=-
	case $sys in
	pgpool | pgchorus)
		if ! kill -0 "$PROXY_PID" 2>/dev/null; then
			NOTES+=("$sys exited during the run; last lines of its log: $(tail -n 5 "$PROXY_LOG" 2>/dev/null | tr '\n' '|')")
		fi
		# COMMIT PREPARED on the other nodes may still be under way when the
		# client has its answer: give it SETTLE seconds.
		p0=$(prepared_count)
		p=$p0
		for _ in $(seq 1 $(( SETTLE * 5 ))); do
			[ "$p" = 0 ] && break
			sleep 0.2
			p=$(prepared_count)
		done
		stop_proxy
		p=$(prepared_count)
		PREP[$sys]=$p
		[ "$p0" != 0 ] && NOTES+=("$sys: $p0 prepared transaction(s) right after the run, $p after ${SETTLE} s and the proxy's shutdown")
		if [ "$p" != 0 ]; then
			NOTES+=("$sys: left in pg_prepared_xacts: $(for ((k = 0; k < NNODES; k++)); do
				node_q "$k" "SELECT 'node$k:' || string_agg(gid, ',') FROM pg_prepared_xacts" 2>/dev/null
			done | grep -v '^$' | tr '\n' ' ' | cut -c 1-300)")
		fi
		bench_log "$sys: comparing the nodes"
		consistency "$sys"
		IDENT[$sys]=$C_IDENT
		[ -n "$C_NOTE" ] && NOTES+=("$sys: $C_NOTE")
		if grep -qiE 'fatal|panic|error' "$PROXY_LOG" 2>/dev/null; then
			NOTES+=("$sys log: $(grep -ciE 'fatal|panic|error' "$PROXY_LOG") error/fatal lines, first: $(grep -m 1 -iE 'fatal|panic|error' "$PROXY_LOG" | cut -c 1-200)")
		fi
		;;
	esac
	stop_proxy
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
valid_tps() {
	if [ "${VALID[$1]:-0}" = 1 ]; then echo "${TPS[$1]}"; else echo n/a; fi
}

mkdir -p "$RESULTS_DIR"
CSV="$RESULTS_DIR/replication-$STAMP.csv"
PNG="$RESULTS_DIR/replication-$STAMP.png"
DAT="$WORK/out/tps.dat"

echo "date,system,protocol,clients,jobs,duration_s,scale,tps,latency_ms,failed,aborted_clients,transactions,valid,nodes_identical,prepared_left,proxy_cpu_s_per_10k_tx,other_cpu_pct,ratio_vs_direct,ratio_vs_limit" >"$CSV"

fmt='%-9s %10s %9s %7s %8s %9s %10s %9s %9s %10s %9s %7s\n'
# shellcheck disable=SC2059
printf "$fmt" system TPS "lat ms" failed aborted tx identical "prepared" "CPU/10k" "vs direct" "vs limit" "other%"
# shellcheck disable=SC2059
printf "$fmt" --------- ---------- --------- ------- -------- --------- ---------- --------- --------- ---------- --------- -------
any_invalid=0
for sys in $SYSTEMS; do
	mine=$(valid_tps "$sys")
	r_dir=$(ratio "$mine" "$(valid_tps direct)")
	r_lim=$(ratio "$mine" "$(valid_tps limit)")
	shown=$(fmt_num "${TPS[$sys]}" 0)
	if [ "${VALID[$sys]}" != 1 ] && [ "${TPS[$sys]}" != n/a ]; then
		shown="$shown*"
		any_invalid=1
	fi
	proto=$PROTOCOL
	[ "$sys" = limit ] && proto=simple
	# shellcheck disable=SC2059
	printf "$fmt" "$sys" "$shown" "$(fmt_num "${LAT[$sys]}" 3)" "${FAILED[$sys]}" "${ABORTED[$sys]}" \
		"${TXN[$sys]}" "${IDENT[$sys]}" "${PREP[$sys]}" "${CPU10K[$sys]}" "$r_dir" "$r_lim" "${OTHER[$sys]}"
	printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' \
		"$STAMP" "$sys" "$proto" "$CLIENTS" "$JOBS" "$DURATION" "$SCALE" "${TPS[$sys]}" "${LAT[$sys]}" \
		"${FAILED[$sys]}" "${ABORTED[$sys]}" "${TXN[$sys]}" "${VALID[$sys]}" "${IDENT[$sys]}" \
		"${PREP[$sys]}" "${CPU10K[$sys]}" "${OTHER[$sys]}" "$r_dir" "$r_lim" >>"$CSV"
done
echo
c=$(valid_tps pgchorus)
echo "pgchorus / pgpool: $(ratio "$c" "$(valid_tps pgpool)")"
echo "pgchorus / direct: $(ratio "$c" "$(valid_tps direct)")"
echo "pgchorus / limit:  $(ratio "$c" "$(valid_tps limit)")"
echo
echo "limit     = slowest of the $NNODES nodes, each running tpcb-like + PREPARE TRANSACTION/COMMIT PREPARED"
echo "            with $CLIENTS clients at the same time (always -M simple); lat ms is that node's."
echo "identical = after the run, pgbench_accounts, _branches, _tellers and _history have the same"
echo "            contents on all $NNODES nodes (md5 over all columns); '-' where it does not apply;"
echo "            no(mtime) = only pgbench_history.mtime differs (CURRENT_TIMESTAMP taken on each node)."
echo "prepared  = transactions left in pg_prepared_xacts on the nodes (sum) after the run."
echo "failed    = pgbench's failed transactions (serialization/deadlock); aborted = clients that"
echo "            stopped on an error.  tx = transactions completed."
echo "CPU/10k   = proxy CPU seconds per 10,000 transactions (pgpool: all its processes)."
if [ "$any_invalid" = 1 ]; then
	echo "*         = pgbench exited with an error or clients aborted: TPS covers only part of the run;"
	echo "            not used for ratios or the chart."
fi
echo "other%    = CPU used during the run by processes outside the benchmark (all $(nproc) CPUs)."
if [ "${#NOTES[@]}" -gt 0 ]; then
	echo
	echo "Notes:"
	for n in "${NOTES[@]}"; do echo "  - $n"; done
fi

# Bar chart: one bar per system, TPS on top, identical yes/no under the name.
{
	for sys in $SYSTEMS; do
		v=$(valid_tps "$sys")
		[ "$v" = n/a ] && v=NaN
		if [ "${VALID[$sys]}" = 1 ]; then
			case ${IDENT[$sys]} in
			yes) tag="nodes identical" ;;
			no) tag="nodes DIFFER" ;;
			"no(mtime)") tag="nodes differ: history.mtime" ;;
			*) tag="-" ;;
			esac
		elif [ "${TPS[$sys]}" = n/a ]; then tag="n/a"
		else tag="failed"; fi
		printf '%s %s "%s"\n' "$sys" "$v" "$tag"
	done
} >"$DAT"
chart_ok=0
if ! awk '$2 != "NaN" { f = 1 } END { exit !f }' "$DAT"; then
	bench_warn "no valid run; no chart"
elif command -v gnuplot >/dev/null; then
	term=$(bench_gnuplot_term 900 560)
	nsys=$(echo $SYSTEMS | wc -w)
	gnuplot >"$WORK/out/gnuplot.log" 2>&1 <<EOF && [ -s "$PNG" ] && chart_ok=1
set terminal $term
set output '$PNG'
set title "pgbench tpcb-like, -M $PROTOCOL, $CLIENTS clients, ${DURATION} s, scale $SCALE, $NNODES nodes\n$(nproc) CPUs, $cpu_model, $(date -u '+%Y-%m-%d')"
set ylabel 'transactions per second'
set yrange [0:*]
set xrange [-0.6:$nsys - 0.4]
set offsets 0, 0, graph 0.1, 0
set grid ytics
set style fill solid 0.85 border -1
set boxwidth 0.6
set bmargin 5
set xtics nomirror
set datafile missing 'NaN'
unset key
plot '$DAT' using 0:2:xtic(strcol(3) eq '-' ? strcol(1) : strcol(1) . "\\n(" . strcol(3) . ")") \
         with boxes lc rgb '#4a7ab5', \
     '' using 0:2:(sprintf('%.0f', \$2)) with labels offset 0,0.8
EOF
	if [ "$chart_ok" != 1 ]; then
		bench_warn "gnuplot failed:"
		sed 's/^/    /' "$WORK/out/gnuplot.log" >&2
	fi
else
	bench_warn "gnuplot not installed (Debian package gnuplot-nox); no chart"
fi
echo
echo "CSV: $CSV"
[ "$chart_ok" = 1 ] && echo "PNG: $PNG"
exit 0
}
