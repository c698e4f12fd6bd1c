#!/usr/bin/env bash
# 58_replication: mode = "replication" in front of three nodes, checked the way
# a user would: DDL and writes (autocommit, BEGIN/COMMIT, multi-statement
# queries, COPY, psycopg executemany, pgbench in the simple, extended and
# prepared protocols) reach every node and leave them identical; ROLLBACK and
# failed transactions leave nothing anywhere; no prepared transaction is left
# behind; every committed write transaction has its decision row; reads are
# spread by load_balance (statement, session) or all on node 0 (off) and a
# transaction reads its own writes; a client's own PREPARE TRANSACTION works;
# a write whose outcome differs on one node detaches that node
# (on_mismatch = detach_minority) or fails for the client and is undone
# everywhere (on_mismatch = abort).
# shellcheck disable=SC2016  # $1 and the like are SQL, not shell
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_repl.sh
. "$(dirname "$0")/lib_repl.sh"

START=$SECONDS
PGBENCH_T=${PGBENCH_T:-5}
REPL=('mode = "replication";' 'pool_mode = "session";' 'pool_size = 20;'
	'instance_name = "t58";' 'resolver_period = 1;' 'resolver_grace = 2;')

# ---- helpers -----------------------------------------------------------------

# rows TABLE K: the table's rows as "id:v,..." ordered
rows() {
	node_sql "$2" "select coalesce(string_agg(id || ':' || v, ',' order by id), '') from $1"
}

no_prepared() {
	local k n
	for ((k = 0; k < NODE_COUNT; k++)); do
		n=$(node_sql "$k" "select count(*) from pg_prepared_xacts") || return 1
		[ "$n" = 0 ] || return 1
	done
}

# check_no_prepared DESC: within 10 s pg_prepared_xacts is empty on every node
check_no_prepared() {
	check "$1" wait_until 10 no_prepared || diag "prepared: $(per_node prepared_list)"
}

# ports_of_reads N: one session running "select inet_server_port()" N times
ports_of_reads() {
	local i
	for ((i = 0; i < $1; i++)); do
		echo 'select inet_server_port();'
	done | chorus_psql -qAt
}

is_node_port() {
	local p
	for p in $PORTS; do
		[ "$1" = "$p" ] && return 0
	done
	return 1
}

cluster_up 3
for ((k = 0; k < NODE_COUNT; k++)); do
	mpx=$(node_sql "$k" "show max_prepared_transactions") || bail "node $k answers"
	[ "${mpx:-0}" -gt 0 ] || bail "node $k has max_prepared_transactions > 0"
done

# =============================================================================
# Part A: load_balance = statement, on_mismatch = detach_minority
# =============================================================================
chorus_conf "${REPL[@]}" 'load_balance = "statement";' 'on_mismatch = "detach_minority";'
chorus_start

# ---- DDL ---------------------------------------------------------------------
check "CREATE TABLE through pgchorus" chorus_sql 'create table t (id int primary key, v text not null)'
check_eq "the table exists on every node" "$(same3 t)" "$(per_node q "select coalesce(to_regclass('t')::text, 'none')")"
check_eq "the decision table exists on every node" "$(same3 pgchorus.decisions)" \
	"$(per_node q "select coalesce(to_regclass('pgchorus.decisions')::text, 'none')")"

# ---- autocommit writes ---------------------------------------------------------
out=$(chorus_psql -At -c "insert into t values (1, 'a'), (2, 'b'), (3, 'c')" 2>&1)
check_eq "autocommit INSERT: the client gets the command tag" "INSERT 0 3" "$out"
check_eq "autocommit INSERT is on every node" "$(same3 '1:a,2:b,3:c')" "$(per_node rows t)"
out=$(chorus_psql -At -c "update t set v = v || '2' where id <= 2" 2>&1)
check_eq "autocommit UPDATE: the client gets the row count" "UPDATE 2" "$out"
check_eq "autocommit UPDATE is on every node" "$(same3 '1:a2,2:b2,3:c')" "$(per_node rows t)"
out=$(chorus_psql -At -c "delete from t where id = 3" 2>&1)
check_eq "autocommit DELETE: the client gets the row count" "DELETE 1" "$out"
check_eq "autocommit DELETE is on every node" "$(same3 '1:a2,2:b2')" "$(per_node rows t)"
check "several writes in one simple query" chorus_sql "insert into t values (4, 'd'); update t set v = 'd2' where id = 4; insert into t values (5, 'e')"
check_eq "the multi-statement query is on every node" "$(same3 '1:a2,2:b2,4:d2,5:e')" "$(per_node rows t)"

