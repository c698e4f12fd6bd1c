# shellcheck shell=bash
# lib.sh - harness sourced by every integration test (test/integration/NN_name.sh).
#
# A test starts real PostgreSQL nodes (scripts/cluster.sh), writes a pgchorus
# configuration, starts pgchorus in the foreground (-n) in the background of
# the test shell, drives real clients through it, and prints one TAP-like line
# per check on stdout:  "ok - DESC"  or  "not ok - DESC".  Diagnostics are
# printed as "# ..." lines.  scripts/test.sh counts those lines.
#
# Environment (all optional):
#   PGCHORUS        binary to test (default: $TOP/pgchorus)
#   PGBIN           PostgreSQL binaries (default: /usr/lib/postgresql/15/bin)
#   KEEP=1          keep the test's temp dir (cluster, config, logs) at exit
#   CLIENT_TIMEOUT  seconds a single psql through pgchorus may take (default 30)
#   CHORUS_LOG_LEVEL  log_level written into the config (default "info")
#
# Set by the harness:  TOP, TEST_NAME, TEST_TMP, PY (python3 with psycopg),
#   after cluster_up:  NODE_COUNT, PORTS, NODE0_PORT, NODE1_PORT, ..., SOCKDIR
#   after chorus_conf: CHORUS_PORT, CHORUS_CONF, CHORUS_LOG, CHORUS_SOCKDIR
#   after chorus_start: CHORUS_PID
#
# Functions:
#   cluster_up N                 create and start N nodes
#   chorus_conf [LINE...]        write $CHORUS_CONF; each LINE ("key = value;")
#                                replaces the default of that key or adds it
#   chorus_start                 start pgchorus, wait until it accepts connections
#   chorus_stop [SIG] [SECS]     send SIG (default TERM), then chorus_wait SECS (default 20)
#   chorus_wait SECS WHY         wait for pgchorus to exit; checks it exits in time,
#                                with status 0 and without a sanitizer report
#   chorus_reload                SIGHUP
#   chorus_kill9                 SIGKILL pgchorus (a crash) and reap it; no exit check
#   node_port K | node_dsn K [DB] | chorus_dsn [DB]
#   node_psql K [ARGS]  / chorus_psql [ARGS]     psql -X, ON_ERROR_STOP=1
#   node_sql K SQL [DB] / chorus_sql SQL [DB]    one command, unaligned tuples only
#   node_running_query K PATTERN [N]   N statements LIKE PATTERN active on node K
#   node_count_query K PATTERN   how many statements LIKE PATTERN are active on node K
#   ok DESC | not_ok DESC | bail DESC | diag TEXT
#   check DESC CMD...            ok when CMD exits 0 (its output is shown if not)
#   check_fail DESC CMD...       ok when CMD exits non-zero
#   check_eq DESC EXPECTED ACTUAL
#   check_match DESC REGEX TEXT  ok when TEXT matches the extended regex
#   wait_until SECS CMD...       poll CMD every 0.1 s; status 0 once it succeeds
#   with_timeout SECS CMD...     run CMD for at most SECS (use it, not plain timeout)
#   bg_track PID                 kill PID at exit if still running
#   run_pgbench DESC ARGS...     pgbench ARGS through pgchorus (40 s at most): one check,
#                                ok when it ran transactions and none failed
#   chorus_metric PORT NAME      a metric's value from pgchorus' metrics endpoint on PORT
set -uo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGCHORUS=${PGCHORUS:-$TOP/pgchorus}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export PY=/usr/bin/python3
CLUSTER_SH=$TOP/scripts/cluster.sh
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-30}
TEST_NAME=$(basename "$0" .sh)
export PATH="$PGBIN:$PATH" PGBIN
export PGUSER=postgres PGDATABASE=postgres PGCONNECT_TIMEOUT=10
unset PGHOST PGPORT PGSERVICE PGOPTIONS
# Make a sanitizer finding fatal and visible even when the test runs outside
# scripts/test.sh (which sets its own options with a log_path).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

TEST_TMP=$(mktemp -d /tmp/pgchorus-test.XXXXXX)
chmod 755 "$TEST_TMP" # the postgres user runs the nodes inside it
# scripts/test.sh cleans up after a test that had to be killed.
if [ -n "${PGCHORUS_TEST_REGISTRY:-}" ]; then
	echo "$TEST_TMP" >>"$PGCHORUS_TEST_REGISTRY"
fi
CHORUS_PID=""
CLUSTER_DIR=""
N_OK=0
N_NOT_OK=0
BG_PIDS=()

# ---- reporting -------------------------------------------------------------

