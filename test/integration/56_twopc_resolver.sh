#!/usr/bin/env bash
# 56_twopc_resolver: the two-phase-commit resolver (src/repl/twopc.c, driven
# by src/ctl/twopc_tool.c built here from the sources) against three real
# nodes.  Every point where a pgchorus crash can stop a 2PC commit is
# reproduced with psql on the nodes (BEGIN; INSERT; INSERT of the decision row;
# PREPARE TRANSACTION; COMMIT PREPARED on some nodes), then the resolver must
# leave no prepared pgc_ transaction of a dead boot behind, commit exactly the
# transactions that some node committed, and leave the nodes identical.  It
# must not touch transactions of the running boot that are young or in
# flight, nor foreign gids, and must not roll back while a node that might
# hold the decision is down.  Old decision rows are garbage-collected.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_repl.sh
. "$(dirname "$0")/lib_repl.sh"

INST=t56
OLD=100 # the boot of a pgchorus that died
CUR=200 # the running boot
TOOL=$TEST_TMP/twopc_tool
RLOG=$TEST_TMP/resolver.log
START=$SECONDS

# ---- the driver, built from the sources ----------------------------------------

if ! command -v gcc >/dev/null 2>&1; then
	not_ok "gcc is installed to build twopc_tool (test skipped)"
	exit 1
fi
PGINC=$(pg_config --includedir 2>/dev/null) || PGINC=/usr/include/postgresql
build_tool() {
	gcc -std=gnu11 -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes \
		-Wmissing-prototypes -I"$TOP/include" -I"$PGINC" "$@" \
		"$TOP/src/ctl/twopc_tool.c" "$TOP/src/repl/twopc.c" "$TOP/src/util/log.c" \
		-o "$TOOL" -lpq -lpthread >"$TEST_TMP/build.log" 2>&1
}
if build_tool -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined; then
	ok "twopc_tool builds from the sources (with sanitizers)"
elif build_tool; then
	ok "twopc_tool builds from the sources (no sanitizer runtime here)"
else
	diag_file "$TEST_TMP/build.log"
	bail "twopc_tool builds from the sources"
fi

# ---- helpers ---------------------------------------------------------------------

gid() {
	"$TOOL" make-gid "$INST" "$1" "$2"
}

# as_pg CMD...: run as the user that owns the nodes (see scripts/cluster.sh)
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

node_stop() {
	as_pg "$PGBIN/pg_ctl" -D "$(node_dir "$1")" -m immediate -w -t 30 -s stop
}

node_start() {
	local d
	d=$(node_dir "$1")
	as_pg "$PGBIN/pg_ctl" -D "$d" -l "$d/log/postgresql.log" -w -t 60 -s start >/dev/null &&
		wait_until 20 pg_isready -q -h 127.0.0.1 -p "$(node_port "$1")"
}

# prepare_on DB GID V K...: on each node K, a transaction inserts V into t and
# GID's decision row (the data path's SQL), then is prepared as GID.
prepare_on() {
	local db=$1 g=$2 v=$3 k ins
	shift 3
	ins=$("$TOOL" decision-sql "$g") || return 1
	for k in "$@"; do
		node_psql "$k" -qAt -d "$db" >/dev/null <<-EOF || return 1
			BEGIN;
			INSERT INTO t VALUES ($v, '$g');
			$ins;
			PREPARE TRANSACTION '$g';
		EOF
	done
}

# finish_on DB COMMIT|ROLLBACK GID K...
finish_on() {
	local db=$1 verb=$2 g=$3 k
	shift 3
	for k in "$@"; do
		node_sql "$k" "$verb PREPARED '$g'" "$db" >/dev/null || return 1
	done
}

prepared_on() {
	node_sql "$1" "SELECT coalesce(string_agg(gid, ' ' ORDER BY gid), '') FROM pg_prepared_xacts"
}

# has_row DB V K: 1 when t holds V on node K
has_row() {
	node_sql "$3" "SELECT count(*) FROM t WHERE v = $2" "$1"
}

# has_decision DB GID K: 1 when node K has GID's decision row
has_decision() {
	node_sql "$3" "SELECT count(*) FROM pgchorus.decisions WHERE gid = '$2'" "$1"
}

digest() {
	node_sql "$2" "SELECT md5(coalesce(string_agg(v || ':' || note, ',' ORDER BY v), '')) FROM t" "$1"
}

