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

# ---- determinism helpers (test/integration/61_determinism.sh) -----------------

# same_n VALUE: VALUE as per_node prints it when all NODE_COUNT nodes agree
same_n() {
	local k out=""
	for ((k = 0; k < NODE_COUNT; k++)); do
		[ "$k" -gt 0 ] && out+="|"
		out+=$1
	done
	printf '%s\n' "$out"
}

# qdb DB SQL K: node_sql on database DB (at most 60 s), node last, for per_node
qdb() {
	with_timeout 60 psql -X -h 127.0.0.1 -p "$(node_port "$3")" -v ON_ERROR_STOP=1 -qAt -d "$1" -c "$2"
}

# _db_digests K DB: one line "kind name|digest" per user table (md5 of its
# rows as text, sorted) and per sequence (last_value) of database DB on node K
_db_digests() {
	with_timeout 120 psql -X -h 127.0.0.1 -p "$(node_port "$1")" -v ON_ERROR_STOP=1 -qAt -d "$2" <<'SQL'
select format('select %L, md5(coalesce(string_agg(r, E''\n'' order by r), '''')) from (select pgc_dr::text r from only %s pgc_dr) s',
	'table ' || format('%I.%I', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname))
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema', 'pgchorus', 'pg_toast')
	and n.nspname not like 'pg\_temp\_%' and n.nspname not like 'pg\_toast\_temp\_%'
order by 1
\gexec
select format('select %L, last_value::text || case when is_called then '''' else '' (not called)'' end from %s',
	'sequence ' || format('%I.%I', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname))
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'S' and n.nspname not in ('pg_catalog', 'information_schema', 'pgchorus', 'pg_toast')
	and n.nspname not like 'pg\_temp\_%'
order by 1
\gexec
SQL
}

# check_all_tables_identical DESC [DB]: every user table (all schemas but
# pg_catalog, information_schema, pgchorus, pg_toast) has the same rows, and
# every sequence the same last_value, on every node; the divergent ones are
# listed by diag (with their row counts or values per node)
# (sequences of the other nodes may take up to a resolver_period to follow
# the primary: the comparison is repeated for up to 8 s before it fails)
check_all_tables_identical() {
	local desc=$1 db=${2:-postgres} k name bad=() vals v first n try
	for ((try = 0; try < 8; try++)); do
		[ "$try" -gt 0 ] && sleep 1
		_all_tables_compare "$db" || return 1
		[ "${#bad[@]}" -eq 0 ] && break
	done
	if [ "${#bad[@]}" -eq 0 ]; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "database $db: ${#bad[@]} divergent:" "${bad[@]}"
		return 1
	fi
}

# _all_tables_compare DB: fills bad (of the caller) with the divergent tables
# and sequences; false when the digests could not be computed (reported)
_all_tables_compare() {
	local db=$1 k name vals v first n
	bad=()
	for ((k = 0; k < NODE_COUNT; k++)); do
		if ! _db_digests "$k" "$db" >"$TEST_TMP/digests.$k" 2>&1; then
			not_ok "digests of database $db on node $k"
			diag "node $k: the digests of database $db could not be computed:"
			diag_file "$TEST_TMP/digests.$k" 10
			return 1
		fi
	done
	while IFS= read -r name; do
		vals="" first="" n=0
		for ((k = 0; k < NODE_COUNT; k++)); do
			v=$(awk -F'|' -v nm="$name" '$1 == nm { print $2; f = 1 } END { if (!f) print "missing" }' "$TEST_TMP/digests.$k")
			[ "$k" = 0 ] && first=$v
			[ "$v" = "$first" ] || n=1
			vals+="${vals:+|}$v"
		done
		[ "$n" = 0 ] && continue
		case $name in
		table\ *)
			vals=$(per_node qdb "$db" "select count(*) from only ${name#table }" 2>&1 | tr -s '\n' ' ')
			vals=${vals% }
			bad+=("$name (rows per node: $vals)")
			;;
		*) bad+=("$name (last_value per node: $vals)") ;;
		esac
	done < <(cut -d'|' -f1 "$TEST_TMP"/digests.* | sort -u)
}

