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