ok() {
	N_OK=$((N_OK + 1))
	echo "ok - $*"
}

not_ok() {
	N_NOT_OK=$((N_NOT_OK + 1))
	echo "not ok - $*"
}

diag() {
	printf '%s\n' "$@" | sed 's/^/# /'
}

# Show the last lines of a file as diagnostics.
diag_file() {
	local f=$1 n=${2:-30}
	[ -s "$f" ] || return 0
	echo "# --- last lines of $f ---"
	tail -n "$n" "$f" | sed 's/^/#   /'
}

# A setup step failed: record it and end the test (the EXIT trap cleans up).
bail() {
	not_ok "$*"
	[ -n "${CHORUS_LOG:-}" ] && diag_file "$CHORUS_LOG"
	exit 1
}

check() {
	local desc=$1
	shift
	if "$@" >"$TEST_TMP/check.out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "command: $*"
		diag_file "$TEST_TMP/check.out" 20
		return 1
	fi
}

check_fail() {
	local desc=$1
	shift
	if "$@" >"$TEST_TMP/check.out" 2>&1; then
		not_ok "$desc"
		diag "command succeeded but should have failed: $*"
		diag_file "$TEST_TMP/check.out" 20
		return 1
	else
		ok "$desc"
	fi
}

check_eq() {
	local desc=$1 expected=$2 actual=$3
	if [ "$expected" = "$actual" ]; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "expected: $expected" "actual:   $actual"
		return 1
	fi
}

check_match() {
	local desc=$1 re=$2 text=$3
	# a here-string, not a pipe: grep -q may exit before reading all input
	if grep -Eq -- "$re" <<<"$text"; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "expected to match: $re" "actual (first lines):"
		head -n 6 <<<"$text" | cut -c 1-200 | sed 's/^/#   /'
		return 1
	fi
}

# with_timeout SECS CMD...: run CMD, end it after SECS.  --foreground keeps CMD
# in the test's process group, so that scripts/test.sh's own timeout (which
# signals the whole group) reaches it too.
with_timeout() {
	local secs=$1
	shift
	timeout --foreground -k 5 "$secs" "$@"
}

wait_until() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	"$@" >/dev/null 2>&1
}

bg_track() {
	BG_PIDS+=("$1")
}

# true while PID exists and is not a zombie
pid_alive() {
	local state
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ]
}

# ---- PostgreSQL nodes ------------------------------------------------------

cluster_up() {
	local n=${1:-1} k var
	CLUSTER_DIR=$TEST_TMP/cluster
	"$CLUSTER_SH" init "$CLUSTER_DIR" "$n" >"$TEST_TMP/cluster-init.log" 2>&1 ||
		{
			diag_file "$TEST_TMP/cluster-init.log"
			bail "cluster init ($n nodes)"
		}
	"$CLUSTER_SH" start "$CLUSTER_DIR" >"$TEST_TMP/cluster-start.log" 2>&1 ||
		{
			diag_file "$TEST_TMP/cluster-start.log"
			bail "cluster start ($n nodes)"
		}
	# shellcheck source=/dev/null
	. "$CLUSTER_DIR/cluster.env"
	export NODE_COUNT PORTS SOCKDIR
	for ((k = 0; k < NODE_COUNT; k++)); do
		var=NODE${k}_PORT
		export "${var?}"
	done
}

node_port() {
	local var=NODE${1}_PORT
	printf '%s\n' "${!var}"
}

node_dsn() {
	echo "host=127.0.0.1 port=$(node_port "$1") user=postgres dbname=${2:-postgres}"
}

node_psql() {
	local k=$1
	shift
	psql -X -h 127.0.0.1 -p "$(node_port "$k")" -v ON_ERROR_STOP=1 "$@"
}

node_sql() {
	node_psql "$1" -qAt -d "${3:-postgres}" -c "$2"
}

# node_running_query K PATTERN [N]: true when at least N (default 1) backends
# on node K are active with a query LIKE PATTERN.  For wait_until.
node_running_query() {
	local n
	n=$(node_count_query "$1" "$2") || return 1
	[ "$n" -ge "${3:-1}" ]
}

# node_count_query K PATTERN: print how many backends run a query LIKE PATTERN
node_count_query() {
	node_sql "$1" "select count(*) from pg_stat_activity where state = 'active' and query like '$2' and pid <> pg_backend_pid()"
}

# ---- pgchorus --------------------------------------------------------------

chorus_dsn() {
	echo "host=127.0.0.1 port=$CHORUS_PORT user=postgres dbname=${1:-postgres}"
}

