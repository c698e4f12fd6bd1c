#!/usr/bin/env bash
# de_escalation.sh - sample de_escalation_command for pgchorus: give back the
# virtual IP address taken over by escalation.sh, when the peer is heard
# again or when this instance stops (doc/heartbeat.md).
#
#   de_escalation_command = "/path/to/de_escalation.sh '%n' '%v' eth0";
#
# Arguments as escalation.sh.  Removes the address with `ip addr del`
# (nothing if it is not there).
set -u

peer=${1:-} vip=${2:-} dev=${3:-}
[ -n "$vip" ] || exit 0
if [ -z "$dev" ]; then
	dev=$(ip route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
fi
[ -n "$dev" ] || { echo "no network device given and no default route" >&2; exit 1; }

if ! ip -o addr show dev "$dev" | awk '{ print $4 }' | grep -qxF "$vip"; then
	echo "$vip of peer ${peer:-?} is not on $dev"
	exit 0
fi
ip addr del "$vip" dev "$dev" || exit 1
echo "gave back $vip of peer ${peer:-?} on $dev"
exit 0
