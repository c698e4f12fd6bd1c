#!/usr/bin/env bash
# 50_cancel: query cancellation through pgchorus, from psycopg (conn.cancel())
# and from psql (SIGINT): the statement ends with SQLSTATE 57014 within ~3 s,
# only the right client is hit, and the connection stays usable.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 1
chorus_conf 'pool_mode = "transaction";' 'pool_size = 3;'
chorus_start

with_timeout 90 "$PY" "$(dirname "$0")/py/cancel_checks.py" "$(chorus_dsn postgres)" "$(node_dsn 0)" 2>"$TEST_TMP/py.err"
rc=$?
[ "$rc" -eq 0 ] || diag_file "$TEST_TMP/py.err"
check_eq "psycopg cancel checks finished with status 0" "0" "$rc"

# psql sends a cancel request on SIGINT (and, not being interactive, quits).
psql -X -h 127.0.0.1 -p "$CHORUS_PORT" -v VERBOSITY=verbose \
	-c 'select pg_sleep(30)' >"$TEST_TMP/psql.out" 2>&1 &
psql_pid=$!
bg_track "$psql_pid"
if wait_until 5 node_running_query 0 'select pg_sleep(30)'; then
	ok "psql's pg_sleep(30) runs on the node"
else
	not_ok "psql's pg_sleep(30) runs on the node"
fi
start=$(date +%s%N)
kill -INT "$psql_pid"
for ((i = 0; i < 100; i++)); do
	pid_alive "$psql_pid" || break
	sleep 0.1
done
end=$(date +%s%N)
if pid_alive "$psql_pid"; then
	not_ok "psql ends within 10 s of SIGINT"
	kill "$psql_pid"
fi
wait "$psql_pid"
ms=$(((end - start) / 1000000))
out=$(cat "$TEST_TMP/psql.out")
check_match "psql: statement canceled with SQLSTATE 57014" '57014: canceling statement due to user request' "$out"
check "psql: cancel took effect within 3 s (${ms} ms)" test "$ms" -lt 3000

check_eq "pgchorus serves after the cancels" "1" "$(chorus_sql 'select 1')"
chorus_stop TERM
