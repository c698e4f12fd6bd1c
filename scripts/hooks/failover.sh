#!/usr/bin/env bash
# failover.sh - sample failover_command for pgchorus (nodes on this host).
#
# pgchorus runs it with /bin/sh -c after a node was detached (health check,
# backend error, mismatch).  Configure, quoting the values that may be empty:
#
#   failover_command = "/path/to/failover.sh %d '%h' %p '%D' %m '%H' %P '%R'";
#
# Arguments: failed node id, its host, port, data dir; the new primary's id
# (-1: no node left), host, port, data dir.  Placeholder values are not
# shell-quoted by pgchorus: quote them in the template as above.
#
# It appends one line "<time> failover node=.. host=.. port=.. data_dir=..
# new_primary=.. primary_host=.. primary_port=.. primary_data_dir=.." to
# $PGCHORUS_HOOK_LOG (default: ${TMPDIR:-/tmp}/pgchorus-hooks.log) and prints
# it (pgchorus logs the output of hooks).  It runs at most hook_timeout
# seconds; a non-zero exit status is logged as a warning, nothing else.
set -u

node=${1:-} host=${2:-} port=${3:-} data_dir=${4:-}
primary=${5:--1} p_host=${6:-} p_port=${7:-} p_data_dir=${8:-}
log=${PGCHORUS_HOOK_LOG:-${TMPDIR:-/tmp}/pgchorus-hooks.log}

line="$(date '+%F %T') failover node=$node host=$host port=$port data_dir=$data_dir"
line+=" new_primary=$primary primary_host=$p_host primary_port=$p_port primary_data_dir=$p_data_dir"
echo "$line"
echo "$line" >>"$log" || exit 1

if [ "$primary" = -1 ]; then
	echo "no node is up any more: clients get errors until a node is recovered"
fi

# Example: fence the failed node when it runs here, so that it cannot come
# back by itself with stale data (uncomment; pgchorus must be allowed to
# run pg_ctl as the owner of the data directory).
# if [ -n "$data_dir" ] && [ -d "$data_dir" ]; then
#	pg_ctl -D "$data_dir" stop -m immediate -w -t 10
# fi
exit 0
