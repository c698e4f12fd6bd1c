# shellcheck shell=bash disable=SC2034  # NODE_SOCKDIR and others are for the scripts sourcing this file
# bench/lib.sh - helpers shared by the benchmark scripts in bench/.
#
# Source it from bash:   . "$(dirname "$0")/lib.sh"
#
# It provides:
#   - logging (bench_log, bench_warn, bench_die)
#   - running things as the postgres OS user when we are root (as_pg, as_pg_bg)
#   - free TCP ports, checked by actually binding them (bench_free_port)
#   - process-tree CPU accounting from /proc (bench_tree_pids, bench_cpu_ticks)
#   - one throw-away PostgreSQL 15 node (bench_node_up / bench_node_down),
#     made with scripts/cluster.sh when that exists and works, otherwise with
#     initdb/pg_ctl directly
#   - stopping a process we started, by pid (bench_stop_pid)
#   - what the benchmark scripts share around these: checking the knobs,
#     the work directory and its cleanup, the machine and versions, starting
#     and stopping one proxy, pgbench runs and their logs, number formatting
#
# Nothing here uses a fixed port or a fixed path outside the work directory
# the caller passes in.

BENCH_PG_OS_USER=${BENCH_PG_OS_USER:-postgres}
BENCH_CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

bench_log()  { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_warn() { printf '[%s] WARNING: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die()  { printf '[%s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Running as the postgres user.  PostgreSQL refuses to run as root and so does
# pgbouncer; when the script itself is not root everything simply runs as the
# invoking user.
# ---------------------------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
	BENCH_AS_ROOT=1
else
	BENCH_AS_ROOT=0
fi

# as_pg CMD...: run CMD in the foreground as the postgres user.
as_pg() {
	if [ "$BENCH_AS_ROOT" = 1 ]; then
		runuser -u "$BENCH_PG_OS_USER" -- "$@"
	else
		"$@"
	fi
}

# as_pg_exec CMD...: exec-style variant for background servers.  setpriv
# replaces itself with CMD, so "$!" of "as_pg_exec cmd &" is the pid of CMD
# itself (runuser would stay in between as the parent).
as_pg_exec() {
	if [ "$BENCH_AS_ROOT" = 1 ]; then
		exec setpriv --reuid="$BENCH_PG_OS_USER" --regid="$BENCH_PG_OS_USER" \
			--init-groups -- "$@"
	else
		exec "$@"
	fi
}

# bench_chown PATH...: make PATH owned by the postgres user (no-op if not root).
bench_chown() {
	if [ "$BENCH_AS_ROOT" = 1 ]; then
		chown -R "$BENCH_PG_OS_USER:" "$@"
	fi
}

# ---------------------------------------------------------------------------
# Free ports.  A port counts as free if we can bind 127.0.0.1:PORT right now
# (no SO_REUSEADDR, so a port in TIME_WAIT is skipped too).  Ports handed out
# earlier in this run are never handed out again.
# ---------------------------------------------------------------------------
BENCH_USED_PORTS=" "

bench_port_bindable() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0],
			Proto => "tcp", Listen => 1, ReuseAddr => 0) or exit 1;
		close $s; exit 0' "$1" 2>/dev/null
}

# Ports are drawn below the kernel's ephemeral range, so that the outgoing
# connections of the benchmark itself cannot take a port between the check
# and the server's bind.
BENCH_PORT_LO=20000
BENCH_PORT_HI=$(awk '{ print $1 - 1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
case $BENCH_PORT_HI in '' | *[!0-9]*) BENCH_PORT_HI=32767 ;; esac
[ "$BENCH_PORT_HI" -gt "$BENCH_PORT_LO" ] || BENCH_PORT_HI=$((BENCH_PORT_LO + 10000))

# bench_free_port VAR: store a free port in VAR.
bench_free_port() {
	local _var=$1 _p _i
	for _i in $(seq 1 500); do
		_p=$(( BENCH_PORT_LO + (RANDOM * 32768 + RANDOM) % (BENCH_PORT_HI - BENCH_PORT_LO + 1) ))
		case $BENCH_USED_PORTS in *" $_p "*) continue ;; esac
		if bench_port_bindable "$_p"; then
			BENCH_USED_PORTS="$BENCH_USED_PORTS$_p "
			printf -v "$_var" '%s' "$_p"
			return 0
		fi
	done
	bench_die "could not find a free TCP port"
}

