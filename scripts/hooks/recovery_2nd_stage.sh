#!/bin/sh
# recovery_2nd_stage.sh - sample recovery_2nd_stage_command for pgchorus: promote
# the recovered standby (pg_ctl promote), on this machine or over ssh.
#
#   recovery_2nd_stage_command = "/path/to/recovery_2nd_stage.sh %d %h %p %D";
#   (remote node:  ".../recovery_2nd_stage.sh %d %h %p %D postgres@%h")
#
# Arguments: node id, node host, node port, node data directory, and
# optionally an ssh destination.  pgchorus runs it with writes paused, once
# the node has replayed all of the primary's WAL, and checks afterwards that
# the node left recovery.  Keep it short: writes wait while it runs.
# Environment: PGBIN as in recovery_1st_stage.sh.  Run as root, pg_ctl runs as
# the owner of the data directory's parent.
set -eu

if [ $# -lt 4 ]; then
	echo "usage: $0 NODE HOST PORT DATA_DIR [SSH_DESTINATION]" >&2
	exit 2
fi
node=$1 dir=${4%/} dest=${5:-}

# q WORD: WORD quoted for a remote shell
q() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

if [ -n "$dest" ]; then
	# on the node: pg_ctl from PGBIN if given here, else from the default directory
	bin=${PGBIN:-/usr/lib/postgresql/15/bin}
	exec ssh -o BatchMode=yes -o ConnectTimeout=10 "$dest" "$(q "$bin/pg_ctl") -D $(q "$dir") -w -t 60 promote"
fi

if [ -z "${PGBIN:-}" ]; then
	PGBIN=$(pg_config --bindir 2>/dev/null || true)
	[ -x "$PGBIN/pg_ctl" ] || PGBIN=/usr/lib/postgresql/15/bin
fi
echo "node $node: promoting $dir"
if [ "$(id -u)" -eq 0 ]; then
	cd / && exec runuser -u "$(stat -c %U "$(dirname "$dir")")" -- "$PGBIN/pg_ctl" -D "$dir" -w -t 60 promote
fi
cd / && exec "$PGBIN/pg_ctl" -D "$dir" -w -t 60 promote