# ---- BEGIN / COMMIT, ROLLBACK, errors -------------------------------------------
check "BEGIN; INSERT; UPDATE; DELETE; COMMIT through pgchorus" \
	chorus_psql -qAt -c begin -c "insert into t values (6, 'f'), (7, 'g')" -c "update t set v = 'f2' where id = 6" \
	-c "delete from t where id = 5" -c commit
check_eq "the committed transaction is on every node" "$(same3 '1:a2,2:b2,4:d2,6:f2,7:g')" "$(per_node rows t)"
before=$(same3 '1:a2,2:b2,4:d2,6:f2,7:g')

check "BEGIN; writes; ROLLBACK through pgchorus" \
	chorus_psql -qAt -c begin -c "insert into t values (8, 'h')" -c "update t set v = 'x' where id = 1" \
	-c "delete from t where id = 2" -c rollback
check_eq "ROLLBACK leaves nothing on any node" "$before" "$(per_node rows t)"
check_eq "... and no node is left in a transaction (writes waiting for the others were dropped)" "$(same3 0)" \
	"$(per_node q "select count(*) from pg_stat_activity where state like 'idle in transaction%'")"

out=$(chorus_psql -At -v ON_ERROR_STOP=0 -c begin -c "insert into t values (9, 'i')" -c "update t set v = 'y' where id = 1" \
	-c 'select 1/0' -c commit 2>&1)
check_match "an error after writes in a transaction reaches the client" 'division by zero' "$out"
check_match "... and its COMMIT answers ROLLBACK" '^ROLLBACK$' "$(tail -n 1 <<<"$out")"
check_eq "... and leaves nothing on any node" "$before" "$(per_node rows t)"

out=$(chorus_psql -At -v ON_ERROR_STOP=0 -c "insert into t values (10, 'j'), (1, 'dup')" 2>&1)
check_match "a write failing on every node (duplicate key) reports the error" 'duplicate key value violates unique constraint' "$out"
check_eq "... and leaves nothing on any node" "$before" "$(per_node rows t)"
check "a write after the failed one" chorus_sql "insert into t values (11, 'k')"
check_eq "... reaches every node (no node was detached)" "$(same3 '1:a2,2:b2,4:d2,6:f2,7:g,11:k')" "$(per_node rows t)"

check_no_prepared "no prepared transaction is left on any node"
dec=$(per_node q "select count(*) from pgchorus.decisions where gid like 'pgc\_t58\_%'")
check_match "committed write transactions left decision rows pgc_t58_..., as many on every node" '^([1-9][0-9]*)\|\1\|\1$' "$dec"

# ---- reads ---------------------------------------------------------------------
ports=$(ports_of_reads 30 | sort -u | tr '\n' ' ')
diag "load_balance = statement: 30 reads answered from ports: $ports (nodes: $PORTS)"
bad=0
for p in $ports; do is_node_port "$p" || bad=1; done
check_eq "load_balance = statement: every read answered from a node" "0" "$bad"
n=$(wc -w <<<"$ports")
if [ "$n" -gt 1 ]; then
	ok "load_balance = statement: 30 reads of one session are spread over $n nodes"
else
	not_ok "load_balance = statement: 30 reads of one session are spread over more than one node (ports: '$ports')"
fi

chorus_sql 'create table ryw (i int)' >/dev/null || bail "create table ryw"
script=""
for ((i = 1; i <= 10; i++)); do
	script+="begin; insert into ryw values ($i); select count(*) from ryw; commit;"$'\n'
done
out=$(chorus_psql -qAt <<<"$script" 2>&1)
check_eq "read-your-writes: BEGIN; INSERT; SELECT count(*) sees the insert (10 times)" "$(seq 1 10)" "$out"
check_eq "read-your-writes: the 10 rows are on every node" "$(same3 10)" "$(per_node q 'select count(*) from ryw')"
# Not part of the specification (COMMIT is answered after the primary's COMMIT
# PREPARED): how often an autocommit read right after an autocommit write sees it.
script=""
for ((i = 11; i <= 40; i++)); do
	script+="insert into ryw values ($i); select count(*) from ryw where i = $i;"$'\n'
done
seen=$(chorus_psql -qAt <<<"$script" 2>/dev/null | grep -c '^1$')
diag "autocommit INSERT then autocommit SELECT (load_balance = statement): $seen of 30 reads saw the insert"

