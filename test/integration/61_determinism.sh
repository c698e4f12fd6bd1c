#!/usr/bin/env bash
# 61_determinism: the divergence suite of "Determinism: the nodes never
# diverge, whatever SQL the application sends".  mode = "replication" in front
# of three nodes, on_mismatch = "abort" (a node is never detached, so each
# class is judged on its own; a disagreement pgchorus detects fails the
# client's transaction instead).  For every class below, concurrent pgbench
# clients (custom scripts in test/integration/data/determinism/, simple
# protocol, classes 1-4 also -M extended and -M prepared) run through pgchorus
# in a database of the class's own (detN, created through pgchorus); then:
#   - pgbench ran transactions and none failed (no client error, no abort);
#   - every user table of the database has the same rows on every node, and
#     every sequence the same last_value (check_all_tables_identical);
#   - no prepared transaction is left on any node.
# Classes:
#   1. values fixed per transaction/statement: now(), CURRENT_TIMESTAMP,
#      CURRENT_DATE, CURRENT_TIME, LOCALTIME, LOCALTIMESTAMP,
#      transaction_timestamp(), statement_timestamp(), 'now'/'today' casts, in
#      VALUES, SET, WHERE, subqueries and DEFAULT now() columns, in blocks and
#      in autocommit; semantics kept: now() is one value per transaction,
#      statement_timestamp() one per statement;
#   2. per call / per row values: random(), gen_random_uuid(),
#      uuid_generate_v4(), clock_timestamp(), timeofday(), a VOLATILE SQL
#      function; an UPDATE over 100 rows gives 100 distinct random() values;
#      an UPDATE of a table without a primary key answers (success or a clear
#      error, no hang) and leaves the nodes identical;
#   3. volatile column DEFAULTs filled by INSERT and by COPY FROM STDIN;
#   4. sequences: serial, bigserial, identity columns, nextval, currval, setval;
#   5. snapshot-dependent writes: INSERT ... SELECT of a row being updated
#      (the issue's example), UPDATE ... FROM, CTEs, UPDATE/DELETE predicates
#      over rows other clients change;
#   6. order-dependent writes: INSERT ... SELECT into a serial table, DELETE
#      and UPDATE with LIMIT and no ORDER BY, a SKIP LOCKED job queue;
#   7. large objects: their OIDs and contents are the same on every node.
# Part 8: what runs as text or is refused (temporary tables without 2PC, a
# role without SELECT, a view with a rule in every protocol), a SELECT of a
# writing plpgsql function reaches every node, two COPYs in one Query, psql's
# \d (catalog reads on the primary).
# Every workload runs cleanly against one plain PostgreSQL node:
# DETERMINISM_DIRECT=1 runs the whole test against a single node without
# pgchorus (to tell a fault of the test from one of pgchorus).
# Environment: PGBENCH_T (seconds per pgbench run, default 3), PGBENCH_TIMEOUT
# (a run is killed after this, default PGBENCH_T + 9), MODES_LATE (protocols
# for classes 5-7, default "simple"; e.g. "simple extended prepared").
# shellcheck disable=SC2016  # $1 and the like are SQL, not shell
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_repl.sh
. "$(dirname "$0")/lib_repl.sh"

START=$SECONDS
T=${PGBENCH_T:-3} # seconds per pgbench run
export PGBENCH_TIMEOUT=${PGBENCH_TIMEOUT:-$((T + 9))} # a run that hangs costs this much
DATA=$TOP/test/integration/data/determinism
MODES=(simple extended prepared) # classes 1-4
read -r -a MODES_LATE <<<"${MODES_LATE:-simple}" # classes 5-7
REPL=('mode = "replication";' 'pool_mode = "session";' 'pool_size = 20;' 'instance_name = "t61";'
	'resolver_period = 1;' 'resolver_grace = 2;' 'on_mismatch = "abort";' 'load_balance = "statement";')

# ---- helpers -----------------------------------------------------------------

# dbsql DB SQL: one command through pgchorus on database DB
dbsql() {
	chorus_sql "$2" "$1"
}

# check_same_on_nodes DESC VALUES: VALUES (per_node output) is one value on every node
check_same_on_nodes() {
	local desc=$1 vals=$2 first v
	IFS='|' read -r -a v <<<"$vals"
	first=${v[0]}
	if [ "${#v[@]}" -eq "$NODE_COUNT" ] && [ -n "$first" ] && [ "$(printf '%s\n' "${v[@]}" | sort -u | wc -l)" = 1 ]; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "per node: $vals"
		return 1
	fi
}

