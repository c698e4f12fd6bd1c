# shellcheck shell=bash
# lib_repl.sh - helpers for the tests of replication mode (several nodes),
# sourced after lib.sh.

# per_node CMD...: "CMD ... K" for every node K, outputs joined by "|"
per_node() {
	local k out=""
	for ((k = 0; k < NODE_COUNT; k++)); do
		[ "$k" -gt 0 ] && out+="|"
		out+=$("$@" "$k" 2>&1)
	done
	printf '%s\n' "$out"
}

# q SQL K: node_sql with the node last, for per_node
q() {
	node_sql "$2" "$1"
}

# same3 VALUE: VALUE as per_node prints it when all three nodes agree
same3() {
	printf '%s|%s|%s\n' "$1" "$1" "$1"
}

# digest TABLE COLUMNS K: md5 of the table's rows (as text, ordered by all columns)
digest() {
	node_sql "$3" "select md5(coalesce(string_agg(r, E'\n' order by r), '')) from (select ($2)::text r from $1) s"
}

# check_identical DESC TABLE COLUMNS
check_identical() {
	local d
	d=$(per_node digest "$2" "$3")
	check_match "$1" '^([0-9a-f]{32})\|\1\|\1$' "$d" || diag "digests: $d"
}

# prepared_list K: the gids prepared on node K
prepared_list() {
	node_sql "$1" "select coalesce(string_agg(gid, ' ' order by gid), '') from pg_prepared_xacts"
}

# sums K: "accounts/history/branches/tellers" balances of node K (diagnostics)
sums() {
	node_sql "$1" "select concat_ws('/', (select sum(abalance) from pgbench_accounts), (select sum(delta) from pgbench_history),
		(select sum(bbalance) from pgbench_branches), (select sum(tbalance) from pgbench_tellers))"
}

# bank_ok K: t when pgbench's balances add up on node K
bank_ok() {
	node_sql "$1" "select (select sum(abalance) from pgbench_accounts) = (select coalesce(sum(delta), 0) from pgbench_history)
		and (select sum(bbalance) from pgbench_branches) = (select coalesce(sum(delta), 0) from pgbench_history)
		and (select sum(tbalance) from pgbench_tellers) = (select coalesce(sum(delta), 0) from pgbench_history)"
}
