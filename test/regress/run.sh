#!/usr/bin/env bash
# test/regress/run.sh - PostgreSQL 15's own regression suite, directly and
# through pgchorus in replication mode.
#
#   test/regress/run.sh
#
# What it does:
#   1. fetches the source package of the installed postgresql-15 (same
#      version) into a cache dir, adding a deb-src apt source if none exists,
#      installs postgresql-server-dev-15 of the same version and builds the
#      suite's regress.so with PGXS;
#   2. runs the suite (pg_regress --use-existing) against a fresh single node:
#      the reference ("direct") run, twice by default, so that tests whose
#      output differs between two direct runs are known as flaky;
#   3. runs it again through pgchorus (mode = "replication") in front of three
#      fresh nodes;
#   4. counts the tests whose output (results/NAME.out) equals the direct
#      run's (not expected/NAME.out: local differences cancel out), compares
#      every ordinary table of the regression database across the three nodes
#      and counts the prepared transactions left on them.
#
# The counts are informational: the exit status is 0 whenever the script ran
# to its end, non-zero only when it could not run (missing tools, no source,
# a node that does not start...).  It needs root (apt-get, runuser).
#
# Environment (all optional):
#   PGCHORUS        binary to test (default: $TOP/pgchorus); copied at start
#   SCHEDULE        serial (default: parallel_schedule one test at a time, in
#                   its order) or parallel (its groups run concurrently)
#   REGRESS_CACHE   source, build and regress.so cache (default /var/cache/pgchorus-regress)
#   KEEP=1          keep the temp dir (nodes, pgchorus config) at exit
#   LOG_DIR         where the logs go (default: a new /tmp/pgchorus-regress-logs.XXXXXX)
#   BASELINE_RUNS   direct runs, 1 or 2 (default 2)
#   TEST_TIMEOUT    seconds one test may take before it counts as hung (default 120)
#   RUN_TIMEOUT     seconds one whole pg_regress run may take (default 7200)
#   MAX_RESTARTS    times pgchorus is restarted after it crashed or hung (default 3)
#   TESTS           only these tests (names from the schedule, space separated,
#                   in schedule order; test_setup is needed by most others)
#   EXTRA_CONF      more pgchorus config lines (keys not set below), e.g.
#                   'on_mismatch = "abort";' or 'load_balance = "off";'
#   CHORUS_LOG_LEVEL  pgchorus log_level (default info)
#   PGBIN           PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGCHORUS=${PGCHORUS:-$TOP/pgchorus}
SCHEDULE=${SCHEDULE:-serial}
REGRESS_CACHE=${REGRESS_CACHE:-/var/cache/pgchorus-regress}
KEEP=${KEEP:-0}
BASELINE_RUNS=${BASELINE_RUNS:-2}
TEST_TIMEOUT=${TEST_TIMEOUT:-120}
RUN_TIMEOUT=${RUN_TIMEOUT:-7200}
MAX_RESTARTS=${MAX_RESTARTS:-3}
EXTRA_CONF=${EXTRA_CONF:-}
CHORUS_LOG_LEVEL=${CHORUS_LOG_LEVEL:-info}
CLUSTER_SH=$TOP/scripts/cluster.sh
PG_USER=postgres
NODES=3

export PATH="$PGBIN:$PATH"
unset PGHOST PGPORT PGDATABASE PGSERVICE PGOPTIONS PGUSER

# ---- small helpers -----------------------------------------------------------

say() {
	if [ -n "${LOG_DIR:-}" ] && [ -d "$LOG_DIR" ]; then
		printf '%s run.sh: %s\n' "$(date '+%H:%M:%S')" "$*" | tee -a "$LOG_DIR/run.log" >&2
	else
		printf 'run.sh: %s\n' "$*" >&2
	fi
}

die() {
	say "cannot run: $*"
	exit 2
}

# psql -X as postgres to PORT, database DB, one command, tuples only.
sql_at() {
	local port=$1 db=$2 cmd=$3
	psql -X -qAt -h 127.0.0.1 -p "$port" -U "$PG_USER" -d "$db" -v ON_ERROR_STOP=1 -c "$cmd"
}

# true while PID exists and is not a zombie
pid_alive() {
	local state
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ]
}

