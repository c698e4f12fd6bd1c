#!/usr/bin/env bash
# 51_tls: TLS between clients and pgchorus (sslmode=require and verify-full,
# client_tls = require / disable, certificate rotation on SIGHUP with a session
# that stays open, pgbench over TLS) and between pgchorus and a node
# (server_tls = verify-full against the node's certificate, also with clients'
# statements queued on one TLS server connection by pipeline_depth; a wrong CA and a
# node without TLS give the client an error, not a hang).
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=test/integration/lib_tls.sh
. "$(dirname "$0")/lib_tls.sh"

cluster_up 1
tls_make_ca ca "pgchorus test CA"
tls_make_ca otherca "another test CA"
tls_make_cert server ca localhost "DNS:localhost,IP:127.0.0.1"
tls_make_cert server2 ca localhost-rotated "DNS:localhost,IP:127.0.0.1"
# pgchorus reads its certificate from chorus.crt/.key, replaced for the rotation
cp "$TLS_DIR/server.crt" "$TLS_DIR/chorus.crt"
cp "$TLS_DIR/server.key" "$TLS_DIR/chorus.key"
fp1=$(tls_fingerprint "$TLS_DIR/server.crt")
fp2=$(tls_fingerprint "$TLS_DIR/server2.crt")
if [ -z "$fp1" ] || [ -z "$fp2" ] || [ "$fp1" = "$fp2" ]; then
	bail "two certificates with different fingerprints"
fi

# client_conf LINE...: the client-side TLS files, server_tls = "disable"
# unless a LINE sets it, and LINEs
client_conf() {
	local a st='server_tls = "disable";'
	for a in "$@"; do
		case $a in "server_tls ="*) st="" ;; esac
	done
	chorus_conf "tls_cert_file = \"$TLS_DIR/chorus.crt\";" \
		"tls_key_file = \"$TLS_DIR/chorus.key\";" ${st:+"$st"} "$@"
}

client_conf 'client_tls = "allow";'
chorus_start

# ---- client side -----------------------------------------------------------

out=$(PGSSLMODE=require chorus_psql -c '\conninfo' -c 'select 1' 2>&1)
check_match "sslmode=require: psql connects over TLS (\\conninfo)" '^SSL connection \(protocol: TLS' "$out"
out=$(PGSSLMODE=disable chorus_psql -c '\conninfo' 2>&1)
if grep -q '^You are connected' <<<"$out" && ! grep -q 'SSL connection' <<<"$out"; then
	ok "client_tls = allow: a client without TLS is accepted, without TLS"
else
	not_ok "client_tls = allow: a client without TLS is accepted, without TLS"
	diag "$out"
fi

out=$(with_timeout 20 "$PY" - "$(chorus_dsn postgres) sslmode=require" <<'EOF' 2>&1
import sys, psycopg
with psycopg.connect(sys.argv[1]) as c:
    v = c.execute("select 40 + 2").fetchone()[0]
    print(c.pgconn.ssl_in_use, v)
EOF
)
check_match "psycopg over sslmode=require: ssl_in_use, query works" '^True 42$' "$out"

verify_dsn="host=localhost hostaddr=127.0.0.1 port=$CHORUS_PORT user=postgres dbname=postgres sslmode=verify-full"
check_eq "sslmode=verify-full with the CA and host=localhost works" "verified" \
	"$(with_timeout 20 psql -X -qAt -d "$verify_dsn sslrootcert=$TLS_DIR/ca.crt" -c "select 'verified'" 2>&1)"
check_match "sslmode=verify-full with another CA is refused by the client" 'certificate verify failed' \
	"$(with_timeout 20 psql -X -qAt -d "$verify_dsn sslrootcert=$TLS_DIR/otherca.crt" -c 'select 1' 2>&1)"
check_eq "the certificate served after SSLRequest is tls_cert_file" "$fp1" "$(tls_served_fingerprint "$CHORUS_PORT")"

