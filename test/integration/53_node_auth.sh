#!/usr/bin/env bash
# 53_node_auth: pgchorus logs in to a node that asks for a password, as the
# client's user: SCRAM with the plain password from users_file, md5 with the
# md5 hash from users_file, SCRAM with only the verifier in users_file (the
# ClientKey learned from the client's own SCRAM login); a wrong password in
# users_file gives the client a prompt FATAL error, and others are still served.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_tls.sh
. "$(dirname "$0")/lib_tls.sh"

cluster_up 1
vera_verifier=$(scram_verifier vera-pw)
[[ $vera_verifier == SCRAM-SHA-256\$* ]] || bail "a SCRAM verifier for vera"
if ! node_psql 0 -q -c "create role sam login password 'sam-pw'" \
	-c "create role vera login password '$vera_verifier'" \
	-c "create role walt login password 'walt-pw'" \
	-c "set password_encryption = 'md5'" -c "create role mike login password 'mike-pw'"; then
	bail "roles with passwords on the node"
fi
check_match "setup: the node stores mike's password as md5" '^md5' \
	"$(node_sql 0 "select rolpassword from pg_authid where rolname = 'mike'")"
check_eq "setup: the node stores vera's verifier as given" "$vera_verifier" \
	"$(node_sql 0 "select rolpassword from pg_authid where rolname = 'vera'")"
node_hba_prepend 0 \
	"host all sam,vera,walt 127.0.0.1/32 scram-sha-256" \
	"host all mike 127.0.0.1/32 md5" || bail "password lines in the node's pg_hba.conf"
out=$(PGPASSWORD=wrong with_timeout 10 psql -X -w -h 127.0.0.1 -p "$NODE0_PORT" -U sam -c 'select 1' 2>&1)
check_match "setup: the node itself refuses sam with a wrong password" 'password authentication failed' "$out"

cat >"$TEST_TMP/users.txt" <<EOF
sam:sam-pw
mike:$(md5_secret mike mike-pw)
vera:$vera_verifier
walt:not-walt-pw
EOF

node_conf() {
	chorus_conf "users_file = \"$TEST_TMP/users.txt\";" 'server_tls = "disable";' "$@"
}

# as USER [PASSWORD]: pgwire through pgchorus, running select current_user
as() {
	pgwire -U "$1" ${2:+-W "$2"} q:'select current_user'
}

# fails_promptly DESC USER [PASSWORD]: the login fails with FATAL within 5 s
fails_promptly() {
	local desc=$1 start took out
	shift
	start=$(now)
	out=$(pgwire -t 20 -U "$1" ${2:+-W "$2"} q:'select current_user')
	took=$(secs_since "$start")
	check_match "$desc: the client gets FATAL (08006 or the node's 28P01)" '^error FATAL (08006|28P01) ' "$out"
	if secs_le "$took" 5; then ok "$desc: within 5 s (${took}s)"; else not_ok "$desc: within 5 s (${took}s)"; fi
	diag "client saw: $out"
}

# ---- clients trusted by pgchorus ------------------------------------------

node_conf 'auth_method = "trust";'
chorus_start
check_match "trust -> node scram: sam with the plain password from users_file" '^ok sam ' "$(as sam)"
check_match "trust -> node md5: mike with the md5 hash from users_file" '^ok mike ' "$(as mike)"
fails_promptly "trust -> node scram, users_file has the wrong password (walt)" walt
fails_promptly "trust -> node scram, only a verifier and no SCRAM login yet (vera)" vera

# A client of another user is served while walt keeps failing.
pgwire -U sam q:'select pg_sleep(1.5)' q:'select current_user' >"$TEST_TMP/sam_session.out" 2>&1 &
sam_pid=$!
bg_track "$sam_pid"
fails=0
for _ in 1 2 3 4 5; do
	pgwire -t 10 -U walt q:'select 1' | grep -q '^error FATAL ' || fails=$((fails + 1))
done
check_eq "5 more failing logins of walt each end in FATAL" "0" "$fails"
wait "$sam_pid"
check_match "a session of sam running meanwhile is not disturbed" '^ok sam ' "$(cat "$TEST_TMP/sam_session.out")"
check_match "pgchorus serves sam after walt's failures" '^ok sam ' "$(as sam)"
check_match "... and mike" '^ok mike ' "$(as mike)"
chorus_stop TERM

# ---- clients that log in to pgchorus with SCRAM ----------------------------

node_conf 'auth_method = "scram-sha-256";'
chorus_start
check_match "scram -> node scram: sam" '^ok sam ' "$(as sam sam-pw)"
out=$(as vera vera-pw)
check_match "scram -> node scram with only the verifier: vera's ClientKey from her SCRAM login" '^ok vera ' "$out"
check_eq "... the node saw vera log in" "t" \
	"$(node_sql 0 "select count(*) > 0 from pg_stat_activity where usename = 'vera'")"
check_match "... and a second login of vera works too" '^ok vera ' "$(as vera vera-pw)"
check_match "scram: vera with a wrong password is refused by pgchorus (28P01)" \
	'^error FATAL 28P01 password authentication failed for user "vera"' "$(as vera nope)"
fails_promptly "scram -> node scram, the client's password (from users_file) is not the node's (walt)" \
	walt not-walt-pw
check_match "pgchorus still serves sam" '^ok sam ' "$(as sam sam-pw)"
chorus_stop TERM

# ---- clients that log in to pgchorus with md5 ------------------------------

node_conf 'auth_method = "md5";'
chorus_start
check_match "md5 -> node md5: mike" '^login ok md5 .*' "$(pgwire -U mike -W mike-pw)"
check_match "md5 -> node md5: mike runs queries" '^ok mike ' "$(as mike mike-pw)"
check_match "md5 -> node scram: sam (plain password)" '^ok sam ' "$(as sam sam-pw)"
chorus_stop TERM
