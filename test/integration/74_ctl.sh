#!/usr/bin/env bash
# 74_ctl: the control socket and pgchorusctl (doc/pgchorusctl.md), and the
# operations commands of the admin console (SHOW VERSION, SHOW CONFIG).
# Replication mode with three nodes: node-info lists them up, node-count is
# 3, detach-node 2 / attach-node 2 (failback), errors exit 1 with a message,
# bad usage 2, a wrong socket 3; --json parses; the socket is mode 0600;
# several commands on one connection; clients lists a psql session with its
# application_name (text and --json), servers, pools, pool-status with the
# pools, stats; detach-node n --graceful sends DETACH NODE n GRACEFUL; bad
# stop arguments exit 2; reload; plain stop is graceful (waits for an open
# transaction, which then commits) and ends pgchorus (status 0) and removes
# the socket; stop --fast ends pgchorus at once while a client sits in an
# open transaction (which is rolled back).
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

CTL=$TOP/pgchorusctl
SOCK=$TEST_TMP/pgchorus.ctl

# ctl ARGS...: pgchorusctl on the test's socket; its stdout and stderr into
# $TEST_TMP/ctl.out, its exit status in $rc
ctl() {
	with_timeout 15 "$CTL" -s "$SOCK" "$@" >"$TEST_TMP/ctl.out" 2>&1
	rc=$?
	out=$(cat "$TEST_TMP/ctl.out")
}

node2_is() {
	with_timeout 5 "$CTL" -s "$SOCK" node-info 2 2>/dev/null | grep -Eq "^2 +\| [^|]+\| [^|]+\| $1 "
}

cluster_up 3
chorus_conf 'mode = "replication";' 'pool_mode = "session";' 'instance_name = "t74";' \
	'resolver_period = 1;' "state_file = \"$TEST_TMP/repl.state\";" 'admin_users = "postgres";' \
	"control_socket = \"$SOCK\";"
# a stale socket file from a crashed run is replaced
$PY -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$SOCK" ||
	bail "create a stale socket"
chorus_start

check_eq "the control socket is mode 0600 (a stale file was replaced)" 600 "$(stat -c %a "$SOCK")"

# ---- node-info, node-count ----------------------------------------------------
ctl node-info
check_eq "node-info: exit 0" 0 "$rc"
check_eq "node-info: three nodes up" 3 "$(grep -Ec '^[0-9] +\| [^|]+\| [^|]+\| up ' <<<"$out")"
check_match "node-info: the header" '^id +\| host +\| port +\| status +\| role' "$out"
ctl node-count
check_eq "node-count prints 3" "0 3" "$rc $out"
ctl --json node-info
check_eq "--json node-info: exit 0" 0 "$rc"
check_eq "--json node-info: JSON with 3 rows, node 0 up" "3 up" \
	"$($PY -c 'import json,sys; d=json.load(sys.stdin); c=d["columns"]; print(len(d["rows"]), d["rows"][0][c.index("status")])' <<<"$out" 2>&1)"
ctl --json node-info 1
check_eq "--json node-info 1: one row, node 1" "1 1" \
	"$($PY -c 'import json,sys; d=json.load(sys.stdin); print(len(d["rows"]), d["rows"][0][0])' <<<"$out" 2>&1)"
ctl pool-status
check_match "pool-status: pgpool-II's columns" '^node_id +\| hostname' "$out"
ctl version
check_match "version: pgchorus VERSION" '^pgchorus [0-9]' "$out"

# ---- clients, servers, pools, stats ----------------------------------------------------
PGAPPNAME=ctl74app chorus_psql -d postgres -c 'select pg_sleep(5)' >/dev/null 2>&1 &
sleeper=$!
bg_track $sleeper
sleeper_listed() {
	with_timeout 5 "$CTL" -s "$SOCK" clients 2>/dev/null | grep -q '| ctl74app *$'
}
check "clients: the psql session shows up with its application_name" wait_until 10 sleeper_listed
ctl clients
check_eq "clients: exit 0" 0 "$rc"
check_match "clients: header, no tag" '^worker +\| id +\| user +\| database' "$out"
check_fail "clients: the tag line is left out" grep -qx SHOW <<<"$out"
check_match "clients: the session (user, database, active)" '\| postgres +\| postgres +\| 127\.0\.0\.1:[0-9]+ +\| active .*\| ctl74app *$' "$out"
ctl --json clients
check_eq "--json clients: exit 0, the session's application_name and database" "0 postgres" \
	"$rc $($PY -c 'import json,sys; d=json.load(sys.stdin); c=d["columns"]; print(*[r[c.index("database")] for r in d["rows"] if r[c.index("application_name")] == "ctl74app"])' <<<"$out" 2>&1)"