# ---------------------------------------------------------------------------
# CPU accounting.
# ---------------------------------------------------------------------------

# bench_tree_pids PID: print PID and all its descendants, one per line.
bench_tree_pids() {
	local p c
	for p in "$@"; do
		[ -d "/proc/$p" ] || continue
		echo "$p"
		for c in $(pgrep -P "$p" 2>/dev/null); do
			bench_tree_pids "$c"
		done
	done
}

# bench_cpu_ticks PID...: sum of utime+stime+cutime+cstime (clock ticks) over
# the given pids and all their descendants.  /proc/PID/stat of a process
# covers all its threads; cutime/cstime add children that already exited and
# were reaped, so a child that dies during a run is not lost.
bench_cpu_ticks() {
	local pids
	pids=$(bench_tree_pids "$@" | sort -u)
	[ -n "$pids" ] || { echo 0; return; }
	# shellcheck disable=SC2086
	(cd /proc && for p in $pids; do cat "$p/stat" 2>/dev/null; echo; done) |
	awk '
		NF == 0 { next }
		{
			# the command name (field 2) may contain spaces: cut up to the last ")"
			rest = $0
			sub(/^.*\) /, "", rest)
			n = split(rest, f, " ")
			# rest starts at field 3 (state); utime is field 14 => f[12]
			if (n >= 15) sum += f[12] + f[13] + f[14] + f[15]
		}
		END { printf "%d\n", sum }'
}

# bench_sys_ticks: "BUSY STEAL" clock ticks of the whole machine since boot
# from /proc/stat (busy = user + nice + system; interrupt time left out).
bench_sys_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4, $9 + 0; exit }' /proc/stat
}

# bench_now: seconds since the epoch with fractions.
bench_now() {
	date +%s.%N
}

# bench_ticks_to_s TICKS: clock ticks to seconds.
bench_ticks_to_s() {
	awk -v t="$1" -v hz="$BENCH_CLK_TCK" 'BEGIN { printf "%.3f\n", t / hz }'
}

# ---------------------------------------------------------------------------
# Waiting and stopping.
# ---------------------------------------------------------------------------