case $SCHEDULE in serial | parallel) ;; *) die "SCHEDULE must be serial or parallel" ;; esac
case $BASELINE_RUNS in 1 | 2) ;; *) die "BASELINE_RUNS must be 1 or 2" ;; esac
[ "$(id -u)" -eq 0 ] || die "run it as root (apt-get, and the nodes run as $PG_USER via runuser)"
id "$PG_USER" >/dev/null 2>&1 || die "no user $PG_USER (is postgresql-15 installed?)"
[ -x "$CLUSTER_SH" ] || die "no $CLUSTER_SH"
[ -x "$PGBIN/postgres" ] || die "no PostgreSQL 15 server in $PGBIN"
command -v timeout >/dev/null || die "timeout (coreutils) is needed"

# ---- state and cleanup ---------------------------------------------------------

# The temp dir holds the nodes, the pgchorus config and the pg_regress output
# dir; the log dir is kept in every case.
WORK=$(mktemp -d /tmp/pgchorus-regress.XXXXXX)
chmod 755 "$WORK"
if [ -z "${LOG_DIR:-}" ]; then
	LOG_DIR=$(mktemp -d /tmp/pgchorus-regress-logs.XXXXXX)
fi
mkdir -p "$LOG_DIR"
chmod 755 "$LOG_DIR"
# A sanitizer build of pgchorus writes its reports here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:log_path=$LOG_DIR/sanitizer}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:log_path=$LOG_DIR/sanitizer}

CLUSTERS=()     # cluster dirs created (destroyed at exit)
CHORUS_PID=""   # the running pgchorus
REGRESS_PID=""  # the running pg_regress (its timeout wrapper)

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	local rc=$? c
	trap - EXIT INT TERM
	if [ -n "$REGRESS_PID" ] && pid_alive "$REGRESS_PID"; then
		kill -TERM "$REGRESS_PID" 2>/dev/null || true
		wait "$REGRESS_PID" 2>/dev/null || true
	fi
	if [ -n "$CHORUS_PID" ]; then
		chorus_stop || true
	fi
	for c in "${CLUSTERS[@]}"; do
		[ -f "$c/cluster.env" ] || continue
		if [ "$KEEP" = 1 ]; then
			"$CLUSTER_SH" stop "$c" fast >/dev/null 2>&1 || true
		else
			"$CLUSTER_SH" destroy "$c" >/dev/null 2>&1 || true
		fi
	done
	if [ "$KEEP" = 1 ]; then
		echo "run.sh: kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	[ "$rc" -eq 0 ] || echo "run.sh: stopped early (exit status $rc)" >&2
	echo "run.sh: logs are in $LOG_DIR" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "logs in $LOG_DIR, temp dir $WORK, schedule $SCHEDULE"

# ---- 1. the regression sources, pg_regress and regress.so -----------------------

PGVER=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null) || true
[ -n "$PGVER" ] || die "postgresql-15 is not installed (dpkg-query)"
SRC=$REGRESS_CACHE/regress-$PGVER     # src/test/regress of that version
LIBDIR=$REGRESS_CACHE/lib-$PGVER      # regress.so (pg_regress --dlpath)

# deb-src entries that mirror the enabled "deb" ones, in a file of our own,
# when apt does not know the source of the installed version yet.
# have_src: apt knows the source package of the installed version (grep
# reads all of it: an early exit of grep -q would fail the pipe).
have_src() {
	apt-cache showsrc postgresql-15 2>/dev/null | grep -cx "Version: $PGVER" >/dev/null
}

ensure_deb_src() {
	if have_src; then
		return 0
	fi
	local f out=/etc/apt/sources.list.d/pgchorus-regress-src.sources list=/etc/apt/sources.list.d/pgchorus-regress-src.list
	if [ ! -e "$out" ] && [ ! -e "$list" ]; then
		say "adding deb-src sources ($out)"
		: >"$out.tmp"
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			# each deb822 stanza whose Types has "deb" but not "deb-src",
			# again with Types: deb-src
			awk 'BEGIN { RS = ""; FS = "\n" }
			     {
			         types = ""
			         for (i = 1; i <= NF; i++) if ($i ~ /^Types:/) types = $i
			         if (types !~ /[ \t]deb([ \t]|$)/ || types ~ /deb-src/) next
			         for (i = 1; i <= NF; i++) print (($i ~ /^Types:/) ? "Types: deb-src" : $i)
			         print ""
			     }' "$f" >>"$out.tmp"
		done
		if [ -s "$out.tmp" ]; then
			mv "$out.tmp" "$out"
		else
			rm -f "$out.tmp"
		fi
		# one-line style lists
		: >"$list.tmp"
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] || continue
			sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >>"$list.tmp"
		done
		if [ -s "$list.tmp" ]; then
			mv "$list.tmp" "$list"
		else
			rm -f "$list.tmp"
		fi
	fi
	say "apt-get update"
	apt-get update -q >"$LOG_DIR/apt-update.log" 2>&1 || die "apt-get update failed (see $LOG_DIR/apt-update.log)"
	have_src || die "apt has no source package postgresql-15 $PGVER"
}

