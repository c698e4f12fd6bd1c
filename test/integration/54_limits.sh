#!/usr/bin/env bash
# 54_limits: the limits pgchorus puts on clients.  max_client_conn (53300 at
# once, room again after some leave), max_message_size and max_startup_size
# (08P01 and close, others unaffected), auth_timeout (a silent or half-sent
# startup is closed; a stalled message inside a transaction too),
# client_idle_timeout (57P05), idle_in_transaction_timeout (25P03, rolled
# back) and query_wait_timeout with pool_size = 1.  Timeouts are 1 s; the
# janitor runs once a second, so a close is expected within 3.5 s.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_tls.sh
. "$(dirname "$0")/lib_tls.sh"

cluster_up 1
node_sql 0 'create table lim_t (i int)' >/dev/null || bail "create table lim_t"

# limits_conf LINE...: the test's base configuration and LINEs; reload if running
limits_conf() {
	chorus_conf 'server_tls = "disable";' "$@"
	if [ -n "$CHORUS_PID" ]; then
		chorus_reload
		sleep 1
	fi
}

# closed_within SECS DESC LINE: LINE (from pgwire) ends in t=T with T <= SECS
closed_within() {
	local t
	t=$(sed -n 's/.* t=\([0-9.]*\)$/\1/p' <<<"$3" | tail -n 1)
	if [ -n "$t" ] && secs_le "$t" "$1"; then
		ok "$2 (${t}s)"
	else
		not_ok "$2 (${t:-no time}s)"
		diag "$3"
	fi
}

# ---- max_client_conn -------------------------------------------------------

limits_conf 'max_client_conn = 5;'
chorus_start
hold_pids=()
for i in 1 2 3 4 5; do
	pgwire -t 60 q:'select 1' waitfile:"$TEST_TMP/release.$i" q:'select 2' >"$TEST_TMP/hold.$i" 2>&1 &
	hold_pids+=($!)
	bg_track "$!"
done
all_in() {
	local i
	for i in 1 2 3 4 5; do grep -q '^ok 1 ' "$TEST_TMP/hold.$i" || return 1; done
}
wait_until 15 all_in || not_ok "5 clients logged in (max_client_conn = 5)"
out=$(pgwire q:'select 1')
check_match "max_client_conn = 5: the 6th client gets FATAL 53300" \
	'^error FATAL 53300 sorry, too many clients already' "$out"
closed_within 1 "... at once" "$out"
check_match "... over the unix socket too" '^error FATAL 53300 ' "$(pgwire -h "$CHORUS_SOCKDIR" q:'select 1')"
check_match "... psql over the unix socket shows the message" 'sorry, too many clients already' \
	"$(with_timeout 20 psql -X -h "$CHORUS_SOCKDIR" -p "$CHORUS_PORT" -c 'select 1' 2>&1)"
check_match "... psql sslmode=disable over TCP shows the message" 'sorry, too many clients already' \
	"$(PGSSLMODE=disable chorus_sql 'select 1' 2>&1)"
# libpq's default sslmode=prefer starts with an SSLRequest; PostgreSQL answers
# it and reports the refusal after the startup packet, so psql shows it.
check_match "... psql with the default sslmode=prefer over TCP shows the message" \
	'sorry, too many clients already' "$(PGSSLMODE=prefer chorus_sql 'select 1' 2>&1)"
touch "$TEST_TMP/release.1" "$TEST_TMP/release.2"
wait "${hold_pids[0]}" "${hold_pids[1]}"
check_match "the 5 held clients still work" '^ok 2 ' "$(cat "$TEST_TMP/hold.1")"
new_client_ok() { pgwire q:'select 3' | grep -q '^ok 3 '; }
check "after 2 of them left, a new client gets in" wait_until 3 new_client_ok
touch "$TEST_TMP/release.3" "$TEST_TMP/release.4" "$TEST_TMP/release.5"
wait "${hold_pids[@]}"
ok_holds=$(cat "$TEST_TMP"/hold.* | grep -c '^ok 2 ')
check_eq "all 5 held clients ran their second query" "5" "$ok_holds"

# ---- max_message_size / max_startup_size -----------------------------------

limits_conf 'max_message_size = 1024;' 'max_startup_size = 512;'
pgwire -t 30 q:'select 1' sleep:2 q:"select 'bystander'" >"$TEST_TMP/bystander.out" 2>&1 &
by_pid=$!
bg_track "$by_pid"
out=$(with_timeout 20 "$PY" - "$(chorus_dsn postgres)" <<'EOF' 2>&1
import sys, psycopg
c = psycopg.connect(sys.argv[1], autocommit=True)
print("small", c.execute("select length('" + "y" * 900 + "')").fetchone()[0])
try:
    c.execute("select length('" + "x" * 4096 + "')")
    print("big no error")
except psycopg.Error as e:
    print("big error", e.sqlstate, str(e).strip().splitlines()[0])
try:
    c.execute("select 1")
    print("after open")
except psycopg.Error as e:
    print("after closed", c.closed)
EOF
)
check_match "max_message_size = 1024: a 900-byte query works" '^small 900$' "$out"
check_match "a 4 KB query fails with the limit in the message (psycopg)" '^big error .*max_message_size' "$out"
check_match "... and the connection is closed" '^after closed True$' "$out"
check_match "a 4 KB query gets FATAL 08P01 (SQLSTATE seen by a raw client)" '^error FATAL 08P01 ' \
	"$(pgwire q:"select length('$(printf 'x%.0s' $(seq 1 4096))')")"