# bench_wait_pg HOST PORT SECONDS [PID]: wait until something answers the
# PostgreSQL protocol on HOST:PORT.  Fails early if PID (optional) died.
bench_wait_pg() {
	local host=$1 port=$2 secs=$3 pid=${4:-}
	for _ in $(seq 1 $((secs * 5))); do
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		# pg_isready: 0 = accepting, 1 = rejecting (e.g. starting up),
		# 2 = no response.  A pooler may answer 1 for a bad database name,
		# which still proves it is listening; we only accept 0.
		if "$PGBIN/pg_isready" -q -h "$host" -p "$port" -U postgres -d postgres -t 2; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# bench_stop_pid PID SIGNAL [SECONDS]: send SIGNAL to PID (a process this
# script started), wait for it and its descendants to exit, SIGKILL whatever
# is left after SECONDS (default 10).  Only the given pid and the processes it
# forked are signalled.
bench_stop_pid() {
	local pid=$1 sig=$2 secs=${3:-10} tree left p
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	tree=$(bench_tree_pids "$pid")
	kill "-$sig" "$pid" 2>/dev/null
	for _ in $(seq 1 $((secs * 10))); do
		left=
		for p in $tree; do
			kill -0 "$p" 2>/dev/null && left="$left $p"
		done
		[ -z "$left" ] && break
		sleep 0.1
	done
	if [ -n "$left" ]; then
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# ---------------------------------------------------------------------------
# One PostgreSQL 15 node.
#
# bench_node_up WORKDIR sets:
#   PGBIN        PostgreSQL 15 bin directory
#   NODE_PORT    TCP port on 127.0.0.1
#   NODE_SOCKDIR unix socket directory
#   NODE_DATADIR data directory (for postmaster.pid)
#   BENCH_NODE_KIND  "cluster.sh" or "own"
# bench_node_down stops and removes it.
#
# scripts/cluster.sh (if present and working) is preferred; BENCH_OWN_NODE=1
# forces the built-in setup.
# ---------------------------------------------------------------------------
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
BENCH_NODE_KIND=
BENCH_NODE_DIR=

bench_node_up() {
	local work=$1 top=${BENCH_TOP:-}
	local cl="$top/scripts/cluster.sh"
	if [ -z "${BENCH_OWN_NODE:-}" ] && [ -n "$top" ] && [ -x "$cl" ]; then
		if bench_node_up_cluster "$work/cluster" "$cl"; then
			return 0
		fi
		bench_warn "scripts/cluster.sh did not give a working node; using the built-in setup"
	fi
	bench_node_up_own "$work/node0"
}

bench_node_up_cluster() {
	local dir=$1 cl=$2
	BENCH_NODE_DIR=$dir
	BENCH_NODE_KIND=cluster.sh
	BENCH_CLUSTER_SH=$cl
	bench_log "creating node with scripts/cluster.sh init $dir 1"
	if ! "$cl" init "$dir" 1 >"$dir.log" 2>&1; then
		sed 's/^/    cluster.sh: /' "$dir.log" | tail -n 20 >&2
		bench_node_down
		return 1
	fi
	if [ ! -f "$dir/cluster.env" ]; then
		bench_node_down
		return 1
	fi
	# shellcheck disable=SC1091
	. "$dir/cluster.env"
	"$cl" start "$dir" >>"$dir.log" 2>&1 || { sed 's/^/    cluster.sh: /' "$dir.log" | tail -n 20 >&2; bench_node_down; return 1; }
	NODE_PORT=${NODE0_PORT:-}
	NODE_SOCKDIR=${SOCKDIR:-}
	NODE_DATADIR=${NODE0_DIR:-}
	[ -n "$NODE_PORT" ] || { bench_node_down; return 1; }
	if ! bench_wait_pg 127.0.0.1 "$NODE_PORT" 30; then
		bench_node_down
		return 1
	fi
	return 0
}

bench_node_up_own() {
	local dir=$1
	BENCH_NODE_DIR=$dir
	BENCH_NODE_KIND=own
	mkdir -p "$dir"
	bench_chown "$dir"
	bench_free_port NODE_PORT
	NODE_SOCKDIR=$dir
	NODE_DATADIR=$dir/data
	bench_log "creating node with initdb in $dir/data (port $NODE_PORT)"
	as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
		--no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; bench_die "initdb failed"; }
	cat >>"$dir/data/postgresql.conf" <<EOF

# --- added by bench/lib.sh ---
listen_addresses = '127.0.0.1'
port = $NODE_PORT
unix_socket_directories = '$dir'
max_connections = 300
max_prepared_transactions = 100
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
EOF
	as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
		{ tail -n 30 "$dir/postgres.log" >&2; bench_die "PostgreSQL did not start"; }
}

# bench_node_pid: pid of the node's postmaster (empty if unknown).
bench_node_pid() {
	head -n 1 "$NODE_DATADIR/postmaster.pid" 2>/dev/null
}

bench_node_down() {
	case $BENCH_NODE_KIND in
	cluster.sh)
		"$BENCH_CLUSTER_SH" stop "$BENCH_NODE_DIR" >/dev/null 2>&1
		"$BENCH_CLUSTER_SH" destroy "$BENCH_NODE_DIR" >/dev/null 2>&1
		;;
	own)
		if [ -f "$BENCH_NODE_DIR/data/postmaster.pid" ]; then
			as_pg "$PGBIN/pg_ctl" -D "$BENCH_NODE_DIR/data" -m immediate -w -t 30 stop \
				>/dev/null 2>&1
		fi
		;;
	esac
	BENCH_NODE_KIND=
}

# ---------------------------------------------------------------------------
# Knobs and prerequisites.
# ---------------------------------------------------------------------------