# client_tls = require: plain TCP clients are refused with 28000, the unix
# socket is exempt, TLS clients are served.
client_conf 'client_tls = "require";'
chorus_reload
sleep 1
out=$(pgwire q:'select 1')
check_match "client_tls = require: a TCP client without TLS gets FATAL 28000" \
	'^error FATAL 28000 .*TLS is required' "$out"
check_match "client_tls = require: a TLS client (SSLRequest) logs in" '^ok 7 ' "$(pgwire --ssl require q:'select 7')"
check_eq "client_tls = require: psql sslmode=require works" "8" "$(PGSSLMODE=require chorus_sql 'select 8' 2>&1)"
check_match "client_tls = require: psql sslmode=disable is refused with the reason" 'TLS is required' \
	"$(PGSSLMODE=disable chorus_sql 'select 1' 2>&1)"
check_eq "client_tls = require: a unix-socket client is exempt" "9" \
	"$(PGSSLMODE=disable with_timeout 20 psql -X -qAt -h "$CHORUS_SOCKDIR" -p "$CHORUS_PORT" -c 'select 9' 2>&1)"

# client_tls = disable: SSLRequest is answered N.
client_conf 'client_tls = "disable";'
chorus_reload
sleep 1
check_match "client_tls = disable: SSLRequest is answered N" '^ssl N ' "$(pgwire --ssl require q:'select 1')"
check_match "client_tls = disable: psql sslmode=require fails" 'server does not support SSL' \
	"$(PGSSLMODE=require chorus_sql 'select 1' 2>&1)"
out=$(PGSSLMODE=prefer chorus_psql -c '\conninfo' 2>&1)
if grep -q '^You are connected' <<<"$out" && ! grep -q 'SSL connection' <<<"$out"; then
	ok "client_tls = disable: psql sslmode=prefer connects without TLS"
else
	not_ok "client_tls = disable: psql sslmode=prefer connects without TLS"
	diag "$out"
fi

# ---- certificate rotation on SIGHUP ----------------------------------------

client_conf 'client_tls = "allow";'
chorus_reload
sleep 1
check_eq "after client_tls = allow again, the first certificate is served" "$fp1" \
	"$(tls_served_fingerprint "$CHORUS_PORT")"
pgwire --ssl require -t 60 cert q:'select 1' waitfile:"$TEST_TMP/go" q:'select 2' cert \
	>"$TEST_TMP/old_session.out" 2>&1 &
old_pid=$!
bg_track "$old_pid"
wait_until 10 grep -q '^ok 1 ' "$TEST_TMP/old_session.out" || not_ok "a TLS session opened before the rotation logged in"
cp "$TLS_DIR/server2.crt" "$TLS_DIR/chorus.crt"
cp "$TLS_DIR/server2.key" "$TLS_DIR/chorus.key"
chorus_reload
sleep 1
check_eq "after SIGHUP a new connection gets the new certificate" "$fp2" "$(tls_served_fingerprint "$CHORUS_PORT")"
check_eq "verify-full still works with the rotated certificate" "rotated" \
	"$(with_timeout 20 psql -X -qAt -d "$verify_dsn sslrootcert=$TLS_DIR/ca.crt" -c "select 'rotated'" 2>&1)"
touch "$TEST_TMP/go"
wait "$old_pid"
out=$(cat "$TEST_TMP/old_session.out")
check_match "the session opened before the reload keeps working" '^ok 2 ' "$out"
certs=$(sed -n 's/^cert \([^ ]*\) .*/\1/p' "$TEST_TMP/old_session.out" | sort -u)
check_eq "... with the certificate it started with" "$fp1" "$certs"

# ---- pgbench over TLS ------------------------------------------------------

with_timeout 60 pgbench -i -s 1 -q -h 127.0.0.1 -p "$NODE0_PORT" postgres >"$TEST_TMP/pgbench-init.out" 2>&1 ||
	bail "pgbench -i on the node"
out=$(PGSSLMODE=require with_timeout 30 pgbench -n -S -M extended -c 8 -j 2 -T 3 \
	-h 127.0.0.1 -p "$CHORUS_PORT" postgres 2>&1)
