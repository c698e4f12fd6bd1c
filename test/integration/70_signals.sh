#!/usr/bin/env bash
# 70_signals: SIGHUP reloads (a new pool_size takes effect, a broken file is
# reported and the old configuration stays); SIGTERM lets an open transaction
# finish, refuses new clients and exits 0; SIGINT exits promptly.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 1
chorus_conf 'pool_mode = "transaction";' 'pool_size = 2;'
chorus_start
node_sql 0 'create table sig_t (i int)' >/dev/null || bail "create table sig_t"

# Run 4 clients that each sleep 2.5 s; print how many ran on the node at once.
concurrent_sleepers() {
	local pids=() i n max=0
	for i in 1 2 3 4; do
		chorus_sql "select pg_sleep(2.5) /* sleeper */" >/dev/null 2>&1 &
		pids+=($!)
	done
	for ((i = 0; i < 22; i++)); do
		n=$(node_count_query 0 '%/* sleeper */%')
		[ "${n:-0}" -gt "$max" ] && max=$n
		sleep 0.1
	done
	wait "${pids[@]}"
	echo "$max"
}

check_eq "pool_size = 2: 4 clients run 2 statements at a time" "2" "$(concurrent_sleepers)"

chorus_conf 'pool_mode = "transaction";' 'pool_size = 4;'
chorus_reload
sleep 1
check "pgchorus runs after SIGHUP" pid_alive "$CHORUS_PID"
check_eq "a query works after the reload" "1" "$(chorus_sql 'select 1' 2>&1)"
check_eq "after reload to pool_size = 4: 4 statements at a time" "4" "$(concurrent_sleepers)"

# A syntax error: logged with the file name, old configuration kept.
lines_before=$(wc -l <"$CHORUS_LOG")
cp "$CHORUS_CONF" "$TEST_TMP/good.conf"
echo 'pool_size = ;' >>"$CHORUS_CONF"
chorus_reload
sleep 1
check "pgchorus runs after SIGHUP with a broken file" pid_alive "$CHORUS_PID"
check_match "the reload error is logged with the file name and line" \
	"$(basename "$CHORUS_CONF"):[0-9]+" "$(tail -n +$((lines_before + 1)) "$CHORUS_LOG")"
check_eq "a query works after the failed reload" "1" "$(chorus_sql 'select 1' 2>&1)"
check_eq "the old pool_size = 4 still holds" "4" "$(concurrent_sleepers)"
cp "$TEST_TMP/good.conf" "$CHORUS_CONF"
chorus_reload
sleep 0.5
check_eq "a query works after reloading the fixed file" "1" "$(chorus_sql 'select 1' 2>&1)"

# SIGTERM: a transaction in progress finishes; new clients are refused.
cat >"$TEST_TMP/txn.sql" <<'SQL'
begin;
insert into sig_t values (1);
select pg_sleep(3) /* in-flight */;
insert into sig_t values (2);
commit;
SQL
chorus_psql -f "$TEST_TMP/txn.sql" >"$TEST_TMP/txn.out" 2>&1 &
txn_pid=$!
bg_track "$txn_pid"
wait_until 5 node_running_query 0 '%in-flight%' ||
	not_ok "the in-flight transaction started"
kill -TERM "$CHORUS_PID"
sleep 0.5
check_fail "new connections are refused after SIGTERM" chorus_sql 'select 1'
wait "$txn_pid"
txn_rc=$?
check_eq "the open transaction's client ends with status 0" "0" "$txn_rc"
check_match "its COMMIT succeeded" '^COMMIT' "$(cat "$TEST_TMP/txn.out")"
check_eq "both of its rows are on the node" "2" "$(node_sql 0 'select count(*) from sig_t')"
chorus_wait 10 "SIGTERM with an open transaction"

# SIGINT: fast shutdown even with a client in a transaction.
chorus_start
chorus_psql -c 'begin' -c 'select pg_sleep(20)' >/dev/null 2>&1 &
bg_track $!
wait_until 5 node_running_query 0 'select pg_sleep(20)' ||
	not_ok "the long transaction started"
chorus_stop INT 3