# src/test/regress of the installed version, extracted once into the cache.
fetch_sources() {
	[ -f "$SRC/.complete" ] && return 0
	ensure_deb_src
	local dl=$REGRESS_CACHE/download
	rm -rf "$dl" "$SRC"
	mkdir -p "$dl"
	say "fetching the source of postgresql-15 $PGVER into $REGRESS_CACHE"
	# --download-only then dpkg-source: apt-get source would also try to
	# extract as the _apt user in a root-owned dir.
	(cd "$dl" && apt-get source -q --download-only "postgresql-15=$PGVER") >"$LOG_DIR/apt-source.log" 2>&1 ||
		die "apt-get source postgresql-15=$PGVER failed (see $LOG_DIR/apt-source.log)"
	(cd "$dl" && dpkg-source -x ./*.dsc tree) >>"$LOG_DIR/apt-source.log" 2>&1 ||
		die "dpkg-source -x failed (see $LOG_DIR/apt-source.log)"
	[ -f "$dl/tree/src/test/regress/parallel_schedule" ] || die "no src/test/regress in the source package"
	mv "$dl/tree/src/test/regress" "$SRC"
	rm -rf "$dl"
	touch "$SRC/.complete"
}

# postgresql-server-dev-15 of the server's version (headers and PGXS).
ensure_server_dev() {
	local have
	have=$(dpkg-query -W -f='${Status} ${Version}' postgresql-server-dev-15 2>/dev/null || true)
	[ "$have" = "install ok installed $PGVER" ] && return 0
	say "installing postgresql-server-dev-15=$PGVER"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --allow-downgrades \
		"postgresql-server-dev-15=$PGVER" >"$LOG_DIR/apt-install.log" 2>&1 ||
		{
			apt-get update -q >>"$LOG_DIR/apt-install.log" 2>&1 &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --allow-downgrades \
					"postgresql-server-dev-15=$PGVER" >>"$LOG_DIR/apt-install.log" 2>&1
		} || die "cannot install postgresql-server-dev-15=$PGVER (see $LOG_DIR/apt-install.log)"
}

# regress.so from the suite's regress.c, with PGXS (without LLVM bitcode).
build_regress_so() {
	[ -f "$LIBDIR/regress.so" ] && [ "$LIBDIR/regress.so" -nt "$SRC/regress.c" ] && return 0
	ensure_server_dev
	local b=$REGRESS_CACHE/build-$PGVER
	rm -rf "$b"
	mkdir -p "$b" "$LIBDIR"
	cp "$SRC/regress.c" "$b/"
	cat >"$b/Makefile" <<EOF
MODULES = regress
PG_CONFIG = $PGBIN/pg_config
PGXS := \$(shell \$(PG_CONFIG) --pgxs)
include \$(PGXS)
EOF
	say "building regress.so with PGXS"
	make -C "$b" with_llvm=no >"$LOG_DIR/build-regress.log" 2>&1 || die "building regress.so failed (see $LOG_DIR/build-regress.log)"
	cp "$b/regress.so" "$LIBDIR/regress.so"
}

mkdir -p "$REGRESS_CACHE"
fetch_sources
build_regress_so
# The nodes (user postgres) read data/ files and load regress.so.
chmod -R a+rX "$REGRESS_CACHE"
runuser -u "$PG_USER" -- test -r "$LIBDIR/regress.so" || die "$LIBDIR/regress.so is not readable by $PG_USER"
runuser -u "$PG_USER" -- test -r "$SRC/data/onek.data" || die "$SRC/data is not readable by $PG_USER"

PG_REGRESS=$(dirname "$("$PGBIN/pg_config" --pgxs)")/../test/regress/pg_regress
[ -x "$PG_REGRESS" ] || die "no pg_regress at $PG_REGRESS (postgresql-client-15)"

# The schedule: parallel_schedule as it is, or one test per line in its order.
SCHED_FILE=$WORK/schedule
if [ "$SCHEDULE" = serial ]; then
	awk '$1 == "test:" { for (i = 2; i <= NF; i++) print "test: " $i } $1 == "ignore:" { print }' \
		"$SRC/parallel_schedule" >"$SCHED_FILE"
else
	cp "$SRC/parallel_schedule" "$SCHED_FILE"
fi
if [ -n "${TESTS:-}" ]; then
	# keep the schedule's order, one test a line
	awk -v want=" $TESTS " '$1 == "test:" { for (i = 2; i <= NF; i++) if (index(want, " " $i " ")) print "test: " $i }' \
		"$SCHED_FILE" >"$SCHED_FILE.sub"
	mv "$SCHED_FILE.sub" "$SCHED_FILE"
	[ -s "$SCHED_FILE" ] || die "none of TESTS is in the schedule"
fi
awk '$1 == "test:" { for (i = 2; i <= NF; i++) print $i }' "$SCHED_FILE" >"$LOG_DIR/tests.txt"
say "$(wc -l <"$LOG_DIR/tests.txt") tests, PostgreSQL $PGVER"

# The binary, copied so that a rebuild meanwhile does not change it under us
# (it may be missing for a moment while it is rebuilt).
for ((i = 0; i < 120; i++)); do
	[ -x "$PGCHORUS" ] && cp "$PGCHORUS" "$WORK/pgchorus" 2>/dev/null && break
	sleep 1
done
[ -x "$WORK/pgchorus" ] || die "no pgchorus binary at $PGCHORUS (build it first)"

# ---- 2. nodes ---------------------------------------------------------------------

# new_cluster NAME N: N fresh started nodes in $WORK/NAME, each with the
# regression database (created as pg_regress itself would create it with
# --no-locale: from template0, C collation, its per-database settings).
new_cluster() {
	local dir=$WORK/$1 n=$2 k port
	CLUSTERS+=("$dir")
	"$CLUSTER_SH" init "$dir" "$n" >"$LOG_DIR/$1-init.log" 2>&1 || die "cluster init failed (see $LOG_DIR/$1-init.log)"
	"$CLUSTER_SH" start "$dir" >>"$LOG_DIR/$1-init.log" 2>&1 || die "cluster start failed (see $LOG_DIR/$1-init.log)"
	# shellcheck source=/dev/null
	. "$dir/cluster.env"
	for port in $PORTS; do
		sql_at "$port" postgres "create database regression template template0 encoding 'UTF8' lc_collate 'C' lc_ctype 'C'" >/dev/null
		# pg_regress passes intervalstyle in PGOPTIONS (startup parameter
		# "options"), which pgchorus does not forward: the database default
		# gives every run the same setting.
		for k in "intervalstyle TO 'postgres_verbose'" "lc_messages TO 'C'" "lc_monetary TO 'C'" "lc_numeric TO 'C'" "lc_time TO 'C'" \
			"bytea_output TO 'hex'" "timezone_abbreviations TO 'Default'"; do
			sql_at "$port" postgres "alter database regression set $k" >/dev/null
		done
	done
}

# save_node_logs NAME: copy the nodes' server logs into the log dir.
save_node_logs() {
	local dir=$WORK/$1 k
	for k in "$dir"/node*; do
		[ -f "$k/log/postgresql.log" ] && cp "$k/log/postgresql.log" "$LOG_DIR/$1-$(basename "$k").log"
	done
	return 0
}

# ---- 3. pgchorus ------------------------------------------------------------------

CHORUS_PORT=""
CHORUS_LOG=$LOG_DIR/pgchorus.log

# chorus_conf PORTS: the replication-mode configuration for those nodes.
chorus_conf() {
	local nodes="" p
	for p in "$@"; do
		[ -n "$nodes" ] && nodes+=","
		nodes+=$'\n'"  { host = \"127.0.0.1\"; port = $p; weight = 1.0; }"
	done
	mkdir -p "$WORK/csock"
	cat >"$WORK/pgchorus.conf" <<EOF
# written by test/regress/run.sh
listen_addresses = "127.0.0.1";
port = $CHORUS_PORT;
unix_socket_dir = "$WORK/csock";
workers = 0;
mode = "replication";
pool_mode = "session";
pool_size = 40;
max_client_conn = 10000;
# pg_regress sends "options" (-c intervalstyle=...); the regression
# database's own default sets the same (new_cluster).
ignore_startup_parameters = [ "extra_float_digits", "options" ];
auth_method = "trust";
instance_name = "rg";
resolver_period = 1;
resolver_grace = 2;
control_socket = "$WORK/pgchorus.ctl";
log_level = "$CHORUS_LOG_LEVEL";
logfile = "";
pidfile = "";
nodes = ($nodes
);
$EXTRA_CONF
EOF
}

chorus_start() {
	local i
	echo "=== $(date '+%F %T') starting pgchorus -n -f $WORK/pgchorus.conf" >>"$CHORUS_LOG"
	"$WORK/pgchorus" -n -f "$WORK/pgchorus.conf" >>"$CHORUS_LOG" 2>&1 &
	CHORUS_PID=$!
	for ((i = 0; i < 300; i++)); do
		if ! pid_alive "$CHORUS_PID"; then
			local rc=0
			wait "$CHORUS_PID" || rc=$?
			CHORUS_PID=""
			tail -n 20 "$CHORUS_LOG" >&2
			die "pgchorus exited at start (status $rc, log $CHORUS_LOG)"
		fi
		pg_isready -q -h 127.0.0.1 -p "$CHORUS_PORT" -U "$PG_USER" -d postgres -t 1 && return 0
		sleep 0.1
	done
	die "pgchorus does not accept connections within 30 s (log $CHORUS_LOG)"
}

# chorus_stop: SIGTERM, SIGKILL after 30 s; logs how it ended.
chorus_stop() {
	local i rc=0
	[ -n "$CHORUS_PID" ] || return 0
	kill -TERM "$CHORUS_PID" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		pid_alive "$CHORUS_PID" || break
		sleep 0.1
	done
	if pid_alive "$CHORUS_PID"; then
		say "pgchorus did not exit within 30 s of SIGTERM: SIGKILL"
		kill -KILL "$CHORUS_PID" 2>/dev/null || true
	fi
	wait "$CHORUS_PID" 2>/dev/null || rc=$?
	echo "=== $(date '+%F %T') pgchorus stopped (exit status $rc)" >>"$CHORUS_LOG"
	CHORUS_PID=""
}

# ---- 4. running pg_regress with a watchdog -----------------------------------------

# descendants PID: "pid etimes comm" of every process below PID
descendants() {
	ps -e -o pid=,ppid=,etimes=,comm= | awk -v root="$1" '
		{ pid[NR] = $1; ppid[NR] = $2; line[NR] = $1 " " $3 " " $4 }
		END {
			want[root] = 1
			do {
				changed = 0
				for (i = 1; i <= NR; i++)
					if (!(pid[i] in want) && (ppid[i] in want)) { want[pid[i]] = 1; changed = 1 }
			} while (changed)
			for (i = 1; i <= NR; i++)
				if (pid[i] != root && (pid[i] in want)) print line[i]
		}'
}

# test_of PID: the test a psql process runs (its stdin is sql/NAME.sql)
test_of() {
	local f
	f=$(readlink "/proc/$1/fd/0" 2>/dev/null) || f=""
	f=${f##*/}
	printf '%s\n' "${f%.sql}"
}