# ---- pgbench ---------------------------------------------------------------------
if with_timeout 60 pgbench -i -s 1 -q -h 127.0.0.1 -p "$CHORUS_PORT" postgres >"$TEST_TMP/pgbench-init.log" 2>&1; then
	ok "pgbench -i -s 1 through pgchorus"
else
	not_ok "pgbench -i -s 1 through pgchorus"
	diag_file "$TEST_TMP/pgbench-init.log"
fi
check_eq "pgbench_accounts has 100000 rows on every node" "$(same3 100000)" "$(per_node q 'select count(*) from pgbench_accounts')"
check_eq "pgbench_accounts has its primary key on every node" "$(same3 1)" \
	"$(per_node q "select count(*) from pg_indexes where indexname = 'pgbench_accounts_pkey'")"
for mode in simple extended prepared; do
	run_pgbench "pgbench simple-update -M $mode, 8 clients" -M "$mode" -b simple-update -c 8 -j 2 -T "$PGBENCH_T"
	run_pgbench "pgbench select-only -M $mode, 8 clients" -M "$mode" -b select-only -c 8 -j 2 -T "$PGBENCH_T"
done
# simple-update moves no teller or branch balance: start the bank afresh
# (a replicated TRUNCATE and a 100000-row UPDATE) before tpcb-like.
check "reset of the balances through pgchorus" \
	chorus_sql 'truncate pgbench_history; update pgbench_accounts set abalance = 0 where abalance <> 0'
check_eq "... on every node" "$(same3 0:0)" \
	"$(per_node q "select (select count(*) from pgbench_history) || ':' || (select count(*) from pgbench_accounts where abalance <> 0)")"
for mode in simple extended prepared; do
	run_pgbench "pgbench tpcb-like -M $mode, 8 clients" -M "$mode" -c 8 -j 2 -T "$PGBENCH_T"
done
check_no_prepared "after pgbench no prepared transaction is left on any node"
check_identical "pgbench_accounts is identical on every node" pgbench_accounts 'aid, bid, abalance, filler'
check_identical "pgbench_branches is identical on every node" pgbench_branches 'bid, bbalance, filler'
check_identical "pgbench_tellers is identical on every node" pgbench_tellers 'tid, bid, tbalance, filler'
# mtime is CURRENT_TIMESTAMP: pgchorus gives every node the same value
check_identical "pgbench_history is identical on every node (mtime included)" pgbench_history 'tid, bid, aid, delta, mtime'
hist=$(per_node q 'select count(*) from pgbench_history')
check_match "pgbench_history has rows, as many on every node" '^([1-9][0-9]*)\|\1\|\1$' "$hist"
check_eq "bank invariant sum(abalance) = sum(delta) = sum(bbalance) = sum(tbalance) on every node" \
	"$(same3 t)" "$(per_node bank_ok)" || diag "sums: $(per_node sums)"

# ---- COPY ------------------------------------------------------------------------
data=$TEST_TMP/copy.tsv
for ((i = 1; i <= 3000; i++)); do
	printf '%d\tline %d\t%d\n' "$i" "$i" $((i * 7 % 1000))
done >"$data"
chorus_sql 'create table cp (id int primary key, note text, n int)' >/dev/null || bail "create table cp"
check "\\copy FROM STDIN through pgchorus" chorus_psql -c "\\copy cp from '$data'"
check_eq "the copied rows are on every node" "$(same3 3000)" "$(per_node q 'select count(*) from cp')"
check_identical "the copied table is identical on every node" cp 'id, note, n'
chorus_psql -qAt -c 'copy (select * from cp order by id) to stdout' >"$TEST_TMP/copy-out.tsv" 2>&1
check "COPY TO STDOUT through pgchorus returns the rows" cmp "$data" "$TEST_TMP/copy-out.tsv"

# ---- psycopg (extended protocol) ---------------------------------------------------
chorus_sql 'create table pm (id int primary key, v text)' >/dev/null || bail "create table pm"
out=$(with_timeout 60 "$PY" - "$(chorus_dsn postgres)" 2>&1 <<'PYEOF'
import sys
import psycopg

dsn = sys.argv[1]
with psycopg.connect(dsn) as conn:  # a transaction
    with conn.cursor() as cur:
        cur.executemany("insert into pm (id, v) values (%s, %s)", [(i, f"v{i}") for i in range(1, 501)])
    conn.commit()
with psycopg.connect(dsn, autocommit=True) as conn:
    with conn.cursor() as cur:
        cur.executemany("insert into pm (id, v) values (%s, %s)", [(i, f"v{i}") for i in range(501, 601)])
        for i in range(601, 611):
            cur.execute("insert into pm (id, v) values (%s, %s)", (i, f"p{i}"), prepare=True)
        cur.execute("update pm set v = v || %s where id %% 2 = 0", ("x",))
        cur.execute("select count(*) from pm where v like %s", ("%x",))
        print(cur.fetchone()[0])
PYEOF
)
check_eq "psycopg: executemany, prepared inserts and an update through pgchorus" "305" "$out"
check_eq "psycopg: the rows are on every node" "$(same3 610)" "$(per_node q 'select count(*) from pm')"
check_identical "psycopg: the table is identical on every node" pm 'id, v'

