#!/usr/bin/env bash
# failover_ssh.sh - sample failover_command for a node on another host.
#
#   failover_command = "/path/to/failover_ssh.sh %d '%h' %p '%D' %m '%H' %P '%R'";
#
# Arguments as failover.sh.  It logs the event like failover.sh, then fences
# the failed node: it stops that node's postmaster over ssh (a postmaster
# that is only unreachable from here, or stopped with SIGSTOP, must not come
# back by itself with stale data):
#
#   ssh HOST pg_ctl -D DATA_DIR stop -m immediate
#
# Needs: the node's data_dir set in pgchorus.conf (%D); key-based ssh from
# the user pgchorus runs as to $PGCHORUS_SSH_USER@HOST (default: the
# postgres user), with pg_ctl in $PGCHORUS_PG_CTL (default: pg_ctl on the
# remote PATH).  A host that does not answer is not waited for beyond
# ConnectTimeout; the whole script is bounded by hook_timeout anyway.
# This is a documented sample: adapt it (e.g. power fencing) before use.
set -u

node=${1:-} host=${2:-} port=${3:-} data_dir=${4:-}
primary=${5:--1} p_host=${6:-} p_port=${7:-} p_data_dir=${8:-}
log=${PGCHORUS_HOOK_LOG:-${TMPDIR:-/tmp}/pgchorus-hooks.log}
ssh_user=${PGCHORUS_SSH_USER:-postgres}
pg_ctl=${PGCHORUS_PG_CTL:-pg_ctl}

line="$(date '+%F %T') failover node=$node host=$host port=$port data_dir=$data_dir"
line+=" new_primary=$primary primary_host=$p_host primary_port=$p_port primary_data_dir=$p_data_dir"
echo "$line"
echo "$line" >>"$log"

if [ -z "$data_dir" ]; then
	echo "node $node has no data_dir in pgchorus.conf: not fenced"
	exit 1
fi
case $host in
/*) echo "node $node is reached by a unix socket ($host): not a remote node, not fenced"; exit 1 ;;
esac
# -n: no stdin; BatchMode: never ask for a password
if ssh -n -o BatchMode=yes -o ConnectTimeout=5 "$ssh_user@$host" \
	"$pg_ctl -D '$data_dir' stop -m immediate -w -t 10"; then
	echo "node $node ($host:$port): postmaster stopped (fenced)"
	echo "$(date '+%F %T') fenced node=$node host=$host" >>"$log"
else
	echo "node $node ($host:$port): could not stop the postmaster over ssh (status $?)"
	exit 1
fi
