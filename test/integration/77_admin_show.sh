#!/usr/bin/env bash
# 77_admin_show: SHOW POOLS, SHOW CLIENTS, SHOW SERVERS and SHOW STATS on
# the admin console (doc/admin.md), answered from every worker.
# Replication mode, three nodes, two workers: sessions sleeping in the
# background are listed by SHOW CLIENTS with their user and database; after
# writes SHOW SERVERS lists server connections on all three nodes and SHOW
# POOLS has a row per node; SHOW STATS counts grow with inserts; several
# deferred commands in one query answer in order; the extended protocol
# (psycopg) gets them too; the control socket refuses them with 0A000.
# Then a pool-mode instance answers SHOW POOLS.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

admin() {
	chorus_psql -d pgchorus -v VERBOSITY=verbose "$@"
}

admin_rows() {
	admin -qAt -F '|' -c "$1"
}

# stat_total COLUMN: the totals row's COLUMN (2 statements ... 7 errors) of SHOW STATS
stat_total() {
	admin_rows 'SHOW STATS' | awk -F '|' -v c="$1" '$1 == "" { print $c }'
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

# ---- SHOW STATS --------------------------------------------------------------------
out=$(admin_rows 'SHOW STATS' 2>&1)
check_eq "SHOW STATS: one row per node and a totals row" 4 "$(grep -c . <<<"$out")"
check_match "SHOW STATS: node 2 got statements" '^2\|[1-9][0-9]*\|\|' "$out"
units1=$(stat_total 4)
check "SHOW STATS: units grew with the inserts ($units0 -> $units1)" test "$units1" -ge $((units0 + 5))
check "SHOW STATS: 2PC commits counted" test "$(stat_total 5)" -ge 5
check_match "SHOW STATS: average and p99 unit time" '^\|[0-9]+\|[0-9]+\|[0-9]+\|[0-9]+\|[0-9]+\|[0-9]+\|[0-9.e-]+\|[0-9.e-]*$' \
	"$(grep '^|' <<<"$out")"

# ---- SHOW CLIENTS ------------------------------------------------------------------
sleepers=()
for i in 1 2 3 4 5 6 7 8; do
	chorus_psql -d postgres -c 'select pg_sleep(4)' >/dev/null 2>&1 &
	sleepers+=($!)
	bg_track $!
done
wait_until 10 clients_sleeping
out=$(admin_rows 'SHOW CLIENTS' 2>&1)
check "SHOW CLIENTS: the 8 sleeping sessions, whichever worker has them (user and database postgres)" \
	test "$(grep -c '^[01]|C-0x[0-9a-f]*|postgres|postgres|127\.0\.0\.1' <<<"$out")" -ge 8
check_match "SHOW CLIENTS: the console itself (database pgchorus, idle)" '\|postgres\|pgchorus\|[^|]*\|idle\|' "$out"
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
check_match "control socket: SHOW CLIENTS is console-only (0A000)" '0A000' "$out"
out=$(ctl_line 'SHOW STATS' 2>&1)
check_match "control socket: SHOW STATS answers" 'units' "$out"
wait "${sleepers[@]}"
chorus_stop

# ---- pool mode ------------------------------------------------------------------------------
chorus_conf 'mode = "pool";' 'workers = 2;' "state_file = \"$TEST_TMP/pool.state\";" 'admin_users = "postgres";'
chorus_start
check "pool mode: a query" chorus_sql 'select 1'
out=$(admin_rows 'SHOW POOLS' 2>&1)
check_match "pool mode: SHOW POOLS has the pool of node 0" '^postgres\|postgres\|0\|[1-9][0-9]*\|' "$out"
out=$(admin_rows 'SHOW STATS' 2>&1)
check_match "pool mode: SHOW STATS counts transactions" '^\|[0-9]+\|[1-9][0-9]*\|' "$out"
chorus_stop
