#!/usr/bin/env bash
# cluster.sh - local PostgreSQL 15 clusters for pgchorus tests, demo and benchmarks.
#
#   cluster.sh init DIR N           create N nodes DIR/node0..DIR/node{N-1} on free ports
#   cluster.sh start DIR            start every node (waits until each accepts connections)
#   cluster.sh stop DIR [MODE]      stop every node; MODE is smart, fast (default) or immediate
#   cluster.sh status DIR           one line per node; exit 0 only when all nodes run
#   cluster.sh destroy DIR          stop (immediate) and remove DIR
#   cluster.sh psql DIR K [ARGS]    psql as postgres to database postgres on node K
#   cluster.sh freeport [COUNT]     print COUNT (default 1) free TCP ports on 127.0.0.1
#
# DIR/cluster.env is shell-sourceable: CLUSTER_DIR, NODE_COUNT, PGBIN, SOCKDIR,
# NODEk_PORT, NODEk_DIR and PORTS="p0 p1 ...".  Node K's data directory is
# DIR/nodeK and its server log DIR/nodeK/log/postgresql.log.
#
# PostgreSQL refuses to run as root: run as root, the nodes run as the
# "postgres" user (DIR is chowned to it); run as anyone else, they run as
# that user.  PGBIN overrides /usr/lib/postgresql/15/bin.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_USER=postgres

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

# Run a command as the user that owns the nodes.  cd / first so that a cwd
# the postgres user cannot read does not produce warnings or failures.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u "$PG_USER" -- "$@")
	else
		(cd / && "$@")
	fi
}

abspath() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$PWD" "$1" ;;
	esac
}

python_bin() {
	if [ -x /usr/bin/python3 ]; then
		echo /usr/bin/python3
	else
		command -v python3 || die "python3 is needed to test ports"
	fi
}

# Print COUNT distinct ports on 127.0.0.1 that a bind test shows free right
# now.  Ports are drawn at random below the kernel's ephemeral range so that
# concurrent test runs rarely pick the same one; SO_REUSEADDR is not set, so a
# port in TIME_WAIT counts as taken.
freeport() {
	local count=${1:-1}
	"$(python_bin)" - "$count" <<'EOF'
import random, socket, sys
want = int(sys.argv[1])
lo, hi = 20000, 32000
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        eph = int(f.read().split()[0])
    hi = min(hi, eph - 1)
except (OSError, ValueError):
    pass
picked = []
tries = 0
while len(picked) < want:
    tries += 1
    if tries > 5000:
        sys.exit("cluster.sh: no free port found")
    port = random.randint(lo, hi)
    if port in picked:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    picked.append(port)
print(" ".join(str(p) for p in picked))
EOF
}

load_env() {
	DIR=$(abspath "$1")
	[ -f "$DIR/cluster.env" ] || die "$DIR is not a cluster (no cluster.env)"
	# shellcheck source=/dev/null
	. "$DIR/cluster.env"
}

node_port() {
	local var="NODE$1_PORT"
	printf '%s\n' "${!var}"
}

cmd_init() {
	[ $# -eq 2 ] || usage
	local n=$2 k port port_list
	DIR=$(abspath "$1")
	case $n in '' | *[!0-9]*) die "N must be a number" ;; esac
	[ "$n" -ge 1 ] || die "N must be at least 1"
	[ -x "$PGBIN/initdb" ] || die "no initdb in $PGBIN (run scripts/deps.sh)"
	[ ! -e "$DIR/cluster.env" ] || die "$DIR already holds a cluster (destroy it first)"
	mkdir -p "$DIR"
	# Marks DIR as ours for destroy even if init fails half way.
	: >"$DIR/.pgchorus-cluster"
	if [ "$(id -u)" -eq 0 ]; then
		chown "$PG_USER:" "$DIR"
		as_pg test -w "$DIR" ||
			die "$DIR is not writable by user $PG_USER (do its parent directories allow o+x?)"
	fi
	as_pg mkdir -p "$DIR/sock"
	port_list=$(freeport "$n")

	k=0
	for port in $port_list; do
		local node="$DIR/node$k"
		as_pg "$PGBIN/initdb" -D "$node" -U "$PG_USER" -E UTF8 --locale=C.UTF-8 \
			--auth=trust -N >"$DIR/initdb$k.log" 2>&1 ||
			{
				cat "$DIR/initdb$k.log" >&2
				die "initdb of node$k failed"
			}
		as_pg mkdir -p "$node/log"
		as_pg tee -a "$node/postgresql.conf" >/dev/null <<EOF

# --- pgchorus test cluster (scripts/cluster.sh) ---
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR/sock'
max_connections = 300
max_prepared_transactions = 100
shared_buffers = 128MB
# fsync off: these are throw-away test/demo clusters, never real data.
fsync = off
# For online recovery of a node from another one (pg_basebackup) later on.
wal_level = replica
max_wal_senders = 10
log_line_prefix = '%m [%p] node$k %q%u@%d '
log_timezone = 'UTC'
EOF
		as_pg tee "$node/pg_hba.conf" >/dev/null <<EOF
# pgchorus test cluster: trust on the unix socket and on 127.0.0.1 only.
local   all             all                     trust
host    all             all     127.0.0.1/32    trust
local   replication     all                     trust
host    replication     all     127.0.0.1/32    trust
EOF
		k=$((k + 1))
	done

	{
		echo "# written by scripts/cluster.sh init"
		echo "CLUSTER_DIR='$DIR'"
		echo "NODE_COUNT=$n"
		echo "PGBIN='$PGBIN'"
		echo "SOCKDIR='$DIR/sock'"
		k=0
		for port in $port_list; do
			echo "NODE${k}_PORT=$port"
			echo "NODE${k}_DIR='$DIR/node$k'"
			k=$((k + 1))
		done
		echo "PORTS=\"$port_list\""
	} >"$DIR/cluster.env"
	chmod 644 "$DIR/cluster.env"
	echo "cluster.sh: created $n node(s) in $DIR on ports $port_list"
}

