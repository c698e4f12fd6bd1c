#!/usr/bin/env bash
# 90_session_mode: in session pooling a client keeps its server connection for
# the whole session (SET, temp tables, SQL PREPARE last across transactions);
# the next client on the same server connection starts clean (server_reset_query).
# shellcheck disable=SC2016  # $1, $$ and $user are SQL, not shell
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 1
node_sql 0 'create schema app; create table app.marker (v text); insert into app.marker values ($$in app$$)' >/dev/null ||
	bail "create schema app"
# pool_size 1: the second client must get the first one's server connection.
# One worker: a server connection is reused by the next client of the same worker; with
# several workers pool_size may instead hand it over (close and reopen) to another worker.
chorus_conf 'pool_mode = "session";' 'pool_size = 1;' 'server_reset_query = "DISCARD ALL";' 'workers = 1;'
chorus_start

out=$(chorus_psql -qAt \
	-c 'set search_path = app, public' \
	-c 'select v from marker' \
	-c 'show search_path' \
	-c 'begin' -c 'create temp table tt (i int)' -c 'insert into tt values (1), (2)' -c 'commit' \
	-c 'begin' -c 'insert into tt values (3)' -c 'commit' \
	-c 'select sum(i) from tt' \
	-c 'prepare q(int) as select $1 + 100' \
	-c 'execute q(1)' \
	-c 'select pg_advisory_lock(4242)' \
	-c 'select pg_backend_pid()' 2>&1)
mapfile -t lines <<<"$out"
check_eq "SET search_path holds for the next statement" "in app" "${lines[0]:-}"
check_eq "show search_path" "app, public" "${lines[1]:-}"
check_eq "a temp table lives across transactions of the session" "6" "${lines[2]:-}"
check_eq "SQL PREPARE / EXECUTE across statements" "101" "${lines[3]:-}"
pid1=${lines[5]:-}

out=$(chorus_psql -qAt \
	-c 'select pg_backend_pid()' \
	-c 'show search_path' \
	-c "select coalesce(to_regclass('tt')::text, 'none')" \
	-c 'select count(*) from pg_prepared_statements' 2>&1)
mapfile -t lines <<<"$out"
check_eq "the next client gets the same server connection (pool_size 1)" "$pid1" "${lines[0]:-}"
check_eq "... with search_path reset" '"$user", public' "${lines[1]:-}"
check_eq "... without the old session's temp table" "none" "${lines[2]:-}"
check_eq "... without its prepared statements" "0" "${lines[3]:-}"
check_eq "the old session's advisory lock was released" "t" \
	"$(node_sql 0 'select pg_try_advisory_lock(4242)')"

# Two sessions at once with pool_size 1: the second waits for the first.
chorus_psql -qAt -c 'select pg_sleep(1.5)' >/dev/null 2>&1 &
first=$!
bg_track "$first"
wait_until 5 node_running_query 0 'select pg_sleep(1.5)' || not_ok "the first session started"
start=$(date +%s%N)
second=$(chorus_sql "select 'second'" 2>&1)
ms=$((($(date +%s%N) - start) / 1000000))
wait "$first"
check_eq "a second session is served once the first ends" "second" "$second"
check "... after waiting for it (${ms} ms)" test "$ms" -ge 500

chorus_stop TERM
