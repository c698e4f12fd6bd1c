#!/usr/bin/env bash
# demo.sh - build pgchorus and run it in front of a local 3-node cluster.
#
#   scripts/demo.sh          install dependencies, build, (re)create the demo in
#                            $DEMO_DIR (default /tmp/pgchorus-demo) and start it
#   scripts/demo.sh stop     stop pgchorus and the cluster
#
# SKIP_DEPS=1 skips scripts/deps.sh; SKIP_BUILD=1 uses the tree as built.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO_DIR=${DEMO_DIR:-/tmp/pgchorus-demo}
CLUSTER_SH=$TOP/scripts/cluster.sh
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
NODES=3

say() { printf 'demo: %s\n' "$*"; }

stop_demo() {
	local pid i
	if [ -f "$DEMO_DIR/pgchorus.pid" ]; then
		pid=$(cat "$DEMO_DIR/pgchorus.pid")
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
			grep -q pgchorus "/proc/$pid/cmdline" 2>/dev/null; then
			say "stopping pgchorus (pid $pid)"
			kill -TERM "$pid"
			for ((i = 0; i < 100; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				say "pgchorus still runs after 10 s: SIGKILL"
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
		rm -f "$DEMO_DIR/pgchorus.pid"
	fi
	if [ -f "$DEMO_DIR/cluster/cluster.env" ]; then
		say "stopping the cluster"
		"$CLUSTER_SH" stop "$DEMO_DIR/cluster" fast
	fi
}

build() {
	cd "$TOP"
	mkdir -p m4 # git keeps no empty directory; aclocal wants it
	[ -x configure ] || autoreconf -fi
	[ -f Makefile ] || ./configure
	make -j2
}

case ${1:-start} in
stop)
	stop_demo
	say "stopped (the demo files stay in $DEMO_DIR)"
	exit 0
	;;
start) ;;
*)
	echo "usage: scripts/demo.sh [stop]" >&2
	exit 2
	;;
esac

if [ "${SKIP_DEPS:-0}" != 1 ]; then
	"$TOP/scripts/deps.sh"
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
	say "building"
	(build)
fi
[ -x "$TOP/pgchorus" ] || {
	say "no $TOP/pgchorus after the build"
	exit 1
}

# A fresh demo directory (only ever remove one this script made).
stop_demo
if [ -e "$DEMO_DIR" ]; then
	[ -f "$DEMO_DIR/.pgchorus-demo" ] || {
		say "$DEMO_DIR exists and is not a pgchorus demo directory; not touching it"
		exit 1
	}
	if [ -e "$DEMO_DIR/cluster" ]; then
		"$CLUSTER_SH" destroy "$DEMO_DIR/cluster"
	fi
	rm -rf "$DEMO_DIR"
fi
mkdir -p "$DEMO_DIR"
chmod 755 "$DEMO_DIR"
: >"$DEMO_DIR/.pgchorus-demo"

say "creating a $NODES-node PostgreSQL 15 cluster in $DEMO_DIR/cluster"
"$CLUSTER_SH" init "$DEMO_DIR/cluster" "$NODES"
"$CLUSTER_SH" start "$DEMO_DIR/cluster"
# shellcheck source=/dev/null
. "$DEMO_DIR/cluster/cluster.env"

port=$("$CLUSTER_SH" freeport 1)
conf=$DEMO_DIR/pgchorus.conf
log=$DEMO_DIR/pgchorus.log
{
	echo "# pgchorus demo configuration, written by scripts/demo.sh"
	echo "# See etc/pgchorus.conf and doc/configuration.md for every setting."
	echo "listen_addresses = \"127.0.0.1\";"
	echo "port = $port;"
	echo "unix_socket_dir = \"$DEMO_DIR\";"
	echo "workers = 0;"
	echo "mode = \"replication\";"
	echo "load_balance = \"statement\";"
	echo "on_mismatch = \"detach_minority\";"
	echo "pool_mode = \"transaction\";"
	echo "pool_size = 20;"
	echo "max_client_conn = 10000;"
	echo "auth_method = \"trust\";"
	echo "control_socket = \"$DEMO_DIR/pgchorus.ctl\";"
	echo "log_level = \"info\";"
	echo "logfile = \"\";"
	echo "pidfile = \"\";"
	echo "query_wait_timeout = 120;"
	echo "server_reset_query = \"DISCARD ALL\";"
	echo "health_check = { period = 2; timeout = 3; retries = 1; retry_delay = 0.5; };"
	echo "state_file = \"$DEMO_DIR/pgchorus.state\";"
	echo "admin_users = \"postgres\";"
	echo "nodes = ("
	for ((k = 0; k < NODE_COUNT; k++)); do
		var=NODE${k}_PORT
		sep=","
		[ "$k" -eq $((NODE_COUNT - 1)) ] && sep=""
		dvar=NODE${k}_DIR
		echo "  { host = \"127.0.0.1\"; port = ${!var}; weight = 1.0; data_dir = \"${!dvar:-$DEMO_DIR/cluster/node$k}\"; }$sep"
	done
	echo ");"
} >"$conf"

say "starting pgchorus on port $port"
# setsid + nohup: pgchorus outlives this script and the terminal it ran in.
setsid nohup "$TOP/pgchorus" -n -f "$conf" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$DEMO_DIR/pgchorus.pid"

ready=0
for ((i = 0; i < 150; i++)); do
	if ! kill -0 "$pid" 2>/dev/null; then
		break
	fi
	if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1; then
		ready=1
		break
	fi
	sleep 0.1
done
if [ "$ready" -ne 1 ]; then
	say "pgchorus did not come up; the end of $log:"
	tail -n 20 "$log" >&2 || true
	stop_demo
	exit 1
fi

served_by=$("$PGBIN/psql" -X -qAt -h 127.0.0.1 -p "$port" -U postgres -d postgres \
	-c 'select inet_server_port()' 2>/dev/null || echo '?')

cat <<EOF

pgchorus is running (pid $pid) in replication mode in front of $NODE_COUNT PostgreSQL
nodes (ports $PORTS): writes go to every node with two-phase commit, reads to one.
A test query through it was answered by the node on port $served_by.

  Connect:       psql -h 127.0.0.1 -p $port -U postgres postgres
                 (or over the unix socket: psql -h $DEMO_DIR -p $port -U postgres postgres)
  Benchmark:     $PGBIN/pgbench -i -h 127.0.0.1 -p $port -U postgres postgres
                 $PGBIN/pgbench -h 127.0.0.1 -p $port -U postgres -M prepared -c 16 -T 10 postgres
  Compare nodes: for p in $PORTS; do $PGBIN/psql -X -At -h 127.0.0.1 -p \$p -U postgres \\
                   -c 'select sum(abalance) from pgbench_accounts' postgres; done
  Admin console: psql -h 127.0.0.1 -p $port -U postgres pgchorus -c 'SHOW NODES'
                 (kill -9 a node's postmaster, then: RECOVER NODE n; SHOW RECOVERY)
  A node:        $CLUSTER_SH psql $DEMO_DIR/cluster 0
  Configuration: $conf
  Logs:          $log
                 $DEMO_DIR/cluster/node*/log/postgresql.log
  Reload:        kill -HUP $pid
  Stop:          $TOP/scripts/demo.sh stop
EOF