# running_tests PID [DIR]: the tests that pg_regress PID runs right now; when
# none runs, "after NAME" for the newest results file in DIR (pg_regress
# creates it as it starts the test).
running_tests() {
	local pid et comm out="" newest
	while read -r pid et comm; do
		[ "$comm" = psql ] || continue
		out+="$(test_of "$pid") "
	done < <(descendants "$1")
	if [ -z "$out" ] && [ -n "${2:-}" ]; then
		# shellcheck disable=SC2012  # names are plain test names
		newest=$(ls -t "$2"/*.out 2>/dev/null | head -n 1)
		[ -n "$newest" ] && out="after $(basename "$newest" .out)"
	fi
	printf '%s\n' "${out% }"
}

# chorus_backtrace: all threads' stacks of the running pgchorus, into its log
chorus_backtrace() {
	command -v gdb >/dev/null || return 0
	{
		echo "=== $(date '+%F %T') gdb backtrace of pgchorus (pid $CHORUS_PID)"
		timeout 60 gdb -p "$CHORUS_PID" -batch -ex 'thread apply all bt' 2>&1 | grep -v '^\[New LWP' || true
		echo "=== end of backtrace"
	} >>"$CHORUS_LOG"
}

# run_regress LABEL PORT WITH_CHORUS: pg_regress against PORT; its output dir
# ends up in $LOG_DIR/LABEL.  Every run uses the same output path
# ($WORK/out), so that paths printed by tests are the same in every run.
# A psql that runs a test for more than TEST_TIMEOUT s is killed (the test
# counts as hung; pg_regress goes on with the next).  With pgchorus: if it
# exits, or does not answer a trivial query while a test hangs, that is
# logged (with a backtrace) and it is restarted, at most MAX_RESTARTS times.
run_regress() {
	local label=$1 port=$2 with_chorus=$3 out=$WORK/out rc=0 pid et comm name restarts=0 hung_in_row=0
	local opts=(--inputdir="$SRC" --outputdir="$out" --bindir="$PGBIN" --dlpath="$LIBDIR"
		--schedule="$SCHED_FILE" --use-existing --host=127.0.0.1 --port="$port" --user="$PG_USER"
		--dbname=regression --max-concurrent-tests=20)
	[ "$SCHEDULE" = serial ] && opts+=(--max-connections=1)
	rm -rf "$out"
	# the nodes write files into results/ (COPY TO, lo_export)
	mkdir -p "$out/results"
	chmod 777 "$out" "$out/results"
	: >"$LOG_DIR/$label-events.txt"
	say "$label: pg_regress on port $port"
	(cd "$WORK" && exec timeout -k 10 "$RUN_TIMEOUT" "$PG_REGRESS" "${opts[@]}") >"$LOG_DIR/$label-pg_regress.log" 2>&1 &
	REGRESS_PID=$!
	local start=$SECONDS last_done=0 ndone
	while pid_alive "$REGRESS_PID"; do
		sleep 2
		# progress: one line per minute
		ndone=$(find "$out/results" -name '*.out' 2>/dev/null | wc -l)
		if [ $((SECONDS - start)) -ge $((last_done + 60)) ]; then
			last_done=$((SECONDS - start))
			say "$label: $ndone tests done after ${last_done}s, running: $(running_tests "$REGRESS_PID")"
		fi
		# a test that takes too long
		while read -r pid et comm; do
			if [ "$comm" != psql ] || [ "$et" -le "$TEST_TIMEOUT" ]; then
				continue
			fi
			name=$(test_of "$pid")
			echo "hung $name" >>"$LOG_DIR/$label-events.txt"
			say "$label: test $name still runs after ${et}s: killing its psql (pid $pid)"
			if [ "$with_chorus" = 1 ] && [ -n "$CHORUS_PID" ]; then
				echo "=== $(date '+%F %T') run.sh: test $name hung for ${et}s" >>"$CHORUS_LOG"
				hung_in_row=$((hung_in_row + 1))
				if ! timeout 15 psql -X -qAt -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -c 'select 1' >/dev/null 2>&1 ||
					[ "$hung_in_row" -ge 3 ]; then
					say "$label: pgchorus does not answer (or $hung_in_row tests hung in a row): backtrace, then restart"
					echo "chorus-hung $name" >>"$LOG_DIR/$label-events.txt"
					chorus_backtrace
					kill -KILL "$CHORUS_PID" 2>/dev/null || true
					wait "$CHORUS_PID" 2>/dev/null || true
					echo "=== $(date '+%F %T') run.sh: pgchorus killed (hung)" >>"$CHORUS_LOG"
					CHORUS_PID=""
				fi
			fi
			kill -TERM "$pid" 2>/dev/null || true
		done < <(descendants "$REGRESS_PID")
		# pgchorus gone: note during which test, restart it
		if [ "$with_chorus" = 1 ] && { [ -z "$CHORUS_PID" ] || ! pid_alive "$CHORUS_PID"; }; then
			local st=0 during
			during=$(running_tests "$REGRESS_PID" "$out/results")
			if [ -n "$CHORUS_PID" ]; then
				wait "$CHORUS_PID" 2>/dev/null || st=$?
				echo "=== $(date '+%F %T') run.sh: pgchorus exited with status $st during test(s): ${during:-?}" >>"$CHORUS_LOG"
				echo "crash ${during:-?} status=$st" >>"$LOG_DIR/$label-events.txt"
				say "$label: pgchorus exited (status $st) during test(s) ${during:-?}"
				CHORUS_PID=""
			fi
			if [ "$restarts" -lt "$MAX_RESTARTS" ]; then
				restarts=$((restarts + 1))
				say "$label: restarting pgchorus ($restarts of at most $MAX_RESTARTS)"
				chorus_start
				hung_in_row=0
			else
				say "$label: pgchorus restarted $MAX_RESTARTS times already: ending this run"
				kill -TERM "$REGRESS_PID" 2>/dev/null || true
				break
			fi
		fi
		# a finished test resets the count of hangs in a row
		if [ "$hung_in_row" -gt 0 ] && [ -n "$(find "$out/results" -name '*.out' -newer "$LOG_DIR/$label-events.txt" 2>/dev/null | head -n 1)" ]; then
			hung_in_row=0
		fi
	done
	wait "$REGRESS_PID" || rc=$?
	REGRESS_PID=""
	case $rc in
	0 | 1) ;; # 1: some tests failed against expected/, as usual
	124 | 137) say "$label: pg_regress ran longer than RUN_TIMEOUT=${RUN_TIMEOUT}s and was stopped" ;;
	*) say "$label: pg_regress exited with status $rc (see $LOG_DIR/$label-pg_regress.log)" ;;
	esac
	grep -E 'tests? (passed|failed)|failed \(ignored\)|of [0-9]+ tests' "$LOG_DIR/$label-pg_regress.log" | tail -n 3 |
		sed "s/^/$label: pg_regress against expected\/: /" >>"$LOG_DIR/run.log" || true
	rm -rf "${LOG_DIR:?}/$label"
	mv "$out" "$LOG_DIR/$label"
	say "$label: done in $((SECONDS - start))s"
}

# ---- 5. the runs ------------------------------------------------------------------

for ((b = 1; b <= BASELINE_RUNS; b++)); do
	new_cluster "direct$b" 1
	run_regress "direct$b" "$NODE0_PORT" 0
	save_node_logs "direct$b"
	"$CLUSTER_SH" stop "$WORK/direct$b" fast >/dev/null 2>&1 || true
done

new_cluster chorus "$NODES"
CHORUS_NODE_PORTS=$PORTS
# shellcheck disable=SC2086  # one argument per port
set -- $CHORUS_NODE_PORTS
CHORUS_PORT=$("$CLUSTER_SH" freeport 1)
chorus_conf "$@"
chorus_start
run_regress chorus "$CHORUS_PORT" 1

# Let the resolver finish what the data path left (resolver_grace = 2).
for ((i = 0; i < 20; i++)); do
	left=0
	for p in $CHORUS_NODE_PORTS; do
		left=$((left + $(sql_at "$p" postgres "select count(*) from pg_prepared_xacts where gid like 'pgc\_%'" || echo 0)))
	done
	[ "$left" -eq 0 ] && break
	sleep 1
done
if [ -n "$CHORUS_PID" ] && ! pid_alive "$CHORUS_PID"; then
	st=0
	wait "$CHORUS_PID" || st=$?
	say "pgchorus exited (status $st) after the run"
	echo "crash after-run status=$st" >>"$LOG_DIR/chorus-events.txt"
	CHORUS_PID=""
fi
chorus_stop
# "node K detached" lines: the nodes pgchorus stopped using during the run
detached=$(grep -E 'node [0-9]+ detached' "$CHORUS_LOG" | sed -E 's/^[^ ]+ ([^ ]+) .*(node [0-9]+ detached.*)/\1 \2/' || true)

# ---- 6. comparison of outputs ---------------------------------------------------------

: >"$LOG_DIR/differing_tests.txt"
: >"$LOG_DIR/flaky_tests.txt"
: >"$LOG_DIR/diffs.log"
mkdir -p "$LOG_DIR/diffs"
total=0
equal=0
ref=$LOG_DIR/direct1/results
while read -r t; do
	if [ "$BASELINE_RUNS" = 2 ] && ! cmp -s "$ref/$t.out" "$LOG_DIR/direct2/results/$t.out"; then
		echo "$t" >>"$LOG_DIR/flaky_tests.txt"
		diff -u "$ref/$t.out" "$LOG_DIR/direct2/results/$t.out" >"$LOG_DIR/diffs/$t.flaky.diff" 2>&1 || true
		continue
	fi
	[ -f "$ref/$t.out" ] || {
		echo "$t" >>"$LOG_DIR/flaky_tests.txt"
		continue
	}
	total=$((total + 1))
	if cmp -s "$ref/$t.out" "$LOG_DIR/chorus/results/$t.out"; then
		equal=$((equal + 1))
		continue
	fi
	echo "$t" >>"$LOG_DIR/differing_tests.txt"
	{
		echo "=== $t"
		if [ -f "$LOG_DIR/chorus/results/$t.out" ]; then
			diff -u "$ref/$t.out" "$LOG_DIR/chorus/results/$t.out" >"$LOG_DIR/diffs/$t.diff" || true
			echo "$(grep -c '^-[^-]' "$LOG_DIR/diffs/$t.diff" || true) lines only in the direct run, $(grep -c '^+[^+]' "$LOG_DIR/diffs/$t.diff" || true) only through pgchorus; first lines:"
			sed -n '3,22p' "$LOG_DIR/diffs/$t.diff"
		else
			echo "no output through pgchorus (the test did not run)"
		fi
		echo
	} >>"$LOG_DIR/diffs.log"
done <"$LOG_DIR/tests.txt"
differ=$((total - equal))

# ---- 7. comparison of the nodes -------------------------------------------------------

# One digest per ordinary table and node: md5 of its rows as text, sorted
# (C collation); "error SQLSTATE" when the select fails.
DIGEST_SQL=$(
	cat <<'EOF'
set lock_timeout = '5s';
set client_min_messages = notice;
do $$
declare
  r record;
  h text;
begin
  for r in select n.nspname, c.relname
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where c.relkind = 'r'
              and n.nspname not in ('pg_catalog', 'information_schema', 'pgchorus')
              and n.nspname !~ '^pg_(toast|temp_)'
            order by 1, 2
  loop
    begin
      execute format('select md5(coalesce(string_agg(x, E''\n'' order by x), '''')) '
                     'from (select t::text as x from only %I.%I t) s', r.nspname, r.relname) into h;
    exception when others then
      h := 'error ' || sqlstate;
    end;
    raise notice E'digest\t%\t%', format('%I.%I', r.nspname, r.relname), h;
  end loop;
end $$;
EOF
)
k=0
for p in $CHORUS_NODE_PORTS; do
	psql -X -q -h 127.0.0.1 -p "$p" -U "$PG_USER" -d regression -v ON_ERROR_STOP=1 -v VERBOSITY=terse \
		-c "$DIGEST_SQL" 2>&1 >/dev/null | sed -n 's/^NOTICE:  digest\t//p' | sort >"$LOG_DIR/digests-node$k.txt" ||
		say "digests of node$k failed"
	k=$((k + 1))
done
# table -> per-node digest ("missing" where a node lacks the table)
awk -F'\t' -v n="$NODES" '
	{ f = FILENAME; sub(/.*digests-node/, "", f); sub(/\.txt$/, "", f); d[$1, f] = $2; names[$1] = 1 }
	END {
		for (t in names) {
			same = 1; err = 1; line = t
			for (k = 0; k < n; k++) {
				v = ((t, k) in d) ? d[t, k] : "missing"
				line = line "\t" v
				if (v != d[t, 0] || !((t, 0) in d)) same = 0
				if (v !~ /^error/) err = 0
			}
			if (same && err) status = "skipped"
			else if (same) status = "same"
			else status = "divergent"
			print status "\t" line
		}
	}' "$LOG_DIR"/digests-node*.txt | sort -k2 >"$LOG_DIR/tables.txt"
tables=$(grep -cv '^skipped' "$LOG_DIR/tables.txt" || true)
divergent=$(grep -c '^divergent' "$LOG_DIR/tables.txt" || true)
grep '^divergent' "$LOG_DIR/tables.txt" | cut -f2- >"$LOG_DIR/divergent_tables.txt" || true

prepared=0
: >"$LOG_DIR/prepared.txt"
k=0
for p in $CHORUS_NODE_PORTS; do
	n=$(sql_at "$p" postgres "select count(*) from pg_prepared_xacts") || n=0
	prepared=$((prepared + n))
	sql_at "$p" postgres "select 'node$k', gid, database, prepared from pg_prepared_xacts order by gid" >>"$LOG_DIR/prepared.txt" || true
	k=$((k + 1))
done
save_node_logs chorus

# ---- 8. report --------------------------------------------------------------------

{
	echo "tests: $(wc -l <"$LOG_DIR/tests.txt") in the schedule ($SCHEDULE), PostgreSQL $PGVER"
	if [ -s "$LOG_DIR/flaky_tests.txt" ]; then
		echo "excluded, output differs between two direct runs: $(tr '\n' ' ' <"$LOG_DIR/flaky_tests.txt")"
	elif [ "$BASELINE_RUNS" = 2 ]; then
		echo "excluded: none (both direct runs gave the same output for every test)"
	fi
	for f in "$LOG_DIR"/*-events.txt; do
		[ -s "$f" ] || continue
		echo "$(basename "$f" -events.txt): $(tr '\n' ';' <"$f")"
	done
	[ -n "$detached" ] && printf 'pgchorus: %s\n' "${detached//$'\n'/; }"
	ls "$LOG_DIR"/sanitizer* >/dev/null 2>&1 && echo "sanitizer reports: $(ls "$LOG_DIR"/sanitizer*)"
	echo "regress: $equal of $total tests equal to a direct run ($differ differ), divergent tables: $divergent of $tables, prepared transactions left: $prepared"
	echo "logs: $LOG_DIR (summary.txt, differing_tests.txt, diffs.log, diffs/, tables.txt, pgchorus.log)"
} | tee "$LOG_DIR/summary.txt"
exit 0