# ---- transaction time: now() and friends give every node the same value -------------
chorus_sql 'create table tt (id int primary key, ts timestamptz, d date, lt timestamp, src text)' >/dev/null ||
	bail "create table tt"
check "now(), CURRENT_DATE, LOCALTIMESTAMP in an autocommit INSERT (simple protocol)" \
	chorus_sql "insert into tt values (1, now(), current_date, localtimestamp, 'simple')"
out=$(chorus_psql -qAt -c begin -c "insert into tt values (2, current_timestamp, current_date, localtimestamp(3), 'block')" \
	-c "select ts = now() from tt where id = 2" -c commit 2>&1)
check_eq "in a transaction, the stored CURRENT_TIMESTAMP equals the transaction's now()" "t" "$out"
out=$(with_timeout 60 "$PY" - "$(chorus_dsn postgres)" 2>&1 <<'PYEOF'
import sys
import psycopg

with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    for i in range(3, 8):
        conn.execute("insert into tt values (%s, now(), current_date, localtimestamp, %s)", (i, "extended"),
                     prepare=(i % 2 == 0))
print("ok")
PYEOF
)
check_eq "now() with parameters, extended protocol, prepared and not (psycopg)" "ok" "$out"
check_eq "the time rows are on every node" "$(same3 7)" "$(per_node q 'select count(*) from tt')"
check_identical "the stored times are identical on every node" tt 'id, ts, d, lt, src'

# ---- the client's own two-phase commit -----------------------------------------------
chorus_sql 'create table tp (i int)' >/dev/null || bail "create table tp"
check "a client's BEGIN; INSERT; PREPARE TRANSACTION 'foo'" \
	chorus_psql -qAt -c begin -c 'insert into tp values (1)' -c "prepare transaction 'foo'"
check_eq "... the prepared row is visible on no node" "$(same3 0)" "$(per_node q 'select count(*) from tp')"
check_eq "... pg_prepared_xacts shows 'foo' through pgchorus" "foo" "$(chorus_sql "select gid from pg_prepared_xacts where gid = 'foo'")"
check "COMMIT PREPARED 'foo' in another session" chorus_sql "commit prepared 'foo'"
check_eq "... the row is on every node" "$(same3 1)" "$(per_node q 'select count(*) from tp where i = 1')"
check "a client's PREPARE TRANSACTION 'bar'" \
	chorus_psql -qAt -c begin -c 'insert into tp values (2)' -c "prepare transaction 'bar'"
check "ROLLBACK PREPARED 'bar'" chorus_sql "rollback prepared 'bar'"
check_eq "... the row is on no node" "$(same3 0)" "$(per_node q 'select count(*) from tp where i = 2')"
check_no_prepared "nothing is left prepared on any node"
dec=$(per_node q "select count(*) from pgchorus.decisions where gid like 'pgc\_t58\_%'")
if ! check_match "decision rows: as many on every node" '^([1-9][0-9]*)\|\1\|\1$' "$dec"; then
	for ((k = 0; k < NODE_COUNT; k++)); do
		node_sql "$k" "select gid from pgchorus.decisions order by gid" >"$TEST_TMP/dec$k"
		diag "node $k activity: $(node_sql "$k" "select string_agg(state || ':' || left(query, 50), ' | ') from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()")"
	done
	diag "only on node 0, not node 1: $(comm -23 "$TEST_TMP/dec0" "$TEST_TMP/dec1" | head -5 | tr '\n' ' ')"
	diag "only on node 1, not node 0: $(comm -13 "$TEST_TMP/dec0" "$TEST_TMP/dec1" | head -5 | tr '\n' ' ')"
fi

chorus_stop TERM

# =============================================================================
# Part B: load_balance = off, on_mismatch = abort
# =============================================================================
chorus_conf "${REPL[@]}" 'load_balance = "off";' 'on_mismatch = "abort";'
chorus_start

