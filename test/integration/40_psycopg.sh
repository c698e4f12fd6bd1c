#!/usr/bin/env bash
# 40_psycopg: a psycopg 3 application (parameters with client- and server-side
# binding, executemany, transactions, prepared statements, notices, COPY)
# gets the same results through pgchorus as directly; prepared statements and
# SET of reported parameters work in transaction pooling with more clients
# than server connections.  The checks live in py/psycopg_checks.py.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 1
node_sql 0 'create database direct_db' >/dev/null || bail "create database direct_db"
node_sql 0 'create database proxy_db' >/dev/null || bail "create database proxy_db"
chorus_conf 'pool_mode = "transaction";' 'pool_size = 3;'
chorus_start

with_timeout 150 "$PY" "$(dirname "$0")/py/psycopg_checks.py" "$(node_dsn 0 direct_db)" "$(chorus_dsn proxy_db)" \
	2>"$TEST_TMP/py.err"
rc=$?
if [ "$rc" -ne 0 ]; then
	diag_file "$TEST_TMP/py.err"
fi
check_eq "psycopg checks finished with status 0" "0" "$rc"

chorus_stop TERM
