#!/usr/bin/env bash
# 10_smoke: a query through pgchorus works; a node's error reaches the client
# unchanged and pgchorus keeps serving; with two nodes, queries go to node 0.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 2
chorus_conf
chorus_start

check_eq "select 1 through pgchorus" "1" "$(chorus_sql 'select 1' 2>&1)"
check_eq "server_version is the node's" "$(node_sql 0 'show server_version')" \
	"$(chorus_sql 'show server_version' 2>&1)"

out=$(chorus_psql -qAt -d nope -c 'select 1' 2>&1)
rc=$?
check_eq "connecting to a missing database fails" "2" "$rc"
check_match "the node's error reaches the client" 'database "nope" does not exist' "$out"
check_eq "pgchorus still serves after the failed login" "2" "$(chorus_sql 'select 1+1' 2>&1)"

out=$(chorus_psql -qAt -c 'select 1/0' 2>&1)
check_match "a statement error reaches the client with its message" 'division by zero' "$out"
check_eq "the same client session goes on after an error" "ok" \
	"$(chorus_psql -qAt -v ON_ERROR_STOP=0 -c 'select 1/0' -c "select 'ok'" 2>/dev/null)"

# Over the unix socket too, when configured.
if [ -S "$CHORUS_SOCKDIR/.s.PGSQL.$CHORUS_PORT" ]; then
	check_eq "select over pgchorus' unix socket" "3" \
		"$(with_timeout "$CLIENT_TIMEOUT" psql -X -h "$CHORUS_SOCKDIR" -p "$CHORUS_PORT" -qAt -c 'select 3' 2>&1)"
else
	not_ok "pgchorus listens on its unix socket $CHORUS_SOCKDIR/.s.PGSQL.$CHORUS_PORT"
fi

# Until replication arrives, everything goes to the first node.
chorus_sql 'create table smoke_t(id int primary key, v text)' >/dev/null 2>&1
chorus_sql "insert into smoke_t values (1, 'one')" >/dev/null 2>&1
check_eq "a table created through pgchorus exists on node 0" "one" \
	"$(node_sql 0 'select v from smoke_t where id = 1' 2>&1)"
check_eq "... and not on node 1" "" "$(node_sql 1 "select to_regclass('smoke_t')" 2>&1)"

# Many short connections in a row.
fails=0
for i in $(seq 1 50); do
	[ "$(chorus_sql "select $i" 2>/dev/null)" = "$i" ] || fails=$((fails + 1))
done
check_eq "50 connect/query/disconnect cycles" "0" "$fails"

chorus_stop TERM