chorus_psql() {
	with_timeout "$CLIENT_TIMEOUT" psql -X -h 127.0.0.1 -p "$CHORUS_PORT" -v ON_ERROR_STOP=1 "$@"
}

chorus_sql() {
	chorus_psql -qAt -d "${2:-postgres}" -c "$1"
}

# chorus_conf [LINE...]: write the configuration for all cluster nodes.  The
# port is chosen once per test, so a rewritten config (for a reload) keeps it.
# shellcheck disable=SC2120  # called with and without extra lines
chorus_conf() {
	local line key k extra nodes="" conf_lines=()
	[ -n "$CLUSTER_DIR" ] || bail "chorus_conf before cluster_up"
	if [ -z "${CHORUS_PORT:-}" ]; then
		CHORUS_PORT=$("$CLUSTER_SH" freeport 1) || bail "no free port for pgchorus"
	fi
	CHORUS_CONF=$TEST_TMP/pgchorus.conf
	CHORUS_LOG=$TEST_TMP/pgchorus.log
	CHORUS_SOCKDIR=$TEST_TMP/csock
	mkdir -p "$CHORUS_SOCKDIR"
	for ((k = 0; k < NODE_COUNT; k++)); do
		[ -n "$nodes" ] && nodes+=","
		nodes+=$'\n'"  { host = \"127.0.0.1\"; port = $(node_port "$k"); weight = 1.0; }"
	done
	local defaults=(
		"listen_addresses = \"127.0.0.1\";"
		"port = $CHORUS_PORT;"
		"unix_socket_dir = \"$CHORUS_SOCKDIR\";"
		"workers = 0;"
		"pool_mode = \"transaction\";"
		"pool_size = 20;"
		"max_client_conn = 10000;"
		"auth_method = \"trust\";"
		"control_socket = \"$TEST_TMP/pgchorus.ctl\";"
		"log_level = \"${CHORUS_LOG_LEVEL:-info}\";"
		"logfile = \"\";"
		"pidfile = \"\";"
		"query_wait_timeout = 120;"
		"server_reset_query = \"DISCARD ALL\";"
		"nodes = ($nodes
);"
	)
	# An extra line for a key that has a default replaces the default
	# (libconfig rejects a setting given twice).
	for line in "${defaults[@]}"; do
		key=$(_conf_key "$line")
		for extra in "$@"; do
			[ "$(_conf_key "$extra")" = "$key" ] && continue 2
		done
		conf_lines+=("$line")
	done
	{
		echo "# pgchorus configuration written by test/integration/lib.sh for $TEST_NAME"
		printf '%s\n' "${conf_lines[@]}"
		[ $# -gt 0 ] && printf '%s\n' "$@"
	} >"$CHORUS_CONF"
	export CHORUS_PORT CHORUS_CONF CHORUS_LOG CHORUS_SOCKDIR
}