# _no_prepared_anywhere: pg_prepared_xacts is empty on every node
_no_prepared_anywhere() {
	local k n
	for ((k = 0; k < NODE_COUNT; k++)); do
		n=$(qdb postgres "select count(*) from pg_prepared_xacts" "$k") || return 1
		[ "$n" = 0 ] || return 1
	done
}

# check_nodes_no_prepared DESC: within 10 s pg_prepared_xacts is empty on every node
check_nodes_no_prepared() {
	check "$1" wait_until 10 _no_prepared_anywhere || diag "prepared: $(per_node prepared_list)"
}

# _pgbench_verdict DESC OUT RC: the check of a pgbench run (as run_pgbench in lib.sh)
_pgbench_verdict() {
	local desc=$1 out=$2 rc=$3 processed failed
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	if [ "$rc" -eq 0 ] && [ "${processed:-0}" -gt 0 ] && [ "$failed" = 0 ]; then
		ok "$desc: $processed transactions, 0 failed"
	else
		case $rc in 124 | 137 | 143) desc+=" (timed out: killed after ${PGBENCH_TIMEOUT:-40} s)" ;; esac
		not_ok "$desc (exit $rc, processed '${processed:-}', failed '${failed:-}')"
		# the errors (counted, client numbers folded), then pgbench's last lines
		grep -iE 'error|fatal|abort|terminated|timeout' "$out" | sed -E 's/client [0-9]+ script [0-9]+/client N script N/' |
			sort | uniq -c | sort -rn | head -n 12 | sed 's/^/#   /'
		grep -E '^number of (transactions|failed)' "$out" | sed 's/^/#   /'
		return 1
	fi
}

# run_pgbench_db DB DESC PGBENCH-ARGS...: run_pgbench (lib.sh) on database DB,
# PGBENCH_TIMEOUT (default 40) seconds at most
run_pgbench_db() {
	local db=$1 desc=$2 out=$TEST_TMP/pgbench.out
	shift 2
	with_timeout "${PGBENCH_TIMEOUT:-40}" pgbench -n -h 127.0.0.1 -p "$CHORUS_PORT" "$@" "$db" >"$out" 2>&1
	_pgbench_verdict "$desc" "$out" $?
}

# start_pgbench_db NAME DB PGBENCH-ARGS...: the same in the background;
# finish_pgbench NAME DESC waits for it and makes the check
start_pgbench_db() {
	local name=$1 db=$2
	shift 2
	(
		with_timeout "${PGBENCH_TIMEOUT:-40}" pgbench -n -h 127.0.0.1 -p "$CHORUS_PORT" "$@" "$db" \
			>"$TEST_TMP/pgbench-$name.out" 2>&1
		echo $? >"$TEST_TMP/pgbench-$name.rc"
	) &
	bg_track $!
	printf -v "PGBENCH_PID_$name" '%s' "$!"
}

finish_pgbench() {
	local name=$1 desc=$2 pidvar="PGBENCH_PID_$1"
	wait "${!pidvar}"
	_pgbench_verdict "$desc" "$TEST_TMP/pgbench-$name.out" "$(cat "$TEST_TMP/pgbench-$name.rc" 2>/dev/null || echo 255)"
}

# node_dir K: the data directory of node K
node_dir() {
	local dirvar=NODE${1}_DIR
	printf '%s\n' "${!dirvar:-$CLUSTER_DIR/node$1}"
}

# nodes_with_data_dir: the groups of a "nodes = (...)" setting, each node
# with its data_dir (recovery and hooks need it)
nodes_with_data_dir() {
	local k out=""
	for ((k = 0; k < NODE_COUNT; k++)); do
		[ -n "$out" ] && out+=","
		out+=$'\n'"  { host = \"127.0.0.1\"; port = $(node_port "$k"); data_dir = \"$(node_dir "$k")\"; }"
	done
	printf '%s\n' "$out"
}