check_match "pgbench -S -M extended, 8 clients over TLS: 0 failed transactions" \
	'^number of failed transactions: 0 ' "$out"
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
if [ "${processed:-0}" -gt 100 ]; then
	ok "pgbench over TLS processed $processed transactions"
else
	not_ok "pgbench over TLS processed transactions (${processed:-none})"
	diag "$out"
fi

# ---- TLS to the node -------------------------------------------------------

node_ssl_on 0 server || bail "node 0 serves TLS"
chorus_stop TERM
client_conf 'client_tls = "allow";' 'server_tls = "verify-full";' \
	"server_tls_ca_file = \"$TLS_DIR/ca.crt\";"
chorus_start
check_eq "server_tls = verify-full: a query through pgchorus works" "ok" "$(chorus_sql "select 'ok'" 2>&1)"
check_eq "the node's pg_stat_ssl shows TLS for pgchorus' backend" "t" \
	"$(chorus_sql 'select ssl from pg_stat_ssl where pid = pg_backend_pid()' 2>&1)"
n=$(node_sql 0 "select count(*) from pg_stat_ssl s join pg_stat_activity a using (pid)
	where s.ssl and a.backend_type = 'client backend' and a.pid <> pg_backend_pid()" 2>&1)
if [ "${n:-0}" -ge 1 ] 2>/dev/null; then
	ok "the node sees $n TLS connection(s) from pgchorus"
else
	not_ok "the node sees TLS connections from pgchorus ($n)"
fi

# Clients' statements queued on one TLS server connection (pipeline_depth):
# what is held while the stream is corked goes through TLS in order.
chorus_stop TERM
MPORT=$("$CLUSTER_SH" freeport 1) || bail "no free port for metrics"
client_conf 'client_tls = "allow";' 'server_tls = "verify-full";' \
	"server_tls_ca_file = \"$TLS_DIR/ca.crt\";" 'workers = 1;' 'pool_size = 1;' 'pipeline_depth = 16;' \
	"metrics_port = $MPORT;"
chorus_start
for m in simple prepared; do
	run_pgbench "pool of 1 over TLS to the node, pipeline_depth 16, -M $m -S, 16 clients" -M "$m" -S -c 16 -j 2 -T 2
done
n=$(chorus_metric "$MPORT" pgchorus_pipelined_total)
check "statements were queued on the TLS server connection (pgchorus_pipelined_total ${n:-?})" \
	test "${n:-0}" -gt 1000

# verify-full with a CA that did not sign the node's certificate
chorus_stop TERM
client_conf 'client_tls = "allow";' 'server_tls = "verify-full";' \
	"server_tls_ca_file = \"$TLS_DIR/otherca.crt\";"
log_from=$(($(wc -l <"$CHORUS_LOG") + 1))
chorus_start
start=$(now)
out=$(pgwire -t 15 q:'select 1')
took=$(secs_since "$start")
check_match "server_tls = verify-full with a wrong CA: the client gets FATAL naming the certificate" \
	'^error FATAL [0-9A-Z]{5} .*certificate' "$out"
if secs_le "$took" 5; then ok "... within 5 s (${took}s)"; else not_ok "... within 5 s (${took}s)"; fi
check_match "... and pgchorus logs the verification failure" 'certificate verification failed' \
	"$(tail -n +"$log_from" "$CHORUS_LOG")"
check "... and pgchorus keeps running" pid_alive "$CHORUS_PID"

# server_tls = require against a node without TLS
node_ssl_off 0 || bail "node 0 stops serving TLS"
chorus_stop TERM
client_conf 'client_tls = "allow";' 'server_tls = "require";'
chorus_start
start=$(now)
out=$(pgwire -t 15 q:'select 1')
took=$(secs_since "$start")
check_match "server_tls = require, node without TLS: the client gets FATAL 08006" '^error FATAL 08006 .*TLS' "$out"
if secs_le "$took" 5; then ok "... within 5 s (${took}s)"; else not_ok "... within 5 s (${took}s)"; fi

chorus_stop TERM
