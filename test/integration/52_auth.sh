#!/usr/bin/env bash
# 52_auth: client authentication to pgchorus.  users_file with a SCRAM
# verifier, an md5 hash and plain passwords; auth_method = scram-sha-256 and
# md5 (right password in, wrong password and unknown user 28P01, SCRAM over
# TLS with channel binding); an hba_file with local trust, reject, a database
# not listed, a hostssl-only user and the cleartext password method; a burst
# of wrong passwords next to a client that keeps working.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_tls.sh
. "$(dirname "$0")/lib_tls.sh"

cluster_up 1
tls_make_ca ca "pgchorus test CA"
tls_make_cert server ca localhost "DNS:localhost,IP:127.0.0.1"
for u in alice bob carol dave eve; do
	node_sql 0 "create role $u login" >/dev/null || bail "create role $u on the node"
done

alice_verifier=$(scram_verifier alice-pw)
bob_md5=$(md5_secret bob bob-pw)
[[ $alice_verifier == SCRAM-SHA-256\$4096:* ]] || bail "a SCRAM verifier for alice ($alice_verifier)"
cat >"$TEST_TMP/users.txt" <<EOF
# test users: SCRAM verifier, md5 hash, plain passwords
alice:$alice_verifier
bob:$bob_md5
carol:carol pw with blanks
dave:dave-pw
EOF

auth_conf() {
	chorus_conf "users_file = \"$TEST_TMP/users.txt\";" \
		"tls_cert_file = \"$TLS_DIR/server.crt\";" "tls_key_file = \"$TLS_DIR/server.key\";" \
		'server_tls = "disable";' "$@"
}

# login_as USER PASSWORD [pgwire options]: pgwire's login line
login_as() {
	local u=$1 p=$2
	shift 2
	pgwire -U "$u" -W "$p" "$@" q:'select current_user'
}

# ---- auth_method = scram-sha-256 ------------------------------------------

auth_conf 'auth_method = "scram-sha-256";'
chorus_start

out=$(login_as alice alice-pw)
check_match "scram: alice (SCRAM verifier) logs in with SCRAM" '^login ok scram ' "$out"
check_match "scram: ... and runs as alice on the node" '^ok alice ' "$out"
check_eq "scram: psql as alice with the right password" "alice" \
	"$(PGPASSWORD=alice-pw chorus_psql -qAt -U alice -w -c 'select current_user' 2>&1)"
check_match "scram: carol (plain password in users_file) logs in with SCRAM" '^login ok scram ' \
	"$(login_as carol 'carol pw with blanks')"
check_match "scram: wrong password -> FATAL 28P01" \
	'^error FATAL 28P01 password authentication failed for user "alice"' "$(login_as alice wrong)"
check_match "scram: unknown user -> FATAL 28P01 with the same message" \
	'^error FATAL 28P01 password authentication failed for user "nobody"' "$(login_as nobody whatever)"
check_match "scram: a user with only an md5 hash cannot do SCRAM -> 28P01" \
	'^error FATAL 28P01 ' "$(login_as bob bob-pw)"
out=$(PGPASSWORD=wrong chorus_psql -U alice -w -c 'select 1' 2>&1)
check_match "scram: psql with a wrong password shows the message" 'password authentication failed for user "alice"' "$out"
check_match "scram: pgchorus still serves after the failures" '^ok alice ' "$(login_as alice alice-pw)"

cb_dsn="host=127.0.0.1 port=$CHORUS_PORT dbname=postgres user=alice sslmode=require channel_binding=require"
check_eq "scram over TLS with channel_binding=require (SCRAM-SHA-256-PLUS)" "alice t" \
	"$(PGPASSWORD=alice-pw with_timeout 20 psql -X -w -qAt -F ' ' -d "$cb_dsn" \
		-c "select current_user, true" 2>&1)"
check_match "scram over TLS with channel binding and a wrong password -> 28P01 message" \
	'password authentication failed for user "alice"' \
	"$(PGPASSWORD=nope with_timeout 20 psql -X -w -qAt -d "$cb_dsn" -c 'select 1' 2>&1)"
check_match "scram over TLS without channel binding (pgwire over TLS)" '^login ok scram ' \
	"$(login_as alice alice-pw --ssl require)"

# ---- auth_method = md5 -----------------------------------------------------

auth_conf 'auth_method = "md5";'
chorus_reload
sleep 1
check_match "md5: bob (md5 hash in users_file) logs in with md5" '^login ok md5 ' "$(login_as bob bob-pw)"
check_match "md5: carol (plain password) logs in with md5" '^login ok md5 ' "$(login_as carol 'carol pw with blanks')"
check_match "md5: wrong password -> 28P01" '^error FATAL 28P01 password authentication failed for user "bob"' \
	"$(login_as bob bob-pwx)"
check_match "md5: unknown user -> 28P01" '^error FATAL 28P01 password authentication failed for user "nobody"' \
	"$(login_as nobody x)"
check_match "md5: alice (SCRAM verifier) is upgraded to SCRAM, as PostgreSQL does" '^login ok scram ' \
	"$(login_as alice alice-pw)"
