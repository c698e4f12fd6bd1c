#!/usr/bin/env bash
# run.sh - hostile clients against a real pgchorus (test/hostile/hostile.py).
#
#   test/hostile/run.sh            (from an integration test: bash test/hostile/run.sh)
#
# Starts one PostgreSQL node and pgchorus (pool_size 4, max_client_conn 2000,
# trust authentication) with test/integration/lib.sh and runs hostile.py
# against it twice:
#   1. plaintext: malformed startup packets and messages, 10,000 connections
#      opened and dropped;
#   2. with SCRAM-SHA-256 authentication (users_file with a verifier):
#      malformed, misplaced, stalled and pipelined SASL messages;
#   3. with TLS for clients (a self-signed certificate made with openssl(1);
#      skipped if there is no openssl): the same cases inside TLS, plus
#      garbage where a handshake is due and handshakes dropped half way.
# After each run it checks that pgchorus is still running, exits with status
# 0 on SIGTERM and left no AddressSanitizer / UBSan report, in its output or
# in the log_path files of ASAN_OPTIONS / UBSAN_OPTIONS when those are set
# (as scripts/test.sh does).  Prints "ok - ..." / "not ok - ..." lines like
# every integration test; exit status 1 on any failure.
#
# Environment (besides lib.sh's: PGCHORUS, KEEP, ...):
#   HOSTILE_ARGS     extra hostile.py options for both runs, e.g.
#                    "--sockets 10 --churn 2000" or "--only startup:"
#   HOSTILE_SCRAM=0  skip the SCRAM run
#   HOSTILE_TLS=0    skip the TLS run
#   HOSTILE_TIMEOUT  seconds one hostile.py run may take (default 600)
# shellcheck source=test/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
TEST_NAME=hostile # lib.sh names the test in its messages
export TEST_NAME
HERE=$TOP/test/hostile
BASE_CONF=("pool_size = 4;" "max_client_conn = 2000;")
PASSWORD=hostile-secret

# Sanitizer report files of process $1 (ASAN_OPTIONS=...:log_path=P writes P.PID).
san_files() {
	local opt path
	for opt in "${ASAN_OPTIONS:-}" "${UBSAN_OPTIONS:-}"; do
		path=$(tr ':' '\n' <<<"$opt" | sed -n 's/^log_path=//p' | tail -n 1)
		[ -n "$path" ] && ls "$path.$1" "$path.$1".* 2>/dev/null
	done
	return 0
}

# run_hostile LABEL [HOSTILE.PY OPTIONS...]: pgchorus must be running.
run_hostile() {
	local label=$1 pid=$CHORUS_PID out rc reports f n_ok n_not_ok
	shift
	out=$TEST_TMP/hostile-$label.out
	diag "$label run: pgchorus pid $pid on port $CHORUS_PORT, log $CHORUS_LOG"
	# hostile.py's lines are this test's checks: shown as they come, then
	# counted for lib.sh.
	# shellcheck disable=SC2086  # HOSTILE_ARGS is a list of options
	with_timeout "${HOSTILE_TIMEOUT:-600}" "$PY" -u "$HERE/hostile.py" 127.0.0.1 "$CHORUS_PORT" \
		postgres postgres --pool-size 4 --max-client-conn 2000 --pid "$pid" "$@" ${HOSTILE_ARGS:-} \
		2>"$TEST_TMP/hostile-$label.err" | sed "s/^\(\(not \)\{0,1\}ok - \)/\1$label: /" | tee "$out"
	rc=${PIPESTATUS[0]}
	n_ok=$(grep -c '^ok - ' "$out" 2>/dev/null)
	n_not_ok=$(grep -c '^not ok - ' "$out" 2>/dev/null)
	N_OK=$((N_OK + ${n_ok:-0}))
	N_NOT_OK=$((N_NOT_OK + ${n_not_ok:-0}))
	if [ "$rc" -ne 0 ] && ! grep -q '^not ok - ' "$out"; then
		not_ok "$label: hostile.py ran to its end (exit status $rc)"
		diag_file "$TEST_TMP/hostile-$label.err"
	elif [ -s "$TEST_TMP/hostile-$label.err" ]; then
		diag "hostile.py standard error:"
		diag_file "$TEST_TMP/hostile-$label.err"
	fi

	if pid_alive "$pid"; then
		ok "$label: pgchorus is still running after the hostile clients"
	else
		not_ok "$label: pgchorus is still running after the hostile clients"
		diag_file "$CHORUS_LOG" 60
	fi
	# checks the exit status and pgchorus' output for sanitizer reports
	chorus_stop TERM
	reports=$(san_files "$pid")
	if [ -n "$reports" ]; then
		not_ok "$label: no sanitizer report from pgchorus (pid $pid)"
		for f in $reports; do
			diag "--- $f"
			head -n 40 "$f" | sed 's/^/#   /'
		done
	else
		ok "$label: no sanitizer report file from pgchorus (pid $pid)"
	fi
}

cluster_up 1
chorus_conf "${BASE_CONF[@]}" "auth_method = \"trust\";"
chorus_start
run_hostile plain

if [ "${HOSTILE_SCRAM:-1}" = 1 ]; then
	# A SCRAM verifier of $PASSWORD for user postgres (what CREATE ROLE stores).
	"$PY" - "$PASSWORD" >"$TEST_TMP/users.txt" <<'EOF'
import base64, hashlib, hmac, os, sys
salt, i = os.urandom(16), 4096
salted = hashlib.pbkdf2_hmac("sha256", sys.argv[1].encode(), salt, i)
ck = hmac.new(salted, b"Client Key", "sha256").digest()
sk = hmac.new(salted, b"Server Key", "sha256").digest()
b = lambda x: base64.b64encode(x).decode()
print(f"postgres:SCRAM-SHA-256${i}:{b(salt)}${b(hashlib.sha256(ck).digest())}:{b(sk)}")
EOF
	chorus_conf "${BASE_CONF[@]}" "auth_method = \"scram-sha-256\";" "users_file = \"$TEST_TMP/users.txt\";"
	chorus_start
	run_hostile scram --password "$PASSWORD" --churn 0 --only "auth:"
fi

if [ "${HOSTILE_TLS:-1}" = 1 ]; then
	if command -v openssl >/dev/null 2>&1 &&
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
			-keyout "$TEST_TMP/client-tls.key" -out "$TEST_TMP/client-tls.crt" \
			>"$TEST_TMP/openssl.log" 2>&1; then
		chorus_conf "${BASE_CONF[@]}" "auth_method = \"trust\";" "client_tls = \"allow\";" \
			"tls_cert_file = \"$TEST_TMP/client-tls.crt\";" \
			"tls_key_file = \"$TEST_TMP/client-tls.key\";"
		chorus_start
		# The plaintext churn already ran: here the TLS one.
		run_hostile tls --tls --churn 0
	else
		diag "no TLS run: openssl could not make a certificate"
		diag_file "$TEST_TMP/openssl.log"
	fi
fi
