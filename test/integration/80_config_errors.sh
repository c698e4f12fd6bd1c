#!/usr/bin/env bash
# 80_config_errors: pgchorus refuses a bad configuration at start: it exits
# with a non-zero status (not a crash) and the message names file:line and
# the setting.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 1
# The replication settings are written out (at their defaults, except
# instance_name) so that try_conf can replace them.
REPL_LINES=('load_balance = "statement";' 'on_mismatch = "detach_minority";'
	'instance_name = "t80";' 'resolver_user = "postgres";' 'resolver_password = "";'
	'resolver_database = "postgres";' 'resolver_period = 10;' 'resolver_grace = 30;'
	'heartbeat_port = 0;' 'heartbeat_interval = 1;' 'heartbeat_deadtime = 5;' 'peers = ();')
chorus_conf "${REPL_LINES[@]}"
good=$CHORUS_CONF

# try_conf DESC SETTING LINE-TO-REPLACE-KEY NEW-LINE: write a copy of the good
# file with the line for that key replaced, run pgchorus on it, check.
try_conf() {
	local desc=$1 setting=$2 key=$3 newline=$4 bad=$TEST_TMP/bad-$3.conf lineno out rc
	awk -v key="$key" -v nl="$newline" '
		!done && $0 ~ "^" key "[ \t]*[=:]" { print nl; done = 1; next }
		{ print }' "$good" >"$bad"
	lineno=$(grep -nF -- "$newline" "$bad" | head -n 1 | cut -d: -f1)
	out=$(with_timeout 10 "$PGCHORUS" -n -f "$bad" 2>&1)
	rc=$?
	if [ "$rc" -ge 1 ] && [ "$rc" -le 123 ]; then
		ok "$desc: pgchorus exits with an error status ($rc)"
	else
		not_ok "$desc: pgchorus exits with an error status (got $rc)"
	fi
	check_match "$desc: the message names $(basename "$bad"):$lineno" "$(basename "$bad"):$lineno([^0-9]|$)" "$out"
	if [ -n "$setting" ]; then
		check_match "$desc: the message names the setting $setting" "$setting" "$out"
	fi
	check_fail "$desc: nothing listens on the port" pg_isready -q -h 127.0.0.1 -p "$CHORUS_PORT" -t 1
}

try_conf "pool_size of the wrong type" pool_size pool_size 'pool_size = "lots";'
try_conf "negative pool_size" pool_size pool_size 'pool_size = -5;'
try_conf "unknown pool_mode" pool_mode pool_mode 'pool_mode = "sometimes";'
try_conf "unknown log_level" log_level log_level 'log_level = "chatty";'
try_conf "port out of range" port port 'port = 99999;'
try_conf "syntax error" "" max_client_conn 'max_client_conn = ;'
try_conf "unknown load_balance" load_balance load_balance 'load_balance = "random";'
try_conf "unknown on_mismatch" on_mismatch on_mismatch 'on_mismatch = "majority";'
try_conf "instance_name with capitals and a dash" instance_name instance_name 'instance_name = "Bad-Name";'
try_conf "instance_name over 20 characters" instance_name instance_name \
	'instance_name = "abcdefghij0123456789x";'
try_conf "empty resolver_user" resolver_user resolver_user 'resolver_user = "";'
try_conf "resolver_database of the wrong type" resolver_database resolver_database 'resolver_database = 5;'
try_conf "resolver_period = 0" resolver_period resolver_period 'resolver_period = 0;'
try_conf "negative resolver_grace" resolver_grace resolver_grace 'resolver_grace = -1;'
try_conf "peers without heartbeat_port" heartbeat_port peers \
	'peers = ( { host = "127.0.0.1"; port = 7999; } );'
try_conf "a peer with an unknown setting" 'peers\[0\]\.vip' peers \
	'peers = ( { host = "127.0.0.1"; port = 7999; vip = "x"; } );'
try_conf "a peer without port" 'peers\[0\]' peers 'peers = ( { host = "127.0.0.1"; } );'
try_conf "heartbeat_interval under 0.01 s" heartbeat_interval heartbeat_interval 'heartbeat_interval = 0.001;'
try_conf "heartbeat_deadtime under twice the interval" heartbeat_deadtime heartbeat_deadtime \
	'heartbeat_deadtime = 1.5;'

out=$(with_timeout 10 "$PGCHORUS" -n -f "$TEST_TMP/does-not-exist.conf" 2>&1)
rc=$?
check "a missing file: error status ($rc)" test "$rc" -ge 1 -a "$rc" -le 123
check_match "a missing file: the message names it" 'does-not-exist\.conf' "$out"

# The good file itself starts (so the failures above are the bad lines' doing).
chorus_start
check_eq "the unmodified configuration works" "1" "$(chorus_sql 'select 1')"

# instance_name needs a restart: a reload that changes it is refused, and
# pgchorus keeps running; the other replication settings reload.
log_since() {
	tail -n +$((lines_before + 1)) "$CHORUS_LOG"
}
logged_since() {
	log_since | grep -q -- "$1"
}
lines_before=$(wc -l <"$CHORUS_LOG")
chorus_conf "${REPL_LINES[@]/#instance_name = *;/instance_name = \"t80b\";}"
check_match "the rewritten file has the new instance_name" 'instance_name = "t80b";' "$(cat "$CHORUS_CONF")"
chorus_reload
wait_until 5 logged_since "instance_name: cannot change on reload"
check_match "a reload that changes instance_name is refused, naming it" \
	"reload refused.*instance_name: cannot change on reload" "$(log_since)"
check "pgchorus runs after the refused reload" pid_alive "$CHORUS_PID"
lines_before=$(wc -l <"$CHORUS_LOG")
chorus_conf 'load_balance = "off";' 'on_mismatch = "abort";' 'instance_name = "t80";' \
	'resolver_user = "nobody";' 'resolver_password = "x y";' 'resolver_database = "template1";' \
	'resolver_period = 2.5;' 'resolver_grace = 0;'
chorus_reload
wait_until 5 logged_since "configuration reloaded"
check_match "the other replication settings reload" "configuration reloaded" "$(log_since)"
check_eq "a query works after the reload" "1" "$(chorus_sql 'select 1')"
chorus_stop TERM
