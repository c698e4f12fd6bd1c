#!/usr/bin/env bash
# 77_admin_show: SHOW POOLS, SHOW CLIENTS, SHOW SERVERS, SHOW STATS and
# SHOW TOTALS on the admin console (doc/admin.md), answered from every worker.
# Replication mode, three nodes, two workers: sessions sleeping in the
# background are listed by SHOW CLIENTS with their user, database and
# application_name; after writes SHOW SERVERS lists server connections on all
# three nodes and SHOW POOLS has a row per node; SHOW TOTALS counts grow with
# inserts; several deferred commands in one query answer in order; the
# extended protocol (psycopg) gets them too; the control socket answers them
# as well (text and JSON), also with several on a line, and a connection
# that closes before the answer leaves pgchorus unharmed.  Then a pool-mode
# instance answers SHOW POOLS, and SHOW STATS has a row for database
# postgres on node 0 with the transactions and queries of a pgbench run.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

admin() {
	chorus_psql -d pgchorus -v VERBOSITY=verbose "$@"
}

admin_rows() {
	admin -qAt -F '|' -c "$1"
}

# stat_total COLUMN: the totals row's COLUMN (2 statements ... 7 errors) of SHOW TOTALS
stat_total() {
	admin_rows 'SHOW TOTALS' | awk -F '|' -v c="$1" '$1 == "" { print $c }'
}

# ctl_line LINE: LINE on the control socket, its answer (up to the empty line)
ctl_line() {
	with_timeout 10 "$PY" -c "
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b'\\n')
out = b''
while not out.endswith(b'\\n\\n'):
    b = s.recv(65536)
    if not b:
        break
    out += b
print(out.decode())
" "$TEST_TMP/pgchorus.ctl" "$1"
}

# clients_sleeping: 3 clients of database postgres are listed
clients_sleeping() {
	[ "$(admin_rows 'SHOW CLIENTS' | grep -c '|postgres|postgres|')" -ge 8 ]
}

cluster_up 3
chorus_conf 'mode = "replication";' 'pool_mode = "session";' 'instance_name = "t77";' 'workers = 2;' \
	'resolver_period = 1;' "state_file = \"$TEST_TMP/repl.state\";" 'admin_users = "postgres";'
chorus_start

check "create table t77" chorus_sql 'create table t77 (id int primary key, v text)'
units0=$(stat_total 4)
for i in 1 2 3 4 5; do
	chorus_sql "insert into t77 values ($i, 'x')" >/dev/null || not_ok "insert $i"
done
check_eq "the inserts reached node 2" 5 "$(node_sql 2 'select count(*) from t77')"

# ---- SHOW TOTALS -------------------------------------------------------------------
out=$(admin_rows 'SHOW TOTALS' 2>&1)
check_eq "SHOW TOTALS: one row per node and a totals row" 4 "$(grep -c . <<<"$out")"
check_match "SHOW TOTALS: node 2 got statements" '^2\|[1-9][0-9]*\|\|' "$out"
units1=$(stat_total 4)
check "SHOW TOTALS: units grew with the inserts ($units0 -> $units1)" test "$units1" -ge $((units0 + 5))
check "SHOW TOTALS: 2PC commits counted" test "$(stat_total 5)" -ge 5
check_match "SHOW TOTALS: average and p99 unit time" '^\|[0-9]+\|[0-9]+\|[0-9]+\|[0-9]+\|[0-9]+\|[0-9]+\|[0-9.e-]+\|[0-9.e-]*$' \
	"$(grep '^|' <<<"$out")"

# ---- SHOW CLIENTS ------------------------------------------------------------------
sleepers=()
for i in 1 2 3 4 5 6 7 8; do
	PGAPPNAME=sleeper77 chorus_psql -d postgres -c 'select pg_sleep(6)' >/dev/null 2>&1 &
	sleepers+=($!)
	bg_track $!
done
wait_until 10 clients_sleeping
out=$(admin_rows 'SHOW CLIENTS' 2>&1)
check "SHOW CLIENTS: the 8 sleeping sessions, whichever worker has them (user and database postgres)" \
	test "$(grep -c '^[01]|C-0x[0-9a-f]*|postgres|postgres|127\.0\.0\.1' <<<"$out")" -ge 8
check_match "SHOW CLIENTS: the console itself (database pgchorus, idle)" '\|postgres\|pgchorus\|[^|]*\|idle\|' "$out"
check "SHOW CLIENTS: application_name of the sleeping sessions" \
	test "$(grep -c '|postgres|postgres|.*|sleeper77$' <<<"$out")" -ge 8
check_match "SHOW CLIENTS: a session in a step (active, reading)" '\|active\|[^|]*\|[^|]*\|I\|read\|S-0x' "$out"
# The kernel spreads connections over the workers (SO_REUSEPORT): with 9
# clients both workers almost always have some; all of them were counted above.
diag "SHOW CLIENTS: clients on $(cut -d'|' -f1 <<<"$out" | sort -u | wc -l) of 2 workers"
out=$(admin -c 'show clients' 2>&1)
check_match "SHOW CLIENTS: psql shows the column names" \
	'worker \| +id +\| +user +\| database +\| +address +\| +state +\| +connected_at +\| +idle_s +\| txn \| step +\| +server' "$out"

# ---- SHOW SERVERS, SHOW POOLS ----------------------------------------------------------
out=$(admin_rows 'SHOW SERVERS' 2>&1)
for k in 0 1 2; do
	check_match "SHOW SERVERS: a connection to node $k" "^[01]\|S-0x[0-9a-f]+\|$k\|postgres\|postgres\|[a-z]+\|[0-9]+\|" "$out"