node_running() {
	as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/node$1" status >/dev/null 2>&1
}

cmd_start() {
	[ $# -eq 1 ] || usage
	load_env "$1"
	local k
	for ((k = 0; k < NODE_COUNT; k++)); do
		if node_running "$k"; then
			echo "cluster.sh: node$k already running"
			continue
		fi
		as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/node$k" -l "$CLUSTER_DIR/node$k/log/postgresql.log" \
			-w -t 60 -s start ||
			{
				tail -n 20 "$CLUSTER_DIR/node$k/log/postgresql.log" >&2 || true
				die "node$k failed to start (port $(node_port "$k"))"
			}
	done
	for ((k = 0; k < NODE_COUNT; k++)); do
		local tries=0
		until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$(node_port "$k")" -t 2; do
			tries=$((tries + 1))
			[ "$tries" -lt 30 ] || die "node$k does not accept connections"
			sleep 0.2
		done
	done
	echo "cluster.sh: started $NODE_COUNT node(s) on ports $PORTS"
}

cmd_stop() {
	if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
	load_env "$1"
	local mode=${2:-fast} k rc=0
	case $mode in smart | fast | immediate) ;; *) die "unknown stop mode $mode" ;; esac
	for ((k = 0; k < NODE_COUNT; k++)); do
		[ -d "$CLUSTER_DIR/node$k" ] || continue
		node_running "$k" || continue
		as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/node$k" -m "$mode" -w -t 60 -s stop || rc=1
	done
	return $rc
}

cmd_status() {
	[ $# -eq 1 ] || usage
	load_env "$1"
	local k rc=0 pid
	for ((k = 0; k < NODE_COUNT; k++)); do
		if node_running "$k"; then
			pid=$(head -n 1 "$CLUSTER_DIR/node$k/postmaster.pid" 2>/dev/null || echo '?')
			echo "node$k port $(node_port "$k") running (pid $pid)"
		else
			echo "node$k port $(node_port "$k") stopped"
			rc=3
		fi
	done
	return $rc
}

cmd_destroy() {
	[ $# -eq 1 ] || usage
	local d
	d=$(abspath "$1")
	if [ ! -e "$d" ]; then
		return 0
	fi
	# Refuse to rm -rf a directory that this script did not create.
	[ -f "$d/cluster.env" ] || [ -f "$d/.pgchorus-cluster" ] || die "$d is not a cluster (no cluster.env); not removing it"
	if [ -f "$d/cluster.env" ]; then
		cmd_stop "$d" immediate || true
	fi
	rm -rf "$d"
}

cmd_psql() {
	[ $# -ge 2 ] || usage
	load_env "$1"
	local k=$2
	shift 2
	case $k in '' | *[!0-9]*) die "K must be a node number" ;; esac
	[ "$k" -lt "$NODE_COUNT" ] || die "no node$k (cluster has $NODE_COUNT)"
	PGHOST=127.0.0.1 PGPORT=$(node_port "$k") PGUSER=$PG_USER PGDATABASE=postgres \
		exec "$PGBIN/psql" "$@"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
init) cmd_init "$@" ;;
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
status) cmd_status "$@" ;;
destroy) cmd_destroy "$@" ;;
psql) cmd_psql "$@" ;;
freeport) freeport "${1:-1}" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
