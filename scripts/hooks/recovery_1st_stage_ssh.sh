#!/usr/bin/env bash
# recovery_1st_stage_ssh.sh - sample recovery_1st_stage_command for pgchorus: the
# first stage of the online recovery of a node on another machine, over ssh
# (the built-in first stage does the same for a node with ssh_host).
#
#   recovery_1st_stage_command = "/path/to/recovery_1st_stage_ssh.sh %d %h %p %D %H %P";
#
# Arguments: node id, node host, node port, node data directory, primary
# host, primary port, and optionally the ssh destination (default
# postgres@<node host>).  On the node, as the ssh user (who owns the data
# directory): stop what runs there (pg_ctl stop -m immediate), move the data
# directory aside to DIR.old, pg_basebackup from the primary with -R (a
# standby), put back the node's own postgresql.conf, pg_hba.conf and
# pg_ident.conf, start it on the node's port.  The primary's host must be
# reachable from the node under that name.
#
# Needs: ssh keys for pgchorus' user (BatchMode, no password prompt), and on
# the node the replication user's password in ~/.pgpass.  Environment:
# PGBIN (PostgreSQL programs on the node, default: its `pg_config --bindir`,
# else /usr/lib/postgresql/15/bin), RECOVERY_USER (default postgres).
set -euo pipefail

if [ $# -lt 6 ]; then
	echo "usage: $0 NODE HOST PORT DATA_DIR PRIMARY_HOST PRIMARY_PORT [SSH_DESTINATION]" >&2
	exit 2
fi
node=$1 host=$2 port=$3 dir=${4%/} phost=$5 pport=$6
dest=${7:-postgres@$host}
case $dir in
/?*) ;;
*)
	echo "$0: node $node: the data directory must be an absolute path (got '$4')" >&2
	exit 2
	;;
esac

# The script below runs on the node with its arguments quoted for the remote shell.
args=$(printf '%q ' "$node" "$port" "$dir" "$phost" "$pport" "${PGBIN:-}" "${RECOVERY_USER:-postgres}")
exec ssh -o BatchMode=yes -o ConnectTimeout=10 "$dest" "bash -s -- $args" <<'REMOTE'
set -euo pipefail
node=$1 port=$2 dir=$3 phost=$4 pport=$5 PGBIN=$6 ruser=$7
if [ -z "$PGBIN" ]; then
	PGBIN=$(pg_config --bindir 2>/dev/null || true)
	[ -x "$PGBIN/pg_basebackup" ] || PGBIN=/usr/lib/postgresql/15/bin
fi
cd /
echo "node $node on $(hostname): stopping what runs on $dir"
"$PGBIN/pg_ctl" -D "$dir" -m immediate -w -t 30 stop || true
existed=0
if [ -e "$dir" ]; then
	existed=1
	rm -rf -- "$dir.old"
	mv -- "$dir" "$dir.old"
fi
echo "node $node: pg_basebackup from $phost:$pport into $dir"
"$PGBIN/pg_basebackup" -h "$phost" -p "$pport" -U "$ruser" -D "$dir" -X stream -R -c fast -w </dev/null
if [ "$existed" = 1 ]; then
	for f in postgresql.conf pg_hba.conf pg_ident.conf; do
		if [ -f "$dir.old/$f" ]; then cp -p -- "$dir.old/$f" "$dir/$f"; fi
	done
fi
mkdir -p -- "$dir/log"
"$PGBIN/pg_ctl" -D "$dir" -w -t 120 -l "$dir/log/recovered.log" -o "-p $port" start </dev/null
echo "node $node: running as a standby of $phost:$pport on port $port"
REMOTE