done
check_match "SHOW SERVERS: a server linked to a sleeping client" '\|active\|[0-9]+\|C-0x[0-9a-f]+\|' "$out"
out=$(admin_rows 'SHOW POOLS' 2>&1)
check_eq "SHOW POOLS: a row per node (one database and user)" 3 "$(grep -c '^postgres|postgres|' <<<"$out")"
check_match "SHOW POOLS: node 0's pool has servers" '^postgres\|postgres\|0\|[1-9][0-9]*\|[0-9]+\|[0-9]+\|0\|0\|0$' "$out"

# ---- several in one query, extended protocol, control socket -------------------------
out=$(admin -qAt -c 'SHOW POOLS; SHOW VERSION; SHOW SERVERS' 2>&1)
check_match "several deferred commands in one query answer in order" '^postgres\|.*pgchorus.*' "$(tr '\n' ' ' <<<"$out")"
out=$(admin -c 'SHOW POOLS; SHOW NODE 7; SHOW VERSION' 2>&1)
check_match "an error after a deferred command ends the query" 'ERROR: +42601' "$out"
check "extended protocol (psycopg prepare=True, binary)" with_timeout 30 "$PY" -c "
import psycopg
with psycopg.connect('$(chorus_dsn pgchorus)', autocommit=True) as c:
    for _ in range(3):
        rows = c.execute('SHOW POOLS', prepare=True).fetchall()
        assert len(rows) == 3 and rows[0][2] == 0, rows
    cur = c.cursor(binary=True)
    rows = cur.execute('SHOW CLIENTS').fetchall()
    assert any(r[3] == 'pgchorus' for r in rows), rows
    assert c.execute('SHOW VERSION').fetchone()
"
out=$(ctl_line 'SHOW CLIENTS' 2>&1)
check "control socket: SHOW CLIENTS lists the sleeping sessions" \
	test "$(grep -Ec '^[01] +\| C-0x[0-9a-f]+ +\| postgres +\| postgres .*\| sleeper77 *$' <<<"$out")" -ge 8
check "control socket: SHOW CLIENTS ends with its tag" grep -qx SHOW <<<"$out"
out=$(ctl_line '--json SHOW POOLS; SHOW VERSION; SHOW SERVERS' 2>&1)
check_eq "control socket: --json, three commands (two deferred) answer in order" "3 0 pgchorus S-0x" \
	"$("$PY" -c '
import json, sys
dec, text, objs = json.JSONDecoder(), sys.stdin.read().strip(), []
while text:
    o, end = dec.raw_decode(text)
    objs.append(o)
    text = text[end:].strip()
print(len(objs), objs[0]["rows"][0][objs[0]["columns"].index("node")], objs[1]["rows"][0][0].split()[0],
      objs[2]["rows"][0][1][:4])' <<<"$out" 2>&1)"
out=$(ctl_line 'SHOW POOLS; SHOW NODE 7; SHOW VERSION' 2>&1)
check_match "control socket: an error after a deferred command ends the line" 'ERROR 42601' "$out"
check_fail "control socket: ... and the command after it does not run" grep -q '^pgchorus [0-9]' <<<"$out"
# a connection that closes before its answer: pgchorus drops the answer
for _ in 1 2 3 4 5; do
	"$PY" -c "
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'SHOW CLIENTS; SHOW SERVERS\nSHOW POOLS\n')
s.close()" "$TEST_TMP/pgchorus.ctl"
done
out=$(ctl_line 'SHOW TOTALS' 2>&1)
check_match "control socket: still answers after connections left early (SHOW TOTALS)" 'units' "$out"
wait "${sleepers[@]}"
chorus_stop

# ---- pool mode ------------------------------------------------------------------------------
chorus_conf 'mode = "pool";' 'pool_mode = "transaction";' 'workers = 2;' "state_file = \"$TEST_TMP/pool.state\";" 'admin_users = "postgres";'
chorus_start
check "pool mode: a query" chorus_sql 'select 1'
out=$(admin_rows 'SHOW POOLS' 2>&1)
check_match "pool mode: SHOW POOLS has the pool of node 0" '^postgres\|postgres\|0\|[1-9][0-9]*\|' "$out"
out=$(admin_rows 'SHOW TOTALS' 2>&1)
check_match "pool mode: SHOW TOTALS counts transactions" '^\|[0-9]+\|[1-9][0-9]*\|' "$out"
pgbench -i -s 1 -q -h 127.0.0.1 -p "$NODE0_PORT" postgres >"$TEST_TMP/pgbench-init.log" 2>&1 ||
	diag_file "$TEST_TMP/pgbench-init.log"
run_pgbench "pool mode: pgbench -S" -c 4 -j 2 -t 50 -S
out=$(admin_rows 'SHOW STATS' 2>&1)
diag "SHOW STATS: $(tr '\n' ' ' <<<"$out")"
row=$(grep '^postgres|0|' <<<"$out")
check "SHOW STATS: database postgres on node 0 counts the 200 pgbench transactions" \
	test "$(cut -d'|' -f3 <<<"$row")" -ge 200
check "SHOW STATS: ... and at least as many queries" test "$(cut -d'|' -f4 <<<"$row")" -ge 200
check_match "SHOW STATS: ... bytes both ways, average and p99 time" '^postgres\|0\|[0-9]+\|[0-9]+\|[1-9][0-9]*\|[1-9][0-9]*\|[0-9.e-]+\|[0-9.e-]+$' "$row"
chorus_stop