# tdigest DB TABLE K: md5 of the table's rows on node K
tdigest() {
	qdb "$1" "select md5(coalesce(string_agg(r, E'\n' order by r), '')) from (select x::text r from only $2 x) s" "$3"
}

# setup_class N: database detN and the class's tables, through pgchorus
setup_class() {
	local n=$1
	[ -n "${CLASS_T0:-}" ] && diag "class $((n - 1)) took $((SECONDS - CLASS_T0)) s"
	CLASS_T0=$SECONDS
	if ! dbsql postgres "create database det$n" >"$TEST_TMP/setup$n.out" 2>&1 ||
		! chorus_psql -q -d "det$n" -f "$DATA/c${n}_setup.sql" >>"$TEST_TMP/setup$n.out" 2>&1; then
		not_ok "class $n: database det$n and its tables created through pgchorus"
		diag_file "$TEST_TMP/setup$n.out" 10
		return 1
	fi
	ok "class $n: database det$n and its tables created through pgchorus"
	check_eq "class $n: the tables exist on every node" \
		"$(same_n "$(qdb "det$n" "select count(*) from pg_tables where schemaname = 'public'" 0)")" \
		"$(per_node qdb "det$n" "select count(*) from pg_tables where schemaname = 'public'")"
}

# reset_class N: empty the class's tables and put its starting rows back (through pgchorus)
reset_class() {
	local n=$1
	[ -f "$DATA/c${n}_reset.sql" ] || return 0
	if ! chorus_psql -q -d "det$n" -f "$DATA/c${n}_reset.sql" >"$TEST_TMP/reset$n.out" 2>&1; then
		not_ok "class $n: reset of its tables through pgchorus"
		diag_file "$TEST_TMP/reset$n.out" 10
	fi
}

# verify N LABEL: the class's database is identical on every node, nothing is left prepared
verify() {
	check_all_tables_identical "$2: tables and sequences identical on $WHERE" "det$1"
	check_nodes_no_prepared "$2: no prepared transaction left on any node"
}

# copy_loop DB SECS OUT KIND: COPY FROM STDIN through pgchorus, again and
# again for SECS seconds; KIND "script" runs c3_copy.sql (COPY in a psql
# script), "meta" \copy with generated keys into vd2
copy_loop() {
	local db=$1 end=$((SECONDS + $2)) out=$3 kind=$4 i=0 j
	while [ "$SECONDS" -lt "$end" ]; do
		i=$((i + 1))
		if [ "$kind" = script ]; then
			CLIENT_TIMEOUT=15 chorus_psql -q -d "$db" -f "$DATA/c3_copy.sql" >>"$out" 2>&1
		else
			for ((j = 1; j <= 40; j++)); do
				printf '%d\tcopied %d\n' $((900000000 + i * 1000 + j)) "$j"
			done | CLIENT_TIMEOUT=15 chorus_psql -q -d "$db" -c '\copy vd2 (id, payload) from pstdin' >>"$out" 2>&1
		fi || {
			echo "COPY $i FAILED" >>"$out"
			return 1
		}
	done
	echo "copies: $i" >>"$out"
}

# ---- nodes and pgchorus ----------------------------------------------------------

if [ "${DETERMINISM_DIRECT:-0}" = 1 ]; then
	cluster_up 1
	CHORUS_PORT=$NODE0_PORT # every "through pgchorus" goes to the plain node
	export CHORUS_PORT
	WHERE="the 1 plain node"
	diag "DETERMINISM_DIRECT=1: no pgchorus, one plain PostgreSQL node (port $NODE0_PORT)"
else
	cluster_up 3
	for ((k = 0; k < NODE_COUNT; k++)); do
		mpx=$(node_sql "$k" "show max_prepared_transactions") || bail "node $k answers"
		[ "${mpx:-0}" -gt 0 ] || bail "node $k has max_prepared_transactions > 0"
	done
	chorus_conf "${REPL[@]}"
	chorus_start
	WHERE="$NODE_COUNT nodes"
fi