# bench_check_knobs VAR...: each VAR must be a non-negative integer; then
# DURATION, CLIENTS, JOBS and SCALE must be at least 1, and JOBS is lowered
# to CLIENTS if it is larger.
bench_check_knobs() {
	local v
	for v in "$@"; do
		case ${!v} in
		'' | *[!0-9]*) bench_die "$v must be a non-negative integer (got '${!v}')" ;;
		esac
	done
	[ "$DURATION" -ge 1 ] && [ "$CLIENTS" -ge 1 ] && [ "$JOBS" -ge 1 ] && [ "$SCALE" -ge 1 ] ||
		bench_die "DURATION, CLIENTS, JOBS and SCALE must be at least 1"
	[ "$JOBS" -le "$CLIENTS" ] || JOBS=$CLIENTS
}

# bench_check_pg HINT: the PostgreSQL 15 binaries are there (HINT ends the
# message when they are not; may be empty).
bench_check_pg() {
	[ -x "$PGBIN/pgbench" ] && [ -x "$PGBIN/initdb" ] ||
		bench_die "no PostgreSQL 15 binaries in $PGBIN$1"
}

# bench_check_env: perl is there; the libpq environment is cleared, so that
# connection settings come from the command line only.
bench_check_env() {
	command -v perl >/dev/null || bench_die "perl is needed (free-port check)"
	unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGOPTIONS \
		PGSERVICEFILE PGPASSFILE PGAPPNAME PGTARGETSESSIONATTRS 2>/dev/null
}

# ---------------------------------------------------------------------------
# Work directory, one proxy, cleanup.
#
# bench_setup_work NAME creates WORK (/tmp/pgchorus-bench-NAME.XXXXXX, with
# WORK/out) and installs the exit and signal traps.  At exit the pgbench runs
# in BG_PIDS are stopped, then the proxy, then BENCH_NODES_DOWN (a command
# the script sets once it has nodes) runs, and WORK is removed unless
# KEEP_WORK is set.
# ---------------------------------------------------------------------------
PROXY_PID=
PROXY_SIG=TERM
BG_PIDS=()
BENCH_NODES_DOWN=

bench_setup_work() {
	WORK=$(mktemp -d "/tmp/pgchorus-bench-$1.XXXXXX") || bench_die "mktemp failed"
	chmod 0755 "$WORK"
	mkdir -p "$WORK/out"
	bench_chown "$WORK"
	trap bench_cleanup EXIT
	trap 'bench_warn "interrupted"; exit 130' INT
	trap 'bench_warn "terminated"; exit 143' TERM HUP
}

# stop_proxy: stop the proxy started with bench_start_proxy, if any.
stop_proxy() {
	if [ -n "$PROXY_PID" ]; then
		bench_stop_pid "$PROXY_PID" "$PROXY_SIG" 10
		PROXY_PID=
	fi
}