_conf_key() {
	local k=${1%%[=:]*}
	k=${k//[[:space:]]/}
	printf '%s\n' "$k"
}

chorus_start() {
	# shellcheck disable=SC2119
	[ -n "${CHORUS_CONF:-}" ] || chorus_conf
	[ -x "$PGCHORUS" ] || bail "pgchorus binary $PGCHORUS exists (build it first)"
	[ -z "$CHORUS_PID" ] || bail "chorus_start while pgchorus runs (pid $CHORUS_PID)"
	echo "=== $(date '+%F %T') starting $PGCHORUS -n -f $CHORUS_CONF" >>"$CHORUS_LOG"
	"$PGCHORUS" -n -f "$CHORUS_CONF" >>"$CHORUS_LOG" 2>&1 &
	CHORUS_PID=$!
	echo "$CHORUS_PID" >"$TEST_TMP/pgchorus.pid"
	local i
	for ((i = 0; i < 100; i++)); do
		if ! pid_alive "$CHORUS_PID"; then
			wait "$CHORUS_PID"
			local rc=$?
			CHORUS_PID=""
			rm -f "$TEST_TMP/pgchorus.pid"
			bail "pgchorus started (it exited with status $rc)"
		fi
		pg_isready -q -h 127.0.0.1 -p "$CHORUS_PORT" -t 1 && return 0
		sleep 0.1
	done
	bail "pgchorus accepts connections within 10 s (port $CHORUS_PORT)"
}

chorus_reload() {
	[ -n "$CHORUS_PID" ] || bail "chorus_reload: pgchorus is not running"
	kill -HUP "$CHORUS_PID"
}

# chorus_kill9: crash pgchorus with SIGKILL and reap it.  Its exit status is
# not checked (it has none of its own); chorus_start may follow at once.
chorus_kill9() {
	[ -n "$CHORUS_PID" ] || return 0
	kill -KILL "$CHORUS_PID" 2>/dev/null
	wait "$CHORUS_PID" 2>/dev/null
	CHORUS_PID=""
	rm -f "$TEST_TMP/pgchorus.pid"
	echo "=== $(date '+%F %T') pgchorus killed with SIGKILL by the test" >>"$CHORUS_LOG"
}

# Report a sanitizer finding written to pgchorus' own output.
_chorus_sanitizer_check() {
	if [ -f "$CHORUS_LOG" ] &&
		grep -Eq 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:|SUMMARY: (Address|Undefined|Leak)' "$CHORUS_LOG"; then
		not_ok "no sanitizer report in pgchorus output"
		grep -E -A 15 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$CHORUS_LOG" | head -n 40 | sed 's/^/#   /'
	fi
}

chorus_stop() {
	local sig=${1:-TERM} secs=${2:-20}
	[ -n "$CHORUS_PID" ] || return 0
	kill "-$sig" "$CHORUS_PID" 2>/dev/null
	chorus_wait "$secs" "SIG$sig"
}

# chorus_wait SECS WHY: wait for pgchorus to exit (after WHY, e.g. "SIGTERM");
# checks that it did within SECS (else SIGKILL), with status 0, and that its
# output holds no sanitizer report.
chorus_wait() {
	local secs=$1 why=$2 i rc
	[ -n "$CHORUS_PID" ] || return 0
	for ((i = 0; i < secs * 10; i++)); do
		pid_alive "$CHORUS_PID" || break
		sleep 0.1
	done
	if pid_alive "$CHORUS_PID"; then
		not_ok "pgchorus exits within ${secs}s of $why"
		kill -KILL "$CHORUS_PID" 2>/dev/null
	fi
	wait "$CHORUS_PID"
	rc=$?
	CHORUS_PID=""
	rm -f "$TEST_TMP/pgchorus.pid"
	if [ "$rc" -eq 0 ]; then
		ok "pgchorus exits with status 0 after $why"
	else
		if [ "$rc" -gt 128 ]; then
			not_ok "pgchorus exits with status 0 after $why (killed by signal $((rc - 128)))"
		else
			not_ok "pgchorus exits with status 0 after $why (status $rc)"
		fi
		diag_file "$CHORUS_LOG"
	fi
	_chorus_sanitizer_check
	return 0
}

# ---- cleanup ---------------------------------------------------------------

_lib_exit() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	if [ -n "$CHORUS_PID" ]; then
		chorus_stop TERM 20
	fi
	if [ -n "$CLUSTER_DIR" ] && [ -f "$CLUSTER_DIR/cluster.env" ]; then
		if [ "${KEEP:-0}" = 1 ]; then
			"$CLUSTER_SH" stop "$CLUSTER_DIR" fast >/dev/null 2>&1
		else
			"$CLUSTER_SH" destroy "$CLUSTER_DIR" >/dev/null 2>&1
		fi
	fi
	if [ "$rc" -ne 0 ] && [ "$N_NOT_OK" -eq 0 ]; then
		not_ok "$TEST_NAME ran to its end (exit status $rc)"
	fi
	if [ "${KEEP:-0}" = 1 ]; then
		echo "# kept $TEST_TMP"
	else
		rm -rf "$TEST_TMP"
	fi
	if [ "$N_NOT_OK" -gt 0 ]; then
		exit 1
	fi
	exit "$rc"
}
trap _lib_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# chorus_metric PORT NAME: the value of metric NAME (a line without labels)
# on pgchorus' metrics endpoint at 127.0.0.1:PORT; empty if absent.
chorus_metric() {
	"$PY" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
		"http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'
}

# run_pgbench DESC PGBENCH-ARGS...: one check for the run as a whole.
run_pgbench() {
	local desc=$1 out processed failed rc
	shift
	out=$TEST_TMP/pgbench.out
	with_timeout 40 pgbench -n -h 127.0.0.1 -p "$CHORUS_PORT" "$@" postgres >"$out" 2>&1
	rc=$?
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	if [ "$rc" -eq 0 ] && [ "${processed:-0}" -gt 0 ] && [ "$failed" = 0 ]; then
		ok "$desc: $processed transactions, 0 failed"
	else
		not_ok "$desc (exit $rc, processed '${processed:-}', failed '${failed:-}')"
		grep -v '^progress' "$out" | tail -n 25 | sed 's/^/#   /'
	fi
}