ports=$(ports_of_reads 20 | sort -u | tr '\n' ' ')
check_eq "load_balance = off: 20 reads all answered from node 0" "$NODE0_PORT " "$ports"

chorus_sql 'create table ab (id int, v text)' >/dev/null || bail "create table ab"
chorus_sql "insert into ab values (1, 'a')" >/dev/null || bail "insert into ab"
node_sql 2 'create unique index ab_id on ab (id)' >/dev/null || bail "unique index on node 2 only"
out=$(chorus_psql -At -v ON_ERROR_STOP=0 -c "insert into ab values (1, 'dup')" 2>&1)
check_match "on_mismatch = abort: a write that fails on node 2 only gives the client an error" 'ERROR' "$out"
check_eq "... and the row is on no node" "$(same3 1:a)" "$(per_node rows ab)"
out=$(chorus_psql -At -v ON_ERROR_STOP=0 -c begin -c "insert into ab values (2, 'b')" -c "insert into ab values (1, 'dup')" \
	-c commit 2>&1)
check_match "on_mismatch = abort, in a transaction: the client gets an error" 'ERROR' "$out"
# the error may come with the statement or with the COMMIT; the COMMIT must not succeed
if grep -q '^COMMIT$' <<<"$out"; then
	not_ok "... its COMMIT does not succeed"
	diag "$out"
else
	ok "... its COMMIT does not succeed"
fi
check_eq "... and nothing of the transaction is on any node" "$(same3 1:a)" "$(per_node rows ab)"
check "on_mismatch = abort: a later write" chorus_sql "insert into ab values (3, 'c')"
check_eq "... reaches every node (node 2 is still used)" "$(same3 '1:a,3:c')" "$(per_node rows ab)"
check_no_prepared "nothing is left prepared on any node"

chorus_stop TERM

# =============================================================================
# Part C: load_balance = session, on_mismatch = detach_minority
# =============================================================================
chorus_conf "${REPL[@]}" 'load_balance = "session";' 'on_mismatch = "detach_minority";'
chorus_start

all=""
one=1
for ((s = 0; s < 12; s++)); do
	p=$(ports_of_reads 5 | sort -u | tr '\n' ' ')
	[ "$(wc -w <<<"$p")" = 1 ] || one=0
	all+=$p
done
all=$(tr ' ' '\n' <<<"$all" | sed '/^$/d' | sort -u | tr '\n' ' ')
check_eq "load_balance = session: each session reads from one node" "1" "$one"
n=$(wc -w <<<"$all")
if [ "$n" -gt 1 ]; then
	ok "load_balance = session: 12 sessions read from $n nodes"
else
	not_ok "load_balance = session: 12 sessions read from more than one node (ports: '$all')"
fi

chorus_sql 'create table dm (id int, v text)' >/dev/null || bail "create table dm"
chorus_sql "insert into dm values (1, 'a')" >/dev/null || bail "insert into dm"
node_sql 2 'create unique index dm_id on dm (id)' >/dev/null || bail "unique index on node 2 only"
out=$(chorus_psql -At -c begin -c "insert into dm values (10, 'j')" -c "insert into dm values (1, 'dup')" \
	-c "insert into dm values (11, 'k')" -c commit 2>&1)
rc=$?
check_eq "on_mismatch = detach_minority: a transaction whose write fails on node 2 only succeeds for the client" \
	"0" "$rc" || diag "$out"
check_match "... the client got the INSERT's command tag" '^INSERT 0 1$' "$(sed -n 3p <<<"$out")"
check_eq "... it is on nodes 0 and 1, not on node 2" "1:a,1:dup,10:j,11:k|1:a,1:dup,10:j,11:k|1:a" "$(per_node rows dm)"
check "a later write" chorus_sql "insert into dm values (12, 'l')"
check_eq "... is on nodes 0 and 1 and not on the detached node 2" \
	"1:a,1:dup,10:j,11:k,12:l|1:a,1:dup,10:j,11:k,12:l|1:a" "$(per_node rows dm)"
bad=0
for ((s = 0; s < 10; s++)); do
	p=$(ports_of_reads 3 | sort -u | tr '\n' ' ')
	case " $p " in *" $NODE2_PORT "*) bad=$((bad + 1)) ;; esac
done
check_eq "reads of 10 new sessions never go to the detached node 2" "0" "$bad"
check_no_prepared "nothing is left prepared on any node (the detached one included)"

chorus_stop TERM
diag "test time: $((SECONDS - START)) s"
