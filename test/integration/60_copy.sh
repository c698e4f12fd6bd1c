#!/usr/bin/env bash
# 60_copy: several MB of COPY in and out through pgchorus (psql \copy, text
# and binary): what comes out equals what went in and equals a direct export;
# a COPY that fails half way loads nothing and leaves pgchorus serving.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 1
chorus_conf 'pool_mode = "transaction";' 'pool_size = 4;'
chorus_start

data=$TEST_TMP/data.tsv
# ~5 MB in PostgreSQL's canonical text output, ordered by id, so that an
# export of the table reproduces the file byte for byte.
$PY - "$data" <<'PYEOF'
import random, sys
random.seed(60)
words = ["alpha", "beta", "gamma", "délta", "ε", "日本", "tab\\there", "back\\\\slash", "new\\nline"]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    size, i = 0, 0
    while size < 5 * 1024 * 1024:
        i += 1
        note = "\\N" if i % 97 == 0 else " ".join(random.choice(words) for _ in range(random.randint(1, 12)))
        line = f"{i}\t{random.randint(-10**9, 10**9)}\t{note}\t{random.random():.6f}\n"
        f.write(line)
        size += len(line.encode())
PYEOF
rows=$(wc -l <"$data")
create='create table big (id int primary key, n bigint, note text, r numeric)'
chorus_sql "$create" >/dev/null || bail "create table through pgchorus"

check "\\copy in of $(du -k "$data" | cut -f1) kB through pgchorus" \
	chorus_psql -c "\\copy big from '$data'"
check_eq "row count on node 0 equals the file's lines" "$rows" "$(node_sql 0 'select count(*) from big')"
check_eq "row count through pgchorus" "$rows" "$(chorus_sql 'select count(*) from big')"

chorus_psql -c "\\copy (select * from big order by id) to '$TEST_TMP/out_proxy.tsv'" >/dev/null 2>&1
node_psql 0 -c "\\copy (select * from big order by id) to '$TEST_TMP/out_direct.tsv'" >/dev/null 2>&1
md5_in=$(md5sum <"$data" | cut -d' ' -f1)
md5_proxy=$(md5sum <"$TEST_TMP/out_proxy.tsv" | cut -d' ' -f1)
md5_direct=$(md5sum <"$TEST_TMP/out_direct.tsv" | cut -d' ' -f1)
check_eq "md5 of the export through pgchorus equals the direct export" "$md5_direct" "$md5_proxy"
check_eq "md5 of the export equals the loaded file" "$md5_in" "$md5_proxy"

# binary format both ways
chorus_psql -c "\\copy (select * from big order by id) to '$TEST_TMP/out_proxy.bin' with (format binary)" >/dev/null 2>&1
node_psql 0 -c "\\copy (select * from big order by id) to '$TEST_TMP/out_direct.bin' with (format binary)" >/dev/null 2>&1
check "binary export through pgchorus equals the direct one" cmp "$TEST_TMP/out_direct.bin" "$TEST_TMP/out_proxy.bin"
chorus_sql 'create table big2 (like big)' >/dev/null
check "binary \\copy in through pgchorus" chorus_psql -c "\\copy big2 from '$TEST_TMP/out_proxy.bin' with (format binary)"
check_eq "binary copy reloaded every row unchanged" "0" \
	"$(node_sql 0 'select count(*) from (select * from big except all select * from big2) d')"
check_eq "binary copy row count" "$rows" "$(node_sql 0 'select count(*) from big2')"

# COPY TO STDOUT piped through psql
check_eq "COPY TO STDOUT through pgchorus streams every row" "$rows" \
	"$(chorus_psql -qAt -c 'copy big to stdout' | wc -l | tr -d ' ')"

# a COPY that fails on its last row loads nothing; the session and pgchorus go on
cp "$data" "$TEST_TMP/bad.tsv"
echo "1	0	duplicate key	0" >>"$TEST_TMP/bad.tsv"
chorus_sql 'create table big3 (like big including all)' >/dev/null
out=$(chorus_psql -v ON_ERROR_STOP=0 -c "\\copy big3 from '$TEST_TMP/bad.tsv'" -c "select 'after failed copy'" 2>&1)
check_match "a failing COPY reports the node's error" 'duplicate key value violates unique constraint' "$out"
check_eq "the failed COPY left no rows" "0" "$(node_sql 0 'select count(*) from big3')"
check_eq "pgchorus serves after the failed COPY" "ok" "$(chorus_sql "select 'ok'")"

# COPY inside a transaction that is rolled back
out=$(chorus_psql -qAt -c 'begin' -c "\\copy big3 from '$data'" -c 'select count(*) from big3' -c 'rollback' 2>&1)
check_eq "COPY in a transaction sees its rows" "$rows" "$(tail -n 1 <<<"$out")"
check_eq "... and ROLLBACK removes them" "0" "$(node_sql 0 'select count(*) from big3')"

chorus_stop TERM