ctl servers
check_match "servers: a connection linked to a client" '\| active +\| [0-9]+ +\| C-0x' "$out"
ctl pools
check_match "pools: the pool of node 0" '^postgres +\| postgres +\| 0 +\| [1-9]' "$out"
ctl pool-status
check_match "pool-status: the pools after the nodes" '^database +\| user +\| node +\| servers' "$out"
ctl --json pool-status
check_eq "--json pool-status: nodes and pools" "3 True" \
	"$($PY -c 'import json,sys; d=json.load(sys.stdin); print(len(d["nodes"]["rows"]), len(d["pools"]["rows"]) >= 3)' <<<"$out" 2>&1)"
wait $sleeper
ctl stats
check_match "stats: per database and node" '^database +\| node +\| transactions +\| queries' "$out"

# ---- detach, attach ----------------------------------------------------------------
ctl detach-node 2
check_eq "detach-node 2: exit 0" 0 "$rc"
check "node-info 2 shows detached" node2_is detached
ctl attach-node 2
check_eq "attach-node 2: exit 0" 0 "$rc"
check "node 2 is up again within 20 s" wait_until 20 node2_is up

# ---- errors --------------------------------------------------------------------------
ctl detach-node 9
check_eq "detach-node 9: exit 1" 1 "$rc"
check_match "detach-node 9: the message of pgchorus" '22023: node 9 does not exist' "$out"
ctl node-info 9
check_eq "node-info 9: exit 1" 1 "$rc"
ctl frobnicate
check_eq "unknown command: exit 2" 2 "$rc"
ctl detach-node
check_eq "detach-node without a node: exit 2" 2 "$rc"
ctl detach-node x
check_eq "detach-node x: exit 2" 2 "$rc"
ctl detach-node 1 --gracefull
check_eq "detach-node 1 --gracefull: exit 2" 2 "$rc"
ctl detach-node 9 --graceful
check_eq "detach-node 9 --graceful: exit 1 (pgchorus' error)" 1 "$rc"
check "detach-node --graceful sends DETACH NODE n GRACEFUL" grep -q 'control socket: DETACH NODE 9 GRACEFUL' "$CHORUS_LOG"
ctl stop --now
check_eq "stop --now: exit 2" 2 "$rc"
ctl stop --fast extra
check_eq "stop --fast extra: exit 2" 2 "$rc"
with_timeout 15 "$CTL" -s "$TEST_TMP/nope.ctl" node-info >"$TEST_TMP/ctl.out" 2>&1
check_eq "a wrong socket: exit 3" 3 "$?"
check_match "a wrong socket: a message" 'cannot connect' "$(cat "$TEST_TMP/ctl.out")"
with_timeout 15 "$CTL" -f "$CHORUS_CONF" node-count >"$TEST_TMP/ctl.out" 2>&1
check_eq "-f CONFIG: the socket of the configuration file" "3" "$(cat "$TEST_TMP/ctl.out")"

# ---- -h HOST -p PORT: the same commands through the SQL admin console (libpq) ------------
# cctl ARGS...: pgchorusctl on the admin console, as ctl
cctl() {
	with_timeout 15 "$CTL" -h 127.0.0.1 -p "$CHORUS_PORT" -U postgres "$@" >"$TEST_TMP/ctl.out" 2>&1
	rc=$?
	out=$(cat "$TEST_TMP/ctl.out")
}
ctl node-info
sock_out=$out
cctl node-info
check_eq "-h/-p node-info: exit 0" 0 "$rc"
check_eq "-h/-p node-info: the same table as through the socket" "$sock_out" "$out"
cctl node-count
check_eq "-h/-p node-count" "3" "$out"
cctl --json node-info 1
check_eq "-h/-p --json node-info 1: exit 0" 0 "$rc"
check_eq "-h/-p --json: node 1's host" "127.0.0.1" \
	"$($PY -c 'import json,sys; d=json.load(sys.stdin); print(d["rows"][0][d["columns"].index("host")])' <<<"$out" 2>&1)"
cctl detach-node 2
check_eq "-h/-p detach-node 2: exit 0" 0 "$rc"
check "-h/-p: node 2 detached" node2_is detached
cctl attach-node 2
check_eq "-h/-p attach-node 2: exit 0" 0 "$rc"
check "-h/-p: node 2 up again within 20 s" wait_until 20 node2_is up
cctl detach-node 9
check_eq "-h/-p detach-node 9: exit 1" 1 "$rc"
check_match "-h/-p detach-node 9: pgchorus' SQLSTATE and message" '22023: node 9 does not exist' "$out"
cctl clients
check_eq "-h/-p clients: exit 0" 0 "$rc"
check_match "-h/-p clients: the header" 'application_name' "$out"
with_timeout 15 "$CTL" -h 127.0.0.1 -p "$("$CLUSTER_SH" freeport 1)" node-info >"$TEST_TMP/ctl.out" 2>&1
check_eq "-h/-p: nothing listening: exit 3" 3 "$?"
with_timeout 15 "$CTL" -h 127.0.0.1 -p "$CHORUS_PORT" -U nobody74 node-info >"$TEST_TMP/ctl.out" 2>&1
check_eq "-h/-p: a user not in admin_users: exit 3" 3 "$?"
check_match "-h/-p: a user not in admin_users: a message" 'cannot connect' "$(cat "$TEST_TMP/ctl.out")"
with_timeout 15 "$CTL" -s "$SOCK" -h 127.0.0.1 node-info >"$TEST_TMP/ctl.out" 2>&1
check_eq "-s with -h: exit 2" 2 "$?"