bench_cleanup() {
	local rc=$? p
	trap - EXIT INT TERM HUP
	for p in "${BG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	stop_proxy
	[ -z "$BENCH_NODES_DOWN" ] || $BENCH_NODES_DOWN
	if [ -n "${KEEP_WORK:-}" ]; then
		bench_log "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}

# bench_start_proxy OUTPUT SIGNAL CMD...: start CMD in the background as the
# postgres user, its stdout and stderr to OUTPUT; PROXY_PID is its pid and
# SIGNAL the one that shuts it down fast.
bench_start_proxy() {
	local out=$1
	PROXY_SIG=$2
	shift 2
	as_pg_exec "$@" >"$out" 2>&1 &
	PROXY_PID=$!
}

# proxy_wait NAME LOG LINES: wait for the proxy to answer on TARGET_PORT; on
# failure stop it, fill START_ERR and show the last LINES lines of LOG.
proxy_wait() {
	local name=$1 log=$2 lines=$3
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
	tail -n "$lines" "$log" 2>/dev/null | sed 's/^/    /' >&2
	return 1
}

# bench_start_pgpool DIR MODE CHILDREN LOG_LINES PORT... <SETTINGS: write
# DIR/pgpool.conf for pgpool-II in backend_clustering_mode MODE with
# CHILDREN children, one backend per PORT and the lines on stdin (what
# differs between the benchmarks), then start it and wait for it (see
# proxy_wait).  TARGET_PORT is where it listens.
bench_start_pgpool() {
	local d=$1 mode=$2 children=$3 lines=$4 pcp_port k=0 port host
	shift 4
	host=$(bench_backend_host) || return 1
	mkdir -p "$d/oiddir"
	bench_free_port TARGET_PORT
	bench_free_port pcp_port
	: >"$d/pcp.conf"
	: >"$d/pool_passwd"
	printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$d/pool_hba.conf"
	{
		cat <<EOF
backend_clustering_mode = '$mode'
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

EOF
		for port in "$@"; do
			cat <<EOF
backend_hostname$k = '$host'
backend_port$k = $port
backend_weight$k = 1
backend_flag$k = 'DISALLOW_TO_FAILOVER'
EOF
			k=$((k + 1))
		done
		cat <<EOF

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

EOF
		cat
		cat <<EOF
memory_cache_enabled = off
use_watchdog = off
health_check_period = 0
failover_on_backend_error = off

log_destination = 'stderr'
logging_collector = off
log_min_messages = warning
log_connections = off
log_disconnections = off
EOF
	} >"$d/pgpool.conf"
	bench_chown "$d"
	# SIGINT = fast shutdown (SIGTERM waits for the clients)
	bench_start_proxy "$d/pgpool.log" INT \
		"$PGPOOL" -n -D -f "$d/pgpool.conf" -F "$d/pcp.conf" -a "$d/pool_hba.conf"
	proxy_wait pgpool "$d/pgpool.log" "$lines"
}

# bench_backend_host: the host the proxies reach PostgreSQL at.  BACKEND=tcp
# (the default) is 127.0.0.1; BACKEND=unix is the nodes' unix socket
# directory NODE_SOCKDIR, the way a proxy on the database machine is
# usually set up.  Clients reach every target over TCP either way.
bench_backend_host() {
	case ${BACKEND:-tcp} in
	tcp) echo 127.0.0.1 ;;
	unix) [ -n "${NODE_SOCKDIR:-}" ] || bench_die "BACKEND=unix: no socket directory known"
		echo "$NODE_SOCKDIR" ;;
	*) bench_die "BACKEND must be tcp or unix, not '${BACKEND}'" ;;
	esac
}

# bench_start_pgchorus DIR LOG_LINES PORT... <SETTINGS: write
# DIR/pgchorus.conf with one node per PORT and the lines on stdin (mode,
# pool settings), then start pgchorus and wait for it (see proxy_wait).
# max_client_conn is BENCH_PGCHORUS_MAX_CLIENT_CONN, 10000 when unset.
bench_start_pgchorus() {
	local d=$1 lines=$2 port nodes='' host
	shift 2
	host=$(bench_backend_host) || return 1
	mkdir -p "$d"
	bench_free_port TARGET_PORT
	for port in "$@"; do
		[ -n "$nodes" ] && nodes+=","
		nodes+=$'\n'"  { host = \"$host\"; port = $port; weight = 1.0; }"
	done
	{
		cat <<EOF
listen_addresses = "127.0.0.1";
port = $TARGET_PORT;
unix_socket_dir = "$d";
workers = ${PGCHORUS_WORKERS:-0};
EOF
		cat
		cat <<EOF
max_client_conn = ${BENCH_PGCHORUS_MAX_CLIENT_CONN:-10000};
auth_method = "trust";
control_socket = "$d/pgchorus.ctl";
log_level = "warning";
nodes = ($nodes
);
EOF
	} >"$d/pgchorus.conf"
	bench_chown "$d"
	bench_start_proxy "$d/pgchorus.log" TERM "$PGCHORUS" -n -f "$d/pgchorus.conf"
	proxy_wait pgchorus "$d/pgchorus.log" "$lines"
}