# check_identical DESC DB: t has the same contents on every node
check_identical() {
	local d
	d=$(per_node digest "$2")
	check_match "$1" '^([0-9a-f]{32})\|\1\|\1$' "$d"
}

report() {
	printf 'committed=%s rolled_back=%s undecided=%s unreachable_nodes=%s pending=%s failed=%s gc_deleted=%s\n' "$@"
}

# check_resolve DESC EXPECTED_REPORT BOOT GRACE [-i GID]...
check_resolve() {
	local desc=$1 expected=$2 boot=$3 grace=$4 k out
	local args=() conns=()
	shift 4
	while [ $# -ge 2 ] && [ "$1" = -i ]; do
		args+=(-i "$2")
		shift 2
	done
	for ((k = 0; k < NODE_COUNT; k++)); do
		conns+=("$(node_dsn "$k")")
	done
	echo "=== $desc" >>"$RLOG"
	out=$(with_timeout 30 "$TOOL" resolve "${args[@]}" "$INST" "$boot" "$grace" "${conns[@]}" 2>>"$RLOG")
	if ! check_eq "$desc" "$expected" "$out"; then
		diag_file "$RLOG" 15
	fi
}

# ---- setup -------------------------------------------------------------------------

cluster_up 3
for ((k = 0; k < NODE_COUNT; k++)); do
	node_sql "$k" "CREATE DATABASE db2" >/dev/null || bail "database db2 on node $k"
	for db in postgres db2; do
		node_psql "$k" -qAt -d "$db" -c "CREATE TABLE t (v int PRIMARY KEY, note text NOT NULL)" \
			-c "$("$TOOL" ddl)" >/dev/null 2>&1 || bail "table t and the decision table in $db on node $k"
	done
done
check_eq "twopc_tool refuses an invalid instance" "1" \
	"$("$TOOL" make-gid "Bad-Name" 1 1 >/dev/null 2>&1; echo $?)"

# ---- crash points of an earlier boot -------------------------------------------------

# (a) prepared on every node, committed nowhere: pgchorus died before the first COMMIT PREPARED
GA=$(gid $OLD 1)
prepare_on postgres "$GA" 1 0 1 2 || bail "(a) prepare"
check_resolve "(a) prepared everywhere, committed nowhere: rolled back" "$(report 0 1 0 0 0 0 0)" $CUR 30
check_eq "(a) nothing left prepared" "||" "$(per_node prepared_on)"
check_eq "(a) the row is on no node" "0|0|0" "$(per_node has_row postgres 1)"
check_identical "(a) the nodes are identical" postgres

# (b) committed on the primary only
GB=$(gid $OLD 2)
if ! { prepare_on postgres "$GB" 2 0 1 2 && finish_on postgres COMMIT "$GB" 0; }; then
	bail "(b) prepare"
fi
check_resolve "(b) committed on node0 only: committed on the others" "$(report 1 0 0 0 0 0 0)" $CUR 30
check_eq "(b) nothing left prepared" "||" "$(per_node prepared_on)"
check_eq "(b) the row is on every node" "1|1|1" "$(per_node has_row postgres 2)"
check_eq "(b) the decision row is on every node" "1|1|1" "$(per_node has_decision postgres "$GB")"
check_identical "(b) the nodes are identical" postgres

# (c) committed on node0 and node1
GC=$(gid $OLD 3)
if ! { prepare_on postgres "$GC" 3 0 1 2 && finish_on postgres COMMIT "$GC" 0 1; }; then
	bail "(c) prepare"
fi
check_resolve "(c) committed on node0 and node1: committed on node2" "$(report 1 0 0 0 0 0 0)" $CUR 30
check_eq "(c) nothing left prepared" "||" "$(per_node prepared_on)"
check_eq "(c) the row is on every node" "1|1|1" "$(per_node has_row postgres 3)"
check_identical "(c) the nodes are identical" postgres

# (c') committed on the last node only
GC2=$(gid $OLD 4)
if ! { prepare_on postgres "$GC2" 4 0 1 2 && finish_on postgres COMMIT "$GC2" 2; }; then
	bail "(c') prepare"
fi
check_resolve "(c') committed on node2 only: committed on node0 and node1" "$(report 1 0 0 0 0 0 0)" $CUR 30
check_eq "(c') nothing left prepared" "||" "$(per_node prepared_on)"
check_eq "(c') the row is on every node" "1|1|1" "$(per_node has_row postgres 4)"

# (d) prepared on node0 and node1, node2 never got it
GD=$(gid $OLD 5)
prepare_on postgres "$GD" 5 0 1 || bail "(d) prepare"
check_resolve "(d) prepared on node0 and node1 only: rolled back" "$(report 0 1 0 0 0 0 0)" $CUR 30
check_eq "(d) nothing left prepared" "||" "$(per_node prepared_on)"
check_eq "(d) the row is on no node" "0|0|0" "$(per_node has_row postgres 5)"
check_identical "(d) the nodes are identical" postgres

# (i) in another database: committed on node1 only, and one committed nowhere
GI=$(gid $OLD 6)
GI2=$(gid $OLD 7)
if ! { prepare_on db2 "$GI" 20 0 1 2 && finish_on db2 COMMIT "$GI" 1 &&
	prepare_on db2 "$GI2" 21 0 1 2; }; then
	bail "(i) prepare"
fi
check_resolve "(i) database db2: one committed on node1, one committed nowhere" "$(report 1 1 0 0 0 0 0)" $CUR 30
check_eq "(i) nothing left prepared" "||" "$(per_node prepared_on)"
check_eq "(i) the committed row is on every node" "1|1|1" "$(per_node has_row db2 20)"
check_eq "(i) the other row is on no node" "0|0|0" "$(per_node has_row db2 21)"
check_identical "(i) the nodes are identical in db2" db2

# ---- the running boot ----------------------------------------------------------------

# (e) the running boot's transactions: left alone while young or in flight
GE=$(gid $CUR 1)
GE2=$(gid $CUR 2)
if ! { prepare_on postgres "$GE" 50 0 1 2 && prepare_on postgres "$GE2" 51 0 1 2 &&
	finish_on postgres COMMIT "$GE2" 0; }; then
	bail "(e) prepare"
fi
check_resolve "(e) running boot, younger than the grace period: left alone" "$(report 0 0 0 0 2 0 0)" $CUR 30
check_eq "(e) both still prepared where they were" "$GE|$GE $GE2|$GE $GE2" "$(per_node prepared_on)"
sleep 1.2
check_resolve "(e) running boot, older than the grace period but in flight: left alone" \
	"$(report 0 0 0 0 2 0 0)" $CUR 1 -i "$GE" -i "$GE2"
check_eq "(e) both still prepared after the in-flight run" "$GE|$GE $GE2|$GE $GE2" "$(per_node prepared_on)"
check_resolve "(e) running boot, older than the grace period, not in flight: resolved" \
	"$(report 1 1 0 0 0 0 0)" $CUR 1 -i "$(gid $CUR 3)"
check_eq "(e) nothing left prepared" "||" "$(per_node prepared_on)"
check_eq "(e) the uncommitted row is on no node" "0|0|0" "$(per_node has_row postgres 50)"
check_eq "(e) the committed row is on every node" "1|1|1" "$(per_node has_row postgres 51)"

# (f) foreign gids: not pgchorus', another instance's, not one of ours although close
if ! { prepare_on postgres other_tx 60 0 1 2 && prepare_on postgres pgc_other_100_1 61 0 1 2 &&
	prepare_on postgres "pgc_${INST}_${OLD}_01" 62 0 1 2; }; then
	bail "(f) prepare"
fi
FOREIGN="other_tx pgc_other_100_1 pgc_${INST}_${OLD}_01"
check_resolve "(f) foreign gids: left alone" "$(report 0 0 0 0 0 0 0)" $CUR 30
check_eq "(f) the foreign gids are still prepared" "$FOREIGN|$FOREIGN|$FOREIGN" "$(per_node prepared_on)"
for g in $FOREIGN; do
	finish_on postgres ROLLBACK "$g" 0 1 2 || bail "(f) roll back $g by hand"
done

# ---- a node is down ----------------------------------------------------------------------

# (g) node2 stops while: G1 committed nowhere, G2 committed on node0, G3 committed on node2 only
G1=$(gid $OLD 10)
G2=$(gid $OLD 11)
G3=$(gid $OLD 12)
if ! { prepare_on postgres "$G1" 30 0 1 2 && prepare_on postgres "$G2" 31 0 1 2 &&
	finish_on postgres COMMIT "$G2" 0 && prepare_on postgres "$G3" 32 0 1 2 && finish_on postgres COMMIT "$G3" 2; }; then
	bail "(g) prepare"
fi
node_stop 2 || bail "(g) stop node2"
check_resolve "(g) node2 down: G2 committed on node1, G1 and G3 undecided" "$(report 1 0 2 1 0 0 0)" $CUR 30
check_eq "(g) G1 and G3 are still prepared on node0 and node1 (node2 might have committed them)" \
	"$G1 $G3|$G1 $G3" "$(prepared_on 0)|$(prepared_on 1)"
check_eq "(g) G2's row is on node0 and node1" "1|1" "$(has_row postgres 31 0)|$(has_row postgres 31 1)"
node_start 2 || bail "(g) restart node2"
check_eq "(g) node2 kept its prepared transactions" "$G1 $G2" "$(prepared_on 2)"
check_resolve "(g) node2 back: G2 and G3 committed, G1 rolled back" "$(report 2 1 0 0 0 0 0)" $CUR 30
check_eq "(g) nothing left prepared" "||" "$(per_node prepared_on)"
check_eq "(g) G1's row is on no node" "0|0|0" "$(per_node has_row postgres 30)"
check_eq "(g) G2's row is on every node" "1|1|1" "$(per_node has_row postgres 31)"
check_eq "(g) G3's row is on every node" "1|1|1" "$(per_node has_row postgres 32)"
check_identical "(g) the nodes are identical" postgres

# ---- garbage collection of decision rows ---------------------------------------------------

OLDROW="now() - interval '2 hours'"
X900=$(gid $OLD 900)
X901=$(gid $OLD 901)
X902=$(gid $OLD 902)
X903=$(gid $OLD 903)
if ! { node_sql 0 "INSERT INTO pgchorus.decisions VALUES ('$X900', $OLDROW),
		('pgc_other_100_900', $OLDROW), ('$X901', now())" >/dev/null &&
	node_sql 1 "INSERT INTO pgchorus.decisions VALUES ('$X903', $OLDROW)" db2 >/dev/null; }; then
	bail "(j) old rows"
fi
node_stop 2 || bail "(j) stop node2"
check_resolve "(j) node2 down: no decision row is collected" "$(report 0 0 0 1 0 0 0)" $CUR 30
check_eq "(j) X900's old row is still on node0" "1" "$(has_decision postgres "$X900" 0)"
node_start 2 || bail "(j) restart node2"
# X902: an old decision row on node0, the transaction still prepared on node1.
if ! { node_sql 0 "INSERT INTO pgchorus.decisions VALUES ('$X902', $OLDROW)" >/dev/null &&
	node_sql 0 "INSERT INTO t VALUES (40, '$X902')" >/dev/null &&
	node_sql 2 "INSERT INTO t VALUES (40, '$X902')" >/dev/null &&
	node_psql 1 -qAt -c "BEGIN" -c "INSERT INTO t VALUES (40, '$X902')" \
		-c "PREPARE TRANSACTION '$X902'" >/dev/null; }; then
	bail "(j) prepare X902"
fi
check_resolve "(j) all nodes up: X902 committed, old rows of gids prepared nowhere collected" \
	"$(report 1 0 0 0 0 0 2)" $CUR 30
old_rows() {
	node_sql "$2" "SELECT coalesce(string_agg(gid, ' ' ORDER BY gid), '') FROM pgchorus.decisions
		WHERE decided_at < now() - interval '1 hour'" "$1"
}
check_eq "(j) kept on node0: X902 (was prepared), the other instance's row" \
	"pgc_other_100_900 $X902" "$(old_rows postgres 0)"
check_eq "(j) node1's old row in db2 collected" "" "$(old_rows db2 1)"
check_eq "(j) a recent row is kept" "1" "$(has_decision postgres "$X901" 0)"
check_resolve "(j) next run: X902's row collected" "$(report 0 0 0 0 0 0 1)" $CUR 30
check_eq "(j) kept on node0: the other instance's row" "pgc_other_100_900" "$(old_rows postgres 0)"
check_eq "(j) the rows of resolved transactions are younger: kept" "1|1|1" "$(per_node has_decision postgres "$GB")"

# ---- end state ---------------------------------------------------------------------------------

check_eq "end: no prepared transaction on any node" "||" "$(per_node prepared_on)"
check_identical "end: the nodes are identical (postgres)" postgres
check_identical "end: the nodes are identical (db2)" db2
check_match "end: the resolver logged its decisions" "COMMIT PREPARED on node 2" "$(cat "$RLOG")"
diag "test time: $((SECONDS - START)) s"