# =============================================================================
# Class 1: values fixed per transaction or statement
# =============================================================================
if setup_class 1; then
	for mode in "${MODES[@]}"; do
		L="class 1 time (-M $mode)"
		reset_class 1
		run_pgbench_db det1 "$L: 4 clients, BEGIN...COMMIT and autocommit" -M "$mode" -c 4 -j 2 -T "$T" \
			-f "$DATA/c1_txn.sql@1" -f "$DATA/c1_auto.sql@1"
		verify 1 "$L"
		# semantics kept: within one INSERT, now() = CURRENT_TIMESTAMP =
		# transaction_timestamp() = the column DEFAULT now(), and
		# statement_timestamp() is not earlier
		check_eq "$L: in every row now(), CURRENT_TIMESTAMP and transaction_timestamp() are one value, statement_timestamp() not earlier, on every node" \
			"$(same_n 0)" "$(per_node qdb det1 "select count(*) from tm where c_now is distinct from c_ts
				or c_ts is distinct from c_txts or c_stmts < c_now")"
		check_eq "$L: in every row the DEFAULT now() columns equal the now() the same INSERT stored, on every node" \
			"$(same_n 0)" "$(per_node qdb det1 "select count(*) from tm where dflt is distinct from c_now
				or dflt_tx is distinct from c_now")"
	done
	dbsql det1 'truncate t1same' >/dev/null
	check "class 1: one transaction through pgchorus: INSERT now(), statement_timestamp(); pg_sleep; INSERT again" \
		chorus_psql -qAt -d det1 -c begin -c "insert into t1same values (1, now(), statement_timestamp())" \
		-c "select pg_sleep(0.05)" -c "insert into t1same values (2, now(), statement_timestamp())" -c commit
	check_eq "class 1: the two INSERTs of now() stored the same value, on every node" \
		"$(same_n 2:1)" "$(per_node qdb det1 "select count(*) || ':' || count(distinct ts) from t1same")"
	check_eq "class 1: statement_timestamp() of the two statements differ, on every node" \
		"$(same_n 2:2)" "$(per_node qdb det1 "select count(*) || ':' || count(distinct st) from t1same")"
	check_same_on_nodes "class 1: the two rows are identical on $WHERE" "$(per_node tdigest det1 t1same)"
fi

