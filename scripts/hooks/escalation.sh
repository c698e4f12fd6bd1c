#!/usr/bin/env bash
# escalation.sh - sample escalation_command for pgchorus: take over the
# virtual IP address of a peer instance that died (doc/heartbeat.md).
#
#   peers = ( { host = "10.0.0.2"; port = 7000; virtual_ip = "10.0.0.12/24"; } );
#   escalation_command = "/path/to/escalation.sh '%n' '%v' eth0";
#
# Arguments: the dead peer's instance_name (may be empty if it was never
# heard), its virtual_ip (address/prefix; nothing is done when empty), the
# network device (default: the device of the default route).
#
# Adds the address with `ip addr add` (nothing if it is there already) and
# announces it with a gratuitous ARP when arping is installed, so that
# clients reach this instance at once.  pgchorus must be allowed to change
# addresses (root, or CAP_NET_ADMIN in the systemd unit).
set -u

peer=${1:-} vip=${2:-} dev=${3:-}
if [ -z "$vip" ]; then
	echo "peer ${peer:-?} has no virtual_ip: nothing to take over"
	exit 0
fi
if [ -z "$dev" ]; then
	dev=$(ip route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
fi
[ -n "$dev" ] || { echo "no network device given and no default route" >&2; exit 1; }

if ip -o addr show dev "$dev" | awk '{ print $4 }' | grep -qxF "$vip"; then
	echo "$vip of peer ${peer:-?} is on $dev already"
	exit 0
fi
ip addr add "$vip" dev "$dev" || exit 1
echo "took over $vip of peer ${peer:-?} on $dev"
if command -v arping >/dev/null 2>&1; then
	arping -q -U -c 3 -I "$dev" "${vip%/*}" >/dev/null 2>&1 || true
fi
exit 0