check_eq "md5: psql as bob" "bob" "$(PGPASSWORD=bob-pw chorus_psql -qAt -U bob -w -c 'select current_user' 2>&1)"

# ---- hba_file --------------------------------------------------------------

cat >"$TEST_TMP/hba.conf" <<'EOF'
# TYPE     DATABASE  USER    ADDRESS        METHOD
local      all       all                    trust
host       all       eve     127.0.0.1/32   reject
hostssl    postgres  dave    127.0.0.1/32   scram-sha-256
host       postgres  alice   127.0.0.1/32   scram-sha-256
host       postgres  bob     127.0.0.1/32   md5
host       postgres  carol   127.0.0.1/32   password
host       postgres  postgres 127.0.0.1/32  trust
EOF
auth_conf "hba_file = \"$TEST_TMP/hba.conf\";"
chorus_reload
sleep 1
check_eq "hba local trust: alice over the unix socket without a password" "alice" \
	"$(with_timeout 20 psql -X -w -qAt -h "$CHORUS_SOCKDIR" -p "$CHORUS_PORT" -U alice -c 'select current_user' 2>&1)"
check_match "hba host trust: postgres over TCP" '^login ok trust ' "$(pgwire)"
check_match "hba reject: eve -> FATAL 28000 pg_hba.conf rejects" \
	'^error FATAL 28000 pg_hba.conf rejects connection for host "127.0.0.1", user "eve", database "postgres"' \
	"$(login_as eve x)"
check_match "hba: a database not listed -> FATAL 28000 no pg_hba.conf entry" \
	'^error FATAL 28000 no pg_hba.conf entry for host "127.0.0.1", user "alice", database "template1"' \
	"$(login_as alice alice-pw -d template1)"
check_match "hba hostssl: dave without TLS -> 28000 no pg_hba.conf entry" \
	'^error FATAL 28000 no pg_hba.conf entry for host "127.0.0.1", user "dave"' "$(login_as dave dave-pw)"
check_match "hba hostssl: dave over TLS logs in with SCRAM" '^login ok scram ' \
	"$(login_as dave dave-pw --ssl require)"
check_eq "hba hostssl: psql sslmode=require as dave" "dave" \
	"$(PGPASSWORD=dave-pw PGSSLMODE=require chorus_psql -qAt -U dave -w -c 'select current_user' 2>&1)"
check_fail "hba hostssl: psql sslmode=disable as dave is refused" \
	env PGPASSWORD=dave-pw PGSSLMODE=disable chorus_psql -qAt -U dave -w -c 'select 1'
check_match "hba password: carol sends her password in clear text" '^login ok password ' \
	"$(login_as carol 'carol pw with blanks')"
check_match "hba password: ... a wrong one -> 28P01" '^error FATAL 28P01 password authentication failed for user "carol"' \
	"$(login_as carol 'carol pw')"
check_eq "hba password: psql as carol" "carol" \
	"$(PGPASSWORD='carol pw with blanks' chorus_psql -qAt -U carol -w -c 'select current_user' 2>&1)"
check_match "hba md5: bob" '^login ok md5 ' "$(login_as bob bob-pw)"
check_match "hba scram: alice" '^login ok scram ' "$(login_as alice alice-pw)"

# ---- a burst of wrong passwords next to a good client ----------------------

with_timeout 60 "$PY" - "host=127.0.0.1 port=$CHORUS_PORT dbname=postgres user=alice password=alice-pw" \
	"$TEST_TMP/burst.done" >"$TEST_TMP/good.out" 2>&1 <<'EOF' &
import os, sys, time, psycopg
dsn, stop = sys.argv[1], sys.argv[2]
good = bad = 0
errors = []
keep = psycopg.connect(dsn, autocommit=True)
end = time.monotonic() + 40
while time.monotonic() < end and not os.path.exists(stop):
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            assert c.execute("select current_user").fetchone()[0] == "alice"
        assert keep.execute("select 1").fetchone()[0] == 1
        good += 1
    except Exception as e:
        bad += 1
        errors.append(str(e).strip())
print(f"good {good} bad {bad}")
for e in errors[:5]:
    print("#", e)
EOF
good_pid=$!
bg_track "$good_pid"
sleep 0.5
bad_pids=()
for i in $(seq 1 50); do
	login_as alice "wrong-$i" >"$TEST_TMP/bad.$i" 2>&1 &
	bad_pids+=($!)
	bg_track "$!"
done
wait "${bad_pids[@]}"
sleep 0.5
touch "$TEST_TMP/burst.done"
wait "$good_pid"
n28p01=$(cat "$TEST_TMP"/bad.* | grep -c '^error FATAL 28P01 ')
check_eq "50 concurrent wrong passwords: each gets 28P01" "50" "$n28p01"
out=$(cat "$TEST_TMP/good.out")
check_match "... while a concurrent good client keeps logging in and querying" '^good [1-9][0-9]* bad 0$' "$out"
check_match "pgchorus serves after the burst" '^ok alice ' "$(login_as alice alice-pw)"

chorus_stop TERM
