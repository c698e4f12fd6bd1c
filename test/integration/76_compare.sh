#!/usr/bin/env bash
# 76_compare: COMPARE / REPAIR TABLE (doc/admin.md) through pgchorusctl
# compare / repair (doc/pgchorusctl.md).  Replication mode with three
# nodes: two tables written through pgchorus compare identical (exit 0); a
# row changed behind pgchorus' back on node 2 makes compare exit 1 naming
# the table and the key; repair from node 0 makes the nodes identical again,
# with no prepared transaction left; SHOW COMPARE on the admin console.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

CTL=$TOP/pgchorusctl
SOCK=$TEST_TMP/pgchorus.ctl

# ctl ARGS...: pgchorusctl on the test's socket; output in $out, status in $rc
ctl() {
	with_timeout 30 "$CTL" -s "$SOCK" "$@" >"$TEST_TMP/ctl.out" 2>&1
	rc=$?
	out=$(cat "$TEST_TMP/ctl.out")
}

cluster_up 3
chorus_conf 'mode = "replication";' 'pool_mode = "session";' 'instance_name = "t76";' \
	'resolver_period = 1;' "state_file = \"$TEST_TMP/repl.state\";" 'admin_users = "postgres";' \
	"control_socket = \"$SOCK\";"
chorus_start

chorus_sql "create table items (id int primary key, name text, qty int)" >/dev/null ||
	bail "create items"
chorus_sql "create table notes (a int, b int, body text, primary key (a, b))" >/dev/null ||
	bail "create notes"
chorus_sql "insert into items select g, 'item ' || g, g * 10 from generate_series(1, 200) g" >/dev/null ||
	bail "insert items"
chorus_sql "insert into notes select g % 7, g, 'note ' || g from generate_series(1, 50) g" >/dev/null ||
	bail "insert notes"

ctl compare
check_eq "compare of identical nodes: exit 0" 0 "$rc"
diag "$out"
check_match "compare: 2 tables, 0 divergent" '^2 tables compared, 0 divergent' "$out"

node_sql 2 "update items set qty = -1 where id = 42" >/dev/null || bail "update on node 2"
node_sql 1 "delete from notes where a = 3 and b = 10" >/dev/null || bail "delete on node 1"
ctl compare
check_eq "compare after a change on node 2: exit 1" 1 "$rc"
diag "$out"
check_match "compare names items and key 42" 'divergent: public\.items node 2: 200 rows, differing keys: 42$' "$out"
check_match "compare names notes and key (3,10)" 'divergent: public\.notes node 1: 49 rows, differing keys: \(3,10\)$' "$out"
check_match "1 row per node of a divergent table" '^2 tables compared, 2 divergent' "$out"

ctl compare items
check_eq "compare items alone: exit 1" "1" "$rc"
check_match "compare items alone: 1 table" '^1 tables compared, 1 divergent' "$out"
rows=$(chorus_psql -d pgchorus -qAt -F '|' -c "show compare" 2>&1)
check_match "SHOW COMPARE: the divergent row of node 2" '^public\.items\|2\|200\|[0-9a-f]{32}\|t\|42$' "$rows"
ctl compare no_such_table
check_eq "compare of a missing table fails: exit 1" 1 "$rc"
check_match "the reason" 'no_such_table.*does not exist' "$out"


ctl repair items --from 0
check_eq "repair items --from 0: exit 0" 0 "$rc"
diag "$out"
check_match "repair: rows copied to 2 nodes" 'public\.items from node 0: 200 rows to 2 nodes' "$out"
ctl repair notes --from 0
check_eq "repair notes --from 0: exit 0" 0 "$rc"
ctl repair notes --from 9
check_eq "repair from a missing node: exit 1" 1 "$rc"

ctl compare
check_eq "compare after the repairs: exit 0" 0 "$rc"
diag "$out"
for k in 0 1 2; do
	check_eq "node $k: items as on node 0" "$(node_sql 0 "select md5(string_agg(t::text, ',' order by id)) from items t")" \
		"$(node_sql $k "select md5(string_agg(t::text, ',' order by id)) from items t")"
	check_eq "node $k: no prepared transaction left" 0 "$(node_sql $k "select count(*) from pg_prepared_xacts")"
done
chorus_sql "insert into items values (1000, 'x', 1)" >/dev/null
check_eq "writes go on after the jobs: exit 0" 0 "$?"
check_eq "the insert reached node 2" 1 "$(node_sql 2 "select count(*) from items where id = 1000")"

chorus_stop