wait "$by_pid"
check_match "another client's session is unaffected" '^ok bystander ' "$(cat "$TEST_TMP/bystander.out")"
check_match "max_startup_size = 512: a 1 KB startup packet gets 08P01" '^error FATAL 08P01 ' \
	"$(pgwire --param "application_name=$(printf 'a%.0s' $(seq 1 1000))" q:'select 1')"
check_match "... a small one is fine" '^ok 1 ' "$(pgwire --param application_name=short q:'select 1')"

# ---- auth_timeout ----------------------------------------------------------

limits_conf 'auth_timeout = 1;'
# raw_client MODE: connect and send nothing ("silent") or half a startup packet
# ("half"); print "closed SECONDS SQLSTATE" when pgchorus closes, or "open".
raw_client() {
	"$PY" - "$CHORUS_PORT" "$1" <<'EOF'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if sys.argv[2] == "half":
    s.sendall(struct.pack("!ii", 40, 196608) + b"user\0post")
t0 = time.monotonic()
s.settimeout(10)
data = b""
try:
    while True:
        c = s.recv(4096)
        if not c:
            break
        data += c
except socket.timeout:
    print("open after 10 s")
    sys.exit()
except ConnectionError:
    pass
code = "-"
if data[:1] == b"E" and b"\0C" in data:
    code = data.split(b"\0C", 1)[1][:5].decode()
print(f"closed t={time.monotonic() - t0:.2f} {code}")
EOF
}
out=$(raw_client silent)
check_match "auth_timeout = 1: a client that sends nothing is closed" '^closed ' "$out"
closed_within 3.5 "... within 3.5 s" "${out% *}"
out=$(raw_client half)
check_match "auth_timeout = 1: a client that sends half a startup packet is closed" '^closed ' "$out"
closed_within 3.5 "... within 3.5 s" "${out% *}"
out=$(pgwire q:'select 1' sleep:2 q:'select 2')
check_match "a client that logged in in time is not affected by auth_timeout" '^ok 2 ' "$out"
out=$(pgwire q:'begin' q:'select 1' partial wait:6)
check_match "inside a transaction, a message stalled half way is closed with 08P01" \
	'^error FATAL 08P01 .*stalled' "$out"
closed_within 4 "... within about auth_timeout" "$(tail -n 1 <<<"$out")"

# ---- client_idle_timeout ---------------------------------------------------

limits_conf 'client_idle_timeout = 1;'
out=$(pgwire q:'select 1' wait:6)
check_match "client_idle_timeout = 1: an idle client gets FATAL 57P05" '^error FATAL 57P05 ' "$out"
closed_within 3.5 "... within 3.5 s of connecting" "$(tail -n 1 <<<"$out")"
out=$(with_timeout 20 "$PY" - "$(chorus_dsn postgres)" <<'EOF' 2>&1
import sys, time, psycopg
c = psycopg.connect(sys.argv[1], autocommit=True)
c.execute("select 1")
time.sleep(3.5)
try:
    c.execute("select 1")
    print("still open")
except psycopg.Error as e:
    print("failed", e.sqlstate, c.closed)
EOF
)
check_match "an idle psycopg connection: the next query after 3.5 s fails (57P05 or closed)" \
	'^failed (57P05|None) True$' "$out"
check_match "a client running a 2.5 s query is not idle" '^ok 2 ' \
	"$(pgwire q:'select pg_sleep(2.5)' q:'select 2')"

# ---- idle_in_transaction_timeout -------------------------------------------

limits_conf 'idle_in_transaction_timeout = 1;'
out=$(pgwire q:'begin' q:'insert into lim_t values (1)' wait:6)
check_match "idle_in_transaction_timeout = 1: BEGIN then nothing -> FATAL 25P03" '^error FATAL 25P03 ' "$out"
closed_within 4 "... within about 1 s of going idle" "$(tail -n 1 <<<"$out")"
check_eq "... and its transaction was rolled back" "0" "$(node_sql 0 'select count(*) from lim_t')"
check_match "a transaction busy in a 2.5 s statement is not idle" '^ok t ' \
	"$(pgwire q:'begin' q:'select pg_sleep(2.5)' q:'select true' q:'commit')"
check_match "an idle client outside a transaction is not affected" '^ok 2 ' \
	"$(pgwire q:'select 1' sleep:2 q:'select 2')"

# ---- query_wait_timeout ----------------------------------------------------

limits_conf 'query_wait_timeout = 1;' 'pool_size = 1;'
pgwire -t 30 q:'begin' q:'select pg_sleep(4) /* holder */' q:'commit' >"$TEST_TMP/holder.out" 2>&1 &
holder=$!
bg_track "$holder"
wait_until 5 node_running_query 0 '%/* holder */%' || not_ok "the holder's pg_sleep(4) runs on the node"
out=$(pgwire -t 15 q:'select 1')
check_match "query_wait_timeout = 1, pool_size = 1: a waiting client gets FATAL query_wait_timeout" \
	'^error FATAL [0-9A-Z]{5} query_wait_timeout' "$out"
check_match "... with SQLSTATE 08006" '^error FATAL 08006 ' "$out"
closed_within 3.5 "... within 3.5 s" "$out"
wait "$holder"
check_match "the client that held the server commits" '^ok  ' "$(tail -n 1 "$TEST_TMP/holder.out")"
check_match "the server is free again afterwards" '^ok 5 ' "$(pgwire q:'select 5')"

chorus_stop TERM