# bench_start_pgbouncer DIR LOG_LINES PORT <SETTINGS: write DIR/pgbouncer.ini
# for one PostgreSQL node on 127.0.0.1:PORT (every database, auth_type trust
# with an auth_file, connection logging off) with the lines on stdin added to
# the [pgbouncer] section (pool_mode, pool size, max_client_conn), then start
# PGBOUNCER and wait for it (see proxy_wait).  Used by idle.sh and latency.sh.
bench_start_pgbouncer() {
	local d=$1 lines=$2 port=$3 host
	[ -x "$PGBOUNCER" ] || { START_ERR="$PGBOUNCER not found"; return 1; }
	host=$(bench_backend_host) || return 1
	mkdir -p "$d"
	bench_free_port TARGET_PORT
	printf '"postgres" ""\n' >"$d/userlist.txt"
	{
		cat <<EOF
[databases]
* = host=$host port=$port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $TARGET_PORT
unix_socket_dir = $d
pidfile = $d/pgbouncer.pid
logfile = $d/pgbouncer.log
auth_type = trust
auth_file = $d/userlist.txt
admin_users = postgres
log_connections = 0
log_disconnections = 0
EOF
		cat
	} >"$d/pgbouncer.ini"
	bench_chown "$d"
	# pgbouncer: SIGTERM = immediate shutdown
	bench_start_proxy "$d/stderr.log" TERM "$PGBOUNCER" "$d/pgbouncer.ini"
	proxy_wait pgbouncer "$d/pgbouncer.log" "$lines"
}

# bench_mem_kb FIELD PID: FIELD in kB, summed over PID and its descendants;
# empty when PID is gone.  FIELD is a line of /proc/PID/status (VmRSS,
# RssAnon, RssFile...) or Pss from /proc/PID/smaps_rollup.  Summed VmRSS
# counts a page shared between processes (forked children, or other
# processes running the same binary) once per process; Pss divides it among
# the sharers; RssAnon leaves out file-backed pages (program text) entirely.
bench_mem_kb() {
	local field=$1 pids p file=status
	pids=$(bench_tree_pids "$2" | sort -u)
	[ -n "$pids" ] || return 0
	[ "$field" = Pss ] && file=smaps_rollup
	for p in $pids; do cat "/proc/$p/$file" 2>/dev/null; done |
		awk -v f="$field:" '$1 == f { sum += $2; n++ } END { if (n) printf "%d\n", sum }'
}

# ---------------------------------------------------------------------------
# Machine and versions: bench_versions sets cpu_model, mem_total, ver_pg,
# ver_pgbench, ver_pgpool (empty when PGPOOL is not there) and ver_git.
# ---------------------------------------------------------------------------
first_line() { head -n 1 | tr -d '\r'; }

bench_versions() {
	cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	[ -n "$cpu_model" ] || cpu_model=$(uname -m)
	mem_total=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	ver_pg=$("$PGBIN/postgres" --version 2>/dev/null | first_line)
	ver_pgbench=$("$PGBIN/pgbench" --version 2>/dev/null | first_line)
	ver_pgpool=
	[ -x "$PGPOOL" ] && ver_pgpool=$("$PGPOOL" --version 2>&1 | first_line) # on stderr
	ver_git=$(git -C "$BENCH_TOP" describe --always --dirty --tags 2>/dev/null)
}

# ---------------------------------------------------------------------------
# pgbench.  It checks -T only between transactions: against a proxy that
# stops answering it would wait forever, so it gets HANG_GRACE seconds beyond
# the duration and is then stopped (exit 124 or 137 from timeout).
# ---------------------------------------------------------------------------

# bench_pgbench_bg LOG PORT SECONDS ARGS...: start pgbench -c CLIENTS -j JOBS
# against PORT in the background, its pid appended to BG_PIDS.
bench_pgbench_bg() {
	local log=$1 port=$2 secs=$3
	shift 3
	timeout -k 5 $(( secs + HANG_GRACE )) \
		"$PGBIN/pgbench" -n -c "$CLIENTS" -j "$JOBS" -T "$secs" "$@" \
		-h 127.0.0.1 -p "$port" -U postgres postgres >"$log" 2>&1 &
	BG_PIDS+=($!)
}

