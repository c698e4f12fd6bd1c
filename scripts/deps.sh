#!/usr/bin/env bash
# deps.sh - install what building and testing pgchorus needs on Debian 12.
#
# Idempotent: when every package is already installed it does nothing (no
# apt-get update, no network).  Otherwise it runs apt-get update once and
# installs the missing packages non-interactively.  Package installs must not
# start system services (a system PostgreSQL, pgbouncer or pgpool would take
# ports the tests might pick), so a policy-rc.d that forbids service starts is
# put in place for the duration of the install when none exists.
set -euo pipefail

PACKAGES=(
	build-essential autoconf automake libtool pkg-config
	libuv1-dev libssl-dev libconfig-dev libpq-dev libpg-query-dev libprotobuf-c-dev
	postgresql-15 postgresql-client-15
	python3-psycopg pgbouncer pgpool2 gnuplot-nox clang libclang-rt-14-dev groff-base
)

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	SUDO=()
fi

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done
# The contrib modules: Debian 12 ships them inside postgresql-15 and has only
# the postgresql-contrib metapackage; other releases have postgresql-contrib-15.
contrib_ok=0
if installed postgresql-contrib-15 || installed postgresql-contrib; then
	contrib_ok=1
fi

if [ "${#missing[@]}" -eq 0 ] && [ "$contrib_ok" -eq 1 ]; then
	echo "deps.sh: all dependencies are installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
	echo "deps.sh: missing packages (${missing[*]} postgresql-contrib) and not root, no sudo" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q

if [ "$contrib_ok" -eq 0 ]; then
	if apt-cache show postgresql-contrib-15 >/dev/null 2>&1; then
		missing+=(postgresql-contrib-15)
	else
		missing+=(postgresql-contrib)
	fi
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# temporary, from pgchorus scripts/deps.sh\nexit 101\n' |
		"${SUDO[@]}" tee "$policy" >/dev/null
	"${SUDO[@]}" chmod 755 "$policy"
	made_policy=1
fi
cleanup() {
	if [ "$made_policy" -eq 1 ]; then
		"${SUDO[@]}" rm -f "$policy"
	fi
}
trap cleanup EXIT

echo "deps.sh: installing ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	--no-install-recommends "${missing[@]}"
echo "deps.sh: done"
