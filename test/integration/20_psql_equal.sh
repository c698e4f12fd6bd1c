#!/usr/bin/env bash
# 20_psql_equal: the same psql session (data/psql_equal.sql: many types,
# errors, notices, transactions, COPY, \copy, unicode, NULLs) gives exactly the
# same output directly against node 0 and through pgchorus.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 1
chorus_conf
chorus_start

node_sql 0 'create database direct_db' >/dev/null || bail "create database direct_db"
node_sql 0 'create database proxy_db' >/dev/null || bail "create database proxy_db"

sql=$TEST_TMP/psql_equal.sql
cp "$(dirname "$0")/data/psql_equal.sql" "$sql"

# Input files for \copy: 5000 good rows, and a file whose last row repeats a key.
mkdir -p "$TEST_TMP/direct" "$TEST_TMP/proxy"
$PY - "$TEST_TMP/direct" <<'PYEOF'
import sys, random
random.seed(7)
d = sys.argv[1]
with open(d + "/bulk_in.tsv", "w") as f:
    for i in range(1, 5001):
        label = random.choice(["alpha", "béta", "γάμμα", "tab\\tin", "back\\\\slash", "\\N"])
        f.write(f"{i}\t{label} {i}\t{random.randint(-10**6, 10**6) / 100}\t2024-{1 + i % 12:02d}-{1 + i % 28:02d}\t{{a,{i % 7}}}\n")
with open(d + "/bulk_in_bad.tsv", "w") as f:
    f.write("900001\tfine\n900002\tfine too\n1\tduplicate key\n")
PYEOF
cp "$TEST_TMP/direct/"*.tsv "$TEST_TMP/proxy/"

run_session() { # run_session DIR PORT DB
	(
		cd "$1" || exit 1
		with_timeout "$CLIENT_TIMEOUT" psql -X -a -v ON_ERROR_STOP=0 -h 127.0.0.1 -p "$2" -d "$3" -f "$sql" 2>&1
		with_timeout "$CLIENT_TIMEOUT" psql -X -h 127.0.0.1 -p "$2" -d "$3" \
			-c "select 1 as a; select 2 as b" \
			-c "select 'x' as c; select 1/0; select 'not reached'" \
			-c "begin; create table multi(i int); insert into multi values (1), (2); commit; select sum(i) from multi; drop table multi" \
			-c "select 'after' as last" 2>&1
	)
}

run_session "$TEST_TMP/direct" "$NODE0_PORT" direct_db >"$TEST_TMP/direct.out"
run_session "$TEST_TMP/proxy" "$CHORUS_PORT" proxy_db >"$TEST_TMP/proxy.out"

if diff -u "$TEST_TMP/direct.out" "$TEST_TMP/proxy.out" >"$TEST_TMP/psql.diff"; then
	ok "psql output through pgchorus equals direct output ($(wc -l <"$TEST_TMP/direct.out") lines)"
else
	not_ok "psql output through pgchorus equals direct output"
	head -n 60 "$TEST_TMP/psql.diff" | sed 's/^/#   /'
fi

# Make sure the session really ran (a diff of two broken runs would be empty).
out=$(cat "$TEST_TMP/proxy.out")
check_match "the session ran to its last statement" 'drop type mood' "$out"
check_match "errors were reported" 'ERROR:  division by zero' "$out"
check_match "notices were reported" 'NOTICE:  hello from DO: 42' "$out"
check_match "unicode came back intact" '日本語のテキスト' "$out"
check_match "COPY FROM STDIN loaded rows" 'cécile' "$out"
check_match "\\copy loaded 5000 rows" '5000 \|' "$out"
check_match "multi-statement -c: statements before the error ran" '^ c *$' "$out"
check_eq "multi-statement -c: nothing after the error" "0" "$(grep -c 'not reached' "$TEST_TMP/proxy.out")"
check_match "multi-statement -c: the later -c ran" '^ after *$' "$out"

if cmp -s "$TEST_TMP/direct/bulk_out.tsv" "$TEST_TMP/proxy/bulk_out.tsv"; then
	ok "\\copy to a file: same file through pgchorus ($(wc -l <"$TEST_TMP/proxy/bulk_out.tsv") lines)"
else
	not_ok "\\copy to a file: same file through pgchorus"
fi
check_eq "\\copy exported 5000 rows" "5000" "$(wc -l <"$TEST_TMP/proxy/bulk_out.tsv" 2>/dev/null | tr -d ' ')"

chorus_stop TERM