# bench_parse LOG: sets P_TPS P_LAT P_FAILED P_TX (empty if absent) and
# P_ABORTED from a pgbench log.
bench_parse() {
	P_TPS=$(sed -n -E 's/^tps = ([0-9.]*) \((without initial connection time|including reconnection times)\).*/\1/p' "$1" | head -n 1)
	P_LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$1" | head -n 1)
	P_FAILED=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$1" | head -n 1)
	P_TX=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1" | head -n 1)
	# PG15 pgbench: "client 3 script 0 aborted in command 1 query 0: ERROR: ..."
	P_ABORTED=$(grep -cE '^pgbench: error: client [0-9]+ .*aborted' "$1")
}

# bench_first_error LOG WIDTH: the first error of a pgbench log, at most WIDTH characters.
bench_first_error() {
	grep -m 1 -E 'aborted in|ERROR|FATAL|error:' "$1" |
		sed -e 's/^pgbench: error: //' -e 's/  */ /g' | cut -c "1-$2"
}

# bench_other_pct S0 S1 O0 O1 W0 W1: the share (%) of all CPUs that the
# processes outside the benchmark used between wall clock times W0 and W1:
# machine busy ticks S1 - S0 minus the benchmark's own ticks O1 - O0.
bench_other_pct() {
	awk -v s=$(( $2 - $1 )) -v o=$(( $4 - $3 )) -v w0="$5" -v w1="$6" \
		-v hz="$BENCH_CLK_TCK" -v n="$(nproc)" 'BEGIN {
			x = (s - o) / hz / ((w1 - w0) * n) * 100
			if (x < 0) x = 0
			printf "%.0f\n", x }'
}

# ---------------------------------------------------------------------------
# Numbers for the report.
# ---------------------------------------------------------------------------

# bench_per_10k CPU_S TX: CPU seconds per 10,000 transactions.
bench_per_10k() {
	awk -v c="$1" -v n="$2" 'BEGIN { printf "%.3f", c / n * 10000 }'
}

# ratio A B: A/B with two decimals, or n/a.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) { print "n/a"; exit }
		printf "%.2f\n", a / b }'
}

# fmt_num NUMBER DECIMALS: NUMBER rounded, or n/a.
fmt_num() {
	case $1 in
	n/a | '') echo n/a ;;
	*) awk -v x="$1" -v d="$2" 'BEGIN { printf "%.*f\n", d, x }' ;;
	esac
}

# bench_gnuplot_term WIDTH HEIGHT: the best PNG terminal gnuplot has.
bench_gnuplot_term() {
	if gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1; then
		echo "pngcairo size $1,$2 font 'sans,10'"
	else
		echo "png size $1,$2"
	fi
}

# bench_pgchorus_version: ver_pgchorus (its --version, the git tag of the tree
# and the binary's date) and PGCHORUS_SANITIZED (1 for an AddressSanitizer
# build, whose memory and speed figures measure the sanitizer).  After
# bench_versions (ver_git) and bench_setup_work (WORK).
bench_pgchorus_version() {
	ver_pgchorus=
	PGCHORUS_SANITIZED=0
	if [ -x "$PGCHORUS" ]; then
		out=$(cd "$WORK" && timeout 5 "$PGCHORUS" --version 2>/dev/null)
		if [ $? -eq 0 ] && printf '%s' "$out" | grep -q '[0-9]'; then
			ver_pgchorus="$(printf '%s\n' "$out" | first_line)${ver_git:+ (git $ver_git)}"
		fi
		[ -n "$ver_pgchorus" ] || ver_pgchorus="git ${ver_git:-unknown} (no --version)"
		ver_pgchorus="$ver_pgchorus, binary of $(date -u -r "$PGCHORUS" '+%Y-%m-%d %H:%M UTC')"
		if grep -q -a -m 1 __asan_init "$PGCHORUS" 2>/dev/null; then
			PGCHORUS_SANITIZED=1
			ver_pgchorus="$ver_pgchorus; SANITIZER BUILD (AddressSanitizer)"
		fi
	else
		ver_pgchorus="not built ($PGCHORUS missing); git ${ver_git:-unknown}"
	fi
}