# =============================================================================
# Class 2: values computed per call / per row
# =============================================================================
if setup_class 2; then
	for mode in "${MODES[@]}"; do
		L="class 2 random (-M $mode)"
		reset_class 2
		run_pgbench_db det2 "$L: 4 clients, random()/uuid/clock_timestamp()/timeofday()/vf() in INSERT and UPDATE" \
			-M "$mode" -c 4 -j 2 -T "$T" -f "$DATA/c2_rand.sql"
		verify 2 "$L"
	done
	check "class 2: UPDATE r2 SET r = random() over its 100 rows through pgchorus" dbsql det2 'update r2 set r = random()'
	check_eq "class 2: ... one value per row: count(distinct r) = 100 on every node" \
		"$(same_n 100)" "$(per_node qdb det2 'select count(distinct r) from r2')"
	check_same_on_nodes "class 2: ... r2 is identical on $WHERE" "$(per_node tdigest det2 r2)"
	# A table without a primary key: its rows cannot be told apart, so pgchorus
	# may have to refuse a non-deterministic UPDATE of it.  For now: the
	# answer is a success or a clear error (not a hang), and the nodes end
	# identical either way.
	out=$(CLIENT_TIMEOUT=20 chorus_psql -qAt -d det2 -c 'update nopk set r = random() where k < 5' 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "class 2 (no primary key): UPDATE nopk SET r = random() answers: success"
	elif [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && grep -q 'ERROR' <<<"$out"; then
		ok "class 2 (no primary key): UPDATE nopk SET r = random() answers: a clear error"
		diag "$out"
	else
		not_ok "class 2 (no primary key): UPDATE nopk SET r = random() answers (success or an ERROR) within 20 s (exit $rc)"
		diag "$out"
	fi
	check_same_on_nodes "class 2 (no primary key): nopk is identical on $WHERE" "$(per_node tdigest det2 nopk)"
	check_all_tables_identical "class 2: at the end, tables and sequences identical on $WHERE" det2
fi

# =============================================================================
# Class 3: volatile column defaults (INSERT and COPY)
# =============================================================================
if setup_class 3; then
	for mode in "${MODES[@]}"; do
		L="class 3 defaults (-M $mode)"
		reset_class 3
		: >"$TEST_TMP/copy-script.out"
		: >"$TEST_TMP/copy-meta.out"
		copy_loop det3 "$T" "$TEST_TMP/copy-script.out" script &
		p1=$!
		bg_track "$p1"
		copy_loop det3 "$T" "$TEST_TMP/copy-meta.out" meta &
		p2=$!
		bg_track "$p2"
		run_pgbench_db det3 "$L: 4 clients, INSERT of the payload only" -M "$mode" -c 4 -j 2 -T "$T" -D n=0 \
			-f "$DATA/c3_ins.sql"
		wait "$p1"
		rc1=$?
		wait "$p2"
		rc2=$?
		n1=$(sed -n 's/^copies: //p' "$TEST_TMP/copy-script.out")
		n2=$(sed -n 's/^copies: //p' "$TEST_TMP/copy-meta.out")
		if [ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] && [ "${n1:-0}" -gt 0 ] && [ "${n2:-0}" -gt 0 ]; then
			ok "$L: COPY FROM STDIN concurrently with the inserts (psql script $n1 times, \\copy $n2 times), all succeeded"
		else
			not_ok "$L: COPY FROM STDIN concurrently with the inserts, all succeeded (exit $rc1/$rc2)"
			diag_file "$TEST_TMP/copy-script.out" 8
			diag_file "$TEST_TMP/copy-meta.out" 8
		fi
		verify 3 "$L"
	done
fi

# =============================================================================
# Class 4: sequences
# =============================================================================
if setup_class 4; then
	for mode in "${MODES[@]}"; do
		L="class 4 sequences (-M $mode)"
		reset_class 4
		run_pgbench_db det4 "$L: 8 clients, serial/identity INSERTs, nextval, currval, setval" \
			-M "$mode" -c 8 -j 2 -T "$T" -f "$DATA/c4_seq.sql"
		verify 4 "$L"
		check_same_on_nodes "$L: every sequence's last_value is the same on $WHERE" \
			"$(per_node qdb det4 "select string_agg(sequencename || '=' || coalesce(last_value::text, 'null'), ' ' order by sequencename)
				from pg_sequences where schemaname = 'public'")"
		check_eq "$L: currval() after an INSERT names the row that INSERT made, on every node" "$(same_n 0)" \
			"$(per_node qdb det4 "select count(*) from s_ref r left join s_big b on b.id = r.big_id
				where b.id is null or b.c <> r.c or b.note <> 'in a block'")"
	done
fi

# =============================================================================
# Class 5: snapshot-dependent writes
# =============================================================================
if setup_class 5; then
	for mode in "${MODES_LATE[@]}"; do
		L="class 5 snapshot (-M $mode)"
		reset_class 5
		run_pgbench_db det5 "$L: 6 clients, UPDATE t SET v = v + 1 WHERE id = 1 / INSERT INTO log SELECT v FROM t WHERE id = 1 / CTEs" \
			-M "$mode" -c 6 -j 2 -T "$T" -D n=0 \
			-f "$DATA/c5_upd.sql@2" -f "$DATA/c5_log.sql@2" -f "$DATA/c5_cte.sql@1"
		verify 5 "$L, the issue's example"
		# what cannot be shipped nor run as text safely is refused, clearly
		out=$(chorus_psql -d det5 -qAt -c "with u as (update t set v = v + 10 where id = 3 returning v)
			insert into log3 select u.v + (select v from t where id = 1), 0, -1 from u" 2>&1)
		check_match "$L: a data-modifying WITH reading other rows is refused with 0A000" \
			'data-modifying WITH cannot be replicated' "$out"
		run_pgbench_db det5 "$L: 6 clients, UPDATE ... FROM a changing table / UPDATE, DELETE over items being inserted" \
			-M "$mode" -c 6 -j 2 -T "$T" -D n=0 \
			-f "$DATA/c5_rate.sql@1" -f "$DATA/c5_acc.sql@2" -f "$DATA/c5_new.sql@3" -f "$DATA/c5_done.sql@1"
		verify 5 "$L, UPDATE FROM and predicates"
	done
fi

# =============================================================================
# Class 6: order-dependent writes
# =============================================================================
if setup_class 6; then
	for mode in "${MODES_LATE[@]}"; do
		L="class 6 order (-M $mode)"
		reset_class 6
		run_pgbench_db det6 "$L: 6 clients, INSERT ... SELECT into a serial table, DELETE/UPDATE ... LIMIT" \
			-M "$mode" -c 6 -j 2 -T "$T" -D n=0 \
			-f "$DATA/c6_src.sql@4" -f "$DATA/c6_dst.sql@1" -f "$DATA/c6_q.sql@2" -f "$DATA/c6_lim.sql@2"
		verify 6 "$L, INSERT SELECT and LIMIT"
		start_pgbench_db jobs det6 -M "$mode" -c 1 -T "$T" -D n=0 -f "$DATA/c6_jobs.sql"
		run_pgbench_db det6 "$L: job queue, 4 workers UPDATE ... (SELECT ... FOR UPDATE SKIP LOCKED)" \
			-M "$mode" -c 4 -j 2 -T "$T" -f "$DATA/c6_take.sql"
		finish_pgbench jobs "$L: job queue, 1 client inserting jobs meanwhile"
		verify 6 "$L, job queue"
	done
fi

# =============================================================================
# Class 7: large objects
# =============================================================================
if setup_class 7; then
	off=0
	for mode in "${MODES_LATE[@]}"; do
		L="class 7 large objects (-M $mode)"
		# no reset: the keys of docs go on from the previous run's
		off=$((off + 1000000))
		run_pgbench_db det7 "$L: 4 clients, lo_from_bytea(0, ...) and lo_create(0)" \
			-M "$mode" -c 4 -j 2 -T "$T" -D n="$off" -f "$DATA/c7_lo.sql"
		verify 7 "$L"
		los=$(per_node qdb det7 "select count(*) || ' objects, ' || md5(coalesce(string_agg(oid::text || ':' || encode(lo_get(oid), 'hex'), ','
			order by oid), '')) from pg_largeobject_metadata")
		check_same_on_nodes "$L: the large objects (OIDs and contents) are the same on $WHERE" "$los"
		check_eq "$L: every OID stored in docs is a large object, on every node" "$(same_n 0)" \
			"$(per_node qdb det7 "select count(*) from docs where lo not in (select oid from pg_largeobject_metadata)")"
		out=$(chorus_psql -d det7 -qAt -c "insert into docs values (-$off, lo_from_bytea(0, 'x'))" 2>&1)
		check_match "$L: a large object made inside an INSERT is refused with a clear error" \
			'large object created inside INSERT' "$out"
	done
fi

# =============================================================================
# Part 8: what runs as text, what is refused, and the routing around them
# =============================================================================
if setup_class 8; then
	L="part 8"
	# temporary tables: no two-phase commit (PREPARE refuses them), autocommit and in a block
	out=$(chorus_psql -d det8 -qAt -c "create temp table tmp (id int, v text)" -c "insert into tmp values (1, 'a')" \
		-c "begin" -c "insert into tmp values (2, 'b')" -c "update tmp set v = 'c'" -c "commit" \
		-c "drop table tmp" -c "select 'done'" 2>&1)
	check_eq "$L: writes to a temporary table, autocommit and in a block, and its DROP" "done" "$out"
	# a role without SELECT: a plain INSERT runs as text, one with a serial default is refused
	out=$(chorus_psql -U det_writer -d det8 -qAt -c "insert into ins_plain values (1, 'x')" -c "select 'done'" 2>&1)
	check_eq "$L: a plain INSERT by a role without SELECT runs (as text)" "done" "$out"
	out=$(chorus_psql -U det_writer -d det8 -qAt -c "insert into ins_only (v) values ('x')" 2>&1)
	check_match "$L: an INSERT with a serial default by a role without SELECT is refused with a clear error" \
		'the user needs SELECT on the table' "$out"
	# a view with a DO INSTEAD rule: RETURNING is not allowed there, the INSERT runs as text
	off=0
	for mode in simple extended prepared; do
		off=$((off + 10000))
		run_pgbench_db det8 "$L: INSERT into a view with a rule (-M $mode)" -M "$mode" -c 2 -t 20 \
			-D off="$off" -D n=0 -f "$DATA/c8_view.sql"
	done
	# a SELECT calling a user's VOLATILE function that writes runs on every node
	out=$(chorus_psql -d det8 -qAt -c "select add_audit(1)" -c "begin" -c "select add_audit(2)" -c "commit" 2>&1)
	check_eq "$L: SELECT add_audit() (a writing plpgsql function) answers" $'1\n2' "$out"
	check_eq "$L: ... and its rows are on every node" "$(same_n 1,2)" \
		"$(per_node qdb det8 "select string_agg(id::text, ',' order by id) from audit")"
	# two COPY FROM STDIN in one Query
	out=$(printf 'copy twice from stdin\\; copy twice from stdin\\; select 1;\n1\n\\.\n2\n\\.\n' |
		chorus_psql -d det8 -qAt 2>&1)
	check_eq "$L: two COPY FROM STDIN in one Query" "1" "$out"
	# psql's \d reads an OID, then asks about it: the catalogs are read on the primary
	for i in 1 2 3 4 5 6; do
		chorus_psql -d det8 -c '\d base' 2>&1
	done >"$TEST_TMP/describe.out"
	check_eq "$L: psql \\d names the columns every time (catalog reads on one node)" 6 \
		"$(grep -c '^ v ' "$TEST_TMP/describe.out")"
	verify 8 "$L"
fi

diag "part 8 took $((SECONDS - CLASS_T0)) s"
if [ -n "$CHORUS_PID" ]; then
	chorus_stop TERM
fi
diag "test time: $((SECONDS - START)) s"
