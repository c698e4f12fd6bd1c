#!/usr/bin/env bash
# 80_config_errors: pgchorus refuses a bad configuration at start: it exits
# with a non-zero status (not a crash) and the message names file:line and
# the setting.
# shellcheck source=test/integration/lib.sh
. "$(dirname "$0")/lib.sh"

cluster_up 1
chorus_conf
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

out=$(with_timeout 10 "$PGCHORUS" -n -f "$TEST_TMP/does-not-exist.conf" 2>&1)
rc=$?
check "a missing file: error status ($rc)" test "$rc" -ge 1 -a "$rc" -le 123
check_match "a missing file: the message names it" 'does-not-exist\.conf' "$out"

# The good file itself starts (so the failures above are the bad lines' doing).
chorus_start
check_eq "the unmodified configuration works" "1" "$(chorus_sql 'select 1')"
chorus_stop TERM