# ---- the raw protocol: several commands per connection, JSON errors ---------------------
printf 'SHOW VERSION\n--json DETACH NODE 7\nSHOW NODEZ\n' | with_timeout 10 $PY -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read()); s.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
sys.stdout.write(data.decode())' "$SOCK" >"$TEST_TMP/raw.out" 2>&1
raw=$(cat "$TEST_TMP/raw.out")
check_eq "raw: three answers, each ending with an empty line" 3 "$(grep -c '^$' "$TEST_TMP/raw.out")"
check_match "raw: SHOW VERSION table and tag" '^version' "$raw"
check_match "raw: a JSON error" '^\{"error":\{"sqlstate":"22023","message":"node 7 does not exist' "$raw"
check_match "raw: a text error with its SQLSTATE" '^ERROR 42601: syntax error: unknown admin command' "$raw"

# ---- SHOW VERSION / SHOW CONFIG / PAUSE / RESUME through psql ---------------------------
out=$(chorus_psql -d pgchorus -qAt -F '|' -c 'SHOW VERSION' 2>&1)
check_match "psql SHOW VERSION" '^pgchorus [0-9]' "$out"
out=$(chorus_psql -d pgchorus -qAt -F '|' -c 'SHOW CONFIG' 2>&1)
check_match "psql SHOW CONFIG: mode" '^mode\|replication$' "$out"
check_match "psql SHOW CONFIG: control_socket" "^control_socket\|$SOCK\$" "$out"
check_match "psql SHOW CONFIG: health_check.period" '^health_check\.period\|' "$out"
out=$(chorus_psql -d pgchorus -c 'PAUSE' -c 'RESUME' 2>&1)
check_match "psql PAUSE / RESUME: tags" 'PAUSE.*RESUME' "$(tr '\n' ' ' <<<"$out")"
check_eq "writes go on after RESUME" 1 "$(chorus_sql 'create table t74 (id int primary key); insert into t74 values (1); select count(*) from t74' 2>&1 | tail -n 1)"

# ---- reload, stop ----------------------------------------------------------------------
ctl reload
check_eq "reload: exit 0" 0 "$rc"
check "the log says the configuration was reloaded" wait_until 10 grep -q 'configuration reloaded' "$CHORUS_LOG"
ctl recover-node 0
check_eq "recover-node 0 (up): exit 1" 1 "$rc"
check_match "recover-node 0: the reason" "cannot recover node 0" "$out"
# plain stop is graceful: an open transaction may finish (and commits)
with_timeout 30 "$PY" -c "
import psycopg, time
with psycopg.connect('$(chorus_dsn postgres)') as c:
    c.execute('insert into t74 values (2)')
    open('$TEST_TMP/txn-open', 'w').close()
    time.sleep(3)
    c.commit()
" >"$TEST_TMP/graceful.out" 2>&1 &
graceful=$!
bg_track $graceful
check "a client opened a transaction" wait_until 10 test -e "$TEST_TMP/txn-open"
ctl stop
check_eq "stop: exit 0" 0 "$rc"
sleep 1
check "stop: pgchorus still runs while the transaction is open" pid_alive "$CHORUS_PID"
wait $graceful
check_eq "stop: the open transaction committed" 0 "$?"
chorus_wait 20 "pgchorusctl stop"
check_fail "the socket file is removed at exit" test -e "$SOCK"
check_eq "stop: the row of the transaction is on node 0" 1 "$(node_sql 0 'select count(*) from t74 where id = 2')"

# stop --fast: a client in an open transaction does not hold pgchorus
chorus_start
rm -f "$TEST_TMP/txn-open"
with_timeout 60 "$PY" -c "
import psycopg, time
with psycopg.connect('$(chorus_dsn postgres)') as c:
    c.execute('insert into t74 values (3)')
    open('$TEST_TMP/txn-open', 'w').close()
    time.sleep(40)
    c.commit()
" >"$TEST_TMP/fast.out" 2>&1 &
fast=$!
bg_track $fast
check "a client opened a transaction" wait_until 10 test -e "$TEST_TMP/txn-open"
ctl stop --fast
check_eq "stop --fast: exit 0" 0 "$rc"
chorus_wait 5 "pgchorusctl stop --fast"
check "stop --fast: the log says fast shutdown" grep -q 'SIGINT: fast shutdown' "$CHORUS_LOG"
kill $fast 2>/dev/null
wait $fast 2>/dev/null
check_eq "stop --fast: the open transaction was rolled back" 0 "$(node_sql 0 'select count(*) from t74 where id = 3')"
