#!/bin/sh
# recovery_1st_stage.sh - sample recovery_1st_stage_command for pgchorus: the
# first stage of the online recovery of a node on this machine, as the
# built-in one does it (doc/failover.md).
#
#   recovery_1st_stage_command = "/path/to/recovery_1st_stage.sh %d %h %p %D %H %P %R";
#
# Arguments: node id, node host, node port, node data directory, primary
# host, primary port, primary data directory (unused here).  Steps:
#   1. stop whatever still runs on the data directory (pg_ctl stop -m immediate)
#   2. move the data directory aside to DIR.old (a previous DIR.old is removed;
#      this one stays until the next recovery)
#   3. pg_basebackup from the primary, -R: the copy is a standby of the primary
#   4. put back the node's own postgresql.conf, pg_hba.conf and pg_ident.conf
#   5. start it on the node's port
# It must leave the node running as a standby of the primary; pgchorus then
# waits for it to catch up, pauses writes and promotes it (second stage).
#
# Environment: PGBIN (default: `pg_config --bindir`, else
# /usr/lib/postgresql/15/bin), RECOVERY_USER (default postgres; its password
# in the owner's ~/.pgpass or PGPASSWORD).  Run as root (pgchorus as root),
# the commands run as the owner of the data directory's parent.
set -eu

if [ $# -lt 6 ]; then
	echo "usage: $0 NODE HOST PORT DATA_DIR PRIMARY_HOST PRIMARY_PORT [PRIMARY_DATA_DIR]" >&2
	exit 2
fi
node=$1 port=$3 phost=$5 pport=$6
dir=${4%/}
case $dir in
/?*) ;;
*)
	echo "$0: node $node: the data directory must be an absolute path (got '$4')" >&2
	exit 2
	;;
esac
case $dir in *..*)
	echo "$0: node $node: no '..' in the data directory please (got '$4')" >&2
	exit 2
	;;
esac

if [ -z "${PGBIN:-}" ]; then
	PGBIN=$(pg_config --bindir 2>/dev/null || true)
	[ -x "$PGBIN/pg_basebackup" ] || PGBIN=/usr/lib/postgresql/15/bin
fi
ruser=${RECOVERY_USER:-postgres}

# as_owner CMD...: CMD as the owner of the data directory's parent (we are root) or as ourselves
owner=""
if [ "$(id -u)" -eq 0 ]; then
	owner=$(stat -c %U "$(dirname "$dir")")
	if [ "$owner" = root ]; then
		echo "$0: node $node: $(dirname "$dir") belongs to root; PostgreSQL does not run as root" >&2
		exit 1
	fi
fi
as_owner() {
	if [ -n "$owner" ]; then
		(cd / && runuser -u "$owner" -- "$@")
	else
		(cd / && "$@")
	fi
}

echo "node $node: stopping what runs on $dir"
as_owner "$PGBIN/pg_ctl" -D "$dir" -m immediate -w -t 30 stop || true

existed=0
if as_owner test -e "$dir"; then
	existed=1
	as_owner rm -rf -- "$dir.old"
	as_owner mv -- "$dir" "$dir.old"
fi

echo "node $node: pg_basebackup from $phost:$pport into $dir"
as_owner "$PGBIN/pg_basebackup" -h "$phost" -p "$pport" -U "$ruser" -D "$dir" -X stream -R -c fast -w

if [ "$existed" = 1 ]; then
	for f in postgresql.conf pg_hba.conf pg_ident.conf; do
		if as_owner test -f "$dir.old/$f"; then
			as_owner cp -p -- "$dir.old/$f" "$dir/$f"
		fi
	done
fi

as_owner mkdir -p -- "$dir/log"
as_owner "$PGBIN/pg_ctl" -D "$dir" -w -t 120 -l "$dir/log/recovered.log" -o "-p $port" start
echo "node $node: running as a standby of $phost:$pport on port $port"
